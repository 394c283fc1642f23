//! The inferred schemas checked by an independent JSON Schema validator.

mod common;
use common::validator;

use std::path::Path;

use kustomer_schema::{Inferrer, SEED_SAMPLES, Settings, to_pretty};
use serde_json::Value;

fn seed_schemas() -> std::collections::BTreeMap<String, Value> {
    let mut inferrer = Inferrer::new(Settings::default());
    for (event, text) in SEED_SAMPLES {
        inferrer.add_json(text.as_bytes(), event).unwrap();
    }
    inferrer.schemas()
}

#[test]
fn every_sample_validates_against_its_resource_schema() {
    let schemas = seed_schemas();
    assert_eq!(schemas.len(), 5);
    for (event, text) in SEED_SAMPLES {
        let sample: Value = serde_json::from_str(text).unwrap();
        let resource = sample["data"]["type"].as_str().unwrap();
        let v = validator(&schemas[resource]);
        let errors: Vec<String> = v
            .iter_errors(&sample)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{event}: {errors:#?}");
    }
}

#[test]
fn the_schemas_reject_what_the_evidence_rules_out() {
    // The validator is not vacuous: a wrong type where every sample agreed
    // fails, and so does a missing required key.
    let schemas = seed_schemas();
    let v = validator(&schemas["customer"]);
    let mut sample: Value = serde_json::from_str(
        SEED_SAMPLES
            .iter()
            .find(|s| s.0 == "kustomer.customer.update")
            .unwrap()
            .1,
    )
    .unwrap();
    assert!(v.is_valid(&sample));
    sample["data"]["attributes"]["rev"] = "three".into();
    assert!(!v.is_valid(&sample));
    sample["data"]["attributes"]["rev"] = 3.into();
    sample["data"]["attributes"]["custom"]["ordersNum"] = "many".into();
    assert!(
        !v.is_valid(&sample),
        "a Num custom attribute holding a string"
    );
    sample["data"]["attributes"]["custom"]["ordersNum"] = 12.5.into();
    sample["data"]["attributes"]["custom"]["vipBool"] = 1.into();
    assert!(
        !v.is_valid(&sample),
        "an unseen Bool custom attribute is typed by its suffix"
    );
    sample["data"]["attributes"]["custom"]["vipBool"] = true.into();
    assert!(v.is_valid(&sample));
    sample["data"]["id"] = "not-an-id".into();
    assert!(!v.is_valid(&sample));
    sample["data"]["id"] = "608731c238e15a90895f7029".into();
    sample.as_object_mut().unwrap().remove("org");
    assert!(!v.is_valid(&sample));
}

#[test]
fn the_schemas_accept_unknown_keys_everywhere() {
    let schemas = seed_schemas();
    let v = validator(&schemas["message"]);
    let mut sample: Value = serde_json::from_str(SEED_SAMPLES[4].1).unwrap();
    sample["brandNew"] = 1.into();
    sample["data"]["attributes"]["meta"]["another"] = "x".into();
    sample["data"]["relationships"]["brandNew"] =
        serde_json::json!({"data": {"type": "widget", "id": "608731c238e15a90895f7029"}});
    sample["changes"] = serde_json::json!({
        "attributes": {"x": {"op": "move", "after": [1]}},
        "relationships": {"y": {"op": "add", "after": null}},
    });
    let errors: Vec<String> = v.iter_errors(&sample).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_committed_schemas_are_exactly_what_infer_produces() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"));
    let schemas = seed_schemas();
    let mut committed: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    committed.sort();
    let expected: Vec<String> = schemas.keys().map(|k| format!("{k}.json")).collect();
    assert_eq!(committed, expected);
    for (name, schema) in &schemas {
        let on_disk = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert!(
            on_disk == to_pretty(schema),
            "schema/schemas/{name}.json is stale: run `kustomer-webhooks infer`"
        );
    }
}

#[test]
fn the_schemas_are_themselves_valid_draft_07() {
    for (name, schema) in seed_schemas() {
        assert!(jsonschema::meta::is_valid(&schema), "{name}");
    }
}
