//! Small encoding helpers shared by the identity and Graph halves.

use time::OffsetDateTime;

/// URL-encodes like .NET's `HttpUtility.UrlEncode`, which is what Entra's redirects look like on the wire:
/// space → `+`, lower-case hex escapes (`%3a`, `%0d%0a`, MICROSOFT.md §1.3).
pub(crate) fn ms_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'*' | b'(' | b')' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// Parses `a=b&c=d` (query string or form body); first occurrence wins.
pub(crate) fn parse_qs(s: &str) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(s.as_bytes()) {
        m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    m
}

pub(crate) fn percent_decode(s: &str) -> String {
    // form_urlencoded would turn '+' into ' ', which is wrong for path segments.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `2025-02-12 15:57:00Z`, the AADSTS timestamp format (MICROSOFT.md §1.5).
pub(crate) fn aad_timestamp(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// `2025-02-13T10:17:05`, Graph's innerError date (no `Z`, MICROSOFT.md §3.9).
pub(crate) fn graph_error_date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

pub(crate) fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Random URL-safe token of `bytes` random bytes.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// `Retry-After` seconds as Graph writes them: whole numbers bare, fractions with up to 3 decimals.
pub(crate) fn format_retry_after(secs: f64) -> String {
    if secs.fract() == 0.0 { format!("{}", secs as u64) } else { format!("{secs:.3}").trim_end_matches('0').to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_urlencode_matches_entra_redirects() {
        assert_eq!(ms_urlencode("AADSTS65004: User declined.\r\nTrace ID: x"), "AADSTS65004%3a+User+declined.%0d%0aTrace+ID%3a+x");
    }

    #[test]
    fn percent_decode_keeps_plus() {
        assert_eq!(percent_decode("a%20b+c%2F"), "a b+c/");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
