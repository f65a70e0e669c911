UPDATE risk_rules
SET condition_json = '{"type":"payments_per_minute","max":10}'
WHERE name = 'payment_velocity' AND condition_json = '{"type":"payments_in_window","max":20,"window_secs":3600}';
