//! TINN on chime-lua: tasks, timers, predicates, signals and `Timer` (`tests/lua/tinn.lua`).
mod common;

#[test]
fn tinn_globals_and_timer() {
    common::run_script("tinn.lua");
}

/// The seed's `Timer` example, shortened: an initial delay, a period, a stop. Periods of 50 ms: a
/// tick missed while a loaded runner holds the thread back for tens of ms is skipped, and the
/// count's tolerance allows one.
#[test]
fn seed_timer_example() {
    let out = common::run_chunk(
        r#"
        local Timer = require("Timer")
        local function printThis(timer) print("this") end
        run(function()
          local timer = Timer {Delay = 50, Period = 50, TimerFunc = printThis}
          timer:start()
          sleep(225)
          timer:stop()
          print("stopped")
          sleep(60)
        end)
        "#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let before_stop = stdout.split("stopped").next().unwrap_or("");
    let runs = before_stop.matches("this").count();
    // A tick missed while a loaded machine holds the thread back is skipped: two runs at least.
    assert!((2..=5).contains(&runs), "runs at 50, 100, 150, 200 ms (+/- a tick): {stdout}");
    assert!(!stdout.split("stopped").nth(1).unwrap_or("").contains("this"), "none after stop: {stdout}");
}
