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
pub use ssr::{RequestSession, provide_request_session, require_admin, require_user};

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use axum::http::{HeaderMap, HeaderValue, header};
    use domain::SessionUser;
    use leptos::prelude::*;
    use std::sync::Arc;
    use store::SessionToken;

    /// The session of the request being served, looked up at most once however many resources
    /// and server functions of the request ask (a page's header and its data both do). A failed
    /// lookup is not kept: the next asker tries again.
    #[derive(Clone, Default)]
    pub struct RequestSession(Arc<tokio::sync::OnceCell<Option<SessionUser>>>);

    impl RequestSession {
        /// A lookup already made for this request (the server's early check of server-function
        /// calls), put into the request's extensions so the function does not repeat it.
        pub fn known(user: Option<SessionUser>) -> RequestSession {
            RequestSession(Arc::new(tokio::sync::OnceCell::new_with(Some(user))))
        }
    }

    /// Gives the request being served its [`RequestSession`]: the one in the request's extensions
    /// if the server's middleware looked the session up already, else an empty one. Call it in the
    /// context of every page render and server-function call.
    pub fn provide_request_session() {
        let known = use_context::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<RequestSession>().cloned());
        provide_context(known.unwrap_or_default());
    }

    /// The session token in this request's cookies, if it carries one of ours.
    pub async fn session_token() -> Option<SessionToken> {
        let headers: HeaderMap = leptos_axum::extract().await.ok()?;
        let rule = crate::state::app_state().ok()?.session_cookie;
        rule.token_in(headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()))
    }

    /// The signed-in user of this request: read once per request when the request has its
    /// [`RequestSession`] (every page and server function does), else read now.
    pub async fn session_user() -> Result<Option<SessionUser>, AppError> {
        match use_context::<RequestSession>() {
            Some(memo) => memo.0.get_or_try_init(read_session_user).await.cloned(),
            None => read_session_user().await,
        }
    }

    async fn read_session_user() -> Result<Option<SessionUser>, AppError> {
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

#[cfg(test)]
#[cfg(feature = "ssr")]
mod tests {
    use super::ssr::{RequestSession, session_user};
    use domain::{EmailAddress, OrgId, Role, SessionUser, UserId};
    use leptos::prelude::{Owner, provide_context};

    fn admin() -> SessionUser {
        SessionUser {
            user_id: UserId(uuid::Uuid::nil()),
            org_id: OrgId(uuid::Uuid::nil()),
            org_name: "Northwind".into(),
            email: EmailAddress::parse("admin@northwind.test").unwrap(),
            display_name: "Adele Admin".into(),
            role: Role::Admin,
        }
    }

    /// `session_user` polled in `owner`'s context (where a request's contexts are).
    fn looked_up_in(owner: &Owner) -> Result<Option<SessionUser>, crate::error::AppError> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        owner.with(|| runtime.block_on(session_user()))
    }

    #[test]
    fn a_session_already_looked_up_for_the_request_is_not_read_again() {
        // No application state in context: a read would fail, so an answer proves none was made.
        let owner = Owner::new();
        owner.with(|| provide_context(RequestSession::known(Some(admin()))));
        assert_eq!(looked_up_in(&owner).unwrap(), Some(admin()));
        assert_eq!(looked_up_in(&owner).unwrap(), Some(admin()), "asked twice, still no read");
    }

    #[test]
    fn the_lookup_of_the_servers_early_check_reaches_the_function() {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        parts.extensions.insert(RequestSession::known(Some(admin())));
        let owner = Owner::new();
        owner.with(|| {
            provide_context(parts);
            super::provide_request_session();
        });
        assert_eq!(looked_up_in(&owner).unwrap(), Some(admin()));
    }
}
