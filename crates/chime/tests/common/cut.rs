//! A durable store whose calls can be made to fail at once, as when the network to it is cut (for
//! paused-clock tests, where a real proxy would not do).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chime::cluster::Sqlite;
use chime::durable::State;

/// A store whose calls can be made to fail, as when the network to it is cut.
#[derive(Clone)]
pub struct Cut {
    pub store: Sqlite,
    pub down: Arc<AtomicBool>,
}

macro_rules! forward {
    ($self:ident, $call:expr) => {{
        let down = $self.down.load(Ordering::SeqCst);
        let call = $call;
        Box::pin(async move {
            if down {
                return Err(chime::Error::store("sqlite", "cut off"));
            }
            call.await
        })
    }};
}

impl chime::durable::DurableStore for Cut {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn prepare(&self) -> chime::cluster::StoreFuture<'_, ()> {
        forward!(self, self.store.prepare())
    }
    fn create<'a>(
        &'a self,
        rows: &'a [chime::durable::machine::Row],
    ) -> chime::cluster::StoreFuture<'a, Vec<Option<chime::durable::machine::Row>>> {
        forward!(self, self.store.create(rows))
    }
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> chime::cluster::StoreFuture<'a, Option<chime::durable::machine::Row>> {
        forward!(self, self.store.get(key))
    }
    fn list<'a>(
        &'a self,
        state: State,
        after: Option<(i64, &'a str)>,
        limit: usize,
    ) -> chime::cluster::StoreFuture<'a, Vec<chime::durable::machine::Row>> {
        forward!(self, self.store.list(state, after, limit))
    }
    fn cancel<'a>(&'a self, key: &'a str, now_ms: i64) -> chime::cluster::StoreFuture<'a, bool> {
        forward!(self, self.store.cancel(key, now_ms))
    }
    fn claim<'a>(
        &'a self,
        request: &'a chime::durable::ClaimRequest,
    ) -> chime::cluster::StoreFuture<'a, chime::durable::ClaimReply> {
        forward!(self, self.store.claim(request))
    }
    fn renew<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [(String, u64)],
        lease_ms: i64,
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<bool>> {
        forward!(self, self.store.renew(member, runs, lease_ms, now_ms))
    }
    fn finish<'a>(
        &'a self,
        member: &'a str,
        runs: &'a [chime::durable::Finish],
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<bool>> {
        forward!(self, self.store.finish(member, runs, now_ms))
    }
    fn purge(&self, before_ms: i64, limit: usize) -> chime::cluster::StoreFuture<'_, usize> {
        forward!(self, self.store.purge(before_ms, limit))
    }
    fn unknown<'a>(
        &'a self,
        known: &'a [String],
        now_ms: i64,
    ) -> chime::cluster::StoreFuture<'a, Vec<(String, u64)>> {
        forward!(self, self.store.unknown(known, now_ms))
    }
}
