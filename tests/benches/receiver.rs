//! Requests per second of the full receiver (verify + parse + dedupe +
//! dispatch) against a bare axum endpoint that only reads the body and
//! answers 200: the same load generator, the same payloads, the same run.
//!
//! Prints `ratio receiver_vs_bare: X` (goal X ≥ 0.8): the median, over
//! paired rounds, of the receiver's requests per second divided by the bare
//! endpoint's in the same round. The two take turns going first, so neither
//! always runs right after the payloads are built. Each round also reports
//! the process's CPU time per request (Linux), which a machine shared with
//! other work disturbs less than throughput.
//!
//! `scripts/receiver-instructions` counts the same work in instructions
//! (callgrind), which no other load on the machine disturbs.

use std::sync::Arc;

use kustomer_webhooks_tests::load::{bare_router, deliveries, load, receiver_router, serve};
use kustomer_webhooks_tests::median;

const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 8;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let full = serve(receiver_router()).await;
        let bare = serve(bare_router()).await;
        // Warm both up, then alternate rounds: the two see the same load.
        let (mut full_rps, mut bare_rps, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut full_cpu, mut bare_cpu) = (Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            // Fresh ids each round: no delivery is a duplicate.
            let payloads = Arc::new(deliveries(round, REQUESTS));
            let (full_url, bare_url) = (format!("http://{full}/"), format!("http://{bare}/"));
            let (f, b) = if round % 2 == 0 {
                let f = load(full_url, payloads.clone()).await;
                (f, load(bare_url, payloads).await)
            } else {
                let b = load(bare_url, payloads.clone()).await;
                (load(full_url, payloads).await, b)
            };
            if round > 0 {
                ratios.push(f.rps / b.rps);
                full_rps.push(f.rps);
                bare_rps.push(b.rps);
                full_cpu.extend(f.cpu_us);
                bare_cpu.extend(b.cpu_us);
            }
        }
        println!("requests_per_second_receiver: {:.0}", median(full_rps));
        println!("requests_per_second_bare: {:.0}", median(bare_rps));
        if !full_cpu.is_empty() && !bare_cpu.is_empty() {
            let (f, b) = (median(full_cpu), median(bare_cpu));
            println!("cpu_us_per_request_receiver: {f:.1}");
            println!("cpu_us_per_request_bare: {b:.1}");
            println!("cpu ratio bare_vs_receiver: {:.2}", b / f);
        }
        println!("ratio receiver_vs_bare: {:.2}", median(ratios));
    });
}
