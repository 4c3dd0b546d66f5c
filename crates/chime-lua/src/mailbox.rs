//! The [`Mailbox`]: how chime's callbacks, which are `Send` and run on the driver, hand events to the
//! Lua thread without touching a Lua value.
//!
//! A message is a slot key (see [`crate::slots`]) and a payload (a worker item's key, or 0). Posting
//! takes a short lock and wakes the loop only when the box was empty, so a driver pass that fires a
//! thousand timers wakes the Lua thread once.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// One event for the Lua thread: which slot it is for, and a payload for that slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg {
    pub(crate) key: u64,
    pub(crate) payload: u64,
}

/// Messages posted from any thread, taken in batches by the Lua thread.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    queue: Mutex<Vec<Msg>>,
    notify: Notify,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Vec<Msg>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Posts a message; wakes the loop if it may be waiting.
    pub(crate) fn post(&self, key: u64, payload: u64) {
        let was_empty = {
            let mut queue = self.lock();
            queue.push(Msg { key, payload });
            queue.len() == 1
        };
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Moves every posted message into `into` (which the caller has emptied), keeping post order.
    pub(crate) fn take_into(&self, into: &mut Vec<Msg>) {
        std::mem::swap(&mut *self.lock(), into);
    }

    /// Whether nothing is posted.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits until a message may have been posted since the last wait (a stored permit returns at
    /// once, so a post between `is_empty` and this wait is never lost).
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }

    /// Wakes the loop without a message (a stop request, an async operation that ended).
    pub(crate) fn nudge(&self) {
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_post_order() {
        let mailbox = Mailbox::default();
        mailbox.post(1, 0);
        mailbox.post(2, 7);
        let mut out = Vec::new();
        mailbox.take_into(&mut out);
        assert_eq!(out, vec![Msg { key: 1, payload: 0 }, Msg { key: 2, payload: 7 }]);
        assert!(mailbox.is_empty());
    }

    #[tokio::test]
    async fn a_post_before_the_wait_is_not_lost() {
        let mailbox = Mailbox::default();
        mailbox.post(1, 0);
        tokio::time::timeout(std::time::Duration::from_secs(5), mailbox.wait())
            .await
            .expect("the permit was kept");
    }
}
