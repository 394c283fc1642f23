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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{Verifier, sign};
use kustomer_webhooks::{CustomerEvent, Dispatcher};

const TOKEN: &str = "bench-token";
const CONCURRENCY: usize = 32;
const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 8;

async fn on_customer(event: CustomerEvent) {
    std::hint::black_box(&event.data.attributes.rev);
}

/// Distinct event ids, so that de-duplication does real work but never
/// short-cuts a delivery.
fn payloads(round: usize) -> Vec<(Vec<u8>, String, String)> {
    (0..REQUESTS)
        .map(|i| {
            let (event, text) = SEED_SAMPLES[i % SEED_SAMPLES.len()];
            let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
            v["id"] = format!("{:024x}", round * REQUESTS + i).into();
            let body = serde_json::to_vec(&v).unwrap();
            let sig = sign(TOKEN.as_bytes(), &body);
            (body, sig, event.to_owned())
        })
        .collect()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The CPU time (user and system) the process has used so far, in seconds;
/// `None` where `/proc` is not there.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports them in clock ticks of 1/100 s (USER_HZ).
    Some(ticks / 100.0)
}

/// One load run: requests per second, and CPU microseconds per request.
struct Run {
    rps: f64,
    cpu_us: Option<f64>,
}

/// Sends every payload with `CONCURRENCY` clients.
async fn load(url: String, payloads: Arc<Vec<(Vec<u8>, String, String)>>) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, payloads, next) =
            (client.clone(), url.clone(), payloads.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, sig, event)) = payloads.get(i) else {
                    break;
                };
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-kustomer-webhook-signature", sig)
                    .header("x-kustomer-webhook-event", event)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 200);
                let _ = res.bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = payloads.len() as f64;
    Run {
        rps: n / start.elapsed().as_secs_f64(),
        cpu_us: cpu.zip(cpu_seconds()).map(|(a, b)| (b - a) * 1e6 / n),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dispatcher = Dispatcher::builder().handler(on_customer).build().unwrap();
        let receiver =
            Receiver::new(dispatcher, Verifier::new(TOKEN)).with_timeout(Duration::from_secs(5));
        let full = serve(kustomer_webhooks::axum::router(receiver)).await;
        let bare =
            serve(axum::Router::new().route("/", axum::routing::post(|_body: Bytes| async { "" })))
                .await;
        // Warm both up, then alternate rounds: the two see the same load.
        let (mut full_rps, mut bare_rps, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut full_cpu, mut bare_cpu) = (Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            // Fresh ids each round: no delivery is a duplicate.
            let payloads = Arc::new(payloads(round));
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
