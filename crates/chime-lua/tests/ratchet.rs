//! Ratchet's threads, errors and timerfd (`tests/lua/ratchet.lua`), and the seed's example.
mod common;

#[test]
fn threads_errors_timerfd() {
    common::run_script("ratchet.lua");
}

/// The seed's example, shortened: a 50 ms timer, 620 ms of processing, then one read returns the
/// 12 ticks that passed, and the next read waits for the next tick. The kernel counts ticks however
/// late the thread runs, so the count is held to the time measured around the settime and the read
/// (a loaded runner may hold the thread back for tens of ms and stretch the processing), and the
/// second read must end no earlier than the tick after those counted.
#[test]
fn seed_example() {
    let out = common::run_chunk(
        r#"
        require "ratchet"
        local chime = require "chime"
        ratchet.new(function()
          local tfd = ratchet.timerfd.new()
          local set_before = chime.now()
          tfd:settime(0.05, 0.05)
          local set_after = chime.now()
          while chime.now() - set_after < 0.62 do end -- 620 ms of processing, without yielding
          local read_before = chime.now()
          local ticks = tfd:read()
          local read_after = chime.now()
          local next_one = tfd:read()
          print(ticks, next_one, set_before, set_after, read_before, read_after, chime.now())
        end):loop()
        "#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let fields: Vec<&str> = stdout.trim().split('\t').collect();
    assert_eq!(fields.len(), 7, "{stdout}");
    let ticks: i64 = fields[0].parse().unwrap_or(0);
    let at: Vec<f64> = fields[2..].iter().map(|f| f.parse().unwrap_or(f64::NAN)).collect();
    let (set_before, set_after, read_before, read_after, second_read) = (at[0], at[1], at[2], at[3], at[4]);
    // ticks fall every 50 ms from the settime (between set_before and set_after) on; the read counts
    // those up to a moment between read_before and read_after (give or take one for rounding)
    let lo = ((read_before - set_after) / 0.05).floor() as i64 - 1;
    let hi = ((read_after - set_before) / 0.05).floor() as i64 + 1;
    assert!(
        ticks >= 11 && (lo..=hi).contains(&ticks),
        "12 ticks in 620 ms (measured: {lo}..={hi}): {stdout}"
    );
    // the next read waits for the next tick: it ends no earlier, and returns 1 (more only if the
    // thread was held back past further ticks before it read)
    let next_tick = set_before + (ticks + 1) as f64 * 0.05;
    assert!(second_read >= next_tick - 0.001, "the next read waited for tick {}: {stdout}", ticks + 1);
    let next_one: i64 = fields[1].parse().unwrap_or(0);
    let due = ((second_read - set_before) / 0.05).floor() as i64 - ticks;
    assert!(next_one >= 1 && next_one <= due.max(1), "the next read returns the next tick (1): {stdout}");
}
