//! Bytes in, a typed event out: `parse` and `parse_as` never panic, and what
//! parses re-serialises to exactly the JSON that was received (a lone
//! UTF-16 surrogate escape, which serde_json refuses and the runtime reads as
//! U+FFFD, compared as `\ufffd`).
#![no_main]

use std::borrow::Cow;

use kustomer_webhooks::{ParseError, parse, parse_as};
use libfuzzer_sys::fuzz_target;
use serde::Deserializer as _;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The body as the runtime reads it, in a form serde_json reads too.
fn as_read(data: &[u8]) -> Cow<'_, [u8]> {
    kustomer_schema::lone_surrogates_replaced(data)
}

/// How many times the body's top-level object has the key `name`.
fn names(data: &[u8]) -> usize {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(key) = map.next_key::<String>()? {
                n += usize::from(key == "name");
                map.next_value::<IgnoredAny>()?;
            }
            Ok(n)
        }
    }
    serde_json::Deserializer::from_slice(data)
        .deserialize_map(Count)
        .unwrap_or(0)
}

/// What `serde_json` makes of the body, for `parse`'s error to agree with.
fn agrees(error: &ParseError, data: &[u8]) {
    let json = serde_json::from_slice::<Value>(&as_read(data));
    match (error, &json) {
        (ParseError::InvalidJson { .. }, Err(_)) => {}
        (ParseError::InvalidJson { .. }, Ok(_)) => {
            panic!("parse called JSON that serde_json reads invalid: {error}")
        }
        (ParseError::NotAnObject { found }, Ok(v)) => {
            assert!(!v.is_object(), "an object was called not one");
            assert_eq!(*found, kustomer_webhooks::json_type(v));
        }
        (ParseError::MissingData, Ok(v)) => {
            assert!(v.get("data").is_none(), "`data` was there: {error}")
        }
        (ParseError::DataNotAnObject { found }, Ok(v)) => {
            let data = v.get("data").expect("`data` is there");
            assert!(!data.is_object(), "an object `data` was called not one");
            assert_eq!(*found, kustomer_webhooks::json_type(data));
        }
        (ParseError::EmptyName | ParseError::NameTwice { .. }, Ok(v)) => {
            assert!(v.is_object(), "{error}");
        }
        (
            ParseError::MissingName
            | ParseError::NameNotAString { .. }
            | ParseError::DuplicateName { .. },
            Ok(v),
        ) => {
            assert!(v.is_object(), "{error}");
        }
        (_, Ok(_)) => {}
        // Not JSON, yet refused for another reason: only where the reason
        // shows before the text goes wrong (an array; a name missing, or not
        // a string, once the object has ended).
        (
            ParseError::NotAnObject { found: "array" }
            | ParseError::MissingName
            | ParseError::NameNotAString { .. },
            Err(_),
        ) => {}
        (_, Err(e)) => panic!("parse gave {error} for a body serde_json refuses ({e})"),
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    if let Err(e) = &parsed {
        agrees(e, data);
    }
    let Ok(parsed) = parsed else {
        // Whatever `parse` refuses, `parse_as` refuses too, or for a
        // mismatch; except a body without a `name` string (none, or one of
        // another type), which is the
        // event the header names, with nothing lost. A body with `name` more
        // than once is ambiguous: `parse` goes by the first, `parse_as`
        // checks the header against the last.
        let unnamed = matches!(
            parsed,
            Err(ParseError::MissingName | ParseError::NameNotAString { .. })
        );
        if let Ok(p) = parse_as(data, "kustomer.customer.update") {
            if unnamed {
                assert_eq!(p.event.name().as_str(), "kustomer.customer.update");
                let received: Value = match serde_json::from_slice(&as_read(data)) {
                    Ok(v) => v,
                    Err(e) => panic!("parse_as accepted a body serde_json refuses: {e}"),
                };
                let back = serde_json::to_value(&p.event).ok();
                assert_eq!(back.as_ref(), Some(&received), "parse_as lost data");
            } else if names(&as_read(data)) < 2 {
                panic!("parse_as accepted what parse refused: {:?}", p.event.name());
            }
        }
        return;
    };
    let _ = parsed.drift();
    let received: Value = match serde_json::from_slice(&as_read(data)) {
        Ok(v) => v,
        Err(e) => panic!("parse accepted a body serde_json refuses: {e}"),
    };
    let back = match serde_json::to_value(&parsed.event) {
        Ok(v) => v,
        Err(e) => panic!("a parsed event does not serialise: {e}"),
    };
    assert_eq!(back, received, "re-serialising changed the event");

    // The same body, named by the header as Kustomer names it.
    let name = parsed.event.name().as_str().to_owned();
    match parse_as(data, &name) {
        Ok(again) => {
            assert_eq!(again.event.name().as_str(), name);
            let again = serde_json::to_value(&again.event).ok();
            assert_eq!(again.as_ref(), Some(&received), "parse_as lost data");
        }
        Err(e) => panic!("parse_as refused what parse accepted as {name:?}: {e}"),
    }
    // Another name in the header is a mismatch, never another event.
    if name != "kustomer.team.create" {
        match parse_as(data, "kustomer.team.create") {
            Err(ParseError::NameMismatch { .. }) => {}
            other => panic!("a header naming another event gave {other:?}"),
        }
    }
});
