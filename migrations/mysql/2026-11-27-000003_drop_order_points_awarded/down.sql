ALTER TABLE payment_orders ADD COLUMN points_awarded BIGINT NOT NULL DEFAULT 0 AFTER wechat_transaction_id;
