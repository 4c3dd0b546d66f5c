//! Ratchet's threads, errors and timerfd (`tests/lua/ratchet.lua`), and the seed's example.
mod common;

#[test]
fn threads_errors_timerfd() {
    common::run_script("ratchet.lua");
}

/// The seed's example, shortened: a 50 ms timer, 620 ms of processing, then one read returns the
/// 12 ticks that passed, and the next read waits for the next tick.
#[test]
fn seed_example() {
    let out = common::run_chunk(
        r#"
        require "ratchet"
        local chime = require "chime"
        ratchet.new(function()
          local tfd = ratchet.timerfd.new()
          tfd:settime(0.05, 0.05)
          local t0 = chime.now()
          while chime.now() - t0 < 0.62 do end -- 620 ms of processing, without yielding
          local ticks = tfd:read()
          local t1 = chime.now()
          local next_one = tfd:read()
          print(ticks, next_one, chime.now() - t1 > 0.005)
        end):loop()
        "#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let fields: Vec<&str> = stdout.trim().split('\t').collect();
    let ticks: u32 = fields[0].parse().unwrap_or(0);
    assert!((11..=13).contains(&ticks), "12 ticks in 620 ms: {stdout}");
    assert_eq!(&fields[1..], ["1", "true"], "{stdout}");
}
