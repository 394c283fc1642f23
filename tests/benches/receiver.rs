//! Requests per second of the full receiver (verify + parse + dedupe +
//! dispatch) against a bare axum endpoint that only reads the body and
//! answers 200: the same load generator, the same payloads, the same run.
//!
//! Prints `ratio receiver_vs_bare: X` (goal X ≥ 0.8).

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
const REQUESTS: usize = 20_000;

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

/// Sends every payload with `CONCURRENCY` clients; returns requests/s.
async fn load(url: String, payloads: Arc<Vec<(Vec<u8>, String, String)>>) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
    payloads.len() as f64 / start.elapsed().as_secs_f64()
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
        let mut full_rps = Vec::new();
        let mut bare_rps = Vec::new();
        for round in 0..5 {
            // Fresh ids each round: no delivery is a duplicate.
            let payloads = Arc::new(payloads(round));
            let f = load(format!("http://{full}/"), payloads.clone()).await;
            let b = load(format!("http://{bare}/"), payloads).await;
            if round > 0 {
                full_rps.push(f);
                bare_rps.push(b);
            }
        }
        full_rps.sort_by(f64::total_cmp);
        bare_rps.sort_by(f64::total_cmp);
        let (f, b) = (full_rps[full_rps.len() / 2], bare_rps[bare_rps.len() / 2]);
        println!("requests_per_second_receiver: {f:.0}");
        println!("requests_per_second_bare: {b:.0}");
        println!("ratio receiver_vs_bare: {:.2}", f / b);
    });
}
