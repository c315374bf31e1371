-- The organization's Office 365 integration settings and the audit log.
-- client_secret is sealed (XChaCha20-Poly1305, key outside the database): never plaintext here.
CREATE TABLE office365_settings (
    org_id                    UUID PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    enabled                   BOOLEAN NOT NULL,
    tenant                    TEXT NOT NULL,
    client_id                 TEXT NOT NULL,
    client_secret             BYTEA,
    client_secret_expires_on  TEXT,
    mode                      TEXT NOT NULL,
    access                    TEXT NOT NULL,
    features                  TEXT NOT NULL,
    sync_interval_minutes     INTEGER NOT NULL,
    backfill_days             INTEGER NOT NULL,
    poll_primary_only         BOOLEAN NOT NULL,
    setup_action_enabled      BOOLEAN NOT NULL,
    updated_at                BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    org_id    UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    summary   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX audit_log_org_at ON audit_log(org_id, at);
