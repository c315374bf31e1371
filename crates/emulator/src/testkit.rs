//! A test kit (feature `testkit`): a cookie-keeping "browser" that signs a user in through the
//! emulator's own HTML pages over HTTP, the way a person would in Chromium.
//!
//! Every test that needs a real authorization code goes through here, whichever client it tests:
//! the product's Microsoft client, the sync engine, the server's OAuth routes or the emulator itself.
//!
//! ```no_run
//! # async fn demo(authorize_url: &str) -> Result<(), m365_emulator::testkit::Error> {
//! // One call: sign in, accept the consent page, stop at the redirect back to the app.
//! let callback = m365_emulator::testkit::sign_in(authorize_url, "alice@northwind.test").await?;
//! assert!(callback.param("code").is_some());
//!
//! // Or step by step, keeping the emulator's single sign-on cookie between flows.
//! use m365_emulator::testkit::{Browser, Consent, SignIn};
//! let browser = Browser::new()?;
//! let page = browser.sign_in(authorize_url, &SignIn::new("bob@northwind.test").consent(Consent::Cancel)).await?;
//! println!("{:?}", page.callback()?.param("error"));
//! # Ok(()) }
//! ```
//!
//! The browser follows redirects inside the emulator and stops at the first one that leaves it (the
//! app's redirect URI), so nothing needs to listen there.

use std::collections::BTreeSet;

/// What can go wrong driving the pages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("bad URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("no form to submit on the page {title:?} ({status} from {url})")]
    NoForm { url: String, status: u16, title: String },
    #[error(
        "the sign-in ended on the page {title:?} ({status} from {url}{}), not with a redirect back to the app",
        error_text.as_deref().map(|e| format!(", error: {e}")).unwrap_or_default()
    )]
    NoRedirect { url: String, status: u16, title: String, error_text: Option<String> },
    #[error("the pages kept asking after {0} steps")]
    TooManySteps(usize),
}

/// How the user answers the consent page (if there is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Consent {
    /// "Accept".
    #[default]
    Accept,
    /// An admin ticks "Consent on behalf of your organization", then "Accept".
    AcceptForOrganization,
    /// "Cancel".
    Cancel,
}

/// Who signs in and how they answer.
#[derive(Clone, Debug)]
pub struct SignIn {
    pub email: String,
    /// Every demo user's password ([`crate::DEMO_PASSWORD`]) unless changed.
    pub password: String,
    /// The second-factor code MFA users type (the emulator's default unless changed).
    pub mfa_code: String,
    pub consent: Consent,
}

impl SignIn {
    pub fn new(email: &str) -> SignIn {
        SignIn {
            email: email.to_string(),
            password: crate::DEMO_PASSWORD.to_string(),
            mfa_code: crate::ProtocolOptions::default().mfa_code,
            consent: Consent::Accept,
        }
    }

    pub fn password(mut self, password: &str) -> SignIn {
        self.password = password.to_string();
        self
    }

    pub fn mfa_code(mut self, code: &str) -> SignIn {
        self.mfa_code = code.to_string();
        self
    }

    pub fn consent(mut self, consent: Consent) -> SignIn {
        self.consent = consent;
        self
    }
}

/// The emulator's pages, told apart by the ids its HTML keeps stable for Playwright.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageKind {
    SignIn,
    PickAccount,
    Mfa,
    Consent,
    NeedAdminApproval,
    /// An error page, the `form_post` page, a redirect, anything else.
    Other,
}

/// One answer from the emulator, as the browser saw it (redirects not followed).
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL that answered.
    pub url: reqwest::Url,
    pub status: u16,
    /// The `Location` header, as sent.
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn kind(&self) -> PageKind {
        if self.status != 200 {
            PageKind::Other
        } else if self.has_id("password") {
            PageKind::SignIn
        } else if self.has_id("account-0") {
            PageKind::PickAccount
        } else if self.has_id("otc") {
            PageKind::Mfa
        } else if self.has_id("accept") && self.body.contains("Permissions requested") {
            PageKind::Consent
        } else if self.has_id("return-to-app") {
            PageKind::NeedAdminApproval
        } else {
            PageKind::Other
        }
    }

    pub fn is_sign_in_page(&self) -> bool {
        self.kind() == PageKind::SignIn
    }

    pub fn is_consent_page(&self) -> bool {
        self.kind() == PageKind::Consent
    }

    pub fn is_admin_approval_page(&self) -> bool {
        self.kind() == PageKind::NeedAdminApproval
    }

    /// Whether an element with this `id` is on the page.
    pub fn has_id(&self, id: &str) -> bool {
        self.body.contains(&format!("id=\"{id}\""))
    }

    /// The hidden `flow` field every interactive form carries.
    pub fn flow(&self) -> Option<String> {
        attribute_after(&self.body, "name=\"flow\" value=\"")
    }

    /// The `<title>`.
    pub fn title(&self) -> String {
        between(&self.body, "<title>", "</title>").map(unescape).unwrap_or_default()
    }

    /// The text of the `#error` element, when the page shows one.
    pub fn error_text(&self) -> Option<String> {
        let start = self.body.find("id=\"error\"")?;
        between(&self.body[start..], ">", "<").map(unescape)
    }

    /// The redirect this answer sends the browser to, made absolute.
    pub fn redirect(&self) -> Option<reqwest::Url> {
        if !(300..400).contains(&self.status) {
            return None;
        }
        self.url.join(self.location.as_deref()?).ok()
    }

    /// The redirect back to the app (with `code` and `state`, or `error`); an error naming the page
    /// when the sign-in ended on a page instead.
    pub fn callback(&self) -> Result<Callback, Error> {
        match self.redirect() {
            Some(url) => Ok(Callback { url }),
            None => Err(Error::NoRedirect {
                url: self.url.to_string(),
                status: self.status,
                title: self.title(),
                error_text: self.error_text(),
            }),
        }
    }

    /// The query string of [`Page::callback`] (what the app's callback route receives).
    pub fn callback_query(&self) -> Result<String, Error> {
        Ok(self.callback()?.query().to_string())
    }
}

/// Where the emulator sent the browser back to: the app's redirect URI and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    pub url: reqwest::Url,
}

impl Callback {
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The query string, without the `?`.
    pub fn query(&self) -> &str {
        self.url.query().unwrap_or_default()
    }

    /// One query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// A browser: keeps cookies (the emulator's single sign-on session), never follows redirects by
/// itself.
#[derive(Clone, Debug)]
pub struct Browser {
    http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Result<Browser, Error> {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Browser { http })
    }

    /// A browser over a client of the caller's (for example one trusting the emulator's TLS
    /// certificate). It should keep cookies and must not follow redirects.
    pub fn with_client(http: reqwest::Client) -> Browser {
        Browser { http }
    }

    pub async fn get(&self, url: &str) -> Result<Page, Error> {
        let url = parse_url(url)?;
        page_of(self.http.get(url).send().await?).await
    }

    /// Posts `fields` as a form to `url`.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<Page, Error> {
        let url = parse_url(url)?;
        page_of(self.http.post(url).form(fields).send().await?).await
    }

    /// Submits the page's form (its `action` and hidden `flow`) with `fields`, as a button press
    /// would (`("action", "accept")` for the Accept button, and so on).
    pub async fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Result<Page, Error> {
        let no_form = || Error::NoForm { url: page.url.to_string(), status: page.status, title: page.title() };
        let action = attribute_after(&page.body, "<form method=\"POST\" action=\"").ok_or_else(no_form)?;
        let flow = page.flow().ok_or_else(no_form)?;
        let target = page.url.join(&action).map_err(|e| Error::Url { url: action.clone(), reason: e.to_string() })?;
        let mut form: Vec<(&str, &str)> = vec![("flow", flow.as_str())];
        form.extend_from_slice(fields);
        let r = self.http.post(target).form(&form).send().await?;
        page_of(r).await
    }

    /// Opens `url` (an authorize or admin consent URL) and answers every page as `who` would:
    /// email and password, the account picker, the MFA code, the consent page. Returns the last
    /// answer: the redirect back to the app ([`Page::callback`]), or the page the flow stopped on
    /// (Need admin approval, an error page, a sign-in page showing an error).
    pub async fn sign_in(&self, url: &str, who: &SignIn) -> Result<Page, Error> {
        let first = self.get(url).await?;
        self.continue_sign_in(first, who).await
    }

    /// Like [`Browser::sign_in`], from a page already opened.
    pub async fn continue_sign_in(&self, mut page: Page, who: &SignIn) -> Result<Page, Error> {
        const MAX_STEPS: usize = 12;
        let mut answered = BTreeSet::new();
        for _ in 0..MAX_STEPS {
            if let Some(next) = page.redirect() {
                if !same_origin(&next, &page.url) {
                    // Leaving the emulator: back to the app.
                    return Ok(page);
                }
                page = page_of(self.http.get(next).send().await?).await?;
                continue;
            }
            let kind = page.kind();
            // A page asked twice (a wrong password, a wrong code) is where the caller wants to look.
            if matches!(kind, PageKind::Other | PageKind::NeedAdminApproval) || !answered.insert(kind) {
                return Ok(page);
            }
            page = match kind {
                PageKind::SignIn => {
                    let fields = [("email", who.email.as_str()), ("password", who.password.as_str()), ("action", "signin")];
                    self.submit(&page, &fields).await?
                }
                PageKind::PickAccount => {
                    let offered = page.body.to_ascii_lowercase();
                    let mine = offered.contains(&format!("({})", who.email.to_ascii_lowercase()));
                    let button = if mine { "continue" } else { "other" };
                    self.submit(&page, &[("action", button)]).await?
                }
                PageKind::Mfa => {
                    let fields = [("otc", who.mfa_code.as_str()), ("action", "verify")];
                    self.submit(&page, &fields).await?
                }
                PageKind::Consent => {
                    let fields: &[(&str, &str)] = match who.consent {
                        Consent::Accept => &[("action", "accept")],
                        Consent::AcceptForOrganization => &[("consent_org", "true"), ("action", "accept")],
                        Consent::Cancel => &[("action", "cancel")],
                    };
                    self.submit(&page, fields).await?
                }
                PageKind::NeedAdminApproval | PageKind::Other => return Ok(page),
            };
        }
        Err(Error::TooManySteps(MAX_STEPS))
    }
}

/// Signs `email` (password [`crate::DEMO_PASSWORD`]) in at `authorize_url` in a fresh browser,
/// accepts the consent page if asked, and returns where the emulator sends the browser back to.
pub async fn sign_in(authorize_url: &str, email: &str) -> Result<Callback, Error> {
    Browser::new()?.sign_in(authorize_url, &SignIn::new(email)).await?.callback()
}

/// A certificate credential for `private_key_jwt` tests (MICROSOFT.md §1.4): a fresh RSA-2048 key
/// and a self-signed X.509 certificate for it, `CN={common_name}`, valid from an hour ago until
/// `expires` (RFC 3339). Returns the certificate PEM, the PKCS#8 private key PEM, and the fixture
/// that registers the certificate on an app (`AppFixture::certificates`): its `x5t#S256` thumbprint
/// (base64url SHA-256 of the certificate's DER) and public key.
///
/// Key generation takes a while in debug builds: generate once per test binary.
///
/// # Panics
/// When `expires` is not RFC 3339 or the key or certificate cannot be made: a broken test, not a
/// condition to handle.
#[allow(clippy::expect_used)]
pub fn generate_certificate(common_name: &str, expires: &str) -> (String, String, crate::CertificateFixture) {
    use base64::Engine;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use sha2::Digest;
    let not_after = time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
        .expect("generate_certificate: `expires` must be RFC 3339");
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate_certificate: RSA key generation");
    let key_pem = key.to_pkcs8_pem(LineEnding::LF).expect("generate_certificate: PKCS#8 encoding").to_string();
    let public_key_pem =
        rsa::RsaPublicKey::from(&key).to_public_key_pem(LineEnding::LF).expect("generate_certificate: public key encoding");
    let signer = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .expect("generate_certificate: the RSA key as a certificate signer");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = not_after;
    let cert = params.self_signed(&signer).expect("generate_certificate: self-signing");
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert.der()));
    let fixture = crate::CertificateFixture { thumbprint, public_key_pem, expires: expires.to_string() };
    (cert.pem(), key_pem, fixture)
}

async fn page_of(r: reqwest::Response) -> Result<Page, Error> {
    let url = r.url().clone();
    let status = r.status().as_u16();
    let location = r.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = r.text().await?;
    Ok(Page { url, status, location, body })
}

fn parse_url(url: &str) -> Result<reqwest::Url, Error> {
    reqwest::Url::parse(url).map_err(|e| Error::Url { url: url.to_string(), reason: e.to_string() })
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.origin() == b.origin()
}

/// The attribute value that follows `marker` (which ends with the opening quote), unescaped.
fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    html[start..].split('"').next().map(unescape)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(status: u16, location: Option<&str>, body: &str) -> Page {
        Page {
            url: reqwest::Url::parse("http://127.0.0.1:9/tenant/login").unwrap(),
            status,
            location: location.map(str::to_string),
            body: body.to_string(),
        }
    }

    #[test]
    fn pages_are_told_apart_by_their_stable_ids() {
        assert_eq!(page(200, None, "<input id=\"password\">").kind(), PageKind::SignIn);
        assert_eq!(page(200, None, "<input id=\"otc\">").kind(), PageKind::Mfa);
        assert_eq!(page(200, None, "<h1>Permissions requested</h1><button id=\"accept\">").kind(), PageKind::Consent);
        assert_eq!(page(200, None, "<button id=\"return-to-app\">").kind(), PageKind::NeedAdminApproval);
        assert_eq!(page(400, None, "<input id=\"password\">").kind(), PageKind::Other);
    }

    #[test]
    fn a_callback_is_a_redirect_made_absolute_and_a_page_is_named_when_there_is_none() {
        let p = page(302, Some("http://127.0.0.1:4010/cb?code=a%2Bb&state=s"), "");
        let cb = p.callback().unwrap();
        assert_eq!(cb.param("code").as_deref(), Some("a+b"));
        assert_eq!(cb.query(), "code=a%2Bb&state=s");
        let p = page(302, Some("/other/path"), "");
        assert_eq!(p.redirect().unwrap().as_str(), "http://127.0.0.1:9/other/path");
        let stuck = page(200, None, "<title>Sign in</title><p id=\"error\" role=\"alert\">Wrong &amp; bad</p>");
        let err = stuck.callback().unwrap_err().to_string();
        assert!(err.contains("\"Sign in\"") && err.contains("Wrong & bad"), "{err}");
    }

    #[test]
    fn a_generated_certificate_is_self_signed_x509_whose_thumbprint_and_key_match_the_fixture() {
        use base64::Engine;
        use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
        use sha2::Digest;
        let (cert_pem, key_pem, fixture) = generate_certificate("testkit check", "2030-06-30T12:00:00Z");
        assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"), "{cert_pem}");
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let body: String = cert_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(fixture.thumbprint, b64url.encode(sha2::Sha256::digest(&der)));
        assert_eq!(fixture.expires, "2030-06-30T12:00:00Z");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem).unwrap();
        assert_eq!(rsa::RsaPublicKey::from_public_key_pem(&fixture.public_key_pem).unwrap(), rsa::RsaPublicKey::from(&key));
        assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, 2048);
        // A DER certificate: the key's modulus and the common name are inside it, and a second
        // call makes another key.
        let n = rsa::traits::PublicKeyParts::n(&key).to_bytes_be();
        assert!(der.windows(n.len()).any(|w| w == n.as_slice()), "the certificate carries the public key");
        assert!(der.windows(13).any(|w| w == b"testkit check"));
        let (_, _, second) = generate_certificate("testkit check", "2030-06-30T12:00:00Z");
        assert_ne!(second.thumbprint, fixture.thumbprint);
    }

    #[test]
    fn form_fields_are_read_unescaped() {
        let p = page(200, None, "<form method=\"POST\" action=\"/a&amp;b/login\"><input type=\"hidden\" name=\"flow\" value=\"f1\">");
        assert_eq!(p.flow().as_deref(), Some("f1"));
        assert_eq!(attribute_after(&p.body, "<form method=\"POST\" action=\"").as_deref(), Some("/a&b/login"));
    }
}
