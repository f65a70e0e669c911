-- Trade-bill reconciliation: one row per run (a day's bill matched against our orders and
-- refunds), one row per difference found. A second run of a day is a new run; repairs go
-- through the payment path, which applies each of them once.
CREATE TABLE reconciliation_runs (
    id TEXT NOT NULL PRIMARY KEY,
    bill_date TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    requested_by TEXT,
    bill_rows BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    missing_here BIGINT NOT NULL DEFAULT 0,
    missing_at_wechat BIGINT NOT NULL DEFAULT 0,
    amount_mismatches BIGINT NOT NULL DEFAULT 0,
    status_mismatches BIGINT NOT NULL DEFAULT 0,
    repaired BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX idx_reconciliation_runs_date ON reconciliation_runs (bill_date, started_at);
CREATE INDEX idx_reconciliation_runs_started ON reconciliation_runs (started_at);

CREATE TABLE reconciliation_discrepancies (
    id TEXT NOT NULL PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    order_no TEXT NOT NULL,
    out_refund_no TEXT,
    our_amount_fen BIGINT,
    wechat_amount_fen BIGINT,
    our_status TEXT,
    wechat_status TEXT,
    repaired_at TIMESTAMP,
    repair_note TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX idx_reconciliation_discrepancies_run ON reconciliation_discrepancies (run_id);
CREATE INDEX idx_reconciliation_discrepancies_order ON reconciliation_discrepancies (order_no);
