//! Durable timers in PostgreSQL (feature `postgres`).
