-- Read-write features: every write goes through this outbox (PRODUCT.md "Read-write features").
-- A row is recorded, with the writer's idempotency key, before anything is sent to Microsoft; the
-- worker holding the mailbox's lease performs it and records the outcome. `request` is the write
-- as JSON, sealed (it holds message bodies). `step` keeps what a multi-step write already made at
-- Microsoft (a draft's id before it is sent); `attempts` counts calls that may have reached
-- Microsoft, so a retry looks before it makes anything again. `headline` (a subject or a title,
-- never a body) is what Activity shows until the synced item replaces the row.
CREATE TABLE write_outbox (
    id               BLOB PRIMARY KEY NOT NULL,
    org_id           BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    mailbox_id       BLOB NOT NULL REFERENCES sync_mailboxes(id) ON DELETE CASCADE,
    -- Who asked, as the audit log names them.
    actor            TEXT NOT NULL,
    user_id          BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    resource         TEXT NOT NULL,
    request          BLOB NOT NULL,
    headline         TEXT NOT NULL,
    step             TEXT,
    state            TEXT NOT NULL,
    graph_id         TEXT,
    failure          TEXT,
    failure_detail   TEXT,
    not_before       INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX write_outbox_key ON write_outbox (user_id, idempotency_key);
CREATE INDEX write_outbox_mailbox ON write_outbox (mailbox_id, state, created_at);
