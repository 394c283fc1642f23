//! Captured payloads → regenerated models → a handler reading the org's
//! typed custom attributes, fed a signed delivery over HTTP.

use std::sync::Arc;

use kustomer_webhooks::verify::{SIGNATURE_HEADER, sign};
use kustomer_webhooks::{DateTime, Events};
use kustomer_webhooks_example_org::{Crm, Loyalty, models, receiver};
use serde_json::{Value, json};

const TOKEN: &str = "org-token";

/// A customer update as this org's Kustomer sends it, with values none of
/// the captures had.
fn customer_update(id: &str, custom: Value) -> Vec<u8> {
    let captured = include_str!("../captured/6a1f00000000000000000001.json");
    let mut event: Value = serde_json::from_str(captured).unwrap();
    event["id"] = id.into();
    event["data"]["attributes"]["custom"] = custom;
    serde_json::to_vec(&event).unwrap()
}

async fn post(url: &str, body: Vec<u8>) -> (u16, Value) {
    let signature = sign(TOKEN.as_bytes(), &body);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_delivery_reaches_the_handler_with_the_orgs_typed_custom_fields() {
    let crm = Arc::new(Crm::default());
    let receiver = receiver(TOKEN, crm.clone()).unwrap();
    let app =
        axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/kustomer", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let body = customer_update(
        "6a1f000000000000000000ff",
        json!({"loyaltyTierStr": "platinum", "vipBool": true, "renewalAt": "2027-03-01T12:00:00Z"}),
    );
    let (status, reply) = post(&url, body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );

    let seen = crm.loyalty.lock().unwrap().clone();
    assert_eq!(
        seen,
        [Loyalty {
            customer: "608731c238e15a90895f7029".into(),
            tier: "platinum".into(),
            vip: true,
            renewal: DateTime::parse("2027-03-01T12:00:00Z"),
        }]
    );

    // A conversation asking for a refund, through the blocking handler.
    let captured = include_str!("../captured/6a1f00000000000000000101.json");
    let mut conversation: Value = serde_json::from_str(captured).unwrap();
    conversation["id"] = "6a1f000000000000000001ff".into();
    conversation["data"]["attributes"]["custom"] =
        json!({"orderNumberStr": "A-2001", "refundRequestedBool": true});
    let (status, reply) = post(&url, serde_json::to_vec(&conversation).unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(*crm.refunds.lock().unwrap(), ["A-2001"]);

    // An event no model covers reaches this set's `OtherEvent` handler.
    conversation["id"] = "6a1f000000000000000002ff".into();
    conversation["name"] = "kustomer.kobject.create".into();
    let (status, reply) = post(&url, serde_json::to_vec(&conversation).unwrap()).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("handled")),
        "{reply}"
    );
    assert_eq!(*crm.other.lock().unwrap(), ["kustomer.kobject.create"]);
}

#[test]
fn each_set_of_models_collects_only_its_own_handlers() {
    let crm = Arc::new(Crm::default());
    let ours = models::dispatcher_with_state(crm.clone())
        .registered()
        .build()
        .unwrap();
    assert_eq!(
        ours.events(),
        ["kustomer.conversation.create", "kustomer.customer.update"]
    );
    // The bundled models' dispatcher, in the same binary, takes its own
    // handler only.
    let bundled = kustomer_webhooks::Dispatcher::with_state(crm.clone())
        .registered()
        .build()
        .unwrap();
    assert_eq!(bundled.events(), ["kustomer.team.create"]);
    // With none of its own, it would answer every delivery "no handler": it
    // is not built, and says which set the handlers it found are of.
    let err = kustomer_webhooks::Dispatcher::with_state(crm)
        .registered_where(|path| !path.contains("::bundled::"))
        .build()
        .unwrap_err();
    let kustomer_webhooks::BuildError::OtherSet { handlers } = &err else {
        panic!("{err}");
    };
    assert_eq!(handlers.len(), 3, "{err}");
    for said in [
        "take events of another set (kustomer_webhooks_example_org::",
        "build the dispatcher of their set",
    ] {
        assert!(err.to_string().contains(said), "{err}");
    }
}

/// A handler written against the bundled models, in a binary whose
/// service uses its own: the bundled dispatcher takes it, the org's leaves
/// it out (with a warning that `kustomer.team.create` gets no handler).
mod bundled {
    #[kustomer_webhooks::kustomer_webhook]
    async fn on_bundled_team(_: kustomer_webhooks::TeamCreate) {}
}

#[test]
fn the_orgs_fields_are_typed_and_drift_is_reported_against_them() {
    let body = customer_update(
        "6a1f000000000000000000fe",
        json!({"loyaltyTierStr": "gold", "vipBool": "yes", "lifetimeValueNum": 12.5}),
    );
    let parsed = models::parse(&body).unwrap();
    let models::AnyEvent::CustomerUpdate(event) = &parsed.event else {
        panic!("a customer update: {:?}", parsed.event.name());
    };
    let custom = &event.data.attributes.custom;
    assert_eq!(custom.loyalty_tier_str.as_deref(), Some("gold"));
    assert_eq!(custom.vip_bool, None, "a string is not a boolean");
    let drift: Vec<String> = parsed.drift().iter().map(ToString::to_string).collect();
    assert_eq!(
        drift,
        ["/data/attributes/custom/vipBool: expected boolean, found string"]
    );
    // The bundled models know none of these fields: no drift there, and the
    // values only in `extra`.
    let bundled = kustomer_webhooks::parse(&body).unwrap();
    assert!(bundled.drift().is_empty());
    // Nothing is lost either way.
    let input: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(serde_json::to_value(&parsed.event).unwrap(), input);
    assert_eq!(serde_json::to_value(&bundled.event).unwrap(), input);
}

#[test]
fn every_capture_parses_typed_without_drift() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captured");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = models::parse(&body).unwrap();
        assert!(parsed.event.is_typed());
        assert!(parsed.drift().is_empty(), "{:?}", parsed.drift());
        count += 1;
    }
    assert_eq!(count, 4);
    assert!(<models::AnyEvent as Events>::TYPED.contains(&"kustomer.customer.update"));
}

/// A catch-all over the org's set: `models::AnyEvent` as a handler's
/// parameter gets the org's typed events that have no handler of their own;
/// the org's own handlers (`#[kustomer_webhook]`, found by `registered`) and
/// its `OtherEvent` handler keep theirs.
async fn catch_all(event: models::AnyEvent, crm: kustomer_webhooks::State<Arc<Crm>>) {
    if let Ok(mut other) = crm.other.lock() {
        other.push(format!("catch-all {}", event.name()));
    }
}

#[test]
fn a_catch_all_takes_the_orgs_typed_events_that_no_handler_of_its_own_takes() {
    let crm = Arc::new(Crm::default());
    let dispatcher = models::dispatcher_with_state(crm.clone())
        .registered()
        .handler(catch_all)
        .build()
        .unwrap();
    assert!(dispatcher.has_catch_all());
    let team = json!({
        "id": "6a1f000000000000000000fc", "name": "kustomer.team.create",
        "data": {"id": "6a1f000000000000000000fb", "type": "team", "attributes": {"name": "Ops"}}
    });
    let tag = json!({
        "id": "6a1f000000000000000000fa", "name": "kustomer.tag.create",
        "data": {"id": "6a1f000000000000000000f9", "type": "tag"}
    });
    let bodies = [
        customer_update(
            "6a1f000000000000000000fd",
            json!({"loyaltyTierStr": "silver"}),
        ),
        serde_json::to_vec(&team).unwrap(),
        serde_json::to_vec(&tag).unwrap(),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut handlers = Vec::new();
    for body in &bodies {
        match runtime.block_on(dispatcher.dispatch(body, None)).unwrap() {
            kustomer_webhooks::Dispatched::Handled { handler, .. } => handlers.push(handler),
            other => panic!("{other:?}"),
        }
    }
    assert!(handlers[0].ends_with("on_customer_update"), "{handlers:?}");
    assert!(handlers[1].ends_with("catch_all"), "{handlers:?}");
    assert!(handlers[2].ends_with("on_other"), "{handlers:?}");
    assert_eq!(crm.loyalty.lock().unwrap()[0].tier, "silver");
    assert_eq!(
        *crm.other.lock().unwrap(),
        ["catch-all kustomer.team.create", "kustomer.tag.create"]
    );
}
