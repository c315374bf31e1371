//! The one catalogue of Microsoft Graph permissions the product asks for.
//!
//! The permissions table on the settings page, the `scope` of every authorization request and the
//! "granted vs needed per feature" check after every connect are all derived from [`CATALOGUE`], so
//! the three can never disagree (a hard-coded scope list beside the table is how products end up
//! asking for more than they show).

use crate::sync::Resource;
use serde::{Deserialize, Serialize};

/// How the help article groups permissions for readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    ReadOnly,
    ReadWrite,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Group::ReadOnly => "READ-ONLY",
            Group::ReadWrite => "READ-WRITE",
        }
    }
}

/// Delegated permissions act as a signed-in user; application permissions act as the app itself
/// and always need an admin's consent (MICROSOFT.md §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PermissionType {
    Delegated,
    Application,
}

impl PermissionType {
    pub fn label(self) -> &'static str {
        match self {
            PermissionType::Delegated => "Delegated",
            PermissionType::Application => "Application",
        }
    }
}

/// Read-only syncs; read-write also lets people send mail and create events, contacts and tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessLevel {
    ReadOnly,
    ReadWrite,
}

/// How the organization connects to Microsoft 365 (PRODUCT.md, "Connection modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionMode {
    /// Each member connects their own account with delegated permissions.
    Individual,
    /// One service user with delegate access signs in with the `.Shared` permissions.
    ServiceUser,
    /// Admin consent for application permissions, then client-credentials tokens.
    ApplicationPermissions,
}

/// One Microsoft Graph permission, with the words users see for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// The Graph permission name, e.g. `Mail.Read.Shared`; also its `scope` value.
    pub graph_name: &'static str,
    /// Microsoft's permission id (MICROSOFT.md §2).
    pub id: &'static str,
    pub group: Group,
    /// "What you see in the OAuth dialogue…"
    pub dialogue: &'static str,
    /// "What it means…"
    pub meaning: &'static str,
    /// What a member sees for it on Microsoft's own consent page: the user-consent title
    /// (`userConsentDisplayName`, MICROSOFT.md §2), which differs from the admin wording above.
    /// `None` for application permissions: no member ever consents to those (§1.7).
    pub user_dialogue: Option<&'static str>,
    pub kind: PermissionType,
    pub admin_consent: bool,
    /// The resources that need it, and at which access level.
    pub resources: &'static [Resource],
    pub access: AccessLevel,
}

/// Every sign-in also asks for these OpenID Connect and profile scopes (PRODUCT.md).
pub const SIGN_IN_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "User.Read"];

/// What service-account mode with application permissions asks for through admin consent.
pub const APPLICATION_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

use AccessLevel::{ReadOnly as RO, ReadWrite as RW};
use PermissionType::{Application, Delegated};
use Resource::{Calendar, Contacts, Mail, Tasks};

/// The permissions table of PRODUCT.md, in its order, then the application permissions of
/// service-account mode that the table leaves out.
pub const CATALOGUE: [Permission; 20] = [
    Permission {
        graph_name: "Mail.Read.Shared",
        id: "7b9103a5-4610-446b-9670-80643382c1fa",
        group: Group::ReadOnly,
        dialogue: "Read user and shared mail",
        meaning: "Allows the app to read mail that the user can access, including the user's own and shared mail.",
        user_dialogue: Some("Read mail you can access"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Mail],
        access: RO,
    },
    Permission {
        graph_name: "Calendars.Read",
        id: "798ee544-9d2d-430c-a058-570e29e34338",
        group: Group::ReadOnly,
        dialogue: "Read calendars in all mailboxes",
        meaning: "Allows the app to read events of all calendars without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Calendar],
        access: RO,
    },
    Permission {
        graph_name: "Calendars.Read.Shared",
        id: "2b9c4092-424d-4249-948d-b43879977640",
        group: Group::ReadOnly,
        dialogue: "Read user and shared calendars",
        meaning: "Allows the app to read events in all calendars that the user can access, including delegate and shared calendars.",
        // With a no-break space, as Microsoft's service-principal data has it (MICROSOFT.md §2).
        user_dialogue: Some("Read calendars\u{a0}you can access"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Calendar],
        access: RO,
    },
    Permission {
        graph_name: "Contacts.Read",
        id: "ff74d97f-43af-4b68-9f2a-b77ee6968c5d",
        group: Group::ReadOnly,
        dialogue: "Read user contacts",
        meaning: "Allows the app to read user contacts.",
        user_dialogue: Some("Read your contacts"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Contacts],
        access: RO,
    },
    Permission {
        graph_name: "Tasks.Read",
        id: "f45671fb-e0fe-4b4b-be20-3d3ce43f1bcb",
        group: Group::ReadOnly,
        dialogue: "Read user's tasks and task lists {preview}",
        meaning: "Allows the app to read the signed-in user's tasks and task lists, including any shared with the user. Doesn't include permission to create, delete, or update anything.",
        // UNCONFIRMED in MICROSOFT.md §2: the wording Microsoft is expected to show, not verified.
        user_dialogue: Some("Read your tasks and task lists"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Tasks],
        access: RO,
    },
    Permission {
        graph_name: "Mail.Read",
        id: "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
        group: Group::ReadWrite,
        dialogue: "Read user mail",
        meaning: "Allows the app to read email in user mailboxes",
        user_dialogue: Some("Read your mail"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Mail],
        access: RW,
    },
    Permission {
        graph_name: "Mail.ReadWrite.Shared",
        id: "5df07973-7d5d-46ed-9847-1271055cbd51",
        group: Group::ReadWrite,
        dialogue: "Read and write user and shared mail",
        meaning: "Allows the app to create, read, update, and delete mail that the user has permission to access, including the user's own and shared mail. Does not include permission to send mail.",
        user_dialogue: Some("Read and write mail you can access"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Mail],
        access: RW,
    },
    Permission {
        graph_name: "Mail.Send.Shared",
        id: "a367ab51-6b49-43bf-a716-a1fb06d2a174",
        group: Group::ReadWrite,
        dialogue: "Send mail on behalf of others",
        meaning: "Allows the app to send mail as the signed-in user, including sending on-behalf of others.",
        user_dialogue: Some("Send mail on behalf of others or yourself"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Mail],
        access: RW,
    },
    Permission {
        graph_name: "Calendars.ReadWrite",
        id: "1ec239c2-d7c9-4623-a91a-a9775856bb36",
        group: Group::ReadWrite,
        dialogue: "Have full access to user calendars",
        meaning: "Allows the app to create, read, update, and delete events in user calendars.",
        user_dialogue: Some("Have full access to your calendars"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Calendar],
        access: RW,
    },
    Permission {
        graph_name: "Calendars.ReadWrite.Shared",
        id: "12466101-c9b8-439a-8589-dd09ee67e8e9",
        group: Group::ReadWrite,
        dialogue: "Read and write user and shared calendars",
        meaning: "Allows the app to create, read, update and delete events in all calendars the user has permissions to access. This includes delegate and shared calendars.",
        user_dialogue: Some("Read and write to your and shared calendars"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Calendar],
        access: RW,
    },
    Permission {
        graph_name: "Contacts.ReadWrite",
        id: "d56682ec-c09e-4743-aaf4-1a3aac4caa21",
        group: Group::ReadWrite,
        dialogue: "Have full access to user contacts",
        meaning: "Allows the app to create, read, update, and delete user contacts.",
        // "of", sic: Microsoft's own wording (MICROSOFT.md §2).
        user_dialogue: Some("Have full access of your contacts"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Contacts],
        access: RW,
    },
    Permission {
        graph_name: "Tasks.ReadWrite",
        id: "2219042f-cab5-40cc-b0d2-16b1540b4c5f",
        group: Group::ReadWrite,
        dialogue: "Create, read, update, and delete user's tasks and task lists {preview}",
        meaning: "Allows the app to create, read, update, and delete the signed-in user's tasks and task lists, including any shared with the user.",
        // UNCONFIRMED in MICROSOFT.md §2: the wording Microsoft is expected to show, not verified.
        user_dialogue: Some("Create, read, update, and delete your tasks and task lists"),
        kind: Delegated,
        admin_consent: false,
        resources: &[Tasks],
        access: RW,
    },
    // Beyond PRODUCT.md's table: the application permissions service-account mode needs for the
    // other features, and for picking service account users from the directory (MICROSOFT.md §2).
    Permission {
        graph_name: "Mail.Read",
        id: "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
        group: Group::ReadOnly,
        dialogue: "Read mail in all mailboxes",
        meaning: "Allows the app to read mail in all mailboxes without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Mail],
        access: RO,
    },
    Permission {
        graph_name: "Contacts.Read",
        id: "089fe4d0-434a-44c5-8827-41ba8a0b17f5",
        group: Group::ReadOnly,
        dialogue: "Read contacts in all mailboxes",
        meaning: "Allows the app to read all contacts in all mailboxes without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Contacts],
        access: RO,
    },
    Permission {
        graph_name: "Tasks.Read.All",
        id: "f10e1f91-74ed-437f-a6fd-d6ae88e26c1f",
        group: Group::ReadOnly,
        dialogue: "Read all users' tasks and tasklist",
        meaning: "Allows the app to read all users' tasks and task lists in your organization, without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Tasks],
        access: RO,
    },
    Permission {
        graph_name: "User.Read.All",
        id: "df021288-bdef-4463-88db-98f22de89214",
        group: Group::ReadOnly,
        dialogue: "Read all users' full profiles",
        meaning: "Allows the app to read user profiles without a signed in user. Used to pick service account users from the directory.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[],
        access: RO,
    },
    Permission {
        graph_name: "Mail.ReadWrite",
        id: "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
        group: Group::ReadWrite,
        dialogue: "Read and write mail in all mailboxes",
        meaning: "Allows the app to create, read, update, and delete mail in all mailboxes without a signed-in user. Does not include permission to send mail.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Mail],
        access: RW,
    },
    Permission {
        graph_name: "Mail.Send",
        id: "b633e1c5-b582-4048-a93e-9f11b44c7e96",
        group: Group::ReadWrite,
        dialogue: "Send mail as any user",
        meaning: "Allows the app to send mail as any user without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Mail],
        access: RW,
    },
    Permission {
        graph_name: "Calendars.ReadWrite",
        id: "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
        group: Group::ReadWrite,
        dialogue: "Read and write calendars in all mailboxes",
        meaning: "Allows the app to create, read, update, and delete events of all calendars without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Calendar],
        access: RW,
    },
    Permission {
        graph_name: "Tasks.ReadWrite.All",
        id: "44e666d1-d276-445b-a5fc-8815eeb81d55",
        group: Group::ReadWrite,
        dialogue: "Read and write all users' tasks and tasklists",
        meaning: "Allows the app to create, read, update and delete all users' tasks and task lists in your organization, without a signed-in user.",
        user_dialogue: None,
        kind: Application,
        admin_consent: true,
        resources: &[Tasks],
        access: RW,
    },
];

/// What the current settings ask Microsoft for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSettings {
    pub mode: ConnectionMode,
    pub access: AccessLevel,
    pub resources: Vec<Resource>,
}

impl ScopeSettings {
    /// True when `p` is part of what these settings request.
    pub fn requests(&self, p: &Permission) -> bool {
        let right_kind = match self.mode {
            ConnectionMode::ApplicationPermissions => p.kind == Application,
            ConnectionMode::Individual | ConnectionMode::ServiceUser => p.kind == Delegated,
        };
        // Rows for no feature (directory search) come with the mode. A feature with no row at the
        // chosen access level (application contacts are read-only here) keeps its read row.
        let at_level = |f: &Resource| {
            p.access == self.access || !CATALOGUE.iter().any(|q| q.kind == p.kind && q.access == self.access && q.resources.contains(f))
        };
        right_kind && (p.resources.is_empty() || p.resources.iter().any(|f| self.resources.contains(f) && at_level(f)))
    }

    /// The catalogue rows these settings request, in catalogue order.
    pub fn requested(&self) -> Vec<&'static Permission> {
        CATALOGUE.iter().filter(|p| self.requests(p)).collect()
    }

    /// The `scope` parameter of the authorization request: the sign-in scopes, then each requested
    /// delegated permission. Application permissions are never put in a user's `scope`: they are
    /// granted through admin consent and `/.default` (MICROSOFT.md §1.4, §1.8).
    pub fn authorization_scope(&self) -> String {
        if self.mode == ConnectionMode::ApplicationPermissions {
            return APPLICATION_DEFAULT_SCOPE.to_owned();
        }
        let mut scopes: Vec<&str> = SIGN_IN_SCOPES.to_vec();
        scopes.extend(self.requested().iter().map(|p| p.graph_name));
        scopes.join(" ")
    }

    /// Each permission these settings request, and whether `granted` (what Microsoft answered)
    /// includes it.
    pub fn granted_status(&self, granted: &[String]) -> Vec<(&'static str, bool)> {
        self.requested().iter().map(|p| (p.graph_name, is_granted(granted, p.graph_name))).collect()
    }

    /// Features the settings enable that cannot run with what Microsoft granted, with the first
    /// missing permission of each: "Contacts sync is off: Contacts.Read was not granted".
    pub fn missing(&self, granted: &[String]) -> Vec<MissingPermission> {
        let has = |name: &str| is_granted(granted, name);
        let mut out = Vec::new();
        for feature in Resource::ALL.into_iter().filter(|f| self.resources.contains(f)) {
            if let Some(p) = self.requested().into_iter().find(|p| p.resources.contains(&feature) && !has(p.graph_name)) {
                out.push(MissingPermission { feature, permission: p.graph_name });
            }
        }
        out
    }
}

/// True when `granted` holds `name`. Microsoft may answer with bare names or resource-qualified
/// ones, in any case (MICROSOFT.md §1.2).
pub fn is_granted(granted: &[String], name: &str) -> bool {
    granted.iter().any(|g| permission_name(g).eq_ignore_ascii_case(name))
}

/// A granted scope's permission name: `https://graph.microsoft.com/Mail.Read` is `Mail.Read`.
pub fn permission_name(scope: &str) -> &str {
    scope.rsplit('/').next().unwrap_or(scope)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPermission {
    pub feature: Resource,
    pub permission: &'static str,
}

impl MissingPermission {
    pub fn sentence(&self) -> String {
        format!("{} is off: {} was not granted.", self.feature.sync_label(), self.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: ConnectionMode, access: AccessLevel) -> ScopeSettings {
        ScopeSettings { mode, access, resources: Resource::ALL.to_vec() }
    }

    #[test]
    fn the_catalogue_is_the_product_table() {
        let (table, extra) = CATALOGUE.split_at(12);
        assert_eq!(table.iter().filter(|p| p.group == Group::ReadOnly).count(), 5);
        assert_eq!(table.iter().filter(|p| p.group == Group::ReadWrite).count(), 7);
        let only_application: Vec<_> = table.iter().filter(|p| p.kind == Application).map(|p| p.graph_name).collect();
        assert_eq!(only_application, ["Calendars.Read"]);
        assert!(extra.iter().all(|p| p.kind == Application), "only application permissions are added");
        for p in &CATALOGUE {
            assert_eq!(p.admin_consent, p.kind == Application, "{}", p.graph_name);
            assert_eq!(p.group == Group::ReadOnly, p.access == RO, "{}", p.graph_name);
            assert!(!p.resources.is_empty() || p.graph_name == "User.Read.All", "{}", p.graph_name);
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|p| (p.graph_name, p.kind)).collect();
        names.sort_by_key(|(n, k)| (*n, *k == Application));
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "no permission listed twice");
    }

    #[test]
    fn every_delegated_permission_has_the_words_members_see_and_no_application_one_has() {
        for p in &CATALOGUE {
            match p.kind {
                Delegated => {
                    let words = p.user_dialogue.unwrap_or_else(|| panic!("{} has no member wording", p.graph_name));
                    assert!(!words.trim().is_empty(), "{}", p.graph_name);
                    assert_ne!(words, p.dialogue, "{}: members see their own wording, not the admin's", p.graph_name);
                }
                Application => assert_eq!(p.user_dialogue, None, "{}: no member consents to it", p.graph_name),
            }
        }
        let shared = CATALOGUE.iter().find(|p| p.graph_name == "Mail.Read.Shared").map(|p| p.user_dialogue);
        assert_eq!(shared, Some(Some("Read mail you can access")));
    }

    #[test]
    fn read_only_individual_scope_is_sign_in_plus_the_read_permissions() {
        let s = settings(ConnectionMode::Individual, RO);
        assert_eq!(
            s.authorization_scope(),
            "openid profile email offline_access User.Read Mail.Read.Shared Calendars.Read.Shared Contacts.Read Tasks.Read"
        );
    }

    #[test]
    fn read_write_scope_asks_for_the_write_permissions() {
        let s = settings(ConnectionMode::ServiceUser, RW);
        let scope = s.authorization_scope();
        for name in
            ["Mail.Read", "Mail.ReadWrite.Shared", "Mail.Send.Shared", "Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite"]
        {
            assert!(scope.split(' ').any(|s| s == name), "{name} missing from {scope}");
        }
        assert!(!scope.contains("Calendars.Read "), "application permissions never go in a user's scope");
    }

    #[test]
    fn application_mode_asks_for_default_through_admin_consent() {
        let s = settings(ConnectionMode::ApplicationPermissions, RO);
        assert_eq!(s.authorization_scope(), APPLICATION_DEFAULT_SCOPE);
        let names = |s: &ScopeSettings| s.requested().iter().map(|p| p.graph_name).collect::<Vec<_>>();
        assert_eq!(names(&s), ["Calendars.Read", "Mail.Read", "Contacts.Read", "Tasks.Read.All", "User.Read.All"]);
        assert!(s.requested().iter().all(|p| p.kind == Application));
        let rw = settings(ConnectionMode::ApplicationPermissions, RW);
        assert_eq!(
            names(&rw),
            ["Contacts.Read", "User.Read.All", "Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite", "Tasks.ReadWrite.All"],
            "contacts keep their read permission; the directory is always needed"
        );
        let mail_only = ScopeSettings { resources: vec![Mail], ..s };
        assert_eq!(names(&mail_only), ["Mail.Read", "User.Read.All"]);
    }

    #[test]
    fn only_enabled_features_are_requested() {
        let s = ScopeSettings { mode: ConnectionMode::Individual, access: RO, resources: vec![Mail, Tasks] };
        assert_eq!(s.authorization_scope(), "openid profile email offline_access User.Read Mail.Read.Shared Tasks.Read");
    }

    #[test]
    fn missing_permissions_are_named_per_feature() {
        let s = settings(ConnectionMode::Individual, RO);
        let granted: Vec<String> =
            ["openid", "https://graph.microsoft.com/Mail.Read.Shared", "calendars.read.shared", "Tasks.Read"].map(String::from).to_vec();
        let missing = s.missing(&granted);
        assert_eq!(missing, vec![MissingPermission { feature: Contacts, permission: "Contacts.Read" }]);
        assert_eq!(missing[0].sentence(), "Contacts sync is off: Contacts.Read was not granted.");
        assert_eq!(
            s.granted_status(&granted),
            [("Mail.Read.Shared", true), ("Calendars.Read.Shared", true), ("Contacts.Read", false), ("Tasks.Read", true)]
        );
        let every: Vec<String> = s.requested().iter().map(|p| p.graph_name.to_string()).collect();
        assert!(s.missing(&every).is_empty());
    }

    #[test]
    fn short_scope_names_and_full_uris_are_the_same_grant() {
        // Entra answers `scope` either way: `Mail.Read profile openid email` or full URIs.
        let s = settings(ConnectionMode::Individual, RO);
        let every = s.requested().iter().map(|p| p.graph_name).collect::<Vec<_>>();
        let short: Vec<String> =
            ["User.Read", "profile", "openid", "email"].into_iter().chain(every.iter().copied()).map(String::from).collect();
        let full: Vec<String> =
            short.iter().map(|n| if n.contains('.') { format!("https://graph.microsoft.com/{n}") } else { n.clone() }).collect();
        for granted in [&short, &full] {
            assert!(s.missing(granted).is_empty(), "{granted:?}");
            assert!(s.granted_status(granted).iter().all(|(_, ok)| *ok), "{granted:?}");
        }
        assert!(is_granted(&["Mail.Read".into()], "Mail.Read"));
        assert!(is_granted(&["https://graph.microsoft.com/Mail.Read".into()], "Mail.Read"));
        assert!(is_granted(&["https://graph.microsoft.com/mail.read".into()], "Mail.Read"));
        assert!(!is_granted(&["Mail.ReadBasic".into()], "Mail.Read"), "a narrower permission is not the one needed");
        assert!(!is_granted(&["https://graph.microsoft.com/Mail.Read.Shared".into()], "Mail.Read"));
    }
}
