//! `chime`, the daemon: a schedule file run on every replica, each tick once cluster-wide (claims
//! through chime's cluster coordinators, with their fencing tokens), with an HTTP API and
//! Prometheus metrics. The binary's `main` calls [`main`]; the benchmark runs the same entry point
//! in a child process.

mod api;
mod check;
mod cli;
mod config;
mod daemon;
mod engine;
mod job;
mod metrics;
mod schedule;
mod store;
mod timers;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Cmd, LogFormat};

/// Runs the command line `args` (the program name first) and returns the process's exit status.
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    if args.get(1).is_some_and(|a| a == engine::guard::ARG) {
        return engine::guard::run(&args[2..]);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { daemon::INVALID } else { 0 });
        }
    };
    match cli.command {
        Cmd::Check(args) => match config::load(&args.file, args.crontab) {
            Ok(config) => {
                print!("{}", check::report(&config, jiff::Timestamp::now(), 5));
                ExitCode::SUCCESS
            }
            Err(invalid) => {
                eprintln!("{invalid}");
                ExitCode::from(daemon::INVALID)
            }
        },
        Cmd::Run(args) => {
            let config = match daemon::load(&args) {
                Ok(config) => config,
                Err((message, status)) => {
                    eprintln!("{message}");
                    return ExitCode::from(status);
                }
            };
            init_logging(args.log_format);
            engine::guard::enable();
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("chime: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let status = runtime.block_on(daemon::run(args, config));
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            ExitCode::from(status)
        }
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("CHIME_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
