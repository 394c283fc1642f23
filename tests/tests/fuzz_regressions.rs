//! Inputs the fuzz targets (`fuzz/`, see RELIABILITY.md) found to break an
//! invariant, each kept as a test once fixed.

use kustomer_webhooks::receiver::{Receiver, Request};
use kustomer_webhooks::verify::{Verifier, sign};
use kustomer_webhooks::{Dispatcher, ParseError, TeamCreate, parse, parse_as};
use serde_json::Value;

/// fuzz target `parse`: a body with `name` twice was typed by its first name
/// while its envelope (and a re-serialisation) carried the last one, so
/// `parse_as` with the name `parse` reported refused it.
const NAME_TWICE: &[u8] =
    br#"{"name":"kustomer.team.create","name":"kustomer.team.update","data":{"type":"b"}}"#;

#[test]
fn a_body_naming_its_event_twice_is_refused_by_parse() {
    match parse(NAME_TWICE) {
        Err(e @ ParseError::DuplicateName { .. }) => {
            assert_eq!(e.pointer(), "/name");
            assert!(e.to_string().contains("kustomer.team.update"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Named by the header, either name is a mismatch with the body's last.
    assert!(matches!(
        parse_as(NAME_TWICE, "kustomer.team.create"),
        Err(ParseError::NameMismatch { .. })
    ));
    // The same name twice is no ambiguity.
    let same = br#"{"name":"kustomer.team.create","name":"kustomer.team.create","data":{}}"#;
    let parsed = parse(same).unwrap();
    assert_eq!(parsed.event.name().as_str(), "kustomer.team.create");
    // A repeated name after the data, where the body is read twice.
    let late = br#"{"data":{"type":"team"},"name":"kustomer.team.create","name":"x.y"}"#;
    assert!(matches!(parse(late), Err(ParseError::DuplicateName { .. })));
}

#[tokio::test]
async fn a_body_naming_its_event_twice_gets_400_and_runs_no_handler() {
    async fn on_team(_: TeamCreate) {
        panic!("must not run");
    }
    let dispatcher = Dispatcher::builder().handler(on_team).build().unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new("t"));
    let signature = sign(b"t", NAME_TWICE);
    let reply = receiver
        .receive(Request {
            method: "POST",
            header: |name| match name {
                "content-type" => Some(&b"application/json"[..]),
                "x-kustomer-webhook-signature" => Some(signature.as_bytes()),
                _ => None,
            },
            body: NAME_TWICE,
        })
        .await;
    assert_eq!(
        (reply.status, reply.pointer.as_deref()),
        (400, Some("/name"))
    );
    let body: Value = serde_json::from_str(&reply.body()).unwrap();
    assert_eq!(body["outcome"], "error");
}

/// The `parse` target's own check, not the runtime: `name` first as a
/// number and then as a string is refused by `parse` (two names) and
/// accepted by `parse_as` (the header agrees with the last).
/// Either way the event is never handed on under a name its body does not
/// end with.
#[test]
fn a_body_whose_first_name_is_not_a_string_is_never_misrouted() {
    let body = br#"{"name":5,"name":"kustomer.customer.update","data":{}}"#;
    assert_eq!(
        parse(body).unwrap_err(),
        ParseError::NameTwice {
            name: "kustomer.customer.update".into(),
            found: "number"
        }
    );
    let parsed = parse_as(body, "kustomer.customer.update").unwrap();
    assert_eq!(parsed.event.name().as_str(), "kustomer.customer.update");
    assert_eq!(
        parsed.event.envelope().event_name(),
        Some("kustomer.customer.update")
    );
}

/// A `name` that is not a string says which type it is, at `/name`, once
/// the object has been read (a body that is not JSON says that instead).
#[test]
fn a_name_that_is_not_a_string_says_its_type() {
    for (body, found) in [
        (r#"{"id":"x3","name":5,"data":{}}"#, "a number"),
        (r#"{"name":null,"data":{}}"#, "null"),
        (r#"{"name":{"a":1},"data":{}}"#, "an object"),
        (r#"{"name":[],"data":{}}"#, "an array"),
        (r#"{"name":true,"data":{}}"#, "a boolean"),
    ] {
        let e = parse(body.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the body's `name` is {found}, not a string (the event name) at /name")
        );
        assert_eq!(e.pointer(), "/name");
    }
    assert!(matches!(
        parse(br#"{"name":5,"data":{"#),
        Err(ParseError::InvalidJson { .. })
    ));
    // Named by the header instead, it is that event, with nothing lost (the
    // `parse` target checks this of every body `parse` refuses so).
    let body = br#"{"name":5,"data":{}}"#;
    let parsed = parse_as(body, "kustomer.customer.update").unwrap();
    assert_eq!(parsed.event.name().as_str(), "kustomer.customer.update");
    let back = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(back, serde_json::from_slice::<Value>(body).unwrap());
}

/// The `parse` target's own check again: a body whose `name` key is
/// misspelled (`orgNname`) has no name for `parse`, and is the event the
/// header names for `parse_as`, with the misspelled key kept as it came.
#[test]
fn a_body_without_a_name_is_the_event_its_header_names_and_loses_nothing() {
    let body = br#"{"id":"6087386f3c16f212942a36c0","orgNname":"kustomer.message.create","data":{"type":"message"}}"#;
    assert!(matches!(parse(body), Err(ParseError::MissingName)));
    let parsed = parse_as(body, "kustomer.customer.update").unwrap();
    assert_eq!(parsed.event.name().as_str(), "kustomer.customer.update");
    assert_eq!(parsed.event.envelope().event_name(), None);
    let back = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(back, serde_json::from_slice::<Value>(body).unwrap());
}

/// A `name` given twice, once not a string (in either order), is two names;
/// an empty or blank one names no event; a `data` that is not an object is
/// no resource: each a `ParseError`, with its JSON path.
#[test]
fn names_twice_an_empty_name_and_a_data_not_an_object_are_refused() {
    // Each body, the other name's type, and whether the string is the last.
    for (body, found, last_is_the_string) in [
        (
            &br#"{"name":"kustomer.team.create","data":{},"name":5}"#[..],
            "number",
            false,
        ),
        (
            br#"{"name":"kustomer.team.create","data":{},"name":null}"#,
            "null",
            false,
        ),
        (
            br#"{"name":5,"data":{},"name":"kustomer.team.create"}"#,
            "number",
            true,
        ),
        (
            br#"{"name":null,"name":"kustomer.team.create","data":{}}"#,
            "null",
            true,
        ),
    ] {
        let e = parse(body).unwrap_err();
        assert_eq!(
            e,
            ParseError::NameTwice {
                name: "kustomer.team.create".into(),
                found
            },
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.pointer(), "/name");
        assert!(
            e.to_string()
                .starts_with("the body names its event twice, once \"kustomer.team.create\""),
            "{e}"
        );
        // Named by the header: when the last `name` is not a string and the
        // other names an event, the body names two; when the last is the
        // string, the header may name it (and no other).
        for header in ["kustomer.team.create", "kustomer.customer.update"] {
            let got = parse_as(body, header);
            match (last_is_the_string, header) {
                (true, "kustomer.team.create") => assert!(got.is_ok(), "{got:?}"),
                (true, _) => assert!(
                    matches!(got, Err(ParseError::NameMismatch { .. })),
                    "{header}: {got:?}"
                ),
                (false, _) => assert!(
                    matches!(got, Err(ParseError::NameTwice { .. })),
                    "{header}: {got:?}"
                ),
            }
        }
    }
    // A `name` that is only not a string is the event the header names.
    let unnamed = br#"{"name":5,"data":{"type":"team"}}"#;
    let parsed = parse_as(unnamed, "kustomer.team.create").unwrap();
    assert_eq!(parsed.event.name().as_str(), "kustomer.team.create");
    for body in [
        &br#"{"name":"","data":{}}"#[..],
        br#"{"id":"1","name":"  ","data":{"type":"team"}}"#,
    ] {
        assert_eq!(parse(body).unwrap_err(), ParseError::EmptyName);
        // A blank header names no event: the body's name is read.
        assert_eq!(parse_as(body, " ").unwrap_err(), ParseError::EmptyName);
    }
    // Cut short after an empty name: not JSON, said so first.
    assert!(matches!(
        parse(br#"{"name":"","data":{"#),
        Err(ParseError::InvalidJson { .. })
    ));
    let named = br#"{"name":"kustomer.team.create","data":{"type":"team"}}"#;
    assert_eq!(
        parse_as(named, "").unwrap().event.name().as_str(),
        "kustomer.team.create"
    );
    for (data, found) in [
        ("null", "null"),
        ("[]", "array"),
        ("\"x\"", "string"),
        ("5", "number"),
    ] {
        for name in ["kustomer.team.create", "kustomer.tag.create"] {
            let body = format!(r#"{{"name":"{name}","data":{data}}}"#);
            let e = parse(body.as_bytes()).unwrap_err();
            assert_eq!(e, ParseError::DataNotAnObject { found }, "{body}");
            assert_eq!(e.pointer(), "/data");
            assert_eq!(
                parse_as(body.as_bytes(), name).unwrap_err(),
                ParseError::DataNotAnObject { found },
                "{body}"
            );
        }
    }
    // An array cut short is not JSON, rather than an array.
    assert!(matches!(
        parse(b"[1,2"),
        Err(ParseError::InvalidJson { .. })
    ));
    assert_eq!(
        parse(b"[1,2]").unwrap_err(),
        ParseError::NotAnObject { found: "array" }
    );
    // Trailing characters after an object without a name: not JSON.
    assert!(matches!(
        parse(br#"{"data":{}} x"#),
        Err(ParseError::InvalidJson { .. })
    ));
}
