use super::*;

// ------------------------------------------------------------------ admin consent

pub(super) async fn admin_consent_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    admin_consent(shared, tenant, q, headers, FlowKind::AdminConsentV1).await
}

pub(super) async fn admin_consent_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    admin_consent(shared, tenant, q, headers, FlowKind::AdminConsentV2).await
}

pub(super) async fn admin_consent(shared: Arc<Shared>, tenant: String, q: Option<String>, headers: HeaderMap, kind: FlowKind) -> Response {
    let p = parse_qs(q.as_deref().unwrap_or(""));
    let correlation = guid();
    let Some(pt) = path_tenant(&shared, &tenant) else {
        return error_page(&shared, 90002, &tenant_not_found(&tenant), &correlation);
    };
    if kind == FlowKind::AdminConsentV2 && matches!(pt, PathTenant::Common | PathTenant::Consumers) {
        return error_page(
            &shared,
            90130,
            "Application is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            &correlation,
        );
    }
    let Some(client_id) = p.get("client_id") else {
        return error_page(&shared, 900144, "The request body must contain the following parameter: 'client_id'.", &correlation);
    };
    let Some(app) = shared.app(client_id) else {
        return error_page(
            &shared,
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            &correlation,
        );
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    if !redirect_ok(&app, &redirect_uri, kind == FlowKind::AdminConsentV1) {
        return error_page(
            &shared,
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                app.client_id
            ),
            &correlation,
        );
    }
    let mut flow = Flow {
        kind,
        path_tenant: tenant.clone(),
        client_id: app.client_id.clone(),
        redirect_uri,
        state: p.get("state").cloned(),
        response_mode: "query".into(),
        scopes: BTreeSet::new(),
        roles: BTreeSet::new(),
        nonce: None,
        challenge: None,
        prompt: None,
        login_hint: String::new(),
        user: None,
        session: None,
        mfa_done: false,
        step: Step::SignIn,
        correlation,
    };
    let all_static = |flow: &mut Flow| {
        for s in &app.delegated_permissions {
            if let Ok(Scope::Graph(g) | Scope::Oidc(g)) = catalogue::parse_scope(s) {
                flow.scopes.insert(g.to_string());
            }
        }
        for r in &app.application_permissions {
            if let Some(perm) = catalogue::application(r) {
                flow.roles.insert(perm.name.to_string());
            }
        }
    };
    if kind == FlowKind::AdminConsentV1 {
        all_static(&mut flow);
    } else {
        let Some(scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
            return admin_consent_error(&shared, &flow, None, 900144, "The request body must contain the following parameter: 'scope'.");
        };
        for s in scope.split_whitespace() {
            match catalogue::parse_scope(s) {
                // App permissions can only be requested through /.default (§1.8).
                Ok(Scope::Default) => all_static(&mut flow),
                Ok(Scope::Graph(g) | Scope::Oidc(g)) => {
                    flow.scopes.insert(g.to_string());
                }
                Err(bad) => {
                    return admin_consent_error(
                        &shared,
                        &flow,
                        None,
                        70011,
                        &format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist."),
                    );
                }
            }
        }
    }
    let flow_id = random_token(18);
    let session_user = session_from(&headers)
        .and_then(|sid| lock(&shared.idp).sessions.get(&sid).cloned().map(|s| (sid, s)))
        .and_then(|(sid, s)| shared.user(&s.user_id).map(|u| (sid, s, u)))
        .filter(|(_, _, u)| u.user.admin && tenant_allows(&pt, u));
    if let Some((sid, s, user)) = session_user {
        flow.session = Some(sid);
        flow.mfa_done = s.mfa;
        flow.user = Some(user.user.id.clone());
        return after_sign_in(&shared, flow_id, flow, &user);
    }
    let page = pages::sign_in(&tenant, &flow_id, &app.display_name, "", None, true);
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

pub(super) fn admin_consent_step(shared: &Shared, flow_id: String, mut flow: Flow, user: &UserRef, app: &AppFixture) -> Response {
    if !user.user.admin {
        // Only a tenant administrator can complete admin consent (§1.8).
        flow.step = Step::NeedApproval;
        let page = pages::need_admin_approval(&flow.path_tenant, &flow_id, &app.display_name, &user.user.user_principal_name);
        lock(&shared.idp).flows.insert(flow_id, flow);
        return html(StatusCode::OK, page);
    }
    flow.step = Step::AdminConsent;
    let mut permissions: Vec<(String, String)> = flow
        .scopes
        .iter()
        .filter_map(|s| catalogue::delegated(s))
        .map(|p| (p.admin_title.to_string(), p.admin_description.to_string()))
        .collect();
    permissions.extend(
        flow.roles.iter().filter_map(|r| catalogue::application(r)).map(|p| (p.admin_title.to_string(), p.admin_description.to_string())),
    );
    let page = pages::consent(&pages::ConsentView {
        tenant: &flow.path_tenant,
        flow: &flow_id,
        app_name: &app.display_name,
        publisher: app.publisher.as_deref(),
        upn: &user.user.user_principal_name,
        permissions,
        org_checkbox: false,
        for_organization: true,
    });
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

/// Admin-consent error redirects as observed (§1.8): v1 keeps `tenant`, v2 drops it and adds `error_uri`.
pub(super) fn admin_consent_error(shared: &Shared, flow: &Flow, tenant_id: Option<String>, code: u32, message: &str) -> Response {
    let trace = guid();
    let desc = describe(code, message, &trace, &flow.correlation, &aad_timestamp(shared.now()));
    let mut params = vec![("error", "access_denied".to_string()), ("error_description", desc)];
    if flow.kind == FlowKind::AdminConsentV1 {
        params.push(("admin_consent", "True".to_string()));
        if let Some(t) = tenant_id {
            params.push(("tenant", t));
        }
    } else {
        params.push(("error_uri", error_uri(code)));
        params.push(("admin_consent", "True".to_string()));
    }
    if let Some(s) = &flow.state {
        params.push(("state", s.clone()));
    }
    to_client(&flow.redirect_uri, "query", &params)
}
