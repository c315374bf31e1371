//! Where Microsoft is, and which app registration speaks to it.

use crate::certificate::CertificateCredential;
use crate::error::MicrosoftError;
use secrecy::SecretString;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The real identity platform authority (MICROSOFT.md §1.1).
pub const MICROSOFT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The real Graph v1.0 base (MICROSOFT.md §3).
pub const MICROSOFT_GRAPH: &str = "https://graph.microsoft.com/v1.0";
/// The only scope of client-credentials and v2 admin-consent requests for Graph (§1.4, §1.8).
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Base URLs of the two Microsoft hosts. The emulator serves the same paths under its own base, so
/// pointing these at it is the only difference between the demo and production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://login.microsoftonline.com`; `/{tenant}/oauth2/v2.0/...` is appended.
    pub authority: Url,
    /// `https://graph.microsoft.com/v1.0`; `/me`, `/users/...` are appended.
    pub graph: Url,
}

impl Endpoints {
    /// The real Microsoft endpoints (what production uses unless configured otherwise). A `Result`
    /// only because URL parsing is fallible in the type system; the unit tests prove it succeeds.
    pub fn microsoft() -> Result<Endpoints, MicrosoftError> {
        Endpoints::parse(MICROSOFT_AUTHORITY, MICROSOFT_GRAPH)
    }

    /// Endpoints from configuration strings (flags, environment): absolute http(s) base URLs.
    pub fn parse(authority: &str, graph: &str) -> Result<Endpoints, MicrosoftError> {
        Ok(Endpoints { authority: base_url(authority)?, graph: base_url(graph)? })
    }

    /// `{authority}/{segments...}` without doubling slashes.
    pub(crate) fn login(&self, segments: &[&str]) -> Result<Url, MicrosoftError> {
        join(&self.authority, segments)
    }

    pub(crate) fn graph_url(&self, segments: &[&str]) -> Result<Url, MicrosoftError> {
        join(&self.graph, segments)
    }
}

fn base_url(s: &str) -> Result<Url, MicrosoftError> {
    let u = Url::parse(s.trim()).map_err(|e| MicrosoftError::Config(format!("{s:?} is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() || u.query().is_some() {
        return Err(MicrosoftError::Config(format!("{s:?} must be an http(s) base URL without a query")));
    }
    Ok(u)
}

fn join(base: &Url, segments: &[&str]) -> Result<Url, MicrosoftError> {
    let mut u = base.clone();
    {
        let mut path = u.path_segments_mut().map_err(|_| MicrosoftError::Config(format!("{base} cannot be a base URL")))?;
        path.pop_if_empty();
        // `extend` percent-encodes each segment, so a tenant or user id can never inject a path.
        path.extend(segments);
    }
    Ok(u)
}

/// The directory (tenant) an app registration signs users in from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// A tenant id (GUID), the `tid` claim; stored lower-case.
    Id(String),
    /// A verified domain such as `contoso.onmicrosoft.com`; its id is found via discovery.
    Domain(String),
    /// `organizations` or `common`: any work or school tenant (multi-tenant sign-in, no `tid` check).
    Any(String),
}

impl Tenant {
    /// Accepts a GUID, a domain, `organizations` or `common` (§1.1). `consumers` (personal accounts)
    /// is refused: mail sync here is for work and school accounts.
    pub fn parse(s: &str) -> Result<Tenant, MicrosoftError> {
        let t = s.trim().to_ascii_lowercase();
        if t.is_empty() {
            return Err(MicrosoftError::Config("the directory (tenant) id is empty".into()));
        }
        if is_guid(&t) {
            if t == "9188040d-6c67-4c5b-b112-36a304b66dad" {
                return Err(MicrosoftError::Config("personal Microsoft accounts (consumers) are not supported".into()));
            }
            return Ok(Tenant::Id(t));
        }
        match t.as_str() {
            "organizations" | "common" => return Ok(Tenant::Any(t)),
            "consumers" => return Err(MicrosoftError::Config("personal Microsoft accounts (consumers) are not supported".into())),
            _ => {}
        }
        let domain_ok = t.contains('.')
            && !t.starts_with('.')
            && !t.ends_with('.')
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if domain_ok { Ok(Tenant::Domain(t)) } else { Err(MicrosoftError::Config(format!("{s:?} is neither a tenant id nor a domain"))) }
    }

    /// The `{tenant}` path segment.
    pub fn as_str(&self) -> &str {
        match self {
            Tenant::Id(s) | Tenant::Domain(s) | Tenant::Any(s) => s,
        }
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36 && b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// How the app registration proves itself at the token endpoint (§1.4): a client secret, or a
/// certificate whose key signs a client assertion (`private_key_jwt`, which Microsoft recommends).
/// `Debug` shows neither the secret nor the key.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    Secret(SecretString),
    Certificate(Arc<CertificateCredential>),
}

impl From<SecretString> for ClientCredential {
    fn from(secret: SecretString) -> ClientCredential {
        ClientCredential::Secret(secret)
    }
}

impl From<CertificateCredential> for ClientCredential {
    fn from(certificate: CertificateCredential) -> ClientCredential {
        ClientCredential::Certificate(Arc::new(certificate))
    }
}

/// The app registration entered on the Office 365 settings page. `Debug` never shows the secret
/// or the certificate's key.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub tenant: Tenant,
    /// Application (client) id.
    pub client_id: String,
    pub credential: ClientCredential,
}

impl AppRegistration {
    /// An app registration that authenticates with a client secret.
    pub fn new(tenant: &str, client_id: &str, client_secret: SecretString) -> Result<AppRegistration, MicrosoftError> {
        AppRegistration::with_credential(tenant, client_id, ClientCredential::Secret(client_secret))
    }

    /// An app registration with either kind of credential.
    pub fn with_credential(tenant: &str, client_id: &str, credential: ClientCredential) -> Result<AppRegistration, MicrosoftError> {
        let client_id = client_id.trim().to_ascii_lowercase();
        if !is_guid(&client_id) {
            return Err(MicrosoftError::Config("the application (client) id must be a GUID".into()));
        }
        Ok(AppRegistration { tenant: Tenant::parse(tenant)?, client_id, credential })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn defaults_are_the_real_microsoft_hosts() {
        let e = Endpoints::microsoft().unwrap();
        assert_eq!(e.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(e.graph.as_str(), "https://graph.microsoft.com/v1.0");
        assert_eq!(
            e.login(&["contoso.com", "oauth2", "v2.0", "token"]).unwrap().as_str(),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
        assert_eq!(e.graph_url(&["users", "a/b"]).unwrap().as_str(), "https://graph.microsoft.com/v1.0/users/a%2Fb");
    }

    #[test]
    fn endpoints_with_trailing_slashes_join_cleanly() {
        let e = Endpoints::parse("http://127.0.0.1:4365/", "http://127.0.0.1:4365/v1.0/").unwrap();
        assert_eq!(e.graph_url(&["me"]).unwrap().as_str(), "http://127.0.0.1:4365/v1.0/me");
        assert!(Endpoints::parse("ftp://x", "http://y").is_err());
        assert!(Endpoints::parse("http://x?a=b", "http://y").is_err());
        assert!(Endpoints::parse("not a url", "http://y").is_err());
    }

    #[test]
    fn tenants_are_guids_domains_or_multi_tenant_names() {
        assert_eq!(
            Tenant::parse(" 4F1C6A0E-2D3B-4C5A-9E8F-0A1B2C3D4E5F ").unwrap(),
            Tenant::Id("4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f".into())
        );
        assert_eq!(Tenant::parse("Contoso.onmicrosoft.com").unwrap(), Tenant::Domain("contoso.onmicrosoft.com".into()));
        assert_eq!(Tenant::parse("organizations").unwrap(), Tenant::Any("organizations".into()));
        assert!(Tenant::parse("consumers").is_err());
        assert!(Tenant::parse("9188040d-6c67-4c5b-b112-36a304b66dad").is_err());
        assert!(Tenant::parse("").is_err());
        assert!(Tenant::parse("not/a tenant").is_err());
    }

    #[test]
    fn app_registration_debug_hides_the_secret() {
        let app =
            AppRegistration::new("northwind.test", "11111111-2222-4333-8444-555555555555", SecretString::from("s3cr3t-value")).unwrap();
        let shown = format!("{app:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(AppRegistration::new("northwind.test", "not-a-guid", SecretString::from("x")).is_err());
    }
}
