-- The sync engine's state (crates/sync): which mailboxes are synced, who holds each one's lease,
-- the delta cursors, per-resource status and the synced items shown on /activity.

-- One synced mailbox: a connection's own (`graph_user_id` = '' → `/me`) or, in service-account
-- mode, a user's mailbox reached through `/users/{graph_user_id}`. The lease lives on this row:
-- `fence` grows with every claim, and a write carrying an older fence is refused.
CREATE TABLE sync_mailboxes (
    id                  UUID PRIMARY KEY NOT NULL,
    org_id              UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    connection_id       UUID NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    user_id             UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    graph_user_id       TEXT NOT NULL,
    paused_reason       TEXT,
    next_due_at         BIGINT NOT NULL,
    lease_owner         TEXT,
    lease_expires_at    BIGINT NOT NULL DEFAULT 0,
    fence               BIGINT NOT NULL DEFAULT 0,
    claim_was_takeover  BOOLEAN NOT NULL DEFAULT FALSE,
    last_commit_at      BIGINT,
    created_at          BIGINT NOT NULL,
    UNIQUE (connection_id, graph_user_id)
);
CREATE INDEX sync_mailboxes_due ON sync_mailboxes(next_due_at);
CREATE INDEX sync_mailboxes_org ON sync_mailboxes(org_id);

-- One delta cursor per mailbox, resource and container (mail folder, contact folder, To Do list;
-- '' for the calendar view). `link` is a nextLink (round in progress) or a deltaLink (round done).
-- `round` counts full rounds: a 410 starts a new one, and items not seen by the time it completes
-- are removed.
CREATE TABLE sync_cursors (
    mailbox_id     UUID NOT NULL REFERENCES sync_mailboxes(id) ON DELETE CASCADE,
    resource       TEXT NOT NULL,
    container      TEXT NOT NULL,
    link           TEXT,
    link_is_delta  BOOLEAN NOT NULL DEFAULT FALSE,
    round          BIGINT NOT NULL DEFAULT 1,
    full_round     BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, resource, container)
);

-- Health per mailbox and resource, for My Connection / Team connections and the first-sync bar.
CREATE TABLE sync_status (
    mailbox_id        UUID NOT NULL REFERENCES sync_mailboxes(id) ON DELETE CASCADE,
    resource          TEXT NOT NULL,
    last_success_at   BIGINT,
    last_error        TEXT,
    last_error_at     BIGINT,
    throttled_until   BIGINT,
    first_sync_done   BOOLEAN NOT NULL DEFAULT FALSE,
    estimated_total   BIGINT,
    PRIMARY KEY (mailbox_id, resource)
);

-- Synced items: only the fields the product shows, plus a lower-case search text.
CREATE TABLE sync_items (
    mailbox_id    UUID NOT NULL REFERENCES sync_mailboxes(id) ON DELETE CASCADE,
    org_id        UUID NOT NULL,
    user_id       UUID NOT NULL,
    resource      TEXT NOT NULL,
    container     TEXT NOT NULL,
    graph_id      TEXT NOT NULL,
    title         TEXT NOT NULL,
    subtitle      TEXT NOT NULL,
    preview       TEXT NOT NULL,
    occurred_at   BIGINT,
    data          TEXT NOT NULL,
    search_text   TEXT NOT NULL,
    seen_round    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (mailbox_id, resource, container, graph_id)
);
CREATE INDEX sync_items_activity ON sync_items(org_id, user_id, resource, occurred_at);
