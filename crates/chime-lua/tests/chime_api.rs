//! The `chime` module: timers, tasks, the loop, errors and bad input (`tests/lua/chime_api.lua`).
mod common;

#[test]
fn chime_module() {
    let out = common::run_script("chime_api.lua");
    assert!(out.contains("checks passed"));
}
