-- WeChat's own fee from the trade bill, recorded by reconciliation for each order and refund
-- it matched (one row each, upserted: a second run of a day changes nothing). Settlement
-- takes the fee from here where present and estimates it at the configured rate otherwise,
-- so the payment path writes nothing for it.
CREATE TABLE bill_order_fees (
    order_no TEXT NOT NULL PRIMARY KEY,
    bill_date TEXT NOT NULL,
    fee_fen BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

CREATE TABLE bill_refund_fees (
    out_refund_no TEXT NOT NULL PRIMARY KEY,
    order_no TEXT NOT NULL,
    bill_date TEXT NOT NULL,
    fee_returned_fen BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
