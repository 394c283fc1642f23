//! How the models read JSON without ever failing on a type they did not expect.
//!
//! Every model type implements [`Model`]: it reads *tolerantly* (with the
//! runtime's [`Reader`], see `read.rs`), giving either itself or, when the
//! JSON has another type than the model expects, the raw [`Value`]. Structs keep such a value under its key in
//! their `extra` map (next to the keys they do not model at all), so nothing
//! is lost and re-serialising gives back the same JSON. Drift is found
//! afterwards, only when asked for, by walking the parsed value: a payload
//! that matches the models pays for one parse pass and nothing else.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap};
use serde_json::{Map, Value};

pub use crate::read::{ReadError, Reader};
use crate::types::Extra;

/// One place where a payload's value did not have the type the models expect.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// Where, as a JSON Pointer (RFC 6901) into the payload.
    pub pointer: String,
    /// What the models expect there (`string`, `integer`, `date-time`, `object`…).
    pub expected: &'static str,
    /// The JSON type found (`null`, `boolean`, `number`, `string`, `array`, `object`).
    pub found: &'static str,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: expected {}, found {}", self.expected, self.found)
    }
}

/// The JSON type of a value, as drift reports name it.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON Pointer being built while walking a value.
#[derive(Debug, Default)]
pub struct Pointer(String);

impl Pointer {
    /// Runs `f` with `/key` appended (escaped as RFC 6901 says).
    #[inline]
    pub fn with<R>(&mut self, key: &str, f: impl FnOnce(&mut Pointer) -> R) -> R {
        // Only this small part is copied into each caller (every drift walk
        // has many); the escaping is one function.
        let len = self.push(key);
        let r = f(self);
        self.0.truncate(len);
        r
    }

    /// Runs `f` with `/index` appended.
    #[inline]
    pub fn with_index<R>(&mut self, index: usize, f: impl FnOnce(&mut Pointer) -> R) -> R {
        let len = self.push_index(index);
        let r = f(self);
        self.0.truncate(len);
        r
    }

    /// Appends `/key`, escaped; returns the length before.
    #[inline(never)]
    fn push(&mut self, key: &str) -> usize {
        let len = self.0.len();
        self.0.push('/');
        for c in key.chars() {
            match c {
                '~' => self.0.push_str("~0"),
                '/' => self.0.push_str("~1"),
                c => self.0.push(c),
            }
        }
        len
    }

    /// Appends `/index`; returns the length before.
    #[inline(never)]
    fn push_index(&mut self, index: usize) -> usize {
        use std::fmt::Write;
        let len = self.0.len();
        let _ = write!(self.0, "/{index}");
        len
    }

    /// The pointer as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A type the generated models are made of.
///
/// Implemented for the scalar types (`bool`, `i64`, [`serde_json::Number`],
/// [`Str`](crate::Str), [`Id`](crate::Id), [`DateTime`](crate::DateTime),
/// [`Op`](crate::Op)), for `Vec<T>`, [`Value`], `Map<String, Value>`, and for
/// every generated struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a model",
    label = "not a model type",
    note = "a model field is `Option<T>` or a `#[model]` struct, with `T` one of `bool`, `i64`, `serde_json::Number`, `Str` (for text: not `String`), `Id`, `DateTime`, `Op`, `Value`, `Map<String, Value>`, `Vec<T>`, `Box<T>`, `Change<T>` or a `#[model]` struct"
)]
pub trait Model: Sized + Serialize {
    /// What the type expects, as drift reports say it.
    const EXPECTED: &'static str;

    /// Reads one JSON value into an optional `slot`: `Ok(None)` with
    /// `Some(value)` in `slot` when it has this type, `Ok(Some(raw))` with
    /// `None` in `slot` when it does not. `Err` only for invalid JSON.
    #[doc(hidden)]
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError>;

    /// Reads one JSON value into `slot`, which holds a value none of whose
    /// fields has been read yet (`Default::default()` for the structs):
    /// `Ok(None)` when it has this type (`slot` holds it), `Ok(Some(raw))`
    /// when it does not (`slot` is left as it was).
    ///
    /// The structs fill `slot` field by field, so that a large struct is
    /// built where it is kept rather than moved there.
    #[doc(hidden)]
    fn read_in_place(r: &mut Reader<'_>, slot: &mut Self) -> Result<Misfit, ReadError> {
        let mut read = None;
        let misfit = Self::read_option(r, &mut read)?;
        if let Some(v) = read {
            *slot = v;
        }
        Ok(misfit)
    }

    /// Reads a value of this type from JSON text, tolerantly:
    /// `Ok(Ok(model))`, or `Ok(Err(raw))` when the JSON has another type
    /// than the model's (drift inside it is kept, see [`Model::add_drift`]).
    /// `Err` only for text that is not JSON.
    ///
    /// ```
    /// use kustomer_webhooks::{Model, Links};
    ///
    /// let links = Links::from_json(r#"{"self": "/v1/customers/1", "next": 2}"#)?.unwrap();
    /// assert_eq!(links.self_.as_deref(), Some("/v1/customers/1"));
    /// assert_eq!(links.extra["next"], 2);
    /// assert!(Links::from_json("[1]")?.is_err());
    /// # Ok::<(), kustomer_webhooks::ParseError>(())
    /// ```
    fn from_json(text: &str) -> Result<Result<Self, Value>, crate::ParseError> {
        let invalid = |e: ReadError| e.into_parse_error(text.as_bytes());
        let mut r = Reader::new(text);
        let mut slot = None;
        let misfit = Self::read_option(&mut r, &mut slot).map_err(invalid)?;
        r.end().map_err(invalid)?;
        Ok(match (misfit, slot) {
            (None, Some(v)) => Ok(v),
            (Some(raw), _) => Err(*raw),
            (None, None) => Err(Value::Null),
        })
    }

    /// Adds the drift found inside this value (kept in `extra` maps) to `out`.
    fn add_drift(&self, _pointer: &mut Pointer, _out: &mut Vec<Drift>) {}

    /// Adds where `raw` (a value that did not fit this type) differs from it.
    ///
    /// The default reports the value itself; containers point deeper.
    fn diff_raw(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        push_drift(Self::EXPECTED, raw, pointer, out);
    }
}

/// Reports `raw` where a value of type `expected` was wanted.
#[inline(never)]
pub fn push_drift(expected: &'static str, raw: &Value, pointer: &Pointer, out: &mut Vec<Drift>) {
    out.push(Drift {
        pointer: pointer.as_str().to_owned(),
        expected,
        found: json_type(raw),
    });
}

/// What reading into place returns: `None` when the value had the type
/// expected, else the raw value, to keep in an `extra` map.
///
/// Boxed, so that the result of a read (with its error) is two words,
/// returned in registers: most reads fit, and pay nothing for the rare one
/// that does not.
pub type Misfit = Option<Box<Value>>;

/// The next value, which does not have the type expected, as a [`Misfit`].
#[inline(never)]
pub fn misfit(r: &mut Reader<'_>) -> Result<Misfit, ReadError> {
    Ok(Some(Box::new(r.raw_value()?)))
}

/// [`Model::read_option`] for a `T` that fills a slot in place (the
/// structs): a fresh `T` is put in `slot` and filled there.
#[inline]
pub fn read_option_in_place<T: Model + Default>(
    r: &mut Reader<'_>,
    slot: &mut Option<T>,
) -> Result<Misfit, ReadError> {
    let raw = T::read_in_place(r, slot.insert(T::default()))?;
    if raw.is_some() {
        *slot = None;
    }
    Ok(raw)
}

/// Drift inside a raw value that was kept for a nullable field.
pub fn diff_raw_nullable<T: Model>(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
    if !raw.is_null() {
        T::diff_raw(raw, pointer, out);
    }
}

/// Per-field marks of a struct: which nullable fields were `null` in the
/// payload (rather than absent), and which required fields were absent or
/// drifted, so that re-serialising writes back exactly what was received.
///
/// Sixteen bytes: every struct holds one, and the large events are built of
/// many structs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Marks {
    /// Fields 0 to 63.
    low: u64,
    /// The marked fields from 64 on; `None` when there are none.
    #[allow(
        clippy::box_collection,
        reason = "a thin pointer keeps `Marks` at sixteen bytes"
    )]
    high: Option<Box<Vec<u32>>>,
}

impl Marks {
    /// Marks field `i`.
    #[inline]
    pub fn set(&mut self, i: u32) {
        if i < 64 {
            self.low |= 1 << i;
        } else {
            let high = self.high.get_or_insert_with(Box::default);
            if !high.contains(&i) {
                high.push(i);
            }
        }
    }

    /// Clears the mark of field `i`.
    #[inline]
    pub fn clear(&mut self, i: u32) {
        if i < 64 {
            self.low &= !(1 << i);
        } else if let Some(high) = &mut self.high {
            high.retain(|&j| j != i);
            if high.is_empty() {
                self.high = None;
            }
        }
    }

    /// Whether field `i` is marked.
    #[inline]
    pub fn get(&self, i: u32) -> bool {
        if i < 64 {
            self.low & (1 << i) != 0
        } else {
            self.high.as_ref().is_some_and(|high| high.contains(&i))
        }
    }
}

// ---------------------------------------------------------------------------
// Field helpers shared by the generated structs and the hand-written ones.

/// Reads a field the model types as `T` (never null).
#[inline]
pub fn read_field<T: Model>(
    r: &mut Reader<'_>,
    slot: &mut Option<T>,
    extra: &mut Extra,
    key: &'static str,
) -> Result<(), ReadError> {
    match T::read_option(r, slot)? {
        None => {
            extra.remove(key);
        }
        Some(raw) => {
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// Reads a field the model types as a nullable `T`; field number `i` in `marks`.
#[inline]
pub fn read_nullable<T: Model>(
    r: &mut Reader<'_>,
    slot: &mut Option<T>,
    extra: &mut Extra,
    marks: &mut Marks,
    i: u32,
    key: &'static str,
) -> Result<(), ReadError> {
    let raw = if r.null()? {
        *slot = None;
        marks.set(i);
        None
    } else {
        marks.clear(i);
        T::read_option(r, slot)?
    };
    match raw {
        None => {
            extra.remove(key);
        }
        Some(raw) => {
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// Reads a field the model requires (a struct): absent or drifted, it keeps
/// its default and field number `i` is marked, so it is not written back.
#[inline]
pub fn read_required<T: Model + Default>(
    r: &mut Reader<'_>,
    slot: &mut T,
    extra: &mut Extra,
    marks: &mut Marks,
    i: u32,
    key: &'static str,
) -> Result<(), ReadError> {
    if !marks.get(i) {
        // Read before (a repeated key): start afresh.
        *slot = T::default();
    }
    match T::read_in_place(r, slot)? {
        None => {
            marks.clear(i);
            extra.remove(key);
        }
        Some(raw) => {
            // `slot` was left at its default.
            marks.set(i);
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// The type of a model's `any` field: `Option<Value>`, the `Value` under
/// any name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold any JSON",
    label = "the type of an `any` field",
    note = "an `any` field is `Option<serde_json::Value>` (the `Value` under any name): any JSON at all, `null` included"
)]
pub trait AnyJson {
    /// The field's slot.
    fn slot(&mut self) -> &mut Option<Value>;
}

// Not named in the error (its type's path would depend on what else is built).
#[diagnostic::do_not_recommend]
impl AnyJson for Option<Value> {
    fn slot(&mut self) -> &mut Option<Value> {
        self
    }
}

/// Reads a field with no type evidence: any JSON, `null` included.
pub fn read_any<T: AnyJson>(r: &mut Reader<'_>, slot: &mut T) -> Result<(), ReadError> {
    *slot.slot() = Some(r.raw_value()?);
    Ok(())
}

/// Reads a key the model does not know into `extra`.
#[inline(never)]
pub fn read_extra(
    r: &mut Reader<'_>,
    extra: &mut Extra,
    key: Cow<'_, str>,
) -> Result<(), ReadError> {
    let v = r.raw_value()?;
    extra.insert(key.into_owned(), v);
    Ok(())
}

/// A text value kept in `extra` under `key`: an envelope's `id`, `data.id`
/// or `name` when the payload's value is a string the model does not take (an
/// id in another format). It still names the event or resource, so
/// de-duplication and the ordering guard keep working through that drift.
pub fn extra_str<'a>(extra: &'a Extra, key: &str) -> Option<&'a str> {
    extra.get(key)?.as_str()
}

/// An integer kept in `extra` under `key`, or a string holding one: a
/// resource's `rev` sent as `"12"` still orders its updates.
pub fn extra_int(extra: &Extra, key: &str) -> Option<i64> {
    value_int(extra.get(key)?)
}

/// A date-time kept in `extra` under `key`, in milliseconds since the Unix
/// epoch: a resource's drifted `updatedAt` still orders its updates.
pub fn extra_millis(extra: &Extra, key: &str) -> Option<i64> {
    value_millis(extra.get(key)?)
}

/// A string holding an ISO 8601 date-time, in milliseconds since the Unix
/// epoch.
pub fn value_millis(value: &Value) -> Option<i64> {
    crate::DateTime::parse(value.as_str()?).map(|at| at.timestamp_millis())
}

/// An integer, or a string holding one: a field the samples gave several
/// types (so typed as any JSON) still reads as a number where it is one.
pub fn value_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => number_int(n),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A JSON number as a whole number: an integer in `i64`'s range, or a
/// float with no fraction that is exactly one (`5.0`, `1e1`; up to 2^53,
/// past which a float no longer holds every whole number).
pub fn number_int(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        // Within 2^53 the cast is exact.
        (f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).then_some(f as i64)
    })
}

/// Writes a field back: its value, or `null` where the payload had null.
pub fn write_field<M: SerializeMap, T: Serialize>(
    m: &mut M,
    key: &str,
    slot: &Option<T>,
    was_null: bool,
) -> Result<(), M::Error> {
    match slot {
        Some(v) => m.serialize_entry(key, v),
        None if was_null => m.serialize_entry(key, &()),
        None => Ok(()),
    }
}

/// Writes the keys the model does not know, and the values that drifted,
/// but for the keys `written` says a typed field wrote: a drifted value
/// kept for a field that was set since (the model edited) is not written
/// beside the field's new value, which would give the key twice.
pub fn write_extra<M: SerializeMap>(
    m: &mut M,
    extra: &Extra,
    written: impl Fn(&str) -> bool,
) -> Result<(), M::Error> {
    for (k, v) in extra {
        if !written(k) {
            m.serialize_entry(k, v)?;
        }
    }
    Ok(())
}

/// Whether a required struct (absent from the payload, or drifted) was
/// given something since: it writes otherwise than its default does. What
/// it writes, not `==`, which leaves out whether a key was null: a struct
/// given `{"key": null}` holds something to write back.
pub fn differs_from_default<T: Serialize + Default>(value: &T) -> bool {
    match (
        serde_json::to_value(value),
        serde_json::to_value(T::default()),
    ) {
        (Ok(written), Ok(default)) => written != default,
        // A model always serialises; written rather than lost if not.
        _ => true,
    }
}

/// Milliseconds since the Unix epoch of a date-time held as a string (a
/// field the samples did not always give as a date-time), if it is one.
pub fn str_millis(s: &str) -> Option<i64> {
    crate::DateTime::parse(s).map(|at| at.timestamp_millis())
}

/// A field's name as `Debug` shows it: `type` for `r#type`, as a derived
/// `Debug` does.
pub const fn field_name(name: &'static str) -> &'static str {
    match name.as_bytes() {
        [b'r', b'#', ..] => name.split_at(2).1,
        _ => name,
    }
}

/// The drift under a typed field.
pub fn field_drift<T: Model>(
    slot: &Option<T>,
    key: &str,
    pointer: &mut Pointer,
    out: &mut Vec<Drift>,
) {
    if let Some(v) = slot {
        pointer.with(key, |p| v.add_drift(p, out));
    }
}

// ---------------------------------------------------------------------------
// Model for the building blocks.

/// Puts what a scalar read found in `slot`: the value, or the misfit.
#[inline(always)]
fn put<T>(r: &mut Reader<'_>, slot: &mut Option<T>, found: Option<T>) -> Result<Misfit, ReadError> {
    *slot = found;
    if slot.is_some() { Ok(None) } else { misfit(r) }
}

impl Model for bool {
    const EXPECTED: &'static str = "boolean";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        let found = r.boolean()?;
        put(r, slot, found)
    }
}

impl Model for i64 {
    const EXPECTED: &'static str = "integer";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        match r.integer()? {
            Some(Ok(i)) => {
                *slot = Some(i);
                Ok(None)
            }
            Some(Err(n)) => {
                *slot = None;
                Ok(Some(Box::new(Value::Number(n))))
            }
            None => put(r, slot, None),
        }
    }
}

impl Model for serde_json::Number {
    const EXPECTED: &'static str = "number";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        let found = r.number()?;
        put(r, slot, found)
    }
}

impl Model for Value {
    const EXPECTED: &'static str = "any JSON";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        *slot = Some(r.raw_value()?);
        Ok(None)
    }
}

impl Model for Map<String, Value> {
    const EXPECTED: &'static str = "object";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        *slot = None;
        match r.raw_value()? {
            Value::Object(m) => {
                *slot = Some(m);
                Ok(None)
            }
            other => Ok(Some(Box::new(other))),
        }
    }
}

/// A boxed model reads and writes as the model: the change sets box each
/// entry, so that an event holding dozens of possible changes stays small to
/// build, move and drop.
impl<T: Model + Default> Model for Box<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    #[inline]
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        read_option_in_place(r, slot)
    }
    #[inline]
    fn read_in_place(r: &mut Reader<'_>, slot: &mut Self) -> Result<Misfit, ReadError> {
        T::read_in_place(r, slot)
    }
    fn add_drift(&self, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        (**self).add_drift(pointer, out)
    }
    fn diff_raw(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        T::diff_raw(raw, pointer, out)
    }
}

impl<T: Model> Model for Vec<T> {
    const EXPECTED: &'static str = "array";
    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        let start = r.mark();
        if !r.begin_array()? {
            return put(r, slot, None);
        }
        let mut items = Vec::new();
        while r.next_item()? {
            let mut item = None;
            match T::read_option(r, &mut item)? {
                None => items.extend(item),
                Some(_) => {
                    // One item does not fit: the whole array is kept raw, so
                    // the order of its items survives.
                    r.rewind(start);
                    return put(r, slot, None);
                }
            }
        }
        *slot = Some(items);
        Ok(None)
    }
    fn add_drift(&self, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        for (i, item) in self.iter().enumerate() {
            pointer.with_index(i, |p| item.add_drift(p, out));
        }
    }
    fn diff_raw(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        let Value::Array(items) = raw else {
            return push_drift(Self::EXPECTED, raw, pointer, out);
        };
        for (i, item) in items.iter().enumerate() {
            // Items that fit on their own may still drift inside; report
            // the others where they stand.
            let text = item.to_string();
            match T::from_json(&text) {
                Ok(Ok(v)) => pointer.with_index(i, |p| v.add_drift(p, out)),
                _ => pointer.with_index(i, |p| T::diff_raw(item, p, out)),
            }
        }
    }
}
