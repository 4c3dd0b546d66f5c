//! The daemon workload's peer: the machine's floor for starting a burst of jobs. A bare tokio
//! program with nothing else to do starts `n` jobs due at one instant, as the daemon does (a
//! process: `true` with piped output, its own process group and five variables added to its
//! environment, at most one spawn per core at a time; or an HTTP GET to the same sink, at most 256
//! in flight), and reports when each started, counted from the instant. No scheduler, store,
//! claim, history or log: what is left is what the machine itself needs, so the daemon's start
//! latency over a burst can be read against it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What each job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Jobs {
    /// An HTTP GET to a sink in the benchmark process.
    Http,
    /// A process: `true`.
    Process,
}

/// Start offsets of a burst of `n` jobs, in milliseconds from the instant, sorted.
pub(crate) fn burst(jobs: Jobs, n: usize, sink: &str) -> Vec<i64> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let sink = sink.to_string();
    let mut offsets = rt.block_on(async move {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (limit, client) = match jobs {
            Jobs::Process => (cores, None),
            Jobs::Http => (256, Some(reqwest::Client::new())),
        };
        let places = Arc::new(tokio::sync::Semaphore::new(limit));
        let instant = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (places, client, sink) = (places.clone(), client.clone(), sink.clone());
            set.spawn(async move {
                let place = places.acquire_owned().await.expect("open");
                match client {
                    None => {
                        let mut cmd = tokio::process::Command::new("true");
                        cmd.stdin(Stdio::null())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .process_group(0);
                        for var in
                            ["CHIME_JOB", "CHIME_TICK", "CHIME_FENCE", "CHIME_RUN_ID", "CHIME_DEADLINE"]
                        {
                            cmd.env(var, format!("{var}-{i}"));
                        }
                        let spawned = tokio::task::spawn_blocking(move || cmd.spawn()).await;
                        let started = instant.elapsed();
                        drop(place);
                        if let Ok(Ok(mut child)) = spawned {
                            let _ = child.wait().await;
                        }
                        started
                    }
                    Some(client) => {
                        let started = instant.elapsed();
                        let _ = client.get(format!("http://{sink}/")).send().await;
                        drop(place);
                        started
                    }
                }
            });
        }
        let mut offsets = Vec::with_capacity(n);
        while let Some(done) = set.join_next().await {
            offsets.push(done.map_or(Duration::ZERO, |d| d).as_millis() as i64);
        }
        offsets
    });
    offsets.sort_unstable();
    offsets
}
