//! Claims and releases gathered into batches for an SQLite store: whatever arrives while one batch
//! is in the store goes into the next, and [`Coordinator::claim_many`] decides a batch in one
//! transaction. A thousand jobs due at one instant then cost a few commits rather than a thousand
//! (each waiting its turn for the database's write lock). Redis and PostgreSQL take concurrent
//! calls on one connection as they come, so they are called directly.

use std::sync::Arc;

use chime::cluster::{Claim, ClaimOutcome, Coordinator, Lease};
use tokio::sync::{mpsc, oneshot};

/// The largest batch: bounds how long one transaction holds the write lock.
const MOST: usize = 2_000;

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// The batching front of a coordinator.
#[derive(Clone)]
pub(crate) struct Batcher {
    claims: mpsc::UnboundedSender<(Claim, Reply<ClaimOutcome>)>,
    releases: mpsc::UnboundedSender<(Lease, Reply<()>)>,
}

impl Batcher {
    pub(crate) fn start(coordinator: Arc<dyn Coordinator>) -> Batcher {
        let (claims, mut claim_rx) = mpsc::unbounded_channel::<(Claim, Reply<ClaimOutcome>)>();
        let (releases, mut release_rx) = mpsc::unbounded_channel::<(Lease, Reply<()>)>();
        let store = coordinator.clone();
        tokio::spawn(async move {
            while let Some(batch) = gather(&mut claim_rx).await {
                let (asks, replies): (Vec<Claim>, Vec<Reply<ClaimOutcome>>) = batch.into_iter().unzip();
                let began = std::time::Instant::now();
                let outcomes = store.claim_many(&asks).await;
                tracing::debug!(
                    claims = asks.len(),
                    took_us = began.elapsed().as_micros() as u64,
                    "claim batch"
                );
                match outcomes {
                    Ok(outcomes) => replies.into_iter().zip(outcomes).for_each(|(r, o)| drop(r.send(Ok(o)))),
                    Err(e) => replies.into_iter().for_each(|r| drop(r.send(Err(e.to_string())))),
                }
            }
        });
        tokio::spawn(async move {
            while let Some(batch) = gather(&mut release_rx).await {
                let (leases, replies): (Vec<Lease>, Vec<Reply<()>>) = batch.into_iter().unzip();
                let result = coordinator.release_many(&leases).await.map_err(|e| e.to_string());
                replies.into_iter().for_each(|r| drop(r.send(result.clone())));
            }
        });
        Batcher { claims, releases }
    }

    pub(crate) async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, String> {
        let (reply, answer) = oneshot::channel();
        self.claims.send((claim, reply)).map_err(|_| "the claim batcher has stopped".to_string())?;
        answer.await.map_err(|_| "the claim batcher has stopped".to_string())?
    }

    pub(crate) async fn release(&self, lease: Lease) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.releases.send((lease, reply)).map_err(|_| "the release batcher has stopped".to_string())?;
        answer.await.map_err(|_| "the release batcher has stopped".to_string())?
    }
}

/// Waits for one request, then takes every other one already waiting (up to [`MOST`]).
async fn gather<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MOST {
        match rx.try_recv() {
            Ok(more) => batch.push(more),
            Err(_) => break,
        }
    }
    Some(batch)
}
