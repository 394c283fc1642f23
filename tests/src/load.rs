//! The receiver benchmark's load: signed deliveries of the ten seed samples,
//! the servers it compares (the full receiver, a bare axum endpoint that only
//! reads the body, and the bare one plus parts of the receiver's work), and
//! the client that posts them, and the paired rounds that compare them.
//! Shared by `benches/receiver.rs` (requests per second),
//! `benches/redis_store.rs` (the receiver with its ids claimed in Redis),
//! `examples/receiver_cost.rs` (instructions per request, under callgrind)
//! and `examples/receiver_phases.rs` (each part's time inside the server).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::dedupe::IdempotencyStore;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{EVENT_HEADER, Verifier, sign};
use kustomer_webhooks::{
    AnyEvent, ConversationEvent, CustomerEvent, Dispatcher, MessageEvent, Parsed, TeamEvent,
    UserEvent,
};

/// The token the deliveries are signed with.
pub const TOKEN: &str = "bench-token";
/// Clients posting at once.
pub const CONCURRENCY: usize = 32;

/// One delivery: its body, signature and event name.
pub struct Delivery {
    /// The body, compact JSON.
    pub body: Vec<u8>,
    /// `X-Kustomer-Webhook-Signature`.
    pub signature: String,
    /// `X-Kustomer-Webhook-Event`.
    pub event: String,
}

impl Delivery {
    /// This delivery posted to `url` as Kustomer posts it: JSON, signed,
    /// named.
    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("x-kustomer-webhook-signature", &self.signature)
            .header("x-kustomer-webhook-event", &self.event)
            .body(self.body.clone())
    }
}

/// `count` deliveries cycling through the ten samples, each with its own
/// event id (`round` keeps ids distinct across rounds), so that
/// de-duplication does real work but never short-cuts a delivery.
pub fn deliveries(round: usize, count: usize) -> Vec<Delivery> {
    (0..count)
        .map(|i| {
            let (event, text) = SEED_SAMPLES[i % SEED_SAMPLES.len()];
            let mut v: serde_json::Value =
                serde_json::from_str(text).expect("the seed samples are JSON");
            v["id"] = format!("{:024x}", round * count + i).into();
            let body = serde_json::to_vec(&v).expect("a Value serialises");
            let signature = sign(TOKEN.as_bytes(), &body);
            Delivery {
                body,
                signature,
                event: event.to_owned(),
            }
        })
        .collect()
}

/// A dispatcher with one handler per resource, so that every delivery runs
/// one, as in a service that subscribes only to the events it handles
/// (Kustomer posts the events an app definition lists). Each reads a field,
/// so the event is used. `one_handler_per_resource!(async)` writes them as
/// `async fn`s, `one_handler_per_resource!()` as plain `fn`s.
macro_rules! one_handler_per_resource {
    ($($asyncness:tt)?) => {{
        $($asyncness)? fn on_conversation(event: ConversationEvent) {
            std::hint::black_box(&event.data.attributes.rev);
        }
        $($asyncness)? fn on_customer(event: CustomerEvent) {
            std::hint::black_box(&event.data.attributes.rev);
        }
        $($asyncness)? fn on_message(event: MessageEvent) {
            std::hint::black_box(&event.data.attributes.rev);
        }
        $($asyncness)? fn on_team(event: TeamEvent) {
            std::hint::black_box(&event.data.attributes.updated_at);
        }
        $($asyncness)? fn on_user(event: UserEvent) {
            std::hint::black_box(&event.data.attributes.updated_at);
        }
        Dispatcher::builder()
            .handler(on_conversation)
            .handler(on_customer)
            .handler(on_message)
            .handler(on_team)
            .handler(on_user)
            .build()
            .expect("five handlers for five resources build")
    }};
}

/// The full receiver (verify, parse, de-duplicate, dispatch), with a
/// handler for every event the deliveries carry, as an axum router.
pub fn receiver_router() -> axum::Router {
    kustomer_webhooks::axum::router(receiver())
}

/// The same receiver called by a plain axum handler, one delivery at a time
/// (as an adapter that calls [`Receiver::receive`] for each request does),
/// answering as the runtime's router does: what the router's batches
/// (deliveries that arrive together handled in turn by one task) save.
pub fn unbatched_receiver_router() -> axum::Router {
    async fn receive(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        let reply = receiver
            .receive(kustomer_webhooks::receiver::Request {
                method: "POST",
                header: |name| headers.get(name).map(|v| v.as_bytes()),
                body: &body,
            })
            .await;
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            reply.body(),
        )
            .into_response()
    }
    axum::Router::new()
        .route("/", axum::routing::post(receive))
        .with_state(Arc::new(receiver()))
}

/// The receiver [`receiver_router`] serves.
pub fn receiver() -> Receiver {
    receiver_with(one_handler_per_resource!(async))
}

/// The receiver [`receiver_router`] serves, with its event ids claimed in
/// `store` instead of the in-memory default.
pub fn receiver_router_with_store(store: impl IdempotencyStore + 'static) -> axum::Router {
    kustomer_webhooks::axum::router(receiver().with_store(store))
}

/// The same receiver with the same handlers written as plain `fn`s, which
/// the dispatcher runs on tokio's blocking pool (so that a handler that
/// blocks never stalls the async runtime): what that hand-off costs.
pub fn blocking_receiver_router() -> axum::Router {
    kustomer_webhooks::axum::router(receiver_with(one_handler_per_resource!()))
}

fn receiver_with(dispatcher: Dispatcher) -> Receiver {
    Receiver::new(dispatcher, Verifier::new(TOKEN)).with_timeout(Duration::from_secs(5))
}

/// A bare axum endpoint that only reads the body and answers 200.
pub fn bare_router() -> axum::Router {
    axum::Router::new().route("/", axum::routing::post(|_body: Bytes| async { "" }))
}

/// How much of the receiver's work a [`part_router`] endpoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The signature check (the HMAC-SHA256 of the body, which the issue
    /// requires): what any receiver must add to the bare endpoint.
    Signature,
    /// The signature check, and a check that the body is JSON (`serde_json`
    /// reading it into `IgnoredAny`: no typed values, no allocation).
    Json,
    /// The signature check, and the typed parse the receiver does
    /// (`Parsed::parse_as` with the event header), the event then dropped:
    /// the receiver without its store, dispatch and reply.
    Typed,
}

/// The bare endpoint plus `part` of the receiver's work, for comparison:
/// answers 200, or 401/400 as the receiver would, with no body.
pub fn part_router(part: Part) -> axum::Router {
    async fn partial(
        State((verifier, part)): State<(Arc<Verifier>, Part)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        if verifier
            .verify(&body, |name| headers.get(name).map(|v| v.as_bytes()))
            .is_err()
        {
            return StatusCode::UNAUTHORIZED;
        }
        let read = match part {
            Part::Signature => true,
            Part::Json => serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok(),
            Part::Typed => {
                let name = headers
                    .get(EVENT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                Parsed::<AnyEvent>::parse_as(&body, name).is_ok()
            }
        };
        if read {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        }
    }
    axum::Router::new()
        .route("/", axum::routing::post(partial))
        .with_state((Arc::new(Verifier::new(TOKEN)), part))
}

/// Serves `app` on an ephemeral loopback port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let (listener, addr) = loopback().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Serves `app` on an ephemeral loopback port with the runtime's
/// [`Server`](kustomer_webhooks::axum::Server) (time limit on heads,
/// connection limit, requests counted for a graceful stop) instead of
/// `axum::serve`.
pub async fn serve_with_server(app: axum::Router) -> SocketAddr {
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        kustomer_webhooks::axum::Server::new()
            .serve(listener, app, std::future::pending())
            .await
    });
    addr
}

/// Serves `app` over HTTPS on an ephemeral loopback port with the runtime's
/// [`Server`](kustomer_webhooks::axum::Server), with the test certificate
/// of [`TLS_DIR`](crate::TLS_DIR) (for `localhost` and `127.0.0.1`), as
/// `serve --tls-cert` does; [`load`] trusts its authority for an
/// `https://` URL.
pub async fn serve_tls(app: axum::Router) -> SocketAddr {
    let dir = crate::TLS_DIR;
    let tls = kustomer_webhooks::axum::Tls::from_pem_files(
        format!("{dir}/server.pem"),
        format!("{dir}/server.key"),
    )
    .expect("the test certificate loads");
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        kustomer_webhooks::axum::Server::new()
            .with_tls(tls)
            .serve(listener, app, std::future::pending())
            .await
    });
    addr
}

/// A listener on an ephemeral loopback port, and its address.
async fn loopback() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    (listener, addr)
}

/// The CPU time (user and system) the process has used so far, in seconds;
/// `None` where `/proc` is not there.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports them in clock ticks of 1/100 s (USER_HZ).
    Some(ticks / 100.0)
}

/// One load run: requests per second, and CPU microseconds per request.
pub struct Run {
    /// Requests per second.
    pub rps: f64,
    /// The process's CPU time per request (client and server), where known.
    pub cpu_us: Option<f64>,
}

/// Posts every delivery to `url` with [`CONCURRENCY`] clients, each
/// expecting 200. An `https://` URL is trusted by the test authority of
/// [`TLS_DIR`](crate::TLS_DIR) alone ([`serve_tls`]).
pub async fn load(url: String, deliveries: Arc<Vec<Delivery>>) -> Run {
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY);
    if url.starts_with("https://") {
        let pem = std::fs::read(format!("{}/ca.pem", crate::TLS_DIR)).expect("the test authority");
        let authority = reqwest::Certificate::from_pem(&pem).expect("a PEM certificate");
        builder = builder.tls_certs_only([authority]);
    }
    let client = builder.build().expect("a client builds");
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, deliveries, next) = (
            client.clone(),
            url.clone(),
            deliveries.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while let Some(d) = deliveries.get(next.fetch_add(1, Ordering::Relaxed)) {
                let res = d
                    .request(&client, &url)
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(res.status().as_u16(), 200);
                let _ = res.bytes().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a client task finishes");
    }
    let n = deliveries.len() as f64;
    Run {
        rps: n / start.elapsed().as_secs_f64(),
        cpu_us: cpu.zip(cpu_seconds()).map(|(a, b)| (b - a) * 1e6 / n),
    }
}

/// What paired rounds measured of one endpoint: medians over the rounds.
pub struct Compared {
    /// Requests per second.
    pub rps: f64,
    /// The process's CPU time per request, where known.
    pub cpu_us: Option<f64>,
    /// This endpoint's requests per second divided by the base endpoint's in
    /// the same round.
    pub ratio: f64,
    /// The lowest and highest of those ratios over the rounds: how far one
    /// round strays on the machine.
    pub ratio_range: (f64, f64),
}

/// Posts the same `requests` deliveries to every one of `urls`, round after
/// round (fresh event ids each round, so no delivery is a duplicate), each
/// round starting with another endpoint; the first round warms up and is
/// not counted. Each endpoint's ratio is to `urls[base]` in the same round.
pub async fn compare(
    urls: &[String],
    base: usize,
    rounds: usize,
    requests: usize,
) -> Vec<Compared> {
    let n = urls.len();
    let mut rps = vec![Vec::new(); n];
    let mut cpu = vec![Vec::new(); n];
    let mut ratios = vec![Vec::new(); n];
    for round in 0..=rounds {
        let payloads = Arc::new(deliveries(round, requests));
        let mut runs: Vec<Option<Run>> = (0..n).map(|_| None).collect();
        for k in 0..n {
            let i = (round + k) % n;
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
            ratios[i].push(run.rps / runs[base].rps);
        }
    }
    (0..n)
        .map(|i| Compared {
            rps: crate::median(std::mem::take(&mut rps[i])),
            cpu_us: (!cpu[i].is_empty()).then(|| crate::median(std::mem::take(&mut cpu[i]))),
            ratio_range: ratios[i]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &r| {
                    (low.min(r), high.max(r))
                }),
            ratio: crate::median(std::mem::take(&mut ratios[i])),
        })
        .collect()
}
