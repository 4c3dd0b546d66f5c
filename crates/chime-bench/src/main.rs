//! chime-bench: chime against tokio in one run.
fn main() {}
