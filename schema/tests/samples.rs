//! Kustomer's ten published sample payloads, as fixtures.

use std::path::Path;

use serde_json::Value;

const EVENTS: [&str; 10] = [
    "kustomer.conversation.create",
    "kustomer.conversation.update",
    "kustomer.customer.create",
    "kustomer.customer.update",
    "kustomer.message.create",
    "kustomer.message.update",
    "kustomer.team.create",
    "kustomer.team.update",
    "kustomer.user.create",
    "kustomer.user.update",
];

fn samples_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/samples"))
}

#[test]
fn there_are_ten_samples_each_named_after_its_event() {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = EVENTS.iter().map(|e| format!("{e}.json")).collect();
    assert_eq!(names, expected);
    for event in EVENTS {
        let text = std::fs::read_to_string(samples_dir().join(format!("{event}.json"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], event, "{event}.json holds another event");
        let resource = event.split('.').nth(1).unwrap();
        assert_eq!(v["data"]["type"], resource, "{event}.json: data.type");
    }
}

#[test]
fn the_embedded_samples_are_the_files() {
    assert_eq!(kustomer_schema::SEED_SAMPLES.len(), 10);
    for (event, text) in kustomer_schema::SEED_SAMPLES {
        let file = std::fs::read_to_string(samples_dir().join(format!("{event}.json"))).unwrap();
        assert_eq!(text, file, "{event}");
    }
}

/// Every `"body": {…}` fragment of the published page, parsed as JSON.
fn published_bodies(page: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find("\"body\": ") {
        let from = &rest[i..];
        let brace = from.find('{').unwrap();
        let mut stream = serde_json::Deserializer::from_str(&from[brace..]).into_iter::<Value>();
        out.push(stream.next().unwrap().unwrap());
        rest = &from[brace + stream.byte_offset()..];
    }
    out
}

/// The fixtures hold exactly the values Kustomer published, on the page
/// kept in `published/` as it was published.
#[test]
fn the_samples_hold_every_value_exactly_as_published() {
    let page =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("published/kustomer-outbound-webhooks.txt");
    let page = std::fs::read_to_string(&page).unwrap();
    let bodies = published_bodies(&page);
    assert_eq!(bodies.len(), 10);
    for body in bodies {
        let event = body["name"].as_str().unwrap();
        let text = std::fs::read_to_string(samples_dir().join(format!("{event}.json"))).unwrap();
        let fixture: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            fixture, body,
            "{event}.json differs from the published sample"
        );
    }
}
