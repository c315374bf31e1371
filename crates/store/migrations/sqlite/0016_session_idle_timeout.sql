-- Sessions end after an idle timeout as well as their absolute lifetime: each records when it was
-- last used (written at most once a minute) and the idle timeout it was started with.
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN idle_timeout INTEGER NOT NULL DEFAULT 43200;
-- Sessions from before this migration count as used now: nobody is signed out by the upgrade.
UPDATE sessions SET last_used_at = CAST(strftime('%s', 'now') AS INTEGER);
