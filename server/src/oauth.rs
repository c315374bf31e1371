//! The OAuth routes: starting a sign-in (or admin consent) with Microsoft and receiving its
//! callback. Adapters over the `office365` workflows.
//!
//! These are plain axum routes rather than server functions because the browser reaches them by
//! form posts and redirects, not by fetch. Whatever happens, the browser ends on a page that says
//! what happened and what to do next (the error's `result_page`): never a stack trace, never a 500.

use axum::extract::{Extension, Form, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Redirect;
use office365::{Caller, Error, Integration, Landing};
use serde::Deserialize;
use store::SessionCookie;

#[derive(Deserialize)]
pub struct StartForm {
    purpose: String,
}

/// The signed-in session of this request, if any (the router gives every route the deployment's
/// session cookie rule).
async fn caller(office365: &Integration, cookie: SessionCookie, headers: &HeaderMap) -> Result<Option<Caller>, Error> {
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    office365.caller(cookie.token_in(cookies)).await
}

/// Where the browser goes: the workflow's landing, or the page explaining its error.
fn go(result: Result<Landing, Error>) -> Redirect {
    Redirect::to(&result.unwrap_or_else(|e| e.result_page()))
}

/// `POST /oauth/office365/start`: sends the browser to Microsoft's sign-in.
pub async fn start(
    State(office365): State<Integration>,
    Extension(cookie): Extension<SessionCookie>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Redirect {
    go(async {
        let caller = caller(&office365, cookie, &headers).await?.ok_or(Error::Unauthorized)?;
        office365.start_sign_in(&caller, &form.purpose).await
    }
    .await)
}

/// `GET /oauth/office365/callback`: Microsoft sends the browser back here.
pub async fn callback(
    State(office365): State<Integration>,
    Extension(cookie): Extension<SessionCookie>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Redirect {
    go(async {
        let caller = caller(&office365, cookie, &headers).await?;
        office365.complete_sign_in(caller.as_ref(), query.as_deref().unwrap_or_default()).await
    }
    .await)
}

/// `POST /oauth/office365/admin-consent/start` (admins): sends the browser to Microsoft's admin
/// consent endpoint.
pub async fn admin_consent_start(
    State(office365): State<Integration>,
    Extension(cookie): Extension<SessionCookie>,
    headers: HeaderMap,
) -> Redirect {
    go(async {
        let caller = caller(&office365, cookie, &headers).await?.ok_or(Error::Unauthorized)?;
        office365.start_admin_consent(&caller).await
    }
    .await)
}

/// `GET /oauth/office365/admin-consent`: Microsoft sends the admin back here.
pub async fn admin_consent_callback(
    State(office365): State<Integration>,
    Extension(cookie): Extension<SessionCookie>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Redirect {
    go(async {
        let caller = caller(&office365, cookie, &headers).await?;
        office365.complete_admin_consent(caller.as_ref(), query.as_deref().unwrap_or_default()).await
    }
    .await)
}
