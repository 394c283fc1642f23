//! The scalar types of the models: strings that rarely allocate, ids and
//! dates that never do, and the open set of change operations.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use std::borrow::Cow;

use compact_str::CompactString;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::{Misfit, Model, ReadError, Reader, misfit};

/// A string from a payload. Up to 24 bytes are stored inline, without
/// allocating; it dereferences to `&str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str(CompactString);

impl Str {
    /// The string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str(CompactString::new(s))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(CompactString::from(s))
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<Cow<'_, str>> for Str {
    #[inline]
    fn from(s: Cow<'_, str>) -> Self {
        match s {
            Cow::Borrowed(s) => Str(CompactString::new(s)),
            Cow::Owned(s) => Str(CompactString::from(s)),
        }
    }
}

impl Model for Str {
    const EXPECTED: &'static str = "string";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        match r.string()? {
            Some(s) => {
                *slot = Some(Str::from(s));
                Ok(None)
            }
            None => {
                *slot = None;
                misfit(r)
            }
        }
    }
}

/// Reads a string into `slot` with `parse`; a string it refuses, or a
/// value of another type, is the misfit.
#[inline(always)]
fn read_parsed<T>(
    r: &mut Reader<'_>,
    slot: &mut Option<T>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Misfit, ReadError> {
    *slot = None;
    match r.string()? {
        Some(s) => match parse(&s) {
            Some(v) => {
                *slot = Some(v);
                Ok(None)
            }
            None => Ok(Some(Box::new(Value::String(s.into_owned())))),
        },
        None => misfit(r),
    }
}

/// A Kustomer object id: 24 lowercase hexadecimal digits, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id([u8; 24]);

/// A string that is not a Kustomer object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Kustomer id (24 lowercase hexadecimal digits): {0:?}")]
pub struct NotAnId(pub String);

impl Id {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id, if `s` is one.
    pub fn parse(s: &str) -> Option<Id> {
        let b: [u8; 24] = s.as_bytes().try_into().ok()?;
        // Every byte is checked, without stopping early, so that the check
        // compiles to a few vector instructions.
        b.iter()
            .fold(true, |hex, c| hex & matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            .then_some(Id(b))
    }
}

impl FromStr for Id {
    type Err = NotAnId;
    fn from_str(s: &str) -> Result<Self, NotAnId> {
        Id::parse(s).ok_or_else(|| NotAnId(s.to_owned()))
    }
}

impl Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.as_str())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Model for Id {
    const EXPECTED: &'static str = "kustomer-id";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        read_parsed(r, slot, Id::parse)
    }
}

/// An RFC 3339 date-time (ISO 8601 with a date, a time and an offset, `Z` or
/// `+02:00`), with or without fractional seconds. A date alone, a time
/// without an offset, or a space for the `T` is not one: such a value is
/// drift.
///
/// It is parsed when the payload is read, and written back exactly as it was
/// received.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DateTime {
    at: chrono::DateTime<chrono::Utc>,
    /// Digits of fractional seconds in the canonical `…Z` form (0, 3, 6 or 9).
    digits: u8,
    /// The text as received, when it is not in that canonical form.
    original: Option<Box<str>>,
}

impl DateTime {
    /// The instant, in UTC.
    pub fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        self.at
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp_millis(&self) -> i64 {
        self.at.timestamp_millis()
    }

    /// Parses an RFC 3339 / ISO 8601 date-time (`2021-04-26T21:33:54.763Z`,
    /// `2021-04-26T21:33:54Z`, `2021-04-26T23:33:54+02:00`).
    pub fn parse(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        // chrono also takes a space for the `T`, and U+2212 for the offset's
        // minus sign; RFC 3339 takes neither.
        if !s.is_ascii() || !matches!(b.get(10), Some(b'T' | b't')) {
            return None;
        }
        let at = chrono::DateTime::parse_from_rfc3339(s)
            .ok()?
            .with_timezone(&chrono::Utc);
        let digits = match b.len() {
            20 => 0,
            24 => 3,
            27 => 6,
            30 => 9,
            _ => u8::MAX,
        };
        let canonical = digits != u8::MAX
            && b[10] == b'T'
            && b[b.len() - 1] == b'Z'
            && (digits == 0 || b[19] == b'.');
        Some(DateTime {
            at,
            digits: if canonical { digits } else { 0 },
            original: (!canonical).then(|| s.into()),
        })
    }

    fn format(&self) -> std::borrow::Cow<'_, str> {
        use chrono::SecondsFormat;
        if let Some(s) = &self.original {
            return s.as_ref().into();
        }
        let format = match self.digits {
            3 => SecondsFormat::Millis,
            6 => SecondsFormat::Micros,
            9 => SecondsFormat::Nanos,
            _ => SecondsFormat::Secs,
        };
        self.at.to_rfc3339_opts(format, true).into()
    }
}

/// Written as Kustomer writes its dates, with milliseconds
/// (`2021-04-26T21:33:54.763Z`), or with as many more digits as the instant
/// needs (6 or 9), so that what is written is the instant held.
impl From<chrono::DateTime<chrono::Utc>> for DateTime {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        use chrono::Timelike;
        let nanos = at.nanosecond() % 1_000_000_000;
        let digits = if nanos.is_multiple_of(1_000_000) {
            3
        } else if nanos.is_multiple_of(1_000) {
            6
        } else {
            9
        };
        DateTime {
            at,
            digits,
            original: None,
        }
    }
}

impl FromStr for DateTime {
    type Err = chrono::ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // What `parse` rejects beyond chrono (a space, a non-ASCII character)
        // is made to fail chrono too, so the error is chrono's own.
        let strict: String = s
            .chars()
            .map(|c| if c == ' ' || !c.is_ascii() { '_' } else { c })
            .collect();
        chrono::DateTime::parse_from_rfc3339(&strict)?;
        Ok(DateTime::parse(s).unwrap_or_else(|| DateTime::from(chrono::DateTime::UNIX_EPOCH)))
    }
}

impl Default for DateTime {
    fn default() -> Self {
        DateTime::from(chrono::DateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({})", self.format())
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

impl PartialOrd for DateTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DateTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at
            .cmp(&other.at)
            .then_with(|| self.format().cmp(&other.format()))
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.format())
    }
}

impl Model for DateTime {
    const EXPECTED: &'static str = "date-time";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        *slot = None;
        let parsed = match r.string()? {
            Some(Cow::Borrowed(s)) => r.date_time(s).ok_or(s),
            Some(Cow::Owned(s)) => match DateTime::parse(&s) {
                Some(d) => Ok(d),
                None => return Ok(Some(Box::new(Value::String(s)))),
            },
            None => return misfit(r),
        };
        match parsed {
            Ok(d) => {
                *slot = Some(d);
                Ok(None)
            }
            Err(s) => Ok(Some(Box::new(Value::String(s.to_owned())))),
        }
    }
}

/// The keys a model does not know, and the values whose JSON type is not the
/// model's, exactly as received: a `Map<String, Value>` to read (it
/// dereferences to one), which costs nothing while it is empty, as it is in
/// almost every struct of almost every payload.
///
/// ```
/// use kustomer_webhooks::{Links, Model};
///
/// let links = Links::from_json(r#"{"self": "/v1/users/1", "first": "/v1/users?page=1"}"#)?.unwrap();
/// assert_eq!(links.extra.len(), 1);
/// assert_eq!(links.extra["first"], "/v1/users?page=1");
/// for (key, value) in &links.extra {
///     println!("{key}: {value}");
/// }
/// # Ok::<(), kustomer_webhooks::ParseError>(())
/// ```
#[derive(Clone, Default)]
pub struct Extra(Option<Box<Map<String, Value>>>);

impl Extra {
    /// Keeps `value` under `key`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.get_or_insert_with(Box::default).insert(key, value)
    }

    /// Removes `key`, returning its value.
    #[inline]
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let map = self.0.as_mut()?;
        let removed = map.remove(key);
        if map.is_empty() {
            self.0 = None;
        }
        removed
    }

    /// The map itself.
    pub fn into_map(self) -> Map<String, Value> {
        self.0.map(|m| *m).unwrap_or_default()
    }
}

/// The map of every `Extra` with nothing in it.
static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Deref for Extra {
    type Target = Map<String, Value>;
    #[inline]
    fn deref(&self) -> &Map<String, Value> {
        match &self.0 {
            Some(map) => map,
            None => &EMPTY,
        }
    }
}

impl std::ops::DerefMut for Extra {
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Map<String, Value>> for Extra {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        **self == *other
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<Map<String, Value>> for Extra {
    fn from(map: Map<String, Value>) -> Self {
        Extra((!map.is_empty()).then(|| Box::new(map)))
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        (**self).iter()
    }
}

/// What a change did to a field: an open set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// The field had a value and now has another.
    Replace,
    /// The field was added.
    Add,
    /// The field was removed.
    Remove,
    /// An operation this version does not know, kept as sent.
    Unknown(Str),
}

impl Op {
    /// The operation as Kustomer writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Op::Replace => "replace",
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Unknown(s) => s,
        }
    }
}

impl From<&str> for Op {
    fn from(s: &str) -> Self {
        match s {
            "replace" => Op::Replace,
            "add" => Op::Add,
            "remove" => Op::Remove,
            other => Op::Unknown(other.into()),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Model for Op {
    const EXPECTED: &'static str = "string";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        read_parsed(r, slot, |s| Some(Op::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_exactly() {
        for s in [
            "2021-04-26T21:33:54.763Z",
            "2021-04-26T21:33:54Z",
            "2021-04-26T21:33:54.763123Z",
            "2021-04-26T21:33:54.7Z",
            "2021-04-26T23:33:54.763+02:00",
            "2021-04-26t21:33:54.763z",
        ] {
            let d = DateTime::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(d.to_string(), s);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{s}\""));
        }
        let a = DateTime::parse("2021-04-26T21:33:54.763Z").unwrap();
        let b = DateTime::parse("2021-04-26T23:33:54.763+02:00").unwrap();
        assert_eq!(a.utc(), b.utc());
        assert!(DateTime::parse("2021-04-26").is_none());
        assert!(DateTime::parse("yesterday").is_none());
        // chrono takes these; RFC 3339 does not.
        for s in ["2021-04-26 21:33:54Z", "2021-04-26T21:33:54\u{2212}02:00"] {
            assert!(DateTime::parse(s).is_none(), "{s}");
            assert!(s.parse::<DateTime>().is_err(), "{s}");
        }
    }

    #[test]
    fn ids_are_24_lowercase_hex() {
        let id: Id = "608731c238e15ad7655f702a".parse().unwrap();
        assert_eq!(id, "608731c238e15ad7655f702a");
        assert_eq!(id.to_string(), "608731c238e15ad7655f702a");
        assert!("608731C238E15AD7655F702A".parse::<Id>().is_err());
        assert!("abc".parse::<Id>().is_err());
        assert!("ééééééééééé".parse::<Id>().is_err());
    }

    #[test]
    fn short_strings_do_not_allocate() {
        let s = Str::from("kustomer.customer.update");
        assert!(!s.0.is_heap_allocated());
        assert_eq!(s, "kustomer.customer.update");
    }

    #[test]
    fn extra_is_a_map_that_costs_nothing_empty() {
        let mut extra = Extra::default();
        assert!(extra.is_empty() && extra.0.is_none());
        assert_eq!(extra.remove("a"), None);
        assert!(extra.0.is_none());
        extra.insert("a".into(), Value::from(1));
        assert_eq!(extra["a"], 1);
        assert_eq!(extra.remove("a"), Some(Value::from(1)));
        assert!(extra.0.is_none(), "emptied, it lets its map go");
        extra.insert("b".into(), Value::Null);
        assert_eq!(
            extra,
            Extra::from(serde_json::json!({"b": null}).as_object().unwrap().clone())
        );
        assert_eq!(Extra::from(Map::new()), Extra::default());
        assert_eq!((&extra).into_iter().count(), 1);
        assert_eq!(extra.into_map().len(), 1);
    }

    #[test]
    fn ops_are_open() {
        assert_eq!(Op::from("add"), Op::Add);
        assert_eq!(Op::from("move"), Op::Unknown("move".into()));
        assert_eq!(Op::from("move").as_str(), "move");
    }
}
