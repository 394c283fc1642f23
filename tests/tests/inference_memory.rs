//! Inference keeps counts, never samples: its peak heap grows with the
//! schema, not with the number of samples.
//!
//! The measurement counts bytes through a counting global allocator, so it
//! is deterministic. This binary holds a single test, so no other test
//! allocates while it measures.

use kustomer_schema::Inferrer;
use kustomer_webhooks_tests::alloc_counter::{CountingAllocator, peak_growth};
use kustomer_webhooks_tests::mutate::Mutator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const SEED: u64 = 0x6b75_7374;

/// The peak heap growth while inferring `n` mutated payloads, generated and
/// dropped one at a time.
fn peak_for(n: usize) -> usize {
    let mut mutator = Mutator::new(SEED);
    let (inferrer, peak) = peak_growth(|| {
        let mut inferrer = Inferrer::default();
        for i in 0..n {
            let payload = mutator.next_payload();
            inferrer.add(&payload, &format!("payload {i}")).unwrap();
        }
        inferrer
    });
    assert_eq!(inferrer.sample_count(), n as u64);
    peak
}

#[test]
fn peak_memory_is_flat_in_the_number_of_samples() {
    let peak_1k = peak_for(1_000);
    let peak_10k = peak_for(10_000);
    eprintln!("peak_bytes_1k: {peak_1k}");
    eprintln!("peak_bytes_10k: {peak_10k}");
    eprintln!(
        "ratio peak_10k_vs_1k: {:.3}",
        peak_10k as f64 / peak_1k as f64
    );
    assert!(peak_1k > 0, "the counting allocator is not installed");
    assert!(
        peak_10k * 4 <= peak_1k * 5,
        "peak heap for 10,000 samples ({peak_10k} bytes) exceeds 1.25 times \
         the peak for 1,000 ({peak_1k} bytes)"
    );
}
