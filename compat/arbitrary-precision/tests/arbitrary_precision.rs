//! `serde_json`'s `arbitrary_precision` feature, turned on by any crate of a
//! build, changes how every crate of it reads numbers. Inference and parsing
//! must still read numbers as numbers, and the published samples as without
//! it. (Like `serde_json` itself with the feature, both then take numbers
//! beyond an `f64`'s range, which a build without it refuses.)

use kustomer_schema::{Inferrer, SEED_SAMPLES};
use serde_json::Value;

/// The feature is on in this build (it keeps a number's text as written).
#[test]
fn the_feature_is_on() {
    let value: Value = serde_json::from_str("1.10").unwrap();
    assert_eq!(value.to_string(), "1.10");
}

#[test]
fn numbers_are_inferred_as_numbers() {
    let sample = r#"{"name":"kustomer.customer.update","data":{"type":"customer","id":"5f8481c6a22ab5b9d5f2dd8a","attributes":{"score":1.5,"big":123456789012345678901234,"rev":3,"nested":[{"n":-0.25}]}}}"#;
    let mut inferrer = Inferrer::default();
    inferrer.add_json(sample.as_bytes(), "sample.json").unwrap();
    let schema = &inferrer.schemas()["customer"];
    let attributes = serde_json::to_value(schema).unwrap();
    let text = attributes.to_string();
    assert!(!text.contains("serde_json::private"), "{text}");
    let find = |key: &str| -> Value {
        fn walk(v: &Value, key: &str) -> Option<Value> {
            match v {
                Value::Object(m) => m
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .cloned()
                    .or_else(|| m.values().find_map(|v| walk(v, key))),
                Value::Array(a) => a.iter().find_map(|v| walk(v, key)),
                _ => None,
            }
        }
        walk(&attributes, key).unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    assert_eq!(find("score")["type"], "number");
    assert_eq!(find("big")["type"], "number");
    assert_eq!(find("rev")["type"], "integer");
    assert_eq!(find("n")["type"], "number");
    // The published samples infer the same schemas as without the feature.
    let mut seeded = Inferrer::default();
    for (name, text) in SEED_SAMPLES {
        seeded.add_json(text.as_bytes(), name).unwrap();
    }
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schema/schemas/customer.json"
    ))
    .unwrap();
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        serde_json::to_value(&seeded.schemas()["customer"]).unwrap(),
        committed
    );
}

#[test]
fn every_sample_parses_typed_without_drift_and_reads_back_the_same() {
    for (name, text) in SEED_SAMPLES {
        let parsed = kustomer_webhooks::parse(text.as_bytes()).unwrap();
        assert!(parsed.event.is_typed(), "{name}");
        assert!(parsed.drift().is_empty(), "{name}: {:?}", parsed.drift());
        let sent: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&parsed.event).unwrap(), sent, "{name}");
    }
    // A drifted number is kept as it came.
    let body = br#"{"name":"kustomer.customer.update","id":"6087338a3c16f2a7c22a36aa","data":{"type":"customer","id":"5f8481c6a22ab5b9d5f2dd8a","attributes":{"rev":2.5,"score":1.10}}}"#;
    let parsed = kustomer_webhooks::parse(body).unwrap();
    let drift = parsed.drift();
    assert!(
        drift.iter().any(|d| d.pointer == "/data/attributes/rev"),
        "{drift:?}"
    );
    let back = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(back["data"]["attributes"]["rev"].to_string(), "2.5");
}
