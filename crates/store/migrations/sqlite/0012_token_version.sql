-- Every write of a connection's tokens is compare-and-set on this version: a refresh saves only
-- when the tokens it refreshed are still the stored ones, and a reconnect (a new grant) bumps it,
-- so a refresh or a needs-attention mark in flight cannot overwrite the new grant.
ALTER TABLE connections ADD COLUMN token_version INTEGER NOT NULL DEFAULT 1;
