//! Which Microsoft Graph permissions let a token through which route (MICROSOFT.md §2, §5): one table of
//! delegated scopes (own mailbox, other mailboxes with delegate rights) and application roles per need.

use super::*;

/// What a route needs of a token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Need {
    /// One user's profile (`/me`, `/users/{id}`).
    Profile,
    /// Listing the directory (`/users`).
    Directory,
    MailRead,
    /// Creating drafts, replies and forwards.
    MailWrite,
    MailSend,
    CalRead,
    CalWrite,
    ContactsRead,
    ContactsWrite,
    TasksRead,
    TasksWrite,
    MailboxSettingsRead,
}

/// Permissions granting a need: delegated on one's own mailbox, delegated on another mailbox (with
/// delegate rights there), and application.
struct Grants {
    own: &'static [&'static str],
    shared: &'static [&'static str],
    app: &'static [&'static str],
}

const USER_OTHERS: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];
const USER_APP: &[&str] = &["User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const MAIL_FULL_OWN: &[&str] = &["Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared"];
const MAIL_FULL_APP: &[&str] = &["Mail.Read", "Mail.ReadWrite"];

fn grants(need: Need) -> Grants {
    let g = |own, shared, app| Grants { own, shared, app };
    match need {
        Need::Profile => g(
            &[
                "User.Read",
                "User.ReadWrite",
                "User.ReadBasic.All",
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
                "Directory.AccessAsUser.All",
            ],
            USER_OTHERS,
            USER_APP,
        ),
        Need::Directory => g(USER_OTHERS, USER_OTHERS, USER_APP),
        Need::MailRead => g(
            &["Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared"],
            &["Mail.Read.Shared", "Mail.ReadWrite.Shared"],
            &["Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic", "Mail.ReadBasic.All"],
        ),
        Need::MailWrite => g(&["Mail.ReadWrite", "Mail.ReadWrite.Shared"], &["Mail.ReadWrite.Shared"], &["Mail.ReadWrite"]),
        Need::MailSend => g(&["Mail.Send", "Mail.Send.Shared"], &["Mail.Send.Shared"], &["Mail.Send"]),
        Need::CalRead => g(
            &["Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared", "Calendars.ReadWrite.Shared"],
            &["Calendars.Read.Shared", "Calendars.ReadWrite.Shared"],
            &["Calendars.ReadBasic.All", "Calendars.Read", "Calendars.ReadWrite"],
        ),
        Need::CalWrite => {
            g(&["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"], &["Calendars.ReadWrite.Shared"], &["Calendars.ReadWrite"])
        }
        Need::ContactsRead => g(
            &["Contacts.Read", "Contacts.ReadWrite", "Contacts.Read.Shared", "Contacts.ReadWrite.Shared"],
            &["Contacts.Read.Shared", "Contacts.ReadWrite.Shared"],
            &["Contacts.Read", "Contacts.ReadWrite"],
        ),
        Need::ContactsWrite => {
            g(&["Contacts.ReadWrite", "Contacts.ReadWrite.Shared"], &["Contacts.ReadWrite.Shared"], &["Contacts.ReadWrite"])
        }
        Need::TasksRead => g(
            &["Tasks.Read", "Tasks.ReadWrite", "Tasks.Read.Shared", "Tasks.ReadWrite.Shared"],
            &["Tasks.Read.Shared", "Tasks.ReadWrite.Shared"],
            &["Tasks.Read.All", "Tasks.ReadWrite.All"],
        ),
        Need::TasksWrite => g(&["Tasks.ReadWrite", "Tasks.ReadWrite.Shared"], &["Tasks.ReadWrite.Shared"], &["Tasks.ReadWrite.All"]),
        Need::MailboxSettingsRead => {
            g(&["MailboxSettings.Read", "MailboxSettings.ReadWrite"], &[], &["MailboxSettings.Read", "MailboxSettings.ReadWrite"])
        }
    }
}

fn any_of(set: &std::collections::BTreeSet<String>, names: &[&str]) -> bool {
    names.iter().any(|n| set.iter().any(|s| s.eq_ignore_ascii_case(n)))
}

impl AccessGrant {
    pub(crate) fn has_scope(&self, names: &[&str]) -> bool {
        any_of(&self.scopes, names)
    }
    pub(crate) fn has_role(&self, names: &[&str]) -> bool {
        any_of(&self.roles, names)
    }
    /// May this token read message bodies, or only what `Mail.ReadBasic` shows?
    pub(crate) fn full_mail_read(&self, delegated: bool) -> bool {
        if delegated { self.has_scope(MAIL_FULL_OWN) } else { self.has_role(MAIL_FULL_APP) }
    }
}

/// Does the token allow `need` on `target`'s mailbox? Delegated tokens reach other mailboxes only with
/// a `.Shared` scope *and* delegate rights (§2, PRODUCT.md service-user mode); app tokens need roles.
pub(crate) fn allowed(grant: &AccessGrant, caller: Option<&UserRef>, target: &UserRef, need: Need) -> bool {
    let g = grants(need);
    let Some(caller) = caller else {
        return grant.has_role(g.app);
    };
    if caller.user.id.eq_ignore_ascii_case(&target.user.id) {
        return grant.has_scope(g.own);
    }
    if matches!(need, Need::Profile | Need::Directory) {
        // Reading someone else's profile is a directory permission, not a mailbox delegation.
        return grant.has_scope(g.shared);
    }
    let delegate = caller
        .user
        .delegate_access
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&target.user.user_principal_name) || d.eq_ignore_ascii_case(&target.user.id));
    delegate && grant.has_scope(g.shared)
}

/// May the token send mail from `from`'s mailbox? Delegated: as the signed-in user always, from
/// another mailbox with `Mail.Send.Shared` and Send on Behalf granted there (§3.7); application
/// `Mail.Send` sends as any user. A `from` the emulator does not host is refused.
pub(crate) fn may_send_from(grant: &AccessGrant, caller: Option<&UserRef>, from: Option<&UserRef>) -> bool {
    let Some(from) = from else {
        return false;
    };
    let Some(caller) = caller else {
        return grant.has_role(&["Mail.Send"]);
    };
    if caller.user.id.eq_ignore_ascii_case(&from.user.id) {
        return true;
    }
    let c = &caller.user;
    let granted = from.user.send_on_behalf.iter().any(|d| d.eq_ignore_ascii_case(&c.user_principal_name) || d.eq_ignore_ascii_case(&c.id));
    granted && grant.has_scope(&["Mail.Send.Shared"])
}

/// `/users` (no target user): directory scopes or roles.
pub(super) fn allowed_directory(grant: &AccessGrant, caller: Option<&UserRef>) -> bool {
    let g = grants(Need::Directory);
    match caller {
        Some(_) => grant.has_scope(g.own),
        None => grant.has_role(g.app),
    }
}
