DROP INDEX idx_refunds_success;
DROP INDEX idx_refunds_merchant_success;
DROP INDEX idx_orders_paid;
DROP INDEX idx_orders_merchant_paid;
