DROP INDEX idx_notif_result;
ALTER TABLE notification_log DROP COLUMN headers;
ALTER TABLE notification_log DROP COLUMN kind;
