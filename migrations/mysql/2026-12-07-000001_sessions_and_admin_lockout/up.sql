-- Per-account lockout for admin sign-in (consecutive failures, and until when the account
-- refuses sign-in), and a way to find every session of one user (disabling a user ends them).
ALTER TABLE admin_users
    ADD COLUMN failed_logins INT NOT NULL DEFAULT 0,
    ADD COLUMN locked_until DATETIME(6) NULL;
CREATE INDEX idx_refresh_subject ON refresh_tokens (subject_type, subject_id);
