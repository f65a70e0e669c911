DROP TABLE order_leases;
