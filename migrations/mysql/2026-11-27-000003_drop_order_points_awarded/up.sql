-- An order's points live in the ledger (points_records, source 'order'); this copy was never
-- written, so it could only disagree with it.
ALTER TABLE payment_orders DROP COLUMN points_awarded;
