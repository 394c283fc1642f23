//! Requests per second of the full receiver (verify + parse + dedupe +
//! dispatch) against a bare axum endpoint that only reads the body and
//! answers 200: the same load generator, the same payloads, the same run.
//!
//! Prints `ratio receiver_vs_bare: X` (goal X ≥ 0.8): the median, over
//! paired rounds, of the receiver's requests per second divided by the bare
//! endpoint's in the same round. The endpoints take turns going first, so
//! none always runs right after the payloads are built. Each round also
//! reports the process's CPU time per request (Linux), which a machine
//! shared with other work disturbs less than throughput.
//!
//! Three more endpoints, measured the same way, take the receiver apart:
//! the bare endpoint plus the signature check alone
//! (`ratio verify_only_vs_bare`), plus a check that the body is JSON
//! (`ratio verify_and_json_check_vs_bare`; `serde_json` into `IgnoredAny`,
//! no typed values), and plus the receiver's typed parse, the event then
//! dropped (`ratio verify_and_typed_parse_vs_bare`). No receiver that
//! verifies and reads the body can reach more than the first two; the third
//! is the receiver without its store, dispatch and reply.
//!
//! One more runs the full receiver with its handlers written as plain `fn`s
//! (`ratio receiver_blocking_handlers_vs_bare`), which the dispatcher runs on
//! tokio's blocking pool: what that hand-off to another thread costs.
//!
//! `scripts/receiver-instructions` counts the same work in instructions
//! (callgrind), which no other load on the machine disturbs.

use std::sync::Arc;

use kustomer_webhooks_tests::load::{
    Part, Run, bare_router, blocking_receiver_router, deliveries, load, part_router,
    receiver_router, serve,
};
use kustomer_webhooks_tests::median;

const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 8;

/// Where the receiver and the bare endpoint (the base of every ratio) are in
/// [`NAMES`]; the parts of the receiver follow them.
const RECEIVER: usize = 0;
const BARE: usize = 1;

/// The endpoints, in the order they are printed.
const NAMES: [&str; 6] = [
    "receiver",
    "bare",
    "verify_only",
    "verify_and_json_check",
    "verify_and_typed_parse",
    "receiver_blocking_handlers",
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut urls = Vec::new();
        for app in [
            receiver_router(),
            bare_router(),
            part_router(Part::Signature),
            part_router(Part::Json),
            part_router(Part::Typed),
            blocking_receiver_router(),
        ] {
            urls.push(format!("http://{}/", serve(app).await));
        }
        // Per endpoint: requests per second, CPU per request, and the ratio
        // to the bare endpoint in the same round.
        let mut rps = vec![Vec::new(); NAMES.len()];
        let mut cpu = vec![Vec::new(); NAMES.len()];
        let mut ratios = vec![Vec::new(); NAMES.len()];
        for round in 0..=ROUNDS {
            // Fresh ids each round: no delivery is a duplicate.
            let payloads = Arc::new(deliveries(round, REQUESTS));
            let mut runs: Vec<Option<Run>> = (0..NAMES.len()).map(|_| None).collect();
            // Each round starts with another endpoint.
            for k in 0..NAMES.len() {
                let i = (round + k) % NAMES.len();
                runs[i] = Some(load(urls[i].clone(), payloads.clone()).await);
            }
            if round == 0 {
                continue;
            }
            let runs: Vec<Run> = runs
                .into_iter()
                .map(|r| r.expect("every endpoint ran"))
                .collect();
            for (i, run) in runs.iter().enumerate() {
                rps[i].push(run.rps);
                cpu[i].extend(run.cpu_us);
                ratios[i].push(run.rps / runs[BARE].rps);
            }
        }
        for (i, name) in NAMES.iter().enumerate() {
            println!(
                "requests_per_second_{name}: {:.0}",
                median(std::mem::take(&mut rps[i]))
            );
        }
        for (i, name) in NAMES.iter().enumerate() {
            if !cpu[i].is_empty() {
                println!(
                    "cpu_us_per_request_{name}: {:.1}",
                    median(std::mem::take(&mut cpu[i]))
                );
            }
        }
        for (i, name) in NAMES.iter().enumerate().skip(BARE + 1) {
            println!(
                "ratio {name}_vs_bare: {:.2}",
                median(std::mem::take(&mut ratios[i]))
            );
        }
        println!(
            "ratio receiver_vs_bare: {:.2}",
            median(std::mem::take(&mut ratios[RECEIVER]))
        );
    });
}
