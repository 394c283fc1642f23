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
