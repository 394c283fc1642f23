//! Bytes in, a typed event out.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::Drift;
use crate::model::Key;
use crate::models::{AnyEvent, EventName};

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
            ParseError::MissingName | ParseError::NameMismatch { .. } => Some("/name"),
            ParseError::MissingData => Some("/data"),
            ParseError::NotAnObject { .. } => Some(""),
            ParseError::InvalidJson { .. } => None,
        }
    }
}

/// A parsed event, and the body it was parsed from.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The raw body, exactly as received (what the signature covers).
    pub raw: &'a [u8],
    /// The event.
    pub event: AnyEvent,
}

impl Parsed<'_> {
    /// Where the body differs from the models, by JSON Pointer. Computed on
    /// demand: parsing itself never pays for it.
    pub fn drift(&self) -> Vec<Drift> {
        self.event.drift()
    }
}

/// Parses an event body: the event named by its `name` field.
///
/// A known event parses into its generated type even when values differ from
/// the models (see [`Parsed::drift`]); any other name parses into
/// [`OtherEvent`](crate::OtherEvent). Only a body that is not a JSON object,
/// or lacks `name` or `data`, is an error.
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let name = peek_name(body)?;
    read(body, EventName::from(name.as_str()))
}

/// Parses an event body whose name was given by the request
/// (`X-Kustomer-Webhook-Event`), checking the body's `name` agrees.
pub fn parse_as<'a>(body: &'a [u8], header_name: &str) -> Result<Parsed<'a>, ParseError> {
    let parsed = read(body, EventName::from(header_name))?;
    match parsed.event.envelope().event_name() {
        Some(n) if n == header_name => Ok(parsed),
        Some(n) => Err(ParseError::NameMismatch {
            header: header_name.to_owned(),
            body: n.to_owned(),
        }),
        None => Err(ParseError::MissingName),
    }
}

fn read(body: &[u8], name: EventName) -> Result<Parsed<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let event = match AnyEvent::__read(name, &mut de) {
        Ok(Ok(event)) => event,
        Ok(Err(raw)) => {
            return Err(ParseError::NotAnObject {
                found: crate::json_type(&raw),
            });
        }
        Err(e) => return Err(invalid(&e)),
    };
    de.end().map_err(|e| invalid(&e))?;
    if !event.envelope().has_data() {
        return Err(ParseError::MissingData);
    }
    Ok(Parsed { raw: body, event })
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

/// Finds the top-level `name` without reading the rest of the body: it stops
/// as soon as the name is read (Kustomer sends it second).
fn peek_name(body: &[u8]) -> Result<String, ParseError> {
    struct Peek<'a>(&'a mut Option<Result<String, ParseError>>);

    impl<'de> Visitor<'de> for Peek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event envelope")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key<'de>>()? {
                if key.as_str() == "name" {
                    let name = map.next_value::<serde_json::Value>()?;
                    *self.0 = Some(match name {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(ParseError::MissingName),
                    });
                    // Found: stop here rather than read the rest.
                    return Err(de::Error::custom(STOP));
                }
                map.next_value::<IgnoredAny>()?;
            }
            *self.0 = Some(Err(ParseError::MissingName));
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

    impl Peek<'_> {
        fn not_an_object<E: de::Error>(self, found: &'static str) -> Result<(), E> {
            *self.0 = Some(Err(ParseError::NotAnObject { found }));
            Err(E::custom(STOP))
        }
    }

    const STOP: &str = "\u{0}stop";
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = (&mut de).deserialize_any(Peek(&mut found));
    match (found, result) {
        (Some(r), _) => r,
        (None, Err(e)) => Err(invalid(&e)),
        (None, Ok(())) => Err(ParseError::MissingName),
    }
}
