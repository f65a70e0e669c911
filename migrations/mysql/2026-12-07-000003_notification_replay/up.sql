-- What an operator needs to replay a notification through the verified path: the route it
-- came in on and WeChat's signature headers as received.
ALTER TABLE notification_log
    ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT '',
    ADD COLUMN headers TEXT NULL;
CREATE INDEX idx_notif_result ON notification_log (result, received_at);
