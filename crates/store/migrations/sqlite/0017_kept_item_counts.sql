-- Items per mailbox and resource, kept by every write to sync_items in the transaction that makes
-- it (a page commit, a resync's sweep, a vanished folder; removing a mailbox removes its status
-- rows with its items), so the status pages read a number instead of counting every synced item.
ALTER TABLE sync_status ADD COLUMN items INTEGER NOT NULL DEFAULT 0;

-- The counts of the items already synced; a resource with items and no status yet gets a row.
INSERT INTO sync_status (mailbox_id, resource, items)
    SELECT mailbox_id, resource, COUNT(*) FROM sync_items WHERE TRUE GROUP BY mailbox_id, resource
    ON CONFLICT (mailbox_id, resource) DO UPDATE SET items = excluded.items;
