//! Properties that hold for any input, checked on generated JSON.

mod common;
use common::validator;

use kustomer_schema::{Inferrer, Settings, infer_values, to_pretty};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z ]{0,8}",
        "[0-9a-f]{24}",
        "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?Z",
        Just("2021-04-26T21:33:54.763Z".to_owned()),
    ]
}

/// Keys that reach every rule: envelope parts, relationships, links,
/// changes, custom attributes with and without suffixes.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("data".to_owned()),
        Just("type".to_owned()),
        Just("id".to_owned()),
        Just("links".to_owned()),
        Just("self".to_owned()),
        Just("meta".to_owned()),
        Just("attributes".to_owned()),
        Just("relationships".to_owned()),
        Just("custom".to_owned()),
        Just("changes".to_owned()),
        Just("op".to_owned()),
        Just("before".to_owned()),
        Just("after".to_owned()),
        "[a-z]{1,3}(Str|Txt|Num|At|Bool|Url|Id)?",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An event envelope whose every part (attributes, custom, relationships,
/// changes, unknown keys) is arbitrary JSON.
fn envelope() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["customer", "conversation", "team"]),
        prop::sample::select(vec!["create", "update"]),
        json_value(),
        prop::collection::btree_map("[a-z]{1,3}(Str|Num|At|Bool)?", json_value(), 0..4),
        prop::collection::btree_map("[a-z]{1,4}", json_value(), 0..3),
        prop::collection::btree_map("[a-z]{1,3}", json_value(), 0..3),
        json_value(),
        prop::option::of(json_value()),
    )
        .prop_map(
            |(resource, action, attrs, custom, rels, changed, extra, links)| {
                let mut attributes = match attrs {
                    Value::Object(m) => m,
                    other => Map::from_iter([("other".to_owned(), other)]),
                };
                attributes.insert("custom".into(), Value::Object(custom.into_iter().collect()));
                let changes: Map<String, Value> = changed
                    .into_iter()
                    .map(|(k, v)| (k, json!({"op": "replace", "before": null, "after": v})))
                    .collect();
                let mut data = json!({
                    "type": resource,
                    "id": "608731c238e15a90895f7029",
                    "attributes": attributes,
                    "relationships": Value::Object(rels.into_iter().collect()),
                });
                if let Some(links) = links {
                    data["links"] = links;
                }
                json!({
                    "id": "608731c238e15ad7655f702a",
                    "name": format!("kustomer.{resource}.{action}"),
                    "data": data,
                    "changes": {"attributes": changes, "relationships": {}},
                    "extra": extra,
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_inferred_schema_accepts_every_member(values in prop::collection::vec(json_value(), 1..6)) {
        let schema = infer_values(&values, &Settings::default());
        let v = validator(&schema);
        for value in &values {
            let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path())).collect();
            prop_assert!(errors.is_empty(), "{value}\n{schema:#}\n{errors:#?}");
        }
    }

    #[test]
    fn every_envelope_validates_against_its_resource_schema(samples in prop::collection::vec(envelope(), 1..6)) {
        let mut inferrer = Inferrer::default();
        for s in &samples {
            inferrer.add(s, "generated").unwrap();
        }
        let schemas = inferrer.schemas();
        for s in &samples {
            let schema = &schemas[s["data"]["type"].as_str().unwrap()];
            let errors: Vec<String> = validator(schema).iter_errors(s).map(|e| format!("{}: {e}", e.instance_path())).collect();
            prop_assert!(errors.is_empty(), "{s}\n{schema:#}\n{errors:#?}");
        }
    }

    #[test]
    fn inference_is_deterministic_and_order_independent(
        samples in prop::collection::vec(envelope(), 1..6),
        seed in any::<u64>(),
    ) {
        let render = |order: &[Value]| {
            let mut i = Inferrer::default();
            for s in order {
                i.add(s, "generated").unwrap();
            }
            i.schemas().values().map(to_pretty).collect::<Vec<_>>()
        };
        let mut shuffled = samples.clone();
        // A seeded rotation and reversal: a different order each case.
        let len = shuffled.len();
        shuffled.rotate_left((seed as usize) % len);
        if seed % 2 == 0 {
            shuffled.reverse();
        }
        let first = render(&samples);
        prop_assert_eq!(&first, &render(&samples));
        prop_assert_eq!(&first, &render(&shuffled));

        let values: Vec<Value> = samples.iter().map(|s| s["data"].clone()).collect();
        let mut reversed = values.clone();
        reversed.reverse();
        let settings = Settings::default();
        prop_assert_eq!(infer_values(&values, &settings), infer_values(&reversed, &settings));
    }
}
