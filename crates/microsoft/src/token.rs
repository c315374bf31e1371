//! The token endpoint (MICROSOFT.md §1.4, §1.5) and id_token verification against the tenant's
//! discovery document and keys (§1.6).

use crate::certificate::CLIENT_ASSERTION_TYPE;
use crate::config::{AppRegistration, ClientCredential, GRAPH_DEFAULT_SCOPE, Tenant};
use crate::error::{AadError, AadErrorBody, Grant, IdTokenError, MicrosoftError};
use crate::id_token::{Expected, Jwt, VerifiedIdentity, check_claims, rsa_key};
use crate::keys::Discovery;
use crate::{MicrosoftClient, graph};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A delegated token set. `refresh_token` is the **newest** one: persist it every time, Microsoft
/// rotates it on each refresh and the caller must keep the latest (§1.4). `None` means Microsoft sent
/// none (no `offline_access`); keep the one you have.
#[derive(Debug, Clone)]
pub struct UserTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: OffsetDateTime,
    /// The `scope` Microsoft granted, as sent (`https://graph.microsoft.com/Mail.Read`, `openid`, …).
    /// It may list earlier consents too, so compare as sets (§1.4).
    pub granted_scopes: Vec<String>,
}

impl UserTokens {
    /// True when the access token expires within `margin` (refresh before using it).
    pub fn expires_within(&self, margin: time::Duration) -> bool {
        self.expires_at - margin <= OffsetDateTime::now_utc()
    }
}

/// A completed sign-in: tokens plus the verified identity from the id_token.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub tokens: UserTokens,
    pub identity: VerifiedIdentity,
}

/// An app-only (client credentials) token. Graph access tokens are opaque to clients (§1.6), so the
/// granted application permissions (`roles`) are not read from it: a Graph call that needs a missing
/// role answers 403, which maps to `PermissionMissing`.
#[derive(Debug, Clone)]
pub struct AppToken {
    pub access_token: SecretString,
    pub expires_at: OffsetDateTime,
}

impl AppToken {
    /// True when the token expires within `margin` (ask for a new one; there is no refresh token).
    pub fn expires_within(&self, margin: time::Duration) -> bool {
        self.expires_at - margin <= OffsetDateTime::now_utc()
    }
}

/// The success body (§1.4); unknown fields (`ext_expires_in`, `client_info`, …) are ignored.
#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

impl TokenBody {
    fn expires_at(&self, now: OffsetDateTime) -> OffsetDateTime {
        // An integer per the v2 docs; v1-era answers sent it as a string, so accept both. Without
        // it, assume the documented hour minus a margin rather than "never expires".
        let secs = match &self.expires_in {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(3000);
        now + time::Duration::seconds(secs.max(0))
    }
}

impl MicrosoftClient {
    /// POSTs a form to `{authority}/{tenant}/oauth2/v2.0/token` with the app's credential in the
    /// body (§1.4): the secret (`client_secret_post`), or a client assertion signed with the
    /// certificate's key (`private_key_jwt`) whose `aud` is this very URL. A refused credential comes
    /// back as Microsoft's error like any other (AADSTS7000215 secret, AADSTS700027 assertion).
    async fn token_request(&self, app: &AppRegistration, grant: Grant, form: &[(&str, &str)]) -> Result<TokenBody, MicrosoftError> {
        let url = self.endpoints.login(&[app.tenant.as_str(), "oauth2", "v2.0", "token"])?;
        let assertion;
        let mut body: Vec<(&str, &str)> = vec![("client_id", app.client_id.as_str())];
        match &app.credential {
            ClientCredential::Secret(secret) => body.push(("client_secret", secret.expose_secret())),
            ClientCredential::Certificate(certificate) => {
                assertion = certificate.assertion(&app.client_id, url.as_str())?;
                body.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                body.push(("client_assertion", assertion.as_str()));
            }
        }
        body.extend_from_slice(form);
        let sent = self.http.post(url).header("Accept", "application/json").form(&body).send().await.map_err(MicrosoftError::transport)?;
        let status = sent.status().as_u16();
        let retry_after = graph::retry_after(sent.headers());
        let text = sent.text().await.map_err(MicrosoftError::transport)?;
        if status == 200 {
            let parsed: TokenBody = serde_json::from_str(&text).map_err(|e| MicrosoftError::Unexpected {
                message: format!("token response is not the documented JSON: {e}"),
                status: Some(status),
            })?;
            if parsed.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
                return Err(MicrosoftError::Unexpected { message: "token_type is not Bearer".into(), status: Some(status) });
            }
            return Ok(parsed);
        }
        match serde_json::from_str::<AadErrorBody>(&text) {
            Ok(b) if b.error.is_some() => {
                let e = AadError::from_body(status, b, grant, retry_after);
                tracing::info!(error = %e.error, codes = ?e.error_codes, trace_id = ?e.trace_id, correlation_id = ?e.correlation_id, reason = ?e.reason, "token request refused");
                Err(MicrosoftError::Rejected(Box::new(e)))
            }
            _ if status == 429 || status >= 500 => Err(MicrosoftError::Unavailable {
                message: format!("token endpoint answered HTTP {status}"),
                status: Some(status),
                retry_after,
            }),
            _ => Err(MicrosoftError::Unexpected {
                message: format!("token endpoint answered HTTP {status} without an OAuth error"),
                status: Some(status),
            }),
        }
    }

    /// Redeems the callback's code (single use, §1.4) with the PKCE verifier, then verifies the
    /// id_token: signature, issuer, audience, lifetime, `nonce` and tenant. The scope must have
    /// included `openid` and `profile`.
    #[tracing::instrument(skip_all, fields(tenant = %app.tenant))]
    pub async fn exchange_code(
        &self,
        app: &AppRegistration,
        code: &SecretString,
        redirect_uri: &str,
        pkce_verifier: &SecretString,
        expected_nonce: &str,
    ) -> Result<SignIn, MicrosoftError> {
        let now = OffsetDateTime::now_utc();
        let body = self
            .token_request(
                app,
                Grant::AuthorizationCode,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.expose_secret()),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", pkce_verifier.expose_secret()),
                ],
            )
            .await?;
        let id_token = body.id_token.as_deref().ok_or(IdTokenError::Missing)?;
        let identity = self.validate_id_token(app, id_token, Some(expected_nonce)).await?;
        Ok(SignIn { tokens: user_tokens(body, now), identity })
    }

    /// Trades a refresh token for new tokens. The answer carries a new refresh token; the old one
    /// stays valid at Microsoft but the newest must be stored (§1.4). `scope` may narrow the request
    /// to consented scopes of one resource; `None` repeats the original consent.
    #[tracing::instrument(skip_all, fields(tenant = %app.tenant))]
    pub async fn refresh(
        &self,
        app: &AppRegistration,
        refresh_token: &SecretString,
        scope: Option<&str>,
    ) -> Result<UserTokens, MicrosoftError> {
        let now = OffsetDateTime::now_utc();
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let body = self.token_request(app, Grant::RefreshToken, &form).await?;
        Ok(user_tokens(body, now))
    }

    /// An app-only token for Graph (`scope=https://graph.microsoft.com/.default`, §1.4). Also the
    /// settings page's "test token request": a wrong secret answers `ClientSecretInvalid`, an expired
    /// one `ClientSecretExpired`, a wrong client or tenant id `AppNotFound`; a certificate Microsoft
    /// does not accept (not registered, expired, another app's) answers `ClientSecretInvalid` too.
    #[tracing::instrument(skip_all, fields(tenant = %app.tenant))]
    pub async fn client_credentials(&self, app: &AppRegistration) -> Result<AppToken, MicrosoftError> {
        let now = OffsetDateTime::now_utc();
        let body = self
            .token_request(app, Grant::ClientCredentials, &[("grant_type", "client_credentials"), ("scope", GRAPH_DEFAULT_SCOPE)])
            .await?;
        Ok(AppToken { expires_at: body.expires_at(now), access_token: SecretString::from(body.access_token) })
    }

    async fn get_json(&self, url: &str) -> Result<Value, MicrosoftError> {
        let r = self.http.get(url).header("Accept", "application/json").send().await.map_err(MicrosoftError::transport)?;
        let status = r.status().as_u16();
        let retry_after = graph::retry_after(r.headers());
        let text = r.text().await.map_err(MicrosoftError::transport)?;
        if status == 200 {
            return serde_json::from_str(&text)
                .map_err(|e| MicrosoftError::Unexpected { message: format!("{url}: not JSON: {e}"), status: Some(status) });
        }
        match serde_json::from_str::<AadErrorBody>(&text) {
            // An unknown tenant answers an OAuth error (AADSTS90002) → AppNotFound.
            Ok(b) if b.error.is_some() => {
                Err(MicrosoftError::Rejected(Box::new(AadError::from_body(status, b, Grant::ClientCredentials, retry_after))))
            }
            _ if status == 429 || status >= 500 => {
                Err(MicrosoftError::Unavailable { message: format!("{url}: HTTP {status}"), status: Some(status), retry_after })
            }
            _ => Err(MicrosoftError::Unexpected { message: format!("{url}: HTTP {status}"), status: Some(status) }),
        }
    }

    /// The tenant's discovery document (cached a day).
    async fn discovery(&self, tenant: &Tenant) -> Result<Discovery, MicrosoftError> {
        if let Some(d) = self.keys.discovery(tenant.as_str()) {
            return Ok(d);
        }
        let url = self.endpoints.login(&[tenant.as_str(), "v2.0", ".well-known", "openid-configuration"])?;
        let doc = self.get_json(url.as_str()).await?;
        let field = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(issuer), Some(jwks_uri)) = (field("issuer"), field("jwks_uri")) else {
            return Err(MicrosoftError::Unexpected { message: "discovery document lacks issuer or jwks_uri".into(), status: Some(200) });
        };
        let d = Discovery { issuer, jwks_uri };
        self.keys.put_discovery(tenant.as_str(), d.clone());
        Ok(d)
    }

    /// The tenant id (GUID) of a configured tenant: itself, or a domain's id from its discovery
    /// issuer. `None` for `organizations`/`common`. Also checks that the tenant exists, which the
    /// settings page can use to validate the directory (tenant) id field.
    pub async fn resolve_tenant_id(&self, tenant: &Tenant) -> Result<Option<String>, MicrosoftError> {
        match tenant {
            Tenant::Id(id) => Ok(Some(id.clone())),
            Tenant::Any(_) => Ok(None),
            Tenant::Domain(_) => {
                let d = self.discovery(tenant).await?;
                d.tenant_id()
                    .map(Some)
                    .ok_or_else(|| MicrosoftError::Unexpected { message: "discovery issuer names no tenant id".into(), status: Some(200) })
            }
        }
    }

    async fn signing_key(&self, jwks_uri: &str, kid: &str) -> Result<crate::id_token::RsaPublicKey, MicrosoftError> {
        match self.keys.key(jwks_uri, kid) {
            Ok(k) => return Ok(k),
            Err(false) => return Err(IdTokenError::UnknownKey { kid: kid.to_string() }.into()),
            Err(true) => {}
        }
        let jwks = self.get_json(jwks_uri).await?;
        let keys: HashMap<_, _> =
            jwks.get("keys").and_then(Value::as_array).map(|a| a.iter().filter_map(rsa_key).collect()).unwrap_or_default();
        let found = keys.get(kid).cloned();
        self.keys.put_keys(jwks_uri, keys);
        found.ok_or_else(|| IdTokenError::UnknownKey { kid: kid.to_string() }.into())
    }

    /// Verifies an id_token for `app` (§1.6). `expected_nonce` is the one sent with the authorization
    /// request; `None` only where no nonce was sent.
    pub async fn validate_id_token(
        &self,
        app: &AppRegistration,
        id_token: &str,
        expected_nonce: Option<&str>,
    ) -> Result<VerifiedIdentity, MicrosoftError> {
        let jwt = Jwt::parse(id_token)?;
        jwt.check_alg()?;
        let kid = jwt.header.kid.clone().ok_or(IdTokenError::MissingClaim("kid"))?;
        let discovery = self.discovery(&app.tenant).await?;
        let key = self.signing_key(&discovery.jwks_uri, &kid).await?;
        let claims = jwt.verify(&key)?;
        let tenant_id = match &app.tenant {
            Tenant::Id(id) => Some(id.clone()),
            Tenant::Domain(_) => discovery.tenant_id(),
            Tenant::Any(_) => None,
        };
        let expected = Expected {
            client_id: &app.client_id,
            issuer_template: &discovery.issuer,
            tenant_id: tenant_id.as_deref(),
            nonce: expected_nonce,
            now: OffsetDateTime::now_utc().unix_timestamp(),
            leeway_secs: i64::try_from(self.leeway.as_secs()).unwrap_or(300),
        };
        let identity = check_claims(&claims, &expected).inspect_err(|e| tracing::warn!(error = %e, "id_token rejected"))?;
        Ok(identity)
    }
}

fn user_tokens(body: TokenBody, now: OffsetDateTime) -> UserTokens {
    UserTokens {
        expires_at: body.expires_at(now),
        granted_scopes: body.scope.as_deref().unwrap_or("").split_whitespace().map(str::to_string).collect(),
        refresh_token: body.refresh_token.map(SecretString::from),
        access_token: SecretString::from(body.access_token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_body_tolerates_extra_fields_and_string_expiry() {
        let b: TokenBody = serde_json::from_str(r#"{"token_type":"Bearer","scope":"openid https://graph.microsoft.com/Mail.Read","expires_in":"3599","ext_expires_in":3599,"access_token":"eyJ","refresh_token":"1.AX","id_token":"x","client_info":"e30"}"#).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(b.expires_at(now), now + time::Duration::seconds(3599));
        let t = user_tokens(b, now);
        assert!(t.expires_within(time::Duration::minutes(5)), "issued at the epoch: long expired");
        assert_eq!(t.granted_scopes, vec!["openid", "https://graph.microsoft.com/Mail.Read"]);
        assert!(t.refresh_token.is_some());
        let shown = format!("{t:?}");
        assert!(!shown.contains("eyJ") && !shown.contains("1.AX"), "{shown}");
        let minimal: TokenBody = serde_json::from_str(r#"{"access_token":"a","expires_in":3599}"#).unwrap();
        assert_eq!(minimal.expires_at(now), now + time::Duration::seconds(3599));
    }
}
