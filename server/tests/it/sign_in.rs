use crate::helpers::{session_cookie, spawn_app};

#[tokio::test]
async fn signing_in_sets_a_hardened_cookie_with_a_new_id_each_time() {
    let app = spawn_app().await;
    let client = app.client();
    let form = [("email", "alice@northwind.test"), ("password", server::demo::MEMBER_PASSWORD)];
    let first = app.call(&client, "login", &form).await;
    assert!(first.status().is_success() || first.status().is_redirection(), "{}", first.status());
    let c1 = session_cookie(&first).expect("a session cookie");
    assert!(c1.contains("HttpOnly"), "{c1}");
    assert!(c1.contains("SameSite=Lax"), "{c1}");
    assert!(c1.contains("Path=/"), "{c1}");
    let second = app.call(&client, "login", &form).await;
    let c2 = session_cookie(&second).expect("a session cookie");
    assert_ne!(c1.split(';').next(), c2.split(';').next(), "a new session id at every sign-in");

    let me = app.call(&client, "current_user", &[]).await;
    assert_eq!(me.status(), 200);
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(body["email"], "alice@northwind.test");
    assert_eq!(body["role"], "member");
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_saying_which_part_was_wrong() {
    let app = spawn_app().await;
    let client = app.client();
    let res = app.call(&client, "login", &[("email", "alice@northwind.test"), ("password", "nope-nope")]).await;
    assert_eq!(res.status(), 422);
    assert!(session_cookie(&res).is_none());
    let text = res.text().await.unwrap();
    assert!(text.contains("That email and password do not match an account."), "{text}");
    let me: serde_json::Value = app.call(&client, "current_user", &[]).await.json().await.unwrap();
    assert!(me.is_null(), "still signed out: {me}");
}

#[tokio::test]
async fn sign_in_is_rate_limited() {
    let app = spawn_app().await;
    let client = app.client();
    for _ in 0..store::accounts::MAX_FAILURES_PER_EMAIL {
        let res = app.call(&client, "login", &[("email", "bob@northwind.test"), ("password", "guess-guess")]).await;
        assert_eq!(res.status(), 422);
    }
    let res = app.call(&client, "login", &[("email", "bob@northwind.test"), ("password", server::demo::MEMBER_PASSWORD)]).await;
    assert_eq!(res.status(), 429);
    assert!(session_cookie(&res).is_none());
    assert!(res.text().await.unwrap().contains("Too many failed sign-in attempts"));
}

#[tokio::test]
async fn members_get_403_from_admin_functions_and_visitors_401() {
    let app = spawn_app().await;
    let visitor = app.client();
    assert_eq!(app.call(&visitor, "list_integrations", &[]).await.status(), 401);
    // Writing needs a session too, before anything sent is read.
    for endpoint in ["load_write_offer", "load_my_writes", "record_write"] {
        let form: &[(&str, &str)] = if endpoint == "record_write" { &[("key", "visitor-key-1"), ("request", "{}")] } else { &[] };
        assert_eq!(app.call(&visitor, endpoint, form).await.status(), 401, "{endpoint}");
    }

    let member = app.signed_in("carol@northwind.test").await;
    let res = app.call(&member, "list_integrations", &[]).await;
    assert_eq!(res.status(), 403);
    let err: serde_json::Value = res.json().await.unwrap();
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["message"], "Only admins can do this. Ask an admin of your organization.");

    let admin = app.signed_in("admin@northwind.test").await;
    let res = app.call(&admin, "list_integrations", &[]).await;
    assert_eq!(res.status(), 200);
    let rows: serde_json::Value = res.json().await.unwrap();
    assert_eq!(rows[0]["kind"], "Office365");
    assert_eq!(rows[0]["status"], "NotSetUp");
}

#[tokio::test]
async fn admin_pages_say_ask_your_admin_to_members_and_redirect_visitors() {
    let app = spawn_app().await;
    let visitor = app.client();
    // A browser asks for HTML; that is when the server answers with a real redirect.
    let res = visitor.get(app.url("/settings/integrations")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/login");

    let member = app.signed_in("alice@northwind.test").await;
    let res = member.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("This page is for admins"));
    assert!(!html.contains("data-integration=\"office365\""));

    let admin = app.signed_in("admin@northwind.test").await;
    let res = admin.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("All Integrations"));
    assert!(html.contains("Not set up"));
}

#[tokio::test]
async fn signing_out_ends_the_session_for_good() {
    let app = spawn_app().await;
    let client = app.signed_in("bob@northwind.test").await;
    let me: serde_json::Value = app.call(&client, "current_user", &[]).await.json().await.unwrap();
    assert_eq!(me["email"], "bob@northwind.test");
    let res = app.call(&client, "logout", &[]).await;
    let cleared = session_cookie(&res).expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"));
    let me: serde_json::Value = app.call(&client, "current_user", &[]).await.json().await.unwrap();
    assert!(me.is_null());
}

#[tokio::test]
async fn cross_site_posts_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let client = app.client();
    let res = client
        .post(app.url("/api/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "alice@northwind.test"), ("password", server::demo::MEMBER_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(session_cookie(&res).is_none());
    let res = client
        .post(app.url("/api/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", "alice@northwind.test"), ("password", server::demo::MEMBER_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn every_admin_function_refuses_members_and_changes_nothing() {
    let app = spawn_app().await;
    let org = app.store.organization_by_name(server::demo::ORG_NAME).await.unwrap().unwrap().id;
    let member = app.signed_in("alice@northwind.test").await;
    let calls: [(&str, &[(&str, &str)]); 16] = [
        ("list_integrations", &[]),
        ("load_office365_settings", &[]),
        ("save_office365_settings", &[("form[enabled]", "true"), ("form[tenant]", "northwind.test"), ("confirm_poll_primary", "no")]),
        ("audit_log", &[]),
        ("load_team_connections", &[]),
        ("disconnect_team_connection", &[("id", "00000000-0000-4000-8000-000000000000")]),
        ("load_my_connection", &[]),
        ("deactivate_my_connection", &[]),
        ("load_admin_consent", &[]),
        ("load_service_accounts", &[]),
        ("search_directory", &[("query", "a")]),
        ("add_service_account_user", &[("address", "bob@northwind.test")]),
        ("remove_service_account_user", &[("id", "00000000-0000-4000-8000-000000000000")]),
        ("sync_my_connection_now", &[]),
        ("sync_team_connection_now", &[("id", "00000000-0000-4000-8000-000000000000")]),
        // Another person's activity.
        ("load_activity", &[("kind", ""), ("q", ""), ("page", "0"), ("member", "00000000-0000-4000-8000-000000000000")]),
    ];
    for (endpoint, form) in calls {
        let res = app.call(&member, endpoint, form).await;
        assert_eq!(res.status(), 403, "{endpoint}");
        let err: serde_json::Value = res.json().await.unwrap();
        assert_eq!(err["code"], "forbidden", "{endpoint}");
    }
    assert!(app.store.audit_log(org, 10).await.unwrap().is_empty(), "nothing was recorded");
    assert!(app.store.service_account_users(org).await.unwrap().is_empty());
    assert!(!app.store.office365_settings(org).await.unwrap().enabled);
}

/// A sign-in from `client` as a reverse proxy would forward it.
async fn login_from(app: &crate::helpers::TestApp, client: &str, email: &str, password: &str) -> reqwest::Response {
    app.client()
        .post(app.url("/api/login"))
        .header("sec-fetch-site", "same-origin")
        .header("x-forwarded-for", format!("198.51.100.250, {client}"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit() {
    let app = crate::helpers::spawn_app_behind_proxy().await;
    for n in 0..store::accounts::MAX_FAILURES_PER_IP {
        // Other emails each time, so only the per-address limit is reached.
        let res = login_from(&app, "203.0.113.7", &format!("nobody{n}@example.test"), "guess-guess").await;
        assert_eq!(res.status(), 422, "attempt {n}");
    }
    let locked = login_from(&app, "203.0.113.7", "alice@northwind.test", server::demo::MEMBER_PASSWORD).await;
    assert_eq!(locked.status(), 429, "the guessing client is locked out");
    let other = login_from(&app, "203.0.113.8", "alice@northwind.test", server::demo::MEMBER_PASSWORD).await;
    assert!(session_cookie(&other).is_some(), "another client behind the same proxy signs in: {}", other.status());
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forged_forwarded_address_changes_nothing() {
    let app = spawn_app().await;
    for n in 0..store::accounts::MAX_FAILURES_PER_IP {
        let res = login_from(&app, &format!("203.0.113.{n}"), &format!("nobody{n}@example.test"), "guess-guess").await;
        assert_eq!(res.status(), 422, "attempt {n}");
    }
    let res = login_from(&app, "198.51.100.9", "alice@northwind.test", server::demo::MEMBER_PASSWORD).await;
    assert_eq!(res.status(), 429, "the connection's own address counts, whatever the header says");
}

#[tokio::test]
async fn expired_sessions_are_purged_and_live_ones_kept() {
    let app = spawn_app().await;
    let alice = app.store.user_credentials(&domain::EmailAddress::parse("alice@northwind.test").unwrap()).await.unwrap().unwrap().user;
    let now = store::now_unix();
    let (old, live) = (store::SessionToken::generate(), store::SessionToken::generate());
    app.store.start_session(&alice, &old.hash(), now - 7200, now - 60, 3600).await.unwrap();
    app.store.start_session(&alice, &live.hash(), now, now + 3600, 3600).await.unwrap();
    assert_eq!(server::housekeeping::sweep(&app.store).await.unwrap(), 1, "the expired one");
    assert_eq!(server::housekeeping::sweep(&app.store).await.unwrap(), 0, "nothing left to purge");
    assert!(app.store.session_user(&live.hash(), now).await.unwrap().is_some(), "the live session still works");
}

#[tokio::test]
async fn a_request_with_two_session_cookies_is_signed_out() {
    let app = spawn_app().await;
    let own = crate::helpers::session_cookie_of(&app.base, "alice@northwind.test").await;
    let planted = format!("{}={}", store::SESSION_COOKIE, store::SessionToken::generate().as_cookie_value());
    let activity = |cookie: String| {
        let request =
            reqwest::Client::new().post(app.url("/api/load_activity")).header("cookie", cookie).header("sec-fetch-site", "same-origin");
        async move { request.send().await.unwrap().status() }
    };
    assert_ne!(activity(own.clone()).await, 401, "one session cookie: signed in");
    assert_eq!(activity(format!("{own}; {planted}")).await, 401, "a planted second session cookie: nobody is signed in");
    assert_eq!(activity(format!("{planted}; {own}")).await, 401, "whichever comes first");
}
