//! `kustomer_webhooks::testing`: sample deliveries for a service's own
//! tests, given to a receiver directly and to its router as a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::testing::{Delivery, NoSample, sample, samples};
use kustomer_webhooks::verify::{EVENT_HEADER, SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{CustomerUpdate, Dispatcher, State, parse};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn on_update(event: CustomerUpdate, seen: State<Arc<AtomicUsize>>) {
    assert_eq!(event.data.attributes.name.as_deref(), Some("Ada"));
    seen.fetch_add(1, Ordering::SeqCst);
}

fn receiver(seen: &Arc<AtomicUsize>) -> Receiver {
    let dispatcher = Dispatcher::with_state(seen.clone())
        .handler(on_update)
        .build()
        .unwrap();
    Receiver::new(
        dispatcher,
        Verifier::new("t0ken").with_header("x-app-secret", "s3cret"),
    )
}

fn json_of(d: &Delivery) -> Value {
    serde_json::from_slice(&d.body()).unwrap()
}

#[test]
fn every_sample_is_there_and_parses_as_its_event() {
    let all: Vec<_> = samples().collect();
    assert_eq!(all.len(), 10);
    for (event, text) in all {
        assert_eq!(sample(event), Some(text));
        let body = Delivery::sample(event).unwrap().body();
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.event.name().as_str(), event);
        assert!(parsed.drift().is_empty(), "{event}");
    }
    assert_eq!(sample("kustomer.customer.delete"), None);
}

#[test]
fn an_event_without_a_sample_is_an_error_that_suggests_the_nearest() {
    let e = Delivery::sample("kustomer.custmer.update").unwrap_err();
    assert_eq!(
        e,
        NoSample {
            event: "kustomer.custmer.update".into(),
            suggestion: Some("kustomer.customer.update"),
        }
    );
    let text = e.to_string();
    assert!(
        text.starts_with(
            "no sample of \"kustomer.custmer.update\" (did you mean \"kustomer.customer.update\"?); \
             the samples are of kustomer.conversation.create, "
        ),
        "{text}"
    );
    let e = Delivery::sample("nothing").unwrap_err().to_string();
    assert!(
        e.starts_with("no sample of \"nothing\"; the samples"),
        "{e}"
    );
    // A known event Kustomer published no sample of is said to be one, not
    // taken for a misspelt other (`tag` is close to `team`).
    let e = Delivery::sample("kustomer.tag.create").unwrap_err();
    assert_eq!(e.suggestion, None);
    assert!(
        e.to_string().starts_with(
            "no sample of \"kustomer.tag.create\" (a known event, but Kustomer published no \
             sample of it: build its body, and use Delivery::from_body)"
        ),
        "{e}"
    );
    // A misspelt name gets the closest known event, not the first close one,
    // and is told when that one has no sample either.
    let e = Delivery::sample("kustomer.tags.create").unwrap_err();
    assert_eq!(e.suggestion, Some("kustomer.tag.create"));
    assert!(
        e.to_string().starts_with(
            "no sample of \"kustomer.tags.create\" (did you mean \"kustomer.tag.create\"? \
             Kustomer published no sample of it: build its body, and use Delivery::from_body); "
        ),
        "{e}"
    );
}

/// A sample is sent as published, in Kustomer's order of keys, until it is
/// changed.
#[test]
fn a_sample_is_sent_as_its_published_text_until_changed() {
    for (event, text) in samples() {
        let d = Delivery::sample(event).unwrap().signed_with("t0ken");
        assert_eq!(d.body(), text.as_bytes(), "{event}");
        let changed = d.set("/data/attributes/rev", 9);
        let v = json_of(&changed);
        assert_eq!(v["data"]["attributes"]["rev"], 9, "{event}");
    }
}

#[test]
fn changes_by_json_pointer() {
    let d = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .set("/data/attributes/rev", 7)
        // A new key of an existing object.
        .set("/data/attributes/nickname", "Ada")
        // Longer or shorter than a key beside it: a key of its own, as
        // Kustomer sends `deletedAt` beside `deleted`.
        .set("/data/attributes/deletedAt", "2024-01-01T00:00:00.000Z")
        .set("/data/ids", json!([]))
        // Missing objects on the way are made, when asked.
        .set_creating("/data/attributes/custom/tierStr", "gold")
        .set_creating("/new/a~1b/c~0d", true)
        // A step through a string replaces it with an object.
        .set_creating("/data/type/inner", 1)
        .remove("/data/relationships")
        .remove("/not/there");
    let v = json_of(&d);
    assert_eq!(v["data"]["attributes"]["rev"], 7);
    assert_eq!(v["data"]["attributes"]["nickname"], "Ada");
    assert_eq!(
        v["data"]["attributes"]["deletedAt"],
        "2024-01-01T00:00:00.000Z"
    );
    assert_eq!(v["data"]["ids"], json!([]));
    assert_eq!(v["data"]["attributes"]["custom"]["tierStr"], "gold");
    assert_eq!(v["new"]["a/b"]["c~d"], true);
    assert_eq!(v["data"]["type"], json!({"inner": 1}));
    assert!(v["data"].get("relationships").is_none());
    // The rest is the sample's.
    let original: Value =
        serde_json::from_str(sample("kustomer.customer.update").unwrap()).unwrap();
    assert_eq!(v["id"], original["id"]);
    assert_eq!(
        v["data"]["attributes"]["name"],
        original["data"]["attributes"]["name"]
    );

    // Arrays: an index in range, `-` appends, anything else makes an object.
    let d = Delivery::from_body(r#"{"a": [1, 2]}"#)
        .set("/a/0", "x")
        .set("/a/-", 3)
        .set("/a/3", 4)
        .set_creating("/b/-", 4)
        .remove("/a/1");
    assert_eq!(json_of(&d), json!({"a": ["x", 3, 4], "b": {"-": 4}}));
    // Creating: an index past the end lengthens the array; a step that is
    // not an index is a key.
    let d = Delivery::from_body(r#"{"a": [], "b": [1]}"#)
        .set_creating("/a/0", "x")
        .set_creating("/b/3", 4)
        .set_creating("/b/+1", 5);
    assert_eq!(json_of(&d), json!({"a": ["x"], "b": {"+1": 5}}));
    let d = Delivery::from_body(r#"{"b": [1]}"#).set_creating("/b/3", 4);
    assert_eq!(json_of(&d), json!({"b": [1, null, null, 4]}));
    // The empty pointer is the whole body; a body that is not JSON becomes
    // what is set, when creating.
    assert_eq!(
        json_of(&Delivery::from_body("{").set("", json!([1]))),
        json!([1])
    );
    assert_eq!(
        json_of(&Delivery::from_body("{").set_creating("/x", 1)),
        json!({"x": 1})
    );
    // A byte order mark before a captured body is read past.
    let d = Delivery::from_body(b"\xEF\xBB\xBF{\"id\": \"a\", \"n\": 1}".to_vec()).set("/id", "b");
    assert_eq!(json_of(&d), json!({"id": "b", "n": 1}));
}

/// `set` refuses a pointer that leads nowhere, saying where it stops: a
/// misspelt key would otherwise send the sample unchanged, and the test
/// pass for the wrong reason.
#[test]
fn set_refuses_a_pointer_that_leads_nowhere() {
    fn refused(pointer: &str, body: &str) -> String {
        let body = body.to_owned();
        let pointer = pointer.to_owned();
        let panic = std::panic::catch_unwind(move || {
            Delivery::from_body(body).set(&pointer, 1);
        })
        .expect_err("set panics");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }
    let sample = sample("kustomer.customer.update").unwrap();
    for (pointer, body, want) in [
        (
            "/data/attribute/rev",
            sample,
            "Delivery::set(\"/data/attribute/rev\"): `/data/attribute` does not exist; did you \
             mean `/data/attributes`?; to make it, use set_creating",
        ),
        (
            "/data/attributes/name/first",
            sample,
            "`/data/attributes/name` is a string, which has no `first`",
        ),
        (
            "/a/5",
            r#"{"a": [1]}"#,
            "`/a/5` is past the end of `/a`, which has 1 item(s)",
        ),
        (
            "/a/x/y",
            r#"{"a": [1]}"#,
            "`/a/x`: an array's step is an index",
        ),
        // A last step that is an existing key misspelt would add a key
        // beside it, and leave the one meant as it was.
        (
            "/data/attributes/Rev",
            sample,
            "`/data/attributes/Rev` would be a new key beside `/data/attributes/rev`, which it \
             differs from by case or a typo; did you mean `/data/attributes/rev`? (a new key of \
             its own: use set_creating)",
        ),
        (
            "/data/attributes/nmae",
            sample,
            "did you mean `/data/attributes/name`?",
        ),
        (
            "/data/attributes/dsiplayNmae",
            sample,
            "did you mean `/data/attributes/displayName`?",
        ),
        ("/x/y", "{", "the body is not JSON"),
        ("x", "{}", "a JSON Pointer starts with `/`"),
    ] {
        let said = refused(pointer, body);
        assert!(said.contains(want), "{pointer}: {said}");
    }
}

#[tokio::test]
async fn a_delivery_is_the_typed_event_its_handler_takes_called_directly() {
    let update = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .set("/data/attributes/rev", 42);
    let event: CustomerUpdate = update.event();
    assert_eq!(event.data.attributes.rev, Some(42));
    // Drift is the handler's to see, as it would be through a receiver.
    let drifted: CustomerUpdate = update.clone().set("/data/attributes/rev", "43").event();
    assert_eq!(drifted.data.attributes.rev, None);
    assert_eq!(kustomer_webhooks::Envelope::rev(&drifted.0), Some(43));
    // The whole set, and an event without a model, taken as a handler would.
    let any: kustomer_webhooks::AnyEvent = update.event();
    assert_eq!(any.name(), "kustomer.customer.update");
    let tag = Delivery::from_body(r#"{"name":"kustomer.tag.create","data":{"id":"t1"}}"#);
    let other: kustomer_webhooks::OtherEvent = tag.event();
    assert_eq!(other.name, "kustomer.tag.create");
    // A handler called with its event, no receiver in between.
    let seen = Arc::new(AtomicUsize::new(0));
    let ada = update.set("/data/attributes/name", "Ada");
    on_update(ada.event(), State(Arc::clone(&seen))).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn a_delivery_that_is_not_the_event_asked_for_panics_saying_why() {
    fn refused(delivery: Delivery) -> String {
        let panic = std::panic::catch_unwind(move || {
            let _: CustomerUpdate = delivery.event();
        })
        .expect_err("event panics");
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    }
    let create = Delivery::sample("kustomer.customer.create").unwrap();
    let said = refused(create);
    assert!(
        said.contains("the delivery is kustomer.customer.create"),
        "{said}"
    );
    assert!(said.contains("CustomerUpdate does not take"), "{said}");
    let said = refused(Delivery::from_body(
        r#"{"name":"kustomer.customer.update","data":[1]}"#,
    ));
    assert!(
        said.contains("not an event a receiver dispatches"),
        "{said}"
    );
    assert!(said.contains("/data"), "{said}");
    // The header's name and the body's must agree, as in a receiver.
    let mismatched = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .event_header(Some("kustomer.customer.create"));
    let said = refused(mismatched);
    assert!(
        said.contains("not an event a receiver dispatches"),
        "{said}"
    );
}

#[test]
fn a_body_given_as_bytes_is_sent_as_it_is_and_signed_over_them() {
    let raw = b"{ \"name\" : \"kustomer.team.create\" }\n".to_vec();
    let d = Delivery::from_body(raw.clone()).signed_with("t0ken");
    assert_eq!(d.body(), raw);
    let headers = d.headers();
    assert_eq!(
        headers,
        [
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "x-kustomer-webhook-signature".to_owned(),
                sign(b"t0ken", &raw)
            ),
        ]
    );
    // Changed, it is sent as compact JSON, and signed over that.
    let changed = d.set("/id", "x");
    let body = changed.body();
    assert_eq!(body, br#"{"id":"x","name":"kustomer.team.create"}"#);
    assert_eq!(changed.headers()[1].1, sign(b"t0ken", &body));
    // Debug never shows the token.
    let debug = format!("{changed:?}");
    assert!(
        !debug.contains("t0ken") && debug.contains("signed: true"),
        "{debug}"
    );
}

#[tokio::test]
async fn deliveries_get_every_status_of_the_contract_from_a_receiver() {
    let seen = Arc::new(AtomicUsize::new(0));
    let receiver = receiver(&seen);
    let update = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .set("/data/attributes/name", "Ada")
        .header("X-App-Secret", "s3cret")
        .signed_with("t0ken");
    let status = async |d: &Delivery| {
        let reply = d.deliver_to(&receiver).await;
        (reply.status, reply.outcome)
    };
    assert_eq!(status(&update).await, (200, "handled"));
    assert_eq!(status(&update).await, (200, "duplicate"));
    assert_eq!(status(&update.clone().fresh_id()).await, (200, "handled"));
    // A secret read from a file, its line break with it: as over HTTP, the
    // value arrives without it.
    let from_a_file = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .fresh_id()
        .set("/data/attributes/name", "Ada")
        .header("X-App-Secret", "s3cret\n")
        .signed_with("t0ken");
    assert_eq!(status(&from_a_file).await, (200, "handled"));
    // No handler for this one: acknowledged.
    let team = Delivery::sample("kustomer.team.create")
        .unwrap()
        .header("x-app-secret", "s3cret")
        .signed_with("t0ken");
    assert_eq!(status(&team).await, (200, "no handler"));
    // Refusals.
    let forged = update.clone().fresh_id().signed_with("guess");
    assert_eq!(status(&forged).await, (401, "error"));
    let malformed = update.clone().signature("not hex");
    assert_eq!(status(&malformed).await, (401, "error"));
    let no_secret = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .signed_with("t0ken");
    assert_eq!(status(&no_secret).await, (401, "error"));
    let text = update.clone().content_type(Some("text/plain"));
    assert_eq!(status(&text).await.0, 415);
    let not_an_event = Delivery::from_body("[1]")
        .header("x-app-secret", "s3cret")
        .signed_with("t0ken");
    let reply = not_an_event.deliver_to(&receiver).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    // The header names the event when the body does not.
    let unnamed = update
        .clone()
        .fresh_id()
        .remove("/name")
        .event_header(Some("kustomer.customer.update"));
    assert_eq!(status(&unnamed).await, (200, "handled"));
    assert_eq!(seen.load(Ordering::SeqCst), 4);
    let counters = receiver.counters();
    assert_eq!(counters.accepted.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn a_delivery_is_a_request_for_the_router_under_test() {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().nest_service(
        "/kustomer",
        kustomer_webhooks::axum::router(receiver(&seen)),
    );
    let update = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .set("/data/attributes/name", "Ada")
        .header("x-app-secret", "s3cret")
        .signed_with("t0ken");
    let response = app
        .clone()
        .oneshot(update.request("/kustomer"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["outcome"], "handled");
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    let forged = update.signed_with("guess").fresh_id();
    let response = app.oneshot(forged.request("/kustomer")).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// A receiver kept in an `Arc` serves behind the router and takes
/// deliveries directly too: one store, one set of counters.
#[tokio::test]
async fn the_router_and_a_test_share_one_receiver() {
    let seen = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(receiver(&seen));
    let app = kustomer_webhooks::axum::router(Arc::clone(&shared));
    let update = Delivery::sample("kustomer.customer.update")
        .unwrap()
        .set("/data/attributes/name", "Ada")
        .header("x-app-secret", "s3cret")
        .signed_with("t0ken");
    let response = app.oneshot(update.request("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    // The retry, delivered directly: the router's receiver has seen it.
    assert_eq!(update.deliver_to(&shared).await.outcome, "duplicate");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(shared.counters().duplicate.load(Ordering::Relaxed), 1);
}

/// The headers a delivery sends itself are set by `header`, not sent twice;
/// renaming the event in the body renames it in the header that named it.
#[test]
fn headers_of_its_own_are_set_once_and_the_event_header_follows_name() {
    let d = Delivery::sample("kustomer.team.create")
        .unwrap()
        .header("Content-Type", "text/plain")
        .header("X-App", "1");
    let headers = d.headers();
    let types: Vec<_> = headers
        .iter()
        .filter(|(n, _)| n == "content-type")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(types, ["text/plain"]);
    // The headers it sends itself arrive trimmed too, as over HTTP.
    let trimmed = Delivery::sample("kustomer.team.create")
        .unwrap()
        .header("X-Kustomer-Webhook-Event", " kustomer.team.create\n")
        .header("content-type", "application/json ")
        .header("x-kustomer-webhook-signature", "\tabc ");
    let sent = trimmed.headers();
    for want in [
        ("content-type", "application/json"),
        (EVENT_HEADER, "kustomer.team.create"),
        (SIGNATURE_HEADER, "abc"),
    ] {
        assert!(
            sent.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{sent:?}"
        );
    }
    assert!(
        headers.contains(&("x-app".to_owned(), "1".to_owned())),
        "{headers:?}"
    );
    let renamed = Delivery::sample("kustomer.team.create")
        .unwrap()
        .set("/name", "kustomer.team.update");
    assert!(
        renamed
            .headers()
            .contains(&(EVENT_HEADER.to_owned(), "kustomer.team.update".to_owned())),
        "{:?}",
        renamed.headers()
    );
    // A header set on purpose to another name than the body's stays.
    let other = Delivery::sample("kustomer.team.create")
        .unwrap()
        .event_header(Some("kustomer.user.create"))
        .set("/name", "kustomer.team.update");
    assert!(
        other
            .headers()
            .contains(&(EVENT_HEADER.to_owned(), "kustomer.user.create".to_owned()))
    );
}
