use super::*;

/// Every interactive form posts here; the flow's current step says what the form was.
pub(super) async fn login_step(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let form = parse_qs(&String::from_utf8_lossy(&body));
    let flow_id = form.get("flow").cloned().unwrap_or_default();
    let Some(mut flow) = lock(&shared.idp).flows.remove(&flow_id) else {
        return error_page(&shared, 50058, "The sign-in session has expired or is unknown. Start again from the application.", &guid());
    };
    let action = form.get("action").map(String::as_str).unwrap_or("");
    let app_name = shared.app(&flow.client_id).map(|a| a.display_name).unwrap_or_default();
    if action == "cancel" {
        return cancel(&shared, &flow);
    }
    match (flow.step, action) {
        (Step::SignIn, _) => {
            let email = form.get("email").cloned().unwrap_or_default();
            let password = form.get("password").cloned().unwrap_or_default();
            let admin_only = flow.kind != FlowKind::Authorize;
            let rerender = |shared: &Shared, flow: Flow, msg: &str| {
                let page = pages::sign_in(&tenant, &flow_id, &app_name, &email, Some(msg), admin_only);
                lock(&shared.idp).flows.insert(flow_id.clone(), flow);
                html(StatusCode::OK, page)
            };
            let Some(user) = shared.user(&email).filter(|u| u.user.user_principal_name.eq_ignore_ascii_case(&email)) else {
                // AADSTS50034 in the real UI.
                return rerender(
                    &shared,
                    flow,
                    "We couldn't find an account with that username. Try another, or get a new Microsoft account.",
                );
            };
            if user.user.password != password {
                // AADSTS50126
                return rerender(
                    &shared,
                    flow,
                    "Your account or password is incorrect. If you don't remember your password, reset it now.",
                );
            }
            let pt = path_tenant(&shared, &flow.path_tenant);
            if !pt.as_ref().is_some_and(|pt| tenant_allows(pt, &user)) {
                let msg = format!(
                    "User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
                    user.user.user_principal_name, user.tenant_id, flow.path_tenant, flow.client_id, app_name
                );
                return match flow.kind {
                    FlowKind::Authorize => error_redirect(&shared, &flow, "access_denied", 50020, &msg, None),
                    _ => admin_consent_error(&shared, &flow, None, 50020, &msg),
                };
            }
            let sid = guid();
            lock(&shared.idp).sessions.insert(sid.clone(), Session { user_id: user.user.id.clone(), mfa: false });
            flow.session = Some(sid.clone());
            flow.user = Some(user.user.id.clone());
            flow.mfa_done = false;
            with_session_cookie(&shared, after_sign_in(&shared, flow_id, flow, &user), &sid)
        }
        (Step::Pick, "other") => {
            flow.step = Step::SignIn;
            flow.user = None;
            let page = pages::sign_in(&tenant, &flow_id, &app_name, "", None, flow.kind != FlowKind::Authorize);
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
        (Step::Pick, _) => match flow.user.clone().and_then(|u| shared.user(&u)) {
            Some(user) => after_sign_in(&shared, flow_id, flow, &user),
            None => cancel(&shared, &flow),
        },
        (Step::Mfa, _) => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            if form.get("otc").map(String::as_str) != Some(shared.opts.mfa_code.as_str()) {
                let page = pages::mfa(
                    &tenant,
                    &flow_id,
                    &user.user.user_principal_name,
                    Some("That code didn't work. Check the code and try again."),
                );
                lock(&shared.idp).flows.insert(flow_id, flow);
                return html(StatusCode::OK, page);
            }
            flow.mfa_done = true;
            if let Some(sid) = &flow.session
                && let Some(s) = lock(&shared.idp).sessions.get_mut(sid)
            {
                s.mfa = true;
            }
            after_sign_in(&shared, flow_id, flow, &user)
        }
        (Step::Consent, "accept") => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            let org = user.user.admin && form.get("consent_org").is_some_and(|v| v == "true" || v == "on");
            {
                let mut idp = lock(&shared.idp);
                let key = (user.tenant_id.to_ascii_lowercase(), user.user.id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase());
                idp.consents.entry(key).or_default().extend(flow.scopes.iter().cloned());
                if org {
                    let g = idp.admin_grants.entry((user.tenant_id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase())).or_default();
                    g.delegated.extend(flow.scopes.iter().cloned());
                }
            }
            issue_code(&shared, flow, &user)
        }
        (Step::NeedApproval, "admin") => {
            flow.step = Step::SignIn;
            flow.user = None;
            let page = pages::sign_in(&tenant, &flow_id, &app_name, "", None, false);
            lock(&shared.idp).flows.insert(flow_id, flow);
            html(StatusCode::OK, page)
        }
        (Step::NeedApproval, _) => {
            let code = shared.opts.admin_approval_return_code;
            match flow.kind {
                FlowKind::Authorize if code == 65004 => {
                    error_redirect(&shared, &flow, "access_denied", 65004, "User declined to consent to access the app.", Some("cancel"))
                }
                FlowKind::Authorize => {
                    error_redirect(&shared, &flow, "access_denied", 90094, "Administrator consent is required.", Some("cancel"))
                }
                _ => {
                    let tid = flow.user.clone().and_then(|u| shared.user(&u)).map(|u| u.tenant_id);
                    admin_consent_error(&shared, &flow, tid, 90094, "Administrator consent is required.")
                }
            }
        }
        (Step::AdminConsent, "accept") => {
            let Some(user) = flow.user.clone().and_then(|u| shared.user(&u)) else {
                return cancel(&shared, &flow);
            };
            {
                let mut idp = lock(&shared.idp);
                let g = idp.admin_grants.entry((user.tenant_id.to_ascii_lowercase(), flow.client_id.to_ascii_lowercase())).or_default();
                g.delegated.extend(flow.scopes.iter().cloned());
                g.roles.extend(flow.roles.iter().cloned());
            }
            let mut params = Vec::new();
            if flow.kind == FlowKind::AdminConsentV1 {
                // v1 success: ?tenant=…&state=…&admin_consent=True (§1.8)
                params.push(("tenant", user.tenant_id.clone()));
                if let Some(s) = &flow.state {
                    params.push(("state", s.clone()));
                }
                params.push(("admin_consent", "True".to_string()));
            } else {
                // v2 success: ?admin_consent=True&tenant=…&scope=…&state=… (§1.8)
                params.push(("admin_consent", "True".to_string()));
                params.push(("tenant", user.tenant_id.clone()));
                let granted: Vec<String> = flow
                    .scopes
                    .iter()
                    .chain(flow.roles.iter())
                    .filter(|s| !catalogue::OIDC_SCOPES.contains(&s.as_str()))
                    .map(|s| format!("{GRAPH_RESOURCE}/{s}"))
                    .collect();
                params.push(("scope", granted.join(" ")));
                if let Some(s) = &flow.state {
                    params.push(("state", s.clone()));
                }
            }
            to_client(&flow.redirect_uri, "query", &params)
        }
        _ => {
            lock(&shared.idp).flows.insert(flow_id, flow);
            error_page(&shared, 9002313, "Invalid request. Request is malformed or invalid.", &guid())
        }
    }
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
