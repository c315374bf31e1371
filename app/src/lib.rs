//! The pages people see, and the server functions behind them.
//!
//! Server functions are thin adapters: the first line checks who is calling (see [`auth`]), the
//! rest calls a workflow of the `office365` crate, which knows nothing of Leptos.

pub mod auth;
pub mod components;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The name the wasm bundle, the JS glue and the stylesheet are served under (`/pkg/i360.*`).
pub const OUTPUT_NAME: &str = "i360";

/// The directory of the site the front end's files are served from (`/pkg/…`).
pub const PKG_DIR: &str = "pkg";

/// The stylesheet's address: `/pkg/i360.<hash>.css` when the site was built with content-hashed
/// names (its hash file, which Leptos reads for the script and the wasm too), else `/pkg/i360.css`.
/// The hash file is read once per path.
pub fn stylesheet_href(options: &LeptosOptions) -> String {
    static READ: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Option<String>>>> =
        std::sync::LazyLock::new(Default::default);
    let hash = options
        .hash_files
        .then(|| {
            let mut read = READ.lock().unwrap_or_else(|p| p.into_inner());
            read.entry(options.hash_file.to_string())
                .or_insert_with(|| {
                    let listed = std::fs::read_to_string(options.hash_file.as_ref()).ok()?;
                    listed.lines().find_map(|l| l.trim().strip_prefix("css:").map(|h| h.trim().to_owned()))
                })
                .clone()
        })
        .flatten();
    match hash {
        Some(h) => format!("/{PKG_DIR}/{OUTPUT_NAME}.{h}.css"),
        None => format!("/{PKG_DIR}/{OUTPUT_NAME}.css"),
    }
}

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" id="leptos" href=stylesheet_href(&options)/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    auth::provide_session();

    // Lets end-to-end tests wait until the page is interactive. Effects run only in the browser.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|page: String| {
            if page.is_empty() { "Intelligence360".to_string() } else { format!("{page} · Intelligence360") }
        }/>
        <Router>
            // Async rendering: the whole page is ready before the response head is sent, so a
            // redirect to /login or a 403 for a member always reaches the browser as a status code.
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/") view=pages::actions::ActionsPage ssr=SsrMode::Async/>
                <Route path=path!("/activity") view=pages::activity::ActivityPage ssr=SsrMode::Async/>
                <Route path=path!("/profile") view=pages::profile::ProfilePage ssr=SsrMode::Async/>
                <Route
                    path=path!("/settings/integrations")
                    view=pages::integrations::IntegrationsPage
                    ssr=SsrMode::Async
                />
                <Route path=path!("/connect/result") view=pages::connect_result::ConnectResultPage ssr=SsrMode::Async/>
                <Route path=path!("/settings/audit") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                <Route
                    path=path!("/settings/integrations/office365")
                    view=pages::office365::Office365Page
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/settings/integrations/office365/team")
                    view=pages::team_connections::TeamConnectionsPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/settings/integrations/office365/service-accounts")
                    view=pages::service_accounts::ServiceAccountsPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/settings/integrations/office365/admin-consent")
                    view=pages::admin_consent::AdminConsentPage
                    ssr=SsrMode::Async
                />
                <Route
                    path=path!("/settings/integrations/office365/my-connection")
                    view=pages::my_connection::MyConnectionPage
                    ssr=SsrMode::Async
                />
            </Routes>
        </Router>
    }
}
