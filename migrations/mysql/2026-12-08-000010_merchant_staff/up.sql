-- Merchant staff: users who work at a merchant with a role (manager or cashier); the owner
-- stays merchants.owner_user_id and is never a row here. One row per (merchant, user).
CREATE TABLE merchant_staff (
    merchant_id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    role VARCHAR(16) NOT NULL,
    invited_by VARCHAR(36) NOT NULL,
    invite_id VARCHAR(36) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (merchant_id, user_id),
    KEY idx_merchant_staff_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One-time invite codes. Only the SHA-256 of the normalized code is kept; redeeming is a
-- compare-and-set on (redeemed_at, revoked_at, expires_at), so one code admits one user.
CREATE TABLE merchant_staff_invites (
    id VARCHAR(36) NOT NULL,
    code_hash VARCHAR(64) NOT NULL,
    merchant_id VARCHAR(36) NOT NULL,
    role VARCHAR(16) NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    redeemed_by VARCHAR(36),
    redeemed_at DATETIME(6),
    revoked_at DATETIME(6),
    PRIMARY KEY (id),
    UNIQUE KEY uk_staff_invites_code (code_hash),
    KEY idx_staff_invites_merchant (merchant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
