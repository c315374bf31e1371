//! The signing key (RSA 2048, generated at start) and JWT minting (RS256, MICROSOFT.md §1.6).

use crate::util::b64url;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) struct Keys {
    signer: SigningKey<Sha256>,
    pub kid: String,
    n: String,
    e: String,
}

impl Keys {
    pub(crate) fn generate() -> Result<Keys, String> {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| e.to_string())?;
        let public = key.to_public_key();
        let n_bytes = public.n().to_bytes_be();
        let n = b64url(&n_bytes);
        let e = b64url(&public.e().to_bytes_be());
        // Entra's kids look like base64 thumbprints; a hash of the modulus gives a stable, unique one.
        let kid = b64url(&Sha256::digest(&n_bytes)[..20]);
        Ok(Keys { signer: SigningKey::<Sha256>::new(key), kid, n, e })
    }

    /// `header.payload.signature` with `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let sig = self.signer.sign(input.as_bytes());
        format!("{input}.{}", b64url(&sig.to_bytes()))
    }

    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        json!({"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "n": self.n, "e": self.e, "issuer": issuer}]})
    }
}

/// The published signing keys: the current one signs; after a roll the previous one may stay in the JWKS
/// for a while, as Entra does during key rollover.
pub(crate) struct KeyRing {
    current: std::sync::RwLock<std::sync::Arc<Keys>>,
    previous: std::sync::RwLock<Option<std::sync::Arc<Keys>>>,
}

impl KeyRing {
    pub(crate) fn generate() -> Result<KeyRing, String> {
        Ok(KeyRing { current: std::sync::RwLock::new(std::sync::Arc::new(Keys::generate()?)), previous: std::sync::RwLock::new(None) })
    }

    fn current(&self) -> std::sync::Arc<Keys> {
        crate::read(&self.current).clone()
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.current().sign(claims)
    }

    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        let mut set = self.current().jwks(issuer);
        let previous = crate::read(&self.previous).clone();
        if let (Some(prev), Some(keys)) = (previous, set.get_mut("keys").and_then(Value::as_array_mut))
            && let Some(k) = prev.jwks(issuer).get("keys").and_then(|k| k.get(0)).cloned()
        {
            keys.push(k);
        }
        set
    }

    /// A new signing key; the old one stays published only if `keep_previous`. Returns the new `kid`.
    pub(crate) fn rotate(&self, keep_previous: bool) -> Result<String, String> {
        let fresh = std::sync::Arc::new(Keys::generate()?);
        let kid = fresh.kid.clone();
        let old = std::mem::replace(&mut *crate::write(&self.current), fresh);
        *crate::write(&self.previous) = if keep_previous { Some(old) } else { None };
        Ok(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    #[test]
    fn tokens_verify_against_the_published_key() {
        let k = Keys::generate().unwrap();
        let jwt = k.sign(&json!({"sub": "x"}));
        let parts: Vec<&str> = jwt.split('.').collect();
        let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
        let jwks = k.jwks("iss");
        let n = rsa::BigUint::from_bytes_be(&dec(jwks["keys"][0]["n"].as_str().unwrap()));
        let e = rsa::BigUint::from_bytes_be(&dec(jwks["keys"][0]["e"].as_str().unwrap()));
        let vk = VerifyingKey::<Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
        let sig = Signature::try_from(dec(parts[2]).as_slice()).unwrap();
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();
        let header: Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
    }
}
