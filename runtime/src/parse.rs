//! Bytes in, a typed event out.

use std::borrow::Cow;

use crate::Drift;
use crate::models::AnyEvent;
use crate::read::{ReadError, Reader};
use crate::{EventName, Events};

/// Why a body is not an event at all. Anything short of these is parsed, with
/// the values that do not fit the models reported as [`Drift`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not valid JSON.
    #[error(
        "invalid JSON at line {line}, column {column}{}: {message}",
        if pointer.is_empty() { String::new() } else { format!(", in {pointer}") }
    )]
    InvalidJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The JSON Pointer of the innermost value the error is in (`""`:
        /// the top level), as far as the body could be read.
        pointer: String,
        /// What the parser expected.
        message: String,
    },
    /// The body is JSON, but not an object.
    #[error("the body is a JSON {found}, not an object (an event envelope)")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// The body has no `name` field, and no header named the event.
    #[error("the body has no `name` (the event name string) at /name")]
    MissingName,
    /// The body's `name` is not a string (nor did a header name the event).
    #[error(
        "the body's `name` is {}, not a string (the event name) at /name",
        with_article(found)
    )]
    NameNotAString {
        /// Its JSON type: `number`, `null`, `object`…
        found: &'static str,
    },
    /// The body's `name` is empty or blank (nor did a header name the
    /// event).
    #[error("the body's `name` is empty: it names no event, at /name")]
    EmptyName,
    /// The body has `name` twice, once a string and once another JSON type
    /// (in either order).
    #[error(
        "the body names its event twice, once {name:?} and once with a value that is not a \
         string ({found}), at /name"
    )]
    NameTwice {
        /// The name given as a string.
        name: String,
        /// The JSON type of the other: `number`, `null`, `object`…
        found: &'static str,
    },
    /// The body has no `data`.
    #[error("the body has no `data` (the resource the event is about) at /data")]
    MissingData,
    /// The body's `data` is not an object (`null`, say).
    #[error(
        "the body's `data` is {}, not an object (the resource the event is about) at /data",
        with_article(found)
    )]
    DataNotAnObject {
        /// Its JSON type: `null`, `array`, `string`…
        found: &'static str,
    },
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

/// A JSON type as a sentence names a value of it: `a number`, `an
/// object`, `null`.
fn with_article(found: &str) -> String {
    match found {
        "null" => found.to_owned(),
        "array" | "object" => format!("an {found}"),
        _ => format!("a {found}"),
    }
}

impl ParseError {
    /// The JSON Pointer of what the error is about (`""`: the whole body).
    pub fn pointer(&self) -> &str {
        match self {
            ParseError::MissingName
            | ParseError::NameNotAString { .. }
            | ParseError::EmptyName
            | ParseError::NameTwice { .. }
            | ParseError::DuplicateName { .. }
            | ParseError::NameMismatch { .. } => "/name",
            ParseError::MissingData | ParseError::DataNotAnObject { .. } => "/data",
            ParseError::NotAnObject { .. } => "",
            ParseError::InvalidJson { pointer, .. } => pointer,
        }
    }
}

/// A parsed event, and the body it was parsed from.
///
/// `S` is the set of models the event was parsed with: the bundled
/// [`AnyEvent`] unless you generated your own (see [`Events`]).
#[derive(Clone)]
pub struct Parsed<'a, S = AnyEvent> {
    /// The raw body, exactly as received (what the signature covers).
    pub raw: &'a [u8],
    /// The event.
    pub event: S,
}

/// The event, and the body's size: the body itself is the event again, as
/// bytes (and a person's data, like the event: keep either out of logs).
impl<S: std::fmt::Debug> std::fmt::Debug for Parsed<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("raw", &format_args!("<{} bytes>", self.raw.len()))
            .field("event", &self.event)
            .finish()
    }
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
/// A UTF-8 byte order mark before the JSON is skipped, as RFC 8259 allows.
///
/// A known event parses into its generated type even when values differ from
/// the models (see [`Parsed::drift`]); any other name parses into
/// [`OtherEvent`](crate::OtherEvent).
///
/// # Errors
///
/// Only what leaves the event unknown: JSON that does not parse
/// ([`ParseError::InvalidJson`], with the line, column and JSON Pointer), a
/// body that is not an object, one without a `name`, or whose `name` is not
/// a string, is empty or blank, or is given twice with different values (or
/// types), and one without `data` or whose `data` is not an object (each a
/// [`ParseError`] variant naming its JSON Pointer).
#[inline]
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, ParseError> {
    Parsed::parse(body)
}

/// Parses an event body whose name was given by the request
/// (`X-Kustomer-Webhook-Event`), checking the body's `name` agrees: the
/// body's last `name`, when it has the key twice. A body without a `name`
/// string is the event the header names; a blank header names none, and the
/// body is parsed as [`parse`] does.
///
/// # Errors
///
/// As [`parse`]'s, but a `name` missing or not a string, and a mismatch with
/// the header ([`ParseError::NameMismatch`]).
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

/// `body` past a UTF-8 byte order mark, which RFC 8259 lets a reader skip
/// (a file saved by some editors, replayed, starts with one).
pub(crate) fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

fn parse_into<S: Events>(body: &[u8], out: &mut S) -> Result<(), ParseError> {
    let body = without_bom(body);
    let text = text(body)?;
    let mut r = Reader::new(text);
    let invalid = |e: ReadError| e.into_parse_error(body);
    let start = r.mark();
    let name = find_name(&mut r).map_err(invalid)??;
    if name.trim().is_empty() {
        // Read to the end, so that a body that is not JSON says so first.
        r.rewind(start);
        r.skip_value().map_err(invalid)?;
        r.end().map_err(invalid)?;
        return Err(ParseError::EmptyName);
    }
    r.rewind(start);
    read(&mut r, EventName::from(&*name), out).map_err(invalid)??;
    has_data(out)?;
    // The event is read by the first `name` in the body, but a repeated
    // `name` key overwrites the envelope's: refuse a body whose names differ
    // rather than route it by one name and hand the handler another.
    match out.envelope().event_name() {
        Some(last) if last == name => Ok(()),
        Some(last) => Err(ParseError::DuplicateName {
            first: name.into_owned(),
            last: last.to_owned(),
        }),
        None => Err(match out.envelope().misfit("name") {
            Some(found) => ParseError::NameTwice {
                name: name.into_owned(),
                found,
            },
            None => ParseError::MissingName,
        }),
    }
}

fn parse_as_into<S: Events>(body: &[u8], header_name: &str, out: &mut S) -> Result<(), ParseError> {
    // A blank header names no event: the body's `name` does.
    if header_name.trim().is_empty() {
        return parse_into(body, out);
    }
    let whole = body;
    let body = without_bom(body);
    let text = text(body)?;
    let mut r = Reader::new(text);
    read(&mut r, EventName::from(header_name), out).map_err(|e| e.into_parse_error(body))??;
    has_data(out)?;
    // HTTP drops the white space around a header's value: a body's name
    // with some at either end arrives as a header without it. The body's
    // name, as it is, names the event.
    if out
        .envelope()
        .event_name()
        .is_some_and(|n| n != header_name && n.trim_matches([' ', '\t']) == header_name)
    {
        return parse_into(whole, out);
    }
    // Against the body's last `name`, which the envelope keeps (as in
    // `serde_json`): a header naming an earlier one is a mismatch, so that
    // no event is handed on under a name its body does not end with.
    match out.envelope().event_name() {
        Some(n) if n == header_name => Ok(()),
        Some(n) => Err(ParseError::NameMismatch {
            header: header_name.to_owned(),
            body: n.to_owned(),
        }),
        // The header names the event: a body without a `name` string (drift
        // in the envelope) is still that event, not a delivery to refuse
        // (which Kustomer would retry for an hour, then disable the webhook).
        // But one whose last `name` is not a string and another is names
        // two events, and the header neither.
        None => match out
            .envelope()
            .misfit("name")
            .map(|found| (found, any_name(text)))
        {
            Some((found, Some(name))) => Err(ParseError::NameTwice { name, found }),
            _ => Ok(()),
        },
    }
}

/// The JSON text of the body's top-level `id` exactly as received, escapes
/// and all (the last one, as the envelope keeps): what tells apart ids whose
/// lone surrogate escapes (`\ud800`) were each read as U+FFFD.
pub(crate) fn raw_id(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(without_bom(body)).ok()?;
    let mut r = Reader::new(text);
    if !r.begin_object().ok()? {
        return None;
    }
    let mut found = None;
    while let Some(key) = r.next_key().ok()? {
        let start = r.mark().offset();
        r.skip_value().ok()?;
        if key == "id" {
            found = text.get(start..r.mark().offset()).map(str::trim);
        }
    }
    found
}

/// A `name` string of a body already read whole, if it has one.
fn any_name(text: &str) -> Option<String> {
    match find_name(&mut Reader::new(text)).ok()? {
        Ok(name) => Some(name.into_owned()),
        Err(ParseError::NameTwice { name, .. }) => Some(name),
        Err(_) => None,
    }
}

fn has_data<S: Events>(event: &S) -> Result<(), ParseError> {
    let envelope = event.envelope();
    if !envelope.has_data() {
        return Err(ParseError::MissingData);
    }
    match envelope.misfit("data") {
        Some(found) => Err(ParseError::DataNotAnObject { found }),
        None => Ok(()),
    }
}

/// The body as text. A body that is not UTF-8 is not JSON either (RFC 8259
/// §8.1): the error points at the first byte that is not.
fn text(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let (line, column) = crate::read::line_column(body, e.valid_up_to());
        ParseError::InvalidJson {
            line,
            column,
            pointer: crate::read::pointer_at(body, e.valid_up_to()),
            message: "invalid UTF-8".to_owned(),
        }
    })
}

/// The body's first `name`, its entries before it read past.
///
/// Kustomer sends `name` second, after `id`, so this reads little; the
/// reader is then taken back to the start to read the event by that name.
fn find_name<'de>(r: &mut Reader<'de>) -> Result<Result<Cow<'de, str>, ParseError>, ReadError> {
    if !r.begin_object()? {
        return not_an_object(r);
    }
    while let Some(key) = r.next_key()? {
        if key == "name" {
            let found = r.peek_type()?;
            if let Some(name) = r.string()? {
                return Ok(Ok(name));
            }
            // Read to the end, so that a body that is not JSON says so
            // rather than this; a later `name` that is a string makes it
            // two names.
            r.skip_value()?;
            let mut later = None;
            while let Some(key) = r.next_key()? {
                if key == "name"
                    && later.is_none()
                    && let Some(name) = r.string()?
                {
                    later = Some(name);
                    continue;
                }
                r.skip_value()?;
            }
            r.end()?;
            return Ok(Err(match (found, later) {
                (Some(found), Some(name)) => ParseError::NameTwice {
                    name: name.into_owned(),
                    found,
                },
                (Some(found), None) => ParseError::NameNotAString { found },
                (None, _) => ParseError::MissingName,
            }));
        }
        r.skip_value()?;
    }
    r.end()?;
    Ok(Err(ParseError::MissingName))
}

/// The body is not an object: which JSON type it is (read to its end, so
/// that a body that is not JSON, such as an array cut short, says so).
fn not_an_object<T>(r: &mut Reader<'_>) -> Result<Result<T, ParseError>, ReadError> {
    let found = match r.peek_type()? {
        Some("array") => {
            r.skip_value()?;
            "array"
        }
        _ => crate::json_type(&r.raw_value()?),
    };
    r.end()?;
    Ok(Err(ParseError::NotAnObject { found }))
}

/// Reads the event named `name` into `out`, and checks nothing follows it.
fn read<S: Events>(
    r: &mut Reader<'_>,
    name: EventName,
    out: &mut S,
) -> Result<Result<(), ParseError>, ReadError> {
    let mark = r.mark();
    if S::__read_into(name, r, out)?.is_some() {
        r.rewind(mark);
        return not_an_object(r);
    }
    r.end()?;
    Ok(Ok(()))
}
