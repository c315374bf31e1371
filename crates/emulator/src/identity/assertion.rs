use super::*;

/// `private_key_jwt` (§1.4): header `alg` RS256 or PS256 and `x5t#S256` (or legacy `x5t`) naming a
/// registered certificate; claims `aud` = this token endpoint (or the real login host's), `iss` = `sub` =
/// client id, `exp`/`nbf` in range, `jti` never seen before.
pub(super) fn verify_client_assertion(shared: &Shared, app: &AppFixture, kind: Option<&str>, jwt: &str) -> Result<(), Aad> {
    use base64::Engine;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let bad = |why: &str| Aad::new("invalid_client", 700027, format!("Client assertion failed signature validation. {why}"));
    if kind != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return Err(Aad::new(
            "invalid_request",
            9002313,
            "Invalid request. Request is malformed or invalid. client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
    let (Some(h), Some(c), Some(sig)) = (parts.first(), parts.get(1), parts.get(2)) else {
        return Err(bad("Malformed JWT."));
    };
    let header: Value = dec(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| bad("Malformed header."))?;
    let claims: Value = dec(c).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| bad("Malformed claims."))?;
    let signature = dec(sig).map_err(|_| bad("Malformed signature."))?;
    let thumb = header.get("x5t#S256").or_else(|| header.get("x5t")).and_then(Value::as_str).unwrap_or("");
    let now = shared.now();
    let cert = app
        .certificates
        .iter()
        .find(|c| c.thumbprint == thumb)
        .ok_or_else(|| bad(&format!("Key was not found. Thumbprint of key used by client: '{thumb}'.")))?;
    let expires =
        OffsetDateTime::parse(&cert.expires, &time::format_description::well_known::Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if expires <= now {
        return Err(bad("The certificate credential has expired."));
    }
    let key = rsa::RsaPublicKey::from_public_key_pem(&cert.public_key_pem).map_err(|_| bad("Registered key is unusable."))?;
    let input = format!("{h}.{c}");
    let verified = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => rsa::pkcs1v15::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|s| rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(input.as_bytes(), &s).is_ok()),
        Some("PS256") => rsa::pss::Signature::try_from(signature.as_slice())
            .ok()
            .is_some_and(|s| rsa::pss::VerifyingKey::<Sha256>::new(key).verify(input.as_bytes(), &s).is_ok()),
        _ => false,
    };
    if !verified {
        return Err(bad("Signature is invalid."));
    }
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
    if !claim("iss").eq_ignore_ascii_case(&app.client_id) || !claim("sub").eq_ignore_ascii_case(&app.client_id) {
        return Err(Aad::new(
            "unauthorized_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let aud = claim("aud");
    if !aud.ends_with("/oauth2/v2.0/token") || !(aud.starts_with(&shared.base_url) || aud.starts_with("https://login.microsoftonline.com/"))
    {
        return Err(bad(&format!("Invalid audience '{aud}'.")));
    }
    let (exp, nbf) = (claims.get("exp").and_then(Value::as_i64).unwrap_or(0), claims.get("nbf").and_then(Value::as_i64).unwrap_or(0));
    let t = now.unix_timestamp();
    // Five minutes of clock skew either way, as Entra allows.
    if exp + 300 < t || nbf - 300 > t {
        return Err(Aad::new("invalid_client", 700024, "Client assertion is not within its valid time range."));
    }
    let jti = claim("jti").to_string();
    if jti.is_empty() || !lock(&shared.idp).seen_assertions.insert(jti) {
        return Err(bad("The client assertion has already been used (jti replay)."));
    }
    Ok(())
}
