//! Certificate credentials: the app registration proves itself with a signed client assertion
//! (`private_key_jwt`) instead of a client secret (MICROSOFT.md §1.4, §7).
//!
//! A [`CertificateCredential`] holds the certificate uploaded to the app registration and its RSA
//! private key. Each token request carries a fresh [`CertificateCredential::assertion`]: a compact
//! RS256 JWT whose header names the certificate by its SHA-256 thumbprint (`x5t#S256`) and whose
//! claims bind it to one client id and one token endpoint for five minutes.
//!
//! Loading checks what can be checked locally: the PEM blocks are well formed, the key is RSA of at
//! least 2048 bits and it is the certificate's own key (a key from another certificate would only
//! be refused later by Microsoft, as AADSTS700027, with nothing pointing at the cause).

use crate::error::MicrosoftError;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::fmt;
use time::OffsetDateTime;
use x509_cert::der::{Decode, Encode};

/// The `client_assertion_type` sent with a client assertion (RFC 7523, §1.4).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: Microsoft asks for a short lifetime (5–10 minutes, §1.4).
const ASSERTION_LIFETIME_SECS: i64 = 300;

/// Microsoft refuses RSA keys shorter than this for certificate credentials.
const MIN_RSA_BITS: usize = 2048;

/// A certificate credential: the certificate registered on the app registration and its private
/// key. `Debug` shows the certificate's subject, thumbprint and expiry, never the key.
pub struct CertificateCredential {
    signer: rsa::pkcs1v15::SigningKey<Sha256>,
    thumbprint: String,
    subject: String,
    not_after: OffsetDateTime,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprint)
            .field("not_after", &self.not_after)
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

/// One `-----BEGIN label-----` … `-----END label-----` block, its base64 decoded.
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

fn config(what: impl fmt::Display) -> MicrosoftError {
    MicrosoftError::Config(format!("certificate credential: {what}"))
}

/// Splits PEM text into its blocks. Text outside blocks (OpenSSL's "Bag Attributes", comments) is
/// skipped; a block that does not end, has mismatched labels or bad base64 is an error. Errors never
/// quote the input: it may be a private key.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, MicrosoftError> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, bool)> = None;
    for line in text.lines().map(str::trim) {
        match &mut open {
            None => {
                if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
                    open = Some((label.to_string(), String::new(), false));
                }
            }
            Some((label, body, encrypted)) => {
                if let Some(end) = line.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) {
                    if end != label.as_str() {
                        return Err(config(format!("a PEM block begins as {label} but ends as {end}")));
                    }
                    if *encrypted {
                        return Err(config("the private key is encrypted; export it without a password"));
                    }
                    let der = STANDARD.decode(body.as_bytes()).map_err(|_| config(format!("the {label} block is not valid base64")))?;
                    out.push(PemBlock { label: std::mem::take(label), der });
                    open = None;
                } else if line.starts_with("-----BEGIN ") {
                    return Err(config(format!("the {label} block has no END line")));
                } else if let Some((name, value)) = line.split_once(':') {
                    // RFC 1421 headers of legacy OpenSSL PEM ("Proc-Type: 4,ENCRYPTED", "DEK-Info: …").
                    if name.eq_ignore_ascii_case("Proc-Type") && value.to_ascii_uppercase().contains("ENCRYPTED") {
                        *encrypted = true;
                    }
                } else {
                    body.push_str(line);
                }
            }
        }
    }
    if let Some((label, _, _)) = open {
        return Err(config(format!("the {label} block has no END line")));
    }
    Ok(out)
}

impl CertificateCredential {
    /// From a PEM certificate (`-----BEGIN CERTIFICATE-----`) and a PEM private key (PKCS#8
    /// `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`), unencrypted. Either text may hold
    /// both, or a chain: the certificate used is the one whose public key is the private key's.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<CertificateCredential, MicrosoftError> {
        let mut blocks = pem_blocks(certificate_pem)?;
        blocks.extend(pem_blocks(private_key_pem)?);
        CertificateCredential::from_blocks(blocks)
    }

    /// From one PEM file holding the certificate and its private key, in either order.
    pub fn from_combined_pem(pem: &str) -> Result<CertificateCredential, MicrosoftError> {
        CertificateCredential::from_blocks(pem_blocks(pem)?)
    }

    fn from_blocks(blocks: Vec<PemBlock>) -> Result<CertificateCredential, MicrosoftError> {
        let mut key: Option<RsaPrivateKey> = None;
        let mut certificates = Vec::new();
        for b in blocks {
            let found = match b.label.as_str() {
                "CERTIFICATE" => {
                    certificates.push(b.der);
                    continue;
                }
                "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&b.der)
                    .map_err(|_| config("the PRIVATE KEY block is not an RSA key in PKCS#8 form (Microsoft needs RSA)"))?,
                "RSA PRIVATE KEY" => {
                    RsaPrivateKey::from_pkcs1_der(&b.der).map_err(|_| config("the RSA PRIVATE KEY block is not a PKCS#1 RSA key"))?
                }
                "ENCRYPTED PRIVATE KEY" => return Err(config("the private key is encrypted; export it without a password")),
                "EC PRIVATE KEY" => return Err(config("the private key is an EC key; certificate credentials here need RSA")),
                _ => continue,
            };
            if key.replace(found).is_some() {
                return Err(config("the PEM holds more than one private key"));
            }
        }
        let key = key.ok_or_else(|| config("no private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY) was given"))?;
        if certificates.is_empty() {
            return Err(config("no certificate (BEGIN CERTIFICATE) was given"));
        }
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(config(format!("the RSA key has {} bits; Microsoft needs at least {MIN_RSA_BITS}", key.size() * 8)));
        }
        key.validate().map_err(|_| config("the RSA private key is inconsistent"))?;
        let public = RsaPublicKey::from(&key);
        let mut parsed = 0;
        for der in &certificates {
            let Ok(cert) = x509_cert::Certificate::from_der(der) else { continue };
            parsed += 1;
            let tbs = &cert.tbs_certificate;
            let Ok(spki) = tbs.subject_public_key_info.to_der() else { continue };
            // Not an RSA certificate: cannot be this key's.
            let Ok(cert_key) = RsaPublicKey::from_public_key_der(&spki) else { continue };
            if cert_key != public {
                continue;
            }
            let not_after = OffsetDateTime::UNIX_EPOCH
                + time::Duration::try_from(tbs.validity.not_after.to_unix_duration()).unwrap_or(time::Duration::ZERO);
            return Ok(CertificateCredential {
                thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
                subject: tbs.subject.to_string(),
                not_after,
                signer: rsa::pkcs1v15::SigningKey::<Sha256>::new(key),
            });
        }
        Err(config(if parsed == 0 {
            "the CERTIFICATE block is not an X.509 certificate"
        } else {
            "the private key does not belong to the certificate"
        }))
    }

    /// `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER, as the Azure
    /// portal shows it under the app registration's certificates.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The certificate's subject, e.g. `CN=Intelligence360`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// When the certificate expires; after it Microsoft refuses the assertions (AADSTS700027).
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// A client assertion for one token request: RS256, header `x5t#S256`, claims `aud` = the
    /// request's token endpoint URL, `iss` = `sub` = `client_id`, a random `jti`, `nbf` = `iat` = now
    /// and `exp` five minutes later (§1.4). The signature is randomized (RSA blinding).
    pub fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, MicrosoftError> {
        self.assertion_at(client_id, token_endpoint, OffsetDateTime::now_utc().unix_timestamp())
    }

    fn assertion_at(&self, client_id: &str, token_endpoint: &str, now: i64) -> Result<String, MicrosoftError> {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = serde_json::json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&header), part(&claims));
        let signature = self
            .signer
            .try_sign_with_rng(&mut rsa::rand_core::OsRng, input.as_bytes())
            .map_err(|e| config(format!("signing the client assertion failed: {e}")))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m365_emulator::CertificateFixture;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::signature::Verifier;
    use rsa::traits::PrivateKeyParts;
    use serde_json::Value;
    use std::sync::OnceLock;

    /// (certificate PEM, PKCS#8 key PEM, the emulator's fixture for it): RSA key generation is
    /// slow, so once per test binary.
    fn generated() -> &'static (String, String, CertificateFixture) {
        static CERT: OnceLock<(String, String, CertificateFixture)> = OnceLock::new();
        CERT.get_or_init(|| m365_emulator::testkit::generate_certificate("i360 unit test", "2031-01-01T00:00:00Z"))
    }

    fn other() -> &'static (String, String, CertificateFixture) {
        static CERT: OnceLock<(String, String, CertificateFixture)> = OnceLock::new();
        CERT.get_or_init(|| m365_emulator::testkit::generate_certificate("someone else", "2031-01-01T00:00:00Z"))
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn the_thumbprint_is_base64url_sha256_of_the_certificate_der() {
        let (cert_pem, key_pem, fixture) = generated();
        let c = CertificateCredential::from_pem(cert_pem, key_pem).unwrap();
        // Computed here independently: the DER under the PEM armour, hashed.
        let body: String = cert_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        assert_eq!(c.thumbprint(), URL_SAFE_NO_PAD.encode(Sha256::digest(&der)));
        assert_eq!(c.thumbprint().len(), 43, "32 bytes, unpadded base64url");
        assert_eq!(c.thumbprint(), fixture.thumbprint, "what the emulator's test kit registers");
        assert_eq!(c.subject(), "CN=i360 unit test");
        assert_eq!(c.not_after(), time::macros::datetime!(2031-01-01 00:00:00 UTC));
    }

    #[test]
    fn the_assertion_has_the_documented_header_and_claims_and_verifies_with_the_certificate_key() {
        let (cert_pem, key_pem, fixture) = generated();
        let c = CertificateCredential::from_pem(cert_pem, key_pem).unwrap();
        let endpoint = "https://login.microsoftonline.com/4f1c6a0e-2d3b-4c5a-9e8f-0a1b2c3d4e5f/oauth2/v2.0/token";
        let client = "11111111-2222-4333-8444-555555555555";
        let before = OffsetDateTime::now_utc().unix_timestamp();
        let jwt = c.assertion(client, endpoint).unwrap();
        let after = OffsetDateTime::now_utc().unix_timestamp();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": fixture.thumbprint}));
        let claims = decode(parts[1]);
        assert_eq!(claims["aud"], endpoint);
        assert_eq!(claims["iss"], client);
        assert_eq!(claims["sub"], client);
        let iat = claims["iat"].as_i64().unwrap();
        assert!((before..=after).contains(&iat), "{iat} in {before}..={after}");
        assert_eq!(claims["nbf"].as_i64(), Some(iat));
        assert_eq!(claims["exp"].as_i64(), Some(iat + 300));
        let jti = claims["jti"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(jti).is_ok(), "{jti}");

        // The signature verifies with the public key the emulator registered (its own PEM, not
        // the key this credential holds), over exactly `header.claims`.
        let public = RsaPublicKey::from_public_key_pem(&fixture.public_key_pem).unwrap();
        let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
        let sig = rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        verifier.verify(input.as_bytes(), &sig).unwrap();
        assert!(verifier.verify(format!("{input}x").as_bytes(), &sig).is_err(), "a changed input fails");

        // Another certificate's key does not verify it.
        let stranger = RsaPublicKey::from_public_key_pem(&other().2.public_key_pem).unwrap();
        assert!(rsa::pkcs1v15::VerifyingKey::<Sha256>::new(stranger).verify(input.as_bytes(), &sig).is_err());

        // Every assertion is new: a fresh jti.
        let again = c.assertion(client, endpoint).unwrap();
        let jti2 = decode(again.split('.').nth(1).unwrap())["jti"].as_str().unwrap().to_string();
        assert_ne!(jti, jti2);
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (cert_pem, key_pem, _) = generated();
        let c = CertificateCredential::from_pem(cert_pem, key_pem).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains(c.thumbprint()) && shown.contains("[REDACTED]"), "{shown}");
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
        for secret in [&key.primes()[0], &key.primes()[1], key.d()] {
            for s in [secret.to_string(), format!("{secret:x}"), format!("{secret:X}")] {
                assert!(!shown.contains(&s[..32]), "{shown}");
            }
        }
        for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "{shown}");
        }
        // Through the app registration too.
        let app = crate::AppRegistration::with_credential(
            "northwind.test",
            "11111111-2222-4333-8444-555555555555",
            crate::ClientCredential::Certificate(std::sync::Arc::new(c)),
        )
        .unwrap();
        let shown = format!("{app:?}");
        assert!(shown.contains("[REDACTED]") && !shown.contains(key_pem.lines().nth(1).unwrap()), "{shown}");
    }

    #[test]
    fn pkcs1_keys_combined_files_and_chains_load() {
        let (cert_pem, key_pem, fixture) = generated();
        let pkcs1 = RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap().to_pkcs1_pem(rsa::pkcs8::LineEnding::CRLF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let c = CertificateCredential::from_pem(cert_pem, &pkcs1).unwrap();
        assert_eq!(c.thumbprint(), fixture.thumbprint);
        // Key first, then an unrelated certificate, then ours, with text around the blocks.
        let combined = format!("Bag Attributes\n    friendlyName: i360\n{key_pem}\n{}\n{cert_pem}", other().0);
        let c = CertificateCredential::from_combined_pem(&combined).unwrap();
        assert_eq!(c.thumbprint(), fixture.thumbprint, "the certificate whose key it is");
    }

    #[test]
    fn mismatched_missing_or_unusable_parts_are_refused_without_quoting_them() {
        let (cert_pem, key_pem, _) = generated();
        let (other_cert, other_key, _) = other();
        let msg = |r: Result<CertificateCredential, MicrosoftError>| match r {
            Err(MicrosoftError::Config(m)) => m,
            other => panic!("expected a configuration error: {other:?}"),
        };
        assert!(msg(CertificateCredential::from_pem(cert_pem, other_key)).contains("does not belong to the certificate"));
        assert!(msg(CertificateCredential::from_pem(other_cert, key_pem)).contains("does not belong to the certificate"));
        assert!(msg(CertificateCredential::from_combined_pem(cert_pem)).contains("no private key"));
        assert!(msg(CertificateCredential::from_combined_pem(key_pem)).contains("no certificate"));
        let two_keys = msg(CertificateCredential::from_pem(cert_pem, &format!("{key_pem}{other_key}")));
        assert!(two_keys.contains("more than one private key"), "{two_keys}");
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(msg(CertificateCredential::from_pem(cert_pem, encrypted)).contains("encrypted"));
        let legacy =
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        assert!(msg(CertificateCredential::from_pem(cert_pem, legacy)).contains("encrypted"));
        let truncated: String = key_pem.lines().take(5).collect::<Vec<_>>().join("\n");
        let e = msg(CertificateCredential::from_pem(cert_pem, &truncated));
        assert!(e.contains("no END line"), "{e}");
        assert!(!e.contains(key_pem.lines().nth(1).unwrap()), "the key is never quoted: {e}");
        let garbage = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        assert!(msg(CertificateCredential::from_pem(garbage, key_pem)).contains("not an X.509 certificate"));
        let bad_b64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert!(msg(CertificateCredential::from_pem(cert_pem, bad_b64)).contains("not valid base64"));
        let mixed = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(msg(CertificateCredential::from_pem(cert_pem, mixed)).contains("ends as CERTIFICATE"));
        let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let small_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&small, rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(msg(CertificateCredential::from_pem(cert_pem, &small_pem)).contains("1024 bits"));
    }
}
