//! What the in-memory idempotency store costs per event id it remembers:
//! `store_memory [IDS]` (default 400,000) claims and completes that many
//! Kustomer-style ids (24 hexadecimal digits) in a `MemoryStore` with the
//! default settings, and prints the growth of the process's resident memory
//! per id and the time per claim and completion. Linux only (it reads
//! `/proc/self/status`).
//!
//! ```sh
//! cargo run --release -p kustomer-webhooks-tests --example store_memory
//! cargo run --release -p kustomer-webhooks-tests --example store_memory -- 1000000
//! ```

use std::time::Instant;

use kustomer_webhooks::dedupe::{IdempotencyStore, MemoryStore};

/// The process's resident memory in kB, where `/proc` has it.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let ids: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 400_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: store_memory [IDS], IDS a whole number above 0");
            std::process::exit(2);
        }
    };
    // Distinct ids spread over the hash tables as real ones are.
    let texts: Vec<String> = (0..ids)
        .map(|i| format!("{:024x}", 0x6087_31c2_38e1_5ad7_u64 + i as u64 * 7919))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime builds");
    let store = MemoryStore::new();
    let Some(before) = rss_kb() else {
        eprintln!("no /proc/self/status here");
        std::process::exit(1);
    };
    let start = Instant::now();
    runtime.block_on(async {
        for id in &texts {
            store.begin(id).await.expect("the memory store never fails");
            store
                .complete(id)
                .await
                .expect("the memory store never fails");
        }
    });
    let elapsed = start.elapsed();
    let after = rss_kb().unwrap_or(before);
    println!(
        "ids: {ids}\nbytes_per_id: {:.1}\nns_per_begin_and_complete: {:.0}",
        after.saturating_sub(before) as f64 * 1024.0 / ids as f64,
        elapsed.as_nanos() as f64 / ids as f64
    );
}
