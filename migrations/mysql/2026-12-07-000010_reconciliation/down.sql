DROP TABLE reconciliation_discrepancies;
DROP TABLE reconciliation_runs;
