//! `chime-lua --openresty FILE`: the file runs as a request handler; ngx.say on stdout, the error
//! log on stderr in nginx's shape; when the handler returns, the worker exits as nginx's does.
mod common;

use std::process::Output;

fn run(name: &str, source: &str) -> (Output, String, String) {
    let path = common::temp_script(name, source);
    let out = common::binary()
        .args(["--openresty", "--shdict", "timer_shm=8m"])
        .arg(&path)
        .output()
        .expect("chime-lua runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn a_handler_says_logs_and_the_worker_exits() {
    let (out, stdout, stderr) = run(
        "handler.lua",
        r#"
        local timer = require "resty.timer"
        ngx.say("hello ", 1, " ", true, { " a", " b" })
        ngx.print("no newline")
        print("to the error log")
        ngx.log(ngx.WARN, "careful ", nil)
        ngx.timer.at(60, function(premature, x) ngx.log(ngx.NOTICE, "premature ", premature, " ", x) end, "arg")
        local t = timer({ interval = 60, expire = function() end,
          cancel = function(reason) ngx.log(ngx.ERR, "CANCEL ", reason) end })
        ngx.sleep(0.01)
        ngx.say(ngx.worker.exiting())
        "#,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout, "hello 1 true a b\nno newlinefalse\n");
    let line = |needle: &str| stderr.lines().find(|l| l.contains(needle)).map(str::to_string);
    let notice = line("to the error log").unwrap_or_default();
    assert!(common::nginx_shaped(&notice, "notice"), "{stderr}");
    assert!(notice.contains("[lua] ") && notice.contains("handler.lua:5: to the error log"), "{notice}");
    assert!(common::nginx_shaped(&line("careful nil").unwrap_or_default(), "warn"), "{stderr}");
    // the worker's exit: the pending timer runs once, premature; the resty timer is cancelled
    assert!(line("premature true arg").is_some_and(|l| l.contains("context: ngx.timer")), "{stderr}");
    assert!(line("CANCEL SYSTEM").is_some_and(|l| common::nginx_shaped(&l, "error")), "{stderr}");
}

#[test]
fn a_failing_handler_is_logged_and_fails_the_request() {
    let (out, stdout, stderr) = run(
        "failing.lua",
        r#"
        local timer = require "resty.timer"
        timer({ interval = 60, detached = true, expire = function() end,
          cancel = function(reason) ngx.log(ngx.ERR, "CANCEL ", reason) end })
        ngx.say("before")
        local function inner() error("handler broke") end
        inner()
        "#,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout, "before\n");
    assert!(stderr.contains("lua entry thread aborted: runtime error: "), "{stderr}");
    assert!(stderr.contains("failing.lua:6: handler broke"), "{stderr}");
    assert!(stderr.contains("CANCEL SYSTEM"), "the worker still exits cleanly: {stderr}");
}

#[test]
fn ngx_exit_ends_the_handler() {
    let (out, stdout, _) = run("exit.lua", "ngx.say('a') ngx.exit(200) ngx.say('never')");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout, "a\n");
    let (out, _, _) = run("exit500.lua", "ngx.exit(500)");
    assert_eq!(out.status.code(), Some(1), "status 500 fails the request: {out:?}");
}

/// lua-resty-timer's garbage-collection behaviours (t/02-garbagecollect.t), our own version.
#[test]
fn unreferenced_timers_are_collected_detached_ones_are_not() {
    let (out, stdout, stderr) = run(
        "gc.lua",
        r#"
        local timer = require "resty.timer"
        local count, reason = 0, nil
        local object = { name = "obj" }
        object.timer = timer({ interval = 0.05, recurring = true,
          expire = function(self) count = count + 1 end,
          cancel = function(r, obj) reason = obj.name .. " " .. r end }, object)
        object = nil
        collectgarbage() collectgarbage()
        ngx.say(count, " ", reason)
        ngx.sleep(0.2)
        ngx.say(count)
        local runs = 0
        local weak = setmetatable({}, { __mode = "v" })
        weak.t = timer({ interval = 0.05, recurring = true, detached = true, expire = function() runs = runs + 1 end })
        collectgarbage() collectgarbage()
        -- until its third run (2 s at most): ticks missed while a loaded runner holds the thread
        -- back are skipped, so a fixed window could see fewer
        for _ = 1, 200 do
          if runs >= 3 then break end
          ngx.sleep(0.01)
          collectgarbage()
        end
        ngx.say(runs >= 3, " ", weak.t ~= nil)
        weak.t:cancel()
        weak.once = timer({ interval = 0.01, detached = true, expire = function() end })
        ngx.sleep(0.05)
        collectgarbage() collectgarbage()
        ngx.say(weak.once == nil)
        "#,
    );
    assert!(out.status.success(), "{out:?} {stderr}");
    assert_eq!(stdout, "0 obj GC\n0\ntrue true\ntrue\n");
}

/// lua-resty-timer's node-wide timers in one worker (t/01-timer.t's tests 3 and 5, our own
/// version): ten timers of one key run once per tick; a second timer of the key takes over within
/// a sub_interval when the first is cancelled. The count allows two ticks fewer than due (ticks
/// missed while a loaded runner holds the thread back for tens of ms are skipped), and the handover
/// is waited for rather than slept for.
#[test]
fn node_wide_timers_in_one_worker() {
    let (out, stdout, stderr) = run(
        "keyed.lua",
        r#"
        local timer = require "resty.timer"
        local count = 0
        for _ = 1, 10 do
          timer({ interval = 0.1, sub_interval = 0.005, recurring = true, immediate = true, detached = true,
            shm_name = "timer_shm", key_name = "ten", expire = function() count = count + 1 end })
        end
        ngx.sleep(0.55)
        ngx.say(count)
        local by, t = {}, {}
        local opts = { interval = 0.2, sub_interval = 0.01, recurring = true, immediate = true,
          shm_name = "timer_shm", key_name = "handover", expire = function(n) by[#by + 1] = n end }
        t[1] = timer(opts, 1)
        ngx.sleep(0.05)
        t[2] = timer(opts, 2)
        t[1]:cancel()
        for _ = 1, 200 do
          if #by >= 2 then break end
          ngx.sleep(0.01)
        end
        ngx.say(table.concat(by, ","))
        "#,
    );
    assert!(out.status.success(), "{out:?} {stderr}");
    let mut lines = stdout.lines();
    let count: u32 = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!((4..=7).contains(&count), "6 runs in 550 ms (immediate + 5), not 60: {stdout}");
    assert_eq!(lines.next(), Some("1,2"), "the second timer took over: {stdout}");
}
