//! `chime_lua::Runtime` in a Rust program: errors come back typed, `os.exit` does not end the
//! host, and a runtime can share the host's scheduler.
use chime_lua::{Error, Runtime};

#[test]
fn exec_reports_syntax_and_runtime_errors() {
    let rt = Runtime::new().unwrap();
    match rt.exec("x = = 1", "chunk") {
        Err(Error::Syntax(message)) => assert!(message.starts_with("chunk:1:"), "{message}"),
        other => panic!("{other:?}"),
    }
    match rt.exec("error('bad')", "chunk") {
        Err(Error::Lua(message)) => {
            assert!(message.starts_with("chunk:1: bad\nstack traceback:"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    rt.exec("ok = true", "chunk").unwrap();
    assert!(rt.lua().globals().get::<bool>("ok").unwrap(), "the state survives an error");
}

#[test]
fn os_exit_stops_the_loop_and_comes_back_as_an_error() {
    let rt = Runtime::new().unwrap();
    let result = rt.exec(
        "local copas = require 'copas'
         copas.timer.new{ delay = 0.01, recurring = true, callback = function() os.exit(4) end }
         copas.loop()
         after = true",
        "exit",
    );
    assert_eq!(result, Err(Error::Exit(4)));
    assert_eq!(rt.lua().globals().get::<Option<bool>>("after").unwrap(), None);
}

#[test]
fn run_drives_timers_armed_by_earlier_chunks() {
    let rt = Runtime::new().unwrap();
    rt.exec(
        "local chime = require 'chime'; fired = 0; chime.after(0.005, function() fired = fired + 1 end)",
        "arm",
    )
    .unwrap();
    assert_eq!(rt.lua().globals().get::<i64>("fired").unwrap(), 0);
    rt.run().unwrap();
    assert_eq!(rt.lua().globals().get::<i64>("fired").unwrap(), 1);
}

/// A host with its own multi-thread runtime and scheduler: the Lua runtime lives on its own thread
/// and arms its timers on the host's scheduler.
#[test]
fn shares_the_hosts_scheduler() {
    let host = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    let sched = host.block_on(async { chime::Scheduler::start() });
    let lua_sched = sched.clone();
    let fired = std::thread::spawn(move || {
        let rt = Runtime::builder().scheduler(lua_sched).build().unwrap();
        rt.exec(
            "local copas = require 'copas'
             n = 0
             copas.timer.new{ delay = 0.005, recurring = true, callback = function(t) n = n + 1; if n == 3 then t:cancel() end end }
             copas.loop()",
            "shared",
        )
        .unwrap();
        rt.lua().globals().get::<i64>("n").unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(fired, 3);
    assert_eq!(sched.pending(), 0, "nothing left on the host's scheduler");
}
