//! Durable timers in Redis (feature `redis`).
