-- The claim reads mailboxes in due order and stops once it has what it asked for, rather than
-- sorting every claimable mailbox at every claim: due order with the id as the tie-break (a
-- "sync now" makes many mailboxes due at the same second), overall and per organization.
DROP INDEX sync_mailboxes_due;
CREATE INDEX sync_mailboxes_due ON sync_mailboxes(next_due_at, id);
DROP INDEX sync_mailboxes_org;
CREATE INDEX sync_mailboxes_org ON sync_mailboxes(org_id, next_due_at, id);
