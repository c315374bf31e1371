//! Read-write features: what the caller may write, and recording a write in the outbox (the sync
//! worker holding the mailbox's lease performs it, exactly once; see `sync::outbox`).
//!
//! A write goes to the caller's own synced mailbox. It is refused (403) unless the organization's
//! access is read-write, the resource is synced and Microsoft granted every permission it needs
//! ([`domain::writes::write_allowed`]), whatever the browser sends; what it names (the message
//! replied to, the event cancelled, the contact edited, the task list) must be a synced item of
//! that mailbox.

use crate::{Error, Integration, Result};
use domain::office365::Office365Settings;
use domain::views::{PendingWrite, WriteOffer};
use domain::writes::write_allowed;
use domain::{Resource, SessionUser, WriteKind, WriteRefusal, WriteRequest, WriteState};
use store::outbox::{NewWrite, OutboxWrite};
use store::sync::{MailboxFilter, SyncMailbox};

/// How long a pending or failed write stays on Activity.
const SHOWN_FOR_SECS: i64 = 7 * 24 * 3600;
/// How long a done write stays, at most, while its item has not been synced (a cancelled event's
/// never will be).
const DONE_SHOWN_FOR_SECS: i64 = 10 * 60;

/// The caller's mailbox and what may be written to it.
struct WriteTarget {
    settings: Office365Settings,
    mailbox: SyncMailbox,
    /// Its To Do lists (the containers of its task cursors).
    task_lists: Vec<String>,
    granted: Vec<String>,
}

impl WriteTarget {
    fn check(&self, kind: WriteKind) -> std::result::Result<(), WriteRefusal> {
        let s = &self.settings;
        write_allowed(kind, s.access, s.mode, &s.resources, self.mailbox.graph_user_id.is_none(), &self.granted)
    }
}

/// A composer's key: what makes a double click the same write.
fn valid_key(key: &str) -> bool {
    (8..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Integration {
    /// The caller's synced mailbox (their own connection's, or the one a service connection syncs
    /// for them), with the settings and what Microsoft granted that connection. `None` when they
    /// have none that syncs.
    async fn write_target(&self, user: &SessionUser) -> Result<Option<WriteTarget>> {
        let settings = self.store.office365_settings(user.org_id).await?;
        if !settings.enabled {
            return Ok(None);
        }
        // The database picks the caller's synced mailbox out of the organization's.
        let filter = MailboxFilter { user: Some(user.user_id), synced_only: true, ..MailboxFilter::default() };
        let Some(mailbox) = self.store.org_sync_overview(user.org_id, &filter).await?.into_iter().next() else {
            return Ok(None);
        };
        let task_lists = mailbox.cursors.iter().filter(|c| c.resource == Resource::Tasks).map(|c| c.container.clone()).collect();
        let mailbox = mailbox.status.mailbox;
        let connections = self.store.connections_in_org(user.org_id).await?;
        let granted = connections.into_iter().find(|c| c.id == mailbox.connection_id).map(|c| c.granted_scopes).unwrap_or_default();
        Ok(Some(WriteTarget { settings, mailbox, task_lists, granted }))
    }

    /// What Activity offers the caller: each kind of write, or why not.
    pub async fn write_offer(&self, user: &SessionUser) -> Result<WriteOffer> {
        let Some(target) = self.write_target(user).await? else {
            return Ok(WriteOffer::default());
        };
        let mut offer = WriteOffer::default();
        for kind in WriteKind::ALL {
            match target.check(kind) {
                Ok(()) => offer.allowed.push(kind),
                Err(why) => offer.refused.push((kind, why.sentence())),
            }
        }
        offer.task_lists = target.task_lists;
        Ok(offer)
    }

    /// Records a write for the caller's mailbox and returns it as Activity shows it. The same `key`
    /// again returns the write already recorded (a double click is one write).
    pub async fn record_write(&self, user: &SessionUser, key: &str, request: WriteRequest) -> Result<PendingWrite> {
        if !valid_key(key) {
            return Err(Error::Invalid("This form is out of date. Reload the page and try again.".into()));
        }
        let target = self.write_target(user).await?.ok_or(Error::WriteRefused(WriteRefusal::NotInMode))?;
        target.check(request.kind()).map_err(Error::WriteRefused)?;
        request.validate().map_err(Error::Invalid)?;
        let named = self.check_targets(&target.mailbox, &request).await?;
        let headline = headline(&request, named.as_deref());
        let new = NewWrite {
            org_id: user.org_id,
            mailbox_id: target.mailbox.id,
            user_id: user.user_id,
            actor: user.audit_label(),
            key: key.to_owned(),
            request,
            headline,
            now: store::now_unix(),
        };
        let (write, created) = self.store.record_write(&new).await?.ok_or(Error::NotFound("That mailbox is no longer synced."))?;
        if created {
            self.scheduler.wake();
        }
        Ok(pending_view(&write))
    }

    /// The caller's writes Activity shows: pending, failed, or done and not yet synced.
    pub async fn my_writes(&self, user: &SessionUser) -> Result<Vec<PendingWrite>> {
        let now = store::now_unix();
        let shown = self.store.writes_shown(user.org_id, user.user_id, now - SHOWN_FOR_SECS, now - DONE_SHOWN_FOR_SECS).await?;
        Ok(shown.iter().map(pending_view).collect())
    }

    /// What a write names must be a synced item of the mailbox it writes to; its title, if it
    /// names one.
    async fn check_targets(&self, mailbox: &SyncMailbox, request: &WriteRequest) -> Result<Option<String>> {
        let (resource, id) = match request {
            WriteRequest::Reply { message, .. } | WriteRequest::Forward { message, .. } => (Resource::Mail, message),
            WriteRequest::CancelEvent { event, .. } => (Resource::Calendar, event),
            WriteRequest::UpdateContact { contact, .. } => (Resource::Contacts, contact),
            WriteRequest::SetTaskDone { task, .. } => (Resource::Tasks, task),
            WriteRequest::CreateTask(t) => {
                let synced = self.store.cursors(mailbox.id).await?.iter().any(|c| c.resource == Resource::Tasks && c.container == t.list);
                return if synced { Ok(None) } else { Err(Error::NotFound("That task list is not synced.")) };
            }
            WriteRequest::SendMail(_) | WriteRequest::CreateEvent(_) | WriteRequest::CreateContact(_) => return Ok(None),
        };
        let item = self.store.mailbox_item(mailbox.id, resource, id).await?;
        match (item, request) {
            (Some(i), WriteRequest::SetTaskDone { list, .. }) if &i.container != list => {
                Err(Error::NotFound("That task is not in this list."))
            }
            (Some(i), _) => Ok(Some(i.title)),
            (None, _) => Err(Error::NotFound("That item is not in your synced mailbox.")),
        }
    }
}

/// What Activity shows for a write: what was typed, or for a reply without a subject, a cancel or a
/// task's status, the item it names.
fn headline(request: &WriteRequest, named: Option<&str>) -> String {
    let typed = request.headline();
    match (request, named) {
        (WriteRequest::Reply { .. }, Some(title)) if typed.trim().is_empty() => format!("RE: {title}"),
        (WriteRequest::Forward { .. }, Some(title)) if typed.trim().is_empty() => format!("FW: {title}"),
        (WriteRequest::CancelEvent { .. } | WriteRequest::SetTaskDone { .. }, Some(title)) => title.to_string(),
        _ => typed,
    }
}

/// A recorded write as Activity shows it.
fn pending_view(w: &OutboxWrite) -> PendingWrite {
    let kind = w.request.kind();
    let (label, failure) = match &w.state {
        WriteState::Pending => (kind.pending_label().to_string(), None),
        WriteState::Done { .. } => (kind.done_label().to_string(), None),
        WriteState::Failed { reason, detail } => {
            let said = if detail.is_empty() { String::new() } else { format!(" Microsoft said: {detail}") };
            (kind.failed_label().to_string(), Some((format!("{}{said}", reason.explained()), reason.who_must_act())))
        }
    };
    PendingWrite {
        id: w.id.to_string(),
        kind,
        resource: kind.resource(),
        headline: w.headline.clone(),
        label,
        pending: w.state == WriteState::Pending,
        failure: failure.as_ref().map(|(text, _)| text.clone()),
        who_must_act: failure.map(|(_, who)| who),
        created_at: w.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_naming_an_item_is_shown_by_its_title() {
        let cancel = WriteRequest::CancelEvent { event: "e1".into(), comment: String::new() };
        assert_eq!(headline(&cancel, Some("Planning")), "Planning");
        let reply = WriteRequest::Reply { message: "m1".into(), all: false, draft: Default::default() };
        assert_eq!(headline(&reply, Some("Numbers")), "RE: Numbers");
        let done = WriteRequest::SetTaskDone { list: "l".into(), task: "t".into(), done: true };
        assert_eq!(headline(&done, Some("Call Nora")), "Call Nora");
        let new = WriteRequest::SendMail(domain::writes::MailDraft { subject: "Hello".into(), ..Default::default() });
        assert_eq!(headline(&new, None), "Hello");
    }

    #[test]
    fn keys_are_the_composers_not_anything() {
        assert!(valid_key("0f8e2c1a-33b4-4d4e-9a51-0c1d2e3f4a5b"));
        assert!(!valid_key("short"));
        assert!(!valid_key("has spaces in it"));
        assert!(!valid_key(&"x".repeat(65)));
    }
}
