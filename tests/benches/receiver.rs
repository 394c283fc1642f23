//! Requests per second of the full receiver (verify + parse + dedupe +
//! dispatch) against a bare axum endpoint that only reads the body and
//! answers 200: the same load generator, the same payloads, the same run.
//!
//! Prints `ratio receiver_vs_bare: X` (goal X ≥ 0.8): the median, over
//! paired rounds, of the receiver's requests per second divided by the bare
//! endpoint's in the same round; `rounds receiver_vs_bare: LOW–HIGH` gives
//! the lowest and highest of those ratios, how far one round strays. The
//! endpoints take turns going first, so none always runs right after the
//! payloads are built. Each round also reports the process's CPU time per
//! request (Linux), which a machine shared with other work disturbs less
//! than throughput.
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
//! And one serves the full receiver with the runtime's `axum::Server`
//! instead of `axum::serve` (`ratio receiver_on_server_vs_bare`, to set
//! beside `receiver_vs_bare`): what its time limit on heads, connection
//! limit and per-request bookkeeping for a graceful stop cost.
//!
//! And one calls the same receiver from a plain axum handler, one delivery
//! at a time (`ratio receiver_unbatched_vs_bare`): what the runtime router's
//! batches save (deliveries that arrive together, handled in turn by one
//! task with the receiver's code warm).
//!
//! Then, in rounds of their own, the full receiver and the bare endpoint
//! both served over TLS by the runtime's `axum::Server` (`serve --tls-cert`;
//! Kustomer posts over HTTPS), the client trusting the test authority:
//! `ratio receiver_tls_vs_bare_tls`, for the deployment where the receiver
//! terminates TLS itself. The goal is the plain-HTTP ratio above.
//!
//! `scripts/receiver-instructions` counts the same work in instructions
//! (callgrind), which no other load on the machine disturbs.

use kustomer_webhooks_tests::load::{
    Part, bare_router, blocking_receiver_router, compare, part_router, receiver_router, serve,
    serve_tls, serve_with_server, unbatched_receiver_router,
};

const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 8;

/// Where the receiver and the bare endpoint (the base of every ratio) are in
/// [`NAMES`]; the parts of the receiver follow them.
const RECEIVER: usize = 0;
const BARE: usize = 1;

/// The endpoints, in the order they are printed.
const NAMES: [&str; 8] = [
    "receiver",
    "bare",
    "verify_only",
    "verify_and_json_check",
    "verify_and_typed_parse",
    "receiver_blocking_handlers",
    "receiver_on_server",
    "receiver_unbatched",
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
        let on_server = serve_with_server(receiver_router()).await;
        urls.push(format!("http://{on_server}/"));
        urls.push(format!(
            "http://{}/",
            serve(unbatched_receiver_router()).await
        ));
        let measured = compare(&urls, BARE, ROUNDS, REQUESTS).await;
        for (name, m) in NAMES.iter().zip(&measured) {
            println!("requests_per_second_{name}: {:.0}", m.rps);
        }
        for (name, m) in NAMES.iter().zip(&measured) {
            if let Some(cpu) = m.cpu_us {
                println!("cpu_us_per_request_{name}: {cpu:.1}");
            }
        }
        for (name, m) in NAMES.iter().zip(&measured).skip(BARE + 1) {
            println!("ratio {name}_vs_bare: {:.2}", m.ratio);
        }
        for (name, m) in NAMES.iter().zip(&measured) {
            if name != &NAMES[BARE] {
                let (low, high) = m.ratio_range;
                println!("rounds {name}_vs_bare: {low:.2}–{high:.2}");
            }
        }
        // Over TLS, in rounds of their own (a TLS round takes longer).
        let tls = [
            format!(
                "https://localhost:{}/",
                serve_tls(receiver_router()).await.port()
            ),
            format!(
                "https://localhost:{}/",
                serve_tls(bare_router()).await.port()
            ),
        ];
        let over_tls = compare(&tls, 1, ROUNDS, REQUESTS).await;
        for (name, m) in ["receiver_tls", "bare_tls"].iter().zip(&over_tls) {
            println!("requests_per_second_{name}: {:.0}", m.rps);
            if let Some(cpu) = m.cpu_us {
                println!("cpu_us_per_request_{name}: {cpu:.1}");
            }
        }
        let (low, high) = over_tls[0].ratio_range;
        println!("rounds receiver_tls_vs_bare_tls: {low:.2}–{high:.2}");
        println!("ratio receiver_tls_vs_bare_tls: {:.2}", over_tls[0].ratio);
        println!("ratio receiver_vs_bare: {:.2}", measured[RECEIVER].ratio);
    });
}
