use super::*;

pub(super) fn redeem_code(
    shared: &Shared,
    pt: &PathTenant,
    app: &AppFixture,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Value, Aad> {
    let code = form
        .get("code")
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'code'."))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'redirect_uri'."))?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let g = idp
            .codes
            .get_mut(code)
            .ok_or_else(|| Aad::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."))?;
        if g.redeemed {
            return Err(Aad::new(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if now - g.created > Duration::seconds(shared.opts.code_lifetime_secs) {
            return Err(Aad::new(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(Aad::new(
                "invalid_grant",
                70000,
                "The provided value for the 'code' parameter is not valid. The code was issued to a different client.",
            ));
        }
        if let PathTenant::Tenant(i) = pt
            && shared.tenant(*i).is_some_and(|t| !t.id.eq_ignore_ascii_case(&g.tenant_id))
        {
            return Err(Aad::new(
                "invalid_grant",
                700005,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            ));
        }
        if &g.redirect_uri != redirect_uri {
            return Err(Aad::new(
                "invalid_grant",
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                    g.redirect_uri
                ),
            ));
        }
        if let Some((challenge, method)) = &g.challenge {
            let verifier = form.get("code_verifier").ok_or_else(|| {
                Aad::new(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
            })?;
            let computed = if method == "S256" { b64url(&Sha256::digest(verifier.as_bytes())) } else { verifier.clone() };
            if &computed != challenge {
                return Err(Aad::new(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
        }
        // Single use (§1.4): a second redemption answers AADSTS54005.
        g.redeemed = true;
        g.clone()
    };
    let user =
        shared.user(&grant.user_id).ok_or_else(|| Aad::new("invalid_grant", 50034, "The user account does not exist in the directory."))?;
    issue_tokens(shared, app, &user, &grant.requested, grant.nonce.as_deref(), grant.mfa, &grant.session, form, now, None)
}

pub(super) fn redeem_refresh(
    shared: &Shared,
    _pt: &PathTenant,
    app: &AppFixture,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Value, Aad> {
    let rt = form
        .get("refresh_token")
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'."))?;
    let grant = {
        let mut idp = lock(&shared.idp);
        let valid_from = idp.tokens_valid_from.clone();
        let g = idp
            .refresh
            .get_mut(rt)
            .ok_or_else(|| Aad::new("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."))?;
        if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(Aad::new("invalid_grant", 70000, "Provided grant is invalid or malformed."));
        }
        if let Some(from) = valid_from.get(&g.user_id.to_ascii_lowercase())
            && g.issued < *from
        {
            return Err(Aad::new(
                "invalid_grant",
                50173,
                format!(
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                    aad_timestamp(g.issued),
                    aad_timestamp(*from)
                ),
            ));
        }
        let idle = now - g.last_used;
        if idle > Duration::seconds(shared.opts.refresh_token_max_inactive_secs) {
            // Wording as observed: "...inactive for 90.00:00:00" (§1.4, [S28]).
            let secs = shared.opts.refresh_token_max_inactive_secs;
            let span = format!("{}.{:02}:{:02}:{:02}", secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
            return Err(Aad::new(
                "invalid_grant",
                700082,
                format!(
                    "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {span}.",
                    aad_timestamp(g.issued)
                ),
            )
            .sub("bad_token"));
        }
        // The old token stays valid (§1.4); using it counts as activity.
        g.last_used = now;
        g.clone()
    };
    let user =
        shared.user(&grant.user_id).ok_or_else(|| Aad::new("invalid_grant", 50034, "The user account does not exist in the directory."))?;
    if user.user.mfa_required && !grant.mfa {
        return Err(Aad::new("invalid_grant", 50076, format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'.")).sub("basic_action"));
    }
    let mut requested = grant.requested.clone();
    if let Some(scope) = form.get("scope") {
        let asked = scope_names(app, scope).map_err(|bad| {
            Aad::new(
                "invalid_scope",
                70011,
                format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."),
            )
        })?;
        // offline_access/openid are always re-granted; Graph scopes must have been consented.
        requested =
            asked.into_iter().chain(grant.requested.iter().filter(|s| catalogue::OIDC_SCOPES.contains(&s.as_str())).cloned()).collect();
    }
    // Everything asked for must (still) be consented: revoked or never-given consent → 65001.
    let flowlike = Flow {
        kind: FlowKind::Authorize,
        path_tenant: String::new(),
        client_id: app.client_id.clone(),
        redirect_uri: String::new(),
        state: None,
        response_mode: String::new(),
        scopes: requested.clone(),
        roles: BTreeSet::new(),
        nonce: None,
        challenge: None,
        prompt: None,
        login_hint: String::new(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::Consent,
        correlation: String::new(),
    };
    if !missing_consent(shared, &flowlike, &user).is_empty() {
        return Err(Aad::new("invalid_grant", 65001, format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.client_id, app.display_name)).sub("consent_required"));
    }
    let issued = grant.issued;
    issue_tokens(shared, app, &user, &requested, None, grant.mfa, &grant.session, form, now, Some(issued))
}
