//! Where a delivery's time goes while the server is under the receiver
//! benchmark's load: `receiver_phases [REQUESTS]` (default 10,000 per
//! round, eight measured rounds after a warm-up one).
//!
//! Four endpoints serve the same signed deliveries, posted by the same
//! client as in `benches/receiver.rs`; the last three time their own work
//! with a clock read around every phase:
//!
//! - `bare`: the benchmark's bare endpoint (reads the body, answers 200);
//! - `json`: the signature check, then `serde_json` checking the body is
//!   JSON (into `IgnoredAny`);
//! - `typed`: the signature check, the typed parse (`Parsed::parse_as`),
//!   then dropping the event;
//! - `receiver`: `Receiver::receive` with the benchmark's receiver, the
//!   whole delivery (signature, typed parse, de-duplication, dispatch to a
//!   handler), answering with the reply's status alone: the JSON body the
//!   axum adapter writes is left out, so this endpoint costs a little less
//!   than the benchmark's receiver.
//!
//! It prints the median over rounds of each phase's nanoseconds per request
//! (and what `receive` takes beyond the typed endpoint's phases), the
//! process's CPU time per request for each endpoint (and how much of the
//! receiver's would have to go for it to serve 0.8 of the bare endpoint's
//! requests), and the same parse and JSON check timed on the same bodies in
//! a plain loop, with no server running: what they cost when nothing else
//! runs between two of them to take their code and branch history out of
//! the processor's caches. The times are wall-clock, so a thread losing its
//! processor in a phase counts there: compare them with each other, in one
//! run, rather than across runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use kustomer_webhooks::receiver::{Receiver, Request};
use kustomer_webhooks::verify::{EVENT_HEADER, Verifier};
use kustomer_webhooks::{AnyEvent, Parsed};
use kustomer_webhooks_tests::load::{
    Delivery, TOKEN, bare_router, deliveries, load, receiver, serve,
};
use kustomer_webhooks_tests::median;

/// The phases the endpoints time, in the order they are printed.
const PHASES: [&str; 6] = [
    "json.verify",
    "json.json_check",
    "typed.verify",
    "typed.parse",
    "typed.drop_event",
    "receiver.receive",
];
const JSON_VERIFY: usize = 0;
const JSON_CHECK: usize = 1;
const TYPED_VERIFY: usize = 2;
const TYPED_PARSE: usize = 3;
const TYPED_DROP: usize = 4;
const RECEIVE: usize = 5;

/// Nanoseconds spent in each phase since the round began.
#[derive(Default)]
struct Clock([AtomicU64; PHASES.len()]);

impl Clock {
    fn add(&self, phase: usize, from: Instant, to: Instant) {
        let ns = u64::try_from((to - from).as_nanos()).unwrap_or(u64::MAX);
        self.0[phase].fetch_add(ns, Ordering::Relaxed);
    }

    fn take(&self, phase: usize) -> u64 {
        self.0[phase].swap(0, Ordering::Relaxed)
    }
}

/// The endpoints that time their phases.
#[derive(Clone, Copy)]
enum Timed {
    Json,
    Typed,
    Receiver,
}

struct Shared {
    verifier: Verifier,
    receiver: Receiver,
    clock: Clock,
}

async fn timed(
    State((shared, endpoint)): State<(Arc<Shared>, Timed)>,
    request: axum::extract::Request,
) -> StatusCode {
    // The parts and the body as the receiver's axum adapter takes them
    // (no copy of the headers).
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST;
    };
    let headers = &parts.headers;
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let clock = &shared.clock;
    let t0 = Instant::now();
    let ok = match endpoint {
        Timed::Receiver => {
            let request = Request {
                method: "POST",
                header,
                body: &body,
            };
            let status = shared.receiver.receive(request).await.status;
            clock.add(RECEIVE, t0, Instant::now());
            status == 200
        }
        Timed::Json | Timed::Typed => {
            if shared.verifier.verify(&body, header).is_err() {
                return StatusCode::UNAUTHORIZED;
            }
            let t1 = Instant::now();
            if let Timed::Json = endpoint {
                let ok = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
                let t2 = Instant::now();
                clock.add(JSON_VERIFY, t0, t1);
                clock.add(JSON_CHECK, t1, t2);
                ok
            } else {
                let name = headers
                    .get(EVENT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let parsed = Parsed::<AnyEvent>::parse_as(&body, name);
                let t2 = Instant::now();
                let ok = parsed.is_ok();
                drop(parsed);
                let t3 = Instant::now();
                clock.add(TYPED_VERIFY, t0, t1);
                clock.add(TYPED_PARSE, t1, t2);
                clock.add(TYPED_DROP, t2, t3);
                ok
            }
        }
    };
    if ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// Nanoseconds per body for `f` over `bodies`, in a plain loop.
fn warm(bodies: &[Delivery], mut f: impl FnMut(&Delivery) -> bool) -> f64 {
    // Once to warm the caches, once measured.
    let mut ok = 0usize;
    for d in bodies {
        ok += usize::from(f(d));
    }
    let start = Instant::now();
    for d in bodies {
        ok += usize::from(f(d));
    }
    assert_eq!(ok, 2 * bodies.len(), "every body reads");
    start.elapsed().as_nanos() as f64 / bodies.len() as f64
}

fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    const ROUNDS: usize = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime builds");
    let shared = Arc::new(Shared {
        verifier: Verifier::new(TOKEN),
        receiver: receiver(),
        clock: Clock::default(),
    });
    // `None`: the benchmark's bare endpoint.
    let endpoints = [
        None,
        Some(Timed::Json),
        Some(Timed::Typed),
        Some(Timed::Receiver),
    ];
    let names = ["bare", "json", "typed", "receiver"];
    let mut phase_ns = vec![Vec::new(); PHASES.len()];
    let mut cpu_us = vec![Vec::new(); endpoints.len()];
    rt.block_on(async {
        let mut urls = Vec::new();
        for endpoint in endpoints {
            let app = match endpoint {
                None => bare_router(),
                Some(timed_by) => axum::Router::new()
                    .route("/", axum::routing::post(timed))
                    .with_state((Arc::clone(&shared), timed_by)),
            };
            urls.push(format!("http://{}/", serve(app).await));
        }
        for round in 0..=ROUNDS {
            let payloads = Arc::new(deliveries(round, requests));
            for k in 0..endpoints.len() {
                // Each round starts with another endpoint.
                let i = (round + k) % endpoints.len();
                let run = load(urls[i].clone(), Arc::clone(&payloads)).await;
                if round > 0
                    && let Some(us) = run.cpu_us
                {
                    cpu_us[i].push(us);
                }
            }
            for (phase, ns) in phase_ns.iter_mut().enumerate() {
                let total = shared.clock.take(phase) as f64;
                if round > 0 {
                    ns.push(total / requests as f64);
                }
            }
        }
    });
    let ns: Vec<f64> = phase_ns.into_iter().map(median).collect();
    for (name, ns) in PHASES.iter().zip(&ns) {
        println!("ns_per_request {name}: {ns:.0}");
    }
    // What `receive` does beyond the typed endpoint's phases: the store,
    // the span, dispatch and the handler's run, the counters.
    println!(
        "ns_per_request receiver.beyond_typed: {:.0}",
        ns[RECEIVE] - ns[TYPED_VERIFY] - ns[TYPED_PARSE] - ns[TYPED_DROP]
    );
    let cpu: Vec<Option<f64>> = cpu_us
        .into_iter()
        .map(|us| (!us.is_empty()).then(|| median(us)))
        .collect();
    for (name, us) in names.iter().zip(&cpu) {
        if let Some(us) = us {
            println!("cpu_us_per_request {name}: {us:.1}");
        }
    }
    if let (Some(bare), Some(receiver)) = (cpu[0], cpu[3]) {
        // At a CPU time of bare / 0.8 per request, the receiver would serve
        // 0.8 of the bare endpoint's requests.
        println!(
            "cpu_us_per_request to_save_for_0.8: {:.1}",
            receiver - bare / 0.8
        );
    }
    let bodies = deliveries(ROUNDS + 1, requests);
    let json = warm(&bodies, |d| {
        serde_json::from_slice::<serde::de::IgnoredAny>(&d.body).is_ok()
    });
    let typed = warm(&bodies, |d| {
        Parsed::<AnyEvent>::parse_as(&d.body, &d.event).is_ok()
    });
    println!("ns_per_body warm.json_check: {json:.0}");
    println!("ns_per_body warm.parse_and_drop: {typed:.0}");
}
