//! The product's vocabulary, shared by the server and the browser.
//!
//! Nothing here does IO, so the same types compile for the wasm front end and for the server,
//! and the UI can never disagree with the server about what a role or a state means.

pub mod actions;
pub mod audit;
pub mod connection;
pub mod consent;
pub mod email;
pub mod error;
pub mod ids;
pub mod integration;
pub mod office365;
pub mod permissions;
pub mod reason;
pub mod service_account;
pub mod sync;
pub mod user;
pub mod views;
pub mod writes;

pub use actions::{ActionCard, CardAction, FeedFacts, OwnConnection};
pub use audit::AuditEntry;
pub use connection::{ConnectionKind, ConnectionState, ConnectionSummary, FlowPurpose, Refusal};
pub use consent::{AdminConsent, ConsentGrant, ConsentRequest, ConsentStatus};
pub use email::{EmailAddress, EmailError};
pub use error::ErrorCode;
pub use ids::{OrgId, UserId};
pub use integration::{IntegrationKind, IntegrationStatus};
pub use reason::{ReasonCode, WhoMustAct};
pub use service_account::{MailboxHealth, ServiceAccountUser};
pub use sync::{ChangeDelivery, PauseReason, PollingReason, Resource, SyncState, Tone};
pub use user::{Role, RoleParseError, SessionUser};
pub use writes::{WriteKind, WriteRefusal, WriteRequest, WriteState};
