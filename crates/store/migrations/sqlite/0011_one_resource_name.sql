-- One name per synced resource: calendar events were stored as 'events' by the sync engine and as
-- 'calendar' in the settings; both now say 'calendar'.
UPDATE sync_cursors SET resource = 'calendar' WHERE resource = 'events';
UPDATE sync_status SET resource = 'calendar' WHERE resource = 'events';
UPDATE sync_items SET resource = 'calendar' WHERE resource = 'events';
