-- 'partially_refunded' is 18 characters: the order status needs more than 16.
ALTER TABLE payment_orders MODIFY status VARCHAR(32) NOT NULL;
