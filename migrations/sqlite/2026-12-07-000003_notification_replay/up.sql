-- What an operator needs to replay a notification through the verified path: the route it
-- came in on and WeChat's signature headers as received.
ALTER TABLE notification_log ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE notification_log ADD COLUMN headers TEXT;
CREATE INDEX idx_notif_result ON notification_log (result, received_at);
