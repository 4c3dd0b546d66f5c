//! The `chime` binary: see the `chime_cli` library.

/// jemalloc rather than glibc's malloc: the daemon allocates on many threads (tokio's workers and
/// blocking pool), and glibc's per-thread arenas kept ~30 MiB more resident at the same work (the
/// daemon workload: 127 MiB against 96 MiB with two arenas), memory freed on one thread staying
/// with its arena.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    chime_cli::main(std::env::args_os().collect())
}
