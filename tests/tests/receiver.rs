//! The receiver end to end, over real TCP on loopback: every status of the
//! contract, token rotation, custom headers, panics, and concurrency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{SharedVerifier, Verifier, sign};
use kustomer_webhooks::{
    ConversationUpdate, CustomerCreate, CustomerUpdate, Dispatcher, State, TeamCreate, TeamUpdate,
    UserCreate, UserUpdate,
};
use serde_json::Value;

const TOKEN: &str = "token-2026";

type Count = Arc<AtomicUsize>;

async fn ok_team(_: TeamUpdate, n: State<Count>) {
    n.fetch_add(1, Ordering::SeqCst);
}
async fn failing(_: TeamCreate, _: State<Count>) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("the database is down"))
}
async fn panicking(_: UserCreate, _: State<Count>) {
    panic!("handler bug")
}
async fn slow(_: UserUpdate, _: State<Count>) {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

struct Server {
    addr: SocketAddr,
    count: Count,
    client: reqwest::Client,
    counters: Arc<kustomer_webhooks::receiver::Counters>,
}

async fn start(verifier: Verifier) -> Server {
    start_with(verifier, |r| r).await
}

async fn start_with(verifier: Verifier, configure: impl FnOnce(Receiver) -> Receiver) -> Server {
    start_receiver(|dispatcher| configure(Receiver::new(dispatcher, verifier))).await
}

/// A server whose receiver `make` builds around the tests' dispatcher.
async fn start_receiver(make: impl FnOnce(Dispatcher) -> Receiver) -> Server {
    let count = Count::default();
    let dispatcher = Dispatcher::with_state(count.clone())
        .handler(ok_team)
        .handler(failing)
        .handler(panicking)
        .handler(slow)
        .build()
        .unwrap();
    let receiver = make(dispatcher)
        .with_limit(64 * 1024)
        .with_timeout(Duration::from_millis(300));
    serve(receiver, count).await
}

/// Serves `receiver` at `/kustomer` on a loopback port.
async fn serve(receiver: Receiver, count: Count) -> Server {
    let counters = receiver.counters();
    let app =
        axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Served by the runtime's own server; `tests/tests/faults.rs` serves
    // its receiver with `axum::serve`, so that both are covered.
    tokio::spawn(async move {
        kustomer_webhooks::axum::Server::new()
            .serve(listener, app, std::future::pending())
            .await
    });
    Server {
        addr,
        count,
        client: reqwest::Client::new(),
        counters,
    }
}

fn sample(event: &str) -> &'static str {
    SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1
}

/// A sample with another event id (and optionally another rev).
fn variant(event: &str, n: usize, rev: Option<i64>) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(sample(event)).unwrap();
    v["id"] = format!("{n:024x}").into();
    if let Some(rev) = rev {
        v["data"]["attributes"]["rev"] = rev.into();
    }
    serde_json::to_vec(&v).unwrap()
}

impl Server {
    async fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("http://{}/kustomer", self.addr))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Posts `body` as Kustomer does: JSON, signed with `token`, named.
    async fn deliver(&self, body: &[u8], token: &str, event: Option<&str>) -> (u16, Value) {
        let sig = sign(token.as_bytes(), body);
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-kustomer-webhook-signature", sig.as_str()),
        ];
        if let Some(e) = event {
            headers.push(("x-kustomer-webhook-event", e));
        }
        self.post(body, &headers).await
    }

    /// Delivers `body` again until it is no longer answered 409 (its claim
    /// still held by a handler running on), within ten seconds.
    async fn once_settled(&self, body: &[u8]) -> (u16, Value) {
        let settled = async {
            loop {
                let (status, reply) = self.deliver(body, TOKEN, None).await;
                if status != 409 {
                    break (status, reply);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), settled)
            .await
            .expect("the claim is settled")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_runs_its_handler_and_gets_200() {
    let s = start(Verifier::new(TOKEN)).await;
    let (status, body) = s
        .deliver(
            sample("kustomer.team.update").as_bytes(),
            TOKEN,
            Some("kustomer.team.update"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "handled");
    assert_eq!(body["event"], "kustomer.team.update");
    assert_eq!(body["id"], "608733d0ca6e20001913be16");
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    // An event with no handler, and an unknown event, are acknowledged.
    let (status, body) = s
        .deliver(sample("kustomer.customer.create").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("no handler"))
    );
    let unknown = br#"{"name": "kustomer.kobject.order.create", "data": {"type": "kobject"}}"#;
    let (status, body) = s.deliver(unknown, TOKEN, None).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("no handler"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_missing_and_malformed_signatures_get_401() {
    let s = start(Verifier::new(TOKEN)).await;
    let body = sample("kustomer.team.update").as_bytes();
    let (status, reply) = s.deliver(body, "another-token", None).await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = s.post(body, &[("content-type", "application/json")]).await;
    assert_eq!(status, 401, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("missing"),
        "{reply}"
    );
    let (status, _) = s
        .post(
            body,
            &[
                ("content-type", "application/json"),
                ("x-kustomer-webhook-signature", "zz"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    // A tampered body fails even with the original signature.
    let sig = sign(TOKEN.as_bytes(), body);
    let tampered = sample("kustomer.team.update").replace("Der Prozess", "Das Schloss");
    let (status, _) = s
        .post(
            tampered.as_bytes(),
            &[
                ("content-type", "application/json"),
                ("x-kustomer-webhook-signature", &sig),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(s.count.load(Ordering::SeqCst), 0, "no handler ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_rotate_and_custom_headers_are_checked() {
    let s = start(
        Verifier::new("new")
            .with_token("old")
            .with_header("x-app-secret", "s3cret"),
    )
    .await;
    let body = sample("kustomer.team.update").as_bytes();
    for token in ["new", "old"] {
        let sig = sign(token.as_bytes(), body);
        let headers = [
            ("content-type", "application/json"),
            ("x-kustomer-webhook-signature", sig.as_str()),
            ("X-App-Secret", "s3cret"),
        ];
        assert_eq!(s.post(body, &headers).await.0, 200, "{token}");
    }
    let sig = sign(b"new", body);
    let wrong = [
        ("content-type", "application/json"),
        ("x-kustomer-webhook-signature", sig.as_str()),
        ("x-app-secret", "guess"),
    ];
    assert_eq!(s.post(body, &wrong).await.0, 401);
    assert_eq!(s.post(body, &wrong[..2]).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_verifier_rotates_tokens_and_headers_without_a_restart() {
    let shared = SharedVerifier::new(Verifier::new("old"));
    let s = start_receiver(|d| Receiver::with_shared_verifier(d, shared.clone())).await;
    let mut n = 0;
    let mut status = async |token: &str, secret: Option<&str>| {
        n += 1;
        let body = variant("kustomer.team.update", n, None);
        let sig = sign(token.as_bytes(), &body);
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-kustomer-webhook-signature", sig.as_str()),
        ];
        if let Some(secret) = secret {
            headers.push(("x-app-secret", secret));
        }
        s.post(&body, &headers).await.0
    };
    assert_eq!(status("old", None).await, 200);
    assert_eq!(status("new", None).await, 401);

    // Both while Kustomer moves to the new token.
    shared.replace(Verifier::new("new").with_token("old"));
    assert_eq!(shared.token_count(), 2);
    assert_eq!(status("old", None).await, 200);
    assert_eq!(status("new", None).await, 200);

    // The new one alone, and a custom header added.
    shared.replace(Verifier::new("new").with_header("x-app-secret", "s3cret"));
    assert_eq!(status("old", Some("s3cret")).await, 401);
    assert_eq!(status("new", None).await, 401);
    assert_eq!(status("new", Some("guess")).await, 401);
    assert_eq!(status("new", Some("s3cret")).await, 200);
    assert_eq!(s.count.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_during_a_replacement_are_verified_by_the_old_or_the_new_verifier() {
    let shared = SharedVerifier::new(Verifier::new("a"));
    let s = Arc::new(start_receiver(|d| Receiver::with_shared_verifier(d, shared.clone())).await);
    // Every delivery is signed with "a", which every verifier accepts; the
    // replacements go on while they are received.
    let deliveries = (0..100).map(|n| {
        let s = s.clone();
        tokio::spawn(async move {
            let body = variant("kustomer.team.update", 10_000 + n, None);
            s.deliver(&body, "a", None).await.0
        })
    });
    let deliveries: Vec<_> = deliveries.collect();
    for round in 0..50 {
        let extra = format!("token-{round}");
        shared.replace(Verifier::new(&extra).with_token("a"));
        tokio::task::yield_now().await;
    }
    for d in deliveries {
        assert_eq!(d.await.unwrap(), 200);
    }
    assert_eq!(s.count.load(Ordering::SeqCst), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_events_get_400_with_the_path() {
    let s = start(Verifier::new(TOKEN)).await;
    let (status, reply) = s.deliver(b"{\"name\": ", TOKEN, None).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON at line 1"),
        "{reply}"
    );
    assert_eq!(reply["pointer"], "/name", "{reply}");
    // JSON that breaks off deep inside: the pointer says where.
    let sample_text = sample("kustomer.customer.update");
    let cut = sample_text.find("\"displayName\"").unwrap() + 20;
    let (status, reply) = s.deliver(&sample_text.as_bytes()[..cut], TOKEN, None).await;
    assert_eq!(
        (status, reply["pointer"].as_str()),
        (400, Some("/data/attributes/displayName")),
        "{reply}"
    );
    // A syntax error inside an array element.
    let broken = sample_text.replacen(r#""emails": ["#, r#""emails": [{"email": nope}, "#, 1);
    assert_ne!(broken, sample_text, "the sample has emails");
    let (status, reply) = s.deliver(broken.as_bytes(), TOKEN, None).await;
    assert_eq!(
        (status, reply["pointer"].as_str()),
        (400, Some("/data/attributes/emails/0/email")),
        "{reply}"
    );
    let (status, reply) = s.deliver(br#"{"data": {}}"#, TOKEN, None).await;
    assert_eq!(
        (status, reply["pointer"].as_str()),
        (400, Some("/name")),
        "{reply}"
    );
    let (status, reply) = s
        .deliver(br#"{"name": "kustomer.team.update"}"#, TOKEN, None)
        .await;
    assert_eq!(
        (status, reply["pointer"].as_str()),
        (400, Some("/data")),
        "{reply}"
    );
    let (status, reply) = s.deliver(b"[1, 2]", TOKEN, None).await;
    assert_eq!(status, 400, "{reply}");
    // The header naming another event than the body.
    let (status, reply) = s
        .deliver(
            sample("kustomer.team.update").as_bytes(),
            TOKEN,
            Some("kustomer.team.create"),
        )
        .await;
    assert_eq!(
        (status, reply["pointer"].as_str()),
        (400, Some("/name")),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_is_read_so_that_the_connection_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    let big = "x".repeat(70 * 1024);
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    // Over the limit, of another content type, another method: each
    // refused before its body is wanted, then a request on the same
    // connection, which is answered only if the bodies were read.
    let requests = [
        ("POST", "application/json", big.as_str()),
        ("POST", "text/plain", big.as_str()),
        ("PUT", "application/json", big.as_str()),
        ("GET", "application/json", ""),
    ];
    for (method, content_type, body) in requests {
        let head = format!(
            "{method} /kustomer HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
    }
    let mut answers = String::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while answers.matches("HTTP/1.1 ").count() < 4 {
            let n = stream.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "the connection closed after: {answers}");
            answers += &String::from_utf8_lossy(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("four answers");
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answers[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["413", "415", "405", "405"], "{answers}");
    // Each body was read: the connection stays, and no answer says otherwise.
    assert!(
        !answers.to_ascii_lowercase().contains("connection: close"),
        "{answers}"
    );
}

/// A chunked body over the limit is not read to its end: its 413 says the
/// connection closes (`Connection: close`), and it does, so that a client
/// keeping connections alive does not send its next request on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_gets_413_saying_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = "POST /kustomer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
    for _ in 0..9 {
        // The server may close before all of it is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    let _ = read.await.expect("answered, then closed");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
}

/// A body whose framing breaks gets 400 saying what broke, beyond that the
/// body could not be read: a chunk size that is not hex is not a client
/// that hung up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunk_gets_400_naming_what_broke() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = "POST /kustomer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    let _ = read.await.expect("answered, then closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let error = answer
        .split_once("the body could not be read: ")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{answer}"));
    // The connection's error, then its cause.
    assert!(error.matches(": ").count() >= 1, "{answer}");
    assert!(error.to_ascii_lowercase().contains("chunk"), "{answer}");
    assert_eq!(s.count.load(Ordering::SeqCst), 0);
}

/// A request refused from its head that waits for `100 Continue` before
/// sending its body gets the refusal at once, not a `100 Continue` and then
/// the refusal once the body's time limit has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_waiting_to_send_its_body_is_answered_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    for (content_type, length, want) in [
        ("text/plain", 100, "415"),
        ("application/json", 2 * 1024 * 1024, "413"),
        ("application/json", 100 * 1024, "413"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /kustomer HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
             Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let read = async {
            let mut buf = [0u8; 4096];
            while !answer.contains("\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "closed after: {answer}");
                answer += &String::from_utf8_lossy(&buf[..n]);
            }
        };
        // Well within the body's time limit (10 s by default).
        tokio::time::timeout(Duration::from_secs(3), read)
            .await
            .unwrap_or_else(|_| panic!("no answer at once to {content_type}: {answer:?}"));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want} ")),
            "{content_type}: {answer}"
        );
    }
}

/// A request target that is no path (`CONNECT host:port`, `OPTIONS *`)
/// asks the server itself: 405 with `Allow: POST`, as any method but POST
/// gets; a POST to it is a 404 naming the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_target_that_is_no_path_gets_405_or_a_404_naming_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for at in ["/", "/webhooks/kustomer"] {
        let dispatcher = Dispatcher::with_state(Count::default())
            .handler(ok_team)
            .build()
            .unwrap();
        let app =
            kustomer_webhooks::axum::router_at(at, Receiver::new(dispatcher, Verifier::new(TOKEN)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let post = format!("nothing is received at the request target *: deliveries go to {at}");
        for (head, status, says) in [
            ("CONNECT example.com:443", "405", "POST"),
            ("OPTIONS *", "405", "POST"),
            ("POST *", "404", post.as_str()),
        ] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "{head} HTTP/1.1\r\nHost: example.com:443\r\nContent-Type: application/json\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
            read.await.expect("answered").unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{head}: {answer}"
            );
            assert!(answer.contains(says), "{head}: {answer}");
            if status == "405" {
                assert!(
                    answer.to_ascii_lowercase().contains("\r\nallow: post\r\n"),
                    "{answer}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_where_nothing_is_received_gets_404_with_a_json_body_and_is_counted() {
    // `router_at`, as `serve` uses it, and `router` nested in an app.
    let receiver = || {
        let dispatcher = Dispatcher::with_state(Count::default())
            .handler(ok_team)
            .build()
            .unwrap();
        Receiver::new(dispatcher, Verifier::new(TOKEN))
    };
    let alone = receiver();
    let counters = alone.counters();
    let app = kustomer_webhooks::axum::router_at("/webhooks/kustomer", alone);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let body = sample("kustomer.team.update").as_bytes();
    let sig = sign(TOKEN.as_bytes(), body);
    let post = |path: &str| {
        client
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .header("x-kustomer-webhook-signature", &sig)
            .body(body.to_vec())
            .send()
    };
    for (path, error) in [
        (
            "/",
            "nothing is received at /: deliveries go to /webhooks/kustomer",
        ),
        (
            "/webhooks",
            "nothing is received at /webhooks: deliveries go to /webhooks/kustomer",
        ),
        (
            "/webhooks/kustomer/x",
            "nothing is received at /webhooks/kustomer/x: deliveries go to /webhooks/kustomer",
        ),
    ] {
        let res = post(path).await.unwrap();
        assert_eq!(res.status().as_u16(), 404, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        let reply: Value = res.json().await.unwrap();
        assert_eq!(reply["error"], error, "{reply}");
    }
    assert_eq!(counters.rejected.load(Ordering::SeqCst), 3);
    for path in ["/webhooks/kustomer", "/webhooks/kustomer/"] {
        assert_eq!(post(path).await.unwrap().status().as_u16(), 200, "{path}");
    }

    // `router` has no fallback of its own (it merges into an app with one):
    // nested in an app, a path below it gets the app's answer, uncounted.
    let nested = receiver();
    let counters = nested.counters();
    let app = axum::Router::new().nest_service("/k", kustomer_webhooks::axum::router(nested));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let res = client
        .post(format!("http://{addr}/k/other"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(counters.rejected.load(Ordering::SeqCst), 0);
    let _ = axum::Router::new()
        .fallback(|| async { "elsewhere" })
        .merge(kustomer_webhooks::axum::router(receiver()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_content_type_and_method_are_checked() {
    let s = start(Verifier::new(TOKEN)).await;
    let big = format!(
        "{{\"name\": \"kustomer.team.update\", \"pad\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    assert_eq!(s.deliver(big.as_bytes(), TOKEN, None).await.0, 413);
    // Turned away by the adapter while the body arrived, and still counted.
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 1);
    // Answered 413 every time, on fresh connections: the server reads the
    // rest of the body first, so that closing with it unread does not reset
    // the connection under the answer.
    for _ in 0..200 {
        let fresh = reqwest::Client::new();
        let res = fresh
            .post(format!("http://{}/kustomer", s.addr))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .expect("an answer, not a reset connection");
        assert_eq!(res.status().as_u16(), 413);
    }
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 201);
    let body = sample("kustomer.team.update").as_bytes();
    let sig = sign(TOKEN.as_bytes(), body);
    let (status, _) = s
        .post(
            body,
            &[
                ("content-type", "text/plain"),
                ("x-kustomer-webhook-signature", &sig),
            ],
        )
        .await;
    assert_eq!(status, 415);
    let (status, _) = s
        .post(body, &[("x-kustomer-webhook-signature", &sig)])
        .await;
    assert_eq!(status, 415, "no content type");
    let (status, _) = s
        .post(
            body,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("x-kustomer-webhook-signature", &sig),
            ],
        )
        .await;
    assert_eq!(status, 200, "a charset parameter is fine");
    // A compressed body is refused as such, even when its signature is
    // over the bytes as sent; `identity` is no encoding at all.
    let res = s
        .client
        .post(format!("http://{}/kustomer", s.addr))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-kustomer-webhook-signature", &sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    assert_eq!(res.headers()["accept-encoding"], "identity");
    let reply: serde_json::Value = res.json().await.unwrap();
    assert!(
        reply["error"].as_str().unwrap().contains("\"gzip\""),
        "{reply}"
    );
    let (status, reply) = s
        .post(
            body,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "Identity"),
                ("x-kustomer-webhook-signature", &sig),
            ],
        )
        .await;
    assert_eq!(status, 200, "identity: {reply}");
    // A coding on a second line is the same list as on one.
    let (status, reply) = s
        .post(
            body,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "identity, identity"),
                ("content-encoding", "gzip"),
                ("x-kustomer-webhook-signature", &sig),
            ],
        )
        .await;
    assert_eq!(status, 415, "identity, then gzip: {reply}");
    let res = s
        .client
        .get(format!("http://{}/kustomer", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    // The method and the content type are checked before the body's size,
    // in the order `Receiver::receive` checks them.
    let res = s
        .client
        .put(format!("http://{}/kustomer", s.addr))
        .header("content-type", "text/plain")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405, "a large PUT");
    let (status, reply) = s
        .post(big.as_bytes(), &[("content-type", "text/plain")])
        .await;
    assert_eq!(status, 415, "a large text body: {reply}");
    assert_eq!(reply["outcome"], "error");
    // Each refusal counted once: 413 201 times, 415 four times, 405
    // twice, 415.
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 208);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_panicking_and_slow_handlers_get_5xx_and_the_server_keeps_serving() {
    let s = start(Verifier::new(TOKEN)).await;
    let (status, reply) = s
        .deliver(sample("kustomer.team.create").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("the database is down"),
        "{reply}"
    );
    let (status, reply) = s
        .deliver(sample("kustomer.user.create").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("handler bug"),
        "{reply}"
    );
    let (status, reply) = s
        .deliver(sample("kustomer.user.update").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(status, 503, "{reply}");
    // Still serving, and handling.
    let (status, _) = s
        .deliver(sample("kustomer.team.update").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(status, 200);
}

/// The failure hook is told of each event whose handler failed, panicked or
/// timed out, once, with the handler's own error to downcast; never of one
/// handled, refused or a duplicate; and a hook that panics changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_hook_is_told_of_each_event_not_handled() {
    use kustomer_webhooks::DispatchError;
    use kustomer_webhooks::receiver::FailureCause;
    type Told = Arc<std::sync::Mutex<Vec<String>>>;
    let told = Told::default();
    let hook = {
        let told = told.clone();
        move |failure: &kustomer_webhooks::receiver::Failure<'_>| {
            let why = match &failure.cause {
                FailureCause::Handler(DispatchError::Handler { error, .. }) => {
                    let io = error
                        .downcast_ref::<std::io::Error>()
                        .expect("its own type");
                    format!("failed: {io}")
                }
                FailureCause::Handler(DispatchError::Panicked { message, .. }) => {
                    format!("panicked: {message}")
                }
                FailureCause::TimedOut(limit) => format!("timed out after {limit:?}"),
                other => format!("{other:?}"),
            };
            told.lock().unwrap().push(format!(
                "{} {} {} {}: {why}",
                failure.event,
                failure.id.unwrap_or("-"),
                failure.resource_id.unwrap_or("-"),
                failure.org.unwrap_or("-"),
            ));
            // A hook that panics is caught: the delivery is answered as
            // without it, and its claim given up for the retry.
            assert!(failure.event != "kustomer.user.create", "hook bug");
        }
    };
    let s = start_with(Verifier::new(TOKEN), |r| r.on_failure(hook)).await;
    let org = "5f8481c6a22ab5b9d5f2dd8a";
    let team = sample("kustomer.team.create");
    let team_json: Value = serde_json::from_str(team).unwrap();
    for (event, status) in [
        ("kustomer.team.create", 500),
        ("kustomer.user.create", 500),
        ("kustomer.user.update", 503),
        ("kustomer.team.update", 200),
    ] {
        let (got, reply) = s.deliver(sample(event).as_bytes(), TOKEN, None).await;
        assert_eq!(got, status, "{event}: {reply}");
    }
    // Refused, or a duplicate of a handled event: nothing to tell.
    let (got, _) = s.deliver(team.as_bytes(), "wrong", None).await;
    assert_eq!(got, 401);
    let (got, _) = s
        .deliver(sample("kustomer.team.update").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(got, 200);
    // The failed event's retry fails again, and is told again.
    let (got, _) = s.once_settled(team.as_bytes()).await;
    assert_eq!(got, 500);
    // The panicking hook left the user event's claim given up: its retry
    // runs the handler (which panics again) rather than waiting.
    let (got, _) = s
        .once_settled(sample("kustomer.user.create").as_bytes())
        .await;
    assert_eq!(got, 500);
    let told = told.lock().unwrap().clone();
    let id = |event: &str| -> String {
        let v: Value = serde_json::from_str(sample(event)).unwrap();
        format!(
            "{} {}",
            v["id"].as_str().unwrap(),
            v["data"]["id"].as_str().unwrap()
        )
    };
    let team_failed = format!(
        "kustomer.team.create {} {org}: failed: the database is down",
        id("kustomer.team.create")
    );
    let user_panicked = format!(
        "kustomer.user.create {} {org}: panicked: handler bug",
        id("kustomer.user.create")
    );
    assert_eq!(
        told,
        [
            team_failed.clone(),
            user_panicked.clone(),
            format!(
                "kustomer.user.update {} {org}: timed out after 300ms",
                id("kustomer.user.update")
            ),
            team_failed,
            user_panicked,
        ]
    );
    assert_eq!(team_json["org"], org);
}

/// With the handlers' errors hidden, a 500 says which handler failed or
/// panicked, not what its error or panic message holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_handler_errors_leave_the_reply() {
    let s = start_with(Verifier::new(TOKEN), Receiver::hide_handler_errors).await;
    for (event, what, secret) in [
        ("kustomer.team.create", "failed", "the database is down"),
        ("kustomer.user.create", "panicked", "handler bug"),
    ] {
        let (status, reply) = s.deliver(sample(event).as_bytes(), TOKEN, None).await;
        assert_eq!(status, 500, "{reply}");
        let error = reply["error"].as_str().unwrap();
        assert_eq!(
            error,
            format!("the handler {what} on {event}; its error is in the receiver's log"),
        );
        assert!(!reply.to_string().contains(secret), "{reply}");
    }
    assert_eq!(
        s.deliver(sample("kustomer.team.update").as_bytes(), TOKEN, None)
            .await
            .0,
        200
    );
}

/// The team update sample as event `n`, created `ago` before now (or
/// without a `createdAt`, or with one that is no date-time).
fn created(n: usize, created_at: Option<Value>) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
    v["id"] = format!("{n:024x}").into();
    let envelope = v.as_object_mut().unwrap();
    match created_at {
        Some(at) => envelope.insert("createdAt".to_owned(), at),
        None => envelope.remove("createdAt"),
    };
    serde_json::to_vec(&v).unwrap()
}

/// Now less `age`, as Kustomer writes a `createdAt`.
fn ago(age: Duration) -> Option<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let at = chrono::DateTime::from_timestamp_millis((now - age).as_millis() as i64).unwrap();
    Some(
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Ids read from different lone surrogate escapes (both U+FFFD once read)
/// are two events, each handled once; a retry of either is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_differing_in_lone_surrogate_escapes_are_two_events() {
    let s = start(Verifier::new(TOKEN)).await;
    let with_id = |escaped: &str| {
        let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
        v["id"] = "ID".into();
        serde_json::to_string(&v)
            .unwrap()
            .replace("\"ID\"", &format!("\"{escaped}\""))
            .into_bytes()
    };
    for escaped in ["lone\\ud800", "lone\\udbff"] {
        let (status, reply) = s.deliver(&with_id(escaped), TOKEN, None).await;
        assert_eq!(
            (status, &reply["outcome"]),
            (200, &Value::from("handled")),
            "{escaped}: {reply}"
        );
    }
    let (status, reply) = s.deliver(&with_id("lone\\ud800"), TOKEN, None).await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("duplicate")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_event_age_of_zero_is_no_max_age() {
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_max_event_age(Duration::from_secs(3600))
            .with_max_event_age(Duration::ZERO)
    })
    .await;
    // Created in 2021: handled, not acknowledged as too old.
    let old = sample("kustomer.team.update").as_bytes();
    let (status, reply) = s.deliver(old, TOKEN, None).await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("handled")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    assert_eq!(s.counters.too_old.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_older_than_the_max_event_age_is_acknowledged_and_not_dispatched() {
    let hour = Duration::from_secs(3600);
    let s = start_with(Verifier::new(TOKEN), |r| r.with_max_event_age(hour)).await;
    // The seed's samples were created in 2021: far too old.
    let old = sample("kustomer.team.update").as_bytes();
    let (status, reply) = s.deliver(old, TOKEN, None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "too old");
    assert_eq!(reply["event"], "kustomer.team.update");
    let detail = reply["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the event was created at 2021-")
            && detail.ends_with(
                "more than the receiver's max event age of 3600 s (60 min): not dispatched, as a possible replay"
            ),
        "{detail}"
    );
    // Just past the age: the same; within it, handled.
    let (status, reply) = s
        .deliver(&created(1, ago(hour + Duration::from_secs(5))), TOKEN, None)
        .await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("too old")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 0, "no handler ran");
    assert_eq!(s.counters.too_old.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 0);
    assert!(
        s.counters.to_string().ends_with(", 2 too old"),
        "{}",
        s.counters
    );
    let metrics = s.counters.prometheus();
    assert!(
        metrics.contains("kustomer_webhooks_deliveries_total{outcome=\"too_old\"} 2\n"),
        "{metrics}"
    );
    for (n, at) in [
        (2, ago(Duration::from_secs(60))),
        (3, ago(hour - Duration::from_secs(60))),
        // A clock ahead of this one.
        (4, Some("2999-01-01T00:00:00.000Z".into())),
        // Nothing to tell the age by: handled, with a warning.
        (5, None),
        (6, Some("yesterday".into())),
    ] {
        let (status, reply) = s.deliver(&created(n, at), TOKEN, None).await;
        assert_eq!(
            (status, &reply["outcome"]),
            (200, &Value::from("handled")),
            "{n}: {reply}"
        );
    }
    assert_eq!(s.count.load(Ordering::SeqCst), 5);

    // Sent again now by whoever holds the token (as `send` does): handled.
    let resent =
        |body: &[u8], at: u64| kustomer_webhooks::verify::sign_resent(TOKEN.as_bytes(), body, at);
    let signature = sign(TOKEN.as_bytes(), old);
    let s = &s;
    let post = |resent: String| {
        let signature = signature.clone();
        async move {
            s.post(
                old,
                &[
                    ("content-type", "application/json"),
                    ("x-kustomer-webhook-signature", &signature),
                    ("x-kustomer-webhooks-resent", &resent),
                ],
            )
            .await
        }
    };
    // Made with another token, or long ago: no proof; still too old.
    let forged = kustomer_webhooks::verify::sign_resent(b"another", old, unix_now());
    let (_, reply) = post(forged).await;
    assert_eq!(reply["outcome"], "too old");
    assert!(
        reply["detail"]
            .as_str()
            .unwrap()
            .ends_with("its x-kustomer-webhooks-resent header was not taken (made more than 300 s from this clock, with another token, or not of the form t=…,v1=…; a receiver that verifies no signature takes none)"),
        "{reply}"
    );
    assert_eq!(
        post(resent(old, unix_now() - 3600)).await.1["outcome"],
        "too old"
    );
    let (status, reply) = post(resent(old, unix_now())).await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("handled")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 6);
    // Handled once, its replay is a duplicate, whatever its age.
    let (status, reply) = s.deliver(old, TOKEN, None).await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("duplicate")),
        "{reply}"
    );

    // Off by default: the 2021 sample is handled.
    let s = start(Verifier::new(TOKEN)).await;
    let (status, reply) = s.deliver(old, TOKEN, None).await;
    assert_eq!(
        (status, &reply["outcome"]),
        (200, &Value::from("handled")),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_deliveries_of_mixed_events() {
    let s = Arc::new(start(Verifier::new(TOKEN)).await);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (event, _) = SEED_SAMPLES[i % SEED_SAMPLES.len()];
            let (status, _) = s
                .deliver(&variant(event, i, None), TOKEN, Some(event))
                .await;
            (event, status)
        }));
    }
    for t in tasks {
        let (event, status) = t.await.unwrap();
        let want = match event {
            "kustomer.team.create" | "kustomer.user.create" => 500,
            "kustomer.user.update" => 503,
            _ => 200,
        };
        assert_eq!(status, want, "{event}");
    }
    assert_eq!(
        s.count.load(Ordering::SeqCst),
        10,
        "each team update ran once"
    );
}

/// Deliveries that arrive together are handled in turn by one task (the
/// axum adapter's batches), but a handler that waits never holds up the
/// others: twenty handlers that each wait until all twenty have started all
/// finish, and every delivery is answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_of_deliveries_arriving_together_wait_side_by_side() {
    const N: usize = 20;
    async fn meet(_: TeamUpdate, all: State<Arc<tokio::sync::Barrier>>) {
        all.wait().await;
    }
    let all = Arc::new(tokio::sync::Barrier::new(N));
    let dispatcher = Dispatcher::with_state(all).handler(meet).build().unwrap();
    let receiver =
        Receiver::new(dispatcher, Verifier::new(TOKEN)).with_timeout(Duration::from_secs(20));
    let s = Arc::new(serve(receiver, Count::default()).await);
    let tasks: Vec<_> = (0..N)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                let body = variant("kustomer.team.update", n, None);
                s.deliver(&body, TOKEN, None).await
            })
        })
        .collect();
    for t in tasks {
        let (status, reply) = t.await.unwrap();
        assert_eq!(
            (status, reply["outcome"].as_str()),
            (200, Some("handled")),
            "{reply}"
        );
    }
    assert_eq!(s.counters.accepted.load(Ordering::SeqCst), N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_acknowledged_without_running_the_handler_again() {
    let s = start(Verifier::new(TOKEN)).await;
    let body = sample("kustomer.team.update").as_bytes();
    let (status, reply) = s.deliver(body, TOKEN, None).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    let (status, reply) = s.deliver(body, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    // A failed event is not marked done: the retry runs the handler again.
    let failing = sample("kustomer.team.create").as_bytes();
    assert_eq!(s.deliver(failing, TOKEN, None).await.0, 500);
    let (status, reply) = s.deliver(failing, TOKEN, None).await;
    assert_eq!(status, 500, "a retry of a failed event runs again: {reply}");
    assert_eq!(s.deliver(body, "wrong", None).await.0, 401);
    let c = &s.counters;
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::SeqCst);
    assert_eq!(
        (
            load(&c.accepted),
            load(&c.duplicate),
            load(&c.failed),
            load(&c.rejected),
            load(&c.stale)
        ),
        (1, 1, 2, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_run_the_handler_once() {
    let s = Arc::new(start(Verifier::new(TOKEN)).await);
    let body = Arc::new(variant("kustomer.team.update", 7, None));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, body) = (s.clone(), body.clone());
        tasks.push(tokio::spawn(
            async move { s.deliver(&body, TOKEN, None).await },
        ));
    }
    let mut handled = 0;
    for t in tasks {
        let (status, reply) = t.await.unwrap();
        match (status, reply["outcome"].as_str()) {
            (200, Some("handled")) => handled += 1,
            (200, Some("duplicate")) | (409, Some("in progress")) => {}
            other => panic!("{other:?} {reply}"),
        }
    }
    assert_eq!(handled, 1);
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    // The others are duplicates (200), or in progress (409) while the
    // first ran.
    let counted = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::SeqCst);
    let c = &s.counters;
    assert_eq!(
        (
            counted(&c.accepted),
            counted(&c.duplicate) + counted(&c.in_progress),
            counted(&c.rejected)
        ),
        (1, 19, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_dropped_while_its_handler_runs_is_counted_once_it_has_ended() {
    async fn slow_team(_: TeamUpdate, n: State<Count>) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        n.fetch_add(1, Ordering::SeqCst);
    }
    let count = Count::default();
    let dispatcher = Dispatcher::with_state(count.clone())
        .handler(slow_team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN));
    let body = variant("kustomer.team.update", 1, None);
    let signature = sign(TOKEN.as_bytes(), &body);
    let delivery = receiver.receive(kustomer_webhooks::receiver::Request {
        method: "POST",
        header: |name| match name {
            "content-type" => Some(&b"application/json"[..]),
            "x-kustomer-webhook-signature" => Some(signature.as_bytes()),
            _ => None,
        },
        body: &body,
    });
    // Its caller stops waiting (a client that hung up) while it runs.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), delivery)
            .await
            .is_err()
    );
    let counters = receiver.counters();
    assert_eq!(counters.accepted.load(Ordering::SeqCst), 0);
    tokio::time::timeout(Duration::from_secs(10), async {
        while counters.accepted.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("counted once handled");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(counters.failed.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_fn_catch_all_past_its_time_limit_keeps_its_claim_until_it_ends() {
    // A catch-all written as a plain `fn` runs on a thread like any other:
    // past its limit the delivery gets 503 and a retry 409 until it ends.
    fn slow_catch_all(_: kustomer_webhooks::AnyEvent, n: State<Count>) {
        std::thread::sleep(Duration::from_millis(900));
        n.fetch_add(1, Ordering::SeqCst);
    }
    let count = Count::default();
    let dispatcher = Dispatcher::with_state(count.clone())
        .handler(ok_team)
        .handler(slow_catch_all)
        .build()
        .unwrap();
    let receiver =
        Receiver::new(dispatcher, Verifier::new(TOKEN)).with_timeout(Duration::from_millis(300));
    let s = serve(receiver, count.clone()).await;
    let body = variant("kustomer.conversation.update", 1, None);
    let (status, reply) = s.deliver(&body, TOKEN, None).await;
    assert_eq!(status, 503, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("it runs on"), "{error}");
    let (status, reply) = s.deliver(&body, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (409, Some("in progress")),
        "{reply}"
    );
    // The team event has a handler of its own, and does not wait.
    let team = variant("kustomer.team.update", 2, None);
    let (status, reply) = s.deliver(&team, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );
    let (status, reply) = s.once_settled(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    // The team's handler and the catch-all, once each.
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_fn_handler_past_its_time_limit_keeps_its_claim_and_slot_until_it_ends() {
    // A plain `fn` runs on a thread its time limit (300 ms here) cannot
    // stop: it sleeps 900 ms, then counts.
    fn slow_on_a_thread(_: ConversationUpdate, n: State<Count>) {
        std::thread::sleep(Duration::from_millis(900));
        n.fetch_add(1, Ordering::SeqCst);
    }
    let count = Count::default();
    let dispatcher = Dispatcher::with_state(count.clone())
        .handler(slow_on_a_thread)
        .handler(ok_team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_timeout(Duration::from_millis(300))
        .with_max_concurrent_handlers(1, Duration::from_millis(100));
    let s = serve(receiver, count.clone()).await;
    let body = variant("kustomer.conversation.update", 1, None);
    let (status, reply) = s.deliver(&body, TOKEN, None).await;
    assert_eq!(status, 503, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("it runs on"), "{error}");
    // A retry while it runs: the claim is still held, so it is not run a
    // second time at once.
    let (status, reply) = s.deliver(&body, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (409, Some("in progress")),
        "{reply}"
    );
    // Counted as such, not as a duplicate (which is acknowledged).
    assert_eq!(s.counters.in_progress.load(Ordering::SeqCst), 1);
    assert_eq!(s.counters.duplicate.load(Ordering::SeqCst), 0);
    // Nor does another event get its slot (the only one) meanwhile.
    let team = variant("kustomer.team.update", 2, None);
    let (status, reply) = s.deliver(&team, TOKEN, None).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(count.load(Ordering::SeqCst), 0);
    // Once it has ended, its event is done: a retry is a duplicate, and
    // the slot is free again.
    tokio::time::timeout(Duration::from_secs(10), async {
        while count.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the handler ends");
    let (status, reply) = s.once_settled(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    let (status, reply) = s.deliver(&team, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_a_stale_update_is_acknowledged_and_not_dispatched() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    let newer = variant("kustomer.customer.update", 1, Some(5));
    let older = variant("kustomer.customer.update", 2, Some(4));
    let (status, reply) = s.deliver(&newer, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("no handler")),
        "{reply}"
    );
    let (status, reply) = s.deliver(&older, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("stale")),
        "{reply}"
    );
    // Acknowledged, not an error: the reason is a detail.
    assert_eq!(
        reply["detail"],
        "rev not newer than 5, the last processed for this resource"
    );
    assert!(reply.get("error").is_none(), "{reply}");
    let newest = variant("kustomer.customer.update", 3, Some(6));
    assert_eq!(
        s.deliver(&newest, TOKEN, None).await.1["outcome"],
        "no handler"
    );
}

/// Updates of one resource arriving while an older or newer one is being
/// handled: each waits for its turn, so none older than one handled is run
/// after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_the_events_of_one_resource_take_turns() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    use kustomer_webhooks::{CustomerUpdate, State};
    type Seen = Arc<std::sync::Mutex<Vec<i64>>>;
    async fn record(event: CustomerUpdate, seen: State<Seen>) {
        let rev = event
            .data
            .attributes
            .rev
            .expect("the deliveries have a rev");
        // Long enough for the other deliveries to arrive meanwhile.
        tokio::time::sleep(Duration::from_millis(60)).await;
        seen.lock().unwrap().push(rev);
    }
    let seen = Seen::default();
    let dispatcher = Dispatcher::with_state(Arc::clone(&seen))
        .handler(record)
        .build()
        .unwrap();
    let receiver =
        Receiver::new(dispatcher, Verifier::new(TOKEN)).with_ordering(OrderingGuard::new());
    let s = Arc::new(serve(receiver, Count::default()).await);
    let revs = [6, 5, 7, 4, 8, 3];
    let mut sent = Vec::new();
    for (n, rev) in revs.into_iter().enumerate() {
        let s = Arc::clone(&s);
        sent.push(tokio::spawn(async move {
            // In this order, each while the one before is being handled.
            tokio::time::sleep(Duration::from_millis(10 * n as u64)).await;
            let body = variant("kustomer.customer.update", 100 + n, Some(rev));
            let (status, reply) = s.deliver(&body, TOKEN, None).await;
            assert_eq!(status, 200, "{reply}");
            (rev, reply["outcome"].as_str().unwrap().to_owned())
        }));
    }
    let mut outcomes = Vec::new();
    for one in sent {
        outcomes.push(one.await.unwrap());
    }
    let handled = seen.lock().unwrap().clone();
    assert!(
        handled.windows(2).all(|w| w[0] < w[1]),
        "handled in this order: {handled:?} ({outcomes:?})"
    );
    assert_eq!(handled.last(), Some(&8), "{outcomes:?}");
    for (rev, outcome) in &outcomes {
        let expected = if handled.contains(rev) {
            "handled"
        } else {
            "stale"
        };
        assert_eq!(outcome, expected, "rev {rev}: {outcomes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_a_creation_arriving_after_its_updates_is_still_handled() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    // Event `n` of the customer `resource` at `rev`. (The tests' receiver
    // has no customer handler: dispatched, a customer event is "no handler".)
    let event = |name: &str, n: usize, resource: &str, rev: i64| {
        let mut v: Value = serde_json::from_str(sample(name)).unwrap();
        v["id"] = format!("{n:024x}").into();
        v["data"]["id"] = resource.into();
        v["data"]["attributes"]["rev"] = rev.into();
        serde_json::to_vec(&v).unwrap()
    };
    let outcome = |(status, reply): (u16, Value)| {
        assert_eq!(status, 200, "{reply}");
        reply["outcome"].as_str().unwrap().to_owned()
    };
    let (create, update) = ("kustomer.customer.create", "kustomer.customer.update");
    let update_5 = event(update, 1, "a", 5);
    assert_eq!(
        outcome(s.deliver(&update_5, TOKEN, None).await),
        "no handler"
    );
    // The creation (rev 1), late: dispatched, not stale.
    let create_1 = event(create, 2, "a", 1);
    assert_eq!(
        outcome(s.deliver(&create_1, TOKEN, None).await),
        "no handler"
    );
    // Its rev did not lower the last one: an update older than 5 is stale.
    let update_4 = event(update, 3, "a", 4);
    assert_eq!(outcome(s.deliver(&update_4, TOKEN, None).await), "stale");
    // A creation's rev counts for the updates after it.
    let create_3 = event(create, 4, "b", 3);
    assert_eq!(
        outcome(s.deliver(&create_3, TOKEN, None).await),
        "no handler"
    );
    let update_2 = event(update, 5, "b", 2);
    assert_eq!(outcome(s.deliver(&update_2, TOKEN, None).await), "stale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_of_another_json_type_is_still_the_key_and_an_event_without_one_is_never_lost() {
    let s = start(Verifier::new(TOKEN)).await;
    let team = |id: Option<Value>| {
        let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
        match id {
            Some(id) => v["id"] = id,
            None => {
                v.as_object_mut().unwrap().remove("id");
            }
        }
        serde_json::to_vec(&v).unwrap()
    };
    let outcome = |(status, reply): (u16, Value)| {
        assert_eq!(status, 200, "{reply}");
        reply["outcome"].as_str().unwrap().to_owned()
    };
    // A number: the first delivery runs the handler, its retry is a duplicate.
    let number = team(Some(42.into()));
    assert_eq!(outcome(s.deliver(&number, TOKEN, None).await), "handled");
    assert_eq!(outcome(s.deliver(&number, TOKEN, None).await), "duplicate");
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    // The string "42" is another event than the number 42, and an object
    // id is a key too.
    let string = team(Some("42".into()));
    assert_eq!(outcome(s.deliver(&string, TOKEN, None).await), "handled");
    let object = team(Some(serde_json::json!({"oid": "6087326fa8b1c7b07da5e5c9"})));
    assert_eq!(outcome(s.deliver(&object, TOKEN, None).await), "handled");
    assert_eq!(outcome(s.deliver(&object, TOKEN, None).await), "duplicate");
    assert_eq!(s.count.load(Ordering::SeqCst), 3);
    // No id at all, null, empty or white space alone: nothing to
    // de-duplicate by, so every delivery runs the handler rather than one
    // being taken for another.
    for body in [
        team(None),
        team(Some(Value::Null)),
        team(Some("".into())),
        team(Some(" ".into())),
        team(Some("\t\n".into())),
    ] {
        assert_eq!(outcome(s.deliver(&body, TOKEN, None).await), "handled");
        assert_eq!(outcome(s.deliver(&body, TOKEN, None).await), "handled");
    }
    assert_eq!(s.count.load(Ordering::SeqCst), 13);
}

/// Users and teams have no `rev`: their updates are ordered by
/// `updatedAt`, an older one stale, one of the same millisecond handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_updates_without_a_rev_are_ordered_by_updated_at() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    // A team's updates, and those of an event without a model (read from
    // its JSON), each resource of its own; none has a `rev`.
    let update = |event: &str, n: usize, at: Option<&str>| {
        let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
        v["id"] = format!("{n:024x}").into();
        v["name"] = event.into();
        v["data"]["id"] = format!("{event}-resource").into();
        let attributes = v["data"]["attributes"].as_object_mut().unwrap();
        assert!(!attributes.contains_key("rev"));
        match at {
            Some(at) => attributes.insert("updatedAt".into(), at.into()),
            None => attributes.remove("updatedAt"),
        };
        serde_json::to_vec(&v).unwrap()
    };
    // Handled (the team's handler) or acknowledged (no handler): run.
    let ran = |reply: &Value| matches!(reply["outcome"].as_str(), Some("handled" | "no handler"));
    let mut n = 0;
    for event in ["kustomer.team.update", "kustomer.widget.update"] {
        let mut deliver = |at: Option<&str>| {
            n += 1;
            let body = update(event, n, at);
            let s = &s;
            async move {
                let (status, reply) = s.deliver(&body, TOKEN, None).await;
                assert_eq!(status, 200, "{reply}");
                reply
            }
        };
        let newest = deliver(Some("2024-05-01T10:00:00.500Z")).await;
        assert!(ran(&newest), "{event}: {newest}");
        let older = deliver(Some("2024-05-01T10:00:00.499Z")).await;
        assert_eq!(older["outcome"], "stale", "{event}");
        assert_eq!(
            older["detail"],
            "updatedAt older than 2024-05-01T10:00:00.500Z, the last processed for this \
             resource (this update has no rev to order it by)"
        );
        // The same millisecond: another update, handled.
        let same = deliver(Some("2024-05-01T10:00:00.500Z")).await;
        assert!(ran(&same), "{event}: {same}");
        // Another offset, an hour older.
        let offset = deliver(Some("2024-05-01T11:00:00+02:00")).await;
        assert_eq!(offset["outcome"], "stale", "{event}");
        let newer = deliver(Some("2024-05-02T00:00:00Z")).await;
        assert!(ran(&newer), "{event}: {newer}");
        // Without `updatedAt` either, nothing orders it.
        let unordered = deliver(None).await;
        assert!(ran(&unordered), "{event}: {unordered}");
    }
}

/// An update of a resource with revisions whose `rev` is missing or cannot
/// be read is ordered by its `updatedAt` against every update handled
/// before it, those with a `rev` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_an_update_without_a_usable_rev_is_ordered_by_time_among_all() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    let update = |n: usize, rev: Option<Value>, at: &str| {
        let mut v: Value = serde_json::from_str(sample("kustomer.customer.update")).unwrap();
        v["id"] = format!("{n:024x}").into();
        v["data"]["id"] = "5f3c1b2a9d8e7f6a5b4c3d2e".into();
        let attributes = v["data"]["attributes"].as_object_mut().unwrap();
        match rev {
            Some(rev) => attributes.insert("rev".into(), rev),
            None => attributes.remove("rev"),
        };
        attributes.insert("updatedAt".into(), at.into());
        serde_json::to_vec(&v).unwrap()
    };
    let outcome = |(status, reply): (u16, Value)| {
        assert_eq!(status, 200, "{reply}");
        (
            reply["outcome"].as_str().unwrap().to_owned(),
            reply["detail"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let may = "2021-05-01T00:00:00.000Z";
    let first = outcome(
        s.deliver(&update(1, Some(13.into()), may), TOKEN, None)
            .await,
    );
    assert_eq!(first.0, "no handler");
    // A month older, with a `rev` that cannot be read, or none: stale.
    for (n, rev) in [(2, Some("abc".into())), (3, None)] {
        let (said, detail) = outcome(
            s.deliver(&update(n, rev, "2021-04-01T00:00:00.000Z"), TOKEN, None)
                .await,
        );
        assert_eq!(said, "stale", "{detail}");
        assert_eq!(
            detail,
            "updatedAt older than 2021-05-01T00:00:00.000Z, the last processed for this \
             resource (this update has no rev to order it by)"
        );
    }
    // Newer, without a `rev`: dispatched (no handler here takes customer
    // events); and a `rev` still orders by itself.
    let newer = outcome(
        s.deliver(&update(4, None, "2021-06-01T00:00:00.000Z"), TOKEN, None)
            .await,
    );
    assert_eq!(newer.0, "no handler");
    let older_rev = outcome(
        s.deliver(
            &update(5, Some(12.into()), "2021-07-01T00:00:00.000Z"),
            TOKEN,
            None,
        )
        .await,
    );
    assert_eq!(older_rev.0, "stale");
    let next_rev = outcome(
        s.deliver(&update(6, Some(14.into()), may), TOKEN, None)
            .await,
    );
    assert_eq!(next_rev.0, "no handler");
}

/// An empty `data.id` (or one of white space alone) names no resource: the
/// ordering guard does not compare the revisions of the events sent with
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ordering_an_empty_resource_id_orders_nothing() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    let update = |n: usize, rev: i64| {
        let mut v: Value = serde_json::from_str(sample("kustomer.customer.update")).unwrap();
        v["id"] = format!("{n:024x}").into();
        v["data"]["id"] = if n.is_multiple_of(2) { " " } else { "" }.into();
        v["data"]["attributes"]["rev"] = rev.into();
        serde_json::to_vec(&v).unwrap()
    };
    for (n, rev) in [(1, 9), (2, 8), (3, 9), (4, 7), (5, 1)] {
        let (status, reply) = s.deliver(&update(n, rev), TOKEN, None).await;
        assert_eq!(
            (status, reply["outcome"].as_str()),
            (200, Some("no handler")),
            "{reply}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_revs_of_another_format_still_deduplicate_and_order() {
    use kustomer_webhooks::dedupe::OrderingGuard;
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_ordering(OrderingGuard::new())
    })
    .await;
    // An event id that is not 24 hex digits is drift, and still the key.
    let mut team: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
    team["id"] = "evt_2026-11-28T01:00:00Z".into();
    let team = serde_json::to_vec(&team).unwrap();
    let (status, reply) = s.deliver(&team, TOKEN, None).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    assert_eq!(reply["id"], "evt_2026-11-28T01:00:00Z", "{reply}");
    let (status, reply) = s.deliver(&team, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    // An id of another JSON type is keyed by its JSON text, and a string
    // id spelled like that key is not taken for it.
    for (id, outcomes) in [
        (Value::from(42), ["handled", "duplicate"]),
        (Value::from("json:42"), ["handled", "duplicate"]),
        (Value::from("str:json:42"), ["handled", "duplicate"]),
    ] {
        let mut team: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
        team["id"] = id.clone();
        let team = serde_json::to_vec(&team).unwrap();
        for outcome in outcomes {
            let (status, reply) = s.deliver(&team, TOKEN, None).await;
            assert_eq!(
                (status, reply["outcome"].as_str()),
                (200, Some(outcome)),
                "{id}: {reply}"
            );
        }
    }
    assert_eq!(s.count.load(Ordering::SeqCst), 4);
    // A resource id of another format, and revs sent as strings, still
    // order the resource's updates.
    let update = |n: usize, rev: &str| {
        let mut v: Value = serde_json::from_str(sample("kustomer.customer.update")).unwrap();
        v["id"] = format!("{n:024x}").into();
        v["data"]["id"] = "customer/42".into();
        v["data"]["attributes"]["rev"] = rev.into();
        serde_json::to_vec(&v).unwrap()
    };
    let (status, reply) = s.deliver(&update(1, "9"), TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("no handler")),
        "{reply}"
    );
    let (status, reply) = s.deliver(&update(2, "8"), TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("stale")),
        "{reply}"
    );
    let (status, reply) = s.deliver(&update(3, "10"), TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("no handler")),
        "{reply}"
    );
    // A float with no fraction is a whole number: 12.0 orders, 11 after it
    // is stale.
    for (n, rev, outcome) in [
        (4, Value::from(12.0), "no handler"),
        (5, 11.into(), "stale"),
    ] {
        let mut v: Value = serde_json::from_slice(&update(n, "0")).unwrap();
        v["data"]["attributes"]["rev"] = rev;
        let (status, reply) = s
            .deliver(&serde_json::to_vec(&v).unwrap(), TOKEN, None)
            .await;
        assert_eq!(
            (status, reply["outcome"].as_str()),
            (200, Some(outcome)),
            "{reply}"
        );
    }
}

/// A string cut inside a UTF-16 surrogate pair, as JavaScript's
/// `JSON.stringify` writes it (`"hi \ud83d"`): valid JSON, read with U+FFFD
/// in place of the half, rather than refused (which would lose the event
/// once Kustomer's retries end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_cut_inside_a_surrogate_pair_is_handled() {
    let s = start(Verifier::new(TOKEN)).await;
    let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
    v["id"] = format!("{:024x}", 950).into();
    v["data"]["attributes"]["name"] = "CUT".into();
    let body = serde_json::to_string(&v)
        .unwrap()
        .replace("CUT", r"hi \ud83d");
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let (status, reply) = s
        .deliver(body.as_bytes(), TOKEN, Some("kustomer.team.update"))
        .await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
    let parsed = kustomer_webhooks::parse(body.as_bytes()).unwrap();
    assert!(parsed.drift().is_empty());
    let event = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(event["data"]["attributes"]["name"], "hi \u{FFFD}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_its_name_is_the_event_its_header_names() {
    let s = start(Verifier::new(TOKEN)).await;
    for (n, name) in [Value::Null, 5.into()].into_iter().enumerate() {
        let mut v: Value = serde_json::from_str(sample("kustomer.team.update")).unwrap();
        v["id"] = format!("{:024x}", 900 + n).into();
        match name {
            Value::Null => drop(v.as_object_mut().unwrap().remove("name")),
            other => v["name"] = other,
        }
        let body = serde_json::to_vec(&v).unwrap();
        let (status, reply) = s.deliver(&body, TOKEN, Some("kustomer.team.update")).await;
        assert_eq!(
            (status, reply["outcome"].as_str(), reply["event"].as_str()),
            (200, Some("handled"), Some("kustomer.team.update")),
            "{reply}"
        );
        // Without the header there is nothing to tell the event by.
        let (status, reply) = s.deliver(&body, TOKEN, None).await;
        assert_eq!(
            (status, reply["pointer"].as_str()),
            (400, Some("/name")),
            "{reply}"
        );
    }
    assert_eq!(s.count.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_gets_408_and_the_server_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_with(Verifier::new(TOKEN), |r| {
        r.with_read_timeout(Duration::from_millis(200))
    })
    .await;
    let addr = s.addr;
    let head = format!(
        "POST /kustomer HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n{{\"name\": "
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The rest of the body never comes; the answer does.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    read.await
        .expect("answered before the test's own limit")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("the body did not arrive within 200ms"),
        "{answer}"
    );
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 1);
    let (status, _) = s
        .deliver(sample("kustomer.team.update").as_bytes(), TOKEN, None)
        .await;
    assert_eq!(status, 200);
}

/// Lets a test hold a handler mid-run and see when it finished.
#[derive(Default)]
struct Gate {
    started: tokio::sync::Notify,
    release: tokio::sync::Notify,
    runs: AtomicUsize,
    finished: AtomicUsize,
}

/// Succeeds once released.
async fn gated_update(_: CustomerUpdate, gate: State<Arc<Gate>>) {
    gate.runs.fetch_add(1, Ordering::SeqCst);
    gate.started.notify_one();
    gate.release.notified().await;
    gate.finished.fetch_add(1, Ordering::SeqCst);
}

/// Once released, fails on its first run and succeeds on the next ones.
async fn gated_create(_: CustomerCreate, gate: State<Arc<Gate>>) -> Result<(), std::io::Error> {
    let run = gate.runs.fetch_add(1, Ordering::SeqCst);
    gate.started.notify_one();
    if run == 0 {
        gate.release.notified().await;
        gate.finished.fetch_add(1, Ordering::SeqCst);
        return Err(std::io::Error::other("the database is down"));
    }
    gate.finished.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Posts a signed delivery over a raw connection, waits until its handler
/// has started, and hangs up.
async fn deliver_and_hang_up(addr: SocketAddr, body: &[u8], gate: &Gate) {
    use tokio::io::AsyncWriteExt;
    let sig = sign(TOKEN.as_bytes(), body);
    let head = format!(
        "POST /kustomer HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-kustomer-webhook-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    gate.started.notified().await;
    drop(stream);
    // Time for the server to see the connection closed and drop the request
    // (nothing here depends on how long that takes: at worst, the handler is
    // released before the drop and the test checks less).
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Waits until the gate's handler has finished `n` runs.
async fn finished(gate: &Gate, n: usize) {
    for _ in 0..1000 {
        if gate.finished.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the handler was cancelled: it never finished its run");
}

/// Delivers until the delivery is no longer in progress elsewhere.
async fn deliver_settled(s: &Server, body: &[u8]) -> (u16, Value) {
    for _ in 0..500 {
        let (status, reply) = s.deliver(body, TOKEN, None).await;
        if status != 409 {
            return (status, reply);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the claim of the event was left behind: still in progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_neither_cancels_the_handler_nor_leaves_its_claim() {
    let gate = Arc::new(Gate::default());
    let dispatcher = Dispatcher::with_state(gate.clone())
        .handler(gated_update)
        .handler(gated_create)
        .build()
        .unwrap();
    let receiver =
        Receiver::new(dispatcher, Verifier::new(TOKEN)).with_timeout(Duration::from_secs(60));
    let s = serve(receiver, Count::default()).await;
    let addr = s.addr;

    // A handler that succeeds after its client hung up: it runs to the end,
    // and the event is done, so the retry is a duplicate.
    let update = sample("kustomer.customer.update").as_bytes();
    deliver_and_hang_up(addr, update, &gate).await;
    gate.release.notify_one();
    finished(&gate, 1).await;
    let (status, reply) = deliver_settled(&s, update).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
    assert_eq!(gate.runs.load(Ordering::SeqCst), 1);

    // A handler that fails after its client hung up: the claim is given up,
    // so the retry runs the handler again.
    let gate_runs = gate.runs.swap(0, Ordering::SeqCst);
    assert_eq!(gate_runs, 1);
    gate.finished.store(0, Ordering::SeqCst);
    let create = sample("kustomer.customer.create").as_bytes();
    deliver_and_hang_up(addr, create, &gate).await;
    gate.release.notify_one();
    finished(&gate, 1).await;
    let (status, reply) = deliver_settled(&s, create).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );
    assert_eq!(gate.runs.load(Ordering::SeqCst), 2);
}

/// The receiver benchmark measures a handler run for every delivery: each
/// of its deliveries (one per seed event) must reach one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_receiver_runs_a_handler_for_every_delivery() {
    use kustomer_webhooks_tests::load;

    let addr = load::serve(load::receiver_router()).await;
    let client = reqwest::Client::new();
    let deliveries = load::deliveries(0, SEED_SAMPLES.len());
    for d in &deliveries {
        let res = d
            .request(&client, &format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let reply: Value = res.json().await.unwrap();
        assert_eq!(
            (status, reply["outcome"].as_str(), reply["event"].as_str()),
            (200, Some("handled"), Some(d.event.as_str())),
            "{reply}"
        );
    }
}

/// Handlers held until the test releases them, counting how many run at
/// once.
struct Held {
    release: tokio::sync::Semaphore,
    now: AtomicUsize,
    most: AtomicUsize,
    started: AtomicUsize,
}

impl Default for Held {
    fn default() -> Self {
        Held {
            release: tokio::sync::Semaphore::new(0),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
        }
    }
}

async fn held(_: CustomerUpdate, h: State<Arc<Held>>) {
    let now = h.now.fetch_add(1, Ordering::SeqCst) + 1;
    h.most.fetch_max(now, Ordering::SeqCst);
    h.started.fetch_add(1, Ordering::SeqCst);
    h.release.acquire().await.unwrap().forget();
    h.now.fetch_sub(1, Ordering::SeqCst);
}

/// A server whose one handler is [`held`], at most `n` at once, a delivery
/// waiting up to `max_wait` for a slot.
async fn start_held(
    n: usize,
    max_wait: Duration,
    letters: Option<kustomer_webhooks::dead_letters::DeadLetters>,
) -> (Arc<Held>, Server) {
    let h = Arc::new(Held::default());
    let dispatcher = Dispatcher::with_state(h.clone())
        .handler(held)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_max_concurrent_handlers(n, max_wait)
        .with_timeout(Duration::from_secs(20));
    let receiver = match letters {
        Some(letters) => receiver.with_dead_letters(letters),
        None => receiver,
    };
    (h, serve(receiver, Count::default()).await)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_limit_at_most_that_many_handlers_run_at_once_and_the_rest_wait() {
    let (h, s) = start_held(2, Duration::from_secs(20), None).await;
    let s = Arc::new(s);
    let deliveries: Vec<_> = (0..6)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                let body = variant("kustomer.customer.update", 3000 + n, None);
                s.deliver(&body, TOKEN, None).await
            })
        })
        .collect();
    until("two handlers run", || h.now.load(Ordering::SeqCst) == 2).await;
    // The others wait for a slot: none of them starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.started.load(Ordering::SeqCst), 2);
    // A duplicate needs no slot: answered while every slot is taken.
    let first = variant("kustomer.customer.update", 3000, None);
    let (status, reply) = s.deliver(&first, TOKEN, None).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (409, Some("in progress")),
        "{reply}"
    );
    h.release.add_permits(6);
    for d in deliveries {
        let (status, reply) = d.await.unwrap();
        assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    }
    assert_eq!(h.started.load(Ordering::SeqCst), 6);
    assert_eq!(h.most.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_waits_longer_than_allowed_for_a_slot_gets_503_and_runs_on_retry() {
    let dir = tempfile::TempDir::new().unwrap();
    let letters = kustomer_webhooks::dead_letters::DeadLetters::open(dir.path()).unwrap();
    let (h, s) = start_held(1, Duration::from_millis(300), Some(letters.clone())).await;
    let s = Arc::new(s);
    let hold = {
        let s = s.clone();
        tokio::spawn(async move {
            let body = variant("kustomer.customer.update", 4000, None);
            s.deliver(&body, TOKEN, None).await
        })
    };
    until("the one slot is taken", || {
        h.now.load(Ordering::SeqCst) == 1
    })
    .await;
    let waiting = variant("kustomer.customer.update", 4001, None);
    let (status, reply) = s.deliver(&waiting, TOKEN, None).await;
    assert_eq!(status, 503, "{reply}");
    assert_eq!(
        reply["error"],
        "all 1 handler slots stayed busy for 300ms; retry later"
    );
    // Kept until a later delivery of it is handled.
    assert_eq!(letters.pending(), 1);
    // The held one is still running, and then succeeds.
    assert_eq!(h.now.load(Ordering::SeqCst), 1);
    h.release.add_permits(10);
    let (status, reply) = hold.await.unwrap();
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    // Kustomer's retry runs: the refused delivery was not marked done.
    let (status, reply) = s.deliver(&waiting, TOKEN, None).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    assert_eq!(h.started.load(Ordering::SeqCst), 2);
    assert_eq!(letters.pending(), 0);
    assert_eq!(s.counters.failed.load(Ordering::SeqCst), 1);
}

/// A revision store whose first `record_revision` fails.
#[derive(Default)]
struct FailsToRecordOnce {
    revisions: kustomer_webhooks::dedupe::OrderingGuard,
    records: AtomicUsize,
}

impl kustomer_webhooks::dedupe::RevisionStore for FailsToRecordOnce {
    fn last_revision<'a>(
        &'a self,
        resource_id: &'a str,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, Option<i64>> {
        self.revisions.last_revision(resource_id)
    }
    fn record_revision<'a>(
        &'a self,
        resource_id: &'a str,
        rev: i64,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, ()> {
        if self.records.fetch_add(1, Ordering::SeqCst) == 0 {
            return Box::pin(async {
                Err(kustomer_webhooks::dedupe::StoreError::unavailable(
                    "connection refused",
                ))
            });
        }
        self.revisions.record_revision(resource_id, rev)
    }
}

/// A handled update whose revision the store failed to record: recorded on
/// a later try, so that an older update arriving after is still stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_the_store_failed_to_record_is_recorded_later() {
    let store = Arc::new(FailsToRecordOnce::default());
    let s = start_with(Verifier::new(TOKEN), {
        let store = store.clone();
        |r| r.with_ordering(store)
    })
    .await;
    let newer = variant("kustomer.customer.update", 1, Some(5));
    assert_eq!(
        s.deliver(&newer, TOKEN, None).await.1["outcome"],
        "no handler"
    );
    let mut tries = 0;
    while store.records.load(Ordering::SeqCst) < 2 && tries < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tries += 1;
    }
    let older = variant("kustomer.customer.update", 2, Some(4));
    assert_eq!(s.deliver(&older, TOKEN, None).await.1["outcome"], "stale");
}

/// A revision store sharing turns whose first `give_turn` never answers:
/// it counts the calls.
#[derive(Default)]
struct StuckGiveBack {
    revisions: kustomer_webhooks::dedupe::OrderingGuard,
    give_backs: AtomicUsize,
}

impl kustomer_webhooks::dedupe::RevisionStore for StuckGiveBack {
    fn last_revision<'a>(
        &'a self,
        resource_id: &'a str,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, Option<i64>> {
        self.revisions.last_revision(resource_id)
    }
    fn record_revision<'a>(
        &'a self,
        resource_id: &'a str,
        rev: i64,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, ()> {
        self.revisions.record_revision(resource_id, rev)
    }
    fn take_turn<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, kustomer_webhooks::dedupe::SharedTurn> {
        Box::pin(async { Ok(kustomer_webhooks::dedupe::SharedTurn::Taken("t".to_owned())) })
    }
    fn give_turn<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> kustomer_webhooks::dedupe::StoreFuture<'a, ()> {
        if self.give_backs.fetch_add(1, Ordering::SeqCst) == 2 {
            // The stale update's: stuck.
            return Box::pin(std::future::pending());
        }
        Box::pin(async { Ok(()) })
    }
    fn shares_turns(&self) -> bool {
        true
    }
}

/// A delivery dropped while its shared turn is being given back (a caller
/// of `receive` that stops waiting) still gives the turn back, by a task
/// of its own, rather than leaving it held until its hold ends.
#[tokio::test]
async fn a_turn_whose_give_back_is_dropped_is_still_given_back() {
    use kustomer_webhooks::receiver::Request;
    let store = Arc::new(StuckGiveBack::default());
    let dispatcher = Dispatcher::builder().build().unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_ordering(store.clone())
        .with_timeout(Duration::from_secs(30));
    let deliver = |body: Vec<u8>| {
        let receiver = &receiver;
        async move {
            let signature = sign(TOKEN.as_bytes(), &body);
            receiver
                .receive(Request {
                    method: "POST",
                    header: |name| match name {
                        "x-kustomer-webhook-signature" => Some(signature.as_bytes()),
                        "content-type" => Some(b"application/json"),
                        _ => None,
                    },
                    body: &body,
                })
                .await
        }
    };
    // Handled (a turn taken and given back), then an older one: stale, its
    // turn's give-back stuck, and the delivery dropped.
    assert_eq!(
        deliver(variant("kustomer.customer.update", 1, Some(5)))
            .await
            .outcome,
        "no handler"
    );
    assert_eq!(store.give_backs.load(Ordering::SeqCst), 1);
    assert_eq!(
        deliver(variant("kustomer.customer.update", 2, Some(6)))
            .await
            .outcome,
        "no handler"
    );
    let stale = deliver(variant("kustomer.customer.update", 3, Some(4)));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stale)
            .await
            .is_err()
    );
    // Given back again, by the turn dropped.
    for _ in 0..200 {
        if store.give_backs.load(Ordering::SeqCst) == 4 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "given back {} times",
        store.give_backs.load(Ordering::SeqCst)
    );
}

/// A body in many pieces is read into one buffer, whatever their number up
/// to `MAX_BODY_PIECES`; past it, the body is refused (400) rather than read
/// a byte at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_pieces_is_read_whole_up_to_the_most_pieces() {
    use kustomer_webhooks::axum::MAX_BODY_PIECES;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    let post = async |body: &[u8]| {
        let signature = sign(TOKEN.as_bytes(), body);
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /kustomer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             X-Kustomer-Webhook-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n"
        );
        let mut sent = head.into_bytes();
        for byte in body {
            sent.extend_from_slice(b"1\r\n");
            sent.push(*byte);
            sent.extend_from_slice(b"\r\n");
        }
        sent.extend_from_slice(b"0\r\n\r\n");
        // Written as the server reads, which may answer before the end.
        let _ = stream.write_all(&sent).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    // A byte a chunk: about 2 KB, well under the most pieces.
    let body = variant("kustomer.team.update", 91, None);
    assert!(body.len() < MAX_BODY_PIECES);
    let answer = post(&body).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("\"handled\""), "{answer}");
    // The same event with white space after it, past the most pieces.
    let mut padded = variant("kustomer.team.update", 92, None);
    padded.resize(MAX_BODY_PIECES + 1, b' ');
    let answer = post(&padded).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("pieces"), "{answer}");
    assert_eq!(s.count.load(Ordering::SeqCst), 1);
}

/// A transfer coding besides `chunked` (`gzip, chunked`) is refused with
/// 501, as RFC 9112 says of one the server does not undo, rather than the
/// body read as if it were not there, on one line or on a second;
/// `chunked` alone is read as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_coding_other_than_chunked_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start(Verifier::new(TOKEN)).await;
    let body = variant("kustomer.team.update", 77, None);
    let signature = sign(TOKEN.as_bytes(), &body);
    for (lines, status) in [
        (&["gzip, chunked"][..], "501"),
        (&["chunked", "gzip, chunked"], "501"),
        (&["chunked"], "200"),
    ] {
        let codings: String = lines
            .iter()
            .map(|line| format!("Transfer-Encoding: {line}\r\n"))
            .collect();
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /kustomer HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             X-Kustomer-Webhook-Signature: {signature}\r\n{codings}\
             Connection: close\r\n\r\n{:x}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{lines:?}: {answer}"
        );
        if status == "501" {
            assert!(answer.contains("\\\"gzip, chunked\\\""), "{answer}");
        }
    }
    // Refusals, not a handler's failure.
    assert_eq!(s.counters.rejected.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.failed.load(Ordering::SeqCst), 0);
}
