// Models of a resource whose dates the samples gave as strings that are not
// RFC 3339 date-times (so no field has the type `DateTime`), and of a custom
// object seen only created (no change set), whose file uses `Value` only for
// fields of any JSON, compile without a warning, under the lints a careful
// crate turns on. Regenerate them with
// `kustomer-webhooks regenerate --samples runtime/tests/ui/string-dates/samples
// --no-seed --out runtime/tests/ui/string-dates/models`.
#![deny(warnings, unused_qualifications)]

#[path = "string-dates/models/mod.rs"]
mod kustomer;

fn main() {
    use kustomer_webhooks::Envelope as _;
    let body = include_bytes!("string-dates/samples/widget.update.json");
    let parsed = kustomer::parse(body).unwrap();
    let kustomer::AnyEvent::WidgetUpdate(event) = parsed.event else {
        panic!("a widget update");
    };
    // Read from the strings, which are not RFC 3339: none.
    assert_eq!(event.created_at(), None);
    let body = include_bytes!("string-dates/samples/order.create.json");
    let parsed = kustomer::parse(body).unwrap();
    assert!(parsed.drift().is_empty());
    let kustomer::AnyEvent::KobjectOrderCreate(order) = parsed.event else {
        panic!("an order created");
    };
    assert_eq!(order.rev(), Some(1));
}
