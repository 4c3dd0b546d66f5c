//! Micro-benchmarks of chime's timing wheel alone (no scheduler, no tokio, no locks):
//!
//! - `insert_remove/N`: one insert and its remove with N entries already in the wheel (deadlines
//!   spread over minutes, as in `chime-bench compare`);
//! - `fill/N`: inserting N entries into an empty wheel;
//! - `poll/N`: handing out N entries due within one second, advancing time 1 ms at a time.
//!
//! Run with `cargo bench -p chime-bench --bench wheel`.

use std::hint::black_box;
use std::time::Duration;

use chime::wheel::Wheel;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A timer record is 24 bytes.
type Record = [u8; 24];

/// Deadline of the `i`-th entry in nanoseconds: one to five minutes out.
fn spread(i: u64) -> u64 {
    (60_000 + i.wrapping_mul(7919) % 240_000) * 1_000_000
}

fn filled(n: u64) -> Wheel<Record> {
    let mut wheel = Wheel::with_capacity(n as usize + 1);
    for i in 0..n {
        wheel.insert(spread(i), [0; 24]);
    }
    wheel
}

fn insert_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_remove");
    group.throughput(Throughput::Elements(1));
    for n in [1_000u64, 100_000, 1_000_000] {
        let mut wheel = filled(n);
        let mut i = n;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i += 1;
                let key = wheel.insert(spread(i), [1; 24]);
                black_box(wheel.remove(black_box(key)))
            });
        });
    }
    group.finish();
}

fn fill(c: &mut Criterion) {
    let mut group = c.benchmark_group("fill");
    for n in [1_000u64, 100_000] {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| black_box(filled(n)).len());
        });
    }
    group.finish();
}

fn poll(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll");
    for n in [10_000u64, 100_000] {
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    let mut wheel: Wheel<Record> = Wheel::with_capacity(n as usize);
                    let step = 1_000_000_000 / n;
                    for i in 0..n {
                        // Scattered arming order, deadlines covering one second.
                        wheel.insert(i.wrapping_mul(7919) % n * step, [0; 24]);
                    }
                    wheel
                },
                |mut wheel| {
                    let mut popped = 0u64;
                    let mut now = 0;
                    while popped < n {
                        while let Some((_, record)) = wheel.pop(now) {
                            black_box(record);
                            popped += 1;
                        }
                        now += 1_000_000;
                    }
                    wheel
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = insert_remove, fill, poll
}
criterion_main!(benches);
