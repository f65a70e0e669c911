//! Points engine tests: the real engine (actors, ledger writer, read models) against a
//! fresh SQLite file, or a fresh MariaDB/MySQL database when `TEST_MYSQL_URL` is set.

mod concurrency;
mod helpers;
mod lots_and_caps;
mod service;
