//! `chime run`: opens the store, schedules the file's jobs (and the API's), serves the API, and
//! lives until SIGTERM or SIGINT; SIGHUP reloads the file (a bad file is reported and the running
//! schedule kept).
//!
//! Stopping: no more ticks are claimed, running jobs get `[server] shutdown_timeout` to finish (a
//! second SIGTERM/SIGINT cuts it short), then they are stopped (SIGTERM to their process group,
//! SIGKILL after their grace); leases are released, the run history is written, the replica leaves
//! the store, and the process exits 0.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::api::{self, Api};
use crate::cli::RunArgs;
use crate::config::{self, Config, StoreUrl};
use crate::engine::{Engine, StopWhy};
use crate::job::Source;
use crate::store::{self, ReplicaInfo, now_ms};

/// Exit status for an invalid file or command line.
pub(crate) const INVALID: u8 = 2;

/// Loads the file with the command line's overrides; `Err` is the message and the exit status.
pub(crate) fn load(args: &RunArgs) -> Result<Config, (String, u8)> {
    let mut config = config::load(&args.file, args.crontab).map_err(|e| (e.to_string(), INVALID))?;
    if let Some(url) = &args.store {
        config.store =
            StoreUrl::parse(url, Path::new(".")).map_err(|e| (format!("--store: {e}"), INVALID))?;
    }
    if let Some(listen) = &args.listen {
        config.listen = config::listen_addr(listen).map_err(|e| (format!("--listen: {e}"), INVALID))?;
    }
    Ok(config)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// Runs the daemon until it is told to stop; returns the exit status.
pub(crate) async fn run(args: RunArgs, config: Config) -> u8 {
    let metrics = match crate::metrics::install() {
        Ok(handle) => handle,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let stores = match store::open(&config.store).await {
        Ok(stores) => stores,
        Err(e) => {
            tracing::error!(store = %config.store.redacted(), "cannot open the store: {e}");
            return 1;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, "cannot listen: {e}");
            return 1;
        }
    };
    let listen = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    let host = hostname();
    let replica = ReplicaInfo {
        id: format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>()),
        host,
        pid: std::process::id(),
        listen: listen.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_ms: now_ms(),
        heartbeat_ms: now_ms(),
        jobs: config.jobs.len(),
    };
    let store::Stores { meta, coordinator, durable } = stores;
    let engine = match Engine::new(meta, coordinator, replica, config.defaults.clone(), config.history) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let names: Vec<String> = config.jobs.iter().map(|j| j.name.clone()).collect();
    engine.see(&names).await;
    if let Err(e) = engine.load_states().await {
        tracing::warn!(error = %e, "cannot read pause flags yet");
    }
    if let Err(e) = engine.load_api_jobs().await {
        tracing::warn!(error = %e, "cannot read the API's jobs yet");
    }
    engine.store_answered();
    let timers = match crate::timers::start(&engine, durable, &config.timers).await {
        Ok(timers) => Arc::new(timers),
        Err(e) => {
            tracing::error!(store = %config.store.redacted(), "{e}");
            return 1;
        }
    };
    tokio::spawn(timers.clone().refresh_loop(engine.clone()));
    let mut config = config;
    if std::io::stdout().is_terminal() {
        print!("{}", crate::check::table(&config.jobs, jiff::Timestamp::now()));
    }
    // The engine keeps the jobs; the config keeps the rest (for reloads).
    engine.reconcile(&[Source::File, Source::Crontab], std::mem::take(&mut config.jobs));
    tracing::info!(
        replica = %engine.replica.id, store = %config.store.redacted(), listen = %listen,
        jobs = engine.jobs().len(), file = %config.path.display(), "chime is running"
    );
    if std::io::stdout().is_terminal() {
        println!("API and /metrics on http://{listen}/  (replica {})", engine.replica.id);
    }
    let api = Arc::new(Api {
        engine: engine.clone(),
        metrics,
        token: std::env::var("CHIME_TOKEN").ok().filter(|t| !t.is_empty()),
        store_url: config.store.redacted(),
        timers: timers.clone(),
    });
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, api::router(api))
            .with_graceful_shutdown(async move { drop(server_stopped.await) });
        if let Err(e) = serve.await {
            tracing::error!("the API server failed: {e}");
        }
    });
    tokio::spawn(engine.clone().sync_loop());

    let signals =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()));
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = signals else {
        tracing::error!("cannot install signal handlers");
        return 1;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => reload(&engine, &args, &mut config).await,
        }
    }
    stop(&engine, &timers, &config, &mut term, &mut int).await;
    let _ = server_stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    tracing::info!("stopped");
    0
}

async fn reload(engine: &Engine, args: &RunArgs, current: &mut Config) {
    let fresh = match load(args) {
        Ok(c) => c,
        Err((message, _)) => {
            for line in message.lines() {
                tracing::error!("reload refused, the running schedule is kept: {line}");
            }
            return;
        }
    };
    if fresh.store != current.store || fresh.listen != current.listen {
        tracing::warn!("the store and listen address change only with a restart; the rest is reloaded");
    }
    let names: Vec<String> = fresh.jobs.iter().map(|j| j.name.clone()).collect();
    engine.see(&names).await;
    let (added, changed, removed) = engine.reconcile(&[Source::File, Source::Crontab], fresh.jobs);
    tracing::info!(added = ?added, changed = ?changed, removed = ?removed, "SIGHUP: the schedule was reloaded");
}

async fn stop(
    engine: &Engine,
    timers: &crate::timers::Timers,
    config: &Config,
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) {
    engine.stop_scheduling();
    let running = || crate::engine::lock(&engine.runs).len();
    if running() > 0 {
        tracing::info!(runs = running(), timeout = %config::values::format_duration(config.shutdown_timeout), "waiting for running jobs");
        let wait = async {
            while running() > 0 {
                let changed = engine.runs_changed.notified();
                if running() == 0 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
            }
        };
        tokio::select! {
            () = wait => {}
            () = tokio::time::sleep(config.shutdown_timeout) => tracing::warn!("the shutdown timeout passed: stopping the jobs still running"),
            _ = term.recv() => tracing::warn!("a second signal: stopping the jobs still running"),
            _ = int.recv() => tracing::warn!("a second signal: stopping the jobs still running"),
        }
    }
    let jobs: Vec<String> = crate::engine::lock(&engine.runs).values().map(|r| r.job.clone()).collect();
    for job in jobs {
        engine.stop_runs(&job, None, StopWhy::Shutdown).await;
    }
    // Timer runs still going are stopped (their process groups too) and handed back: another
    // replica, or the next start, runs them again at once (chime's durable timers run at least
    // once; their fence tells the runs apart).
    timers.durable.shutdown().await;
    engine.history.flush().await;
    if let Err(e) = engine.meta.leave(&engine.replica.id).await {
        tracing::warn!(error = %e, "cannot remove this replica from the store");
    }
    engine.sched.shutdown().await;
    let _ = engine.stopping.load(Ordering::SeqCst);
}
