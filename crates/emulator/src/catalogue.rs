//! Graph permission catalogue: names, ids and the consent wording of MICROSOFT.md §2.
//!
//! The consent page shows the *user-consent* strings; the admin-consent page the *admin* strings
//! (§1.9). Strings copied from the spec table, including its "(sic)" and NBSP quirks.

pub(crate) const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
pub(crate) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

pub(crate) struct Permission {
    pub name: &'static str,
    /// true = application permission (app role), false = delegated scope
    pub application: bool,
    #[allow(dead_code)] // the permission id is part of the catalogue facts (§2)
    pub id: &'static str,
    pub admin_title: &'static str,
    pub admin_description: &'static str,
    pub user_title: &'static str,
    pub user_description: &'static str,
    /// Delegated scopes that need an admin even when users may consent.
    pub admin_only: bool,
}

const fn d(
    name: &'static str,
    id: &'static str,
    at: &'static str,
    ad: &'static str,
    ut: &'static str,
    ud: &'static str,
) -> Permission {
    Permission {
        name,
        application: false,
        id,
        admin_title: at,
        admin_description: ad,
        user_title: ut,
        user_description: ud,
        admin_only: false,
    }
}
const fn a(name: &'static str, id: &'static str, at: &'static str, ad: &'static str) -> Permission {
    Permission {
        name,
        application: true,
        id,
        admin_title: at,
        admin_description: ad,
        user_title: "",
        user_description: "",
        admin_only: true,
    }
}

pub(crate) const PERMISSIONS: &[Permission] = &[
    d(
        "openid",
        "37f7f235-527c-4136-accd-4a02d197296e",
        "Sign users in",
        "Allows users to sign in to the app with their work or school accounts and allows the app to see basic user profile information.",
        "Sign in as you",
        "Allows you to sign in to the app with your organizational account and let the app read your profile.",
    ),
    d(
        "profile",
        "14dad69e-099b-42c9-810b-d002981feec1",
        "View users' basic profile",
        "Allows the app to see your users' basic profile (e.g., name, picture, user name, email address)",
        "View your basic profile",
        "Allows the app to see your basic profile (e.g., name, picture, user name, email address)",
    ),
    d(
        "email",
        "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
        "View users' email address",
        "Allows the app to read your users' primary email address",
        "View your email address",
        "Allows the app to read your primary email address",
    ),
    d(
        "offline_access",
        "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
        "Maintain access to data you have given it access to",
        "Allows the app to see and update the data you gave it access to, even when users are not currently using the app. This does not give the app any additional permissions.",
        "Maintain access to data you have given it access to",
        "Allows the app to see and update the data you gave it access to, even when you are not currently using the app. This does not give the app any additional permissions.",
    ),
    d(
        "User.Read",
        "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        "Sign in and read user profile",
        "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users. It also allows the app to read basic company information of signed-in users.",
        "Sign you in and read your profile",
        "Allows you to sign in to the app with your organizational account and let the app read your profile. It also allows the app to read basic company information.",
    ),
    d(
        "User.ReadBasic.All",
        "b340eb25-3456-403f-be2f-af7a0d370277",
        "Read all users' basic profiles",
        "Allows the app to read a basic set of profile properties of other users in your organization on behalf of the signed-in user.",
        "Read all users' basic profiles",
        "Allows the app to read a basic set of profile properties of other users in your organization on your behalf.",
    ),
    d(
        "Mail.Read.Shared",
        "7b9103a5-4610-446b-9670-80643382c1fa",
        "Read user and shared mail",
        "Allows the app to read mail a user can access, including their own and shared mail.",
        "Read mail you can access",
        "Allows the app to read mail you can access, including shared mail.",
    ),
    d(
        "Calendars.Read.Shared",
        "2b9c4092-424d-4249-948d-b43879977640",
        "Read user and shared calendars",
        "Allows the app to read events in all calendars that the user can access, including delegate and shared calendars.",
        "Read calendars\u{a0}you can access",
        "Allows the app to read events in all calendars that you can access, including delegate and shared calendars.",
    ),
    d(
        "Contacts.Read",
        "ff74d97f-43af-4b68-9f2a-b77ee6968c5d",
        "Read user contacts",
        "Allows the app to read user contacts.",
        "Read your contacts",
        "Allows the app to read contacts in your contact folders.",
    ),
    d(
        "Tasks.Read",
        "f45671fb-e0fe-4b4b-be20-3d3ce43f1bcb",
        "Read user's tasks and task lists",
        "Allows the app to read the signed-in user's tasks and task lists, including any shared with the user. Doesn't include permission to create, delete, or update anything.",
        "Read your tasks and task lists",
        "Allows the app to read your tasks and task lists, including any shared with you.",
    ),
    d(
        "Mail.Read",
        "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
        "Read user mail",
        "Allows the app to read the signed-in user's mailbox.",
        "Read your mail",
        "Allows the app to read email in your mailbox.",
    ),
    d(
        "Mail.ReadWrite.Shared",
        "5df07973-7d5d-46ed-9847-1271055cbd51",
        "Read and write user and shared mail",
        "Allows the app to create, read, update, and delete mail a user has permission to access, including their own and shared mail. Does not include permission to send mail.",
        "Read and write mail you can access",
        "Allows the app to read, update, create, and delete mail you have permission to access, including your own and shared mail. Does not allow the app to send mail on your behalf.",
    ),
    d(
        "Mail.Send.Shared",
        "a367ab51-6b49-43bf-a716-a1fb06d2a174",
        "Send mail on behalf of others",
        "Allows the app to send mail as the signed-in user, including sending on-behalf of others.",
        "Send mail on behalf of others or yourself",
        "Allows the app to send mail as you or on-behalf of someone else.",
    ),
    d(
        "Mail.Send",
        "e383f46e-2787-4529-855e-0e479a3ffac0",
        "Send mail as a user",
        "Allows the app to send mail as users in the organization.",
        "Send mail as you",
        "Allows the app to send mail as you.",
    ),
    d(
        "Calendars.ReadWrite",
        "1ec239c2-d7c9-4623-a91a-a9775856bb36",
        "Have full access to user calendars",
        "Allows the app to create, read, update, and delete events in user calendars.",
        "Have full access to your calendars",
        "Allows the app to read, update, create and delete events in your calendars.",
    ),
    d(
        "Calendars.ReadWrite.Shared",
        "12466101-c9b8-439a-8589-dd09ee67e8e9",
        "Read and write user and shared calendars",
        "Allows the app to create, read, update and delete events in all calendars in the organization user has permissions to access. This includes delegate and shared calendars.",
        "Read and write to your and shared calendars",
        "Allows the app to read, update, create and delete events in all calendars in your organization you have permissions to access. This includes delegate and shared calendars.",
    ),
    d(
        "Contacts.ReadWrite",
        "d56682ec-c09e-4743-aaf4-1a3aac4caa21",
        "Have full access to user contacts",
        "Allows the app to create, read, update, and delete user contacts.",
        "Have full access of your contacts",
        "Allows the app to read, update, create and delete contacts in your contact folders.",
    ),
    d(
        "Tasks.ReadWrite",
        "2219042f-cab5-40cc-b0d2-16b1540b4c5f",
        "Create, read, update, and delete user's tasks and task lists",
        "Allows the app to create, read, update, and delete the signed-in user's tasks and task lists, including any shared with the user.",
        "Create, read, update, and delete your tasks and task lists",
        "Allows the app to create, read, update, and delete your tasks and task lists, including any shared with you.",
    ),
    a(
        "Mail.Read",
        "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
        "Read mail in all mailboxes",
        "Allows the app to read mail in all mailboxes without a signed-in user.",
    ),
    a(
        "Mail.ReadWrite",
        "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
        "Read and write mail in all mailboxes",
        "Allows the app to create, read, update, and delete mail in all mailboxes without a signed-in user. Does not include permission to send mail.",
    ),
    a(
        "Mail.Send",
        "b633e1c5-b582-4048-a93e-9f11b44c7e96",
        "Send mail as any user",
        "Allows the app to send mail as any user without a signed-in user.",
    ),
    a(
        "Calendars.Read",
        "798ee544-9d2d-430c-a058-570e29e34338",
        "Read calendars in all mailboxes",
        "Allows the app to read events of all calendars without a signed-in user.",
    ),
    a(
        "Calendars.ReadWrite",
        "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
        "Read and write calendars in all mailboxes",
        "Allows the app to create, read, update, and delete events of all calendars without a signed-in user.",
    ),
    a(
        "Contacts.Read",
        "089fe4d0-434a-44c5-8827-41ba8a0b17f5",
        "Read contacts in all mailboxes",
        "Allows the app to read all contacts in all mailboxes without a signed-in user.",
    ),
    a(
        "User.Read.All",
        "df021288-bdef-4463-88db-98f22de89214",
        "Read all users' full profiles",
        "Allows the app to read user profiles without a signed in user.",
    ),
    a(
        "Tasks.Read.All",
        "f10e1f91-74ed-437f-a6fd-d6ae88e26c1f",
        "Read all users' tasks and tasklist",
        "Allows the app to read all users' tasks and task lists in your organization, without a signed-in user.",
    ),
    a(
        "Tasks.ReadWrite.All",
        "44e666d1-d276-445b-a5fc-8815eeb81d55",
        "Read and write all users' tasks and tasklists",
        "Allows the app to create, read, update and delete all users' tasks and task lists in your organization, without a signed-in user.",
    ),
];

pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

pub(crate) fn delegated(name: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|p| !p.application && p.name.eq_ignore_ascii_case(name))
}

pub(crate) fn application(name: &str) -> Option<&'static Permission> {
    PERMISSIONS
        .iter()
        .find(|p| p.application && p.name.eq_ignore_ascii_case(name))
}

/// A requested scope after normalisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// openid / profile / email / offline_access
    Oidc(&'static str),
    /// A delegated Graph permission, canonical name.
    Graph(&'static str),
    /// `https://graph.microsoft.com/.default`
    Default,
}

/// Normalises one scope: bare Graph names imply Graph (`Mail.Read` ≡ `https://graph.microsoft.com/Mail.Read`,
/// MICROSOFT.md §1.2). `Err` carries the scope for AADSTS70011.
pub(crate) fn parse_scope(s: &str) -> Result<Scope, String> {
    if let Some(o) = OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(s)) {
        return Ok(Scope::Oidc(o));
    }
    let lower = s.to_ascii_lowercase();
    let name = if let Some(rest) = lower.strip_prefix("https://graph.microsoft.com/") {
        &s[s.len() - rest.len()..]
    } else if let Some(rest) = lower.strip_prefix(&format!("{GRAPH_APP_ID}/")) {
        &s[s.len() - rest.len()..]
    } else {
        s
    };
    if name == ".default" {
        return Ok(Scope::Default);
    }
    delegated(name)
        .filter(|p| !OIDC_SCOPES.contains(&p.name))
        .map(|p| Scope::Graph(p.name))
        .ok_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_qualified_graph_scopes_are_the_same() {
        assert_eq!(parse_scope("mail.read"), Ok(Scope::Graph("Mail.Read")));
        assert_eq!(
            parse_scope("https://graph.microsoft.com/Mail.Read"),
            Ok(Scope::Graph("Mail.Read"))
        );
        assert_eq!(
            parse_scope("https://graph.microsoft.com/.default"),
            Ok(Scope::Default)
        );
        assert_eq!(parse_scope("OpenID"), Ok(Scope::Oidc("openid")));
        assert!(parse_scope("Mail.Teleport").is_err());
    }

    #[test]
    fn consent_strings_follow_the_spec_table() {
        assert_eq!(
            delegated("Mail.Read.Shared").unwrap().user_title,
            "Read mail you can access"
        );
        assert_eq!(
            delegated("Calendars.Read.Shared").unwrap().user_title,
            "Read calendars\u{a0}you can access"
        );
        assert_eq!(
            application("Calendars.Read").unwrap().admin_title,
            "Read calendars in all mailboxes"
        );
    }
}
