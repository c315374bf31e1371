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
    let (pt, app, mut flow) = match known_client(&shared, &tenant, &p, kind) {
        Ok(known) => known,
        Err(page) => return *page,
    };
    if let Some(refused) = consent_scopes(&shared, &app, &p, &mut flow) {
        return refused;
    }
    let flow_id = random_token(18);
    if let Some((sid, s, user)) = session_user(&shared, &headers, &pt).filter(|(_, _, u)| u.user.admin) {
        flow.session = Some(sid);
        flow.mfa_done = s.mfa;
        flow.user = Some(user.user.id.clone());
        return after_sign_in(&shared, flow_id, flow, &user);
    }
    let page = pages::sign_in(&tenant, &flow_id, &app.display_name, "", None, true);
    lock(&shared.idp).flows.insert(flow_id, flow);
    html(StatusCode::OK, page)
}

/// What the admin is asked to grant: v1 every permission the app registration lists; v2 the `scope`
/// parameter, where application permissions come only through `/.default` (§1.8).
fn consent_scopes(shared: &Shared, app: &AppFixture, p: &HashMap<String, String>, flow: &mut Flow) -> Option<Response> {
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
    if flow.kind == FlowKind::AdminConsentV1 {
        all_static(flow);
        return None;
    }
    let Some(scope) = p.get("scope").filter(|s| !s.trim().is_empty()) else {
        return Some(admin_consent_error(shared, flow, None, 900144, "The request body must contain the following parameter: 'scope'."));
    };
    for s in scope.split_whitespace() {
        match catalogue::parse_scope(s) {
            Ok(Scope::Default) => all_static(flow),
            Ok(Scope::Graph(g) | Scope::Oidc(g)) => {
                flow.scopes.insert(g.to_string());
            }
            Err(bad) => {
                let msg = format!("The provided value for the input parameter 'scope' is not valid. The scope '{bad}' does not exist.");
                return Some(admin_consent_error(shared, flow, None, 70011, &msg));
            }
        }
    }
    None
}

pub(super) fn admin_consent_step(shared: &Shared, flow_id: String, flow: Flow, user: &UserRef, app: &AppFixture) -> Response {
    if !user.user.admin {
        // Only a tenant administrator can complete admin consent (§1.8).
        return need_approval(shared, flow_id, flow, app, user);
    }
    let mut permissions: Vec<(String, String)> = flow
        .scopes
        .iter()
        .filter_map(|s| catalogue::delegated(s))
        .map(|p| (p.admin_title.to_string(), p.admin_description.to_string()))
        .collect();
    permissions.extend(
        flow.roles.iter().filter_map(|r| catalogue::application(r)).map(|p| (p.admin_title.to_string(), p.admin_description.to_string())),
    );
    consent_page(shared, flow_id, flow, (app, user), permissions, true)
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
