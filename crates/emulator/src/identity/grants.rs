use super::*;

fn missing(name: &str) -> Aad {
    Aad::new("invalid_request", 900144, format!("The request body must contain the following parameter: '{name}'."))
}

fn malformed() -> Aad {
    Aad::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
}

fn grant_user(shared: &Shared, user_id: &str) -> Result<UserRef, Aad> {
    shared.user(user_id).ok_or_else(|| Aad::new("invalid_grant", 50034, "The user account does not exist in the directory."))
}

pub(super) fn redeem_code(r: TokenRequest) -> Result<Value, Aad> {
    let TokenRequest { shared, pt, app, form, now } = r;
    let code = form.get("code").ok_or_else(|| missing("code"))?;
    let redirect_uri = form.get("redirect_uri").ok_or_else(|| missing("redirect_uri"))?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let g = idp.codes.get_mut(code).ok_or_else(malformed)?;
        check_code(shared, pt, app, g, redirect_uri, now)?;
        if let Some((challenge, method)) = &g.challenge {
            check_verifier(form.get("code_verifier"), challenge, method)?;
        }
        // Single use (§1.4): a second redemption answers AADSTS54005.
        g.redeemed = true;
        g.clone()
    };
    let user = grant_user(shared, &grant.user_id)?;
    issue_tokens(shared, app, &user, &grant.requested, grant.nonce.as_deref(), grant.mfa, &grant.session, form, now, None)
}

/// A code is redeemed once, within its lifetime, by the client it was issued to, at its tenant, with
/// the redirect URI it was requested with (§1.4).
fn check_code(
    shared: &Shared,
    pt: &PathTenant,
    app: &AppFixture,
    g: &CodeGrant,
    redirect_uri: &str,
    now: OffsetDateTime,
) -> Result<(), Aad> {
    let invalid = |code: u32, msg: String| Err(Aad::new("invalid_grant", code, msg));
    if g.redeemed {
        let msg = "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.";
        return invalid(54005, msg.into());
    }
    if now - g.created > Duration::seconds(shared.opts.code_lifetime_secs) {
        let msg = "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.";
        return invalid(70008, msg.into());
    }
    if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
        return invalid(
            70000,
            "The provided value for the 'code' parameter is not valid. The code was issued to a different client.".into(),
        );
    }
    if let PathTenant::Tenant(i) = pt
        && shared.tenant(*i).is_some_and(|t| !t.id.eq_ignore_ascii_case(&g.tenant_id))
    {
        return invalid(700005, "Provided Authorization Code is intended to use against other tenant, thus rejected.".into());
    }
    if g.redirect_uri != redirect_uri {
        let msg = format!(
            "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
            g.redirect_uri
        );
        return invalid(500112, msg);
    }
    Ok(())
}

/// PKCE (§1.3): the verifier, hashed as the challenge method says, must be the challenge.
fn check_verifier(verifier: Option<&String>, challenge: &str, method: &str) -> Result<(), Aad> {
    let computed = verifier.map(|v| if method == "S256" { b64url(&Sha256::digest(v.as_bytes())) } else { v.clone() });
    if computed.as_deref() == Some(challenge) {
        return Ok(());
    }
    Err(Aad::new("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."))
}

pub(super) fn redeem_refresh(r: TokenRequest) -> Result<Value, Aad> {
    let TokenRequest { shared, app, form, now, .. } = r;
    let rt = form.get("refresh_token").ok_or_else(|| missing("refresh_token"))?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let valid_from = idp.tokens_valid_from.get(&rt_user(&idp, rt)).copied();
        let g = idp.refresh.get_mut(rt).ok_or_else(malformed)?;
        check_refresh(shared, app, g, valid_from, now)?;
        // The old token stays valid (§1.4); using it counts as activity.
        g.last_used = now;
        g.clone()
    };
    let user = grant_user(shared, &grant.user_id)?;
    if user.user.mfa_required && !grant.mfa {
        return Err(Aad::new("invalid_grant", 50076, format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'.")).sub("basic_action"));
    }
    let requested = refreshed_scopes(app, &grant, form.get("scope"))?;
    // Everything asked for must (still) be consented: revoked or never-given consent → 65001.
    if !missing_consent(shared, &app.client_id, &requested, &user).is_empty() {
        return Err(Aad::new("invalid_grant", 65001, not_consented(app)).sub("consent_required"));
    }
    issue_tokens(shared, app, &user, &requested, None, grant.mfa, &grant.session, form, now, Some(grant.issued))
}

/// The (lower-case) user a refresh token was issued to, for the revocation lookup.
fn rt_user(idp: &IdpState, rt: &str) -> String {
    idp.refresh.get(rt).map(|g| g.user_id.to_ascii_lowercase()).unwrap_or_default()
}

/// A refresh token works for its own client, until revoked (50173) or unused too long (700082, §1.4).
fn check_refresh(
    shared: &Shared,
    app: &AppFixture,
    g: &RefreshGrant,
    valid_from: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), Aad> {
    if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(Aad::new("invalid_grant", 70000, "Provided grant is invalid or malformed."));
    }
    if let Some(from) = valid_from
        && g.issued < from
    {
        let msg = format!(
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
            aad_timestamp(g.issued),
            aad_timestamp(from)
        );
        return Err(Aad::new("invalid_grant", 50173, msg));
    }
    let secs = shared.opts.refresh_token_max_inactive_secs;
    if now - g.last_used > Duration::seconds(secs) {
        // Wording as observed: "...inactive for 90.00:00:00" (§1.4, [S28]).
        let span = format!("{}.{:02}:{:02}:{:02}", secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
        let msg = format!(
            "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {span}.",
            aad_timestamp(g.issued)
        );
        return Err(Aad::new("invalid_grant", 700082, msg).sub("bad_token"));
    }
    Ok(())
}

/// The scopes of a refreshed token: the original ones, or those a `scope` parameter narrows to
/// (offline_access/openid always re-granted; Graph scopes must have been consented).
fn refreshed_scopes(app: &AppFixture, grant: &RefreshGrant, scope: Option<&String>) -> Result<BTreeSet<String>, Aad> {
    let Some(scope) = scope else {
        return Ok(grant.requested.clone());
    };
    let asked = scope_names(app, scope).map_err(|bad| {
        let msg = format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist.");
        Aad::new("invalid_scope", 70011, msg)
    })?;
    let oidc = grant.requested.iter().filter(|s| catalogue::OIDC_SCOPES.contains(&s.as_str())).cloned();
    Ok(asked.into_iter().chain(oidc).collect())
}
