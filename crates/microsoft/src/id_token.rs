//! id_token validation (MICROSOFT.md §1.6): RS256 signature with a key from the tenant's JWKS,
//! issuer built from the discovery document with the token's `tid`, audience, lifetime, nonce and
//! tenant. The pure checks live here; fetching discovery and keys is in `keys.rs`.

use crate::error::IdTokenError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who signed in, as proven by a verified id_token. Key local accounts on (`tenant_id`,
/// `object_id`), never on the mutable `username` or `email` (§1.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    /// `tid`
    pub tenant_id: String,
    /// `oid` (= Graph `user.id`)
    pub object_id: String,
    /// `preferred_username` (UPN or email; mutable, display only)
    pub username: Option<String>,
    /// `name`
    pub name: Option<String>,
    /// `email` (may be absent or unverified)
    pub email: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// A JWT split into its parts, nothing trusted yet.
pub(crate) struct Jwt<'a> {
    pub header: Header,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

impl<'a> Jwt<'a> {
    pub(crate) fn parse(token: &'a str) -> Result<Jwt<'a>, IdTokenError> {
        let malformed = |m: &str| IdTokenError::Malformed(m.to_string());
        let (signing_input, sig) = token.rsplit_once('.').ok_or_else(|| malformed("not three parts"))?;
        let (head, body) = signing_input.split_once('.').ok_or_else(|| malformed("not three parts"))?;
        if body.contains('.') {
            return Err(malformed("not three parts"));
        }
        let dec = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed("bad base64url"));
        let header: Header = serde_json::from_slice(&dec(head)?).map_err(|_| malformed("bad header"))?;
        Ok(Jwt { header, signing_input, signature: dec(sig)?, payload: dec(body)? })
    }

    /// Only RS256: accepting `none` or an HMAC algorithm would let anyone forge a sign-in.
    pub(crate) fn check_alg(&self) -> Result<(), IdTokenError> {
        if self.header.alg == "RS256" { Ok(()) } else { Err(IdTokenError::Algorithm(self.header.alg.clone())) }
    }

    pub(crate) fn verify(&self, key: &RsaPublicKey) -> Result<Value, IdTokenError> {
        self.check_alg()?;
        RsaPublicKeyComponents { n: &key.n, e: &key.e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| IdTokenError::Signature)?;
        // Only now are the claims worth reading.
        serde_json::from_slice(&self.payload).map_err(|_| IdTokenError::Malformed("bad payload".into()))
    }
}

/// What a verified token's claims must say.
pub(crate) struct Expected<'a> {
    pub client_id: &'a str,
    /// The discovery document's `issuer`, possibly with the `{tenantid}` template (§1.6).
    pub issuer_template: &'a str,
    /// `Some(tid)` when the configured tenant is a specific one.
    pub tenant_id: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub now: i64,
    pub leeway_secs: i64,
}

fn str_claim<'v>(claims: &'v Value, name: &'static str) -> Option<&'v str> {
    claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn num_claim(claims: &Value, name: &'static str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// The tenant every personal Microsoft account (Outlook.com, Hotmail, Live) signs in under.
pub(crate) const PERSONAL_ACCOUNTS_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Where a guest's account really lives, or `None` for a member. A guest's token carries the
/// inviting (resource) tenant in `tid` and names the home identity provider in `idp`
/// (`https://sts.windows.net/{home tid}/`, `live.com`, `mail`, …); a member's has no `idp`, or one
/// naming its own tenant. The optional `acct` claim says 1 for guests.
fn guest_home(claims: &Value, tid: &str) -> Option<String> {
    let idp = str_claim(claims, "idp").filter(|idp| !idp.to_ascii_lowercase().contains(tid));
    let acct_guest = num_claim(claims, "acct") == Some(1);
    match (idp, acct_guest) {
        (Some(idp), _) => Some(idp.to_string()),
        (None, true) => Some("another organization".to_string()),
        (None, false) => None,
    }
}

/// Checks verified claims and extracts the identity.
pub(crate) fn check_claims(claims: &Value, want: &Expected<'_>) -> Result<VerifiedIdentity, IdTokenError> {
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a.eq_ignore_ascii_case(want.client_id),
        // OIDC allows an array; only a single-audience token is meant for us alone.
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str().is_some_and(|s| s.eq_ignore_ascii_case(want.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(IdTokenError::Audience { actual: claims.get("aud").map(Value::to_string).unwrap_or_default() });
    }
    let exp = num_claim(claims, "exp").ok_or(IdTokenError::MissingClaim("exp"))?;
    if want.now > exp + want.leeway_secs {
        return Err(IdTokenError::Expired);
    }
    if let Some(nbf) = num_claim(claims, "nbf")
        && want.now + want.leeway_secs < nbf
    {
        return Err(IdTokenError::NotYetValid);
    }
    if let Some(expected) = want.nonce {
        let got = str_claim(claims, "nonce").unwrap_or("");
        if !crate::authorize::secrets_match(got, expected) {
            return Err(IdTokenError::Nonce);
        }
    }
    let tid = str_claim(claims, "tid").ok_or(IdTokenError::MissingClaim("tid"))?.to_ascii_lowercase();
    // Through `common` (or a tenant that lets them in) a personal account arrives with the
    // consumer tenant's id: say so rather than "another organization" (§1.6).
    if tid == PERSONAL_ACCOUNTS_TENANT {
        return Err(IdTokenError::PersonalAccount);
    }
    if let Some(expected) = want.tenant_id
        && !expected.eq_ignore_ascii_case(&tid)
    {
        return Err(IdTokenError::WrongTenant { expected: expected.to_ascii_lowercase(), actual: tid });
    }
    // The multi-tenant discovery document carries `{tenantid}`; tenant-specific ones carry the id
    // itself, and the replace is then a no-op (§1.6).
    let expected_iss = want.issuer_template.replace("{tenantid}", &tid);
    let iss = str_claim(claims, "iss").unwrap_or("");
    if iss != expected_iss {
        return Err(IdTokenError::Issuer { expected: expected_iss, actual: iss.to_string() });
    }
    if let Some(home) = guest_home(claims, &tid) {
        return Err(IdTokenError::GuestAccount { tenant: tid, home });
    }
    let oid = str_claim(claims, "oid").ok_or(IdTokenError::MissingClaim("oid (request the `profile` scope)"))?;
    Ok(VerifiedIdentity {
        tenant_id: tid,
        object_id: oid.to_ascii_lowercase(),
        username: str_claim(claims, "preferred_username").map(str::to_string),
        name: str_claim(claims, "name").map(str::to_string),
        email: str_claim(claims, "email").map(str::to_string),
    })
}

/// An RSA public key from a JWKS entry: modulus and exponent, big-endian without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

/// What ring verifies RS256 with (`RSA_PKCS1_2048_8192_SHA256`): a 2048 to 8192-bit modulus and an
/// odd exponent from 3 to 2^33 - 1.
fn usable(n: &[u8], e: &[u8]) -> bool {
    let n_bits = n.first().map_or(0, |&top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
    let e_value = (e.len() <= 5).then(|| e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
    (2048..=8192).contains(&n_bits) && e_value.is_some_and(|e| (3..1 << 33).contains(&e) && e % 2 == 1)
}

/// An RSA signing key from a JWKS entry (`kty` RSA, `n`, `e`), or `None` for keys we cannot use.
pub(crate) fn rsa_key(jwk: &Value) -> Option<(String, RsaPublicKey)> {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return None;
    }
    if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = jwk.get("kid").and_then(Value::as_str)?.to_string();
    let dec = |k: &str| jwk.get(k).and_then(Value::as_str).and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok());
    let strip = |b: Vec<u8>| b.iter().position(|&x| x != 0).map(|start| b[start..].to_vec()).unwrap_or_default();
    let (n, e) = (strip(dec("n")?), strip(dec("e")?));
    usable(&n, &e).then_some((kid, RsaPublicKey { n, e }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    use serde_json::json;
    use sha2::Sha256;
    use std::sync::OnceLock;

    const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
    const TID: &str = "4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f";

    /// Two keys, generated once: 2048-bit generation is slow in debug builds.
    pub(crate) fn keys() -> &'static (rsa::RsaPrivateKey, rsa::RsaPrivateKey) {
        static KEYS: OnceLock<(rsa::RsaPrivateKey, rsa::RsaPrivateKey)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = rsa::rand_core::OsRng;
            (rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(), rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap())
        })
    }

    pub(crate) fn sign(key: &rsa::RsaPrivateKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn claims(now: i64) -> Value {
        json!({"aud": CLIENT, "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"), "tid": TID, "oid": "6E1F0A00-0000-4000-8000-000000000002",
               "preferred_username": "alice@northwind.test", "name": "Alice Anders", "email": "alice@northwind.test", "nonce": "n-1",
               "iat": now, "nbf": now, "exp": now + 3600, "ver": "2.0"})
    }

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            client_id: CLIENT,
            issuer_template: "https://login.microsoftonline.com/{tenantid}/v2.0",
            tenant_id: Some(TID),
            nonce: Some("n-1"),
            now,
            leeway_secs: 300,
        }
    }

    /// The verifying key of a test key pair, as a JWKS entry would give it.
    pub(crate) fn public(key: &rsa::RsaPrivateKey) -> RsaPublicKey {
        RsaPublicKey { n: key.n().to_bytes_be(), e: key.e().to_bytes_be() }
    }

    fn verify(token: &str, key: &RsaPublicKey, want: &Expected<'_>) -> Result<VerifiedIdentity, IdTokenError> {
        let jwt = Jwt::parse(token)?;
        let c = jwt.verify(key)?;
        check_claims(&c, want)
    }

    #[test]
    fn a_well_formed_token_verifies_and_yields_the_identity() {
        let (k, _) = keys();
        let now = 1_800_000_000;
        let t = sign(k, &json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}), &claims(now));
        let id = verify(&t, &public(k), &expected(now)).unwrap();
        assert_eq!(id.tenant_id, TID);
        assert_eq!(id.object_id, "6e1f0a00-0000-4000-8000-000000000002");
        assert_eq!(id.username.as_deref(), Some("alice@northwind.test"));
        assert_eq!(id.name.as_deref(), Some("Alice Anders"));
        assert_eq!(Jwt::parse(&t).unwrap().header.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn another_keys_signature_is_rejected() {
        let (k, other) = keys();
        let now = 1_800_000_000;
        let t = sign(other, &json!({"alg": "RS256", "kid": "k1"}), &claims(now));
        assert_eq!(verify(&t, &public(k), &expected(now)).unwrap_err(), IdTokenError::Signature);
        // A claim edited after signing breaks the signature too.
        let good = sign(k, &json!({"alg": "RS256", "kid": "k1"}), &claims(now));
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims(now);
        c["oid"] = json!("attacker");
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(c.to_string()), parts[2]);
        assert_eq!(verify(&forged, &public(k), &expected(now)).unwrap_err(), IdTokenError::Signature);
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_rejected() {
        let (k, _) = keys();
        let now = 1_800_000_000;
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims(now).to_string()));
        assert_eq!(verify(&none, &public(k), &expected(now)).unwrap_err(), IdTokenError::Algorithm("none".into()));
        let hs = format!("{}.{}.AAAA", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#), URL_SAFE_NO_PAD.encode(claims(now).to_string()));
        assert!(matches!(verify(&hs, &public(k), &expected(now)), Err(IdTokenError::Algorithm(_))));
        assert!(matches!(Jwt::parse("a.b"), Err(IdTokenError::Malformed(_))));
        assert!(matches!(Jwt::parse("a.b.c.d"), Err(IdTokenError::Malformed(_))));
    }

    #[test]
    fn each_claim_check_refuses_its_own_violation() {
        let (k, _) = keys();
        let pk = public(k);
        let now = 1_800_000_000;
        let h = json!({"alg": "RS256", "kid": "k1"});
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims(now);
            f(&mut c);
            sign(k, &h, &c)
        };
        let err = |t: String| verify(&t, &pk, &expected(now)).unwrap_err();
        assert!(matches!(err(with(&|c| c["aud"] = json!("99999999-2222-4333-8444-555555555555"))), IdTokenError::Audience { .. }));
        assert!(matches!(err(with(&|c| c["aud"] = json!([CLIENT, "other"]))), IdTokenError::Audience { .. }));
        assert_eq!(err(with(&|c| c["exp"] = json!(now - 301))), IdTokenError::Expired);
        assert_eq!(err(with(&|c| c["nbf"] = json!(now + 301))), IdTokenError::NotYetValid);
        assert_eq!(err(with(&|c| c["nonce"] = json!("n-2"))), IdTokenError::Nonce);
        assert_eq!(err(with(&|c| c.as_object_mut().unwrap().retain(|k, _| k != "nonce"))), IdTokenError::Nonce);
        assert!(matches!(
            err(with(&|c| c["iss"] = json!("https://evil.example/4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f/v2.0"))),
            IdTokenError::Issuer { .. }
        ));
        assert_eq!(err(with(&|c| c.as_object_mut().unwrap().retain(|k, _| k != "exp"))), IdTokenError::MissingClaim("exp"));
        let other_tenant = err(with(&|c| {
            c["tid"] = json!("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
            c["iss"] = json!("https://login.microsoftonline.com/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/v2.0");
        }));
        assert!(matches!(other_tenant, IdTokenError::WrongTenant { .. }));
        assert_eq!(other_tenant.reason(), domain::ReasonCode::WrongTenant);
        let personal = err(with(&|c| {
            c["tid"] = json!(PERSONAL_ACCOUNTS_TENANT);
            c["iss"] = json!(format!("https://login.microsoftonline.com/{PERSONAL_ACCOUNTS_TENANT}/v2.0"));
        }));
        assert_eq!(personal, IdTokenError::PersonalAccount, "not merely another organization");
        let guest = err(with(&|c| c["idp"] = json!("https://sts.windows.net/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/")));
        assert!(matches!(&guest, IdTokenError::GuestAccount { home, .. } if home.contains("9a8b7c6d")));
        assert_eq!(guest.reason(), domain::ReasonCode::GuestAccount);
        assert!(matches!(err(with(&|c| c["idp"] = json!("live.com"))), IdTokenError::GuestAccount { .. }));
        assert!(matches!(err(with(&|c| c["acct"] = json!(1))), IdTokenError::GuestAccount { .. }));
        // A member's token may name its own tenant as the identity provider.
        assert!(verify(&with(&|c| c["idp"] = json!(format!("https://sts.windows.net/{TID}/"))), &pk, &expected(now)).is_ok());
        assert!(verify(&with(&|c| c["acct"] = json!(0)), &pk, &expected(now)).is_ok());
        // Within the leeway is fine (clock skew between us and Microsoft).
        assert!(verify(&with(&|c| c["exp"] = json!(now - 100)), &pk, &expected(now)).is_ok());
    }

    #[test]
    fn multi_tenant_configuration_accepts_any_tenant_with_its_own_issuer() {
        let (k, _) = keys();
        let now = 1_800_000_000;
        let mut c = claims(now);
        c["tid"] = json!("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
        c["iss"] = json!("https://login.microsoftonline.com/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/v2.0");
        let t = sign(k, &json!({"alg": "RS256"}), &c);
        let mut want = expected(now);
        want.tenant_id = None;
        assert_eq!(verify(&t, &public(k), &want).unwrap().tenant_id, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
        // A personal account through `common` has its own issuer, and is still refused.
        let mut msa = c.clone();
        msa["tid"] = json!(PERSONAL_ACCOUNTS_TENANT);
        msa["iss"] = json!(format!("https://login.microsoftonline.com/{PERSONAL_ACCOUNTS_TENANT}/v2.0"));
        let t = sign(k, &json!({"alg": "RS256"}), &msa);
        assert_eq!(verify(&t, &public(k), &want).unwrap_err(), IdTokenError::PersonalAccount);
        // …but the issuer must still be the one for the token's own tenant.
        c["iss"] = json!(format!("https://login.microsoftonline.com/{TID}/v2.0"));
        let t = sign(k, &json!({"alg": "RS256"}), &c);
        assert!(matches!(verify(&t, &public(k), &want), Err(IdTokenError::Issuer { .. })));
    }

    #[test]
    fn jwks_entries_become_keys() {
        let (k, _) = keys();
        let pk = public(k);
        let jwk = json!({"kty": "RSA", "use": "sig", "kid": "abc", "n": URL_SAFE_NO_PAD.encode(&pk.n), "e": "AQAB", "x5c": ["..."]});
        let (kid, key) = rsa_key(&jwk).unwrap();
        assert_eq!(kid, "abc");
        assert_eq!(key, pk);
        // A leading zero byte in `n` is not part of the value.
        let padded = json!({"kty": "RSA", "kid": "abc", "n": URL_SAFE_NO_PAD.encode([&[0][..], &pk.n].concat()), "e": "AQAB"});
        assert_eq!(rsa_key(&padded).unwrap().1, pk);
        // Keys ring cannot verify RS256 with: a 1024-bit modulus, an even or a too-large exponent.
        let with = |n: Vec<u8>, e: &[u8]| json!({"kty": "RSA", "kid": "x", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)});
        assert!(rsa_key(&with(pk.n[..128].to_vec(), &[1, 0, 1])).is_none());
        assert!(rsa_key(&with(pk.n.clone(), &[1, 0, 0])).is_none());
        assert!(rsa_key(&with(pk.n.clone(), &[2, 0, 0, 0, 1])).is_none());
        assert!(rsa_key(&with(pk.n.clone(), &[3])).is_some());
        assert!(rsa_key(&json!({"kty": "EC", "kid": "x"})).is_none());
        assert!(rsa_key(&json!({"kty": "RSA", "use": "enc", "kid": "x", "n": "AQAB", "e": "AQAB"})).is_none());
    }
}
