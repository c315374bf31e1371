-- Change notifications (MICROSOFT.md §4.3). A notification only says "this mailbox's resource
-- changed": it sets that resource's bit in `pending_resources` (bits: 1 mail, 2 calendar, 4 contacts,
-- 8 tasks), which makes the mailbox due whatever its `next_due_at`. A claim moves the bits to
-- `claimed_resources`, and the release clears those: a notification arriving during the run sets its
-- bit again, and a worker that dies keeps its claimed bits for the one who takes the lease over.
ALTER TABLE sync_mailboxes ADD COLUMN pending_resources BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_mailboxes ADD COLUMN claimed_resources BIGINT NOT NULL DEFAULT 0;

-- One subscription per mailbox, resource and container ('' except To Do lists, watched one by one).
-- `graph_id` is Microsoft's subscription id, NULL while there is none (never created, removed by
-- Microsoft, or failing with `failure`, a reason code, and Microsoft's words in `failure_detail`).
-- `client_state` is the random secret Microsoft echoes in every notification, sealed; `renew` is set
-- when Microsoft asked for reauthorization.
CREATE TABLE sync_subscriptions (
    mailbox_id      UUID NOT NULL REFERENCES sync_mailboxes(id) ON DELETE CASCADE,
    resource        TEXT NOT NULL,
    container       TEXT NOT NULL,
    graph_id        TEXT,
    client_state    BYTEA,
    expires_at      BIGINT NOT NULL DEFAULT 0,
    renew           BOOLEAN NOT NULL DEFAULT FALSE,
    failure         TEXT,
    failure_detail  TEXT,
    attempted_at    BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, resource, container)
);
CREATE UNIQUE INDEX sync_subscriptions_graph_id ON sync_subscriptions (graph_id);
