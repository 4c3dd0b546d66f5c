//! # chime-lua
//!
//! A Lua runtime whose scheduler is [chime]: Copas programs (Copas 4 and the Copas Timer seed) and
//! TINN programs run unchanged, and every wait they make (a `copas.pause`, a `copas.timer`, TINN's
//! `sleep`, a queue's `pop` with a timeout) is a chime timer.
//!
//! - One Lua state on one thread, with a current-thread tokio runtime and a chime [`Scheduler`]
//!   (its own, or the host program's: [`RuntimeBuilder::scheduler`]).
//! - chime's callbacks are `Send` and never hold a Lua value: they post a slot id to a mailbox, and
//!   the Lua thread resumes the coroutine or calls the callback kept at that slot, in a plain Lua
//!   table (see `slots`), so the garbage collector sees everything.
//! - The loop ends when nothing is pending, as `copas.loop()` does.
//!
//! The modules (`copas`, `copas.timer`, `copas.queue`, `copas.lock`, `copas.semaphore`,
//! `copas.future`, `copas.eventer`, `tinn`, `Application`, `Timer`, `chime`) are registered in
//! `package.preload`. See the crate's README for each module's semantics and the decisions taken
//! where the seeds disagree.
//!
//! [`Scheduler`]: chime::Scheduler

mod core;
mod mailbox;
mod modules;
mod relay;
mod runtime;
mod slots;
mod stdlib;

pub use runtime::{Runtime, RuntimeBuilder};

/// The Lua this build embeds.
#[cfg(feature = "lua54")]
pub const LUA_VERSION: &str = "Lua 5.4";
/// The Lua this build embeds.
#[cfg(not(feature = "lua54"))]
pub const LUA_VERSION: &str = "LuaJIT 2.1";

/// What running Lua code can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The chunk does not compile: `file:line: message`.
    #[error("{0}")]
    Syntax(String),
    /// An uncaught error: the message and its traceback.
    #[error("{0}")]
    Lua(String),
    /// The chunk called `os.exit(code)` (when the runtime does not end the process itself).
    #[error("os.exit({0})")]
    Exit(i32),
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// The Lua state or the tokio runtime could not be created.
    #[error("chime-lua setup failed: {0}")]
    Setup(String),
}
