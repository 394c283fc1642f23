//! Inference throughput and peak memory over mutated copies of the seed
//! samples.
//!
//! Prints `payloads_per_second`, and the peak heap growth of inference over
//! 1,000 and 10,000 payloads (`peak_bytes_1k`, `peak_bytes_10k` and their
//! ratio), before criterion's own report of the same throughput.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use kustomer_schema::Inferrer;
use kustomer_webhooks_tests::alloc_counter::{CountingAllocator, peak_growth};
use kustomer_webhooks_tests::mutate::Mutator;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const SEED: u64 = 0x6b75_7374;
const PAYLOADS: usize = 10_000;

/// Infers schemas from every payload: what the benchmark times.
fn infer_all(payloads: &[Value]) -> BTreeMap<String, Value> {
    let mut inferrer = Inferrer::default();
    for payload in payloads {
        if let Err(e) = inferrer.add(payload, "mutated") {
            panic!("a mutated payload was refused: {e}");
        }
    }
    inferrer.schemas()
}

/// The peak heap growth of inferring `n` payloads generated one at a time,
/// each dropped once added.
fn peak_for(n: usize) -> usize {
    let mut mutator = Mutator::new(SEED);
    let (inferrer, peak) = peak_growth(|| {
        let mut inferrer = Inferrer::default();
        for _ in 0..n {
            let payload = mutator.next_payload();
            if let Err(e) = inferrer.add(&payload, "mutated") {
                panic!("a mutated payload was refused: {e}");
            }
        }
        inferrer
    });
    black_box(inferrer);
    peak
}

fn report_memory() {
    let peak_1k = peak_for(1_000);
    let peak_10k = peak_for(10_000);
    println!("peak_bytes_1k: {peak_1k}");
    println!("peak_bytes_10k: {peak_10k}");
    println!(
        "ratio peak_10k_vs_1k: {:.3}",
        peak_10k as f64 / peak_1k as f64
    );
}

/// Payloads per second of [`infer_all`], from the median of a few runs.
fn report_throughput(payloads: &[Value]) {
    black_box(infer_all(payloads));
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(infer_all(black_box(payloads)));
            start.elapsed()
        })
        .collect();
    runs.sort();
    let median = runs[runs.len() / 2].as_secs_f64();
    println!("payloads_per_second: {:.0}", payloads.len() as f64 / median);
}

fn main() {
    report_memory();
    let payloads: Vec<Value> = Mutator::new(SEED).take(PAYLOADS).collect();
    report_throughput(&payloads);

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = criterion.benchmark_group("infer");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(PAYLOADS as u64));
    group.bench_function("add_10k_then_schemas", |b| {
        b.iter(|| infer_all(black_box(&payloads)))
    });
    group.finish();
    criterion.final_summary();
}
