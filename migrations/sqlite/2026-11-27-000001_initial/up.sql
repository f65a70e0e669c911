CREATE TABLE users (
    id TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    nickname TEXT,
    avatar TEXT,
    phone_cipher TEXT,
    phone_key_id TEXT,
    phone_blind_index TEXT,
    phone_masked TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    last_login_ip TEXT,
    last_login_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_users_openid UNIQUE (openid)
);
CREATE INDEX idx_users_phone_bidx ON users (phone_blind_index);
CREATE INDEX idx_users_created ON users (created_at);

CREATE TABLE refresh_tokens (
    id TEXT NOT NULL,
    family_id TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    PRIMARY KEY (id),
    CONSTRAINT uk_refresh_token_hash UNIQUE (token_hash)
);
CREATE INDEX idx_refresh_family ON refresh_tokens (family_id);

CREATE TABLE merchants (
    id TEXT NOT NULL,
    owner_user_id TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone_cipher TEXT NOT NULL,
    contact_phone_key_id TEXT NOT NULL,
    contact_phone_masked TEXT NOT NULL,
    business_license TEXT NOT NULL,
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    reviewed_by TEXT,
    reviewed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_merchants_owner ON merchants (owner_user_id);
CREATE INDEX idx_merchants_status ON merchants (status, created_at);

CREATE TABLE payment_codes (
    id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    label TEXT NOT NULL,
    amount_fen BIGINT,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_codes_merchant ON payment_codes (merchant_id, created_at);

CREATE TABLE payment_orders (
    id TEXT NOT NULL,
    order_no TEXT NOT NULL,
    user_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    payment_code_id TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    refunded_fen BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    description TEXT NOT NULL,
    payer_openid TEXT NOT NULL,
    prepay_id TEXT,
    wechat_transaction_id TEXT,
    points_awarded BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    closed_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_orders_order_no UNIQUE (order_no),
    CONSTRAINT uk_orders_idem UNIQUE (user_id, idempotency_key),
    CONSTRAINT uk_orders_txn UNIQUE (wechat_transaction_id)
);
CREATE INDEX idx_orders_user ON payment_orders (user_id, created_at);
CREATE INDEX idx_orders_merchant ON payment_orders (merchant_id, created_at);
CREATE INDEX idx_orders_status ON payment_orders (status, expires_at);
CREATE INDEX idx_orders_created ON payment_orders (created_at);

CREATE TABLE refunds (
    id TEXT NOT NULL,
    out_refund_no TEXT NOT NULL,
    order_no TEXT NOT NULL,
    user_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    wechat_refund_id TEXT,
    requested_by TEXT NOT NULL,
    points_clawed_back BIGINT NOT NULL DEFAULT 0,
    points_shortfall BIGINT NOT NULL DEFAULT 0,
    success_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_refunds_out_refund_no UNIQUE (out_refund_no)
);
CREATE INDEX idx_refunds_order ON refunds (order_no);
CREATE INDEX idx_refunds_merchant ON refunds (merchant_id, created_at);

CREATE TABLE points_records (
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    points_change BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    kind TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    description TEXT NOT NULL,
    remaining BIGINT,
    expires_at TIMESTAMP,
    capped_points BIGINT NOT NULL DEFAULT 0,
    shortfall BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_points_source UNIQUE (source_type, source_id)
);
CREATE INDEX idx_points_user ON points_records (user_id, id);
CREATE INDEX idx_points_lots ON points_records (user_id, expires_at);

CREATE TABLE user_points (
    user_id TEXT NOT NULL,
    available BIGINT NOT NULL DEFAULT 0,
    total_earned BIGINT NOT NULL DEFAULT 0,
    total_used BIGINT NOT NULL DEFAULT 0,
    total_expired BIGINT NOT NULL DEFAULT 0,
    total_clawed_back BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id)
);

CREATE TABLE points_rules (
    id TEXT NOT NULL,
    points_per_yuan INTEGER NOT NULL,
    min_order_fen BIGINT NOT NULL,
    max_order_fen BIGINT NOT NULL,
    per_order_max_points BIGINT NOT NULL,
    daily_cap BIGINT NOT NULL,
    lifetime_cap BIGINT NOT NULL,
    expiry_days INTEGER NOT NULL,
    effective_from TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_rules_effective ON points_rules (effective_from);

CREATE TABLE outbox (
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_outbox_kind_aggregate UNIQUE (kind, aggregate_id)
);
CREATE INDEX idx_outbox_due ON outbox (next_attempt_at);

CREATE TABLE notification_log (
    id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    out_trade_no TEXT,
    out_refund_no TEXT,
    serial TEXT NOT NULL,
    raw_body TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_notif_id ON notification_log (notification_id);
CREATE INDEX idx_notif_order ON notification_log (out_trade_no);
CREATE INDEX idx_notif_received ON notification_log (received_at);

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

CREATE TABLE admin_users (
    id TEXT NOT NULL,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    PRIMARY KEY (id),
    CONSTRAINT uk_admin_username UNIQUE (username)
);

CREATE TABLE audit_log (
    id TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    trace_id TEXT NOT NULL,
    ip TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX idx_audit_created ON audit_log (created_at);
CREATE INDEX idx_audit_target ON audit_log (target_type, target_id);

CREATE TABLE user_login_ips (
    user_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, ip)
);

CREATE TABLE risk_rules (
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    condition_json TEXT NOT NULL,
    action TEXT NOT NULL,
    priority INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_risk_rules_name UNIQUE (name)
);

CREATE TABLE subscribe_messages (
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    template_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uk_subscribe_kind_ref UNIQUE (kind, reference)
);
CREATE INDEX idx_subscribe_due ON subscribe_messages (status, next_attempt_at);

-- Default earning rule of the source design: 1 point per whole yuan, expiry 365 days.
-- Caps are generous: 10,000 points per order, 50,000 per CST day, 10,000,000 per lifetime.
INSERT INTO points_rules (id, points_per_yuan, min_order_fen, max_order_fen, per_order_max_points, daily_cap, lifetime_cap, expiry_days, effective_from, created_by, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 1, 100, 100000000, 10000, 50000, 10000000, 365, '1970-01-01 00:00:00', 'migration', '1970-01-01 00:00:00');
-- Risk rules of the source design, as data.
INSERT INTO risk_rules (id, name, condition_json, action, priority, enabled, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000101', 'payment_velocity', '{"type":"payments_per_minute","max":10}', 'block', 10, TRUE, '1970-01-01 00:00:00', '1970-01-01 00:00:00'),
       ('00000000-0000-7000-8000-000000000102', 'unknown_login_ip', '{"type":"new_login_ip"}', 'require_verification', 20, TRUE, '1970-01-01 00:00:00', '1970-01-01 00:00:00');
