DROP INDEX idx_refresh_subject ON refresh_tokens;
ALTER TABLE admin_users DROP COLUMN locked_until, DROP COLUMN failed_logins;
