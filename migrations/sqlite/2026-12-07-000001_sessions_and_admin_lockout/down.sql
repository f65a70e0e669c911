DROP INDEX idx_refresh_subject;
ALTER TABLE admin_users DROP COLUMN locked_until;
ALTER TABLE admin_users DROP COLUMN failed_logins;
