use super::*;

/// The token response of a user sign-in (authorization code or refresh token grant).
#[allow(clippy::too_many_arguments)]
pub(super) fn issue_tokens(
    shared: &Shared,
    app: &AppFixture,
    user: &UserRef,
    requested: &BTreeSet<String>,
    nonce: Option<&str>,
    mfa: bool,
    session: &str,
    form: &HashMap<String, String>,
    now: OffsetDateTime,
    rt_issued: Option<OffsetDateTime>,
) -> Result<Value, Aad> {
    let scp = consented_scopes(shared, app, user);
    let lifetime = access_token_lifetime(shared);
    let exp = now + Duration::seconds(lifetime);
    let access = user_access_token(shared, app, user, &scp, now, exp);
    let mut out = serde_json::Map::new();
    out.insert("token_type".into(), json!("Bearer"));
    out.insert("scope".into(), json!(scope_field(shared, requested, &scp)));
    out.insert("expires_in".into(), json!(lifetime));
    out.insert("ext_expires_in".into(), json!(lifetime));
    out.insert("access_token".into(), json!(access));
    if requested.contains("offline_access") {
        let rt = format!("1.AX{}", random_token(180));
        lock(&shared.idp).refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                user_id: user.user.id.clone(),
                requested: requested.clone(),
                // A rotated refresh token keeps the original grant instant: revocation compares to it.
                issued: rt_issued.unwrap_or(now),
                last_used: now,
                mfa,
                session: session.to_string(),
            },
        );
        out.insert("refresh_token".into(), json!(rt));
    }
    if requested.contains("openid") {
        let claims = id_token_claims(shared, app, user, requested, (nonce, session), (now, exp));
        out.insert("id_token".into(), json!(shared.keys.sign(&claims)));
    }
    if form.get("client_info").map(String::as_str) == Some("1") {
        // MSAL asks for client_info to build its account key (uid.utid).
        let info = json!({"uid": user.user.id, "utid": user.tenant_id}).to_string();
        out.insert("client_info".into(), json!(b64url(info.as_bytes())));
    }
    Ok(Value::Object(out))
}

/// `expires_in` of a new access token: fixed, or varying within the configured jitter (§7).
pub(super) fn access_token_lifetime(shared: &Shared) -> i64 {
    let base = shared.opts.access_token_lifetime_secs;
    match shared.opts.access_token_lifetime_jitter_secs {
        j if j > 0 => base + rand::random_range(0..=j),
        _ => base,
    }
}

/// The access token carries every Graph scope consented for this app (user + tenant-wide), as Entra does.
fn consented_scopes(shared: &Shared, app: &AppFixture, user: &UserRef) -> BTreeSet<String> {
    let idp = lock(&shared.idp);
    let key = (user.tenant_id.to_ascii_lowercase(), user.user.id.to_ascii_lowercase(), app.client_id.to_ascii_lowercase());
    let mut s: BTreeSet<String> = idp.consents.get(&key).cloned().unwrap_or_default();
    if let Some(g) = idp.admin_grants.get(&(user.tenant_id.to_ascii_lowercase(), app.client_id.to_ascii_lowercase())) {
        s.extend(g.delegated.iter().cloned());
    }
    s.retain(|x| !catalogue::OIDC_SCOPES.contains(&x.as_str()));
    s
}

/// The response's `scope`: the OIDC scopes asked for and the Graph scopes granted, as full URIs
/// (`openid https://graph.microsoft.com/User.Read`) or short names (`User.Read profile openid email`).
fn scope_field(shared: &Shared, requested: &BTreeSet<String>, scp: &BTreeSet<String>) -> String {
    let oidc = ["openid", "profile", "email"].into_iter().filter(|s| requested.contains(*s)).map(str::to_string);
    let out: Vec<String> = if shared.opts.short_scope_names {
        scp.iter().cloned().chain(oidc.rev()).collect()
    } else {
        let mut v: Vec<String> = requested.iter().filter(|s| ["openid", "profile", "email"].contains(&s.as_str())).cloned().collect();
        v.extend(scp.iter().map(|s| format!("{GRAPH_RESOURCE}/{s}")));
        v
    };
    out.join(" ")
}

fn user_access_token(
    shared: &Shared,
    app: &AppFixture,
    user: &UserRef,
    scp: &BTreeSet<String>,
    now: OffsetDateTime,
    exp: OffsetDateTime,
) -> String {
    let claims = json!({
        "idtyp": "user",
        "name": user.user.display_name,
        "oid": user.user.id,
        "scp": scp.iter().cloned().collect::<Vec<_>>().join(" "),
        "sub": pairwise(&user.user.id, GRAPH_APP_ID),
        "unique_name": user.user.user_principal_name,
        "upn": user.user.user_principal_name,
    });
    let grant = AccessGrant {
        tenant_id: user.tenant_id.clone(),
        client_id: app.client_id.clone(),
        user_id: Some(user.user.id.clone()),
        scopes: scp.clone(),
        roles: BTreeSet::new(),
        expires: exp,
    };
    graph_access_token(shared, app, claims, grant, now)
}

/// Signs a Graph access token (the claims every one carries, then `claims`) and remembers its grant.
pub(super) fn graph_access_token(shared: &Shared, app: &AppFixture, claims: Value, grant: AccessGrant, now: OffsetDateTime) -> String {
    let mut all = json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", grant.tenant_id),
        "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": grant.expires.unix_timestamp(),
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "tid": grant.tenant_id,
        "uti": random_token(16),
        "ver": "1.0",
    });
    if let (Value::Object(all), Value::Object(extra)) = (&mut all, claims) {
        all.extend(extra);
    }
    let access = shared.keys.sign(&all);
    lock(&shared.idp).remember_access_token(shared.now(), access.clone(), grant);
    access
}

fn id_token_claims(
    shared: &Shared,
    app: &AppFixture,
    user: &UserRef,
    requested: &BTreeSet<String>,
    (nonce, session): (Option<&str>, &str),
    (now, exp): (OffsetDateTime, OffsetDateTime),
) -> Value {
    let mut claims = json!({
        "aud": app.client_id,
        "iss": format!("{}/{}/v2.0", shared.base_url, user.tenant_id),
        "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": exp.unix_timestamp(),
        "aio": random_token(24),
        "rh": format!("0.{}", random_token(24)),
        "sid": session,
        "sub": pairwise(&user.user.id, &app.client_id),
        "tid": user.tenant_id,
        "uti": random_token(16),
        "ver": "2.0",
    });
    if requested.contains("profile") {
        claims["oid"] = json!(user.user.id);
        claims["name"] = json!(user.user.display_name);
        claims["preferred_username"] = json!(user.user.user_principal_name);
    }
    if requested.contains("email") {
        claims["email"] = json!(user.user.user_principal_name);
    }
    if let Some(home) = &user.user.home_tenant {
        // A guest: this directory's `tid`, the home tenant as identity provider (Entra's B2B tokens).
        claims["idp"] = json!(format!("https://sts.windows.net/{home}/"));
        claims["acct"] = json!(1);
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    claims
}

pub(super) fn pairwise(oid: &str, client: &str) -> String {
    b64url(&Sha256::digest(format!("{oid}|{client}").as_bytes()))
}
