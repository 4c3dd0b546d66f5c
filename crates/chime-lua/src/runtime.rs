//! [`Runtime`]: one Lua state on one thread, with a current-thread tokio runtime and a chime
//! [`Scheduler`] behind it.

use std::path::Path;
use std::rc::Rc;

use chime::Scheduler;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};

use crate::core::Core;
use crate::node::NodeConfig;
use crate::{Error, modules, stdlib};

/// A Lua runtime whose scheduler is chime: `copas`, `copas.timer`, `tinn`, `Timer` and the others
/// are in `package.preload`, and every wait of theirs is a chime timer.
///
/// A `Runtime` is `!Send`: create it on the thread that runs it. Its loop runs inside the Lua calls
/// that start one (`copas.loop()`, TINN's `run()`, `chime.run()`), or in [`Runtime::run`].
///
/// ```
/// let rt = chime_lua::Runtime::new()?;
/// rt.exec(r#"
///     local copas = require "copas"
///     ran = 0
///     copas.timer.new { delay = 0.01, callback = function() ran = ran + 1 end }
///     copas.loop()
/// "#, "example")?;
/// assert_eq!(rt.lua().globals().get::<i64>("ran")?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    lua: Lua,
    core: Rc<Core>,
    runtime: Table,
    mode: Mode,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("scheduler", &self.core.sched).finish_non_exhaustive()
    }
}

/// Configures a [`Runtime`].
///
/// ```
/// # fn main() -> Result<(), chime_lua::Error> {
/// let rt = chime_lua::Runtime::builder().exit_process(false).build()?;
/// # drop(rt); Ok(()) }
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until built"]
pub struct RuntimeBuilder {
    scheduler: Option<Scheduler>,
    exit_process: bool,
    node: NodeConfig,
    mode: Mode,
}

/// How a [`Runtime`] runs the files it is given (the `chime-lua` command's `--openresty` and
/// `--knot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// As `lua` runs them.
    #[default]
    Lua,
    /// As OpenResty's `content_by_lua` runs a request handler: in a task, with the global `ngx`,
    /// `print` on the error log; when the handler returns the worker exits (premature timers,
    /// resty.timer's `CANCEL_SYSTEM`).
    OpenResty,
    /// As Knot Resolver runs its configuration: with its globals (`event`, `worker`, `map`, `sec`,
    /// ...); its event loop runs at [`finish`](Runtime::finish).
    Knot,
}

impl RuntimeBuilder {
    /// Uses this scheduler (one the host program already runs, on its own tokio runtime) instead of
    /// starting one. The Lua loop still runs on a current-thread tokio runtime of its own, on the
    /// thread that owns the [`Runtime`]; chime's callbacks reach it through a mailbox.
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Whether Lua's `os.exit` ends the process (what the `chime-lua` binary wants). By default it
    /// does not: `os.exit(code)` stops the loop and [`Runtime::exec`] returns [`Error::Exit`].
    pub fn exit_process(mut self, exit: bool) -> Self {
        self.exit_process = exit;
        self
    }

    /// This runtime's place in a run of several workers (`chime-lua --workers N`): its id, the
    /// run's directory, the cluster store and the shared dictionaries. By default a runtime is
    /// worker 0 of 1, with a temporary run directory made when first needed.
    ///
    /// ```
    /// # fn main() -> Result<(), chime_lua::Error> {
    /// let node = chime_lua::NodeConfig { shdicts: vec![("cache".into(), 1 << 20)], ..Default::default() };
    /// let rt = chime_lua::Runtime::builder().node(node).build()?;
    /// rt.exec("local ngx = require 'ngx'; assert(ngx.shared.cache:set('k', 1))", "example")?;
    /// # Ok(()) }
    /// ```
    pub fn node(mut self, node: NodeConfig) -> Self {
        self.node = node;
        self
    }

    /// How files and chunks are run: see [`Mode`].
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Creates the Lua state, the tokio runtime and (unless one was given) the scheduler.
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if the tokio runtime or the Lua state cannot be created.
    pub fn build(self) -> Result<Runtime, Error> {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()
            .map_err(|e| Error::Setup(format!("cannot start a tokio runtime: {e}")))?;
        let tokio = Rc::new(tokio);
        let sched = match self.scheduler {
            Some(sched) => sched,
            None => {
                let _guard = tokio.enter();
                // a node-wide timer's store trouble (a lost lease, a failed claim) is worth a line
                Scheduler::builder()
                    .shards(1)
                    .on_cluster_error(|key, err| eprintln!("chime-lua: cluster timer {key}: {err}"))
                    .start()
            }
        };
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::new()).map_err(setup)?;
        let core = Rc::new(Core::new(&lua, sched, tokio, crate::node::Node::new(self.node)).map_err(setup)?);
        let core_table = Core::install(&core, &lua).map_err(setup)?;
        // The facilities add their functions to the private `core` table (they use the core; the
        // core knows none of them).
        for install in [
            crate::relay::install,
            crate::openresty::install,
            crate::knot::install,
            crate::control::install,
            crate::timerfd::install,
        ] {
            install(&core, &lua, &core_table).map_err(setup)?;
        }
        stdlib::install(&lua, &core, self.exit_process).map_err(setup)?;
        let (chunk, source) = modules::RUNTIME;
        let runtime: Table = lua.load(source).set_name(chunk).call(core_table).map_err(setup)?;
        let (chunk, source) = modules::LIFECYCLE;
        lua.load(source).set_name(chunk).call::<()>(runtime.clone()).map_err(setup)?;
        lua.globals()
            .get::<Table>("package")
            .and_then(|p| p.get::<Table>("loaded"))
            .and_then(|loaded| loaded.set("chime.runtime", runtime.clone()))
            .map_err(setup)?;
        modules::register(&lua).map_err(setup)?;
        let prelude = match self.mode {
            Mode::Lua => "",
            Mode::OpenResty => "local ngx = require 'ngx'; print = ngx._print",
            Mode::Knot => "require 'knot'",
        };
        lua.load(prelude).set_name("=[chime-lua] prelude").exec().map_err(setup)?;
        Ok(Runtime { lua, core, runtime, mode: self.mode })
    }
}

fn setup(err: mlua::Error) -> Error {
    Error::Setup(err.to_string())
}

impl Runtime {
    /// A runtime with its own scheduler, on a tokio runtime of its own.
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if the tokio runtime or the Lua state cannot be created.
    pub fn new() -> Result<Runtime, Error> {
        RuntimeBuilder::default().build()
    }

    /// A builder, to share a scheduler or let `os.exit` end the process.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The Lua state, to add globals or modules of your own.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The chime scheduler the Lua timers run on.
    pub fn scheduler(&self) -> &Scheduler {
        &self.core.sched
    }

    /// Runs a chunk of Lua. Its timers run only inside a loop it starts (`copas.loop()`, `run()`,
    /// `chime.run()`) or a later [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// [`Error::Syntax`] for a chunk that does not compile, [`Error::Lua`] (the message and its
    /// traceback) for an uncaught error, [`Error::Exit`] when the chunk called `os.exit`.
    pub fn exec(&self, source: &str, name: &str) -> Result<(), Error> {
        let chunk = self.lua.load(source).set_name(format!("={name}"));
        let function = chunk.into_function().map_err(syntax)?;
        self.call_main(function, mlua::MultiValue::new())
    }

    /// Runs a Lua file, with `args` as its `...`; errors as [`exec`](Self::exec).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read, otherwise as [`exec`](Self::exec).
    pub fn exec_file(&self, path: impl AsRef<Path>, args: &[String]) -> Result<(), Error> {
        let path = path.as_ref();
        let source =
            std::fs::read(path).map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
        self.exec_chunk(&source, &format!("@{}", path.display()), args)
    }

    /// Runs Lua source named `chunk_name` (Lua's convention: `@file` or `=name`), with `args` as
    /// its `...`; a first line starting with `#` is skipped. Errors as [`exec`](Self::exec).
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec).
    pub fn exec_chunk(&self, source: &[u8], chunk_name: &str, args: &[String]) -> Result<(), Error> {
        let source = strip_shebang(source);
        let chunk = self.lua.load(source).set_name(chunk_name);
        let function = chunk.into_function().map_err(syntax)?;
        let args: mlua::Result<Vec<Value>> =
            args.iter().map(|a| self.lua.create_string(a).map(Value::String)).collect();
        let args = args.map_err(setup)?;
        if self.mode == Mode::OpenResty {
            let handle: Function =
                self.lua.load("return require('chime.openresty').handle").eval().map_err(setup)?;
            let mut all = vec![Value::Function(function)];
            all.extend(args);
            return self.call_main(handle, mlua::MultiValue::from_iter(all));
        }
        self.call_main(function, mlua::MultiValue::from_iter(args))
    }

    /// Ends the program as its modules expect: runs their exit hooks once (OpenResty's worker exit
    /// with premature timers and resty.timer's `CANCEL_SYSTEM`; Knot's event loop, which runs until
    /// nothing is pending). The `chime-lua` command calls it when the main chunk has returned.
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec).
    ///
    /// ```
    /// let rt = chime_lua::Runtime::new()?;
    /// rt.exec("ngx = require 'ngx'; ngx.timer.at(60, function(premature) seen = premature end)", "at")?;
    /// rt.finish()?;
    /// assert!(rt.lua().globals().get::<bool>("seen")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish(&self) -> Result<(), Error> {
        let finish: Function = self.runtime.get("finish").map_err(setup)?;
        self.call_main(finish, mlua::MultiValue::new())
    }

    /// Runs the loop until nothing is pending (no timer armed, no task runnable).
    ///
    /// # Errors
    ///
    /// As [`exec`](Self::exec).
    pub fn run(&self) -> Result<(), Error> {
        let run: Function = self.runtime.get("run").map_err(setup)?;
        self.call_main(run, mlua::MultiValue::new())
    }

    fn call_main(&self, function: Function, args: mlua::MultiValue) -> Result<(), Error> {
        let main: Function = self.runtime.get("main").map_err(setup)?;
        let (ok, message): (bool, Option<String>) =
            main.call((function, mlua::Variadic::from_iter(args))).map_err(|e| Error::Lua(e.to_string()))?;
        if let Some(code) = self.core.exit_code() {
            return Err(Error::Exit(code));
        }
        if ok { Ok(()) } else { Err(Error::Lua(message.unwrap_or_default())) }
    }
}

fn syntax(err: mlua::Error) -> Error {
    match err {
        mlua::Error::SyntaxError { message, .. } => Error::Syntax(message),
        other => Error::Syntax(other.to_string()),
    }
}

/// Lua ignores a first line starting with `#` (a shebang).
fn strip_shebang(source: &[u8]) -> Vec<u8> {
    if source.starts_with(b"#") {
        let end = source.iter().position(|&b| b == b'\n').unwrap_or(source.len());
        // keep the newline so line numbers stay right
        let mut out = Vec::with_capacity(source.len() - end);
        out.extend_from_slice(b"--");
        out.extend_from_slice(&source[end..]);
        return out;
    }
    source.to_vec()
}
