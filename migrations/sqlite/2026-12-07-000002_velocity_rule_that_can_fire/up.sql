-- The seed's velocity rule (10 payments a minute) could never fire under the 5-a-minute
-- payment rate limit. It now counts over a window it names: 20 payments in an hour. A rule
-- an operator already changed is left as it is.
UPDATE risk_rules
SET condition_json = '{"type":"payments_in_window","max":20,"window_secs":3600}'
WHERE name = 'payment_velocity' AND condition_json = '{"type":"payments_per_minute","max":10}';
