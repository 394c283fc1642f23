//! Every seed sample parses into its typed event, without drift, and back.

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::{AnyEvent, EventName, parse};
use serde_json::Value;

#[test]
fn every_sample_parses_typed_without_drift_and_round_trips() {
    for (event, text) in SEED_SAMPLES {
        let parsed = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{event}: {e}"));
        assert!(parsed.event.is_typed(), "{event}");
        assert_eq!(parsed.event.name(), EventName::from(event));
        assert_eq!(parsed.event.name().as_str(), event);
        assert!(parsed.drift().is_empty(), "{event}: {:#?}", parsed.drift());
        let back = serde_json::to_value(&parsed.event).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, original, "{event} does not round-trip");
    }
}

#[test]
fn typed_values_are_reachable() {
    let (_, text) = SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == "kustomer.conversation.update")
        .unwrap();
    let parsed = parse(text.as_bytes()).unwrap();
    let AnyEvent::ConversationUpdate(e) = &parsed.event else {
        panic!("{:?}", parsed.event.name())
    };
    assert_eq!(e.data.attributes.status.as_deref(), Some("open"));
    assert_eq!(e.data.attributes.rev, Some(2));
    assert_eq!(
        e.data.attributes.created_at.as_ref().unwrap().to_string(),
        "2021-04-26T22:02:13.552Z"
    );
    let changes = e.changes.as_ref().unwrap();
    let rev = changes.attributes.rev.as_ref().unwrap();
    assert_eq!((rev.before, rev.after), (Some(1), Some(2)));
    assert_eq!(rev.op, Some(kustomer_webhooks::Op::Replace));
    let org = &e.data.relationships.org;
    assert_eq!(
        org.data.as_ref().unwrap().id.unwrap().as_str(),
        "5f8481c6a22ab5b9d5f2dd8a"
    );
}
