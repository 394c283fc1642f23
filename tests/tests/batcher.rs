//! `batch::Batcher` behind a plain hyper server (no axum), over real TCP on
//! loopback: the framework-free way to batch deliveries. Each request's
//! head and body become a `Delivery`; concurrent deliveries of mixed events
//! are each answered for themselves, a tampered one among them is refused,
//! and a retry is a duplicate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::http::request::Parts;
use hyper::{Request, Response};
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::batch::{Batcher, Delivery};
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{Verifier, sign};
use kustomer_webhooks::{CustomerCreate, CustomerUpdate, Dispatcher, State};
use serde_json::Value;

const TOKEN: &str = "batcher-token";

type Count = Arc<AtomicUsize>;

async fn on_create(_: CustomerCreate, runs: State<Count>) {
    runs.fetch_add(1, Ordering::SeqCst);
}

async fn on_update(_: CustomerUpdate, runs: State<Count>) {
    runs.fetch_add(1, Ordering::SeqCst);
}

/// A hyper request whose body has been read: the service's own `Delivery`.
struct HyperDelivery {
    parts: Parts,
    body: Bytes,
}

impl Delivery for HyperDelivery {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.parts.headers.get(name).map(|v| v.as_bytes())
    }

    fn body(&self) -> &[u8] {
        &self.body
    }
}

type Shared = Arc<Batcher<kustomer_webhooks::AnyEvent, HyperDelivery>>;

async fn handle(batcher: Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let limit = batcher.receiver().limit();
    // The method and content type, before the body is read.
    let content_type = parts.headers.get("content-type").map(|v| v.as_bytes());
    let screened = batcher
        .receiver()
        .screen(parts.method.as_str(), content_type);
    let reply = match screened {
        Some(refused) => refused,
        None => read_and_receive(&batcher, parts, body, limit).await,
    };
    let mut response = Response::builder().status(reply.status);
    for (name, value) in reply.headers() {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body())))
        .expect("a response builds")
}

async fn read_and_receive(
    batcher: &Shared,
    parts: Parts,
    body: Incoming,
    limit: usize,
) -> kustomer_webhooks::receiver::Reply {
    match Limited::new(body, limit).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            batcher.receive(HyperDelivery { parts, body }).await
        }
        // Over the limit: 413; a body that could not be read otherwise: 400.
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let limit = batcher.receiver().limit();
            batcher
                .receiver()
                .reject(413, format!("the body is over the {limit} byte limit"))
        }
        Err(e) => batcher
            .receiver()
            .reject(400, format!("the body could not be read: {e}")),
    }
}

/// Serves the batcher with hyper alone on a loopback port.
async fn serve(batcher: Shared) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let batcher = Arc::clone(&batcher);
                    async move { Ok::<_, Infallible>(handle(batcher, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The seed sample of `event` with its own event id.
fn body(event: &str, n: usize) -> Vec<u8> {
    let text = SEED_SAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .expect("a seed sample")
        .1;
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["id"] = format!("{n:024x}").into();
    serde_json::to_vec(&v).unwrap()
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    body: Vec<u8>,
    signature: String,
) -> (u16, Value) {
    let res = client
        .post(format!("http://{addr}/"))
        .header("content-type", "application/json")
        .header("x-kustomer-webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON reply"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batcher_behind_plain_hyper_answers_every_delivery_for_itself() {
    let runs = Count::default();
    let dispatcher = Dispatcher::with_state(Arc::clone(&runs))
        .handler(on_create)
        .handler(on_update)
        .build()
        .unwrap();
    let batcher: Shared = Arc::new(Batcher::new(
        Receiver::new(dispatcher, Verifier::new(TOKEN)).with_limit(64 * 1024),
    ));
    let counters = batcher.receiver().counters();
    let addr = serve(Arc::clone(&batcher)).await;
    let client = reqwest::Client::new();

    // Sixty deliveries at once: creates, updates and a team event (no
    // handler), every tenth tampered with after it was signed.
    let events = [
        "kustomer.customer.create",
        "kustomer.customer.update",
        "kustomer.team.create",
    ];
    let mut posts = Vec::new();
    for n in 0..60 {
        let event = events[n % 3];
        let body = body(event, n);
        let mut signature = sign(TOKEN.as_bytes(), &body);
        if n % 10 == 9 {
            signature = sign(b"another token", &body);
        }
        let client = client.clone();
        posts.push(tokio::spawn(async move {
            (n, event, post(&client, addr, body, signature).await)
        }));
    }
    let mut handled = 0;
    for post in posts {
        let (n, event, (status, reply)) = post.await.unwrap();
        if n % 10 == 9 {
            assert_eq!(status, 401, "delivery {n}: {reply}");
            let error = reply["error"].as_str().unwrap_or_default();
            assert!(error.contains("signature"), "delivery {n}: {reply}");
            continue;
        }
        assert_eq!(status, 200, "delivery {n}: {reply}");
        // Each reply names its own delivery's event and id.
        assert_eq!(reply["event"], event, "delivery {n}: {reply}");
        assert_eq!(reply["id"], format!("{n:024x}"), "delivery {n}: {reply}");
        let outcome = if event == "kustomer.team.create" {
            "no handler"
        } else {
            handled += 1;
            "handled"
        };
        assert_eq!(reply["outcome"], outcome, "delivery {n}: {reply}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), handled);
    assert_eq!(handled, 36);

    // Kustomer's retry of a handled delivery: acknowledged, not run again.
    let retry = body("kustomer.customer.create", 0);
    let signature = sign(TOKEN.as_bytes(), &retry);
    let (status, reply) = post(&client, addr, retry, signature).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(runs.load(Ordering::SeqCst), handled);

    // A body over the limit is not read whole: 413.
    let large = vec![b' '; 65 * 1024];
    let signature = sign(TOKEN.as_bytes(), &large);
    let (status, reply) = post(&client, addr, large, signature).await;
    assert_eq!(status, 413, "{reply}");

    // Screened before the body is read, answered with the headers the
    // reply calls for: 405 with `Allow`, 415 with `Accept-Encoding`.
    let res = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(res.headers()["content-type"], "application/json");
    let res = client
        .post(format!("http://{addr}/"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    assert_eq!(res.headers()["accept-encoding"], "identity");
    assert!(res.headers().get("allow").is_none());

    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::SeqCst);
    assert_eq!(
        (
            count(&counters.accepted),
            count(&counters.rejected),
            count(&counters.duplicate)
        ),
        (54, 9, 1)
    );
}
