DROP TABLE bill_refund_fees;
DROP TABLE bill_order_fees;
