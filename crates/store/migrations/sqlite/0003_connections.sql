-- OAuth flows in progress and the Microsoft 365 connections they create.

-- One row per authorization request sent to Microsoft: single use, bound to the browser session
-- that started it, gone after 10 minutes (Microsoft's codes live about as long, MICROSOFT.md §1.3).
CREATE TABLE oauth_flows (
    state_hash     BLOB PRIMARY KEY NOT NULL,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id        BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_hash   BLOB NOT NULL,
    purpose        TEXT NOT NULL,
    pkce_verifier  BLOB,
    nonce          TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);

-- A member's (or the admin-held service user's) delegated connection. Tokens are sealed.
CREATE TABLE connections (
    id                 BLOB PRIMARY KEY NOT NULL,
    org_id             BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id            BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,
    is_primary         BOOLEAN NOT NULL,
    ms_tenant_id       TEXT NOT NULL,
    ms_object_id       TEXT NOT NULL,
    ms_username        TEXT NOT NULL,
    ms_name            TEXT NOT NULL,
    granted_scopes     TEXT NOT NULL,
    access_token       BLOB NOT NULL,
    access_expires_at  INTEGER NOT NULL,
    refresh_token      BLOB,
    state              TEXT NOT NULL,
    reason             TEXT,
    reason_at          INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (org_id, user_id, kind)
);
CREATE INDEX connections_org ON connections(org_id);
