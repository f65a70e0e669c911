DROP INDEX idx_refunds_success ON refunds;
DROP INDEX idx_refunds_merchant_success ON refunds;
DROP INDEX idx_orders_paid ON payment_orders;
DROP INDEX idx_orders_merchant_paid ON payment_orders;
