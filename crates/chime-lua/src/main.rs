//! `chime-lua`: a Lua interpreter whose scheduler is chime, used like `lua` or `luajit`:
//!
//! ```text
//! chime-lua [-e stat] [-l mod] [-v] [script [args]]
//! ```
//!
//! Exit status: 0 when the script ends, the status given to `os.exit`, 1 with
//! `chime-lua: file:line: message` and a traceback on stderr for an uncaught error (or a syntax
//! error, without the traceback), as `lua` does.

use std::io::Read;
use std::process::ExitCode;

mod cli;

use chime_lua::{Error, Runtime};
use cli::Action;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("chime-lua: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args_os().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("chime-lua: {message}\n{}", cli::USAGE);
            return ExitCode::FAILURE;
        }
    };
    if options.version {
        println!("chime-lua {} ({})", env!("CARGO_PKG_VERSION"), chime_lua::LUA_VERSION);
    }
    let rt = match Runtime::builder().exit_process(true).build() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    if let Err(e) = set_arg(&rt, &options) {
        return fail(e);
    }
    for action in &options.actions {
        let result = match action {
            Action::Exec(chunk) => rt.exec(chunk, "(command line)"),
            Action::Require(module) => {
                let chunk = format!("{module} = require({module:?})");
                rt.exec(&chunk, "(command line)")
            }
        };
        if let Err(e) = result {
            return report(e);
        }
    }
    let result = match options.script.as_deref() {
        Some("-") => {
            let mut source = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut source) {
                return fail(format!("cannot read stdin: {e}"));
            }
            rt.exec_chunk(&source, "=stdin", &options.args)
        }
        Some(script) => rt.exec_file(script, &options.args),
        None if options.actions.is_empty() && !options.version => {
            eprintln!("{}", cli::USAGE);
            return ExitCode::FAILURE;
        }
        None => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

fn report(error: Error) -> ExitCode {
    match error {
        Error::Exit(code) => ExitCode::from(code as u8),
        other => fail(other),
    }
}

/// The `arg` table, as `lua` fills it: the script at 0, its arguments from 1, the interpreter and
/// its options at negative indices.
fn set_arg(rt: &Runtime, options: &cli::Options) -> Result<(), String> {
    let lua = rt.lua();
    let arg = lua.create_table().map_err(|e| e.to_string())?;
    let program = std::env::args().next().unwrap_or_else(|| "chime-lua".to_string());
    let script_at = options.before.len() as i64 + 1;
    let set = |i: i64, v: &str| arg.raw_set(i - script_at, v).map_err(|e| e.to_string());
    set(0, &program)?;
    for (n, a) in options.before.iter().enumerate() {
        set(n as i64 + 1, a)?;
    }
    if let Some(script) = &options.script {
        set(script_at, script)?;
        for (n, a) in options.args.iter().enumerate() {
            set(script_at + 1 + n as i64, a)?;
        }
    }
    lua.globals().set("arg", arg).map_err(|e| e.to_string())
}
