//! The OAuth routes refuse what they cannot trust and always answer with a page, never a 500.

use crate::helpers::spawn_app;

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn starting_a_connection_needs_a_session_and_an_enabled_integration() {
    let app = spawn_app().await;
    let visitor = app.client();
    let res = visitor.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(location(&res), "/login");

    let member = app.signed_in("alice@northwind.test").await;
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "activate")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=admins_only", "only admins activate the primary integration");
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "connect")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=not_enabled");
    let res = member.post(app.url("/oauth/office365/start")).form(&[("purpose", "admin_consent")]).send().await.unwrap();
    assert_eq!(location(&res), "/connect/result?refused=unknown");
}

#[tokio::test]
async fn forged_or_stateless_callbacks_end_on_the_explanation_page() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin@northwind.test").await;
    let res = admin.get(app.url("/oauth/office365/callback?code=stolen&state=forged")).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(location(&res), "/connect/result?refused=expired");

    let res = admin
        .get(app.url("/oauth/office365/callback?error=access_denied&error_description=AADSTS65004%3a+declined"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/connect/result?reason=sign_in_not_verified");

    // The explanation page itself renders for anyone, in plain words.
    let page = admin.get(app.url("/connect/result?reason=consent_declined&code=AADSTS65004")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("The permissions were not accepted"));
    assert!(html.contains("AADSTS65004"));
    let page = admin.get(app.url("/connect/result?reason=%3Cscript%3E&code=%3Cb%3Ex")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>x"), "unknown values are never echoed");
}
