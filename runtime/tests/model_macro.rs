//! `#[model]` and `#[kustomer_webhook]` as a user's crate writes them: the
//! runtime reached under another path (`crate = "…"`), field types written
//! through a `macro_rules!` fragment, fields that keep their visibility, and
//! deprecated fields and handlers under `deny`.
#![deny(warnings, deprecated)]
#![allow(unexpected_cfgs)]
#![warn(clippy::needless_pass_by_value)]

use kustomer_webhooks::{Drift, Model, Pointer};

/// `text` read as `M`, with the drift found in it.
fn read<M: Model>(text: &str) -> (M, Vec<Drift>) {
    let model = M::from_json(text).unwrap().unwrap();
    let mut drift = Vec::new();
    model.add_drift(&mut Pointer::default(), &mut drift);
    (model, drift)
}

/// A facade crate's re-export, standing for a renamed dependency too: the
/// macros reach the runtime through it when told to.
mod facade {
    pub use kustomer_webhooks as kw;
}

mod through_the_facade {
    use crate::facade::kw::{Extra, Str};

    #[crate::facade::kw::model(crate = "crate::facade::kw")]
    pub struct Location {
        #[json("city")]
        pub city: Option<Str>,
        pub extra: Extra,
    }

    #[crate::facade::kw::kustomer_webhook(crate = "crate::facade::kw")]
    pub async fn on_update(event: crate::facade::kw::CustomerUpdate) {
        let _ = event;
    }
}

/// Fields written by a declarative macro arrive as `$t:ty` fragments.
macro_rules! model_of {
    ($name:ident, $key:literal, $field:ident: $t:ty) => {
        #[kustomer_webhooks::model]
        pub struct $name {
            #[json($key)]
            pub $field: $t,
            pub extra: kustomer_webhooks::Extra,
        }
    };
}

model_of!(Counted, "count", count: Option<i64>);

/// Names of the user's own for `Value` and `Extra`, and attributes under
/// `cfg_attr`.
mod aliases {
    type Json = kustomer_webhooks::serde_json::Value;
    type Unknown = kustomer_webhooks::Extra;

    #[kustomer_webhooks::model]
    pub struct Loose {
        #[json("anything", any)]
        pub anything: Option<Json>,
        #[cfg_attr(test, doc = "the size, when there is one")]
        #[cfg_attr(docsrs, doc(cfg(feature = "sizes")))]
        #[json("size")]
        pub size: Option<i64>,
        pub extra: Unknown,
    }
}

mod private_fields {
    use kustomer_webhooks::{Extra, Str};

    #[kustomer_webhooks::model]
    pub struct Note {
        #[json("body")]
        body: Option<Str>,
        #[json("flag")]
        pub(crate) flag: Option<bool>,
        pub extra: Extra,
    }

    impl Note {
        pub fn body(&self) -> Option<&str> {
            self.body.as_deref()
        }
    }
}

mod raw_names {
    use kustomer_webhooks::{Extra, Str, kustomer_webhook};

    #[kustomer_webhooks::model]
    pub struct Typed {
        #[json("type")]
        pub r#type: Option<Str>,
        pub extra: Extra,
    }

    #[kustomer_webhook]
    pub async fn r#match(event: kustomer_webhooks::UserUpdate) {
        let _ = event;
    }
}

mod blocking {
    /// A blocking handler that reads its event: clippy's pedantic
    /// `needless_pass_by_value` would ask for a reference, which the
    /// attribute refuses; a user's own `expect` of it still holds.
    #[expect(clippy::needless_pass_by_value)]
    #[kustomer_webhooks::kustomer_webhook]
    pub fn on_message(event: kustomer_webhooks::MessageCreate) {
        let _ = &event.id;
    }
}

mod deprecated_parts {
    use kustomer_webhooks::{Extra, kustomer_webhook};

    #[deprecated = "use `Old` instead"]
    #[kustomer_webhooks::model]
    pub struct Older {
        #[json("old")]
        pub old: Option<i64>,
        pub extra: Extra,
    }

    #[kustomer_webhooks::model]
    pub struct Old {
        #[deprecated = "read `new` instead"]
        #[json("old")]
        pub old: Option<i64>,
        #[json("new")]
        pub new: Option<i64>,
        pub extra: Extra,
    }

    #[deprecated = "handled elsewhere now"]
    #[kustomer_webhook]
    pub async fn on_team(event: kustomer_webhooks::TeamUpdate) {
        let _ = event;
    }
}

#[test]
fn a_model_reached_through_another_path_reads_and_writes_back() {
    let (location, drift) =
        read::<through_the_facade::Location>(r#"{"city":"Lyon","zip":"69001"}"#);
    assert!(drift.is_empty(), "{drift:?}");
    assert_eq!(location.city.as_deref(), Some("Lyon"));
    assert_eq!(
        serde_json::to_string(&location).unwrap(),
        r#"{"city":"Lyon","zip":"69001"}"#
    );
}

#[test]
fn a_handler_reached_through_another_path_is_registered() {
    let dispatcher = kustomer_webhooks::Dispatcher::builder()
        .registered_where(|path| path.contains("through_the_facade"))
        .build()
        .unwrap();
    assert!(dispatcher.events().contains(&"kustomer.customer.update"));
}

#[test]
fn an_option_written_through_a_macro_fragment_is_optional() {
    // Absent: `None`, no drift (it was read as a required struct before).
    let (counted, drift) = read::<Counted>("{}");
    assert_eq!(counted.count, None);
    assert!(drift.is_empty(), "{drift:?}");
    let (counted, drift) = read::<Counted>(r#"{"count":3}"#);
    assert_eq!(counted.count, Some(3));
    assert!(drift.is_empty(), "{drift:?}");
}

#[test]
fn fields_keep_their_visibility_and_are_still_read() {
    let (note, _) = read::<private_fields::Note>(r#"{"body":"hi","flag":true}"#);
    assert_eq!(note.body(), Some("hi"));
    assert_eq!(note.flag, Some(true));
}

#[test]
#[allow(deprecated)]
fn a_deprecated_field_is_read_without_warning_the_model_itself() {
    let (old, _) = read::<deprecated_parts::Old>(r#"{"old":1,"new":2}"#);
    assert_eq!((old.old, old.new), (Some(1), Some(2)));
}

#[test]
fn raw_identifiers_are_shown_and_registered_without_their_prefix() {
    let (typed, _) = read::<raw_names::Typed>(r#"{"type":"vip"}"#);
    assert!(
        format!("{typed:?}").starts_with(r#"Typed { type: Some("#),
        "{typed:?}"
    );
    let dispatcher = kustomer_webhooks::Dispatcher::builder()
        .registered_where(|path| path.ends_with("raw_names::match"))
        .build()
        .unwrap();
    assert_eq!(dispatcher.events(), ["kustomer.user.update"]);
}

/// Types of the user's own that shadow primitive names.
mod shadowing_primitives {
    #![allow(non_camel_case_types, dead_code)]

    use kustomer_webhooks::{Extra, kustomer_webhook};

    struct str;
    struct bool;

    #[kustomer_webhooks::model]
    pub struct Flag {
        #[json("on")]
        pub on: Option<::core::primitive::bool>,
        pub extra: Extra,
    }

    #[kustomer_webhook(event = "kustomer.team.update")]
    async fn on_team(event: kustomer_webhooks::TeamEvent) {
        let _ = event;
    }
}

#[test]
fn an_any_field_and_extra_may_be_written_under_other_names() {
    let (loose, drift) = read::<aliases::Loose>(r#"{"anything":[1,"a"],"size":3,"more":true}"#);
    assert!(drift.is_empty(), "{drift:?}");
    assert_eq!(loose.anything, Some(serde_json::json!([1, "a"])));
    assert_eq!(loose.size, Some(3));
    assert_eq!(loose.extra["more"], true);
}

/// Equality compares the values `Debug` shows (the fields and `extra`), not
/// whether a key was absent or null, which only writing the payload back
/// tells apart: a value built by hand equals the one parsed with the same
/// values.
#[test]
fn equality_compares_values_not_whether_a_key_was_absent_or_null() {
    use kustomer_webhooks::{Str, UserAttributes};
    let parsed = UserAttributes::from_json(r#"{"displayName": null, "name": "x"}"#)
        .unwrap()
        .unwrap();
    let built = UserAttributes {
        name: Some(Str::from("x")),
        ..Default::default()
    };
    assert_eq!(parsed, built);
    assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    // Written back, each is still what it was.
    let written = kustomer_webhooks::serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        written["displayName"],
        kustomer_webhooks::serde_json::Value::Null
    );
    let written = kustomer_webhooks::serde_json::to_value(&built).unwrap();
    assert!(written.get("displayName").is_none());
    // A value that differs still differs.
    let other = UserAttributes {
        name: Some(Str::from("y")),
        ..Default::default()
    };
    assert_ne!(parsed, other);
}

/// A drifted field given a value since writes that value, and no longer
/// drifts; an update's change does the same.
#[test]
fn a_drifted_field_given_a_value_since_no_longer_drifts() {
    let text = seed("kustomer.customer.update");
    let mut payload: kustomer_webhooks::serde_json::Value =
        kustomer_webhooks::serde_json::from_str(text).unwrap();
    payload["data"]["attributes"]["rev"] = "7".into();
    payload["changes"]["attributes"]["rev"]["after"] = "7".into();
    let body = payload.to_string();
    let parsed = kustomer_webhooks::parse(body.as_bytes()).unwrap();
    let kustomer_webhooks::AnyEvent::CustomerUpdate(mut event) = parsed.event else {
        panic!("a customer update");
    };
    let pointers = |event: &kustomer_webhooks::CustomerUpdate| {
        event
            .drift()
            .iter()
            .map(|d| d.pointer.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pointers(&event),
        ["/changes/attributes/rev/after", "/data/attributes/rev"]
    );
    event.data.attributes.rev = Some(8);
    if let Some(rev) = event
        .changes
        .as_mut()
        .and_then(|c| c.attributes.rev.as_mut())
    {
        rev.after = Some(8);
    }
    assert!(pointers(&event).is_empty(), "{:?}", event.drift());
    let written = kustomer_webhooks::serde_json::to_value(&event).unwrap();
    assert_eq!(written["data"]["attributes"]["rev"], 8);
    assert_eq!(written["changes"]["attributes"]["rev"]["after"], 8);
    // A change shows and compares its values only.
    let change = event
        .changes
        .as_ref()
        .unwrap()
        .attributes
        .rev
        .as_ref()
        .unwrap();
    let shown = format!("{change:?}");
    assert!(!shown.contains("marks"), "{shown}");
}

/// A parsed event's `Debug` gives the body's size, not its bytes.
#[test]
fn a_parsed_events_debug_gives_the_bodys_size_not_its_bytes() {
    let text = seed("kustomer.team.create");
    let parsed = kustomer_webhooks::parse(text.as_bytes()).unwrap();
    let shown = format!("{parsed:?}");
    assert!(
        shown.starts_with(&format!("Parsed {{ raw: <{} bytes>, event: ", text.len())),
        "{shown}"
    );
}

/// A date made from an instant writes that instant: milliseconds as
/// Kustomer writes them, more digits when it has them.
#[test]
fn a_date_made_from_an_instant_writes_that_instant() {
    use kustomer_webhooks::DateTime;
    for (text, written) in [
        ("2021-04-26T21:33:54.123456Z", "2021-04-26T21:33:54.123456Z"),
        (
            "2021-04-26T21:33:54.123456789Z",
            "2021-04-26T21:33:54.123456789Z",
        ),
        ("2021-04-26T21:33:54.120Z", "2021-04-26T21:33:54.120Z"),
        ("2021-04-26T21:33:54Z", "2021-04-26T21:33:54.000Z"),
    ] {
        let at = DateTime::from(DateTime::parse(text).unwrap().utc());
        assert_eq!(at.to_string(), written);
        assert_eq!(DateTime::parse(&at.to_string()).unwrap().utc(), at.utc());
    }
}

/// Kustomer's published sample of `event`.
fn seed(event: &str) -> &'static str {
    kustomer_schema::SEED_SAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, text)| *text)
        .unwrap()
}

/// A struct the payload did not have (or had drifted), given one that holds
/// only a null since, is written back with it: what a struct holds is told
/// by what it writes, not by `==`, which leaves nulls out.
#[test]
fn a_struct_given_since_is_written_even_holding_only_a_null() {
    use kustomer_webhooks::serde_json::{Value, json};
    use kustomer_webhooks::{Model as _, UserAttributes};
    for data in [
        r#"{"type":"user","id":"5f0000000000000000000001"}"#,
        r#"{"type":"user","id":"5f0000000000000000000001","attributes":"oops"}"#,
    ] {
        let body = format!(r#"{{"name":"kustomer.user.create","id":"x","data":{data}}}"#);
        let parsed = kustomer_webhooks::parse(body.as_bytes()).unwrap();
        let kustomer_webhooks::AnyEvent::UserCreate(mut event) = parsed.event else {
            panic!("a user create");
        };
        let untouched = kustomer_webhooks::serde_json::to_value(&event).unwrap();
        let given: Value = kustomer_webhooks::serde_json::from_str(data).unwrap();
        assert_eq!(untouched["data"], given, "written back as received");
        event.data.attributes = UserAttributes::from_json(r#"{"displayName": null}"#)
            .unwrap()
            .unwrap();
        let written = kustomer_webhooks::serde_json::to_value(&event).unwrap();
        assert_eq!(
            written["data"]["attributes"],
            json!({"displayName": null}),
            "{data}"
        );
    }
}
