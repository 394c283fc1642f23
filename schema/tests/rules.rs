//! One test per inference rule.

use kustomer_schema::{
    Error, Inferrer, SEED_SAMPLES, SampleProblem, Settings, infer_values, lone_surrogates_replaced,
    prune, stale,
};
use serde_json::{Value, json};

fn plain(values: &[Value]) -> Value {
    infer_values(values, &Settings::default().with_evidence(false))
}

/// A minimal envelope for `resource` with the given attributes.
fn envelope(resource: &str, attributes: Value) -> Value {
    json!({
        "id": "608731c238e15ad7655f702a",
        "name": format!("kustomer.{resource}.update"),
        "org": "5f8481c6a22ab5b9d5f2dd8a",
        "data": {"type": resource, "id": "608731c238e15a90895f7029", "attributes": attributes},
    })
}

fn kustomer(samples: &[Value]) -> std::collections::BTreeMap<String, Value> {
    let mut i = Inferrer::new(Settings::default().with_evidence(false));
    for (n, s) in samples.iter().enumerate() {
        i.add(s, &format!("sample {n}")).unwrap();
    }
    i.schemas()
}

fn seed() -> std::collections::BTreeMap<String, Value> {
    let mut i = Inferrer::default();
    for (event, text) in SEED_SAMPLES {
        i.add_json(text.as_bytes(), event).unwrap();
    }
    i.schemas()
}

#[test]
fn custom_attributes_are_typed_by_their_suffix_and_always_nullable() {
    let custom = json!({
        "aStr": null, "bTxt": null, "cNum": null, "dAt": null, "eBool": null, "fUrl": null,
        "gId": null, "noSuffix": null, "seenNum": 7
    });
    let s = kustomer(&[envelope("customer", json!({"custom": custom}))]);
    let props =
        &s["customer"]["definitions"]["CustomerAttributes"]["properties"]["custom"]["properties"];
    assert_eq!(
        props["aStr"],
        json!({"type": ["null", "string"], "x-kustomer-suffix": "Str"})
    );
    assert_eq!(
        props["bTxt"],
        json!({"type": ["null", "string"], "x-kustomer-suffix": "Txt"})
    );
    assert_eq!(
        props["cNum"],
        json!({"type": ["null", "number"], "x-kustomer-suffix": "Num"})
    );
    assert_eq!(
        props["dAt"],
        json!({"type": ["null", "string"], "format": "date-time", "x-kustomer-suffix": "At"})
    );
    assert_eq!(
        props["eBool"],
        json!({"type": ["boolean", "null"], "x-kustomer-suffix": "Bool"})
    );
    assert_eq!(
        props["fUrl"],
        json!({"type": ["null", "string"], "x-kustomer-suffix": "Url"})
    );
    assert_eq!(
        props["gId"],
        json!({"type": ["null", "string"], "x-kustomer-suffix": "Id"})
    );
    // No suffix and never a value: no evidence, any JSON.
    assert_eq!(props["noSuffix"], json!({}));
    // Seen with a value and non-null: still nullable, and never required.
    assert_eq!(
        props["seenNum"],
        json!({"type": ["null", "number"], "x-kustomer-suffix": "Num"})
    );
    let custom = &s["customer"]["definitions"]["CustomerAttributes"]["properties"]["custom"];
    assert!(custom.get("required").is_none());
    // No known suffix, whatever the samples held: any JSON (Kustomer names
    // no type for it), so a null or another type later is no drift.
    let s = kustomer(&[
        envelope(
            "customer",
            json!({"custom": {"tier": "gold", "9lives": {"a": 1}, "self": 3}}),
        ),
        envelope(
            "customer",
            json!({"custom": {"tier": "silver", "9lives": {"a": 2}, "self": 4}}),
        ),
    ]);
    let custom = &s["customer"]["definitions"]["CustomerAttributes"]["properties"]["custom"];
    for key in ["tier", "9lives", "self"] {
        assert_eq!(custom["properties"][key], json!({}), "{key}");
    }
    assert!(custom.get("required").is_none(), "{custom}");
    // Custom attributes no sample showed are typed by suffix too.
    assert_eq!(
        custom["patternProperties"]["^.+Bool$"],
        json!({"type": ["boolean", "null"], "x-kustomer-suffix": "Bool"})
    );
}

#[test]
fn a_custom_value_against_its_suffix_widens_the_type() {
    let s = kustomer(&[
        envelope("customer", json!({"custom": {"ordersNum": "12"}})),
        envelope("customer", json!({"custom": {"ordersNum": 12}})),
    ]);
    let custom = &s["customer"]["definitions"]["CustomerAttributes"]["properties"]["custom"];
    let want = json!({"type": ["null", "number", "string"], "x-kustomer-suffix": "Num"});
    assert_eq!(custom["properties"]["ordersNum"], want);
    assert_eq!(custom["patternProperties"]["^.+Num$"], want);
}

#[test]
fn the_seed_custom_attributes_are_typed_though_all_null() {
    let s = seed();
    let custom = &s["customer"]["definitions"]["CustomerAttributes"]["properties"]["custom"];
    assert_eq!(
        custom["properties"]["lifetimeValueNum"]["type"],
        json!(["null", "number"])
    );
    assert_eq!(
        custom["properties"]["loyaltyStr"]["type"],
        json!(["null", "string"])
    );
    assert_eq!(custom["properties"]["lastOrderAt"]["format"], "date-time");
}

#[test]
fn objects_keyed_by_ids_are_maps_not_a_property_per_id() {
    let keyed = |ids: &[&str], n: i64| {
        let map: serde_json::Map<String, Value> = ids
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    json!({"n": n, "at": "2021-04-26T21:33:55.863Z"}),
                )
            })
            .collect();
        envelope(
            "customer",
            json!({"byId": map, "mixed": {"label": "x", "5f8481c6a22ab5b9d5f2dd8a": n}}),
        )
    };
    let s = kustomer(&[
        keyed(&["5f8481c6a22ab5b9d5f2dd8a", "608731c238e15a90895f7029"], 1),
        keyed(&["6087326fa8b1c7b07da5e5c9"], 2),
    ]);
    let props = &s["customer"]["definitions"]["CustomerAttributes"]["properties"];
    assert_eq!(
        props["byId"],
        json!({
            "type": "object",
            "patternProperties": {"^[0-9a-f]{24}$": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "n": {"type": "integer"}
                },
                "required": ["at", "n"]
            }}
        })
    );
    // Keys that are not ids stay properties beside them.
    assert_eq!(
        props["mixed"],
        json!({
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
            "patternProperties": {"^[0-9a-f]{24}$": {"type": "integer"}}
        })
    );
}

#[test]
fn an_integer_past_the_64_bit_signed_range_is_a_number() {
    let s = plain(&[json!({"big": 18446744073709551615u64, "small": 9223372036854775807i64})]);
    assert_eq!(s["properties"]["big"]["type"], "number");
    assert_eq!(s["properties"]["small"]["type"], "integer");
}

#[test]
fn schemas_of_resources_without_samples_are_pruned_and_files_of_ones_own_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut i = Inferrer::new(Settings::default().with_evidence(false));
    for (n, sample) in [
        envelope("team", json!({"a": 1})),
        envelope("tag", json!({"b": "x"})),
    ]
    .iter()
    .enumerate()
    {
        i.add(sample, &format!("sample {n}")).unwrap();
    }
    i.write(dir.path()).unwrap();
    std::fs::write(dir.path().join("notes.json"), r#"{"mine": true}"#).unwrap();
    // The tag's samples are gone.
    let team = kustomer(&[envelope("team", json!({"a": 1}))]);
    assert_eq!(
        stale(dir.path(), &team),
        [format!(
            "{}: no sample has this resource",
            dir.path().join("tag.json").display()
        )]
    );
    let removed = prune(dir.path(), &team).unwrap();
    assert_eq!(removed, [dir.path().join("tag.json")]);
    assert!(dir.path().join("notes.json").exists());
    assert!(dir.path().join("team.json").exists());
    assert!(
        stale(dir.path(), &team)
            .iter()
            .all(|s| !s.contains("no sample"))
    );
}

#[test]
fn null_only_fields_get_no_type() {
    let s = plain(&[json!({"a": null}), json!({"a": null})]);
    assert_eq!(s["properties"]["a"], json!({}));
    assert!(s.get("required").is_none());
    let seeded = seed();
    let user = &seeded["user"]["definitions"]["UserAttributes"]["properties"];
    assert_eq!(user["mobile"], json!({"x-kustomer-samples": 2}));
}

#[test]
fn empty_arrays_add_no_item_type() {
    let s = plain(&[json!({"a": [], "b": []}), json!({"a": [], "b": [1, 2]})]);
    assert_eq!(s["properties"]["a"], json!({"type": "array"}));
    assert_eq!(
        s["properties"]["b"],
        json!({"type": "array", "items": {"type": "integer"}})
    );
}

#[test]
fn missing_and_null_are_separate_facts() {
    let s = plain(&[
        json!({"always": 1, "sometimes": 1, "nullable": 1, "both": 1}),
        json!({"always": 2, "nullable": null}),
        json!({"always": 3, "nullable": 3, "both": null}),
    ]);
    let p = &s["properties"];
    assert_eq!(p["always"], json!({"type": "integer"}));
    assert_eq!(
        p["sometimes"],
        json!({"type": "integer"}),
        "missing: optional, not nullable"
    );
    assert_eq!(
        p["nullable"],
        json!({"type": ["integer", "null"]}),
        "null: nullable"
    );
    assert_eq!(p["both"], json!({"type": ["integer", "null"]}));
    assert_eq!(
        s["required"],
        json!(["always"]),
        "required only when always non-null"
    );
}

#[test]
fn conflicting_types_become_unions() {
    let s = plain(&[
        json!({"n": 1, "s": "x", "o": {"k": 1}, "a": [1]}),
        json!({"n": 2.5, "s": 3, "o": "flat", "a": [{"k": "v"}]}),
    ]);
    let p = &s["properties"];
    assert_eq!(
        p["n"],
        json!({"type": "number"}),
        "integer and float merge to number"
    );
    assert_eq!(p["s"], json!({"type": ["integer", "string"]}));
    assert_eq!(
        p["o"],
        json!({"type": ["object", "string"], "properties": {"k": {"type": "integer"}}, "required": ["k"]})
    );
    assert_eq!(
        p["a"]["items"],
        json!({"type": ["integer", "object"], "properties": {"k": {"type": "string"}}, "required": ["k"]})
    );
}

#[test]
fn arrays_of_objects_merge_their_items() {
    let s = plain(&[
        json!([{"a": 1, "b": 1}, {"a": 2}]),
        json!([{"a": 3, "c": "x"}]),
    ]);
    assert_eq!(
        s["items"],
        json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "string"}},
            "required": ["a"],
        })
    );
}

#[test]
fn dates_and_ids_are_recognised_only_when_every_value_is_one() {
    let s = plain(&[
        json!({"at": "2021-04-26T21:33:54.763Z", "id": "608731c238e15ad7655f702a", "mixed": "2021-04-26T21:33:54Z"}),
        json!({"at": "2021-04-26T21:33:54Z", "id": "5f8481c6a22ab5b9d5f2dd8a", "mixed": "soon"}),
    ]);
    let p = &s["properties"];
    assert_eq!(p["at"], json!({"type": "string", "format": "date-time"}));
    assert_eq!(p["id"], json!({"type": "string", "format": "kustomer-id"}));
    assert_eq!(p["mixed"], json!({"type": "string"}));
    let off = infer_values(
        &[json!({"at": "2021-04-26T21:33:54Z"})],
        &Settings::default().with_evidence(false).with_formats(false),
    );
    assert_eq!(off["properties"]["at"], json!({"type": "string"}));
}

#[test]
fn relationships_links_and_changes_share_one_definition() {
    let s = seed();
    let shared = ["Relationship", "Links", "ResourceIdentifier", "Change"];
    for name in shared {
        let first = &s["customer"]["definitions"][name];
        assert!(first.is_object(), "{name}");
        for (resource, schema) in &s {
            assert_eq!(&schema["definitions"][name], first, "{resource}: {name}");
        }
    }
    for (resource, schema) in &s {
        let prefix = {
            let mut c = resource.chars();
            c.next()
                .unwrap()
                .to_uppercase()
                .chain(c)
                .collect::<String>()
        };
        let rels = &schema["definitions"][format!("{prefix}Relationships")];
        for (key, rel) in rels["properties"].as_object().unwrap() {
            let text = rel.to_string();
            assert!(
                text.contains("#/definitions/Relationship\""),
                "{resource}.{key}: {text}"
            );
        }
        let data = &schema["definitions"][&prefix]["properties"];
        assert_eq!(data["links"]["$ref"], "#/definitions/Links", "{resource}");
        assert_eq!(
            data["attributes"]["$ref"],
            format!("#/definitions/{prefix}Attributes")
        );
    }
    let rel = &s["team"]["definitions"]["Relationship"];
    assert_eq!(rel["properties"]["links"]["$ref"], "#/definitions/Links");
    assert_eq!(
        rel["properties"]["data"]["$ref"],
        "#/definitions/ResourceIdentifier"
    );
    assert!(
        rel["properties"]["meta"].is_object(),
        "meta comes from the rule, not the samples"
    );
    assert!(
        rel.get("required").is_none(),
        "a relationship is some mix of its parts"
    );
    // A relationship only ever seen as null is still a relationship.
    let deleted_by = &s["team"]["definitions"]["TeamRelationships"]["properties"]["deletedBy"];
    assert_eq!(deleted_by["anyOf"][0]["$ref"], "#/definitions/Relationship");
    assert_eq!(deleted_by["anyOf"][1], json!({"type": "null"}));
    // `op` is an open string with the documented values as examples.
    let op = &s["user"]["definitions"]["Change"]["properties"]["op"];
    assert_eq!(op["type"], "string");
    assert!(op.get("enum").is_none());
    assert_eq!(op["examples"], json!(["add", "remove", "replace"]));
}

#[test]
fn repeated_shapes_become_named_definitions() {
    let s = seed();
    let customer = &s["customer"]["definitions"];
    let level = &customer["CustomerAttributes"]["properties"]["satisfactionLevel"];
    assert_eq!(
        level["properties"]["firstSatisfaction"]["$ref"],
        "#/definitions/CustomerSatisfaction"
    );
    assert_eq!(
        level["properties"]["lastSatisfaction"]["$ref"],
        "#/definitions/CustomerSatisfaction"
    );
    let conversation = &s["conversation"]["definitions"];
    let attrs = &conversation["ConversationAttributes"]["properties"];
    for key in [
        "firstDone",
        "firstResponse",
        "firstResponseSinceLastDone",
        "lastDone",
        "lastResponse",
    ] {
        assert_eq!(
            attrs[key]["$ref"], "#/definitions/ConversationMilestone",
            "{key}"
        );
    }
    // A shape seen once stays in place.
    assert!(attrs["lastMessageOut"]["properties"].is_object());
    // Shapes nested in a repeated shape are counted once, not once per copy.
    let nested = plain(&[json!({
        "a": {"inner": {"x": 1}},
        "b": {"inner": {"x": 1}},
    })]);
    let defs = nested["definitions"].as_object().unwrap();
    assert_eq!(defs.keys().collect::<Vec<_>>(), ["A"], "{nested:#}");
    assert!(
        defs["A"]["properties"]["inner"]["properties"]["x"].is_object(),
        "{nested:#}"
    );
    let off = infer_values(
        &[json!({"a": {"x": 1}, "b": {"x": 1}})],
        &Settings::default().with_shared_shapes(false),
    );
    assert!(off.get("definitions").is_none());
}

#[test]
fn changes_are_evidence_for_the_attribute_types() {
    // `custom` is null in both user samples, but a change shows it was `{}`.
    let s = seed();
    let custom = &s["user"]["definitions"]["UserAttributes"]["properties"]["custom"];
    assert_eq!(custom["type"], json!(["null", "object"]));
    // A change's values never make a key present.
    let s = kustomer(&[json!({
        "name": "kustomer.team.update",
        "data": {"type": "team", "attributes": {"a": 1}},
        "changes": {"attributes": {"gone": {"op": "remove", "before": "x"}}, "relationships": {}},
    })]);
    let attrs = &s["team"]["definitions"]["TeamAttributes"];
    assert_eq!(attrs["properties"]["gone"], json!({"type": "string"}));
    assert_eq!(attrs["required"], json!(["a"]));
}

#[test]
fn objects_stay_open_and_no_enum_is_closed() {
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                assert_ne!(m.get("additionalProperties"), Some(&json!(false)), "{path}");
                assert!(!m.contains_key("enum"), "{path}");
                assert!(!m.contains_key("const"), "{path}");
                for (k, v) in m {
                    walk(v, &format!("{path}/{k}"));
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, path)),
            _ => {}
        }
    }
    for (name, schema) in seed() {
        walk(&schema, &name);
    }
}

#[test]
fn evidence_counts_how_many_samples_carried_each_property() {
    let s = seed();
    let props = &s["customer"]["properties"];
    assert_eq!(props["orgName"]["x-kustomer-samples"], 1);
    assert_eq!(props["id"]["x-kustomer-samples"], 2);
    assert_eq!(s["customer"]["x-kustomer-samples"], 2);
    // Many items of one sample count once.
    let s = infer_values(
        &[json!([{"k": 1}, {"k": 2}]), json!([{"j": 1}])],
        &Settings::default(),
    );
    assert_eq!(s["items"]["properties"]["k"]["x-kustomer-samples"], 1);
    assert_eq!(s["items"]["properties"]["j"]["x-kustomer-samples"], 1);
}

#[test]
fn inference_is_deterministic_and_ignores_sample_order() {
    let render = |order: &mut dyn Iterator<Item = &(&str, &str)>| {
        let mut i = Inferrer::default();
        for (event, text) in order {
            i.add_json(text.as_bytes(), event).unwrap();
        }
        i.schemas()
            .values()
            .map(kustomer_schema::to_pretty)
            .collect::<Vec<_>>()
    };
    let forward = render(&mut SEED_SAMPLES.iter());
    assert_eq!(forward, render(&mut SEED_SAMPLES.iter()));
    assert_eq!(forward, render(&mut SEED_SAMPLES.iter().rev()));
}

#[test]
fn samples_that_are_not_envelopes_are_refused_by_name() {
    let mut i = Inferrer::default();
    let problem = |r: Result<(), Error>| match r {
        Err(Error::Sample { problem, .. }) => problem,
        other => panic!("{other:?}"),
    };
    assert_eq!(problem(i.add(&json!([1]), "a")), SampleProblem::NotAnObject);
    assert_eq!(
        problem(i.add(&json!({"data": {"type": "x"}}), "a")),
        SampleProblem::MissingName
    );
    assert_eq!(
        problem(i.add(&json!({"name": null, "data": {"type": "x"}}), "a")),
        SampleProblem::MissingName
    );
    assert_eq!(
        problem(i.add(&json!({"name": 1, "data": {"type": "x"}}), "a")),
        SampleProblem::NameNotAString("a number")
    );
    for empty in ["", " \t"] {
        assert_eq!(
            problem(i.add(&json!({"name": empty, "data": {"type": "x"}}), "a")),
            SampleProblem::EmptyName
        );
    }
    assert_eq!(
        SampleProblem::NameNotAString("a number").to_string(),
        "`name` is a number, not a string (the event name, such as \"kustomer.customer.create\")"
    );
    assert_eq!(
        problem(i.add(&json!({"name": "n", "data": {}}), "a")),
        SampleProblem::MissingDataType
    );
    assert_eq!(
        problem(i.add(&json!({"name": "n"}), "a")),
        SampleProblem::MissingDataType
    );
    assert_eq!(
        problem(i.add(&json!({"name": "n", "data": {"type": 123}}), "a")),
        SampleProblem::DataTypeNotAString("a number")
    );
    assert_eq!(
        i.add(&json!({"name": "n", "data": {"type": ["x"]}}), "a.json")
            .unwrap_err()
            .to_string(),
        "a.json: `data.type` is an array, not a string (the resource type, such as \"customer\")"
    );
    for bad in ["../etc", ".order", "kobject.", "a..b", "a/b", "123", ""] {
        assert_eq!(
            problem(i.add(&json!({"name": "n", "data": {"type": bad}}), "a")),
            SampleProblem::BadResourceName(bad.into()),
            "{bad}"
        );
    }
    // A custom object's type.
    let mut custom = Inferrer::default();
    custom
        .add(
            &json!({"name": "kustomer.kobject.order.create", "data": {"type": "kobject.order"}}),
            "a",
        )
        .unwrap();
    assert!(custom.schemas().contains_key("kobject.order"));
    let err = i
        .add(&json!({"name": "n"}), "samples/x.json")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "samples/x.json: the sample has no `data.type` (the resource type string, such as \"customer\")"
    );
    assert_eq!(i.sample_count(), 0);
}

/// A sample whose envelope has the parts every model is built around in
/// another shape is unusable, named with the part; nothing of it is kept.
#[test]
fn a_sample_whose_spine_has_another_shape_is_unusable() {
    let base = json!({
        "id": "6a1f00000000000000000001",
        "name": "kustomer.customer.update",
        "data": {"type": "customer", "id": "608731c238e15a90895f7029", "attributes": {"rev": 1}},
    });
    for (pointer, value, want) in [
        (
            "/data/attributes",
            json!("oops"),
            "`/data/attributes` is a string, not an object",
        ),
        (
            "/data/relationships",
            json!(5),
            "`/data/relationships` is a number, not an object",
        ),
        (
            "/changes",
            json!([1]),
            "`/changes` is an array, not an object",
        ),
        // Null too, where no model makes the field optional: one such
        // capture would make every handler's `attributes` an `Option`.
        (
            "/data/attributes",
            Value::Null,
            "`/data/attributes` is null, not an object",
        ),
        (
            "/data/relationships",
            Value::Null,
            "`/data/relationships` is null, not an object",
        ),
        (
            "/changes",
            json!({"attributes": null}),
            "`/changes/attributes` is null, not an object",
        ),
        (
            "/changes",
            json!({"relationships": []}),
            "`/changes/relationships` is an array, not an object",
        ),
        // The parts the change sets and custom attributes are built around.
        (
            "/data/attributes",
            json!({"rev": 1, "custom": "oops"}),
            "`/data/attributes/custom` is a string, not an object",
        ),
        (
            "/changes",
            json!({"attributes": {"rev": null}}),
            "`/changes/attributes/rev` is null, not an object",
        ),
        (
            "/changes",
            json!({"relationships": {"org/x": 5}}),
            "`/changes/relationships/org~1x` is a number, not an object",
        ),
        (
            "/changes",
            json!({"attributes": {"name": {"op": null, "after": "a"}}}),
            "`/changes/attributes/name/op` is null, not a string",
        ),
        (
            "/changes",
            json!({"attributes": {"custom": {"op": "replace", "before": "", "after": {}}}}),
            "`/changes/attributes/custom/before` is a string, not an object",
        ),
        ("/id", json!(42), "`/id` is a number, not a string"),
        (
            "/data/id",
            json!({"a": 1}),
            "`/data/id` is an object, not a string",
        ),
    ] {
        let mut sample = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() {
            &mut sample
        } else {
            sample.pointer_mut(parent).unwrap()
        };
        parent[key] = value;
        let mut i = Inferrer::default();
        let err = i.add(&sample, "zz.json").unwrap_err().to_string();
        assert!(err.starts_with(&format!("zz.json: {want}: ")), "{err}");
        assert_eq!(i.sample_count(), 0);
    }
    // Absent is fine; so is null where it means none (a create's
    // `changes`, an id).
    let mut sample = base.clone();
    sample["data"].as_object_mut().unwrap().remove("attributes");
    sample["changes"] = Value::Null;
    sample["data"]["id"] = Value::Null;
    Inferrer::default().add(&sample, "ok.json").unwrap();
    // A change of `custom` from none, and custom attributes all null.
    sample["data"]["attributes"] = json!({"custom": null});
    sample["changes"] =
        json!({"attributes": {"custom": {"op": "add", "before": null, "after": {"tierStr": "a"}}}});
    sample.as_object_mut().unwrap().remove("id");
    Inferrer::default().add(&sample, "ok.json").unwrap();
}

/// An event that comes with two resources, or two event or resource names
/// that would give one Rust name, is unusable in the later sample, which is
/// named with the earlier one.
#[test]
fn samples_that_would_give_one_name_twice_are_unusable_in_the_later_one() {
    let sample = |name: &str, resource: &str| json!({"name": name, "data": {"type": resource}});
    let mut i = Inferrer::default();
    i.add(&sample("kustomer.customer.update", "customer"), "a.json")
        .unwrap();
    for (later, want) in [
        (
            sample("kustomer.customer.update", "user"),
            "b.json: `kustomer.customer.update` came with `data.type` \"customer\" before \
             (a.json), and here with \"user\"",
        ),
        (
            sample("kustomer.customer.Update", "customer"),
            "b.json: the event `kustomer.customer.Update` gives the Rust type `CustomerUpdate`, \
             as `kustomer.customer.update` did (a.json)",
        ),
        (
            sample("kustomer.customer.create", "Customer"),
            "b.json: `data.type` \"Customer\" gives the module `customer`, as \"customer\" did \
             (a.json)",
        ),
    ] {
        let err = i.add(&later, "b.json").unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
    }
    // By the modules' own rule: `type` is `type_resource`, as a resource
    // named so is; `3pl` is `resource_3pl`.
    for (first, later) in [("type", "type_resource"), ("3pl", "resource_3pl")] {
        let mut i = Inferrer::default();
        i.add(&sample("kustomer.a.create", first), "a.json")
            .unwrap();
        let err = i
            .add(&sample("kustomer.b.create", later), "b.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gives the module"), "{err}");
    }
    assert_eq!(i.sample_count(), 1);
    // The same event and resource again is fine.
    i.add(&sample("kustomer.customer.update", "customer"), "c.json")
        .unwrap();
    assert_eq!(i.schemas().len(), 1);
}

/// `add_path_skipping` adds what it can and hands over every sample it
/// cannot use, where `add_path` stops at the first.
#[test]
fn pretty_samples_joined_with_cat_keep_their_byte_order_marks_and_are_read() {
    let dir = std::env::temp_dir().join(format!("kustomer-schema-joined-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_, conversation) = kustomer_schema::SEED_SAMPLES[0];
    let (_, customer) = kustomer_schema::SEED_SAMPLES[2];
    // Each file saved with a byte order mark, the second without a newline
    // at its end.
    std::fs::write(
        dir.join("joined.json"),
        format!(
            "\u{feff}{}\n\u{feff}{}\u{feff}{}\n",
            conversation.trim_end(),
            customer.trim_end(),
            conversation.trim_end()
        ),
    )
    .unwrap();
    let mut i = Inferrer::default();
    let added = i.add_path(&dir).unwrap();
    assert_eq!(added, 3);
    // A mistake after a mark in the middle of a line is placed by the
    // line's own columns, the mark taking no room.
    let bad = dir.join("joined.json");
    let compact = serde_json::to_string(&serde_json::from_str::<Value>(customer).unwrap()).unwrap();
    std::fs::write(&bad, format!("\u{feff}{compact}\u{feff}{{\"b\" 2}}\n")).unwrap();
    let err = Inferrer::default().add_path(&bad).unwrap_err().to_string();
    let at = format!(":1:{}: ", compact.len() + 6);
    assert!(err.contains(&at), "{at} in {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unusable_samples_are_each_reported_and_the_rest_added() {
    let dir = std::env::temp_dir().join(format!("kustomer-schema-skipping-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_, conversation) = kustomer_schema::SEED_SAMPLES[0];
    let compact =
        serde_json::to_string(&serde_json::from_str::<Value>(conversation).unwrap()).unwrap();
    std::fs::write(dir.join("a-good.json"), conversation).unwrap();
    std::fs::write(
        dir.join("b-type.json"),
        r#"{"name": "n", "data": {"type": "üser"}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("c-broken.json"), "{\"name\": ").unwrap();
    std::fs::write(dir.join("d-empty.json"), "  \n").unwrap();
    // A JSON Lines file goes on past an envelope it cannot use, and past a
    // line that is not JSON (or cut short); a byte order mark at the start
    // of a line (files joined with `cat`) is skipped.
    std::fs::write(
        dir.join("e-lines.jsonl"),
        format!("{compact}\n[1]\n{compact}\n{{oops\n{compact}\n{{\"name\": \n\u{feff}{compact}\n"),
    )
    .unwrap();
    // Several samples one per line in a `.json` file read the same way; one
    // written on several lines with a mistake inside ends its file.
    std::fs::write(
        dir.join("f-lines.json"),
        format!("{compact}\n{{oops\n{compact}\n"),
    )
    .unwrap();
    // In JSON Lines, a bad sample written on several lines is one problem:
    // the reading goes on at the next line that starts an object.
    std::fs::write(
        dir.join("h-pretty.jsonl"),
        format!("{{\"name\": x,\n  \"data\": {{\"type\": \"c\"}}\n}}\n{compact}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("g-pretty.json"),
        format!(
            "{}\n{{\n  \"name\": oops\n}}\n{conversation}\n",
            conversation.trim_end()
        ),
    )
    .unwrap();

    let mut first = Inferrer::default();
    let err = first.add_path(&dir).unwrap_err().to_string();
    assert!(err.ends_with("b-type.json: `data.type` \"üser\" is not a usable resource name (letters, digits, `_` and `-`, in segments joined by `.`, with a letter somewhere, at most 64)"), "{err}");

    let mut i = Inferrer::default();
    let mut unusable = Vec::new();
    let added = i
        .add_path_skipping(&dir, &mut |e| unusable.push(e.to_string()))
        .unwrap();
    assert_eq!(
        added, 9,
        "a-good, four lines of e-lines, two of f-lines, one of g-pretty, one of h-pretty"
    );
    assert_eq!(i.sample_count(), 9);
    let d = dir.display();
    assert_eq!(
        unusable,
        [
            format!(
                "{d}/b-type.json: `data.type` \"üser\" is not a usable resource name (letters, digits, `_` and `-`, in segments joined by `.`, with a letter somewhere, at most 64)"
            ),
            format!("{d}/c-broken.json:1:9: invalid JSON (in /name): EOF while parsing a value"),
            format!("{d}/d-empty.json: no sample: the input is empty"),
            format!(
                "{d}/e-lines.jsonl: sample 2 (line 2): a sample must be a JSON object (an event envelope)"
            ),
            format!("{d}/e-lines.jsonl:4:2: invalid JSON: key must be a string"),
            format!(
                "{d}/e-lines.jsonl:6:8: invalid JSON (in /name): EOF while parsing a value: the line ends \
                 before its sample does (in JSON Lines, each sample is one line)"
            ),
            format!("{d}/f-lines.json:2:2: invalid JSON: key must be a string"),
            format!(
                "{d}/g-pretty.json:{}:11: invalid JSON (in /name): expected value; the rest of the file, \
                 after this line, was not read",
                conversation.lines().count() + 2
            ),
            format!("{d}/h-pretty.jsonl:1:10: invalid JSON (in /name): expected value"),
        ]
    );
    assert_eq!(i.schemas().keys().collect::<Vec<_>>(), ["conversation"]);

    // What cannot be read at all is still an error.
    let mut none = Inferrer::default();
    assert!(
        none.add_path_skipping(&dir.join("missing"), &mut |_| {})
            .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Invalid JSON inside a sample is said with the JSON Pointer of the value
/// it is in, as `parse` says it: a number out of range, a bad literal in an
/// array, a key with `/` and `~` in it; a later sample's error has its own.
#[test]
fn invalid_json_names_the_value_it_is_in() {
    let lines = concat!(
        r#"{"name":"kustomer.customer.update","data":{"type":"customer","attributes":{"score":1e400}}}"#,
        "\n",
        r#"{"name":"kustomer.customer.update","data":{"type":"customer","attributes":{"tags":["a",tru]}}}"#,
        "\n",
        r#"{"name":"kustomer.customer.update","data":{"a/b~c":{"x":}}}"#,
        "\n",
        r#"{"name":"kustomer.customer.update","data":{"type":"customer"},}"#,
        "\n",
    );
    let dir = std::env::temp_dir().join(format!("kustomer-schema-pointers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // What reading `lines` as a JSON Lines file says (each problem without
    // the file's name), and how many samples it adds.
    let read = |lines: &str| {
        let file = dir.join("samples.jsonl");
        std::fs::write(&file, lines).unwrap();
        let mut said = Vec::new();
        let added = Inferrer::default()
            .add_path_skipping(&file, &mut |e| {
                said.push(e.to_string().split_once(".jsonl:").unwrap().1.to_owned())
            })
            .unwrap();
        (said, added)
    };
    assert_eq!(
        read(lines).0,
        [
            "1:84: invalid JSON (in /data/attributes/score): number out of range",
            "2:91: invalid JSON (in /data/attributes/tags/1): expected ident",
            "3:57: invalid JSON (in /data/a~1b~0c/x): expected value",
            "4:63: invalid JSON: trailing comma",
        ]
    );

    // In an array: the element being read or expected after a comma; what
    // is wrong between two elements is the array's (as `parse` says each).
    let sample = |data: &str| {
        format!(r#"{{"name":"kustomer.customer.update","data":{{"type":"customer","a":{data}}}}}"#)
    };
    for (data, want) in [
        (r#"["x","y"}"#, "(in /data/a): expected `,` or `]`"),
        ("[1,2}", "(in /data/a): expected `,` or `]`"),
        ("[1 2]", "(in /data/a): expected `,` or `]`"),
        ("[[1],[2}]", "(in /data/a/1): expected `,` or `]`"),
        (
            r#"[{"b":1},{"c":2]]"#,
            "(in /data/a/1): expected `,` or `}`",
        ),
        ("[1,2,]", "(in /data/a/2): trailing comma"),
        ("[1,x]", "(in /data/a/1): expected value"),
        ("[}", "(in /data/a/0): expected value"),
    ] {
        let (said, _) = read(&format!("{}\n", sample(data)));
        assert_eq!(said.len(), 1, "{data}: {said:?}");
        assert!(said[0].ends_with(want), "{data}: {said:?}");
    }
    // The text ending right after a number or literal (which may have been
    // cut there), whatever white space follows: that value, as `parse`
    // names it; after a string, its container.
    let head = r#"{"name":"kustomer.customer.update","data":{"type":"customer","a":"#;
    for (rest, want) in [
        ("[1,2\n", "(in /data/a/1): EOF while parsing a list"),
        ("[true \n", "(in /data/a/0): EOF while parsing a list"),
        ("[\"x\"\n", "(in /data/a): EOF while parsing a list"),
        ("{\"x\":1\n", "(in /data/a/x): EOF while parsing an object"),
        (
            "{\"x\":\"s\"\n",
            "(in /data/a): EOF while parsing an object",
        ),
    ] {
        let (said, _) = read(&format!("{head}{rest}"));
        assert_eq!(said.len(), 1, "{rest}: {said:?}");
        assert!(said[0].ends_with(want), "{rest}: {said:?}");
    }
    // A number out of range after a byte order mark inside a string: the
    // mark's bytes count, as `parse` counts them.
    let (said, _) = read(&format!("{}\n", sample("{\"s\":\"\u{feff}\",\"n\":1e400}")));
    assert_eq!(
        said,
        ["1:81: invalid JSON (in /data/a/n): number out of range"]
    );
    // A number out of range on a line that starts with a byte order mark
    // (files joined with `cat`): at its start, the mark taking no room.
    let (said, _) = read(&format!("{}\n\u{feff}{}\n", sample("1"), sample("1e400")));
    assert_eq!(
        said,
        ["2:66: invalid JSON (in /data/a): number out of range"]
    );

    // A line cut short is named at its own end, where its own value was
    // being read, not where the JSON broke on the lines after it.
    let good =
        r#"{"name":"kustomer.customer.update","data":{"type":"customer","attributes":{"a":1}}}"#;
    let cut =
        r#"{"name":"kustomer.customer.update","data":{"type":"customer","attributes":{"x":{"y":"#;
    let bad = r#"{"name":"kustomer.customer.update","data":{"type":"customer","attributes":{"q":[1,x]}}}"#;
    let cut_at = "2:84: invalid JSON (in /data/attributes/x/y): EOF while parsing a value: the line \
                  ends before its sample does (in JSON Lines, each sample is one line)";
    let (said, added) = read(&format!("{good}\n{cut}\n{good}\n{good}\n{bad}\n"));
    assert_eq!(
        said,
        [
            cut_at,
            "5:83: invalid JSON (in /data/attributes/q/1): expected value"
        ]
    );
    assert_eq!(added, 3);
    // The line after the cut one a sample with a mistake of its own: each
    // is named on its own, and the good ones read.
    let (said, added) = read(&format!("{good}\n{cut}\n{bad}\n{good}\n"));
    assert_eq!(
        said,
        [
            cut_at,
            "3:83: invalid JSON (in /data/attributes/q/1): expected value"
        ]
    );
    assert_eq!(added, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_json_is_reported_with_line_and_column() {
    let mut i = Inferrer::default();
    let err = i
        .add_json(b"{\n  \"name\": \"x\",\n  oops\n}", "bad.json")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad.json:3:3: invalid JSON: key must be a string"
    );
    // Nested past serde_json's limit: the limit is said.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let err = i.add_json(deep.as_bytes(), "deep.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        "deep.json:1:128: invalid JSON: recursion limit exceeded (arrays and objects nested more \
         than 128 deep)"
    );
    let err = i
        .add_json(
            b"{\"name\":\"a\",\"data\":{\"type\":\"t\"}}\n{\"data\":{\"type\":\"t\"}}\n",
            "two.jsonl",
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("two.jsonl: sample 2 (line 2): the sample has no `name`"),
        "{err}"
    );
    let err = i.add_json(b"  \n", "empty.json").unwrap_err();
    assert_eq!(err.to_string(), "empty.json: no sample: the input is empty");
}

#[test]
fn a_lone_surrogate_escape_reads_as_the_replacement_character() {
    // What `JSON.stringify` writes for a preview cut inside an emoji.
    let cut = br#"{"name":"kustomer.message.create","data":{"type":"message","attributes":{"preview":"hi \ud83d"}}}"#;
    let mut i = Inferrer::default();
    assert_eq!(i.add_json(cut, "cut.json").unwrap(), 1);
    for (text, want) in [
        (r#""hi \ud83d""#, r#""hi \ufffd""#),
        (r#""\udc00\ud83d\ude00""#, r#""\ufffd\ud83d\ude00""#),
        (r#""\ud800\u0041""#, r#""\ufffd\u0041""#),
        (r#""\ud800\ud800\udc00""#, r#""\ufffd\ud800\udc00""#),
        // An escaped backslash before `ud800` is no escape of it.
        (r#""\\ud800""#, r#""\\ud800""#),
        (r#""\\\ud800""#, r#""\\\ufffd""#),
        (r#""\ud83d\ude00" \"#, r#""\ud83d\ude00" \"#),
    ] {
        assert_eq!(
            std::str::from_utf8(&lone_surrogates_replaced(text.as_bytes())).unwrap(),
            want,
            "{text}"
        );
    }
    assert!(matches!(
        lone_surrogates_replaced(b"\"a\\u00e9\""),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn resources_named_like_shared_definitions_do_not_collide() {
    let s = kustomer(&[
        json!({"name": "kustomer.link.create", "data": {"type": "links", "attributes": {}}}),
    ]);
    let defs = s["links"]["definitions"].as_object().unwrap();
    assert!(defs.contains_key("LinksResource"), "{:?}", defs.keys());
    assert!(defs.contains_key("Links"));
}

#[test]
fn changes_may_always_be_null() {
    // No customer sample has `changes: null`, but create events send it.
    let s = seed();
    for resource in ["customer", "conversation", "message", "team", "user"] {
        let changes = &s[resource]["properties"]["changes"];
        assert_eq!(
            changes["anyOf"][1],
            json!({"type": "null"}),
            "{resource}: {changes}"
        );
    }
}
