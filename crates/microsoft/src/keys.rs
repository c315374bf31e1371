//! The tenant's OpenID discovery document and signing keys, cached in memory.
//!
//! Discovery (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`) gives the `issuer` (with
//! `{tenantid}` for multi-tenant documents) and `jwks_uri` (§1.1, §1.6). Keys are cached by `kid`;
//! an unknown `kid` triggers one refetch (Microsoft rolls keys), but at most once a minute per JWKS so
//! a stream of forged tokens with random `kid`s cannot make us hammer Microsoft.

use crate::config::is_guid;
use crate::id_token::RsaPublicKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Discovery documents and keys change rarely; a day matches what OIDC libraries do.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
pub(crate) const REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
}

impl Discovery {
    /// The tenant id in a tenant-specific issuer (`…/{guid}/v2.0`); `None` for the `{tenantid}`
    /// template of `common`/`organizations`.
    pub(crate) fn tenant_id(&self) -> Option<String> {
        let u = url::Url::parse(&self.issuer).ok()?;
        let segs: Vec<&str> = u.path_segments()?.filter(|s| !s.is_empty()).collect();
        segs.iter().rev().find(|s| is_guid(&s.to_ascii_lowercase())).map(|s| s.to_ascii_lowercase())
    }
}

struct Jwks {
    keys: HashMap<String, RsaPublicKey>,
    fetched: Instant,
}

pub(crate) struct KeyCache {
    discovery: Mutex<HashMap<String, (Discovery, Instant)>>,
    jwks: Mutex<HashMap<String, Jwks>>,
    refetch_min_interval: Duration,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(REFETCH_MIN_INTERVAL)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeyCache {
    pub(crate) fn new(refetch_min_interval: Duration) -> KeyCache {
        KeyCache { discovery: Mutex::default(), jwks: Mutex::default(), refetch_min_interval }
    }

    pub(crate) fn discovery(&self, tenant: &str) -> Option<Discovery> {
        lock(&self.discovery).get(tenant).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(d, _)| d.clone())
    }

    pub(crate) fn put_discovery(&self, tenant: &str, d: Discovery) {
        lock(&self.discovery).insert(tenant.to_string(), (d, Instant::now()));
    }

    /// `Ok(key)` when cached and fresh; `Err(true)` when a (re)fetch is due; `Err(false)` when the
    /// kid is unknown but the keys were fetched too recently to ask again.
    pub(crate) fn key(&self, jwks_uri: &str, kid: &str) -> Result<RsaPublicKey, bool> {
        let cache = lock(&self.jwks);
        match cache.get(jwks_uri) {
            None => Err(true),
            Some(j) if j.fetched.elapsed() >= CACHE_TTL => Err(true),
            Some(j) => match j.keys.get(kid) {
                Some(k) => Ok(k.clone()),
                None => Err(j.fetched.elapsed() >= self.refetch_min_interval),
            },
        }
    }

    pub(crate) fn put_keys(&self, jwks_uri: &str, keys: HashMap<String, RsaPublicKey>) {
        lock(&self.jwks).insert(jwks_uri.to_string(), Jwks { keys, fetched: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_comes_from_a_tenant_specific_issuer_only() {
        let d = |i: &str| Discovery { issuer: i.to_string(), jwks_uri: String::new() };
        assert_eq!(
            d("https://login.microsoftonline.com/4F1C6A0E-2D3B-4C5A-9E8F-0A1B2C3D4E5F/v2.0").tenant_id().as_deref(),
            Some("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f")
        );
        assert_eq!(d("https://login.microsoftonline.com/{tenantid}/v2.0").tenant_id(), None);
    }

    #[test]
    fn unknown_kids_refetch_only_after_the_minimum_interval() {
        let c = KeyCache::default();
        assert!(c.key("u", "k").unwrap_err(), "nothing cached: fetch");
        let (k, _) = crate::id_token::tests::keys();
        c.put_keys("u", HashMap::from([("k".to_string(), crate::id_token::tests::public(k))]));
        assert!(c.key("u", "k").is_ok());
        assert!(!c.key("u", "other").unwrap_err(), "just fetched: do not ask again");
        let eager = KeyCache::new(Duration::ZERO);
        eager.put_keys("u", HashMap::from([("k".to_string(), crate::id_token::tests::public(k))]));
        assert!(eager.key("u", "other").unwrap_err(), "interval elapsed: fetch again");
    }
}
