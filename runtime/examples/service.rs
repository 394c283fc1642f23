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
//! down, and claims ids in the process until it answers.
//!
//! With `DEAD_LETTERS_DIR` set, a delivery the service answers with a 5xx
//! is kept in that directory until a later delivery of it is handled, and
//! the events still there can be replayed with `send --url … DIR`.
//!
//! The receiver's counters (and the dead letters') are served at
//! `GET /metrics`, in Prometheus's text format. It listens on
//! `127.0.0.1:8080`, or `LISTEN_ADDR`; it logs to stderr (`RUST_LOG` is not
//! read: every line at `info` and above).
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The receiver logs rejections, failures and store outages with
    // `tracing`: without a subscriber, nothing shows them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let token =
        std::env::var("KUSTOMER_WEBHOOK_TOKEN").map_err(|_| "set KUSTOMER_WEBHOOK_TOKEN")?;
    if token.trim().is_empty() {
        // Every delivery would be refused, 401.
        return Err("KUSTOMER_WEBHOOK_TOKEN is empty: set it to the webhook's token".into());
    }
    let receiver = receiver(&token, Arc::default())?;
    #[cfg(feature = "redis")]
    let receiver = match std::env::var("REDIS_URL") {
        Ok(url) if std::env::var_os("REDIS_FAIL_OPEN").is_some_and(|v| v == "1") => {
            use kustomer_webhooks::dedupe::{FailOpen, RedisStore};
            let store = Arc::new(FailOpen::new(RedisStore::connect_lazy(&url)?));
            println!(
                "event ids and revisions are kept in Redis, or in the process while it is down"
            );
            // Replicas share the ordering guard's revisions too.
            receiver.with_store(Arc::clone(&store)).with_ordering(store)
        }
        Ok(url) => {
            let store = kustomer_webhooks::dedupe::RedisStore::connect(&url).await?;
            println!(
                "event ids and revisions are kept in Redis, with the prefix {:?}",
                store.prefix()
            );
            receiver.with_store(store.clone()).with_ordering(store)
        }
        Err(_) => receiver,
    };
    #[cfg(not(feature = "redis"))]
    if std::env::var_os("REDIS_URL").is_some() {
        eprintln!("REDIS_URL is not used: build with --features redis");
    }
    #[cfg(not(feature = "axum-tls"))]
    if std::env::var_os("TLS_CERT").is_some() {
        eprintln!("TLS_CERT is not used: build with --features axum-tls");
    }
    let letters = match std::env::var_os("DEAD_LETTERS_DIR") {
        Some(dir) => {
            let letters = kustomer_webhooks::dead_letters::DeadLetters::open(dir)?;
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
    let metrics = move || {
        let mut text = counters.prometheus();
        if let Some(letters) = &letters {
            text += &letters.prometheus();
        }
        text
    };
    // `/metrics` tells how many deliveries came and failed: keep it off the
    // public network (a proxy in front that forwards `/kustomer` alone).
    let app = axum::Router::new()
        .nest_service("/kustomer", kustomer_webhooks::axum::router(receiver))
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(metrics())),
        );
    // `LISTEN_ADDR=0.0.0.0:8080` in a container, where loopback is out of
    // reach.
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
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
    println!(
        "listening on {scheme}://{}/kustomer",
        listener.local_addr()?
    );
    server
        .serve(listener, app, kustomer_webhooks::axum::stop_signal())
        .await;
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
    let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) else {
        return Ok(server);
    };
    let tls = kustomer_webhooks::axum::Tls::from_pem_files(cert, key)?;
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
