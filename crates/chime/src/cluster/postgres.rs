//! The PostgreSQL coordinator (feature `postgres`): being written.
