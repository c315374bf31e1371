use super::*;

// ------------------------------------------------------------------ /authorize

pub(super) fn session_from(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').map(str::trim).find_map(|c| c.strip_prefix(&format!("{SESSION_COOKIE}=")).map(str::to_string))
}

pub(super) fn with_session_cookie(shared: &Shared, mut r: Response, session: &str) -> Response {
    // Browsers drop `SameSite=None` cookies without `Secure`; over plain HTTP, Lax still rides along on
    // the top-level navigation from the app to /authorize, which is all SSO needs.
    let attrs = if shared.base_url.starts_with("https://") { "SameSite=None; Secure" } else { "SameSite=Lax" };
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; {attrs}")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Validates redirect URIs exactly (§1.2); admin consent v1 also accepts extra path segments (§1.8).
pub(super) fn redirect_ok(app: &AppFixture, uri: &str, allow_extra_segments: bool) -> bool {
    app.redirect_uris.iter().any(|r| r == uri || (allow_extra_segments && uri.starts_with(&format!("{}/", r.trim_end_matches('/')))))
}

pub(super) fn scope_names(app: &AppFixture, raw: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for s in raw.split_whitespace() {
        match catalogue::parse_scope(s)? {
            Scope::Oidc(o) => {
                out.insert(o.to_string());
            }
            Scope::Graph(g) => {
                out.insert(g.to_string());
            }
            Scope::Default => {
                for p in &app.delegated_permissions {
                    if let Ok(Scope::Graph(g) | Scope::Oidc(g)) = catalogue::parse_scope(p) {
                        out.insert(g.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let (pt, app, mut flow) = match known_client(&shared, &tenant, &p, FlowKind::Authorize) {
        Ok(known) => known,
        Err(page) => return *page,
    };
    if let Some(refused) = check_request(&shared, &app, &pt, &p, &mut flow) {
        return refused;
    }
    // Existing session (SSO)?
    let session = session_user(&shared, &headers, &pt);
    let prompt = flow.prompt.clone().unwrap_or_default();
    if prompt == "none" {
        return silent(&shared, &app, flow, session);
    }
    let flow_id = random_token(18);
    let hint_matches = |u: &UserRef| flow.login_hint.is_empty() || flow.login_hint.eq_ignore_ascii_case(&u.user.user_principal_name);
    match session {
        Some((sid, s, user)) if prompt != "login" && hint_matches(&user) => {
            flow.session = Some(sid);
            flow.mfa_done = s.mfa;
            flow.user = Some(user.user.id.clone());
            if prompt == "select_account" {
                flow.step = Step::Pick;
                let page = pages::pick_account(&tenant, &flow_id, &user.user.display_name, &user.user.user_principal_name);
                lock(&shared.idp).flows.insert(flow_id, flow);
                return html(StatusCode::OK, page);
            }
            after_sign_in(&shared, flow_id, flow, &user)
        }
        _ => {
            let page = pages::sign_in(&tenant, &flow_id, &app.display_name, &flow.login_hint, None, false);
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
    }
}

/// The checks that end on Microsoft's own error page (nothing may be redirected yet): the tenant,
/// the app, and its exact redirect URI (admin consent v1 allows extra path segments, §1.8). On
/// success, the flow to carry through the pages. Shared by `/authorize` and admin consent.
pub(super) fn known_client(
    shared: &Shared,
    tenant: &str,
    p: &HashMap<String, String>,
    kind: FlowKind,
) -> Result<(PathTenant, AppFixture, Flow), Box<Response>> {
    let authorize = kind == FlowKind::Authorize;
    let correlation = p.get("client-request-id").filter(|_| authorize).cloned().unwrap_or_else(guid);
    let Some(pt) = path_tenant(shared, tenant) else {
        return Err(Box::new(error_page(shared, 90002, &tenant_not_found(tenant), &correlation)));
    };
    if kind == FlowKind::AdminConsentV2 && matches!(pt, PathTenant::Common | PathTenant::Consumers) {
        let msg = "Application is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.";
        return Err(Box::new(error_page(shared, 90130, msg, &correlation)));
    }
    let Some(client_id) = p.get("client_id") else {
        return Err(Box::new(error_page(
            shared,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            &correlation,
        )));
    };
    let Some(app) = shared.app(client_id) else {
        let mut msg = format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'.");
        if authorize {
            msg.push_str(" This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.");
        }
        return Err(Box::new(error_page(shared, 700016, &msg, &correlation)));
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    // Never redirect to an unregistered URI: that would make the emulator an open redirector (§1.2).
    if !redirect_ok(&app, &redirect_uri, kind == FlowKind::AdminConsentV1) {
        let msg = format!(
            "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
            app.client_id
        );
        return Err(Box::new(error_page(shared, 50011, &msg, &correlation)));
    }
    let param = |name: &str| p.get(name).filter(|_| authorize).cloned();
    let flow = Flow {
        kind,
        path_tenant: tenant.to_string(),
        client_id: app.client_id.clone(),
        redirect_uri,
        state: p.get("state").cloned(),
        response_mode: param("response_mode").unwrap_or_else(|| "query".to_string()),
        scopes: BTreeSet::new(),
        roles: BTreeSet::new(),
        nonce: param("nonce"),
        challenge: None,
        prompt: param("prompt"),
        login_hint: param("login_hint").unwrap_or_default(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::SignIn,
        correlation,
    };
    Ok((pt, app, flow))
}

/// The signed-in user of the browser's SSO session, if the tenant of the request lets them in.
pub(super) fn session_user(shared: &Shared, headers: &HeaderMap, pt: &PathTenant) -> Option<(String, Session, UserRef)> {
    let sid = session_from(headers)?;
    let s = lock(&shared.idp).sessions.get(&sid).cloned()?;
    let user = shared.user(&s.user_id).filter(|u| tenant_allows(pt, u))?;
    Some((sid, s, user))
}

/// The checks answered by a redirect to the client: response mode and type, tenant kind, scope and
/// PKCE challenge. Fills in the flow's scopes and challenge.
fn check_request(shared: &Shared, app: &AppFixture, pt: &PathTenant, p: &HashMap<String, String>, flow: &mut Flow) -> Option<Response> {
    let fail = |flow: &Flow, error: &str, code: u32, msg: &str| Some(error_redirect(shared, flow, error, code, msg, None));
    if !matches!(flow.response_mode.as_str(), "query" | "fragment" | "form_post") {
        flow.response_mode = "query".into();
        return fail(flow, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid.");
    }
    if !app.multi_tenant && matches!(pt, PathTenant::Common | PathTenant::Organizations) {
        let msg = format!(
            "Application '{}'({}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
            app.client_id, app.display_name
        );
        return fail(flow, "invalid_request", 50194, &msg);
    }
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return fail(flow, "invalid_request", 900144, "The request body must contain the following parameter: 'response_type'."),
        Some(other) => {
            return fail(
                flow,
                "unsupported_response_type",
                700054,
                &format!("response_type '{other}' is not enabled for the application."),
            );
        }
    }
    let Some(raw_scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
        return fail(flow, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
    };
    flow.scopes = match scope_names(app, raw_scope) {
        Ok(s) => s,
        Err(bad) => {
            let msg = format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist.");
            return fail(flow, "invalid_scope", 70011, &msg);
        }
    };
    if let Some(ch) = p.get("code_challenge") {
        if !(43..=128).contains(&ch.len()) {
            return fail(flow, "invalid_request", 501491, "Invalid size of Code_Challenge parameter.");
        }
        let method = p.get("code_challenge_method").cloned().unwrap_or_else(|| "plain".to_string());
        if method != "S256" && method != "plain" {
            return fail(flow, "invalid_request", 501481, &format!("The code_challenge_method '{method}' is not supported."));
        }
        flow.challenge = Some((ch.clone(), method));
    }
    if *pt == PathTenant::Consumers {
        let msg = "Application is configured for use by Microsoft Account users only. Personal Microsoft accounts are not emulated.";
        return fail(flow, "invalid_request", 9002331, msg);
    }
    None
}

/// `prompt=none`: a code straight away from the SSO session, or the error saying why not.
fn silent(shared: &Shared, app: &AppFixture, mut flow: Flow, session: Option<(String, Session, UserRef)>) -> Response {
    let Some((sid, s, user)) = session else {
        return error_redirect(shared, &flow, "login_required", 50058, "A silent sign-in request was sent but no user is signed in.", None);
    };
    flow.session = Some(sid);
    flow.mfa_done = s.mfa;
    flow.user = Some(user.user.id.clone());
    if user.user.mfa_required && !flow.mfa_done {
        let msg = format!(
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{GRAPH_APP_ID}'."
        );
        return error_redirect(shared, &flow, "interaction_required", 50076, &msg, None);
    }
    if !missing_consent(shared, &flow.client_id, &flow.scopes, &user).is_empty() {
        return error_redirect(shared, &flow, "consent_required", 65001, &not_consented(app), None);
    }
    issue_code(shared, flow, &user)
}

pub(super) fn tenant_allows(pt: &PathTenant, u: &UserRef) -> bool {
    match pt {
        PathTenant::Tenant(i) => *i == u.tenant_index,
        PathTenant::Consumers => false,
        // `organizations` is for work and school accounts only; `common` takes personal ones too.
        PathTenant::Organizations => !u.tenant_id.eq_ignore_ascii_case(crate::PERSONAL_ACCOUNTS_TENANT_ID),
        PathTenant::Common => true,
    }
}

/// AADSTS65001's description.
pub(super) fn not_consented(app: &AppFixture) -> String {
    format!(
        "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
        app.client_id, app.display_name
    )
}

/// Requested scopes neither the user nor an admin (tenant-wide) has consented to.
pub(super) fn missing_consent(shared: &Shared, client_id: &str, scopes: &BTreeSet<String>, user: &UserRef) -> BTreeSet<String> {
    let idp = lock(&shared.idp);
    let key = (user.tenant_id.to_ascii_lowercase(), user.user.id.to_ascii_lowercase(), client_id.to_ascii_lowercase());
    let mine = idp.consents.get(&key);
    let org = idp.admin_grants.get(&(user.tenant_id.to_ascii_lowercase(), client_id.to_ascii_lowercase()));
    scopes
        .iter()
        // A tenant-wide grant implies the sign-in (OIDC) scopes: an admin consented to the app as a whole.
        .filter(|s| {
            !mine.is_some_and(|m| m.contains(*s))
                && !org.is_some_and(|o| o.delegated.contains(*s) || catalogue::OIDC_SCOPES.contains(&s.as_str()))
        })
        .cloned()
        .collect()
}

/// Next step once the user is known (and has passed MFA if needed).
pub(super) fn after_sign_in(shared: &Shared, flow_id: String, mut flow: Flow, user: &UserRef) -> Response {
    let Some(app) = shared.app(&flow.client_id) else {
        return error_page(shared, 700016, "Application not found.", &flow.correlation);
    };
    if user.user.mfa_required && !flow.mfa_done {
        flow.step = Step::Mfa;
        let page = pages::mfa(&flow.path_tenant, &flow_id, &user.user.user_principal_name, None);
        lock(&shared.idp).flows.insert(flow_id, flow);
        return html(StatusCode::OK, page);
    }
    if flow.kind != FlowKind::Authorize {
        return admin_consent_step(shared, flow_id, flow, user, &app);
    }
    if !app.multi_tenant && !app.home_tenant.eq_ignore_ascii_case(&user.tenant_id) {
        return error_redirect(
            shared,
            &flow,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                app.client_id, user.tenant_id
            ),
            None,
        );
    }
    let missing = missing_consent(shared, &flow.client_id, &flow.scopes, user);
    if missing.is_empty() && flow.prompt.as_deref() != Some("consent") {
        return issue_code(shared, flow, user);
    }
    let users_may_consent = shared.tenant(user.tenant_index).map(|t| t.users_may_consent).unwrap_or(false);
    let admin_only = missing.iter().any(|s| catalogue::delegated(s).is_some_and(|p| p.admin_only));
    if (!users_may_consent || admin_only) && !user.user.admin {
        return need_approval(shared, flow_id, flow, &app, user);
    }
    // With prompt=consent everything requested is shown again; otherwise only what is new.
    let shown: Vec<&String> = if missing.is_empty() { flow.scopes.iter().collect() } else { missing.iter().collect() };
    let permissions =
        shown.iter().filter_map(|s| catalogue::delegated(s)).map(|p| (p.user_title.to_string(), p.user_description.to_string())).collect();
    consent_page(shared, flow_id, flow, (&app, user), permissions, false)
}

/// Shows a page of the flow, which waits at `step` for the page's form.
fn show(shared: &Shared, flow_id: String, mut flow: Flow, step: Step, page: String) -> Response {
    flow.step = step;
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

/// "Need admin approval": the user may not consent (tenant policy, admin-only permission, admin consent).
pub(super) fn need_approval(shared: &Shared, flow_id: String, flow: Flow, app: &AppFixture, user: &UserRef) -> Response {
    let page = pages::need_admin_approval(&flow.path_tenant, &flow_id, &app.display_name, &user.user.user_principal_name);
    show(shared, flow_id, flow, Step::NeedApproval, page)
}

/// The consent page: a user's own consent (admins may tick "on behalf of your organization"), or with
/// `admin_consent` the tenant-wide grant of the admin consent endpoints (§1.7, §1.8).
pub(super) fn consent_page(
    shared: &Shared,
    flow_id: String,
    flow: Flow,
    (app, user): (&AppFixture, &UserRef),
    permissions: Vec<(String, String)>,
    admin_consent: bool,
) -> Response {
    let page = pages::consent(&pages::ConsentView {
        tenant: &flow.path_tenant,
        flow: &flow_id,
        app_name: &app.display_name,
        publisher: app.publisher.as_deref(),
        upn: &user.user.user_principal_name,
        permissions,
        org_checkbox: !admin_consent && user.user.admin,
        for_organization: admin_consent,
    });
    show(shared, flow_id, flow, if admin_consent { Step::AdminConsent } else { Step::Consent }, page)
}

pub(super) fn issue_code(shared: &Shared, flow: Flow, user: &UserRef) -> Response {
    let code = format!("1.A{}", random_token(96));
    let session = flow.session.clone().unwrap_or_else(guid);
    lock(&shared.idp).codes.insert(
        code.clone(),
        CodeGrant {
            client_id: flow.client_id.clone(),
            tenant_id: user.tenant_id.clone(),
            user_id: user.user.id.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            requested: flow.scopes.clone(),
            nonce: flow.nonce.clone(),
            challenge: flow.challenge.clone(),
            created: shared.now(),
            redeemed: false,
            mfa: flow.mfa_done,
            session: session.clone(),
        },
    );
    let mut params = vec![("code", code)];
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    // Entra sends session_state beside code and state (OBS, §1.3).
    params.push(("session_state", session));
    to_client(&flow.redirect_uri, &flow.response_mode, &params)
}
