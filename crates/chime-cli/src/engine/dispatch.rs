//! The agenda and its dispatcher. Every job's next tick is filed under the instant it fires; one
//! task sleeps until the earliest instant and then takes every tick due at it at once (ten thousand
//! `@every 1m` jobs make one wake-up a minute, not ten thousand timers and messages). For each due
//! tick it arms the job's next one, counts ticks that came and went unrun as missed, and hands the
//! tick to the [claimer](super::claimer) in one batch per instant.
//!
//! An entry names its job and the job's generation when it was filed: a job changed, removed or
//! re-planned since then has a new generation, so its old entries are skipped when they come up
//! (cancelling them early would cost more than letting them lapse).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;

use super::claimer::Pending;
use super::plan::{Tick, plan, runs_late, ticks_between};
use super::{Engine, lock};

/// A job's next tick, as filed.
pub(crate) struct Entry {
    pub(crate) job: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) tick: Tick,
}

/// Ticks by the millisecond they fire at.
#[derive(Default)]
pub(crate) struct Agenda {
    by_fire: BTreeMap<i64, Vec<Entry>>,
}

impl Agenda {
    /// Files `entry`; `true` when it is now the earliest (the dispatcher must wake sooner).
    pub(crate) fn insert(&mut self, entry: Entry) -> bool {
        let at = entry.tick.fire.as_millisecond();
        let earliest = self.earliest().is_none_or(|e| at < e);
        self.by_fire.entry(at).or_default().push(entry);
        earliest
    }

    pub(crate) fn earliest(&self) -> Option<i64> {
        self.by_fire.keys().next().copied()
    }

    /// Every entry due at `now_ms`, earliest first.
    fn take_due(&mut self, now_ms: i64) -> Vec<Entry> {
        let later = self.by_fire.split_off(&(now_ms + 1));
        let due = std::mem::replace(&mut self.by_fire, later);
        due.into_values().flatten().collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_fire.values().map(Vec::len).sum()
    }
}

/// The dispatcher; ends when the engine stops.
pub(crate) async fn dispatch(engine: Engine) {
    while !engine.stopping.load(Ordering::SeqCst) {
        let woken = engine.agenda_changed.notified();
        let earliest = lock(&engine.agenda).earliest();
        let now = Timestamp::now().as_millisecond();
        match earliest {
            Some(at) if at > now => {
                let delay = Duration::from_millis((at - now) as u64);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = woken => continue,
                }
            }
            Some(_) => {}
            None => {
                woken.await;
                continue;
            }
        }
        let now = Timestamp::now();
        let due = lock(&engine.agenda).take_due(now.as_millisecond());
        if !due.is_empty() && !engine.stopping.load(Ordering::SeqCst) {
            fire(&engine, due, now);
        }
    }
}

/// Handles the ticks due at `now`: arms each job's next tick and sends the claimer what runs.
fn fire(engine: &Engine, due: Vec<Entry>, now: Timestamp) {
    let mut ready = Vec::with_capacity(due.len());
    let mut missed = Vec::new();
    {
        let mut jobs = lock(&engine.jobs);
        for entry in due {
            let Some(slot) = jobs.get_mut(&*entry.job).filter(|s| s.generation == entry.generation) else {
                continue;
            };
            if now < entry.tick.fire {
                // The wall clock is behind the timer (it was set back): wait for the tick again.
                engine.arm(slot, Some(entry.tick));
                continue;
            }
            let spec = &slot.spec;
            let p = plan(spec, now);
            let latest = p.due.filter(|d| d.nominal > entry.tick.nominal).unwrap_or(entry.tick);
            if latest != entry.tick {
                let skipped = 1 + ticks_between(spec, entry.tick.nominal, latest.nominal);
                missed.push((spec.clone(), entry.tick.nominal, skipped));
            }
            let next = spec.schedule.next_after(latest.nominal, &spec.timezone).map(|n| Tick::of(spec, n));
            engine.arm(slot, next);
            ready.push(Pending { spec: slot.spec.clone(), tick: latest, lane: slot.lane.clone() });
        }
    }
    for (spec, tick, count) in missed {
        engine.missed(&spec, tick, "misfire", count);
    }
    let paused = lock(&engine.paused);
    let seen = lock(&engine.seen);
    let mut late = Vec::new();
    ready.retain(|p| {
        if paused.contains(&p.spec.name) {
            return false;
        }
        if runs_late(&p.spec, p.tick, now, seen.get(&p.spec.name).copied()) {
            return true;
        }
        late.push((p.spec.clone(), p.tick.nominal));
        false
    });
    drop((paused, seen));
    for (spec, tick) in late {
        engine.missed(&spec, tick, "misfire", 1);
    }
    if !ready.is_empty() {
        tracing::trace!(
            ticks = ready.len(),
            late_ms = now.as_millisecond() - ready[0].tick.fire.as_millisecond(),
            "due"
        );
        engine.claimer.send(ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(job: &str, fire_ms: i64) -> Entry {
        let at = Timestamp::from_millisecond(fire_ms).unwrap();
        Entry { job: job.into(), generation: 1, tick: Tick { nominal: at, fire: at } }
    }

    #[test]
    fn the_agenda_hands_out_every_tick_due_at_once() {
        let mut agenda = Agenda::default();
        assert!(agenda.insert(entry("a", 2_000)));
        assert!(!agenda.insert(entry("b", 2_000)), "the same instant: not earlier");
        assert!(!agenda.insert(entry("c", 3_000)));
        assert!(agenda.insert(entry("d", 1_000)));
        assert_eq!((agenda.earliest(), agenda.len()), (Some(1_000), 4));
        assert!(agenda.take_due(999).is_empty());
        let due: Vec<String> = agenda.take_due(2_000).iter().map(|e| e.job.to_string()).collect();
        assert_eq!(due, ["d", "a", "b"]);
        assert_eq!((agenda.earliest(), agenda.len()), (Some(3_000), 1));
    }
}
