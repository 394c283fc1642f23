//! Bytes in, a typed event out.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::Drift;
use crate::model::Key;
use crate::models::AnyEvent;
use crate::{EventName, Events};

/// Why a body is not an event at all. Anything short of these is parsed, with
/// the values that do not fit the models reported as [`Drift`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The body is JSON, but not an object.
    #[error("the body is a JSON {found}, not an object (an event envelope)")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The body has no `name`, or it is not a string.
    #[error("the body has no `name` (the event name string) at /name")]
    MissingName,
    /// The body has no `data`.
    #[error("the body has no `data` (the resource the event is about) at /data")]
    MissingData,
    /// The body has `name` twice, with different values.
    #[error("the body names its event twice, {first:?} and then {last:?}, at /name")]
    DuplicateName {
        /// The first name.
        first: String,
        /// The last name.
        last: String,
    },
    /// The event name in the request header and in the body disagree.
    #[error("the event name header says {header:?} but the body's /name says {body:?}")]
    NameMismatch {
        /// The name the header gave.
        header: String,
        /// The name in the body.
        body: String,
    },
}

impl ParseError {
    /// The JSON Pointer the error is about, where there is one.
    pub fn pointer(&self) -> Option<&'static str> {
        match self {
            ParseError::MissingName
            | ParseError::DuplicateName { .. }
            | ParseError::NameMismatch { .. } => Some("/name"),
            ParseError::MissingData => Some("/data"),
            ParseError::NotAnObject { .. } => Some(""),
            ParseError::InvalidJson { .. } => None,
        }
    }
}

/// A parsed event, and the body it was parsed from.
///
/// `S` is the set of models the event was parsed with: the bundled
/// [`AnyEvent`] unless you generated your own (see [`Events`]).
#[derive(Debug, Clone)]
pub struct Parsed<'a, S = AnyEvent> {
    /// The raw body, exactly as received (what the signature covers).
    pub raw: &'a [u8],
    /// The event.
    pub event: S,
}

impl<'a, S: Events> Parsed<'a, S> {
    /// Where the body differs from the models, by JSON Pointer. Computed on
    /// demand: parsing itself never pays for it.
    pub fn drift(&self) -> Vec<Drift> {
        self.event.drift()
    }

    /// Parses an event body into the set `S`: [`parse`] for any set of
    /// models (a generated models module has its own `parse` calling this).
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut parsed = Parsed {
            raw: body,
            event: placeholder(),
        };
        parse_into(body, &mut parsed.event)?;
        Ok(parsed)
    }

    /// Parses an event body whose name the request gave into the set `S`:
    /// [`parse_as`] for any set of models.
    #[inline]
    pub fn parse_as(body: &'a [u8], header_name: &str) -> Result<Self, ParseError> {
        let mut parsed = Parsed {
            raw: body,
            event: placeholder(),
        };
        parse_as_into(body, header_name, &mut parsed.event)?;
        Ok(parsed)
    }
}

/// Parses an event body: the event named by its `name` field.
///
/// A known event parses into its generated type even when values differ from
/// the models (see [`Parsed::drift`]); any other name parses into
/// [`OtherEvent`](crate::OtherEvent). Only a body that is not a JSON object,
/// or lacks `name` or `data`, is an error.
#[inline]
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, ParseError> {
    Parsed::parse(body)
}

/// Parses an event body whose name was given by the request
/// (`X-Kustomer-Webhook-Event`), checking the body's `name` agrees.
#[inline]
pub fn parse_as<'a>(body: &'a [u8], header_name: &str) -> Result<Parsed<'a>, ParseError> {
    Parsed::parse_as(body, header_name)
}

/// What the parse functions build the event over, in place (the events are
/// large: moving one costs more than reading a small body).
fn placeholder<S: Events>() -> S {
    S::from_other(crate::OtherEvent::new(
        EventName::Unknown(crate::Str::default()),
        serde_json::Map::new(),
    ))
}

fn parse_into<S: Events>(body: &[u8], out: &mut S) -> Result<(), ParseError> {
    // A body that is UTF-8 throughout (every body but a malformed one) is
    // read as text, so that its strings are not checked again one by one.
    let found = match std::str::from_utf8(body) {
        Ok(text) => read_named(serde_json::Deserializer::from_str(text), out),
        Err(_) => read_named(serde_json::Deserializer::from_slice(body), out),
    };
    match found {
        Found::Event => {}
        Found::After(name) => read(body, name, out)?,
        Found::Error(e) => return Err(e),
    }
    has_data(out)?;
    // The event is read by the first `name` in the body, but a repeated
    // `name` key overwrites the envelope's: refuse a body whose names differ
    // rather than route it by one name and hand the handler another.
    match out.envelope().event_name() {
        Some(last) if last == out.name().as_str() => Ok(()),
        Some(last) => Err(ParseError::DuplicateName {
            first: out.name().as_str().to_owned(),
            last: last.to_owned(),
        }),
        None => Err(ParseError::MissingName),
    }
}

fn parse_as_into<S: Events>(body: &[u8], header_name: &str, out: &mut S) -> Result<(), ParseError> {
    read(body, EventName::from(header_name), out)?;
    has_data(out)?;
    match out.envelope().event_name() {
        Some(n) if n == header_name => Ok(()),
        Some(n) => Err(ParseError::NameMismatch {
            header: header_name.to_owned(),
            body: n.to_owned(),
        }),
        None => Err(ParseError::MissingName),
    }
}

fn has_data<S: Events>(event: &S) -> Result<(), ParseError> {
    if event.envelope().has_data() {
        Ok(())
    } else {
        Err(ParseError::MissingData)
    }
}

/// Reads the event named `name` from `body` into `out`.
fn read<S: Events>(body: &[u8], name: EventName, out: &mut S) -> Result<(), ParseError> {
    let raw = match std::str::from_utf8(body) {
        Ok(text) => read_into(serde_json::Deserializer::from_str(text), name, out),
        Err(_) => read_into(serde_json::Deserializer::from_slice(body), name, out),
    };
    match raw.map_err(|e| invalid(&e))? {
        None => Ok(()),
        Some(raw) => Err(ParseError::NotAnObject {
            found: crate::json_type(&raw),
        }),
    }
}

fn read_into<'de, R: serde_json::de::Read<'de>, S: Events>(
    mut de: serde_json::Deserializer<R>,
    name: EventName,
    out: &mut S,
) -> Result<crate::model::Misfit, serde_json::Error> {
    let raw = S::__read_into(name, &mut de, out)?;
    if raw.is_none() {
        de.end()?;
    }
    Ok(raw)
}

fn invalid(e: &serde_json::Error) -> ParseError {
    let s = e.to_string();
    let message = match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    };
    ParseError::InvalidJson {
        line: e.line(),
        column: e.column().max(1),
        message,
    }
}

/// What reading a body by its own `name` came to.
enum Found {
    /// The event, read into place.
    Event,
    /// Its name, found after an object or array that was read past before
    /// the name was known: the body is to be read again, by that name.
    After(EventName),
    /// Not an event.
    Error(ParseError),
}

/// Reads the body's `name`, then the event it names, in one pass.
///
/// Kustomer sends `name` second, after `id`: the values before it are kept
/// (strings borrowed from the body) and handed to the event once its type is
/// known. An object or array before the name is read past instead, and the
/// body read again (see [`Found::After`]).
fn read_named<'de, R: serde_json::de::Read<'de>, S: Events>(
    mut de: serde_json::Deserializer<R>,
    out: &mut S,
) -> Found {
    let mut stop = None;
    let result = (&mut de).deserialize_any(Named {
        out,
        stop: &mut stop,
    });
    if let Some(found) = stop {
        return found;
    }
    match result.and_then(|()| de.end()) {
        Ok(()) => Found::Event,
        Err(e) => Found::Error(invalid(&e)),
    }
}

/// The error a visitor returns to stop reading, once it has set its outcome.
const STOP: &str = "\u{0}stop";

/// The visitor of [`read_named`]: on a stop, it sets `stop` and fails with
/// [`STOP`].
struct Named<'o, S> {
    out: &'o mut S,
    stop: &'o mut Option<Found>,
}

impl<S> Named<'_, S> {
    fn not_an_object<E: de::Error>(self, found: &'static str) -> Result<(), E> {
        self.stop_with(Found::Error(ParseError::NotAnObject { found }))
    }

    fn stop_with<E: de::Error>(self, found: Found) -> Result<(), E> {
        *self.stop = Some(found);
        Err(E::custom(STOP))
    }
}

impl<'de, S: Events> Visitor<'de> for Named<'_, S> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event envelope")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut early = Early::default();
        let mut read_past = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<EarlyValue<'de>>()?;
            if key.as_str() != "name" {
                read_past |= matches!(value, EarlyValue::ReadPast);
                early.push(key, value);
                continue;
            }
            let EarlyValue::Str(name) = &value else {
                return self.stop_with(Found::Error(ParseError::MissingName));
            };
            let name = EventName::from(name.as_ref());
            if read_past {
                return self.stop_with(Found::After(name));
            }
            early.push(key, value);
            let rest = Replay {
                early: early.into_iter(),
                value: None,
                rest: map,
            };
            S::__read_into(name, MapAccessDeserializer::new(rest), self.out)?;
            return Ok(());
        }
        *self.stop = Some(Found::Error(ParseError::MissingName));
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object("boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object("number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object("number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object("number")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object("string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object("null")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_an_object("array")
    }
}

/// A value read before the event's name was known.
enum EarlyValue<'de> {
    /// A string, borrowed from the body when it has no escapes.
    Str(Cow<'de, str>),
    /// `null`, a boolean or a number.
    Scalar(serde_json::Value),
    /// An object or an array, read past.
    ReadPast,
}

impl<'de> Deserialize<'de> for EarlyValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EarlyValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(EarlyValue::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(EarlyValue::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(EarlyValue::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(EarlyValue::Scalar(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(EarlyValue::Scalar(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(EarlyValue::Scalar(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(EarlyValue::Scalar(crate::model::raw::float(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(EarlyValue::Scalar(serde_json::Value::Null))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EarlyValue::ReadPast)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(EarlyValue::ReadPast)
            }
        }
        d.deserialize_any(V)
    }
}

/// The entries before the name: a few, kept without allocating.
#[derive(Default)]
struct Early<'de> {
    first: [Option<(Key<'de>, EarlyValue<'de>)>; 4],
    more: Vec<(Key<'de>, EarlyValue<'de>)>,
}

impl<'de> Early<'de> {
    fn push(&mut self, key: Key<'de>, value: EarlyValue<'de>) {
        match self.first.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((key, value)),
            None => self.more.push((key, value)),
        }
    }

    fn into_iter(self) -> impl Iterator<Item = (Key<'de>, EarlyValue<'de>)> {
        self.first.into_iter().flatten().chain(self.more)
    }
}

/// The envelope's entries: those read before the name, then the rest.
struct Replay<'de, I, A> {
    early: I,
    /// The value of the early key just handed out.
    value: Option<EarlyValue<'de>>,
    rest: A,
}

impl<'de, I, A> MapAccess<'de> for Replay<'de, I, A>
where
    I: Iterator<Item = (Key<'de>, EarlyValue<'de>)>,
    A: MapAccess<'de>,
{
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some((key, value)) = self.early.next() else {
            return self.rest.next_key_seed(seed);
        };
        self.value = Some(value);
        match key.0 {
            Cow::Borrowed(k) => seed.deserialize(BorrowedStrDeserializer::new(k)),
            Cow::Owned(k) => seed.deserialize(StringDeserializer::new(k)),
        }
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match self.value.take() {
            Some(EarlyValue::Str(Cow::Borrowed(v))) => {
                seed.deserialize(BorrowedStrDeserializer::new(v))
            }
            Some(EarlyValue::Str(Cow::Owned(v))) => seed.deserialize(StringDeserializer::new(v)),
            Some(EarlyValue::Scalar(v)) => seed.deserialize(v).map_err(de::Error::custom),
            // Never handed out: a body with one is read again.
            Some(EarlyValue::ReadPast) | None => self.rest.next_value_seed(seed),
        }
    }
}
