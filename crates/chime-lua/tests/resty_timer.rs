//! resty.timer and the ngx subset in a plain script (`tests/lua/resty_timer.lua`): option checks
//! and messages, callback arguments, cancel results, fixed rate, errors, GC and SYSTEM cancels,
//! node-wide timers, ngx.timer, ngx.shared.
mod common;

#[test]
fn resty_timer_and_ngx() {
    let (_, stderr) =
        common::run_script_with(&["--shdict", "locks", "--shdict", "cache=1k"], "resty_timer.lua", None);
    // a failing recurring callback: an [error] line in nginx's shape, with a traceback
    let failed: Vec<&str> = stderr.lines().filter(|l| l.contains("timer callback failed with")).collect();
    assert!(failed.len() >= 3, "{stderr}");
    assert!(failed.iter().all(|l| common::nginx_shaped(l, "error")), "{stderr}");
    assert!(stderr.contains("boom 1\nstack traceback:"), "{stderr}");
    // a timer chime refuses: resty's own log line
    assert!(stderr.contains("[resty-timer] failed to create timer: "), "{stderr}");
    // at exit: pending ngx timers run prematurely, resty timers are cancelled with SYSTEM
    assert!(stderr.contains("premature at exit: true"), "{stderr}");
    assert!(stderr.contains("cancelled at exit: SYSTEM"), "{stderr}");
}

/// The seed's example: an object whose timer passes `self` and three arguments to both callbacks.
/// Six runs are due in 320 ms; a tick missed while a loaded runner holds the thread back for tens of
/// ms is skipped, so the count allows two fewer.
#[test]
fn seed_example() {
    let path = common::temp_script(
        "resty_seed.lua",
        r#"
        local resty_timer = require "resty.timer"
        local object = { name = "myName" }
        function object:timer_callback(...)
          print("starting ", self.name, ": ", ...)
        end
        function object.cancel_callback(reason, self, ...)
          print("stopping ", self.name, ": ", ...)
          print("reason " .. reason)
        end
        function object:start()
          if self.timer then return end
          self.timer = resty_timer({
            interval = 0.05,
            recurring = true,
            expire = self.timer_callback,
            cancel = self.cancel_callback,
          }, self, 1, " two ", 3)
        end
        function object:stop()
          if self.timer then
            self.timer:cancel()
            self.timer = nil
          end
        end
        object:start()
        ngx.sleep(0.32)
        object:stop()
        "#,
    );
    let out = common::binary().arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let runs = stdout.matches("starting \tmyName\t: \t1\t two \t3").count();
    assert!((4..=7).contains(&runs), "about 6 runs in 320 ms: {stdout}");
    assert!(stdout.contains("stopping \tmyName\t: \t1\t two \t3\nreason USER"), "{stdout}");
}
