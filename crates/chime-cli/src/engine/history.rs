//! The run history's writer: records, misses and prunes batched (every 100 ms, or 500 at a time)
//! into one store call, so a thousand runs a second cost the store a few transactions. A store
//! that fails keeps the batch for the next try (up to a bound, past which the oldest are dropped
//! and counted in the log).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{MetaStore, Write};

const BATCH: usize = 500;
const EVERY: Duration = Duration::from_millis(100);
const MAX_BUFFERED: usize = 20_000;

enum Msg {
    Write(Box<Write>),
    Flush(oneshot::Sender<()>),
}

/// The writer's handle.
#[derive(Clone)]
pub(crate) struct History {
    tx: mpsc::UnboundedSender<Msg>,
}

impl History {
    /// Starts the writer on the current runtime.
    pub(crate) fn start(meta: Arc<dyn MetaStore>, keep: usize) -> History {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(meta, keep, rx));
        History { tx }
    }

    pub(crate) fn write(&self, write: Write) {
        let _ = self.tx.send(Msg::Write(Box::new(write)));
    }

    /// Waits until everything sent so far was written (or the store refused it).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn writer(meta: Arc<dyn MetaStore>, keep: usize, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut pending: Vec<Write> = Vec::new();
    let mut since_prune: HashMap<String, usize> = HashMap::new();
    let prune_every = (keep / 4).max(1);
    loop {
        let msg = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(EVERY, rx.recv()).await {
                Ok(msg) => msg,
                Err(_) => {
                    store(&*meta, &mut pending, keep).await;
                    continue;
                }
            }
        };
        match msg {
            None => {
                store(&*meta, &mut pending, keep).await;
                return;
            }
            Some(Msg::Flush(done)) => {
                store(&*meta, &mut pending, keep).await;
                let _ = done.send(());
            }
            Some(Msg::Write(write)) => {
                let write = *write;
                let prune = match &write {
                    Write::Finished(run) => {
                        let count = since_prune.entry(run.job.clone()).or_default();
                        *count += 1;
                        (*count >= prune_every).then(|| {
                            *count = 0;
                            run.job.clone()
                        })
                    }
                    _ => None,
                };
                pending.push(write);
                if let Some(job) = prune {
                    pending.push(Write::Prune(job));
                }
                if pending.len() >= BATCH {
                    store(&*meta, &mut pending, keep).await;
                }
            }
        }
    }
}

async fn store(meta: &dyn MetaStore, pending: &mut Vec<Write>, keep: usize) {
    if pending.is_empty() {
        return;
    }
    // A run that started and finished within one batch needs only its finished record.
    let finished: std::collections::HashSet<String> = pending
        .iter()
        .filter_map(|w| if let Write::Finished(r) = w { Some(r.run_id.clone()) } else { None })
        .collect();
    pending.retain(|w| !matches!(w, Write::Started(r) if finished.contains(&r.run_id)));
    match tokio::time::timeout(Duration::from_secs(10), meta.write(pending, keep)).await {
        Ok(Ok(())) => pending.clear(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, records = pending.len(), "the run history could not be written; will retry")
        }
        Err(_) => tracing::warn!(records = pending.len(), "writing the run history timed out; will retry"),
    }
    if pending.len() > MAX_BUFFERED {
        let dropped = pending.len() - MAX_BUFFERED;
        pending.drain(..dropped);
        tracing::error!(dropped, "the store has been failing: the oldest run history records were dropped");
    }
}
