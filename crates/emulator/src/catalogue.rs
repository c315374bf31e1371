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

const fn d(name: &'static str, id: &'static str, at: &'static str, ad: &'static str, ut: &'static str, ud: &'static str) -> Permission {
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

/// A delegated permission only an administrator may consent to.
const fn admin_d(p: Permission) -> Permission {
    Permission { admin_only: true, ..p }
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
    // The rest of the delegated mail, calendar, contact, task, user and mailbox-settings permissions a
    // client may request. Checked against the permissions reference (S11: learn.microsoft.com/graph/
    // permissions-reference and its graphpermissions.merill.net mirror) for ids and admin wording, and
    // against published Graph service-principal dumps (S12) for the user-consent wording: every id
    // matches; the user-consent wording of Calendars.ReadBasic, and the descriptions of User.ReadWrite,
    // User.ReadWrite.All and Directory.Read.All, were not found there and stay UNCONFIRMED.
    d(
        "Mail.ReadBasic",
        "a4b8392a-d8d1-4954-a029-8e668a39a170",
        "Read user basic mail",
        "Allows the app to read email in the signed-in user's mailbox except body, previewBody, attachments and any extended properties.",
        "Read user basic mail",
        "Allows the app to read email in the signed-in user's mailbox except body, previewBody, attachments and any extended properties.",
    ),
    d(
        "Mail.ReadWrite",
        "024d486e-b451-40bb-833d-3e66d98c5c73",
        "Read and write access to user mail",
        "Allows the app to create, read, update, and delete email in user mailboxes. Does not include permission to send mail.",
        "Read and write access to your mail",
        "Allows the app to read, update, create and delete email in your mailbox. Does not include permission to send mail.",
    ),
    d(
        "Calendars.Read",
        "465a38f9-76ea-45b9-9f34-9e8b0d4b0b42",
        "Read user calendars",
        "Allows the app to read events in user calendars.",
        "Read your calendars",
        "Allows the app to read events in your calendars.",
    ),
    d(
        "Calendars.ReadBasic",
        "662d75ba-a364-42ad-adee-f5f880ea4878",
        "Read basic details of user calendars",
        "Allows the app to read events in user calendars, except for properties such as body, attachments, and extensions.",
        "Read basic details of your calendars",
        "Allows the app to read events in your calendars, except for properties such as body, attachments, and extensions.",
    ),
    d(
        "Contacts.Read.Shared",
        "242b9d9e-ed24-4d09-9a52-f43769beb9d4",
        "Read user and shared contacts",
        "Allows the app to read contacts a user has permissions to access, including their own and shared contacts.",
        "Read your and shared contacts",
        "Allows the app to read contacts you have permissions to access, including your own and shared contacts.",
    ),
    d(
        "Contacts.ReadWrite.Shared",
        "afb6c84b-06be-49af-80bb-8f3f77004eab",
        "Read and write user and shared contacts",
        "Allows the app to create, read, update, and delete contacts a user has permissions to, including their own and shared contacts.",
        "Read and write to your and shared contacts",
        "Allows the app to read, update, create, and delete contacts you have permissions to access, including your own and shared contacts.",
    ),
    d(
        "Tasks.Read.Shared",
        "88d21fd4-8e5a-4c32-b5e2-4a1c95f34f72",
        "Read user and shared tasks",
        "Allows the app to read tasks a user has permissions to access, including their own and shared tasks.",
        "Read your and shared tasks",
        "Allows the app to read tasks you have permissions to access, including your own and shared tasks.",
    ),
    d(
        "Tasks.ReadWrite.Shared",
        "c5ddf11b-c114-4886-8558-8a4e557cd52b",
        "Read and write user and shared tasks",
        "Allows the app to create, read, update, and delete tasks a user has permissions to, including their own and shared tasks.",
        "Read and write to your and shared tasks",
        "Allows the app to read, update, create, and delete tasks you have permissions to access, including your own and shared tasks.",
    ),
    d(
        "User.ReadWrite",
        "b4e74841-8e56-480b-be8b-910348b18b4c",
        "Read and write access to user profile",
        "Allows the app to read the signed-in user's full profile. It also allows the app to update the signed-in user's profile information on their behalf.",
        "Read and update your profile",
        "Allows the app to read your profile, and discover your group membership, reports and manager. It also allows the app to update your profile information on your behalf.",
    ),
    admin_d(d(
        "User.Read.All",
        "a154be20-db9c-4678-8ab7-66f6cc099a59",
        "Read all users' full profiles",
        "Allows the app to read the full set of profile properties, reports, and managers of other users in your organization, on behalf of the signed-in user.",
        "Read all users' full profiles",
        "Allows the app to read the full set of profile properties, reports, and managers of other users in your organization, on your behalf.",
    )),
    admin_d(d(
        "User.ReadWrite.All",
        "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
        "Read and write all users' full profiles",
        "Allows the app to read and write the full set of profile properties, reports, and managers of other users in your organization, on behalf of the signed-in user.",
        "Read and write all users' full profiles",
        "Allows the app to read and write the full set of profile properties, reports, and managers of other users in your organization, on your behalf.",
    )),
    admin_d(d(
        "Directory.Read.All",
        "06da0dbc-49e2-44d2-8312-53f166ab848a",
        "Read directory data",
        "Allows the app to read data in your organization's directory, such as users, groups and apps.",
        "Read directory data",
        "Allows the app to read data in your organization's directory.",
    )),
    d(
        "MailboxSettings.Read",
        "87f447af-9fa4-4c32-9dfa-4a57a73d18ce",
        "Read user mailbox settings",
        "Allows the app to the read user's mailbox settings. Does not include permission to send mail.",
        "Read your mailbox settings",
        "Allows the app to read your mailbox settings.",
    ),
    d(
        "MailboxSettings.ReadWrite",
        "818c620a-27a9-40bd-a6a5-d96f7d610b4b",
        "Read and write user mailbox settings",
        "Allows the app to create, read, update, and delete user's mailbox settings. Does not include permission to send mail.",
        "Read and write to your mailbox settings",
        "Allows the app to read, update, create, and delete your mailbox settings.",
    ),
    // Application permissions beyond the spec table's.
    a(
        "Mail.ReadBasic",
        "6be147d2-ea4f-4b5a-a3fa-3eab6f3c140a",
        "Read basic mail in all mailboxes",
        "Allows the app to read basic mail properties in all mailboxes without a signed-in user. Includes all properties except body, previewBody, attachments and any extended properties.",
    ),
    a(
        "Mail.ReadBasic.All",
        "693c5e45-0940-467d-9b8a-1022fb9d42ef",
        "Read basic mail in all mailboxes",
        "Allows the app to read basic mail properties in all mailboxes without a signed-in user. Includes all properties except body, previewBody, attachments and any extended properties.",
    ),
    a(
        "Calendars.ReadBasic.All",
        "8ba4a692-bc31-4128-9094-475872af8a53",
        "Read basic details of calendars in all mailboxes",
        "Allows the app to read events of all calendars, except for properties such as body, attachments, and extensions, without a signed-in user.",
    ),
    a(
        "Contacts.ReadWrite",
        "6918b873-d17a-4dc1-b314-35f528134491",
        "Read and write contacts in all mailboxes",
        "Allows the app to create, read, update, and delete all contacts in all mailboxes without a signed-in user.",
    ),
    a(
        "User.ReadBasic.All",
        "97235f07-e226-4f63-ace3-39588e11d3a1",
        "Read all users' basic profiles",
        "Allows the app to read a basic set of profile properties of other users in your organization without a signed-in user.",
    ),
    a(
        "User.ReadWrite.All",
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "Read and write all users' full profiles",
        "Allows the app to read and update user profiles without a signed in user.",
    ),
    a(
        "Directory.Read.All",
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "Read directory data",
        "Allows the app to read data in your organization's directory, such as users, groups and apps, without a signed-in user.",
    ),
    a(
        "MailboxSettings.Read",
        "40f97065-369a-49f4-947c-6a255697ae91",
        "Read all user mailbox settings",
        "Allows the app to read user's mailbox settings without a signed-in user. Does not include permission to send mail.",
    ),
    a(
        "MailboxSettings.ReadWrite",
        "6931bccd-447a-43d1-b442-00a195474933",
        "Read and write all user mailbox settings",
        "Allows the app to create, read, update, and delete user's mailbox settings without a signed-in user. Does not include permission to send mail.",
    ),
];

pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

pub(crate) fn delegated(name: &str) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|p| !p.application && p.name.eq_ignore_ascii_case(name))
}

pub(crate) fn application(name: &str) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|p| p.application && p.name.eq_ignore_ascii_case(name))
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
    delegated(name).filter(|p| !OIDC_SCOPES.contains(&p.name)).map(|p| Scope::Graph(p.name)).ok_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_qualified_graph_scopes_are_the_same() {
        assert_eq!(parse_scope("mail.read"), Ok(Scope::Graph("Mail.Read")));
        assert_eq!(parse_scope("https://graph.microsoft.com/Mail.Read"), Ok(Scope::Graph("Mail.Read")));
        assert_eq!(parse_scope("https://graph.microsoft.com/.default"), Ok(Scope::Default));
        assert_eq!(parse_scope("OpenID"), Ok(Scope::Oidc("openid")));
        assert!(parse_scope("Mail.Teleport").is_err());
    }

    #[test]
    fn consent_strings_follow_the_spec_table() {
        assert_eq!(delegated("Mail.Read.Shared").unwrap().user_title, "Read mail you can access");
        assert_eq!(delegated("Calendars.Read.Shared").unwrap().user_title, "Read calendars\u{a0}you can access");
        assert_eq!(application("Calendars.Read").unwrap().admin_title, "Read calendars in all mailboxes");
    }

    #[test]
    fn added_permissions_carry_microsofts_ids_and_wording() {
        let d = |n: &str| delegated(n).unwrap();
        assert_eq!(
            (d("Mail.ReadBasic").id, d("Mail.ReadBasic").admin_title),
            ("a4b8392a-d8d1-4954-a029-8e668a39a170", "Read user basic mail")
        );
        assert_eq!(d("Calendars.ReadBasic").admin_title, "Read basic details of user calendars");
        assert_eq!(d("Contacts.Read.Shared").id, "242b9d9e-ed24-4d09-9a52-f43769beb9d4");
        assert!(d("Contacts.Read.Shared").user_description.starts_with("Allows the app to read contacts you have"));
        assert_eq!(d("Tasks.ReadWrite.Shared").user_title, "Read and write to your and shared tasks");
        assert_eq!(d("MailboxSettings.Read").user_description, "Allows the app to read your mailbox settings.");
        assert_eq!(d("User.Read.All").id, "a154be20-db9c-4678-8ab7-66f6cc099a59");
        let a = |n: &str| application(n).unwrap().id;
        assert_eq!(
            (a("Mail.ReadBasic"), a("Mail.ReadBasic.All")),
            ("6be147d2-ea4f-4b5a-a3fa-3eab6f3c140a", "693c5e45-0940-467d-9b8a-1022fb9d42ef")
        );
        assert_eq!(a("Contacts.ReadWrite"), "6918b873-d17a-4dc1-b314-35f528134491");
    }
}
