-- SQLite's TEXT has no length limit; this twin keeps the two dialects' histories aligned.
SELECT 1;
