//! Why a connection or a sign-in with Microsoft failed, in words a user can act on, and who must act.
//!
//! The Microsoft client maps Microsoft's error codes (`error`, AADSTS numbers, Graph `code`) to a
//! [`ReasonCode`]; everything users see is derived from it here, so the wording is the same on the
//! callback page, the Reconnect card, My Connection and Team connections.

use serde::{Deserialize, Serialize};

/// Who has to do something before the connection works again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WhoMustAct {
    /// The person who owns the connection (reconnect, sign in again, accept consent).
    Owner,
    /// An administrator of the Microsoft 365 tenant (consent, policy, mailbox permissions).
    TenantAdmin,
    /// Whoever assigns Microsoft 365 licences in the tenant.
    LicenceAdmin,
    /// An Intelligence360 admin (the app registration on the settings page).
    PlatformAdmin,
    /// Nobody: it is temporary and will be retried automatically.
    Nobody,
}

impl WhoMustAct {
    pub fn label(self) -> &'static str {
        match self {
            WhoMustAct::Owner => "The connection's owner",
            WhoMustAct::TenantAdmin => "A Microsoft 365 administrator",
            WhoMustAct::LicenceAdmin => "Your Microsoft 365 licence administrator",
            WhoMustAct::PlatformAdmin => "An Intelligence360 admin",
            WhoMustAct::Nobody => "Nobody: it will retry automatically",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The person declined or cancelled on Microsoft's consent page.
    ConsentDeclined,
    /// The tenant does not let users consent; an admin must grant consent for the organization.
    AdminApprovalRequired,
    /// Consent was never given or was revoked; an interactive sign-in is needed.
    ConsentRequired,
    /// Multi-factor authentication (or another interactive step) is required.
    InteractionRequired,
    /// The refresh token expired (for example after 90 days of inactivity).
    RefreshTokenExpired,
    /// The refresh token was revoked (password change, admin "revoke sessions").
    RefreshTokenRevoked,
    /// The Microsoft account belongs to another tenant than the one configured.
    WrongTenant,
    /// A personal Microsoft account (Outlook.com, Hotmail, Live; tenant `9188040d-…`) signed in,
    /// typically through the `common` authority: it has no work mailbox to sync.
    PersonalAccount,
    /// A guest of the organization signed in: the token's tenant is not the account's home tenant,
    /// and the mailbox lives in the home tenant, out of reach.
    GuestAccount,
    /// The account has no Exchange Online mailbox (no licence, or on-premises).
    MailboxNotLicensed,
    /// The account may not open this mailbox (service user without delegate rights).
    NoMailboxAccess,
    /// Graph refused for lack of a permission or role.
    PermissionMissing,
    /// The client secret on the settings page is wrong.
    ClientSecretInvalid,
    /// The client secret on the settings page has expired.
    ClientSecretExpired,
    /// Microsoft refused the credential (certificate or secret) of the deployment's own app
    /// registration: the server's operator must install a current one.
    DeploymentCredentialRejected,
    /// The application (client) id is not registered in the tenant.
    AppNotFound,
    /// The redirect URI is not registered on the app registration.
    RedirectUriMismatch,
    /// Microsoft is throttling; retried after the time it asked for.
    Throttled,
    /// Microsoft is unavailable or slow; retried later.
    MicrosoftUnavailable,
    /// Graph did not accept the access token (expired or revoked, HTTP 401); a new one is fetched
    /// with the refresh token or client credentials and the call retried.
    AccessTokenRejected,
    /// The sign-in could not be verified (state, nonce or id_token checks failed).
    SignInNotVerified,
    /// Anything else Microsoft answered.
    Unexpected,
}

impl ReasonCode {
    pub fn who_must_act(self) -> WhoMustAct {
        use ReasonCode::*;
        match self {
            ConsentDeclined | ConsentRequired | InteractionRequired | RefreshTokenExpired | RefreshTokenRevoked | WrongTenant
            | PersonalAccount | GuestAccount | SignInNotVerified => WhoMustAct::Owner,
            AdminApprovalRequired | NoMailboxAccess | PermissionMissing => WhoMustAct::TenantAdmin,
            MailboxNotLicensed => WhoMustAct::LicenceAdmin,
            ClientSecretInvalid | ClientSecretExpired | DeploymentCredentialRejected | AppNotFound | RedirectUriMismatch => {
                WhoMustAct::PlatformAdmin
            }
            Throttled | MicrosoftUnavailable | AccessTokenRejected => WhoMustAct::Nobody,
            Unexpected => WhoMustAct::PlatformAdmin,
        }
    }

    /// True when the fault is the tenant's or the app registration's, not one person's: the card
    /// then goes to admins rather than to the connection's owner.
    pub fn is_tenant_wide(self) -> bool {
        matches!(self.who_must_act(), WhoMustAct::TenantAdmin | WhoMustAct::PlatformAdmin | WhoMustAct::LicenceAdmin)
            && !matches!(self, ReasonCode::NoMailboxAccess | ReasonCode::MailboxNotLicensed)
    }

    /// The same refusal when the app registration is the deployment's own: a refused credential
    /// is then the operator's to fix, not a secret on the organization's settings page.
    pub fn with_deployment_app(self) -> ReasonCode {
        match self {
            ReasonCode::ClientSecretInvalid | ReasonCode::ClientSecretExpired => ReasonCode::DeploymentCredentialRejected,
            other => other,
        }
    }

    /// True when retrying later may succeed without anyone doing anything.
    pub fn is_transient(self) -> bool {
        self.who_must_act() == WhoMustAct::Nobody
    }

    /// What happened and what to do next, in one line.
    pub fn explained(self) -> String {
        format!("{} {}", self.message(), self.next_step())
    }

    /// What happened, in plain words.
    pub fn message(self) -> &'static str {
        use ReasonCode::*;
        match self {
            ConsentDeclined => "The permissions were not accepted on Microsoft's page, so nothing was connected.",
            AdminApprovalRequired => {
                "Your Microsoft 365 organization only lets administrators approve new apps. Your admins have been asked to grant consent for everyone."
            }
            ConsentRequired => "Microsoft needs you to approve Intelligence360's permissions again.",
            InteractionRequired => "Microsoft needs you to sign in again (for example to complete multi-factor authentication).",
            RefreshTokenExpired => "The connection expired after a long time without use.",
            RefreshTokenRevoked => "Microsoft revoked the connection (for example after a password change or a sign-out everywhere).",
            WrongTenant => "That Microsoft account belongs to a different organization than the one Intelligence360 is set up for.",
            PersonalAccount => {
                "That is a personal Microsoft account (such as Outlook.com or Hotmail), not a work account, so it cannot be connected."
            }
            GuestAccount => {
                "That account is a guest in this organization: its mailbox belongs to another organization, so it cannot be connected."
            }
            MailboxNotLicensed => "This Microsoft 365 account has no Exchange Online mailbox (it may be missing a licence).",
            NoMailboxAccess => "No access to this mailbox: the service account has not been given permission to open it.",
            PermissionMissing => "Microsoft refused because a permission has not been granted.",
            ClientSecretInvalid => "Microsoft rejected the client secret on the Office 365 settings page.",
            ClientSecretExpired => "The client secret on the Office 365 settings page has expired.",
            DeploymentCredentialRejected => {
                "Microsoft refused the credential (certificate or client secret) of this server's own Microsoft app registration."
            }
            AppNotFound => "The application (client) ID is not registered in this Microsoft 365 organization.",
            RedirectUriMismatch => "The app registration does not list Intelligence360's redirect URI.",
            Throttled => "Microsoft asked us to slow down; syncing resumes automatically.",
            MicrosoftUnavailable => "Microsoft is not responding right now; we will try again shortly.",
            AccessTokenRejected => "Microsoft did not accept the connection's current access token; a new one is requested automatically.",
            SignInNotVerified => "The sign-in with Microsoft could not be verified, so it was not used.",
            Unexpected => "Microsoft returned an unexpected error.",
        }
    }

    /// What to do next, in plain words.
    pub fn next_step(self) -> &'static str {
        use ReasonCode::*;
        match self {
            ConsentDeclined => "If that was a mistake, start again and choose Accept.",
            AdminApprovalRequired => "You will be able to connect once an admin has granted consent; there is nothing else to do now.",
            ConsentRequired | InteractionRequired | RefreshTokenExpired | RefreshTokenRevoked => "Reconnect Office 365.",
            WrongTenant | PersonalAccount | GuestAccount => "Sign in with your work account from the organization your admin set up.",
            MailboxNotLicensed => "Ask your Microsoft 365 administrator to assign a licence with Exchange Online.",
            NoMailboxAccess => "Ask a Microsoft 365 administrator to give the service account access to this mailbox.",
            PermissionMissing => "Ask a Microsoft 365 administrator to grant the missing permission.",
            ClientSecretInvalid | ClientSecretExpired => "An admin should enter a current client secret on the Office 365 settings page.",
            DeploymentCredentialRejected => {
                "Whoever runs this Intelligence360 server must install a current certificate or secret for its app registration; nothing is stored meanwhile. Tell your admin."
            }
            AppNotFound => "An admin should check the application (client) ID and the directory (tenant) ID.",
            RedirectUriMismatch => "An admin should add Intelligence360's redirect URI to the app registration.",
            Throttled | MicrosoftUnavailable | AccessTokenRejected => "Nothing: it will retry automatically.",
            SignInNotVerified => "Start the connection again from Intelligence360.",
            Unexpected => "Try again; if it keeps happening, contact support with the error code shown.",
        }
    }
}

impl ReasonCode {
    const NAMES: [(ReasonCode, &'static str); 22] = [
        (ReasonCode::ConsentDeclined, "consent_declined"),
        (ReasonCode::AdminApprovalRequired, "admin_approval_required"),
        (ReasonCode::ConsentRequired, "consent_required"),
        (ReasonCode::InteractionRequired, "interaction_required"),
        (ReasonCode::RefreshTokenExpired, "refresh_token_expired"),
        (ReasonCode::RefreshTokenRevoked, "refresh_token_revoked"),
        (ReasonCode::WrongTenant, "wrong_tenant"),
        (ReasonCode::PersonalAccount, "personal_account"),
        (ReasonCode::GuestAccount, "guest_account"),
        (ReasonCode::MailboxNotLicensed, "mailbox_not_licensed"),
        (ReasonCode::NoMailboxAccess, "no_mailbox_access"),
        (ReasonCode::PermissionMissing, "permission_missing"),
        (ReasonCode::ClientSecretInvalid, "client_secret_invalid"),
        (ReasonCode::ClientSecretExpired, "client_secret_expired"),
        (ReasonCode::DeploymentCredentialRejected, "deployment_credential_rejected"),
        (ReasonCode::AppNotFound, "app_not_found"),
        (ReasonCode::RedirectUriMismatch, "redirect_uri_mismatch"),
        (ReasonCode::Throttled, "throttled"),
        (ReasonCode::MicrosoftUnavailable, "microsoft_unavailable"),
        (ReasonCode::AccessTokenRejected, "access_token_rejected"),
        (ReasonCode::SignInNotVerified, "sign_in_not_verified"),
        (ReasonCode::Unexpected, "unexpected"),
    ];

    /// The stored and URL form, e.g. `admin_approval_required` (same as its serde form).
    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(c, _)| *c == self).map(|(_, n)| *n).unwrap_or("unexpected")
    }

    pub fn parse(s: &str) -> Option<ReasonCode> {
        Self::NAMES.iter().find(|(_, n)| *n == s).map(|(c, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip_through_their_names() {
        for (code, name) in ReasonCode::NAMES {
            assert_eq!(code.as_str(), name);
            assert_eq!(ReasonCode::parse(name), Some(code));
        }
        assert_eq!(ReasonCode::AdminApprovalRequired.as_str(), "admin_approval_required");
    }

    #[test]
    fn tenant_wide_faults_go_to_admins_and_personal_ones_to_the_owner() {
        assert!(ReasonCode::AdminApprovalRequired.is_tenant_wide());
        assert!(ReasonCode::ClientSecretExpired.is_tenant_wide());
        assert!(!ReasonCode::RefreshTokenRevoked.is_tenant_wide());
        assert_eq!(ReasonCode::RefreshTokenRevoked.who_must_act(), WhoMustAct::Owner);
        assert_eq!(ReasonCode::MailboxNotLicensed.who_must_act(), WhoMustAct::LicenceAdmin);
        assert!(!ReasonCode::NoMailboxAccess.is_tenant_wide(), "one mailbox, not the whole tenant");
        assert!(ReasonCode::Throttled.is_transient());
    }

    #[test]
    fn personal_and_guest_accounts_are_refused_in_plain_words() {
        for r in [ReasonCode::PersonalAccount, ReasonCode::GuestAccount] {
            assert_eq!(r.who_must_act(), WhoMustAct::Owner);
            assert!(!r.is_transient() && !r.is_tenant_wide());
            assert!(r.explained().ends_with("Sign in with your work account from the organization your admin set up."));
        }
        assert!(ReasonCode::PersonalAccount.message().contains("personal Microsoft account"));
        assert!(ReasonCode::GuestAccount.message().contains("guest"));
        assert_eq!(serde_json::to_string(&ReasonCode::PersonalAccount).unwrap(), "\"personal_account\"");
        assert_eq!(ReasonCode::parse("guest_account"), Some(ReasonCode::GuestAccount));
    }

    #[test]
    fn a_rejected_access_token_is_retried_with_a_new_one_by_nobody_in_particular() {
        let r = ReasonCode::AccessTokenRejected;
        assert_eq!(r.who_must_act(), WhoMustAct::Nobody);
        assert!(r.is_transient());
        assert!(!r.is_tenant_wide());
        assert!(r.message().contains("access token"));
        assert_eq!(r.next_step(), "Nothing: it will retry automatically.");
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"access_token_rejected\"");
    }
}
