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
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use sha2::{Digest, Sha256};
use std::fmt;
use time::OffsetDateTime;
use x509_cert::der::Decode;

/// The `client_assertion_type` sent with a client assertion (RFC 7523, §1.4).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: Microsoft asks for a short lifetime (5–10 minutes, §1.4).
const ASSERTION_LIFETIME_SECS: i64 = 300;

/// Microsoft refuses RSA keys shorter than this for certificate credentials.
const MIN_RSA_BITS: usize = 2048;

/// The longest RSA key ring signs with.
const MAX_RSA_BITS: usize = 4096;

/// The DER contents of the rsaEncryption OID (1.2.840.113549.1.1.1), the algorithm of an RSA key in
/// PKCS#8 and in a certificate's SubjectPublicKeyInfo.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A certificate credential: the certificate registered on the app registration and its private
/// key. `Debug` shows the certificate's subject, thumbprint and expiry, never the key.
pub struct CertificateCredential {
    key_pair: RsaKeyPair,
    rng: SystemRandom,
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

/// DER tags used below.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// One DER element from the front of `input`: (tag, contents, what follows). Definite lengths only
/// (DER has no other); `None` for anything truncated or malformed.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// The next element of `input`, which must have `tag`; `input` moves past it.
fn take<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    let (found, contents, rest) = der_element(input)?;
    *input = rest;
    (found == tag).then_some(contents)
}

/// The contents of the single SEQUENCE that is all of `der`.
fn whole_sequence(der: &[u8]) -> Option<&[u8]> {
    match der_element(der)? {
        (SEQUENCE, contents, []) => Some(contents),
        _ => None,
    }
}

/// A non-negative INTEGER's value, big-endian without leading zeros; `None` for a negative one.
fn unsigned(contents: &[u8]) -> Option<&[u8]> {
    if contents.first().is_none_or(|b| b & 0x80 != 0) {
        return None;
    }
    let zeros = contents.iter().take_while(|&&b| b == 0).count();
    Some(&contents[zeros..])
}

/// An RSA public key's modulus and exponent, big-endian without leading zeros.
#[derive(Debug, PartialEq, Eq)]
struct RsaPublic<'a> {
    n: &'a [u8],
    e: &'a [u8],
}

impl RsaPublic<'_> {
    fn bits(&self) -> usize {
        self.n.first().map_or(0, |&top| (self.n.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
    }
}

/// PKCS#1 `RSAPublicKey` (SEQUENCE { modulus, publicExponent }): what a certificate's
/// SubjectPublicKeyInfo holds for an RSA key, and what ring's `RsaKeyPair::public` gives.
fn rsa_public_key(der: &[u8]) -> Option<RsaPublic<'_>> {
    let mut body = whole_sequence(der)?;
    let n = unsigned(take(&mut body, INTEGER)?)?;
    let e = unsigned(take(&mut body, INTEGER)?)?;
    body.is_empty().then_some(RsaPublic { n, e })
}

/// The public half of a PKCS#1 `RSAPrivateKey` (SEQUENCE { version, modulus, publicExponent, … }).
fn rsa_private_key_public(der: &[u8]) -> Option<RsaPublic<'_>> {
    let mut body = whole_sequence(der)?;
    take(&mut body, INTEGER)?;
    let n = unsigned(take(&mut body, INTEGER)?)?;
    let e = unsigned(take(&mut body, INTEGER)?)?;
    Some(RsaPublic { n, e })
}

/// The PKCS#1 key inside a PKCS#8 `PrivateKeyInfo` (SEQUENCE { version, AlgorithmIdentifier,
/// privateKey OCTET STRING, … }) whose algorithm is rsaEncryption; `None` for any other key.
fn pkcs8_rsa_key(der: &[u8]) -> Option<&[u8]> {
    let mut body = whole_sequence(der)?;
    take(&mut body, INTEGER)?;
    let mut algorithm = take(&mut body, SEQUENCE)?;
    if take(&mut algorithm, OID)? != RSA_ENCRYPTION_OID {
        return None;
    }
    take(&mut body, OCTET_STRING)
}

/// A private key as found in the PEM: its PKCS#1 DER (unwrapped from PKCS#8) and its size.
struct FoundKey {
    pkcs1: Vec<u8>,
    bits: usize,
}

impl FoundKey {
    fn new(pkcs1: &[u8]) -> Option<FoundKey> {
        let bits = rsa_private_key_public(pkcs1)?.bits();
        Some(FoundKey { pkcs1: pkcs1.to_vec(), bits })
    }
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
        let mut key: Option<FoundKey> = None;
        let mut certificates = Vec::new();
        for b in blocks {
            let found = match b.label.as_str() {
                "CERTIFICATE" => {
                    certificates.push(b.der);
                    continue;
                }
                "PRIVATE KEY" => pkcs8_rsa_key(&b.der)
                    .and_then(FoundKey::new)
                    .ok_or_else(|| config("the PRIVATE KEY block is not an RSA key in PKCS#8 form (Microsoft needs RSA)"))?,
                "RSA PRIVATE KEY" => FoundKey::new(&b.der).ok_or_else(|| config("the RSA PRIVATE KEY block is not a PKCS#1 RSA key"))?,
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
        if key.bits < MIN_RSA_BITS {
            return Err(config(format!("the RSA key has {} bits; Microsoft needs at least {MIN_RSA_BITS}", key.bits)));
        }
        if key.bits > MAX_RSA_BITS {
            return Err(config(format!("the RSA key has {} bits; at most {MAX_RSA_BITS} are supported", key.bits)));
        }
        // ring checks the key's components against each other, and takes only keys it signs safely with.
        let key_pair = RsaKeyPair::from_der(&key.pkcs1).map_err(|rejected| match rejected.to_string().as_str() {
            "InconsistentComponents" | "InvalidComponent" | "InvalidEncoding" => config("the RSA private key is inconsistent"),
            "VersionNotSupported" => config("the RSA private key has more than two primes; use a two-prime RSA key"),
            // A public exponent below 65537, or primes not a multiple of 512 bits long.
            other => config(format!(
                "the RSA private key cannot be used for signing ({other}); use a 2048, 3072 or 4096-bit key with public exponent 65537"
            )),
        })?;
        let public = rsa_public_key(key_pair.public().as_ref()).ok_or_else(|| config("the RSA private key is inconsistent"))?;
        let mut parsed = 0;
        for der in &certificates {
            let Ok(cert) = x509_cert::Certificate::from_der(der) else { continue };
            parsed += 1;
            let tbs = &cert.tbs_certificate;
            let spki = &tbs.subject_public_key_info;
            // Not an RSA certificate: cannot be this key's.
            if spki.algorithm.oid.as_bytes() != RSA_ENCRYPTION_OID {
                continue;
            }
            let Some(cert_key) = spki.subject_public_key.as_bytes().and_then(rsa_public_key) else { continue };
            if cert_key != public {
                continue;
            }
            let not_after = OffsetDateTime::UNIX_EPOCH
                + time::Duration::try_from(tbs.validity.not_after.to_unix_duration()).unwrap_or(time::Duration::ZERO);
            return Ok(CertificateCredential {
                thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
                subject: tbs.subject.to_string(),
                not_after,
                key_pair,
                rng: SystemRandom::new(),
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
    /// and `exp` five minutes later (§1.4). ring blinds the private-key operation with the system's
    /// random source.
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
        let mut signature = vec![0; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut signature)
            .map_err(|e| config(format!("signing the client assertion failed: {e}")))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m365_emulator::CertificateFixture;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rsa::signature::Verifier;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use rsa::{RsaPrivateKey, RsaPublicKey};
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

    /// A DER element: `tag`, its length (short or long form) and `contents`.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn key_der(key_pem: &str) -> Vec<u8> {
        let body: String = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        STANDARD.decode(body).unwrap()
    }

    #[test]
    fn the_der_walk_reads_rsa_keys_and_refuses_anything_else() {
        let (cert_pem, key_pem, _) = generated();
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
        let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
        // PKCS#8 → PKCS#1 → the public half, as the rsa crate sees the same key.
        let pkcs8 = key_der(key_pem);
        let pkcs1 = pkcs8_rsa_key(&pkcs8).unwrap();
        assert_eq!(pkcs1, key.to_pkcs1_der().unwrap().as_bytes());
        let public = rsa_private_key_public(pkcs1).unwrap();
        assert_eq!(public, RsaPublic { n: &n, e: &e });
        assert_eq!(public.bits(), 2048);
        // ring's public key and the certificate's SubjectPublicKeyInfo give the same modulus and exponent.
        let ring_key = RsaKeyPair::from_der(pkcs1).unwrap();
        assert_eq!(rsa_public_key(ring_key.public().as_ref()).unwrap(), public);
        let cert = x509_cert::Certificate::from_der(&key_der(cert_pem)).unwrap();
        let spki = &cert.tbs_certificate.subject_public_key_info;
        assert_eq!(spki.algorithm.oid.as_bytes(), RSA_ENCRYPTION_OID);
        assert_eq!(rsa_public_key(spki.subject_public_key.as_bytes().unwrap()).unwrap(), public);

        // Hand-built: leading zeros are not part of the value, long-form lengths are read.
        let rsa_public = |n: &[u8], e: &[u8]| tlv(SEQUENCE, &[tlv(INTEGER, n), tlv(INTEGER, e)].concat());
        let big = [&[0x00, 0x80][..], &[0x11; 300]].concat();
        let der = rsa_public(&big, &[0x01, 0x00, 0x01]);
        assert_eq!(rsa_public_key(&der), Some(RsaPublic { n: &big[1..], e: &[0x01, 0x00, 0x01] }));
        assert_eq!(RsaPublic { n: &big[1..], e: &[3] }.bits(), 301 * 8);
        assert_eq!(RsaPublic { n: &[0x01, 0xff], e: &[3] }.bits(), 9);
        // Negative integers, trailing bytes, truncation, a wrong tag and an indefinite length are refused.
        assert_eq!(rsa_public_key(&rsa_public(&[0x80, 0x01], &[0x03])), None);
        assert_eq!(rsa_public_key(&[rsa_public(&[0x7f], &[0x03]), vec![0]].concat()), None);
        assert_eq!(rsa_public_key(&der[..der.len() - 1]), None);
        assert_eq!(rsa_public_key(&tlv(0x31, &[tlv(INTEGER, &[1]), tlv(INTEGER, &[3])].concat())), None);
        assert_eq!(rsa_public_key(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00, 0x00]), None);
        assert_eq!(rsa_public_key(&[tlv(SEQUENCE, &[tlv(INTEGER, &[1]), tlv(INTEGER, &[3]), tlv(INTEGER, &[5])].concat())].concat()), None);
        assert_eq!(rsa_private_key_public(&tlv(SEQUENCE, &tlv(INTEGER, &[0]))), None);
        assert_eq!(der_element(&[]), None);
        assert_eq!(der_element(&[0x02, 0x85, 1, 0, 0, 0, 0]), None, "lengths past 4 bytes");

        // Hand-built PKCS#8: rsaEncryption gives the PKCS#1 key inside, another algorithm
        // (id-ecPublicKey, 1.2.840.10045.2.1) nothing.
        let wrap = |algorithm: Vec<u8>| tlv(SEQUENCE, &[tlv(INTEGER, &[0]), tlv(SEQUENCE, &algorithm), tlv(OCTET_STRING, pkcs1)].concat());
        let rsa = wrap([tlv(OID, RSA_ENCRYPTION_OID), vec![0x05, 0x00]].concat());
        assert_eq!(pkcs8_rsa_key(&rsa), Some(pkcs1));
        let ec = wrap(tlv(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
        assert_eq!(pkcs8_rsa_key(&ec), None);
        assert_eq!(pkcs8_rsa_key(pkcs1), None, "PKCS#1 is not PKCS#8");
    }

    #[test]
    fn keys_ring_cannot_sign_with_are_refused_with_the_reason() {
        let (cert_pem, key_pem, _) = generated();
        let msg = |key: &str| match CertificateCredential::from_pem(cert_pem, key) {
            Err(MicrosoftError::Config(m)) => m,
            other => panic!("expected a configuration error: {other:?}"),
        };
        let pem = |label: &str, der: &[u8]| format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(der));
        // The last byte of the CRT coefficient changed: the components no longer fit together.
        let mut pkcs1 = pkcs8_rsa_key(&key_der(key_pem)).unwrap().to_vec();
        if let Some(last) = pkcs1.last_mut() {
            *last ^= 0x01;
        }
        assert_eq!(msg(&pem("RSA PRIVATE KEY", &pkcs1)), "certificate credential: the RSA private key is inconsistent");
        // More than 4096 bits: refused before ring sees it.
        let n = [&[0x01][..], &[0xff; 512]].concat();
        let huge = tlv(SEQUENCE, &[tlv(INTEGER, &[0]), tlv(INTEGER, &n), tlv(INTEGER, &[1, 0, 1])].concat());
        assert_eq!(msg(&pem("RSA PRIVATE KEY", &huge)), "certificate credential: the RSA key has 4097 bits; at most 4096 are supported");
        // Public exponent 3: ring signs only with 65537 or more.
        let e3 = RsaPrivateKey::new_with_exp(&mut rsa::rand_core::OsRng, 2048, &rsa::BigUint::from(3u8)).unwrap();
        let e = msg(&e3.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap());
        assert!(e.contains("cannot be used for signing") && e.contains("exponent 65537"), "{e}");
    }
}
