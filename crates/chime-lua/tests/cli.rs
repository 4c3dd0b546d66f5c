//! The `chime-lua` command: `lua`'s options, the `arg` table, exit status, error output.
mod common;

use std::io::Write;
use std::process::Stdio;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_script(name: &str, source: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chime-lua-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

#[test]
fn arg_table_and_varargs_as_lua_fills_them() {
    let path = write_script(
        "args.lua",
        "print(arg[0] ~= nil, arg[1], arg[2], arg[-1], arg[-2], select('#', ...), ...)\n",
    );
    let out = common::binary().args(["-e", "x=1"]).arg(&path).args(["a", "b"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "true\ta\tb\tx=1\t-e\t2\ta\tb\n");
}

#[test]
fn options_run_in_order_before_the_script() {
    let out = common::binary()
        .args(["-e", "order = 'e1'", "-lcopas", "-e", "print(order, copas._VERSION ~= nil)"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "e1\ttrue\n");
    let out = common::binary().arg("-v").output().unwrap();
    assert!(text(&out.stdout).starts_with("chime-lua "), "{out:?}");
    let out = common::binary().arg("-x").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unrecognized option '-x'"));
}

#[test]
fn exit_status_follows_os_exit() {
    for (chunk, code) in
        [("os.exit(3)", 3), ("os.exit(true)", 0), ("os.exit(false)", 1), ("os.exit()", 0), ("x = 1", 0)]
    {
        let out = common::run_chunk(chunk);
        assert_eq!(out.status.code(), Some(code), "{chunk}: {out:?}");
    }
    // os.exit from inside a running Copas thread ends the process with its status, output flushed
    let out = common::run_chunk(
        "local copas = require 'copas' copas.loop(function() print('bye') copas.pause(0.01) os.exit(7) end)",
    );
    assert_eq!((out.status.code(), text(&out.stdout).as_str()), (Some(7), "bye\n"));
}

#[test]
fn uncaught_errors_print_message_and_traceback() {
    let path = write_script("boom.lua", "local function f()\n  error('boom')\nend\nf()\n");
    let out = common::binary().arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("chime-lua: {}:2: boom\nstack traceback:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("in local 'f'") || stderr.contains("in function 'f'"), "{stderr}");
    let out = common::run_chunk("error(setmetatable({}, {__tostring = function() return 'custom' end}))");
    assert!(text(&out.stderr).starts_with("chime-lua: custom\n"), "{out:?}");
    let out = common::run_chunk("error({})");
    assert!(text(&out.stderr).starts_with("chime-lua: (error object is a table value)"), "{out:?}");
}

#[test]
fn syntax_errors_name_the_line() {
    let path = write_script("syntax.lua", "local x = 1\nx = = 2\n");
    let out = common::binary().arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("chime-lua: {}:2:", path.display())), "{stderr}");
    assert!(stderr.contains("near '='"), "{stderr}");
    let out = common::binary().arg("/nonexistent/x.lua").output().unwrap();
    assert!(text(&out.stderr).contains("cannot open /nonexistent/x.lua"), "{out:?}");
}

#[test]
fn errors_in_callbacks_never_stop_the_loop() {
    let out = common::run_chunk(
        "local copas = require 'copas'
         local n = 0
         copas.timer.new{ delay = 0.005, recurring = true, callback = function(t) n = n + 1; if n == 3 then t:cancel() end; error('tick') end }
         copas.addthread(function() error('thread') end)
         copas.loop()
         print('survived', n)",
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with("survived\t3\n"), "{stdout}");
    assert_eq!(stdout.matches("tick (coroutine: copas_timer_1").count(), 3, "{stdout}");
}

#[test]
fn script_from_stdin() {
    let mut child =
        common::binary().args(["-", "q"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"print('stdin', ...)").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "stdin\tq\n");
}

#[test]
fn no_socket_needed_and_the_clock_stand_in() {
    let out = common::run_chunk(
        "local real = require
         require = function(n) if n == 'socket' then error('no socket') end return real(n) end
         local copas = require 'copas'
         copas.loop(function() copas.pause(0.001) end)
         require = real
         print(type(require('socket').gettime()))",
    );
    assert_eq!(text(&out.stdout), "number\n", "{out:?}");
}
