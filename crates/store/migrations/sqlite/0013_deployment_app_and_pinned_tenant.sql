-- Organizations use the deployment's own multi-tenant app registration unless they bring theirs.
-- Every organization that already typed an app registration keeps using it.
ALTER TABLE office365_settings ADD COLUMN own_app BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE office365_settings SET own_app = TRUE WHERE client_id <> '';

-- The Microsoft 365 tenant an organization is pinned to: learned from the verified id_token of its
-- admin's activation. Every later sign-in, consent and token must carry it. An exclusive pin (the
-- default) is the only one for that tenant; the operator may allow organizations to share one.
ALTER TABLE office365_settings ADD COLUMN pinned_tenant TEXT;
ALTER TABLE office365_settings ADD COLUMN pinned_exclusive BOOLEAN NOT NULL DEFAULT TRUE;
CREATE UNIQUE INDEX office365_settings_one_org_per_tenant
    ON office365_settings (pinned_tenant) WHERE pinned_exclusive AND pinned_tenant IS NOT NULL;
