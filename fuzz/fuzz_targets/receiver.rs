//! The whole delivery path: method, headers and body in, a reply out. Never
//! panics, answers with a status of the contract that fits the request, and
//! keeps de-duplication honest: a delivery that got 2xx is acknowledged again
//! when retried, and one whose handler failed runs again when retried.
//!
//! The first byte chooses the method, content type, signature and event
//! header; the rest is the body. Handler time is tokio's paused clock, so a
//! handler slower than its limit costs no real time.
#![no_main]

use std::time::Duration;

use kustomer_webhooks::dedupe::{MemoryStore, OrderingGuard};
use kustomer_webhooks::receiver::{Receiver, Reply, Request};
use kustomer_webhooks::verify::{EVENT_HEADER, SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{Dispatcher, TeamCreate, TeamUpdate, UserUpdate, parse, parse_as};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const TOKEN: &[u8] = b"token-2026";
const LIMIT: usize = 16 * 1024;

async fn ok(_: TeamUpdate) {}
async fn failing(_: TeamCreate) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("the database is down"))
}
async fn slow(_: UserUpdate) {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

fn receiver() -> Receiver {
    let dispatcher = Dispatcher::builder()
        .handler(ok)
        .handler(failing)
        .handler(slow)
        .build()
        .unwrap_or_else(|e| panic!("the handlers are distinct: {e}"));
    Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_store(MemoryStore::builder().max_entries(64).build())
        .with_ordering(OrderingGuard::new())
        .with_limit(LIMIT)
        .with_timeout(Duration::from_secs(1))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("a runtime: {e}"))
}

struct Delivery<'a> {
    method: &'static str,
    content_type: Option<&'static str>,
    signature: Option<String>,
    event: Option<String>,
    body: &'a [u8],
}

impl Delivery<'_> {
    async fn send(&self, receiver: &Receiver) -> Reply {
        receiver
            .receive(Request {
                method: self.method,
                header: |name| match name {
                    "content-type" => self.content_type.map(str::as_bytes),
                    SIGNATURE_HEADER => self.signature.as_deref().map(str::as_bytes),
                    EVENT_HEADER => self.event.as_deref().map(str::as_bytes),
                    _ => None,
                },
                body: self.body,
            })
            .await
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let body_name = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_owned));
    let delivery = Delivery {
        method: ["POST", "POST", "GET", "put"][usize::from(flags & 0b11)],
        content_type: [
            Some("application/json"),
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("text/plain"),
        ][usize::from((flags >> 2) & 0b11)],
        signature: match (flags >> 4) & 0b11 {
            0 | 1 => Some(sign(TOKEN, body)),
            2 => Some(sign(b"another token", body)),
            _ => None,
        },
        event: match flags >> 6 {
            0 | 3 => body_name.clone(),
            1 => None,
            _ => Some("kustomer.team.create".to_owned()),
        },
        body,
    };
    let receiver = receiver();
    let rt = runtime();
    let reply = rt.block_on(delivery.send(&receiver));
    let status = reply.status;

    let body_json: Value = serde_json::from_str(&reply.body())
        .unwrap_or_else(|e| panic!("the reply body is JSON: {e}"));
    assert!(body_json.get("outcome").is_some(), "{body_json}");
    assert_eq!(
        reply.error.is_some(),
        reply.outcome == "error",
        "an error is given exactly for the outcome `error`: {body_json}"
    );

    let expected_refusal = if delivery.method != "POST" {
        Some(405)
    } else if delivery.content_type == Some("text/plain") {
        Some(415)
    } else if body.len() > LIMIT {
        Some(413)
    } else if (flags >> 4) & 0b11 >= 2 {
        Some(401)
    } else {
        None
    };
    // What an adapter's check before the body is read says agrees.
    let screened = receiver.screen(delivery.method, delivery.content_type.map(str::as_bytes));
    assert_eq!(
        screened.map(|r| r.status),
        expected_refusal.filter(|s| matches!(s, 405 | 415)),
        "{body_json}"
    );
    if let Some(expected) = expected_refusal {
        assert_eq!(status, expected, "{body_json}");
        return;
    }
    let parsed_ok = match &delivery.event {
        Some(name) => parse_as(body, name).is_ok(),
        None => parse(body).is_ok(),
    };
    if !parsed_ok {
        assert_eq!(status, 400, "a body that is not an event: {body_json}");
        return;
    }
    assert!(
        matches!(status, 200 | 500 | 503),
        "a verified event got {status}: {body_json}"
    );
    // Kustomer retries anything but 2xx; a retry of a 2xx is acknowledged.
    let retry = rt.block_on(delivery.send(&receiver));
    match status {
        200 => assert_eq!(retry.status, 200, "{:?}", retry),
        _ => assert_eq!(retry.status, status, "a failed event runs again: {retry:?}"),
    }
});
