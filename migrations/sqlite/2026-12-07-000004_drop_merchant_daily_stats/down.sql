CREATE TABLE merchant_daily_stats (
    merchant_id TEXT NOT NULL,
    stat_date DATE NOT NULL,
    order_count BIGINT NOT NULL DEFAULT 0,
    amount_fen BIGINT NOT NULL DEFAULT 0,
    refund_fen BIGINT NOT NULL DEFAULT 0,
    points_awarded BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (merchant_id, stat_date)
);
