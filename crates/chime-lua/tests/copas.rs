//! Copas 4 on chime-lua: threads and the loop, timers, and the queue, lock, semaphore and future
//! (`tests/lua/copas_*.lua`).
mod common;

#[test]
fn threads_loop_exit_errors_timeouts() {
    common::run_script("copas_threads.lua");
}

#[test]
fn timers() {
    common::run_script("copas_timer.lua");
}

#[test]
fn queue_lock_semaphore_future() {
    let out = common::run_script("copas_sync.lua");
    // the failing queue worker's error went to Copas' default handler (stdout, as Copas prints it)
    assert!(out.contains("worker error (coroutine: q:worker_1, socket: nil)"), "{out}");
}
