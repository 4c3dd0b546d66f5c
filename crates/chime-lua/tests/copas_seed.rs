//! The Copas Timer seed's API (newtimer, workers, waitforcondition, eventer, exitloop) and the
//! seed's own example, on chime-lua (`tests/lua/copas_seed.lua`).
mod common;

#[test]
fn seed_api() {
    common::run_script("copas_seed.lua");
}

/// The seed's first example, bounded: a recurring `newtimer` armed with an interval, then the loop.
#[test]
fn seed_example_runs() {
    let out = common::run_chunk(
        r#"
        local copas = require("copas.timer")
        local n = 0
        local expire_cb = function() n = n + 1; print("executing the timer"); if n == 3 then copas.exitloop() end end
        local t = copas.newtimer(nil, expire_cb, nil, true):arm(0.01)
        copas.loop()
        print("loop ended", t:isarmed())
        "#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.matches("executing the timer").count(), 3, "{stdout}");
    assert!(stdout.contains("loop ended\tfalse"), "exitloop cancelled the timer: {stdout}");
}
