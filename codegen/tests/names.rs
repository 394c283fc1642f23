//! Every name the generator gives is a Rust identifier, and the types of a
//! models module never clash: with each other, with the event types, or
//! with the names its files import and `mod.rs` declares.

use std::collections::{BTreeMap, BTreeSet};

use kustomer_codegen::{Settings, generate};
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use serde_json::{Value, json};

/// The names a models module uses for something else than its structs.
const IMPORTED_OR_DECLARED: [&str; 14] = [
    "AnyEvent",
    "Box",
    "Change",
    "DateTime",
    "Extra",
    "Id",
    "Map",
    "Number",
    "Option",
    "OtherEvent",
    "Str",
    "String",
    "Value",
    "Vec",
];

/// The schemas of `samples` (JSON texts).
fn schemas(samples: &[&str]) -> BTreeMap<String, Value> {
    let mut inferrer = kustomer_schema::Inferrer::default();
    for (i, sample) in samples.iter().enumerate() {
        inferrer
            .add_json(sample.as_bytes(), &format!("s{i}"))
            .unwrap();
    }
    inferrer.schemas()
}

/// The models of `samples`, checked with [`check_names`].
fn models(samples: &[&str]) -> BTreeMap<String, String> {
    let files = generate(&schemas(samples), &Settings::default()).unwrap();
    check_names(&files);
    files
}

fn idents(tokens: TokenStream, out: &mut BTreeSet<String>) {
    for tree in tokens {
        match tree {
            TokenTree::Ident(i) => {
                out.insert(i.to_string());
            }
            TokenTree::Group(g) => idents(g.stream(), out),
            _ => {}
        }
    }
}

/// What would not compile, or compile with an unused import warning: two
/// types of one name (structs and event types, across the module, which
/// `mod.rs` re-exports together), a type with the name of one a file
/// imports or `mod.rs` declares, and an import nothing uses.
fn check_names(files: &BTreeMap<String, String>) {
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let mut define = |name: String, file: &str| {
        if let Some(other) = defined.insert(name.clone(), file.to_owned()) {
            panic!("`{name}` is defined in {other} and {file}");
        }
    };
    for (file, text) in files {
        let parsed = syn::parse_file(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (mut imported, mut used) = (BTreeSet::new(), BTreeSet::new());
        for item in &parsed.items {
            match item {
                syn::Item::Use(u) => {
                    let mut names = BTreeSet::new();
                    idents(u.to_token_stream(), &mut names);
                    imported.extend(
                        names
                            .into_iter()
                            .filter(|n| n.starts_with(char::is_uppercase)),
                    );
                }
                syn::Item::Struct(s) => {
                    define(s.ident.to_string(), file);
                    // Every field's type as written, `any` ones'
                    // `Option<Value>` too: the model macro keeps it.
                    for field in &s.fields {
                        idents(field.ty.to_token_stream(), &mut used);
                    }
                }
                syn::Item::Macro(m) => {
                    let name = m.mac.path.segments.last().unwrap().ident.to_string();
                    if name == "__event" {
                        let event = m.mac.tokens.clone().into_iter().find_map(|t| match t {
                            TokenTree::Ident(i) => Some(i.to_string()),
                            _ => None,
                        });
                        define(event.unwrap(), file);
                    } else if name == "__events" {
                        define("AnyEvent".into(), file);
                        define("OtherEvent".into(), file);
                    }
                    idents(m.mac.tokens.clone(), &mut used);
                }
                other => idents(other.to_token_stream(), &mut used),
            }
        }
        for name in &imported {
            assert!(
                used.contains(name),
                "{file}: `{name}` is imported and not used"
            );
        }
    }
    for name in IMPORTED_OR_DECLARED {
        let file = defined.get(name);
        let declared = matches!(name, "AnyEvent" | "OtherEvent");
        assert!(
            file.is_none() || (declared && file.is_some_and(|f| f == "mod.rs")),
            "`{name}` is defined in {file:?}"
        );
    }
}

#[test]
fn a_resource_type_starting_with_a_digit_gets_models() {
    let files = models(&[
        r#"{"name":"kustomer.3pl-shipment.create","data":{"type":"3pl-shipment","attributes":{"a":1,"box":{"b":1}}}}"#,
        r#"{"name":"kustomer.9lives.update","data":{"type":"9lives","attributes":{"a":1}}}"#,
        r#"{"name":"kustomer.2fa.order.create","data":{"type":"2fa.order","attributes":{"a":1}}}"#,
    ]);
    let text = &files["resource_3pl_shipment.rs"];
    assert!(
        text.contains("pub struct Resource3plShipmentEvent "),
        "{text}"
    );
    assert!(text.contains("pub struct Resource3plShipment "), "{text}");
    assert!(
        text.contains("pub struct Resource3plShipmentAttributes "),
        "{text}"
    );
    assert!(
        text.contains("pub struct Resource3plShipmentBox "),
        "{text}"
    );
    assert!(
        text.contains("Event3plShipmentCreate(Resource3plShipmentEvent)"),
        "{text}"
    );
    assert!(files["resource_9lives.rs"].contains("pub struct Resource9lives "));
    assert!(files["resource_2fa_order.rs"].contains("pub struct Resource2faOrder "));
    assert!(files["mod.rs"].contains("mod resource_3pl_shipment;"));
}

#[test]
fn hand_edited_titles_and_definition_names_become_type_names_or_a_clear_error() {
    let base = schemas(&[
        r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"a":{"b":1}}}}"#,
    ]);
    let rename = |title: &str, from: &str, to: &str| {
        let mut schemas = base.clone();
        let thing = schemas.get_mut("thing").unwrap();
        thing["title"] = json!(title);
        let text = serde_json::to_string(thing)
            .unwrap()
            .replace(&format!("\"{from}\""), &format!("\"{to}\""))
            .replace(
                &format!("#/definitions/{from}\""),
                &format!("#/definitions/{to}\""),
            );
        *thing = serde_json::from_str(&text).unwrap();
        generate(&schemas, &Settings::default())
    };

    // A title with a space, a definition with a hyphen or a leading digit:
    // their words in PascalCase.
    let files = rename("My thing-Event", "ThingAttributes", "thing-attributes").unwrap();
    check_names(&files);
    let text = &files["thing.rs"];
    assert!(text.contains("pub struct MyThingEvent "), "{text}");
    assert!(text.contains("pub struct ThingAttributes "), "{text}");
    let files = rename("3plThingEvent", "Thing", "3plThing").unwrap();
    check_names(&files);
    assert!(files["thing.rs"].contains("pub struct Resource3plThingEvent "));
    assert!(files["thing.rs"].contains("pub struct Resource3plThing "));

    // Nothing to make a name of: an error naming the file and the place.
    let err = rename("ThingEvent", "ThingAttributes", "é").unwrap_err();
    assert_eq!(
        err.to_string(),
        "thing schema, /definitions/é: the definition name \"é\" has no ASCII letter or digit \
         to make a Rust type name of: rename it, and the `$ref`s to it, in thing.json"
    );
    let err = rename("éEvent", "Thing", "Thing").unwrap_err();
    assert_eq!(
        err.to_string(),
        "thing schema, /title: the title \"éEvent\" has no ASCII letter or digit to name the \
         resource's Rust types after: give it one such as \"CustomerEvent\" in thing.json"
    );
}

#[test]
fn a_struct_never_takes_an_event_types_name() {
    // `firstUpdate`/`lastUpdate` of one shape are hoisted as `Update`.
    let files = models(&[
        r#"{"name":"kustomer.conversation.update","data":{"type":"conversation","attributes":{"firstUpdate":{"a":1},"lastUpdate":{"a":2}}}}"#,
    ]);
    assert!(files["conversation.rs"].contains("pub struct ConversationUpdate2 "));
    // A key `create` under `thing`, and an event named as the resource,
    // whose type is not the resource's own name (its data's type).
    let files = models(&[
        r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"create":{"a":1}}}}"#,
        r#"{"name":"kustomer.thing","data":{"type":"thing","attributes":{}}}"#,
    ]);
    let text = &files["thing.rs"];
    assert!(text.contains("pub struct ThingCreate2 "), "{text}");
    assert!(text.contains("pub struct Thing "), "{text}");
    assert!(
        text.contains("#[doc = \" The `kustomer.thing` event.\"] EventThing(ThingEvent)"),
        "{text}"
    );
    // The event type of another resource, which comes later.
    let files = models(&[
        r#"{"name":"kustomer.conversation-update.create","data":{"type":"conversation-update","attributes":{}}}"#,
        r#"{"name":"kustomer.conversation.update","data":{"type":"conversation","attributes":{}}}"#,
    ]);
    let text = &files["conversation_update.rs"];
    assert!(text.contains("pub struct ConversationUpdate2 "), "{text}");
}

#[test]
#[should_panic(expected = "`Str` is defined in thing.rs and thing.rs")]
fn the_check_finds_two_types_of_one_name() {
    let text = "use kustomer_webhooks::Str;\npub struct Str {}\npub struct Str {}\n";
    check_names(&BTreeMap::from([("thing.rs".to_owned(), text.to_owned())]));
}

#[test]
#[should_panic(expected = "thing.rs: `Number` is imported and not used")]
fn the_check_finds_an_unused_import() {
    let text = "use kustomer_webhooks::serde_json::{Number, Value};\npub struct Thing {\n    #[json(\"a\", any)]\n    pub a: Option<Value>,\n}\n";
    check_names(&BTreeMap::from([("thing.rs".to_owned(), text.to_owned())]));
}

#[test]
#[should_panic(expected = "`Value` is defined in Some(\"thing.rs\")")]
fn the_check_finds_a_type_named_as_an_import() {
    let text = "use kustomer_webhooks::serde_json::Value;\npub struct Value {\n    pub a: Option<Value>,\n}\n";
    check_names(&BTreeMap::from([("thing.rs".to_owned(), text.to_owned())]));
}

#[test]
fn a_struct_never_takes_a_name_the_files_import_or_mod_rs_declares() {
    let mut samples: Vec<String> = [
        "value",
        "number",
        "map",
        "id",
        "str",
        "extra",
        "change",
        "option",
        "vec",
        "box",
        "string",
        "any-event",
        "other-event",
    ]
    .iter()
    .map(|r| {
        format!(r#"{{"name":"kustomer.{r}.create","data":{{"type":"{r}","attributes":{{"a":{{"b":1}}}}}}}}"#)
    })
    .collect();
    // `date` + `time` is `DateTime`; an event named as a runtime type.
    samples.push(
        r#"{"name":"kustomer.date.create","data":{"type":"date","attributes":{"time":{"b":1}}}}"#
            .into(),
    );
    samples.push(r#"{"name":"kustomer.value","data":{"type":"value","attributes":{}}}"#.into());
    samples.push(r#"{"name":"kustomer.links","data":{"type":"links","attributes":{}}}"#.into());
    let samples: Vec<&str> = samples.iter().map(String::as_str).collect();
    let files = models(&samples);
    assert!(files["value.rs"].contains("pub struct ValueResource "));
    assert!(files["value.rs"].contains("EventValue(ValueResourceEvent)"));
    assert!(files["date.rs"].contains("pub struct DateTime2 "));
    assert!(files["links.rs"].contains("EventLinks(LinksResourceEvent)"));

    // Schemas that were inferred before these names were reserved.
    let mut old = schemas(&[
        r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"a":{"b":1}}}}"#,
    ]);
    let thing = old.remove("thing").unwrap();
    let text = serde_json::to_string(&thing)
        .unwrap()
        .replace("ThingAttributes", "Value")
        .replace("ThingEvent", "StrEvent");
    old.insert("str".into(), serde_json::from_str(&text).unwrap());
    let files = generate(&old, &Settings::default()).unwrap();
    check_names(&files);
    assert!(files["str.rs"].contains("pub struct StrEvent "));
    assert!(files["str.rs"].contains("pub struct Value2 "));
}

#[test]
fn an_any_field_imports_value() {
    // Only ever null: any JSON, `Option<Value>`, the only `Value` of its file
    // (a resource seen only created has no change set to import it).
    let files = models(&[
        r#"{"name":"kustomer.kobject.order.create","data":{"type":"kobject.order","attributes":{"a":null}}}"#,
    ]);
    let text = &files["kobject_order.rs"];
    assert!(
        text.contains("#[json(\"a\", any)]\n    pub a: Option<Value>,"),
        "{text}"
    );
    assert!(text.contains("Value}") || text.contains("Value;"), "{text}");
}

#[test]
fn two_event_names_of_one_type_name_are_named_in_the_error() {
    for other in ["kustomer.customer.create ", "kustomer.customer_create"] {
        let seed = kustomer_schema::SEED_SAMPLES
            .iter()
            .find(|(event, _)| *event == "kustomer.customer.create")
            .unwrap()
            .1;
        let mut sample: Value = serde_json::from_str(seed).unwrap();
        sample["name"] = json!(other);
        let mut inferrer = kustomer_schema::Inferrer::default();
        inferrer.add_json(seed.as_bytes(), "seed").unwrap();
        // Inference refuses the second sample, naming the first.
        let refused = inferrer.add(&sample, "mine").unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "mine: the event `{other}` gives the Rust type `CustomerCreate`, as \
                 `kustomer.customer.create` did (seed): event names that differ only in case or \
                 punctuation cannot both have models, so one is mistyped"
            )
        );
        // Schemas that list both anyway (written by hand) are an error too.
        let mut schemas = inferrer.schemas();
        schemas
            .get_mut("customer")
            .unwrap()
            .get_mut("x-kustomer-events")
            .and_then(Value::as_array_mut)
            .unwrap()
            .push(json!(other));
        let err = generate(&schemas, &Settings::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "customer schema, /x-kustomer-events: the events `{other}` and \
                 `kustomer.customer.create` (of the customer schema) both give the Rust type \
                 name `CustomerCreate`: event names that differ only in case or punctuation \
                 cannot both have models; look for a sample with a mistyped `name`"
            )
        );
    }
}

#[test]
fn the_committed_schemas_give_distinct_names() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/schemas");
    let files = generate(
        &kustomer_codegen::read_schemas(&dir).unwrap(),
        &Settings::default(),
    )
    .unwrap();
    check_names(&files);
}
