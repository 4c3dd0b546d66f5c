//! chime-bench: chime against tokio in one process and one run, printed as ratios against the goals
//! listed in this crate's README.
//!
//! ```text
//! cargo run --release -p chime-bench -- compare [--json] [--quick] [--plot FILE.svg] [--only 1,3]
//! ```
//!
//! Workloads: (1) arm + cancel at 1k / 100k / 1M pending, against tokio `Sleep` and `DelayQueue`;
//! (2) `sched.sleep` against `tokio::time::sleep`; (3) expiry CPU of 1M callback timers against 1M
//! tasks awaiting sleeps; (4) resident bytes per pending timer, each side in a fresh child process;
//! (5) precision; (6) the scale curve up to 10M pending; (7) two threads at once against one;
//! (8) durable timers on SQLite: create rate, memory with 1M stored, kill -9 and restart.
//! CPU time is counted over every thread of the process (`getrusage(RUSAGE_SELF)`).

mod arm_cancel;
mod daemon;
mod daemon_floor;
mod durable;
mod durable_crash;
mod expiry;
mod measure;
mod memory;
mod plot;
mod precision;
mod report;
mod scale;
mod threads;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use report::Report;

/// chime against tokio, in one process and one run.
#[derive(Debug, Parser)]
#[command(name = "chime-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs every workload and prints chime, its peer, the ratio and the goal of each figure.
    Compare(CompareArgs),
    /// The daemon workload: `chime run` with 10k jobs `@every 1m` and 1k `@every 1s` on SQLite
    /// (memory, CPU, claim latency; about 80 s, or 15 s with --quick).
    Daemon {
        /// 1k + 100 jobs over 8 s: a smoke run.
        #[arg(long)]
        quick: bool,
        /// What each job does.
        #[arg(long, value_enum, default_value = "http")]
        jobs: daemon::Jobs,
        /// Full size, but measured over this many seconds around a minute boundary (at least 10;
        /// for profiling: the steady seconds before the minute's burst, the burst, and after).
        #[arg(long, value_parser = clap::value_parser!(u64).range(10..=70))]
        window: Option<u64>,
    },
    /// Internal: arms timers in a fresh process and prints its resident memory (workload 4).
    #[command(hide = true)]
    MemoryChild {
        /// Which side to measure.
        kind: memory::Kind,
        /// Timers to arm.
        n: usize,
    },
    /// Internal: arms `n` chime timers in a fresh process, printing arm cost and memory (workload 6).
    #[command(hide = true)]
    ScaleChild {
        /// Timers to arm.
        n: usize,
    },
    /// Internal: serves a durable store for a few seconds and prints its memory (workload 8).
    #[command(hide = true)]
    DurableServe {
        /// The SQLite file.
        path: PathBuf,
        /// Seconds to serve.
        secs: u64,
    },
    /// Internal: serves a durable store until killed, appending each run to a sink (workload 8).
    #[command(hide = true)]
    DurableRun {
        /// The SQLite file.
        path: PathBuf,
        /// The sink file.
        sink: PathBuf,
        /// The scheduler's name in the sink.
        name: String,
    },
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Print the results as JSON on stdout (the table is not printed).
    #[arg(long)]
    json: bool,
    /// Smaller sizes (at most 100k timers, no 10M point): a smoke run of about 20 seconds.
    #[arg(long)]
    quick: bool,
    /// Draw the scale curve (workload 6) into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Run only these workloads (1-8), e.g. `--only 1,3`.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=8))]
    only: Vec<u8>,
}

/// The sizes of a run: full, or shrunk by `--quick`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Whether this is a `--quick` run.
    pub(crate) quick: bool,
}

impl Sizes {
    /// Pending timers for workload 1.
    pub(crate) fn pending_levels(self) -> &'static [usize] {
        if self.quick { &[1_000, 10_000, 100_000] } else { &[1_000, 100_000, 1_000_000] }
    }

    /// Operations per timed round (workloads 1, 2 and 7).
    pub(crate) fn pairs(self) -> usize {
        if self.quick { 20_000 } else { 200_000 }
    }

    /// Timed rounds per figure; the median is reported.
    pub(crate) fn rounds(self) -> usize {
        if self.quick { 3 } else { 5 }
    }

    /// The "1M" of workloads 3 and 4.
    pub(crate) fn million(self) -> usize {
        if self.quick { 100_000 } else { 1_000_000 }
    }

    /// Pending sleeps in workload 2.
    pub(crate) fn sleep_pending(self) -> usize {
        if self.quick { 10_000 } else { 100_000 }
    }

    /// Measured timers in workload 5.
    pub(crate) fn precision_timers(self) -> usize {
        if self.quick { 20_000 } else { 100_000 }
    }

    /// Sparse timers in workload 5 (2.03 ms apart: about a second in all, 0.2 s quick).
    pub(crate) fn sparse_timers(self) -> usize {
        if self.quick { 100 } else { 500 }
    }

    /// Sizes of the scale curve (workload 6).
    pub(crate) fn scale_levels(self) -> &'static [usize] {
        if self.quick { &[1_000, 10_000, 100_000] } else { &[1_000, 100_000, 1_000_000, 10_000_000] }
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Compare(args) => compare(&args),
        Cmd::Daemon { quick, jobs, window } => daemon::run(quick, jobs, window),
        Cmd::MemoryChild { kind, n } => memory::child(kind, n),
        Cmd::ScaleChild { n } => scale::child(n),
        Cmd::DurableServe { path, secs } => durable::serve_child(&path, secs),
        Cmd::DurableRun { path, sink, name } => durable_crash::run_child(&path, &sink, &name),
    }
}

/// Workload 8: creating, serving, and a crash.
fn durable_timers(sizes: Sizes, report: &mut Report) {
    durable::run(sizes, report);
    durable_crash::run(sizes, report);
}

fn compare(args: &CompareArgs) {
    let started = Instant::now();
    let sizes = Sizes { quick: args.quick };
    let mut report = Report::new(args.quick);
    let wanted = |n: u8| args.only.is_empty() || args.only.contains(&n);
    type Workload = fn(Sizes, &mut Report);
    let workloads: [(u8, &str, Workload); 8] = [
        (1, "arm + cancel", arm_cancel::run_arm_cancel),
        (2, "sleep + drop", arm_cancel::run_sleep),
        (3, "expiry", expiry::run),
        (4, "memory", memory::run),
        (5, "precision", precision::run),
        (6, "scale", scale::run),
        (7, "two threads", threads::run),
        (8, "durable timers", durable_timers),
    ];
    for (n, name, workload) in workloads {
        if wanted(n) {
            eprintln!("[{n}] {name} ({:.1} s in)", started.elapsed().as_secs_f64());
            workload(sizes, &mut report);
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    if let Some(path) = &args.plot {
        match plot::draw(&report.curve, path) {
            Ok(()) => eprintln!("scale curve drawn to {}", path.display()),
            Err(e) => {
                eprintln!("chime-bench: cannot draw {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("the report serializes"));
    } else {
        println!("{}", report.table());
    }
}
