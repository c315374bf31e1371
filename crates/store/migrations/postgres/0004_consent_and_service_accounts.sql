-- Organization-wide (admin) consent, and the mailboxes a service-account connection syncs.

-- One row per organization: a member's pending "admin approval required", and the last admin
-- consent Microsoft confirmed (for which tenant and app registration).
CREATE TABLE office365_admin_consent (
    org_id             UUID PRIMARY KEY NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    requested_by       TEXT,
    requested_at       BIGINT,
    granted_by         TEXT,
    granted_at         BIGINT,
    granted_tenant_id  TEXT,
    granted_client_id  TEXT,
    granted_scopes     TEXT
);

-- Service account users: team members whose mailboxes the service connection syncs
-- (/users/{id}/...). ms_username is kept lower-case so an address is added once.
CREATE TABLE service_account_users (
    id            UUID PRIMARY KEY NOT NULL,
    org_id        UUID NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    ms_object_id  TEXT,
    ms_username   TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    added_by      TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    health        TEXT,
    health_at     BIGINT,
    UNIQUE (org_id, ms_username)
);
