-- Settlement is computed on read from the orders and refunds themselves (no counter row on
-- the payment path). These indexes make its reads range scans: one merchant's orders by the
-- time they were paid, every merchant's orders of one day, and the same for refunds by the
-- time they succeeded (a refund counts on the day it succeeds).
CREATE INDEX idx_orders_merchant_paid ON payment_orders (merchant_id, paid_at);
CREATE INDEX idx_orders_paid ON payment_orders (paid_at);
CREATE INDEX idx_refunds_merchant_success ON refunds (merchant_id, success_at);
CREATE INDEX idx_refunds_success ON refunds (success_at);
