//! Events: the traits the generated event types implement, and the macros
//! that declare them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Drift;
use crate::model::{Model, Pointer};
use crate::models::EventName;

/// What every event envelope offers, whatever its resource.
pub trait Envelope {
    /// The event id (`id`): the idempotency key; retries resend it.
    fn event_id(&self) -> Option<&str>;
    /// The event name as sent (`name`).
    fn event_name(&self) -> Option<&str>;
    /// The id of the resource the event is about (`data.id`).
    fn resource_id(&self) -> Option<&str>;
    /// The resource's revision (`data.attributes.rev`), where it has one.
    fn rev(&self) -> Option<i64>;
    /// Whether the payload had a `data` key at all.
    fn has_data(&self) -> bool;
}

/// A Kustomer resource with generated models (`Customer`, `Conversation`…).
pub trait Resource {
    /// Its `data.type`.
    const TYPE: &'static str;
    /// Its event envelope (`CustomerEvent`).
    type Event: Model + Envelope + Default + Clone + std::fmt::Debug;
}

/// An event with a generated type (`CustomerCreate`, `CustomerUpdate`…).
pub trait KnownEvent: Model {
    /// The event's name (`kustomer.customer.update`).
    const NAME: &'static str;
    /// The resource it is about.
    type Resource: Resource;
    /// The envelope.
    fn envelope(&self) -> &<Self::Resource as Resource>::Event;
}

/// An event without a generated type: a name outside the known list, or a
/// known name with no sample to build a model from (`kustomer.tag.create`).
/// Its body is kept whole.
#[derive(Clone, Debug, PartialEq)]
pub struct OtherEvent {
    /// Its name.
    pub name: EventName,
    /// The whole body.
    pub body: Map<String, Value>,
}

impl Serialize for OtherEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

impl Envelope for OtherEvent {
    fn event_id(&self) -> Option<&str> {
        self.body.get("id").and_then(Value::as_str)
    }
    fn event_name(&self) -> Option<&str> {
        self.body.get("name").and_then(Value::as_str)
    }
    fn resource_id(&self) -> Option<&str> {
        self.body.get("data")?.get("id")?.as_str()
    }
    fn rev(&self) -> Option<i64> {
        self.body
            .get("data")?
            .get("attributes")?
            .get("rev")?
            .as_i64()
    }
    fn has_data(&self) -> bool {
        self.body.contains_key("data")
    }
}

/// The drift of a whole event (or any model value).
pub fn drift_of<M: Model>(m: &M) -> Vec<Drift> {
    let mut out = Vec::new();
    m.drift(&mut Pointer::default(), &mut out);
    out
}

/// Declares one event type: a newtype over its resource's envelope that
/// dereferences to it, (de)serializes as it, and knows its name.
#[doc(hidden)]
#[macro_export]
macro_rules! __event {
    ($(#[$meta:meta])* $name:ident($envelope:ty) = $event:literal for $resource:ty) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name(pub $envelope);

        impl ::core::ops::Deref for $name {
            type Target = $envelope;
            fn deref(&self) -> &$envelope {
                &self.0
            }
        }

        impl ::core::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $envelope {
                &mut self.0
            }
        }

        impl $crate::__private::Serialize for $name {
            fn serialize<S: $crate::__private::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl $crate::__private::Model for $name {
            const EXPECTED: &'static str = "object";
            fn deserialize_tolerant<'de, D: $crate::__private::Deserializer<'de>>(
                d: D,
            ) -> ::core::result::Result<
                ::core::result::Result<Self, $crate::__private::Value>,
                D::Error,
            > {
                $crate::__private::read_in_place(d)
            }
            fn deserialize_tolerant_in_place<'de, D: $crate::__private::Deserializer<'de>>(
                d: D,
                slot: &mut Self,
            ) -> ::core::result::Result<$crate::__private::Misfit, D::Error> {
                <$envelope as $crate::__private::Model>::deserialize_tolerant_in_place(d, &mut slot.0)
            }
            fn deserialize_tolerant_option<'de, D: $crate::__private::Deserializer<'de>>(
                d: D,
                slot: &mut ::core::option::Option<Self>,
            ) -> ::core::result::Result<$crate::__private::Misfit, D::Error> {
                $crate::__private::read_option_in_place(d, slot)
            }
            fn drift(
                &self,
                pointer: &mut $crate::__private::Pointer,
                out: &mut ::std::vec::Vec<$crate::Drift>,
            ) {
                self.0.drift(pointer, out)
            }
        }

        impl $crate::KnownEvent for $name {
            const NAME: &'static str = $event;
            type Resource = $resource;
            fn envelope(&self) -> &$envelope {
                &self.0
            }
        }

        impl $crate::FromEvent for $name {
            const EVENTS: &'static [&'static str] = &[$event];
            fn from_event(
                event: $crate::AnyEvent,
            ) -> ::core::result::Result<Self, $crate::AnyEvent> {
                match event {
                    $crate::AnyEvent::$name(e) => ::core::result::Result::Ok(*e),
                    other => ::core::result::Result::Err(other),
                }
            }
        }
    };
}

/// Declares a resource: its `data.type`, its envelope, and its events; the
/// envelope then stands for all of them as a handler parameter.
#[doc(hidden)]
#[macro_export]
macro_rules! __resource {
    ($resource:ty = $type_name:literal, $envelope:ident, [$($event:ident),* $(,)?]) => {
        impl $crate::Resource for $resource {
            const TYPE: &'static str = $type_name;
            type Event = $envelope;
        }

        impl $crate::FromEvent for $envelope {
            const EVENTS: &'static [&'static str] =
                &[$(<$event as $crate::KnownEvent>::NAME),*];
            fn from_event(
                event: $crate::AnyEvent,
            ) -> ::core::result::Result<Self, $crate::AnyEvent> {
                match event {
                    $( $crate::AnyEvent::$event(e) => ::core::result::Result::Ok(e.0), )*
                    other => ::core::result::Result::Err(other),
                }
            }
        }
    };
}

/// Declares the event names (an open enum) and `AnyEvent`, the parsed form of
/// any event.
#[doc(hidden)]
#[macro_export]
macro_rules! __events {
    (
        typed { $( $typed:ident = $typed_name:literal, )* }
        untyped { $( $untyped:ident = $untyped_name:literal, )* }
    ) => {
        /// The name of an event: every name Kustomer documents, and any other.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventName {
            $(
                #[doc = concat!("`", $typed_name, "`")]
                $typed,
            )*
            $(
                #[doc = concat!("`", $untyped_name, "` (no sample payload, so no model: its body is kept whole)")]
                $untyped,
            )*
            /// A name this version does not know. Not an error: Kustomer adds events.
            Unknown($crate::Str),
        }

        impl EventName {
            /// Every known name, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($typed_name,)* $($untyped_name,)*];

            /// The name as Kustomer writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( EventName::$typed => $typed_name, )*
                    $( EventName::$untyped => $untyped_name, )*
                    EventName::Unknown(s) => s,
                }
            }

            /// Whether the name is one Kustomer documents.
            pub fn is_known(&self) -> bool {
                !matches!(self, EventName::Unknown(_))
            }

            /// Whether events of this name parse into a generated type.
            pub fn is_typed(&self) -> bool {
                matches!(self, $( EventName::$typed )|*)
            }
        }

        impl ::core::convert::From<&str> for EventName {
            fn from(s: &str) -> Self {
                match s {
                    $( $typed_name => EventName::$typed, )*
                    $( $untyped_name => EventName::$untyped, )*
                    other => EventName::Unknown(other.into()),
                }
            }
        }

        impl ::core::fmt::Display for EventName {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::Serialize for EventName {
            fn serialize<S: $crate::__private::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// Any event, parsed: a generated type for each known event with a
        /// model, [`OtherEvent`](crate::OtherEvent) for the rest.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyEvent {
            $(
                #[doc = concat!("`", $typed_name, "`")]
                $typed(::std::boxed::Box<$typed>),
            )*
            /// An event without a generated type.
            Other($crate::OtherEvent),
        }

        impl AnyEvent {
            /// The event's name.
            pub fn name(&self) -> EventName {
                match self {
                    $( AnyEvent::$typed(_) => EventName::$typed, )*
                    AnyEvent::Other(e) => e.name.clone(),
                }
            }

            /// Whether the event parsed into a generated type.
            pub fn is_typed(&self) -> bool {
                !matches!(self, AnyEvent::Other(_))
            }

            /// The resource type (`data.type`) the event's model is for;
            /// `None` for events without a generated type.
            pub fn resource_type(&self) -> ::core::option::Option<&'static str> {
                match self {
                    $(
                        AnyEvent::$typed(_) => ::core::option::Option::Some(
                            <<$typed as $crate::KnownEvent>::Resource as $crate::Resource>::TYPE,
                        ),
                    )*
                    AnyEvent::Other(_) => ::core::option::Option::None,
                }
            }

            /// The envelope, whatever the event.
            pub fn envelope(&self) -> &dyn $crate::Envelope {
                match self {
                    $( AnyEvent::$typed(e) => &e.0, )*
                    AnyEvent::Other(e) => e,
                }
            }

            /// Where the payload differs from the models, by JSON Pointer.
            pub fn drift(&self) -> ::std::vec::Vec<$crate::Drift> {
                match self {
                    $( AnyEvent::$typed(e) => $crate::__private::drift_of(&**e), )*
                    AnyEvent::Other(_) => ::std::vec::Vec::new(),
                }
            }

            /// Reads the event named `name` from `d` into `out`, where it is
            /// built in place; `Ok(Some(raw))` when the body is not a JSON
            /// object (`out` then holds an event of no use).
            #[doc(hidden)]
            pub fn __read_into<'de, D: $crate::__private::Deserializer<'de>>(
                name: EventName,
                d: D,
                out: &mut AnyEvent,
            ) -> ::core::result::Result<$crate::__private::Misfit, D::Error> {
                use $crate::__private::Model as _;
                match name {
                    $(
                        EventName::$typed => {
                            // Built in place on the heap: events are large, and
                            // `AnyEvent` stays small to move around.
                            let mut event = ::std::boxed::Box::<$typed>::default();
                            let misfit = $typed::deserialize_tolerant_in_place(d, &mut event)?;
                            if misfit.is_none() {
                                *out = AnyEvent::$typed(event);
                            }
                            ::core::result::Result::Ok(misfit)
                        }
                    )*
                    name => ::core::result::Result::Ok(
                        match $crate::__private::Map::<::std::string::String, $crate::__private::Value>
                            ::deserialize_tolerant(d)?
                        {
                            ::core::result::Result::Ok(body) => {
                                *out = AnyEvent::Other($crate::OtherEvent { name, body });
                                ::core::option::Option::None
                            }
                            ::core::result::Result::Err(raw) => $crate::__private::raw::misfit(raw),
                        },
                    ),
                }
            }
        }

        impl $crate::__private::Serialize for AnyEvent {
            fn serialize<S: $crate::__private::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                match self {
                    $( AnyEvent::$typed(e) => e.serialize(s), )*
                    AnyEvent::Other(e) => e.serialize(s),
                }
            }
        }
    };
}
