//! The Redis coordinator (feature `redis`): being written.
