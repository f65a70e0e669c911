-- Merchant staff: users who work at a merchant with a role (manager or cashier); the owner
-- stays merchants.owner_user_id and is never a row here. One row per (merchant, user).
CREATE TABLE merchant_staff (
    merchant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    invite_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (merchant_id, user_id)
);
CREATE INDEX idx_merchant_staff_user ON merchant_staff (user_id);

-- One-time invite codes. Only the SHA-256 of the normalized code is kept; redeeming is a
-- compare-and-set on (redeemed_at, revoked_at, expires_at), so one code admits one user.
CREATE TABLE merchant_staff_invites (
    id TEXT NOT NULL PRIMARY KEY,
    code_hash TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    redeemed_by TEXT,
    redeemed_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX uk_staff_invites_code ON merchant_staff_invites (code_hash);
CREATE INDEX idx_staff_invites_merchant ON merchant_staff_invites (merchant_id, created_at);
