use super::*;

/// One posted form: which page it came from (the flow) and what it says.
struct Post<'a> {
    shared: &'a Shared,
    tenant: &'a str,
    flow_id: String,
    app_name: String,
    form: &'a HashMap<String, String>,
}

impl Post<'_> {
    /// Shows a page and keeps the flow for the next post.
    fn page(&self, flow: Flow, page: String) -> Response {
        lock(&self.shared.idp).flows.insert(self.flow_id.clone(), flow);
        html(StatusCode::OK, page)
    }

    /// Back to an empty sign-in form ("Use another account", "Sign in with an admin account").
    fn sign_in_again(&self, mut flow: Flow, admin_only: bool) -> Response {
        flow.step = Step::SignIn;
        flow.user = None;
        let page = pages::sign_in(self.tenant, &self.flow_id, &self.app_name, "", None, admin_only);
        self.page(flow, page)
    }

    /// The flow's user (signed in on an earlier page).
    fn user(&self, flow: &Flow) -> Option<UserRef> {
        flow.user.clone().and_then(|u| self.shared.user(&u))
    }
}

/// Every interactive form posts here; the flow's current step says what the form was.
pub(super) async fn login_step(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form = parse_qs(&String::from_utf8_lossy(&body));
    let flow_id = form.get("flow").cloned().unwrap_or_default();
    let Some(flow) = lock(&shared.idp).flows.remove(&flow_id) else {
        return error_page(&shared, 50058, "The sign-in session has expired or is unknown. Start again from the application.", &guid());
    };
    let action = form.get("action").map(String::as_str).unwrap_or("");
    let app_name = shared.app(&flow.client_id).map(|a| a.display_name).unwrap_or_default();
    if action == "cancel" {
        return cancel(&shared, &flow);
    }
    let post = Post { shared: &shared, tenant: &tenant, flow_id, app_name, form: &form };
    let user = post.user(&flow);
    match (flow.step, action, user) {
        (Step::SignIn, _, _) => signed_in(&post, flow),
        (Step::Pick, "other", _) => {
            let admin_only = flow.kind != FlowKind::Authorize;
            post.sign_in_again(flow, admin_only)
        }
        (Step::NeedApproval, "admin", _) => post.sign_in_again(flow, false),
        (Step::NeedApproval, _, _) => back_without_approval(&shared, &flow),
        (Step::Pick | Step::Mfa, _, None) | (Step::Consent | Step::AdminConsent, "accept", None) => cancel(&shared, &flow),
        (Step::Pick, _, Some(user)) => after_sign_in(&shared, post.flow_id.clone(), flow, &user),
        (Step::Mfa, _, Some(user)) => second_factor(&post, flow, &user),
        (Step::Consent, "accept", Some(user)) => consented(&post, flow, &user),
        (Step::AdminConsent, "accept", Some(user)) => admin_consented(&shared, &flow, &user),
        _ => {
            lock(&shared.idp).flows.insert(post.flow_id.clone(), flow);
            error_page(&shared, 9002313, "Invalid request. Request is malformed or invalid.", &guid())
        }
    }
}

/// The sign-in form: email and password checked, the tenant must know the account; a session starts.
fn signed_in(post: &Post<'_>, mut flow: Flow) -> Response {
    let shared = post.shared;
    let email = post.form.get("email").cloned().unwrap_or_default();
    let password = post.form.get("password").cloned().unwrap_or_default();
    let admin_only = flow.kind != FlowKind::Authorize;
    let rerender = |flow: Flow, msg: &str| {
        let page = pages::sign_in(post.tenant, &post.flow_id, &post.app_name, &email, Some(msg), admin_only);
        post.page(flow, page)
    };
    let Some(user) = shared.user(&email).filter(|u| u.user.user_principal_name.eq_ignore_ascii_case(&email)) else {
        // AADSTS50034 in the real UI.
        return rerender(flow, "We couldn't find an account with that username. Try another, or get a new Microsoft account.");
    };
    if user.user.password != password {
        // AADSTS50126
        return rerender(flow, "Your account or password is incorrect. If you don't remember your password, reset it now.");
    }
    let pt = path_tenant(shared, &flow.path_tenant);
    if !pt.as_ref().is_some_and(|pt| tenant_allows(pt, &user)) {
        let msg = format!(
            "User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
            user.user.user_principal_name, user.tenant_id, flow.path_tenant, flow.client_id, post.app_name
        );
        return match flow.kind {
            FlowKind::Authorize => error_redirect(shared, &flow, "access_denied", 50020, &msg, None),
            _ => admin_consent_error(shared, &flow, None, 50020, &msg),
        };
    }
    let sid = guid();
    lock(&shared.idp).sessions.insert(sid.clone(), Session { user_id: user.user.id.clone(), mfa: false });
    flow.session = Some(sid.clone());
    flow.user = Some(user.user.id.clone());
    flow.mfa_done = false;
    with_session_cookie(shared, after_sign_in(shared, post.flow_id.clone(), flow, &user), &sid)
}

/// The MFA page: the code must be the configured one; the session then counts as MFA-verified.
fn second_factor(post: &Post<'_>, mut flow: Flow, user: &UserRef) -> Response {
    let shared = post.shared;
    if post.form.get("otc").map(String::as_str) != Some(shared.opts.mfa_code.as_str()) {
        let retry = Some("That code didn't work. Check the code and try again.");
        let page = pages::mfa(post.tenant, &post.flow_id, &user.user.user_principal_name, retry);
        return post.page(flow, page);
    }
    flow.mfa_done = true;
    if let Some(sid) = &flow.session
        && let Some(s) = lock(&shared.idp).sessions.get_mut(sid)
    {
        s.mfa = true;
    }
    after_sign_in(shared, post.flow_id.clone(), flow, user)
}

/// "Accept" on the consent page: the user's consent (and an admin's for the organization if ticked).
fn consented(post: &Post<'_>, flow: Flow, user: &UserRef) -> Response {
    let shared = post.shared;
    let org = user.user.admin && post.form.get("consent_org").is_some_and(|v| v == "true" || v == "on");
    {
        let mut idp = lock(&shared.idp);
        let key = (user.tenant_id.to_ascii_lowercase(), user.user.id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase());
        idp.consents.entry(key).or_default().extend(flow.scopes.iter().cloned());
        idp.consented_in(&user.tenant_id, &flow.client_id);
        if org {
            let g = idp.admin_grants.entry((user.tenant_id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase())).or_default();
            g.delegated.extend(flow.scopes.iter().cloned());
        }
    }
    issue_code(shared, flow, user)
}

/// "Return to the application without granting consent" on the Need admin approval page.
fn back_without_approval(shared: &Shared, flow: &Flow) -> Response {
    let code = shared.opts.admin_approval_return_code;
    match flow.kind {
        FlowKind::Authorize if code == 65004 => {
            error_redirect(shared, flow, "access_denied", 65004, "User declined to consent to access the app.", Some("cancel"))
        }
        FlowKind::Authorize => error_redirect(shared, flow, "access_denied", 90094, "Administrator consent is required.", Some("cancel")),
        _ => {
            let tid = flow.user.clone().and_then(|u| shared.user(&u)).map(|u| u.tenant_id);
            admin_consent_error(shared, flow, tid, 90094, "Administrator consent is required.")
        }
    }
}

/// "Accept" on the admin consent page: the tenant-wide grant, and the success redirect of §1.8.
fn admin_consented(shared: &Shared, flow: &Flow, user: &UserRef) -> Response {
    {
        let mut idp = lock(&shared.idp);
        idp.consented_in(&user.tenant_id, &flow.client_id);
        let g = idp.admin_grants.entry((user.tenant_id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase())).or_default();
        g.delegated.extend(flow.scopes.iter().cloned());
        g.roles.extend(flow.roles.iter().cloned());
    }
    let state = flow.state.iter().map(|s| ("state", s.clone()));
    let params: Vec<(&str, String)> = if flow.kind == FlowKind::AdminConsentV1 {
        // v1 success: ?tenant=…&state=…&admin_consent=True (§1.8)
        std::iter::once(("tenant", user.tenant_id.clone())).chain(state).chain([("admin_consent", "True".to_string())]).collect()
    } else {
        // v2 success: ?admin_consent=True&tenant=…&scope=…&state=… (§1.8)
        let granted: Vec<String> = flow
            .scopes
            .iter()
            .chain(flow.roles.iter())
            .filter(|s| !catalogue::OIDC_SCOPES.contains(&s.as_str()))
            .map(|s| format!("{GRAPH_RESOURCE}/{s}"))
            .collect();
        [("admin_consent", "True".to_string()), ("tenant", user.tenant_id.clone()), ("scope", granted.join(" "))]
            .into_iter()
            .chain(state)
            .collect()
    };
    to_client(&flow.redirect_uri, "query", &params)
}

/// The user pressed Cancel somewhere.
pub(super) fn cancel(shared: &Shared, flow: &Flow) -> Response {
    match flow.kind {
        FlowKind::Authorize => {
            let error = if shared.opts.consent_cancel_error == "consent_required" { "consent_required" } else { "access_denied" };
            error_redirect(shared, flow, error, 65004, "User declined to consent to access the app.", Some("cancel"))
        }
        _ => {
            let tid = flow.user.clone().and_then(|u| shared.user(&u)).map(|u| u.tenant_id);
            admin_consent_error(shared, flow, tid, 65004, "User declined to consent to access the app.")
        }
    }
}
