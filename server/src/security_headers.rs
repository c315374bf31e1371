//! Security headers on every response: a Content-Security-Policy, `nosniff`, no framing, no
//! referrer leaving the site, and HSTS when the public URL is https.
//!
//! Pages get a policy with a fresh nonce: Leptos puts one on each inline script it writes (the
//! hydration bootstrap, streamed resources), so `script-src` needs no `'unsafe-inline'`. The
//! WebAssembly front end needs `'wasm-unsafe-eval'` to be compiled; nothing else is relaxed.
//! Every other response (server functions, static files, redirects, errors) gets the same policy
//! without a nonce: no inline script runs there at all.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The headers of this deployment.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// Where forms may lead besides this site: Microsoft's sign-in. The OAuth start routes are
    /// form posts to this site that redirect there, and Chromium applies `form-action` to the
    /// redirects after a form post too.
    microsoft_origin: Option<String>,
    hsts: bool,
}

/// A year: browsers remember to use https only for this long after each visit.
const HSTS: &str = "max-age=31536000";

impl SecurityHeaders {
    /// For a deployment reached at `public_url` that signs people in at Microsoft's `authority`.
    pub fn new(public_url: &str, microsoft_authority: &str) -> SecurityHeaders {
        let microsoft_origin = url::Url::parse(microsoft_authority).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null");
        SecurityHeaders { microsoft_origin, hsts: public_url.starts_with("https://") }
    }

    /// The Content-Security-Policy; `nonce` allows the inline scripts of one page.
    pub fn content_security_policy(&self, nonce: Option<&str>) -> String {
        let nonce = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
        let microsoft = self.microsoft_origin.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
        format!(
            "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'{microsoft}; frame-ancestors 'none'"
        )
    }

    /// Sets the page's policy, with the nonce Leptos gave this response, through Leptos's
    /// response options. Call it in the context of a page being rendered.
    pub fn provide_page_policy(&self) {
        use leptos::prelude::use_context;
        let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) else {
            return;
        };
        if let Ok(value) = HeaderValue::from_str(&self.content_security_policy(Some(&nonce))) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }

    fn fixed(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        let always = [
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // `same-origin`: full referrers within the site, none to Microsoft or any link out.
            // (`no-referrer` would also make browsers send `Origin: null` on the site's own form
            // posts, which the cross-site check must then refuse where `Sec-Fetch-Site` is missing.)
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        ];
        let hsts = self.hsts.then(|| (header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)));
        always.into_iter().chain(hsts)
    }
}

/// Middleware: the headers on every response; a page's own policy (with its nonce) is kept.
pub async fn add(State(headers): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let out = res.headers_mut();
    if !out.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(value) = HeaderValue::from_str(&headers.content_security_policy(None))
    {
        out.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    for (name, value) in headers.fixed() {
        out.insert(name, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_microsofts_sign_in_as_a_form_target_and_a_pages_nonce() {
        let h = SecurityHeaders::new("http://127.0.0.1:3000", "https://login.microsoftonline.com/");
        let page = h.content_security_policy(Some("abc"));
        assert!(page.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"), "{page}");
        assert!(page.contains("form-action 'self' https://login.microsoftonline.com;"), "{page}");
        assert!(!page.contains("unsafe-inline"), "{page}");
        assert!(!h.content_security_policy(None).contains("nonce"));
        assert!(!h.fixed().any(|(name, _)| name == header::STRICT_TRANSPORT_SECURITY));
        assert!(SecurityHeaders::new("https://i360.example", "").fixed().any(|(name, _)| name == header::STRICT_TRANSPORT_SECURITY));
    }
}
