//! Events: the traits the generated event types implement, and the macros
//! that declare them.

use std::marker::PhantomData;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Drift;
use crate::model::{Model, Pointer};

/// What every event envelope offers, whatever its resource.
///
/// Each value is read from the typed field where the payload fits the model,
/// and otherwise from the value kept in `extra`: an id in another format
/// than the model's (drift) is still the event's id.
pub trait Envelope {
    /// The event id (`id`), any string: the idempotency key; retries resend it.
    fn event_id(&self) -> Option<&str>;
    /// The event name as sent (`name`).
    fn event_name(&self) -> Option<&str>;
    /// The id of the resource the event is about (`data.id`), any string.
    fn resource_id(&self) -> Option<&str>;
    /// The resource's revision (`data.attributes.rev`), where it has one: an
    /// integer, or a string holding one.
    fn rev(&self) -> Option<i64>;
    /// When the resource was last updated (`data.attributes.updatedAt`), in
    /// milliseconds since the Unix epoch: what orders the updates of a
    /// resource without a `rev` (users and teams). Models generated before
    /// this method was added do not read it (`None`): regenerate them.
    fn updated_at(&self) -> Option<i64> {
        None
    }
    /// When the event was created (`createdAt`, the envelope's), in
    /// milliseconds since the Unix epoch: how old a delivery's event is
    /// ([`Receiver::with_max_event_age`](crate::receiver::Receiver::with_max_event_age)).
    /// Models generated before this method was added do not read it
    /// (`None`): regenerate them.
    fn created_at(&self) -> Option<i64> {
        None
    }
    /// The id of the org the event belongs to (`org`, any string): which
    /// tenant a delivery is from, for an app installed in several orgs.
    /// Models generated before this method was added do not read it
    /// (`None`): regenerate them.
    fn org(&self) -> Option<&str> {
        None
    }
    /// The org's name (`orgName`), which Kustomer sometimes leaves out.
    /// Models generated before this method was added do not read it
    /// (`None`): regenerate them.
    fn org_name(&self) -> Option<&str> {
        None
    }
    /// Whether the payload had a `data` key at all.
    fn has_data(&self) -> bool;
    /// The JSON type of the envelope's `name` or `data` (`key`) when the
    /// body had it with a value of another type than the models read it as
    /// (a `data` that is `null`, a `name` that is a number): the parse
    /// functions refuse such a body ([`ParseError`](crate::ParseError)).
    /// `None` when it fits, is absent, or `key` is another. Models generated
    /// before this method was added do not tell (`None`): regenerate them.
    fn misfit(&self, key: &str) -> Option<&'static str> {
        let _ = key;
        None
    }
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
///
/// `S` is the set of models it was parsed with: the bundled
/// [`AnyEvent`](crate::AnyEvent) by default, or a set generated into your
/// crate (whose module names this type `OtherEvent` too).
pub struct OtherEvent<S = crate::AnyEvent> {
    /// Its name.
    pub name: EventName,
    /// The whole body.
    pub body: Map<String, Value>,
    set: PhantomData<fn() -> S>,
}

impl<S> OtherEvent<S> {
    /// An event named `name` with the body `body`.
    pub fn new(name: EventName, body: Map<String, Value>) -> Self {
        OtherEvent {
            name,
            body,
            set: PhantomData,
        }
    }
}

impl<S> Clone for OtherEvent<S> {
    fn clone(&self) -> Self {
        OtherEvent::new(self.name.clone(), self.body.clone())
    }
}

impl<S> PartialEq for OtherEvent<S> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.body == other.body
    }
}

impl<S> std::fmt::Debug for OtherEvent<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtherEvent")
            .field("name", &self.name)
            .field("body", &self.body)
            .finish()
    }
}

impl<S> Serialize for OtherEvent<S> {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.body.serialize(s)
    }
}

impl<S> Envelope for OtherEvent<S> {
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
        // As the typed models read it: an integer, or a string holding one.
        match self.body.get("data")?.get("attributes")?.get("rev")? {
            Value::Number(n) => crate::model::number_int(n),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
    fn updated_at(&self) -> Option<i64> {
        crate::model::value_millis(self.body.get("data")?.get("attributes")?.get("updatedAt")?)
    }
    fn created_at(&self) -> Option<i64> {
        crate::model::value_millis(self.body.get("createdAt")?)
    }
    fn org(&self) -> Option<&str> {
        self.body.get("org").and_then(Value::as_str)
    }
    fn org_name(&self) -> Option<&str> {
        self.body.get("orgName").and_then(Value::as_str)
    }
    fn has_data(&self) -> bool {
        self.body.contains_key("data")
    }
    fn misfit(&self, key: &str) -> Option<&'static str> {
        let value = self.body.get(key)?;
        let fits = match key {
            "name" => value.is_string(),
            "data" => value.is_object(),
            _ => true,
        };
        (!fits).then(|| crate::json_type(value))
    }
}

/// A set of event models: what parsing produces and handlers are dispatched
/// from. The runtime bundles one, [`AnyEvent`](crate::AnyEvent), built from
/// Kustomer's published samples; `kustomer-webhooks regenerate --out` writes
/// another into your crate, from your own payloads, with its own `AnyEvent`
/// implementing this trait.
///
/// Everything that takes events is generic over the set, defaulting to the
/// bundled one: [`Parsed`](crate::Parsed), [`Dispatcher`](crate::Dispatcher),
/// [`Receiver`](crate::receiver::Receiver), [`OtherEvent`]. A handler's
/// parameter type says which set it belongs to ([`FromEvent::Set`](crate::FromEvent::Set)).
///
/// Implemented by the `__events!` declaration at the end of a generated
/// `mod.rs`; there is nothing to write by hand.
pub trait Events: Serialize + std::fmt::Debug + Clone + Send + Sync + Sized + 'static {
    /// The names of the events that have a generated type in this set.
    const TYPED: &'static [&'static str];
    /// The event's name.
    fn name(&self) -> EventName;
    /// Whether the event parsed into a generated type.
    fn is_typed(&self) -> bool;
    /// The envelope, whatever the event.
    fn envelope(&self) -> &dyn Envelope;
    /// Where the payload differs from the models, by JSON Pointer.
    fn drift(&self) -> Vec<Drift>;
    /// An event without a generated type, in this set.
    fn from_other(event: OtherEvent<Self>) -> Self;
    /// The event without a generated type, or the event back.
    fn into_other(self) -> Result<OtherEvent<Self>, Self>;
    /// Reads the event named `name` from `d` into `out`.
    #[doc(hidden)]
    fn __read_into(
        name: EventName,
        r: &mut crate::model::Reader<'_>,
        out: &mut Self,
    ) -> Result<crate::model::Misfit, crate::model::ReadError>;
}

macro_rules! event_names {
    ($( $variant:ident = $name:literal, )*) => {
        /// The name of an event: every name Kustomer documents for outbound
        /// webhooks, and any other.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventName {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A name this version does not know. Not an error: Kustomer adds events.
            Unknown(crate::Str),
        }

        impl EventName {
            /// Every name Kustomer documents, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($name,)*];

            /// The name as Kustomer writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( EventName::$variant => $name, )*
                    EventName::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for EventName {
            fn from(s: &str) -> Self {
                match s {
                    $( $name => EventName::$variant, )*
                    other => EventName::Unknown(other.into()),
                }
            }
        }

        impl EventName {
            /// The documented name `name`, at compile time: what a generated
            /// event type's name is, without a lookup per event.
            #[doc(hidden)]
            pub const fn __documented(name: &str) -> Option<EventName> {
                $(
                    if crate::dispatch::lists(&[$name], name) {
                        return Some(EventName::$variant);
                    }
                )*
                None
            }
        }
    };
}

event_names! {
    ConversationCreate = "kustomer.conversation.create",
    ConversationUpdate = "kustomer.conversation.update",
    CustomerCreate = "kustomer.customer.create",
    CustomerUpdate = "kustomer.customer.update",
    MessageCreate = "kustomer.message.create",
    MessageUpdate = "kustomer.message.update",
    TeamCreate = "kustomer.team.create",
    TeamUpdate = "kustomer.team.update",
    UserCreate = "kustomer.user.create",
    UserUpdate = "kustomer.user.update",
    TagCreate = "kustomer.tag.create",
    TagUpdate = "kustomer.tag.update",
}

impl EventName {
    /// Whether the name is one Kustomer documents.
    pub fn is_known(&self) -> bool {
        !matches!(self, EventName::Unknown(_))
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Any string is a name (an unknown one is [`EventName::Unknown`]), so
/// this never fails; for `"…".parse::<EventName>()`.
impl std::str::FromStr for EventName {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventName::from(s))
    }
}

impl<'de> serde::Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(EventName::from(&*name))
    }
}

/// `name == "kustomer.customer.update"`: compares the name as written.
impl PartialEq<str> for EventName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<EventName> for &str {
    fn eq(&self, other: &EventName) -> bool {
        *self == other.as_str()
    }
}

/// The drift of a whole event (or any model value).
pub fn drift_of<M: Model>(m: &M) -> Vec<Drift> {
    let mut out = Vec::new();
    m.add_drift(&mut Pointer::default(), &mut out);
    out
}

/// Declares one event type: a newtype over its resource's envelope that
/// dereferences to it, (de)serializes as it, and knows its name.
#[doc(hidden)]
#[macro_export]
macro_rules! __event {
    ($(#[$meta:meta])* $name:ident($envelope:ty) = $event:literal for $resource:ty, in $set:ident) => {
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
            fn read_option(
                r: &mut $crate::__private::Reader<'_>,
                slot: &mut ::core::option::Option<Self>,
            ) -> ::core::result::Result<$crate::__private::Misfit, $crate::__private::ReadError> {
                $crate::__private::read_option_in_place(r, slot)
            }
            fn read_in_place(
                r: &mut $crate::__private::Reader<'_>,
                slot: &mut Self,
            ) -> ::core::result::Result<$crate::__private::Misfit, $crate::__private::ReadError> {
                <$envelope as $crate::__private::Model>::read_in_place(r, &mut slot.0)
            }
            fn add_drift(
                &self,
                pointer: &mut $crate::__private::Pointer,
                out: &mut ::std::vec::Vec<$crate::Drift>,
            ) {
                $crate::__private::Model::add_drift(&self.0, pointer, out)
            }
        }

        impl $name {
            /// Where this payload differs from the models, by JSON Pointer:
            /// each value kept in an `extra` map because it was not of the
            /// type its field expects. Empty when the payload matches them.
            pub fn drift(&self) -> ::std::vec::Vec<$crate::Drift> {
                $crate::__private::drift_of(&self.0)
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
            type Set = super::$set;
            const EVENTS: &'static [&'static str] = &[$event];
            fn from_event(
                event: super::$set,
            ) -> ::core::result::Result<Self, super::$set> {
                match event {
                    super::$set::$name(e) => ::core::result::Result::Ok(
                        $crate::__private::take_recycling(e, |e| e),
                    ),
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
    ($resource:ty = $type_name:literal, $envelope:ident, [$($event:ident),* $(,)?], in $set:ident) => {
        impl $crate::Resource for $resource {
            const TYPE: &'static str = $type_name;
            type Event = $envelope;
        }

        impl $envelope {
            /// Where this payload differs from the models, by JSON Pointer:
            /// each value kept in an `extra` map because it was not of the
            /// type its field expects. Empty when the payload matches them.
            pub fn drift(&self) -> ::std::vec::Vec<$crate::Drift> {
                $crate::__private::drift_of(self)
            }
        }

        impl $crate::FromEvent for $envelope {
            type Set = super::$set;
            const EVENTS: &'static [&'static str] =
                &[$(<$event as $crate::KnownEvent>::NAME),*];
            fn from_event(
                event: super::$set,
            ) -> ::core::result::Result<Self, super::$set> {
                match event {
                    $( super::$set::$event(e) => ::core::result::Result::Ok(
                        $crate::__private::take_recycling(e, |e| &mut e.0),
                    ), )*
                    other => ::core::result::Result::Err(other),
                }
            }
        }
    };
}

/// Declares `AnyEvent`, the parsed form of any event of a set of models (see
/// [`Events`]), with `OtherEvent`, `parse`, `parse_as`, `dispatcher` and
/// `dispatcher_with_state` for that set.
#[doc(hidden)]
#[macro_export]
macro_rules! __events {
    (
        typed { $( $typed:ident = $typed_name:literal, )* }
    ) => {
        /// Any event, parsed: a generated type for each event with a model,
        /// [`OtherEvent`] for the rest.
        #[derive(Clone, Debug, PartialEq)]
        pub enum AnyEvent {
            $(
                #[doc = concat!("`", $typed_name, "`")]
                $typed(::std::boxed::Box<$typed>),
            )*
            /// An event without a generated type.
            Other(OtherEvent),
        }

        /// An event of this set without a generated type.
        pub type OtherEvent = $crate::OtherEvent<AnyEvent>;

        impl AnyEvent {
            /// The event's name.
            pub fn name(&self) -> $crate::EventName {
                match self {
                    $(
                        AnyEvent::$typed(_) => {
                            const NAME: ::core::option::Option<$crate::EventName> =
                                $crate::EventName::__documented($typed_name);
                            match NAME {
                                ::core::option::Option::Some(name) => name,
                                ::core::option::Option::None => $crate::EventName::from($typed_name),
                            }
                        }
                    )*
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
        }

        /// The whole set as a handler's parameter: a catch-all, taking every
        /// event that no other handler takes.
        impl $crate::FromEvent for AnyEvent {
            type Set = AnyEvent;
            const EVENTS: &'static [&'static str] = <AnyEvent as $crate::Events>::TYPED;
            const ANY: bool = true;
            fn from_event(event: AnyEvent) -> ::core::result::Result<Self, AnyEvent> {
                ::core::result::Result::Ok(event)
            }
        }

        impl $crate::Events for AnyEvent {
            const TYPED: &'static [&'static str] = &[$($typed_name,)*];
            fn name(&self) -> $crate::EventName {
                AnyEvent::name(self)
            }
            fn is_typed(&self) -> bool {
                AnyEvent::is_typed(self)
            }
            fn envelope(&self) -> &dyn $crate::Envelope {
                AnyEvent::envelope(self)
            }
            fn drift(&self) -> ::std::vec::Vec<$crate::Drift> {
                AnyEvent::drift(self)
            }
            fn from_other(event: OtherEvent) -> Self {
                AnyEvent::Other(event)
            }
            fn into_other(self) -> ::core::result::Result<OtherEvent, Self> {
                match self {
                    AnyEvent::Other(e) => ::core::result::Result::Ok(e),
                    other => ::core::result::Result::Err(other),
                }
            }
            fn __read_into(
                name: $crate::EventName,
                r: &mut $crate::__private::Reader<'_>,
                out: &mut AnyEvent,
            ) -> ::core::result::Result<$crate::__private::Misfit, $crate::__private::ReadError> {
                use $crate::__private::Model as _;
                match name.as_str() {
                    $(
                        $typed_name => {
                            // Built in place on the heap: events are large, and
                            // `AnyEvent` stays small to move around.
                            let mut event = $crate::__private::boxed_default::<$typed>();
                            let misfit = $typed::read_in_place(r, &mut event)?;
                            if misfit.is_none() {
                                *out = AnyEvent::$typed(event);
                            }
                            ::core::result::Result::Ok(misfit)
                        }
                    )*
                    _ => {
                        let mut body = ::core::option::Option::None;
                        let misfit = $crate::__private::Map::<
                            ::std::string::String,
                            $crate::__private::Value,
                        >::read_option(r, &mut body)?;
                        if let ::core::option::Option::Some(body) = body {
                            *out = AnyEvent::Other(OtherEvent::new(name, body));
                        }
                        ::core::result::Result::Ok(misfit)
                    }
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

        /// Parses an event body with this set's models (see
        /// [`Parsed::parse`]($crate::Parsed::parse)).
        #[allow(dead_code)]
        pub fn parse(
            body: &[u8],
        ) -> ::core::result::Result<$crate::Parsed<'_, AnyEvent>, $crate::ParseError> {
            $crate::Parsed::parse(body)
        }

        /// Parses an event body whose name the request gave, with this set's
        /// models (see [`Parsed::parse_as`]($crate::Parsed::parse_as)).
        #[allow(dead_code)]
        pub fn parse_as<'a>(
            body: &'a [u8],
            header_name: &str,
        ) -> ::core::result::Result<$crate::Parsed<'a, AnyEvent>, $crate::ParseError> {
            $crate::Parsed::parse_as(body, header_name)
        }

        /// A dispatcher builder for handlers of this set's events.
        #[allow(dead_code)]
        pub fn dispatcher() -> $crate::DispatcherBuilder<(), AnyEvent> {
            $crate::DispatcherBuilder::new(())
        }

        /// A dispatcher builder for handlers of this set's events that may
        /// take `State<T>`.
        #[allow(dead_code)]
        pub fn dispatcher_with_state<T: ::core::marker::Send + ::core::marker::Sync + 'static>(
            state: T,
        ) -> $crate::DispatcherBuilder<T, AnyEvent> {
            $crate::DispatcherBuilder::new(state)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_other_events_rev_is_an_integer_or_a_string_holding_one() {
        let rev = |rev: Value| {
            let body = serde_json::json!({"data": {"attributes": {"rev": rev}}});
            let Value::Object(body) = body else {
                unreachable!()
            };
            crate::OtherEvent::<crate::AnyEvent>::new(
                crate::EventName::from("kustomer.tag.update"),
                body,
            )
            .rev()
        };
        assert_eq!(rev(7.into()), Some(7));
        assert_eq!(rev("8".into()), Some(8));
        assert_eq!(rev("8.5".into()), None);
        assert_eq!(rev(8.5.into()), None);
        // A float with no fraction is a whole number, up to 2^53.
        assert_eq!(rev(8.0.into()), Some(8));
        assert_eq!(rev((-3.0).into()), Some(-3));
        assert_eq!(rev(9_007_199_254_740_992.0.into()), Some(1 << 53));
        assert_eq!(rev(1e19.into()), None);
        assert_eq!(rev(u64::MAX.into()), None);
        assert_eq!(rev(Value::Null), None);
    }

    #[test]
    fn an_other_events_created_at_is_its_envelopes_date_time() {
        let created_at = |body: Value| {
            let Value::Object(body) = body else {
                unreachable!()
            };
            crate::OtherEvent::<crate::AnyEvent>::new(
                crate::EventName::from("kustomer.tag.update"),
                body,
            )
            .created_at()
        };
        let at = serde_json::json!({"createdAt": "2021-04-26T21:36:47.823Z"});
        assert_eq!(created_at(at), Some(1_619_473_007_823));
        assert_eq!(created_at(serde_json::json!({"createdAt": "soon"})), None);
        assert_eq!(created_at(serde_json::json!({})), None);
    }

    #[test]
    fn every_event_names_its_org_typed_drifted_or_other() {
        // The bundled models read it typed from every sample.
        for (name, sample) in kustomer_schema::SEED_SAMPLES {
            let parsed = crate::parse(sample.as_bytes()).unwrap();
            let envelope = parsed.event.envelope();
            assert_eq!(envelope.org(), Some("5f8481c6a22ab5b9d5f2dd8a"), "{name}");
            let expected: Value = serde_json::from_str(sample).unwrap();
            assert_eq!(envelope.org_name(), expected["orgName"].as_str(), "{name}");
        }
        // Drifted to another type than the model's: kept in `extra`, read
        // from there when it is a string, `None` when not.
        let (_, sample) = kustomer_schema::SEED_SAMPLES
            .iter()
            .find(|(name, _)| *name == "kustomer.team.create")
            .unwrap();
        let mut body: Value = serde_json::from_str(sample).unwrap();
        body["org"] = serde_json::json!({"id": "5f8481c6a22ab5b9d5f2dd8a"});
        body["orgName"] = serde_json::json!(7);
        let bytes = serde_json::to_vec(&body).unwrap();
        let parsed = crate::parse(&bytes).unwrap();
        assert_eq!(parsed.event.envelope().org(), None);
        assert_eq!(parsed.event.envelope().org_name(), None);
        assert!(!parsed.drift().is_empty());
        // An event without a model reads it from its body.
        let other = |body: Value| {
            let Value::Object(body) = body else {
                unreachable!()
            };
            crate::OtherEvent::<crate::AnyEvent>::new(
                crate::EventName::from("kustomer.tag.update"),
                body,
            )
        };
        let tag = other(serde_json::json!({"org": "o1", "orgName": "acme"}));
        assert_eq!((tag.org(), tag.org_name()), (Some("o1"), Some("acme")));
        let tag = other(serde_json::json!({"org": 1}));
        assert_eq!((tag.org(), tag.org_name()), (None, None));
    }

    #[test]
    fn a_name_compares_with_strings_parses_and_reads_back_from_json() {
        let name = EventName::CustomerUpdate;
        assert!(name == "kustomer.customer.update");
        assert!("kustomer.customer.update" == name);
        assert!(name != "kustomer.customer.create");
        assert_eq!(
            "kustomer.tag.create".parse::<EventName>(),
            Ok(EventName::TagCreate)
        );
        let unknown: EventName = "kustomer.kobject.order.create".parse().unwrap();
        assert_eq!(
            unknown,
            EventName::Unknown("kustomer.kobject.order.create".into())
        );
        for name in [EventName::UserCreate, unknown] {
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(serde_json::from_str::<EventName>(&json).unwrap(), name);
        }
        assert!(serde_json::from_str::<EventName>("1").is_err());
    }
}
