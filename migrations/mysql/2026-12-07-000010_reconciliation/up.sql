-- Trade-bill reconciliation: one row per run (a day's bill matched against our orders and
-- refunds), one row per difference found. A second run of a day is a new run; repairs go
-- through the payment path, which applies each of them once.
CREATE TABLE reconciliation_runs (
    id VARCHAR(36) NOT NULL,
    bill_date VARCHAR(10) NOT NULL,
    status VARCHAR(16) NOT NULL,
    trigger_kind VARCHAR(16) NOT NULL,
    requested_by VARCHAR(64),
    bill_rows BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    missing_here BIGINT NOT NULL DEFAULT 0,
    missing_at_wechat BIGINT NOT NULL DEFAULT 0,
    amount_mismatches BIGINT NOT NULL DEFAULT 0,
    status_mismatches BIGINT NOT NULL DEFAULT 0,
    repaired BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6),
    PRIMARY KEY (id),
    KEY idx_reconciliation_runs_date (bill_date, started_at),
    KEY idx_reconciliation_runs_started (started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE reconciliation_discrepancies (
    id VARCHAR(36) NOT NULL,
    run_id VARCHAR(36) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    order_no VARCHAR(64) NOT NULL,
    out_refund_no VARCHAR(64),
    our_amount_fen BIGINT,
    wechat_amount_fen BIGINT,
    our_status VARCHAR(32),
    wechat_status VARCHAR(32),
    repaired_at DATETIME(6),
    repair_note TEXT,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY idx_reconciliation_discrepancies_run (run_id),
    KEY idx_reconciliation_discrepancies_order (order_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
