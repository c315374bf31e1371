use super::*;

pub(super) async fn logout(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    if let Some(sid) = session_from(&headers) {
        lock(&shared.idp).sessions.remove(&sid);
    }
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let mut r = match p.get("post_logout_redirect_uri") {
        Some(uri) => to_client(uri, "query", &[]),
        None => html(StatusCode::OK, pages::signed_out()),
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; Max-Age=0")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(loc) = r.headers().get(header::LOCATION).cloned() {
        // No parameters were added: strip a dangling '?'.
        if let Ok(s) = loc.to_str()
            && let Ok(v) = HeaderValue::from_str(s.trim_end_matches('?'))
        {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    r
}

// ------------------------------------------------------------------ token endpoint

pub(super) async fn token(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let correlation = correlation_of(&headers);
    let route = "POST /{tenant}/oauth2/v2.0/token";
    if let Some(fault) = crate::registry::take_fault(&shared, "POST", &format!("/{tenant}/oauth2/v2.0/token"), None) {
        if let Some(ms) = fault.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if let Some(status) = fault.status {
            let error = if status == 503 || status == 429 { "temporarily_unavailable" } else { "server_error" };
            let mut r = aad_json(
                &shared,
                &Aad::new(error, 90033, "A transient error has occurred. Please try again.").status(status),
                &correlation,
            );
            if let Some(ra) = fault.retry_after
                && let Ok(v) = HeaderValue::from_str(&fault.retry_after_header(ra))
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            crate::registry::count(&shared, route, status, None);
            return r;
        }
    }
    let r = match token_inner(&shared, &tenant, &headers, &body, &correlation) {
        Ok(v) => json_response(StatusCode::OK, v.to_string(), &[("client-request-id", correlation.clone())]),
        Err(e) => aad_json(&shared, &e, &correlation),
    };
    crate::registry::count(&shared, route, r.status().as_u16(), None);
    r
}

pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let dec = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    Some((dec(id), dec(secret)))
}

pub(super) fn token_inner(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8], _correlation: &str) -> Result<Value, Aad> {
    let form = parse_qs(&String::from_utf8_lossy(body));
    let pt = path_tenant(shared, tenant).ok_or_else(|| Aad::new("invalid_request", 90002, tenant_not_found(tenant)))?;
    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."))?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."))?;
    if !matches!(grant_type.as_str(), "authorization_code" | "refresh_token" | "client_credentials") {
        return Err(Aad::new("unsupported_grant_type", 70003, format!("The app requested an unsupported grant type '{grant_type}'.")));
    }
    let tenant_label = match &pt {
        PathTenant::Tenant(i) => shared.tenant(*i).map(|t| t.id).unwrap_or_default(),
        _ => tenant.to_string(),
    };
    let app = shared.app(&client_id).ok_or_else(|| {
        Aad::new("unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant_label}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."))
    })?;
    // Client authentication: secret in the body or HTTP Basic (§1.4).
    let invalid_client = shared.opts.invalid_client_status;
    let secret = form.get("client_secret").cloned().or_else(|| basic.map(|b| b.1));
    if let Some(assertion) = form.get("client_assertion") {
        verify_client_assertion(shared, &app, form.get("client_assertion_type").map(String::as_str), assertion)
            .map_err(|e| e.status(invalid_client))?;
        return redeem(grant_type, TokenRequest { shared, pt: &pt, app: &app, form: &form, now: shared.now() });
    }
    let Some(secret) = secret else {
        return Err(Aad::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
        .status(invalid_client));
    };
    let now = shared.now();
    match app.secrets.iter().find(|s| s.value == secret) {
        None => {
            return Err(Aad::new("invalid_client", 7000215, format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id)).status(invalid_client));
        }
        Some(s) => {
            let expires =
                OffsetDateTime::parse(&s.expires, &time::format_description::well_known::Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            if expires <= now {
                return Err(Aad::new("invalid_client", 7000222, format!("The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.client_id)).status(invalid_client));
            }
        }
    }
    redeem(grant_type, TokenRequest { shared, pt: &pt, app: &app, form: &form, now })
}

/// One authenticated token request, as each grant type's handler sees it.
#[derive(Clone, Copy)]
pub(super) struct TokenRequest<'a> {
    pub shared: &'a Shared,
    pub pt: &'a PathTenant,
    pub app: &'a AppFixture,
    pub form: &'a HashMap<String, String>,
    pub now: OffsetDateTime,
}

/// The grant type's handler (`grant_type` was checked before the client authenticated).
fn redeem(grant_type: &str, r: TokenRequest) -> Result<Value, Aad> {
    match grant_type {
        "authorization_code" => redeem_code(r),
        "refresh_token" => redeem_refresh(r),
        _ => client_credentials(r),
    }
}

pub(super) fn client_credentials(r: TokenRequest) -> Result<Value, Aad> {
    let TokenRequest { shared, pt, app, form, now } = r;
    let PathTenant::Tenant(ti) = pt else {
        return Err(Aad::new(
            "invalid_request",
            9001023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    };
    let tenant = shared.tenant(*ti).ok_or_else(|| Aad::new("invalid_request", 90002, tenant_not_found("?")))?;
    let scope = form
        .get("scope")
        .ok_or_else(|| Aad::new("invalid_request", 900144, "The request body must contain the following parameter: 'scope'."))?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    // Exactly one resource with the /.default suffix (§1.4).
    if scopes.len() != 1 || !matches!(catalogue::parse_scope(scopes[0]), Ok(Scope::Default)) {
        return Err(Aad::new(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    let key = (tenant.id.to_ascii_lowercase(), app.client_id.to_ascii_lowercase());
    let (grant, installed) = {
        let idp = lock(&shared.idp);
        (idp.admin_grants.get(&key).cloned(), idp.service_principals.contains(&key))
    };
    let home = app.home_tenant.eq_ignore_ascii_case(&tenant.id);
    // A service principal (any consent in the tenant) lets the app get a token; without granted
    // application permissions it simply has no `roles`.
    if grant.is_none() && !installed && !home {
        return Err(Aad::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                app.client_id, tenant.display_name
            ),
        ));
    }
    let roles = grant.map(|g| g.roles).unwrap_or_default();
    let lifetime = access_token_lifetime(shared);
    let exp = now + Duration::seconds(lifetime);
    let mut claims = json!({
        "idtyp": "app",
        "oid": pairwise(&app.client_id, &tenant.id),
        "sub": pairwise(&app.client_id, &tenant.id),
    });
    // Without granted application permissions the token simply has no `roles` (§1.4, Graph then 403s).
    if !roles.is_empty() {
        claims["roles"] = json!(roles.iter().cloned().collect::<Vec<_>>());
    }
    let grant = AccessGrant {
        tenant_id: tenant.id.clone(),
        client_id: app.client_id.clone(),
        user_id: None,
        scopes: BTreeSet::new(),
        roles,
        expires: exp,
    };
    let access = graph_access_token(shared, app, claims, grant, now);
    Ok(json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}))
}
