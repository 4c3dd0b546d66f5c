//! The command line: `chime run FILE`, `chime run --crontab FILE`, `chime check FILE`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// chime: a schedule file run on every replica, each tick once cluster-wide.
#[derive(Debug, Parser)]
#[command(name = "chime", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Runs the schedule: on every replica, each tick once across all that share the store.
    Run(RunArgs),
    /// Validates the file and prints each job's next 5 runs in its own time zone.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The schedule file (TOML), or a crontab with --crontab.
    pub(crate) file: PathBuf,
    /// The file is a crontab (supercronic's format) rather than a TOML schedule.
    #[arg(long)]
    pub(crate) crontab: bool,
    /// The store, overriding the file's `[store] url`: sqlite://FILE, redis://HOST, postgres://HOST/DB.
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// Where the API and /metrics listen, overriding `[server] listen` (IP:PORT).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Log lines as readable text or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The schedule file (TOML), or a crontab with --crontab.
    pub(crate) file: PathBuf,
    /// The file is a crontab (supercronic's format).
    #[arg(long)]
    pub(crate) crontab: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}
