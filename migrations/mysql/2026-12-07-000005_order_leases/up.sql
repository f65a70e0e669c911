-- Which instance is working on an open order's close or re-query, and until when. An order
-- created on an instance that died is found by another instance's rescan; the lease makes
-- exactly one live instance act on it (a claim is a compare-and-set on owner or expiry).
-- A row of its own, so the hot payment_orders row is not written for it.
CREATE TABLE order_leases (
    order_no VARCHAR(32) NOT NULL,
    owner VARCHAR(64) NOT NULL,
    lease_until DATETIME(6) NOT NULL,
    claims BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (order_no),
    KEY idx_order_leases_until (lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
