DROP INDEX idx_notif_result ON notification_log;
ALTER TABLE notification_log DROP COLUMN headers, DROP COLUMN kind;
