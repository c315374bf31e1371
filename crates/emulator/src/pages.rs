//! HTML pages of the interactive sign-in, consent and admin-consent steps.
//!
//! Kept plain and stable for Playwright: inputs `#email`, `#password`, `#otc`; buttons "Sign in"
//! (`#signin`), "Accept" (`#accept`), "Cancel" (`#cancel`), "Verify" (`#verify`); errors in `#error`.
//! Every form posts to `/{tenant}/login` with the flow id in a hidden field.

use crate::util::html_escape as esc;

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>body{{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0}}\
main{{max-width:440px;margin:48px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}\
h1{{font-size:24px;font-weight:600}}label{{display:block;margin:12px 0 4px}}input[type=email],input[type=password],input[type=text]{{width:100%;padding:6px;font-size:15px;box-sizing:border-box}}\
.buttons{{margin-top:24px;display:flex;gap:8px;justify-content:flex-end}}button{{padding:6px 24px;font-size:15px}}\
button.primary{{background:#0067b8;color:#fff;border:0}}#error{{color:#e81123}}.banner{{font-size:13px;color:#666}}\
ul.perms li{{margin-bottom:8px}}.perm-desc{{font-size:13px;color:#555}}</style></head>\
<body><main><div class=\"banner\">Microsoft (emulated)</div>{}</main></body></html>",
        esc(title),
        body
    )
}

fn hidden(tenant: &str, flow: &str) -> String {
    format!("<form method=\"POST\" action=\"/{}/login\"><input type=\"hidden\" name=\"flow\" value=\"{}\">", esc(tenant), esc(flow))
}

fn error_block(error: Option<&str>) -> String {
    error.map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default()
}

pub(crate) fn sign_in(tenant: &str, flow: &str, app_name: &str, email: &str, error: Option<&str>, admin_only: bool) -> String {
    let note = if admin_only {
        "<p id=\"admin-note\">Sign in with an administrator account of your organization to grant consent.</p>"
    } else {
        ""
    };
    layout(
        "Sign in to your account",
        &format!(
            "<h1>Sign in</h1><p>to continue to <span id=\"app-name\">{}</span></p>{note}{}{}\
<label for=\"email\">Email, phone, or Skype</label><input type=\"email\" id=\"email\" name=\"email\" value=\"{}\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\">\
<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button>\
<button type=\"submit\" class=\"primary\" id=\"signin\" name=\"action\" value=\"signin\">Sign in</button></div></form>",
            esc(app_name),
            error_block(error),
            hidden(tenant, flow),
            esc(email)
        ),
    )
}

pub(crate) fn pick_account(tenant: &str, flow: &str, name: &str, upn: &str) -> String {
    layout(
        "Pick an account",
        &format!(
            "<h1>Pick an account</h1>{}<div class=\"buttons\" style=\"flex-direction:column\">\
<button type=\"submit\" id=\"account-0\" name=\"action\" value=\"continue\">{} ({})</button>\
<button type=\"submit\" id=\"use-another-account\" name=\"action\" value=\"other\">Use another account</button>\
<button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button></div></form>",
            hidden(tenant, flow),
            esc(name),
            esc(upn)
        ),
    )
}

pub(crate) fn mfa(tenant: &str, flow: &str, upn: &str, error: Option<&str>) -> String {
    layout(
        "Verify your identity",
        &format!(
            "<h1>Enter code</h1><p>We sent a verification code to the authenticator of <span id=\"upn\">{}</span>.</p>{}{}\
<label for=\"otc\">Code</label><input type=\"text\" id=\"otc\" name=\"otc\" inputmode=\"numeric\" autocomplete=\"one-time-code\">\
<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button>\
<button type=\"submit\" class=\"primary\" id=\"verify\" name=\"action\" value=\"verify\">Verify</button></div></form>",
            esc(upn),
            error_block(error),
            hidden(tenant, flow)
        ),
    )
}

pub(crate) struct ConsentView<'a> {
    pub tenant: &'a str,
    pub flow: &'a str,
    pub app_name: &'a str,
    pub publisher: Option<&'a str>,
    pub upn: &'a str,
    /// (title, description) in the wording for this audience (user or admin strings, MICROSOFT.md §2).
    pub permissions: Vec<(String, String)>,
    /// Show "Consent on behalf of your organization" (admins on the user consent page).
    pub org_checkbox: bool,
    /// Admin consent endpoint variant: "Accept for your organization".
    pub for_organization: bool,
}

pub(crate) fn consent(v: &ConsentView<'_>) -> String {
    let publisher = match v.publisher {
        Some(p) => format!("<p id=\"publisher\">{}</p>", esc(p)),
        None => "<p id=\"publisher\">unverified</p><p class=\"perm-desc\">Unverified</p>".to_string(),
    };
    let perms: String = v
        .permissions
        .iter()
        .map(|(t, d)| format!("<li><div class=\"perm-title\">{}</div><div class=\"perm-desc\">{}</div></li>", esc(t), esc(d)))
        .collect();
    let org_variant = if v.for_organization { "<p id=\"org-note\">Accept for your organization</p>" } else { "" };
    let checkbox = if v.org_checkbox {
        "<p><input type=\"checkbox\" id=\"consent-org\" name=\"consent_org\" value=\"true\"><label for=\"consent-org\" style=\"display:inline\">Consent on behalf of your organization</label></p>"
    } else {
        ""
    };
    layout(
        "Permissions requested",
        &format!(
            "<p id=\"signed-in-as\">{}</p><h1>Permissions requested</h1>{org_variant}<p id=\"app-name\">{}</p>{publisher}\
<p>This app would like to:</p><ul class=\"perms\" id=\"permissions\">{perms}</ul>{}{checkbox}\
<p class=\"perm-desc\">Accepting these permissions means that you allow this app to use your data as specified in their terms of service and privacy statement.</p>\
<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button>\
<button type=\"submit\" class=\"primary\" id=\"accept\" name=\"action\" value=\"accept\">Accept</button></div></form>",
            esc(v.upn),
            esc(v.app_name),
            hidden(v.tenant, v.flow)
        ),
    )
}

/// The "Need admin approval" page (AADSTS90094, MICROSOFT.md §1.9).
pub(crate) fn need_admin_approval(tenant: &str, flow: &str, app_name: &str, upn: &str) -> String {
    layout(
        "Need admin approval",
        &format!(
            "<p id=\"signed-in-as\">{}</p><h1>Need admin approval</h1><p id=\"app-name\">{}</p>\
<p id=\"approval-message\">{} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.</p>{}\
<div class=\"buttons\" style=\"flex-direction:column;align-items:flex-start\">\
<button type=\"submit\" id=\"admin-sign-in\" name=\"action\" value=\"admin\">Have an admin account? Sign in with that account</button>\
<button type=\"submit\" id=\"return-to-app\" name=\"action\" value=\"return\">Return to the application without granting consent</button></div></form>",
            esc(upn),
            esc(app_name),
            esc(app_name),
            hidden(tenant, flow)
        ),
    )
}

/// Error page shown when Entra cannot redirect back (e.g. AADSTS50011 redirect URI mismatch).
pub(crate) fn error(code: u32, message: &str, trace: &str, correlation: &str, timestamp: &str) -> String {
    layout(
        "Sign in to your account",
        &format!(
            "<h1>Sorry, but we’re having trouble signing you in.</h1><p id=\"error\" role=\"alert\">AADSTS{code}: {}</p>\
<p class=\"perm-desc\">Request Id: <span id=\"trace-id\">{}</span><br>Correlation Id: <span id=\"correlation-id\">{}</span><br>Timestamp: <span id=\"timestamp\">{}</span></p>",
            esc(message),
            esc(trace),
            esc(correlation),
            esc(timestamp)
        ),
    )
}

pub(crate) fn signed_out() -> String {
    layout("Signed out", "<h1 id=\"signed-out\">You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>")
}

/// `response_mode=form_post`: an auto-submitting form to the redirect URI.
pub(crate) fn form_post(action: &str, params: &[(&str, String)]) -> String {
    let inputs: String = params.iter().map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v))).collect();
    format!(
        "<html><head><title>Working...</title></head><body><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\"></noscript></form><script>document.forms[0].submit()</script></body></html>",
        esc(action)
    )
}
