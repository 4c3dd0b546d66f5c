//! Knot Resolver's globals with `chime-lua --knot` (`tests/lua/knot.lua`), the seed's examples,
//! and our own version of Knot's `tests/config/worker.test.lua` behaviours.
mod common;

#[test]
fn event_worker_map_cqueues() {
    let (_, stderr) = common::run_script_with(&["--knot"], "knot.lua", Some(b"one line\n"));
    // a callback error is logged as Knot logs it, with its traceback
    assert!(stderr.contains("[system] error: ") && stderr.contains("callback failed"), "{stderr}");
}

#[test]
fn require_knot_in_a_plain_script_runs_the_loop_at_the_end() {
    let out = common::run_chunk(
        "require 'knot'; event.after(20, function() print('ran') end) print('config done')",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config done\nran\n");
}

/// The seed's examples, with minutes made milliseconds.
#[test]
fn seed_examples() {
    let path = common::temp_script(
        "knot_seed.lua",
        r#"
        local unit = sec / 1000 -- the seed's "1 * minute" and "5 * sec" are shortened to ms here
        event.after(60 * unit, function() print('Hi!') end)
        msg_count = 0
        local rec = event.recurrent(5 * unit, function(e)
          msg_count = msg_count + 1
          print('Hi #' .. msg_count)
          if msg_count == 3 then event.cancel(e) end
        end)
        local interval = 40 * unit
        local n = 0
        event.after(40 * unit, function(ev)
          print('Good morning!')
          interval = interval / 2
          n = n + 1
          if n < 3 then event.reschedule(ev, interval) end
        end)
        local e = event.after(60 * unit, function() print('never') end)
        event.cancel(e)
        worker.coroutine(function()
          for i = 0, 3 do
            print('executing', i)
            worker.sleep(0.01)
          end
        end)
        "#,
    );
    let out = common::binary().arg("--knot").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.matches("Hi #").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("Hi!\n").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("Good morning!").count(), 3, "{stdout}");
    assert!(!stdout.contains("never"), "{stdout}");
    assert_eq!(stdout.matches("executing").count(), 4, "{stdout}");
}

/// Knot's worker test's behaviours: sleep inside pcall takes time; coroutines run concurrently
/// (100 nested coroutines sleeping 100 ms each finish in well under 10 s); a condition variable
/// wakes its waiter when the last one ends.
#[test]
fn worker_test_behaviours() {
    let out = common::binary()
        .arg("--knot")
        .arg(common::temp_script(
            "knot_worker.lua",
            r#"
            local monotime = require('cqueues').monotime
            local cv = require('cqueues.condition').new()
            worker.coroutine(function()
              local now = monotime()
              assert(pcall(worker.sleep, 0.05))
              assert(monotime() - now > 0, 'sleep takes time')
              local tasks = 100
              now = monotime()
              worker.coroutine(function()
                for _ = 1, 100 do
                  worker.coroutine(function()
                    worker.sleep(0.1)
                    tasks = tasks - 1
                    if tasks == 0 then cv:signal() end
                  end)
                end
              end)
              local status = cv:wait(2)
              print(status, tasks, monotime() - now < 1.5)
            end)
            "#,
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "true\t0\ttrue\n");
}
