//! One Graph request (also each inner request of a batch), checked in Microsoft's order: token → target
//! mailbox → throttling → injected faults → scopes/roles and delegate rights → licence → the operation.

use super::access::allowed_directory;
use super::mailbox::{Call, mailbox_op};
use super::routes::{Target, route};
use super::users::{user_json, users_list};
use super::*;
use crate::registry::{self, FaultRule};
use crate::throttle::{Permit, Refusal};

/// `sent_at`: when the client sent it (its arrival; a batch's inner request, the batch's).
pub(super) async fn dispatch(shared: &Arc<Shared>, req: GReq, sent_at: std::time::Instant) -> GResp {
    let ctx = Ctx::new(shared, &req.headers);
    let segs = path_segments(&req.path);
    let routed = route(&req.method, &segs);
    let template = routed.as_ref().map(|r| r.0.clone()).unwrap_or_else(|| format!("{} (unknown)", req.method));
    let grant = match bearer_grant(shared, &req.headers) {
        Ok(g) => g,
        Err(msg) => return finish(shared, &ctx, &template, None, unauthorized(&ctx, msg)),
    };
    let caller = grant.user_id.as_deref().and_then(|u| shared.user(u));
    if segs.first().map(String::as_str) == Some("subscriptions") {
        // Injected faults apply here too (a subscription Microsoft refuses or fails to make).
        let fault = registry::take_fault(shared, req.method.as_str(), &req.path, None);
        if let Some(r) = injected(shared, &ctx, &grant, None, fault).await {
            let template = format!("{} /subscriptions{}", req.method, if segs.len() > 1 { "/{id}" } else { "" });
            return finish(shared, &ctx, &template, None, r);
        }
        let (template, r) = crate::subscriptions::handle(shared, &ctx, &req, &grant, caller.as_ref(), &segs).await;
        return finish(shared, &ctx, &template, None, r);
    }
    let Some((template, target, op, need)) = routed else {
        let seg = segs.last().cloned().unwrap_or_default();
        let msg = format!("Resource not found for the segment '{seg}'.");
        return finish(shared, &ctx, &template, None, bad_request(&ctx, &msg));
    };
    let target_user = match target_user(shared, &ctx, &grant, caller.as_ref(), &target, &op) {
        Ok(u) => u,
        Err(r) => return finish(shared, &ctx, &template, None, r),
    };
    let mailbox_route = !matches!(op, Op::Me | Op::UserGet | Op::UsersList);
    let label = target_user.as_ref().filter(|_| mailbox_route).map(|u| u.user.user_principal_name.to_ascii_lowercase());
    let label = label.as_deref();
    let _permit = match admit(shared, &ctx, &grant, target_user.as_ref(), mailbox_route, sent_at) {
        Ok(p) => p,
        Err(r) => return finish(shared, &ctx, &template, label, r),
    };
    if let Some(r) = transient_failure(shared, &ctx) {
        return finish(shared, &ctx, &template, label, r);
    }
    let fault = registry::take_fault(shared, req.method.as_str(), &req.path, target_user.as_ref().map(|u| &u.user));
    // A fault `after_performing` lets the operation run and replaces its response (the response lost).
    let (before, after) = match fault {
        Some(f) if f.after_performing => (None, Some(f)),
        f => (f, None),
    };
    if let Some(r) = injected(shared, &ctx, &grant, target_user.as_ref(), before).await {
        return finish(shared, &ctx, &template, label, r);
    }
    if let Some(r) = refusal(shared, &ctx, &grant, caller.as_ref(), target_user.as_ref(), need, mailbox_route) {
        return finish(shared, &ctx, &template, label, r);
    }
    let r = perform(shared, &ctx, &req, &grant, caller.as_ref(), target_user.as_ref(), op);
    registry::note_performed(shared, &template, r.status);
    if let Some(lost) = injected(shared, &ctx, &grant, target_user.as_ref(), after).await {
        return finish(shared, &ctx, &template, label, lost);
    }
    finish(shared, &ctx, &template, label, r)
}

/// The operation itself, once every check has passed.
fn perform(
    shared: &Shared,
    ctx: &Ctx,
    req: &GReq,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    target: Option<&UserRef>,
    op: Op,
) -> GResp {
    match (op, target) {
        (Op::UsersList, _) => users_list(shared, ctx, req, grant),
        (Op::Me | Op::UserGet, Some(u)) => {
            let q = parse_qs(&req.query);
            GResp::json(200, &select(user_json(shared, u, true), q.get("$select")))
        }
        (op, Some(u)) => {
            let (page_pref, immutable) = prefer(&req.headers);
            let call = Call { shared, ctx, req, grant, caller, user: u, page_pref, immutable };
            mailbox_op(&call, op)
        }
        _ => bad_request(ctx, "Invalid request."),
    }
}

/// The grant behind the `Authorization: Bearer` token, or why there is none (§3.1, §3.9).
fn bearer_grant(shared: &Shared, headers: &HeaderMap) -> Result<AccessGrant, &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match token.map(|t| check_access_token(shared, t)) {
        Some(TokenCheck::Valid(g)) => Ok(g),
        None => Err("Access token is empty."),
        Some(TokenCheck::Expired) => Err("Access token has expired or is not yet valid."),
        _ => Err("CompactToken parsing failed with error code: 80049217"),
    }
}

/// 401 `InvalidAuthenticationToken` with the `WWW-Authenticate` header Graph sends.
fn unauthorized(ctx: &Ctx, msg: &str) -> GResp {
    err(ctx, 401, "InvalidAuthenticationToken", msg).header(
        "WWW-Authenticate",
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
    )
}

/// The user a request is about: the caller for `/me`, a user of the token's tenant for `/users/{id}`.
fn target_user(
    shared: &Shared,
    ctx: &Ctx,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    target: &Target,
    op: &Op,
) -> Result<Option<UserRef>, GResp> {
    match target {
        Target::Me => {
            caller.cloned().map(Some).ok_or_else(|| bad_request(ctx, "/me request is only valid with delegated authentication flow."))
        }
        Target::User(key) => {
            shared.user(key).filter(|u| u.tenant_id.eq_ignore_ascii_case(&grant.tenant_id)).map(Some).ok_or_else(|| match op {
                Op::UserGet => err(
                    ctx,
                    404,
                    "Request_ResourceNotFound",
                    &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
                ),
                _ => err(ctx, 404, "ErrorInvalidUser", &format!("The requested user '{key}' is invalid.")),
            })
        }
        Target::None => Ok(None),
    }
}

/// Outlook limits per app + mailbox (§4.1), and with `throttle_directory` per app + tenant for
/// directory requests: a permit to hold while the request runs, or the 429.
fn admit(
    shared: &Shared,
    ctx: &Ctx,
    grant: &AccessGrant,
    target: Option<&UserRef>,
    mailbox_route: bool,
    sent_at: std::time::Instant,
) -> Result<Option<Permit>, GResp> {
    if !mailbox_route {
        return admit_directory(shared, ctx, grant, sent_at);
    }
    let Some(t) = target else {
        return Ok(None);
    };
    let upn = &t.user.user_principal_name;
    let adm = shared.throttle.admit(&grant.client_id, &t.user.id, sent_at);
    registry::note_admission(shared, upn, adm.concurrency, adm.early_retry);
    let r = match adm.refusal {
        None => return Ok(adm.permit),
        Some(Refusal::Concurrency) => {
            shared.throttle.note_retry_after(&grant.client_id, &t.user.id, 1.0);
            err(ctx, 429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.").header("Retry-After", "1")
        }
        Some(Refusal::Rate { retry_after_secs }) => rate_limited(ctx, retry_after_secs),
    };
    registry::note_throttled(shared, upn);
    Err(r)
}

fn rate_limited(ctx: &Ctx, retry_after_secs: f64) -> GResp {
    err(ctx, 429, "TooManyRequests", "Please retry again later.").header("Retry-After", format_retry_after(retry_after_secs))
}

/// Directory requests share one bucket per app and tenant (only with `throttle_directory`).
fn admit_directory(shared: &Shared, ctx: &Ctx, grant: &AccessGrant, sent_at: std::time::Instant) -> Result<Option<Permit>, GResp> {
    if !shared.opts.throttle_directory {
        return Ok(None);
    }
    let bucket = format!("directory|{}", grant.tenant_id.to_ascii_lowercase());
    let adm = shared.throttle.admit(&grant.client_id, &bucket, sent_at);
    let wait = match adm.refusal {
        None => return Ok(adm.permit),
        Some(Refusal::Concurrency) => 1.0,
        Some(Refusal::Rate { retry_after_secs }) => retry_after_secs,
    };
    shared.throttle.note_retry_after(&grant.client_id, &bucket, wait);
    registry::note_directory_throttled(shared);
    Err(rate_limited(ctx, wait))
}

/// The realistic profile's own failures: a `transient_failure_rate` share of requests answer 503 or
/// 504 with `Retry-After: 1`, without any injected fault.
fn transient_failure(shared: &Shared, ctx: &Ctx) -> Option<GResp> {
    let rate = shared.opts.transient_failure_rate;
    if rate <= 0.0 || rand::random::<f64>() >= rate || registry::random_failures_paused(shared) {
        return None;
    }
    let status = if rand::random::<bool>() { 503 } else { 504 };
    Some(fault_response(ctx, status).header("Retry-After", "1"))
}

/// Injected faults (control API): delays hold the concurrency slot, like a slow backend would.
async fn injected(shared: &Shared, ctx: &Ctx, grant: &AccessGrant, target: Option<&UserRef>, fault: Option<FaultRule>) -> Option<GResp> {
    let fault = fault?;
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let status = fault.status?;
    let mut r = fault_response(ctx, status);
    let default_wait = (status == 429).then_some(2.0);
    if let Some(ra) = fault.retry_after.or(default_wait) {
        r = r.header("Retry-After", fault.retry_after_header(ra));
        if let Some(t) = target {
            shared.throttle.note_retry_after(&grant.client_id, &t.user.id, ra);
        }
    }
    if let (429, Some(t)) = (status, target) {
        registry::note_throttled(shared, &t.user.user_principal_name);
    }
    Some(r)
}

/// The error Graph answers with a given status.
pub(super) fn fault_response(ctx: &Ctx, status: u16) -> GResp {
    match status {
        429 => err(ctx, 429, "TooManyRequests", "Please retry again later."),
        410 => err(ctx, 410, "SyncStateNotFound", "The sync state generation is not found; generation=149;[highest=157][157][155][156]."),
        503 => err(ctx, 503, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
        504 => err(ctx, 504, "gatewayTimeout", "The gateway timed out."),
        401 => err(ctx, 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
        403 => access_denied(ctx),
        404 => err(ctx, 404, "ErrorItemNotFound", "The specified object was not found in the store."),
        s => err(ctx, s, "generalException", "General exception while processing."),
    }
}

/// Permissions, the application access policy, then the licence: the refusal, if any.
#[allow(clippy::too_many_arguments)]
fn refusal(
    shared: &Shared,
    ctx: &Ctx,
    grant: &AccessGrant,
    caller: Option<&UserRef>,
    target: Option<&UserRef>,
    need: Need,
    mailbox_route: bool,
) -> Option<GResp> {
    let directory_denied = || err(ctx, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
    let Some(t) = target else {
        return (!allowed_directory(grant, caller)).then(directory_denied);
    };
    if !allowed(grant, caller, t, need) {
        return Some(if matches!(need, Need::Profile | Need::Directory) { directory_denied() } else { access_denied(ctx) });
    }
    // Application access policy (§5): app-only access to mail, calendars, contacts and mailbox settings
    // (not Tasks) outside the policy's scope → 403 "Access to OData is disabled."
    let policed = !matches!(need, Need::Profile | Need::Directory | Need::TasksRead | Need::TasksWrite);
    if caller.is_none() && policed && !shared.app_policy_allows(&grant.tenant_id, &grant.client_id, &t.user) {
        return Some(err(ctx, 403, "ErrorAccessDenied", "Access to OData is disabled."));
    }
    (mailbox_route && !t.user.licensed)
        .then(|| err(ctx, 404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."))
}
