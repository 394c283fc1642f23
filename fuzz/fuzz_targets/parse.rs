//! Bytes in, a typed event out: `parse` and `parse_as` never panic, and what
//! parses re-serialises to exactly the JSON that was received.
#![no_main]

use kustomer_webhooks::{ParseError, parse, parse_as};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse(data) else {
        // Whatever `parse` refuses, `parse_as` refuses too, or for a mismatch.
        if let Ok(p) = parse_as(data, "kustomer.customer.update") {
            panic!("parse_as accepted what parse refused: {:?}", p.event.name());
        }
        return;
    };
    let _ = parsed.drift();
    let received: Value = match serde_json::from_slice(data) {
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
