-- Never written: a merchant's takings are summed from payment_orders and refunds when asked
-- (an index on (merchant_id, created_at)), which needs no per-merchant-day row that every
-- payment of a busy merchant would have to lock. A table nothing writes could only mislead.
DROP TABLE merchant_daily_stats;
