//! Performing the write outbox, exactly once, by the worker holding the mailbox's lease (so the
//! writes share the mailbox's 4 slots and `Retry-After` with its sync).
//!
//! Before every call that may reach Microsoft the write's attempt is counted in the store; a write
//! with attempts behind it looks before it makes anything again:
//!
//! - **mail**: a draft carrying the write's key is created (its id kept as the write's step), then
//!   sent by id. After a lost answer the mailbox is asked for drafts with the key, and the draft
//!   (by its immutable id) whether it is still a draft: sent ones are never sent again;
//! - **events**: Graph refuses a second event with the same `transactionId`;
//! - **contacts** and **tasks**: looked up by the key (extended property, linked resource);
//! - **cancel, edit, complete, reopen**: the same however often they are sent.
//!
//! Throttled writes wait for `Retry-After`; an unknown outcome (no answer, 5xx) is tried again on a
//! later run, after looking; a write Microsoft refuses (no permission, no such item, a recipient
//! refused) ends failed with Microsoft's reason, which says who must act.

use crate::engine::{CallFailure, Engine, RunCtx};
use crate::error::SyncError;
use crate::metrics::SyncMetrics;
use domain::{AuditEntry, ReasonCode, WriteRequest, WriteState};
use microsoft::{MessageRef, ResponseAction};
use store::UnixTime;
use store::outbox::OutboxWrite;
use store::sync::CommitOutcome;

fn now() -> UnixTime {
    store::now_unix()
}

/// How one write's turn ended.
enum Turn {
    Done(String),
    Failed(ReasonCode, String),
    /// Not now: Microsoft said to wait until then.
    Held(UnixTime),
    /// Outcome unknown or Microsoft unavailable: the next run looks and goes on.
    Later,
}

/// What the mailbox's writes need after this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxReport {
    pub performed: u64,
    pub failed: u64,
    /// The earliest time a write still waiting should be tried again.
    pub retry_at: Option<UnixTime>,
}

impl Engine {
    /// Performs the mailbox's pending writes, oldest first.
    pub(crate) async fn perform_writes(&self, ctx: &RunCtx) -> Result<OutboxReport, SyncError> {
        let mut report = OutboxReport::default();
        if !ctx.lease.writes_waiting {
            return Ok(report);
        }
        let retry = |r: &mut OutboxReport, at: UnixTime| r.retry_at = Some(r.retry_at.map_or(at, |t| t.min(at)));
        for w in self.store().pending_writes(ctx.lease.mailbox.id).await? {
            if w.not_before > now() {
                retry(&mut report, w.not_before);
                continue;
            }
            let turn = match self.perform(ctx, &w).await {
                Ok(turn) => turn,
                Err(SyncError::LeaseLost) => return Err(SyncError::LeaseLost),
                Err(e) => {
                    tracing::info!(write = %w.id, error = %e, "a write could not be tried now");
                    Turn::Later
                }
            };
            let outcome = match turn {
                Turn::Done(graph_id) => WriteState::Done { graph_id },
                Turn::Failed(reason, detail) => WriteState::Failed { reason, detail },
                Turn::Held(until) => {
                    self.fenced(self.store().hold_write(ctx.lease.mailbox.id, ctx.lease.fence, w.id, until).await?)?;
                    retry(&mut report, until);
                    continue;
                }
                Turn::Later => {
                    retry(&mut report, now() + self.config().write_retry_secs);
                    continue;
                }
            };
            match &outcome {
                WriteState::Done { .. } => report.performed += 1,
                _ => report.failed += 1,
            }
            let audit = audit_entry(&w, &outcome, &ctx.lease.mailbox);
            self.fenced(self.store().finish_write(ctx.lease.mailbox.id, ctx.lease.fence, w.id, &outcome, &audit, now()).await?)?;
        }
        SyncMetrics::add(&self.inner.metrics.writes_performed, report.performed);
        SyncMetrics::add(&self.inner.metrics.writes_failed, report.failed);
        Ok(report)
    }

    fn fenced(&self, outcome: CommitOutcome) -> Result<(), SyncError> {
        match outcome {
            CommitOutcome::LeaseLost => Err(SyncError::LeaseLost),
            CommitOutcome::Committed { .. } => Ok(()),
        }
    }

    /// Counts an attempt (and what it made so far) before a call that may reach Microsoft.
    async fn attempt(&self, ctx: &RunCtx, w: &OutboxWrite, step: Option<&str>) -> Result<(), SyncError> {
        self.fenced(self.store().note_write_attempt(ctx.lease.mailbox.id, ctx.lease.fence, w.id, step, now()).await?)
    }

    async fn perform(&self, ctx: &RunCtx, w: &OutboxWrite) -> Result<Turn, SyncError> {
        let (client, mb, key) = (&self.inner.client, &ctx.mref, w.key.as_str());
        let looked = w.attempts > 0;
        Ok(match &w.request {
            WriteRequest::SendMail(_) | WriteRequest::Reply { .. } | WriteRequest::Forward { .. } => return self.send_mail(ctx, w).await,
            WriteRequest::CreateEvent(e) => {
                self.attempt(ctx, w, None).await?;
                // The same transactionId again is the same event.
                turn(self.graph_with(ctx, false, false, |t| async move { client.create_event(&t, mb, e, key).await }).await)
            }
            WriteRequest::CancelEvent { event, comment } => {
                self.attempt(ctx, w, None).await?;
                match self.graph_with(ctx, false, false, |t| async move { client.cancel_event(&t, mb, event, comment).await }).await {
                    // Cancelled by an earlier attempt whose answer was lost: the event is gone.
                    Err(CallFailure::Fatal(SyncError::Graph(e))) if looked && e.status == Some(404) => Turn::Done(event.clone()),
                    r => turn(r.map(|()| event.clone())),
                }
            }
            WriteRequest::CreateContact(c) => {
                if looked {
                    match self.graph(ctx, false, |t| async move { client.find_contacts_by_key(&t, mb, key).await }).await {
                        Ok(found) if !found.is_empty() => return Ok(Turn::Done(found[0].clone())),
                        Ok(_) => {}
                        Err(f) => return Ok(turn::<String>(Err(f))),
                    }
                }
                self.attempt(ctx, w, None).await?;
                turn(self.graph_with(ctx, false, false, |t| async move { client.create_contact(&t, mb, c, key).await }).await)
            }
            WriteRequest::UpdateContact { contact, draft } => {
                self.attempt(ctx, w, None).await?;
                turn(self.graph_with(ctx, false, false, |t| async move { client.update_contact(&t, mb, contact, draft).await }).await)
            }
            WriteRequest::CreateTask(task) => {
                if looked {
                    let since = rfc3339(w.created_at - 300);
                    let (list, since) = (task.list.as_str(), since.as_str());
                    match self.graph(ctx, false, |t| async move { client.find_task_by_key(&t, mb, list, key, since).await }).await {
                        Ok(Some(id)) => return Ok(Turn::Done(id)),
                        Ok(None) => {}
                        Err(f) => return Ok(turn::<String>(Err(f))),
                    }
                }
                self.attempt(ctx, w, None).await?;
                turn(self.graph_with(ctx, false, false, |t| async move { client.create_task(&t, mb, task, key).await }).await)
            }
            WriteRequest::SetTaskDone { list, task, done } => {
                self.attempt(ctx, w, None).await?;
                let done = *done;
                turn(self.graph_with(ctx, false, false, |t| async move { client.set_task_done(&t, mb, list, task, done).await }).await)
            }
        })
    }

    /// Mail: the draft (found by its key after a lost answer, or made), then sent by id unless it
    /// already was.
    async fn send_mail(&self, ctx: &RunCtx, w: &OutboxWrite) -> Result<Turn, SyncError> {
        let (client, mb, key) = (&self.inner.client, &ctx.mref, w.key.as_str());
        let mut draft = w.step.clone();
        if draft.is_none() && w.attempts > 0 {
            match self.graph(ctx, false, |t| async move { client.find_messages_by_key(&t, mb, key).await }).await {
                Ok(found) => {
                    if let Some(sent) = found.iter().find(|m| !m.is_draft) {
                        return Ok(Turn::Done(sent.id.clone()));
                    }
                    draft = found.into_iter().next().map(|m| m.id);
                }
                Err(f) => return Ok(turn::<String>(Err(f))),
            }
        }
        let draft = match draft {
            Some(id) => {
                // Sent by an attempt whose answer was lost?
                let id = id.as_str();
                match self.graph(ctx, false, |t| async move { client.message_state(&t, mb, id).await }).await {
                    Ok(Some(MessageRef { is_draft: false, id })) => return Ok(Turn::Done(id)),
                    Ok(Some(m)) => m.id,
                    Ok(None) => return Ok(Turn::Failed(ReasonCode::Unexpected, "The draft was deleted before it could be sent.".into())),
                    Err(f) => return Ok(turn::<String>(Err(f))),
                }
            }
            None => {
                self.attempt(ctx, w, None).await?;
                let made =
                    match &w.request {
                        WriteRequest::SendMail(d) => {
                            self.graph_with(ctx, false, false, |t| async move { client.create_draft(&t, mb, d, key).await }).await
                        }
                        WriteRequest::Reply { message, all, draft } => {
                            let action = if *all { ResponseAction::ReplyAll } else { ResponseAction::Reply };
                            self.graph_with(ctx, false, false, |t| async move {
                                client.create_response(&t, mb, message, action, draft, key).await
                            })
                            .await
                        }
                        WriteRequest::Forward { message, draft } => {
                            let action = ResponseAction::Forward;
                            self.graph_with(ctx, false, false, |t| async move {
                                client.create_response(&t, mb, message, action, draft, key).await
                            })
                            .await
                        }
                        _ => return Ok(Turn::Failed(ReasonCode::Unexpected, "not a mail write".into())),
                    };
                match made {
                    Ok(m) => m.id,
                    Err(f) => return Ok(turn::<String>(Err(f))),
                }
            }
        };
        self.attempt(ctx, w, Some(&draft)).await?;
        let id = draft.as_str();
        Ok(turn(self.graph_with(ctx, false, false, |t| async move { client.send_draft(&t, mb, id).await }).await.map(|()| draft.clone())))
    }
}

/// A call's result as a write's turn.
fn turn<T: Into<String>>(r: Result<T, CallFailure>) -> Turn {
    match r {
        Ok(id) => Turn::Done(id.into()),
        Err(CallFailure::Fatal(SyncError::Throttled(until))) => Turn::Held(until),
        Err(CallFailure::Fatal(SyncError::NeedsAttention(reason))) => Turn::Failed(reason, String::new()),
        Err(CallFailure::Fatal(SyncError::Graph(e))) if e.status.is_some_and(|s| (400..500).contains(&s)) => {
            Turn::Failed(e.reason, e.message)
        }
        Err(CallFailure::Gone) => Turn::Failed(ReasonCode::Unexpected, "The item was not found.".into()),
        Err(_) => Turn::Later,
    }
}

fn rfc3339(t: UnixTime) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// Who, on whose behalf, what, and Microsoft's id; never the body.
fn audit_entry(w: &OutboxWrite, outcome: &WriteState, mailbox: &store::sync::SyncMailbox) -> AuditEntry {
    let kind = w.request.kind();
    let whose = mailbox.graph_user_id.as_deref().map_or_else(|| "their own mailbox".to_string(), |u| format!("the mailbox of {u}"));
    let (action, summary) = match outcome {
        WriteState::Done { graph_id } => {
            (format!("office365.write.{}", kind.as_str()), format!("{} in {whose} (Microsoft id {graph_id}).", kind.done_label()))
        }
        WriteState::Failed { reason, .. } => {
            (format!("office365.write_failed.{}", kind.as_str()), format!("{} in {whose}: {}", kind.failed_label(), reason.message()))
        }
        WriteState::Pending => (format!("office365.write.{}", kind.as_str()), kind.pending_label().to_string()),
    };
    AuditEntry { at: now(), actor: w.actor.clone(), action, summary }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microsoft::GraphError;

    fn graph(status: Option<u16>, reason: ReasonCode) -> GraphError {
        GraphError { status, code: "x".into(), message: "Microsoft said no.".into(), request_id: None, retry_after: None, reason }
    }

    #[test]
    fn refusals_fail_and_unknown_outcomes_wait() {
        assert!(matches!(turn::<String>(Ok("id".into())), Turn::Done(id) if id == "id"));
        assert!(matches!(turn::<String>(Err(CallFailure::Fatal(SyncError::Throttled(99)))), Turn::Held(99)));
        let refused = CallFailure::Fatal(SyncError::Graph(graph(Some(403), ReasonCode::PermissionMissing)));
        assert!(matches!(turn::<String>(Err(refused)), Turn::Failed(ReasonCode::PermissionMissing, d) if d == "Microsoft said no."));
        let lost = CallFailure::Unknown(graph(None, ReasonCode::MicrosoftUnavailable));
        assert!(matches!(turn::<String>(Err(lost)), Turn::Later), "no answer: maybe performed, look next time");
        let unavailable = CallFailure::Fatal(SyncError::Graph(graph(Some(503), ReasonCode::MicrosoftUnavailable)));
        assert!(matches!(turn::<String>(Err(unavailable)), Turn::Later));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_795_953_600), "2026-11-29T12:00:00Z");
    }
}
