//! A small service: two handlers written with `#[kustomer_webhook]`, shared
//! state, and the receiver mounted in an axum app.
//!
//! ```sh
//! KUSTOMER_WEBHOOK_TOKEN=secret cargo run -p kustomer-webhooks --features axum --example service
//! # elsewhere:
//! cargo run -- send --url http://127.0.0.1:8080/kustomer --token secret schema/samples
//! ```
//!
//! With the `redis` feature and `REDIS_URL` set, event ids are claimed in
//! Redis instead of in the process, so that replicas of the service share
//! de-duplication:
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379/ KUSTOMER_WEBHOOK_TOKEN=secret \
//!   cargo run -p kustomer-webhooks --features axum,redis --example service
//! ```
//!
//! With `--features axum-tls` and `TLS_CERT` and `TLS_KEY` set (a certificate
//! chain and its key, PEM), it serves HTTPS itself, as Kustomer posts,
//! reading the files again every hour:
//!
//! ```sh
//! TLS_CERT=tests/tls/server.pem TLS_KEY=tests/tls/server.key KUSTOMER_WEBHOOK_TOKEN=secret \
//!   cargo run -p kustomer-webhooks --features axum-tls --example service
//! # elsewhere:
//! cargo run -- send --url https://localhost:8080/kustomer --ca-cert tests/tls/ca.pem --token secret schema/samples
//! ```
//!
//! (With `--features axum,redis-tls`, `REDIS_URL` may also be a `rediss://`
//! URL: Redis over TLS, its certificate checked against the system's roots.)
//! With `REDIS_FAIL_OPEN=1` too, the service starts even while Redis is
//! down, and claims ids in the process until it answers; settings Redis
//! refuses (a wrong password) still stop it at start. `REDIS_PREFIX` sets
//! the prefix of its keys: replicas of one service share it, and each other
//! service on the same Redis needs its own, or one takes the other's events
//! for duplicates.
//!
//! With `DEAD_LETTERS_DIR` set, a delivery the service answers with a 5xx
//! is kept in that directory until a later delivery of it is handled, and
//! the events still there can be replayed with `send --url … DIR`.
//!
//! The receiver's counters, the server's (connections, failed TLS
//! handshakes, the certificate's dates), the dead letters' and, failing
//! open, whether Redis is taken to be down, are served at `GET /metrics`
//! in Prometheus's text format, on a listener of their own:
//! `127.0.0.1:9090`, or `METRICS_ADDR`. Deliveries are taken at
//! `/kustomer` on `127.0.0.1:8080`, or `LISTEN_ADDR`; any other path gets
//! a 404 saying where, counted and logged. It logs to stderr (`RUST_LOG` is
//! not read: every line at `info` and above). On Ctrl-C or SIGTERM it
//! finishes the deliveries in progress, tries once more the writes its
//! store failed after answering (5 s at most), and says what it did; a
//! second one ends it at once.
//!
//! Copied into a crate of your own, it needs `axum`, `tokio` (features
//! `macros`, `rt-multi-thread`, `net`, `signal`) and `tracing-subscriber`
//! beside `kustomer-webhooks`; its `#[cfg(feature = "…")]` lines name this
//! crate's features (`redis`, `axum-tls`, `testing`): keep the branch you
//! use and drop the line, or declare features of your own that turn the
//! library's on (`redis = ["kustomer-webhooks/redis"]`). Left as they are,
//! the branches compile out, and the tests with them.
//!
//! Its tests (at the end) deliver Kustomer's samples to the same receiver
//! with `kustomer_webhooks::testing` (feature `testing`):
//!
//! ```sh
//! cargo test -p kustomer-webhooks --features axum,testing --example service
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kustomer_webhooks::dedupe::OrderingGuard;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{ConversationEvent, CustomerUpdate, Dispatcher, State, kustomer_webhook};

/// What the handlers share.
#[derive(Default)]
struct Stats {
    conversations: AtomicU64,
}

#[kustomer_webhook]
async fn on_customer_update(event: CustomerUpdate) {
    let attributes = &event.data.attributes;
    println!(
        "customer {:?} is now at rev {:?}",
        attributes.name, attributes.rev
    );
    if let Some(rev) = event
        .changes
        .as_ref()
        .and_then(|c| c.attributes.rev.as_ref())
    {
        println!("  rev went {:?} -> {:?}", rev.before, rev.after);
    }
}

#[kustomer_webhook]
fn on_conversation(
    event: ConversationEvent,
    stats: State<Arc<Stats>>,
) -> Result<(), std::io::Error> {
    let n = stats.conversations.fetch_add(1, Ordering::Relaxed) + 1;
    println!(
        "conversation {:?} ({}), {n} so far",
        event.data.id,
        event.data.attributes.status.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// The service's receiver: every `#[kustomer_webhook]` function above,
/// deliveries signed with `token`, stale updates dropped.
fn receiver(token: &str, stats: Arc<Stats>) -> Result<Receiver, kustomer_webhooks::BuildError> {
    let dispatcher = Dispatcher::with_state(stats).registered().build()?;
    Ok(Receiver::new(dispatcher, Verifier::new(token)).with_ordering(OrderingGuard::new()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The receiver logs rejections, failures and store outages with
    // `tracing`: without a subscriber, nothing shows them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What goes wrong at start, said with the setting it comes from.
type Error = Box<dyn std::error::Error>;

/// Whether an environment variable is set to a yes (`1`, `true`, `yes`,
/// `on`, in any case).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        ["1", "true", "yes", "on"]
            .iter()
            .any(|yes| v.trim().eq_ignore_ascii_case(yes))
    })
}

async fn run() -> Result<(), Error> {
    let token = std::env::var("KUSTOMER_WEBHOOK_TOKEN")
        .map_err(|_| "set KUSTOMER_WEBHOOK_TOKEN to the webhook's token")?;
    // A token read from a file or a secret store often ends in a line
    // break; no token Kustomer gives starts or ends with white space.
    let token = token.trim();
    if token.is_empty() {
        // Every delivery would be refused, 401.
        return Err("KUSTOMER_WEBHOOK_TOKEN is empty: set it to the webhook's token".into());
    }
    let receiver = receiver(token, Arc::default())?;
    // Sources of `/metrics` lines besides the receiver's counters.
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut gauges: Vec<Box<dyn Fn() -> String + Send + Sync>> = Vec::new();
    #[cfg(feature = "redis")]
    let receiver = match std::env::var("REDIS_URL") {
        Ok(url) => {
            use kustomer_webhooks::dedupe::{FailOpen, RedisStore, StoreError};
            let redis = |e: StoreError| format!("REDIS_URL: {e}");
            // Services sharing a Redis each need a prefix of their own, or
            // one takes the other's events for duplicates; replicas of one
            // service share theirs.
            let prefix = std::env::var("REDIS_PREFIX").ok();
            let with_prefix = |store: RedisStore| match &prefix {
                Some(prefix) => store.with_prefix(prefix.as_str()),
                None => store,
            };
            if env_flag("REDIS_FAIL_OPEN") {
                let store = with_prefix(RedisStore::connect_lazy(&url).map_err(redis)?);
                // Down for now is what failing open is for; settings Redis
                // refuses (a wrong password) would fail every delivery.
                match store.ping().await {
                    Ok(()) | Err(StoreError::Unavailable(_)) => {}
                    Err(refused) => return Err(redis(refused).into()),
                }
                println!(
                    "event ids and revisions are kept in Redis (prefix {:?}), or in the process \
                     while it is down",
                    store.prefix()
                );
                let store = Arc::new(FailOpen::new(store));
                let open = Arc::clone(&store);
                gauges.push(Box::new(move || {
                    format!(
                        "# HELP kustomer_webhooks_fail_open_active Whether event ids are claimed \
                         in this process, the store taken to be down.\n\
                         # TYPE kustomer_webhooks_fail_open_active gauge\n\
                         kustomer_webhooks_fail_open_active {}\n",
                        u8::from(open.is_down())
                    )
                }));
                // Replicas share the ordering guard's revisions too.
                receiver.with_store(Arc::clone(&store)).with_ordering(store)
            } else {
                let store = with_prefix(RedisStore::connect(&url).await.map_err(redis)?);
                println!(
                    "event ids and revisions are kept in Redis, with the prefix {:?}",
                    store.prefix()
                );
                receiver.with_store(store.clone()).with_ordering(store)
            }
        }
        Err(_) => receiver,
    };
    #[cfg(not(feature = "redis"))]
    if std::env::var_os("REDIS_URL").is_some() {
        return Err(
            "REDIS_URL is set, but this build has no Redis: build with --features redis".into(),
        );
    }
    #[cfg(not(feature = "axum-tls"))]
    if std::env::var_os("TLS_CERT").is_some() || std::env::var_os("TLS_KEY").is_some() {
        return Err(
            "TLS_CERT or TLS_KEY is set, but this build has no TLS: build with --features axum-tls"
                .into(),
        );
    }
    let letters = match std::env::var_os("DEAD_LETTERS_DIR") {
        Some(dir) => {
            let letters = kustomer_webhooks::dead_letters::DeadLetters::open(dir)
                .map_err(|e| format!("DEAD_LETTERS_DIR: {e}"))?;
            println!(
                "deliveries that fail are kept in {} ({} waiting)",
                letters.dir().display(),
                letters.pending()
            );
            Some(letters)
        }
        None => None,
    };
    let receiver = match &letters {
        Some(letters) => receiver.with_dead_letters(letters.clone()),
        None => receiver,
    };
    let counters = receiver.counters();
    // Deliveries at `/kustomer`; a request to any other path gets a 404
    // that says where deliveries go, counted and logged (a webhook URL with
    // a wrong path shows here, not only in Kustomer's logs).
    let app = kustomer_webhooks::axum::router_at("/kustomer", receiver);
    // `LISTEN_ADDR=0.0.0.0:8080` in a container, where loopback is out of
    // reach.
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("LISTEN_ADDR {addr:?}: {e}"))?;
    // A time limit on request heads (30 s), at most 1,024 connections, and
    // on Ctrl-C or SIGTERM, deliveries in progress finish and are answered
    // before it exits.
    let server = kustomer_webhooks::axum::Server::new();
    #[cfg(feature = "axum-tls")]
    let server = with_tls(server)?;
    #[cfg(feature = "axum-tls")]
    let scheme = if server.tls().is_some() {
        "https"
    } else {
        "http"
    };
    #[cfg(not(feature = "axum-tls"))]
    let scheme = "http";
    // `/metrics` tells how many deliveries came and failed, and how the
    // server fares (connections, TLS handshakes that failed, the
    // certificate's dates): on a listener of its own, off the address
    // Kustomer posts to (`METRICS_ADDR=0.0.0.0:9090` for a scraper in a
    // container's network).
    let served = server.clone();
    let summary = Arc::clone(&counters);
    let metrics = move || {
        let mut text = counters.prometheus();
        text += &served.prometheus();
        if let Some(letters) = &letters {
            text += &letters.prometheus();
        }
        for gauge in &gauges {
            text += &gauge();
        }
        text
    };
    let metrics_addr =
        std::env::var("METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9090".to_owned());
    let metrics_listener = tokio::net::TcpListener::bind(&metrics_addr)
        .await
        .map_err(|e| format!("METRICS_ADDR {metrics_addr:?}: {e}"))?;
    println!(
        "metrics at http://{}/metrics",
        metrics_listener.local_addr()?
    );
    let metrics = Arc::new(metrics);
    let metrics_app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(metrics())),
    );
    tokio::spawn(async move { axum::serve(metrics_listener, metrics_app).await });
    println!(
        "listening on {scheme}://{}/kustomer",
        listener.local_addr()?
    );
    // A first Ctrl-C or SIGTERM stops taking connections and lets the
    // deliveries in progress finish; a second one ends the process at once
    // (those deliveries unanswered: Kustomer sends them again).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        kustomer_webhooks::axum::stop_signal().await;
        eprintln!("stopping: finishing the deliveries in progress (again to stop at once)");
        let _ = stop.send(());
        kustomer_webhooks::axum::stop_signal().await;
        eprintln!("stopping at once: the deliveries in progress are not answered");
        std::process::exit(130);
    });
    server
        .serve(listener, app, async move {
            let _ = stopped.await;
        })
        .await;
    eprintln!("stopped: {summary}");
    // Writes the store failed after a delivery was answered (a handled
    // event's id, an update's revision) are tried again in the background,
    // and end with the process: a last chance, then a warning.
    let left =
        kustomer_webhooks::receiver::finish_retried_writes(std::time::Duration::from_secs(5)).await;
    if left > 0 {
        eprintln!(
            "warning: {left} write(s) the store failed after their delivery was answered are \
             lost with the process: a retry of those events may be handled again"
        );
    }
    Ok(())
}

/// With `TLS_CERT` and `TLS_KEY` set (PEM files), HTTPS, the certificate
/// read again every hour so that a renewed one is served without a restart,
/// and a warning while it has under two weeks left (an expired certificate
/// fails every handshake, so no delivery arrives to show it).
#[cfg(feature = "axum-tls")]
fn with_tls(
    server: kustomer_webhooks::axum::Server,
) -> Result<kustomer_webhooks::axum::Server, Box<dyn std::error::Error>> {
    let (cert, key) = match (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        (Ok(cert), Ok(key)) => (cert, key),
        (Err(_), Err(_)) => return Ok(server),
        // Plain HTTP where HTTPS was meant: Kustomer's deliveries would fail.
        _ => return Err("TLS_CERT and TLS_KEY go together: set both, or neither".into()),
    };
    let tls = kustomer_webhooks::axum::Tls::from_pem_files(&cert, &key)
        .map_err(|e| format!("TLS_CERT {cert:?} and TLS_KEY {key:?}: {e}"))?;
    let check_dates = |tls: &kustomer_webhooks::axum::Tls| {
        let Some(validity) = tls.validity() else {
            return;
        };
        match validity.remaining(std::time::SystemTime::now()) {
            None => eprintln!("the TLS certificate has expired: renew it"),
            Some(left) if left.as_secs() < 14 * 86_400 => {
                eprintln!(
                    "the TLS certificate expires in {} hours: renew it",
                    left.as_secs() / 3600
                )
            }
            Some(_) => {}
        }
    };
    check_dates(&tls);
    tokio::spawn({
        let tls = tls.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                let reading = tls.clone();
                match tokio::task::spawn_blocking(move || reading.reload()).await {
                    Ok(Ok(true)) => println!("serving a renewed certificate"),
                    Ok(Err(e)) => eprintln!("keeping the certificate in use: {e}"),
                    _ => {}
                }
                check_dates(&tls);
            }
        }
    });
    Ok(server.with_tls(tls))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use kustomer_webhooks::testing::Delivery;

    #[tokio::test]
    async fn conversations_are_counted_once_each() {
        let stats = Arc::new(Stats::default());
        let receiver = receiver("t0ken", stats.clone()).unwrap();
        let create = Delivery::sample("kustomer.conversation.create")
            .unwrap()
            .signed_with("t0ken");
        let update = Delivery::sample("kustomer.conversation.update")
            .unwrap()
            .signed_with("t0ken");
        assert_eq!(create.deliver_to(&receiver).await.outcome, "handled");
        assert_eq!(update.deliver_to(&receiver).await.outcome, "handled");
        // Kustomer's retry of the first: not counted again.
        assert_eq!(create.deliver_to(&receiver).await.outcome, "duplicate");
        assert_eq!(stats.conversations.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_older_customer_update_is_stale_and_a_forgery_is_refused() {
        let receiver = receiver("t0ken", Arc::default()).unwrap();
        let update = |rev: i64| {
            Delivery::sample("kustomer.customer.update")
                .unwrap()
                .set("/data/attributes/rev", rev)
                .fresh_id()
                .signed_with("t0ken")
        };
        assert_eq!(update(5).deliver_to(&receiver).await.outcome, "handled");
        // Reordered: rev 4 arrives after rev 5.
        assert_eq!(update(4).deliver_to(&receiver).await.outcome, "stale");
        let forged = update(6).signed_with("guess");
        assert_eq!(forged.deliver_to(&receiver).await.status, 401);
    }
}
