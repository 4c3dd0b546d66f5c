//! The wheel against a `BTreeMap` model, plus the cases worth naming.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

const MS: u64 = 1_000_000;

#[test]
fn fires_in_deadline_order_and_never_early() {
    let mut wheel = Wheel::new();
    let c = wheel.insert(300 * MS, 'c');
    let a = wheel.insert(100 * MS, 'a');
    let b = wheel.insert(100 * MS + 1, 'b');
    assert_eq!(wheel.pop(100 * MS - 1), None);
    assert_eq!(wheel.pop(100 * MS), Some((a, 'a')));
    assert_eq!(wheel.pop(100 * MS), None, "b is one nanosecond later");
    assert_eq!(wheel.pop(200 * MS), Some((b, 'b')));
    assert_eq!(wheel.next_deadline().map(|d| d <= 300 * MS), Some(true));
    assert_eq!(wheel.pop(u64::MAX), Some((c, 'c')));
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn equal_deadlines_keep_arming_order_across_levels() {
    let mut wheel = Wheel::new();
    let deadline = 10_000 * MS; // level 2 from time 0
    let first = wheel.insert(deadline, 1);
    wheel.poll(deadline - 50 * MS); // now the same deadline lands on level 0
    let second = wheel.insert(deadline, 2);
    let third = wheel.insert(deadline - 1, 3);
    assert_eq!(wheel.pop(deadline), Some((third, 3)));
    assert_eq!(wheel.pop(deadline), Some((first, 1)));
    assert_eq!(wheel.pop(deadline), Some((second, 2)));
}

#[test]
fn deadlines_past_tokio_delayqueue_limit_work() {
    // tokio's DelayQueue panicked past 2^36 ms of uptime.
    let mut wheel = Wheel::new();
    let far = (1u64 << 36) * MS + 12_345;
    let key = wheel.insert(far, ());
    let farthest = wheel.insert(u64::MAX, ());
    assert_eq!(wheel.poll(far - 1), None);
    assert_eq!(wheel.poll(far), Some(key));
    assert_eq!(wheel.poll(u64::MAX - 1), None);
    assert_eq!(wheel.poll(u64::MAX), Some(farthest));
}

#[test]
fn removals_in_the_middle_of_a_slot_keep_the_rest_in_order() {
    let mut wheel = Wheel::new();
    let keys: Vec<_> = (0..1000).map(|i| wheel.insert(5_000 * MS, i)).collect();
    for key in keys.iter().step_by(3).chain(keys.iter().skip(1).step_by(3)) {
        assert!(wheel.remove(*key).is_some());
    }
    let survivors: Vec<_> = std::iter::from_fn(|| wheel.pop(5_000 * MS)).map(|(_, v)| v).collect();
    assert_eq!(survivors, (2..1000).step_by(3).collect::<Vec<_>>());
}

#[test]
fn an_entry_with_a_16_byte_value_is_40_bytes() {
    // A timer record: a boxed callback (a fat pointer, never null); its options live beside the wheel.
    type Record = Box<dyn FnMut() + Send>;
    assert_eq!(size_of::<Record>(), 16);
    assert_eq!(size_of::<super::slab::Entry<Record>>(), 40);
    // A sleeping task's waker too.
    assert_eq!(size_of::<super::slab::Entry<std::task::Waker>>(), 40);
}

#[test]
fn a_slot_of_many_entries_fills_and_drains_without_copying_a_list() {
    let mut wheel = Wheel::new();
    let keys: Vec<_> = (0..100_000u64).map(|i| wheel.insert(3_000 * MS + i % 7, i)).collect();
    // The entries, and nothing per entry beyond them (the levels and the last chunk's slack are fixed).
    assert!(wheel.allocated_bytes() / keys.len() <= size_of::<super::slab::Entry<u64>>() + 2);
    let mut last = 0;
    let mut count = 0;
    while let Some((_, v)) = wheel.pop(4_000 * MS) {
        assert!(3_000 * MS + v % 7 >= last, "deadline order");
        last = 3_000 * MS + v % 7;
        count += 1;
    }
    assert_eq!(count, keys.len());
}

#[test]
fn a_slot_in_deadline_order_and_one_out_of_it_both_fill_the_current_tick_sorted() {
    let mut wheel = Wheel::new();
    // In order: the slot's list becomes the current one as it is.
    let in_order: Vec<_> = (1..=4).map(|i| wheel.insert(3_000 * MS + i, i)).collect();
    // Out of order only at its end: marked as it is walked, then sorted after all.
    let out_of_order: Vec<_> = [1, 2, 4, 3].map(|i| wheel.insert(4_000 * MS + i, 10 + i)).to_vec();
    for (keys, at) in [(in_order, 3_000 * MS), (out_of_order, 4_000 * MS)] {
        assert_eq!(wheel.poll(at), None, "moves the tick into the current list");
        // Removing from the middle unlinks from the current list (each entry knows where it is).
        assert!(wheel.remove(keys[1]).is_some());
        let values: Vec<_> = std::iter::from_fn(|| wheel.pop(at + MS)).map(|(_, v)| v % 10).collect();
        assert_eq!(values, vec![1, 3, 4]);
    }
    assert!(wheel.is_empty());
}

#[test]
fn rearm_inside_the_current_tick_keeps_sorting() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(5 * MS + 10, 'a');
    let b = wheel.insert(5 * MS + 20, 'b');
    assert_eq!(wheel.poll(5 * MS), None, "moves the tick into the current list");
    let c = wheel.insert(5 * MS + 15, 'c');
    wheel.rearm(a, 5 * MS + 30);
    let order: Vec<_> = std::iter::from_fn(|| wheel.pop(6 * MS)).map(|(k, _)| k).collect();
    assert_eq!(order, vec![c, b, a]);
}

#[test]
fn popped_keys_are_dead() {
    let mut wheel = Wheel::new();
    let key = wheel.insert(1, 'x');
    assert_eq!(wheel.pop(1), Some((key, 'x')));
    assert_eq!(wheel.get(key), None);
    assert!(!wheel.rearm(key, 5));
    let other = wheel.insert(5, 'y');
    assert_eq!(other.index(), key.index());
    assert_eq!(wheel.remove(key), None, "a stale key never reaches the new occupant");
    assert_eq!(wheel.get(other), Some(&'y'));
}

/// What the model is asked to do; `pick` chooses among live keys.
#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Remove(usize),
    Rearm(usize, u64),
    Disarm(usize),
    Flag(usize, bool),
    Advance(u64),
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..3 * MS,
        4 => 0..10_000 * MS,
        2 => 0..(1u64 << 40),
        1 => (1u64 << 56)..(1u64 << 62),
        1 => Just(u64::MAX),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => delay().prop_map(Op::Insert),
        2 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), delay()).prop_map(|(p, d)| Op::Rearm(p, d)),
        1 => any::<usize>().prop_map(Op::Disarm),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(p, f)| Op::Flag(p, f)),
        4 => delay().prop_map(Op::Advance),
    ]
}

/// The obviously right wheel: every armed key ordered by (deadline, arming sequence).
#[derive(Default)]
struct Model {
    order: BTreeMap<(u64, u64), Key>,
    armed: HashMap<Key, (u64, u64)>,
    flags: HashMap<Key, bool>,
    live: Vec<Key>,
    seq: u64,
}

impl Model {
    fn arm(&mut self, key: Key, deadline: u64) {
        self.disarm(key);
        self.seq += 1;
        self.order.insert((deadline, self.seq), key);
        self.armed.insert(key, (deadline, self.seq));
    }

    fn disarm(&mut self, key: Key) {
        if let Some(at) = self.armed.remove(&key) {
            self.order.remove(&at);
        }
    }

    fn pick(&self, pick: usize) -> Option<Key> {
        (!self.live.is_empty()).then(|| self.live[pick % self.live.len()])
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut wheel = Wheel::new();
    let mut model = Model::default();
    let mut now = 0u64;
    for op in ops {
        match op {
            Op::Insert(delay) => {
                let deadline = now.saturating_add(delay);
                let key = wheel.insert(deadline, deadline);
                model.live.push(key);
                model.arm(key, deadline);
            }
            Op::Remove(pick) => {
                let Some(key) = model.pick(pick) else { continue };
                let armed = model.armed.contains_key(&key);
                let flag = model.flags.remove(&key).unwrap_or(false);
                match pick % 3 {
                    0 => prop_assert!(wheel.remove(key).is_some()),
                    1 => prop_assert_eq!(wheel.remove_armed(key).map(|(_, a)| a), Some(armed)),
                    _ => {
                        let removed = wheel.remove_flagged(key).map(|r| (r.armed, r.flag));
                        prop_assert_eq!(removed, Some((armed, flag)));
                    }
                }
                model.disarm(key);
                model.live.retain(|&k| k != key);
                prop_assert!(wheel.remove(key).is_none());
            }
            Op::Rearm(pick, delay) => {
                let Some(key) = model.pick(pick) else { continue };
                let deadline = now.saturating_add(delay);
                prop_assert!(wheel.rearm(key, deadline));
                *wheel.get_mut(key).unwrap() = deadline;
                model.arm(key, deadline);
            }
            Op::Disarm(pick) => {
                let Some(key) = model.pick(pick) else { continue };
                prop_assert!(wheel.disarm(key));
                model.disarm(key);
            }
            Op::Flag(pick, flag) => {
                let Some(key) = model.pick(pick) else { continue };
                prop_assert!(wheel.set_flag(key, flag));
                model.flags.insert(key, flag);
            }
            Op::Advance(delay) => {
                now = now.saturating_add(delay);
                while let Some(key) = wheel.poll(now) {
                    let (&(deadline, seq), &expected) =
                        model.order.first_key_value().expect("the wheel fired, so must the model");
                    prop_assert!(deadline <= now, "fired {key:?} early: due {deadline}, now {now}");
                    prop_assert_eq!(key, expected, "wrong order at now {}", now);
                    prop_assert_eq!(wheel.get(key).copied(), Some(deadline));
                    model.order.remove(&(deadline, seq));
                    model.armed.remove(&key);
                    // Half the fired entries are removed, half stay unarmed.
                    if seq % 2 == 0 {
                        prop_assert_eq!(wheel.remove(key), Some(deadline));
                        model.live.retain(|&k| k != key);
                        model.flags.remove(&key);
                    }
                }
                if let Some((&(deadline, _), _)) = model.order.first_key_value() {
                    prop_assert!(deadline > now, "the wheel missed a due entry at {deadline} (now {now})");
                }
            }
        }
        prop_assert_eq!(wheel.len(), model.live.len());
        // Flags survive arming, disarming, moving down the levels and firing.
        for &key in &model.live {
            prop_assert_eq!(wheel.flag(key), Some(model.flags.get(&key).copied().unwrap_or(false)));
        }
        match (wheel.next_deadline(), model.order.first_key_value()) {
            (None, None) => {}
            (Some(next), Some((&(deadline, _), _))) => {
                prop_assert!(next <= deadline, "next_deadline {next} is after the earliest {deadline}");
            }
            (next, first) => prop_assert!(false, "next_deadline {next:?} but model has {first:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000)
    ))]

    #[test]
    fn wheel_matches_the_btreemap_model(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}
