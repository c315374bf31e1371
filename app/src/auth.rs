//! Who is signed in: the session cookie, sign-in and sign-out, and the role checks that every
//! server function starts with.

use crate::error::AppError;
use domain::SessionUser;
use leptos::prelude::*;

/// The signed-in person, refetched whenever someone signs in or out.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: Resource<Result<Option<SessionUser>, AppError>>,
    pub login: ServerAction<Login>,
    pub logout: ServerAction<Logout>,
}

pub fn provide_session() {
    let login = ServerAction::<Login>::new();
    let logout = ServerAction::<Logout>::new();
    // Blocking: pages are rendered for the right person (or redirected) before any HTML is sent.
    let user = Resource::new_blocking(move || (login.version().get(), logout.version().get()), |_| current_user());
    provide_context(Session { user, login, logout });
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// The signed-in user, or `None` for a visitor.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    ssr::session_user().await
}

#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use store::accounts::{self, SignInError};
    let state = crate::state::app_state()?;
    let ip = ssr::client_ip().await;
    let now = store::now_unix();
    match accounts::sign_in_idle_after(state.store.as_ref(), state.session_idle_secs, &email, &password, &ip, now).await {
        Ok(signed_in) => {
            // A fresh token at every sign-in, and the old one (if any) ended: no session fixation.
            if let Some(old) = ssr::session_token().await {
                let _ = accounts::sign_out(state.store.as_ref(), &old).await;
            }
            ssr::set_cookie(state.session_cookie.set(&signed_in.token, signed_in.expires_at - now));
            tracing::info!(user = %signed_in.user.id, org = %signed_in.user.org_id, "signed in");
            leptos_axum::redirect("/");
            Ok(())
        }
        Err(e @ SignInError::BadCredentials) => Err(office365::Error::Invalid(e.to_string()).into()),
        // Too many failures, or every password-hashing slot taken: both 429.
        Err(e @ (SignInError::RateLimited { .. } | SignInError::Busy)) => Err(office365::Error::RateLimited(e.to_string()).into()),
        Err(other) => Err(office365::Error::internal(other).into()),
    }
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    if let Some(token) = ssr::session_token().await {
        store::accounts::sign_out(state.store.as_ref(), &token).await?;
    }
    ssr::set_cookie(state.session_cookie.clear());
    leptos_axum::redirect("/login");
    Ok(())
}

#[cfg(feature = "ssr")]
pub use ssr::{require_admin, require_user};

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use axum::http::{HeaderMap, HeaderValue, header};
    use domain::SessionUser;
    use leptos::prelude::*;
    use store::SessionToken;

    /// The session token in this request's cookies, if it carries one of ours.
    pub async fn session_token() -> Option<SessionToken> {
        let headers: HeaderMap = leptos_axum::extract().await.ok()?;
        let rule = crate::state::app_state().ok()?.session_cookie;
        rule.token_in(headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()))
    }

    pub async fn session_user() -> Result<Option<SessionUser>, AppError> {
        let Some(token) = session_token().await else {
            return Ok(None);
        };
        let state = crate::state::app_state()?;
        Ok(state.store.session_user(&token.hash(), store::now_unix()).await?)
    }

    /// The first line of every server function for signed-in people: 401 for visitors.
    pub async fn require_user() -> Result<SessionUser, AppError> {
        session_user().await?.ok_or_else(|| office365::Error::Unauthorized.into())
    }

    /// The first line of every admin server function: 401 for visitors, 403 for members.
    pub async fn require_admin() -> Result<SessionUser, AppError> {
        let user = require_user().await?;
        if !user.is_admin() {
            tracing::warn!(user = %user.user_id, "member called an admin server function");
            return Err(office365::Error::Forbidden.into());
        }
        Ok(user)
    }

    /// The client's address (the server's edge resolves it, trusted proxies included).
    pub async fn client_ip() -> String {
        let parts = use_context::<axum::http::request::Parts>();
        match parts.and_then(|p| p.extensions.get::<crate::state::ClientAddress>().copied()) {
            Some(crate::state::ClientAddress(ip)) => ip.to_string(),
            None => "unknown".to_owned(),
        }
    }

    /// Adds a `Set-Cookie` to the response (the session cookie's rule makes the value).
    pub fn set_cookie(value: String) {
        if let (Some(res), Ok(v)) = (use_context::<leptos_axum::ResponseOptions>(), HeaderValue::from_str(&value)) {
            res.append_header(header::SET_COOKIE, v);
        }
    }
}
