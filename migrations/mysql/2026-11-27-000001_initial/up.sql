CREATE TABLE users (
    id VARCHAR(36) NOT NULL,
    openid VARCHAR(64) NOT NULL,
    unionid VARCHAR(64),
    nickname VARCHAR(64),
    avatar VARCHAR(512),
    phone_cipher VARCHAR(512),
    phone_key_id VARCHAR(32),
    phone_blind_index VARCHAR(64),
    phone_masked VARCHAR(20),
    status VARCHAR(16) NOT NULL DEFAULT 'active',
    last_login_ip VARCHAR(64),
    last_login_at DATETIME(6),
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_users_openid (openid),
    KEY idx_users_phone_bidx (phone_blind_index),
    KEY idx_users_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refresh_tokens (
    id VARCHAR(36) NOT NULL,
    family_id VARCHAR(36) NOT NULL,
    subject_type VARCHAR(16) NOT NULL,
    subject_id VARCHAR(36) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    used_at DATETIME(6),
    PRIMARY KEY (id),
    UNIQUE KEY uk_refresh_token_hash (token_hash),
    KEY idx_refresh_family (family_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE merchants (
    id VARCHAR(36) NOT NULL,
    owner_user_id VARCHAR(36) NOT NULL,
    merchant_name VARCHAR(128) NOT NULL,
    contact_name VARCHAR(64) NOT NULL,
    contact_phone_cipher VARCHAR(512) NOT NULL,
    contact_phone_key_id VARCHAR(32) NOT NULL,
    contact_phone_masked VARCHAR(20) NOT NULL,
    business_license VARCHAR(64) NOT NULL,
    address VARCHAR(255) NOT NULL,
    status VARCHAR(16) NOT NULL,
    reviewed_by VARCHAR(36),
    reviewed_at DATETIME(6),
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_merchants_owner (owner_user_id),
    KEY idx_merchants_status (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payment_codes (
    id VARCHAR(36) NOT NULL,
    merchant_id VARCHAR(36) NOT NULL,
    label VARCHAR(64) NOT NULL,
    amount_fen BIGINT,
    status VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_codes_merchant (merchant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payment_orders (
    id VARCHAR(36) NOT NULL,
    order_no VARCHAR(32) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    merchant_id VARCHAR(36) NOT NULL,
    payment_code_id VARCHAR(36) NOT NULL,
    amount_fen BIGINT NOT NULL,
    refunded_fen BIGINT NOT NULL DEFAULT 0,
    status VARCHAR(16) NOT NULL,
    idempotency_key VARCHAR(64) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    description VARCHAR(128) NOT NULL,
    payer_openid VARCHAR(64) NOT NULL,
    prepay_id VARCHAR(64),
    wechat_transaction_id VARCHAR(64),
    points_awarded BIGINT NOT NULL DEFAULT 0,
    expires_at DATETIME(6) NOT NULL,
    paid_at DATETIME(6),
    closed_at DATETIME(6),
    version BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_orders_order_no (order_no),
    UNIQUE KEY uk_orders_idem (user_id, idempotency_key),
    UNIQUE KEY uk_orders_txn (wechat_transaction_id),
    KEY idx_orders_user (user_id, created_at),
    KEY idx_orders_merchant (merchant_id, created_at),
    KEY idx_orders_status (status, expires_at),
    KEY idx_orders_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refunds (
    id VARCHAR(36) NOT NULL,
    out_refund_no VARCHAR(64) NOT NULL,
    order_no VARCHAR(32) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    merchant_id VARCHAR(36) NOT NULL,
    amount_fen BIGINT NOT NULL,
    reason VARCHAR(255) NOT NULL,
    status VARCHAR(16) NOT NULL,
    wechat_refund_id VARCHAR(64),
    requested_by VARCHAR(64) NOT NULL,
    points_clawed_back BIGINT NOT NULL DEFAULT 0,
    points_shortfall BIGINT NOT NULL DEFAULT 0,
    success_at DATETIME(6),
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_refunds_out_refund_no (out_refund_no),
    KEY idx_refunds_order (order_no),
    KEY idx_refunds_merchant (merchant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE points_records (
    id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    points_change BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    source_type VARCHAR(16) NOT NULL,
    source_id VARCHAR(128) NOT NULL,
    description VARCHAR(255) NOT NULL,
    remaining BIGINT,
    expires_at DATETIME(6),
    capped_points BIGINT NOT NULL DEFAULT 0,
    shortfall BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_points_source (source_type, source_id),
    KEY idx_points_user (user_id, id),
    KEY idx_points_lots (user_id, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_points (
    user_id VARCHAR(36) NOT NULL,
    available BIGINT NOT NULL DEFAULT 0,
    total_earned BIGINT NOT NULL DEFAULT 0,
    total_used BIGINT NOT NULL DEFAULT 0,
    total_expired BIGINT NOT NULL DEFAULT 0,
    total_clawed_back BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE points_rules (
    id VARCHAR(36) NOT NULL,
    points_per_yuan INT NOT NULL,
    min_order_fen BIGINT NOT NULL,
    max_order_fen BIGINT NOT NULL,
    per_order_max_points BIGINT NOT NULL,
    daily_cap BIGINT NOT NULL,
    lifetime_cap BIGINT NOT NULL,
    expiry_days INT NOT NULL,
    effective_from DATETIME(6) NOT NULL,
    created_by VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_rules_effective (effective_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE outbox (
    id VARCHAR(36) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    aggregate_id VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NOT NULL,
    last_error VARCHAR(512),
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_outbox_kind_aggregate (kind, aggregate_id),
    KEY idx_outbox_due (next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE notification_log (
    id VARCHAR(36) NOT NULL,
    notification_id VARCHAR(64) NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(32),
    out_refund_no VARCHAR(64),
    serial VARCHAR(64) NOT NULL,
    raw_body MEDIUMTEXT NOT NULL,
    result VARCHAR(32) NOT NULL,
    error VARCHAR(255),
    received_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_notif_id (notification_id),
    KEY idx_notif_order (out_trade_no),
    KEY idx_notif_received (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE merchant_daily_stats (
    merchant_id VARCHAR(36) NOT NULL,
    stat_date DATE NOT NULL,
    order_count BIGINT NOT NULL DEFAULT 0,
    amount_fen BIGINT NOT NULL DEFAULT 0,
    refund_fen BIGINT NOT NULL DEFAULT 0,
    points_awarded BIGINT NOT NULL DEFAULT 0,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (merchant_id, stat_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE admin_users (
    id VARCHAR(36) NOT NULL,
    username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    last_login_at DATETIME(6),
    PRIMARY KEY (id),
    UNIQUE KEY uk_admin_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_log (
    id VARCHAR(36) NOT NULL,
    actor_type VARCHAR(16) NOT NULL,
    actor_id VARCHAR(64) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target_type VARCHAR(32) NOT NULL,
    target_id VARCHAR(64) NOT NULL,
    before_json TEXT,
    after_json TEXT,
    trace_id VARCHAR(64) NOT NULL,
    ip VARCHAR(64),
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_audit_created (created_at),
    KEY idx_audit_target (target_type, target_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_login_ips (
    user_id VARCHAR(36) NOT NULL,
    ip VARCHAR(64) NOT NULL,
    first_seen DATETIME(6) NOT NULL,
    last_seen DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, ip)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE risk_rules (
    id VARCHAR(36) NOT NULL,
    name VARCHAR(64) NOT NULL,
    condition_json TEXT NOT NULL,
    action VARCHAR(32) NOT NULL,
    priority INT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_risk_rules_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE subscribe_messages (
    id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    openid VARCHAR(64) NOT NULL,
    template_id VARCHAR(64) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    reference VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    last_error VARCHAR(512),
    next_attempt_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_subscribe_kind_ref (kind, reference),
    KEY idx_subscribe_due (status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Default earning rule of the source design: 1 point per whole yuan, expiry 365 days.
-- Caps are generous: 10,000 points per order, 50,000 per CST day, 10,000,000 per lifetime.
INSERT INTO points_rules (id, points_per_yuan, min_order_fen, max_order_fen, per_order_max_points, daily_cap, lifetime_cap, expiry_days, effective_from, created_by, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 1, 100, 100000000, 10000, 50000, 10000000, 365, '1970-01-01 00:00:00', 'migration', '1970-01-01 00:00:00');
-- Risk rules of the source design, as data.
INSERT INTO risk_rules (id, name, condition_json, action, priority, enabled, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000101', 'payment_velocity', '{"type":"payments_per_minute","max":10}', 'block', 10, TRUE, '1970-01-01 00:00:00', '1970-01-01 00:00:00'),
       ('00000000-0000-7000-8000-000000000102', 'unknown_login_ip', '{"type":"new_login_ip"}', 'require_verification', 20, TRUE, '1970-01-01 00:00:00', '1970-01-01 00:00:00');
