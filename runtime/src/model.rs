//! How the models read JSON without ever failing on a type they did not expect.
//!
//! Every model type implements [`Model`]: it deserializes *tolerantly*,
//! returning either itself or, when the JSON has another type than the model
//! expects, the raw [`Value`]. Structs keep such a value under its key in
//! their `extra` map (next to the keys they do not model at all), so nothing
//! is lost and re-serialising gives back the same JSON. Drift is found
//! afterwards, only when asked for, by walking the parsed value: a payload
//! that matches the models pays for one parse pass and nothing else.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap};
use serde_json::{Map, Value};

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
    pub fn with<R>(&mut self, key: &str, f: impl FnOnce(&mut Pointer) -> R) -> R {
        let len = self.0.len();
        self.0.push('/');
        for c in key.chars() {
            match c {
                '~' => self.0.push_str("~0"),
                '/' => self.0.push_str("~1"),
                c => self.0.push(c),
            }
        }
        let r = f(self);
        self.0.truncate(len);
        r
    }

    /// Runs `f` with `/index` appended.
    pub fn with_index<R>(&mut self, index: usize, f: impl FnOnce(&mut Pointer) -> R) -> R {
        use std::fmt::Write;
        let len = self.0.len();
        let _ = write!(self.0, "/{index}");
        let r = f(self);
        self.0.truncate(len);
        r
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
pub trait Model: Sized + Serialize {
    /// What the type expects, as drift reports say it.
    const EXPECTED: &'static str;

    /// Reads one JSON value: `Ok(Ok(model))`, or `Ok(Err(raw))` when the
    /// value does not have this type. `Err` only for invalid JSON.
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error>;

    /// Reads one JSON value into `slot`, which holds a value none of whose
    /// fields has been read yet (`Default::default()` for the structs):
    /// `Ok(None)` when it has this type (`slot` holds it), `Ok(Some(raw))`
    /// when it does not (`slot` is left as it was). See [`Misfit`].
    ///
    /// The structs fill `slot` field by field, so that a large struct is
    /// built where it is kept rather than moved there.
    #[doc(hidden)]
    fn deserialize_tolerant_in_place<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Self,
    ) -> Result<Misfit, D::Error> {
        Ok(match Self::deserialize_tolerant(d)? {
            Ok(v) => {
                *slot = v;
                None
            }
            Err(raw) => Some(Box::new(raw)),
        })
    }

    /// Reads one JSON value into an optional `slot`: `Ok(None)` with
    /// `Some(value)` in `slot` when it has this type, `Ok(Some(raw))` with
    /// `None` in `slot` when it does not.
    #[doc(hidden)]
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        Ok(match Self::deserialize_tolerant(d)? {
            Ok(v) => {
                *slot = Some(v);
                None
            }
            Err(raw) => {
                *slot = None;
                Some(Box::new(raw))
            }
        })
    }

    /// Adds the drift found inside this value (kept in `extra` maps) to `out`.
    fn drift(&self, _pointer: &mut Pointer, _out: &mut Vec<Drift>) {}

    /// Adds where `raw` (a value that did not fit this type) differs from it.
    ///
    /// The default reports the value itself; containers point deeper.
    fn diff_raw(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        out.push(Drift {
            pointer: pointer.as_str().to_owned(),
            expected: Self::EXPECTED,
            found: json_type(raw),
        });
    }
}

/// The [`DeserializeSeed`] that reads a `T` tolerantly.
pub struct Tolerant<T>(PhantomData<T>);

impl<T> Default for Tolerant<T> {
    fn default() -> Self {
        Tolerant(PhantomData)
    }
}

impl<'de, T: Model> DeserializeSeed<'de> for Tolerant<T> {
    type Value = Result<T, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize_tolerant(d)
    }
}

/// The [`DeserializeSeed`] that reads a nullable `T`: `Ok(None)` for null.
pub struct TolerantNullable<T>(PhantomData<T>);

impl<T> Default for TolerantNullable<T> {
    fn default() -> Self {
        TolerantNullable(PhantomData)
    }
}

impl<'de, T: Model> DeserializeSeed<'de> for TolerantNullable<T> {
    type Value = Result<Option<T>, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Model> Visitor<'de> for TolerantNullable<T> {
    type Value = Result<Option<T>, Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or null", T::EXPECTED)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(T::deserialize_tolerant(d)?.map(Some))
    }
}

/// What reading into place returns: `None` when the value had the type
/// expected, else the raw value, to keep in an `extra` map.
///
/// Boxed, so that the result of a read (with its error) is two words,
/// returned in registers: most reads fit, and pay nothing for the rare one
/// that does not.
pub type Misfit = Option<Box<Value>>;

/// The [`DeserializeSeed`] that reads a `T` tolerantly into a slot (see
/// [`Model::deserialize_tolerant_in_place`]).
struct InPlace<'a, T>(&'a mut T);

impl<'de, T: Model> DeserializeSeed<'de> for InPlace<'_, T> {
    type Value = Misfit;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize_tolerant_in_place(d, self.0)
    }
}

/// The [`DeserializeSeed`] that reads a `T` tolerantly into an optional slot
/// (see [`Model::deserialize_tolerant_option`]).
struct OptionInPlace<'a, T>(&'a mut Option<T>);

impl<'de, T: Model> DeserializeSeed<'de> for OptionInPlace<'_, T> {
    type Value = Misfit;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize_tolerant_option(d, self.0)
    }
}

/// The [`DeserializeSeed`] that reads a nullable `T` tolerantly into an
/// optional slot: `None` in it for null.
struct NullableInPlace<'a, T>(&'a mut Option<T>);

impl<'de, T: Model> DeserializeSeed<'de> for NullableInPlace<'_, T> {
    type Value = Misfit;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Model> Visitor<'de> for NullableInPlace<'_, T> {
    type Value = Misfit;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or null", T::EXPECTED)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        *self.0 = None;
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        *self.0 = None;
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize_tolerant_option(d, self.0)
    }
}

/// Reads a `T` the way [`Model::deserialize_tolerant`] does, through
/// [`Model::deserialize_tolerant_in_place`] (for the structs).
pub fn read_in_place<'de, D: Deserializer<'de>, T: Model + Default>(
    d: D,
) -> Result<Result<T, Value>, D::Error> {
    let mut out = T::default();
    Ok(match T::deserialize_tolerant_in_place(d, &mut out)? {
        None => Ok(out),
        Some(raw) => Err(*raw),
    })
}

/// [`Model::deserialize_tolerant_option`] for a `T` that fills a slot in
/// place (the structs): a fresh `T` is put in `slot` and filled there.
#[inline]
pub fn read_option_in_place<'de, D: Deserializer<'de>, T: Model + Default>(
    d: D,
    slot: &mut Option<T>,
) -> Result<Misfit, D::Error> {
    let raw = T::deserialize_tolerant_in_place(d, slot.insert(T::default()))?;
    if raw.is_some() {
        *slot = None;
    }
    Ok(raw)
}

/// [`Model::deserialize_tolerant_option`] for a type read by `visitor` (a
/// visitor whose value is `Result<T, Value>`): what it reads goes straight
/// into `slot`, and only a [`Misfit`] is returned.
#[inline]
pub fn read_option_with<'de, D, T, V>(
    d: D,
    slot: &mut Option<T>,
    visitor: V,
) -> Result<Misfit, D::Error>
where
    D: Deserializer<'de>,
    V: Visitor<'de, Value = Result<T, Value>>,
{
    d.deserialize_any(ToSlot { slot, visitor })
}

/// The visitor of [`read_option_with`].
struct ToSlot<'a, T, V> {
    slot: &'a mut Option<T>,
    visitor: V,
}

impl<T> ToSlot<'_, T, ()> {
    #[inline(always)]
    fn put<E>(slot: &mut Option<T>, read: Result<Result<T, Value>, E>) -> Result<Misfit, E> {
        Ok(match read? {
            Ok(v) => {
                *slot = Some(v);
                None
            }
            Err(raw) => {
                *slot = None;
                raw::misfit(raw)
            }
        })
    }
}

impl<'de, T, V: Visitor<'de, Value = Result<T, Value>>> Visitor<'de> for ToSlot<'_, T, V> {
    type Value = Misfit;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_i64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_u64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_f64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_str(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_borrowed_str(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_string(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_unit())
    }
    fn visit_none<E: de::Error>(self) -> Result<Misfit, E> {
        ToSlot::put(self.slot, self.visitor.visit_none())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Misfit, A::Error> {
        ToSlot::put(self.slot, self.visitor.visit_seq(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Misfit, A::Error> {
        ToSlot::put(self.slot, self.visitor.visit_map(map))
    }
}

/// Drift inside a raw value that was kept for a nullable field.
pub fn diff_raw_nullable<T: Model>(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
    if !raw.is_null() {
        T::diff_raw(raw, pointer, out);
    }
}

/// The raw [`Value`] of whatever a visitor was handed that it did not want.
///
/// Visitors list the methods they do not implement themselves in
/// `raw_fallback!`; each builds the JSON value it was given instead.
pub mod raw {
    use super::*;

    /// A sequence, read to its end as raw JSON.
    pub fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Value>()? {
            v.push(item);
        }
        Ok(Value::Array(v))
    }

    /// A map, read to its end as raw JSON.
    pub fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }

    /// A value that did not fit, as a [`Misfit`].
    pub fn misfit(v: Value) -> Misfit {
        Some(Box::new(v))
    }

    /// A float as raw JSON (non-finite floats do not occur in JSON).
    pub fn float(f: f64) -> Value {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// Implements the listed [`Visitor`] methods by keeping the raw value.
#[doc(hidden)]
#[macro_export]
macro_rules! raw_fallback {
    // `Self::Value` is `Misfit`: `Some(raw)` for what did not fit.
    (in_place: $($method:ident)*) => {
        $( $crate::raw_fallback!(@one $crate::__private::raw::misfit, $method); )*
    };
    // `Self::Value` is `Result<T, Value>`: `Err(raw)` for what did not fit.
    ($($method:ident)*) => {
        $( $crate::raw_fallback!(@one ::core::result::Result::Err, $method); )*
    };
    (@one $wrap:path, bool) => {
        fn visit_bool<E: $crate::__private::de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::Bool(v)))
        }
    };
    (@one $wrap:path, i64) => {
        fn visit_i64<E: $crate::__private::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::from(v)))
        }
    };
    (@one $wrap:path, u64) => {
        fn visit_u64<E: $crate::__private::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::from(v)))
        }
    };
    (@one $wrap:path, f64) => {
        fn visit_f64<E: $crate::__private::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap($crate::__private::raw::float(v)))
        }
    };
    (@one $wrap:path, str) => {
        fn visit_str<E: $crate::__private::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::String(v.to_owned())))
        }
        fn visit_string<E: $crate::__private::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::String(v)))
        }
    };
    (@one $wrap:path, unit) => {
        fn visit_unit<E: $crate::__private::de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::Null))
        }
        fn visit_none<E: $crate::__private::de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap($crate::serde_json::Value::Null))
        }
    };
    (@one $wrap:path, seq) => {
        fn visit_seq<A: $crate::__private::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Ok($wrap($crate::__private::raw::seq(seq)?))
        }
    };
    (@one $wrap:path, map) => {
        fn visit_map<A: $crate::__private::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok($wrap($crate::__private::raw::map(map)?))
        }
    };
}

/// An object key, borrowed from the input when it has no escapes.
pub struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl Key<'_> {
    /// The key.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(v.into()))
            }
        }
        d.deserialize_str(V)
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
// Field helpers shared by the generated structs and the hand-written envelope.

/// Reads a field the model types as `T` (never null).
#[inline]
pub fn read_field<'de, A: MapAccess<'de>, T: Model>(
    map: &mut A,
    slot: &mut Option<T>,
    extra: &mut Map<String, Value>,
    key: &'static str,
) -> Result<(), A::Error> {
    match map.next_value_seed(OptionInPlace(slot))? {
        None => {
            if !extra.is_empty() {
                extra.remove(key);
            }
        }
        Some(raw) => {
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// Reads a field the model types as a nullable `T`; field number `i` in `nulls`.
#[inline]
pub fn read_nullable<'de, A: MapAccess<'de>, T: Model>(
    map: &mut A,
    slot: &mut Option<T>,
    extra: &mut Map<String, Value>,
    marks: &mut Marks,
    i: u32,
    key: &'static str,
) -> Result<(), A::Error> {
    match map.next_value_seed(NullableInPlace(slot))? {
        None => {
            if slot.is_none() {
                marks.set(i);
            } else {
                marks.clear(i);
            }
            if !extra.is_empty() {
                extra.remove(key);
            }
        }
        Some(raw) => {
            marks.clear(i);
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// Reads a field the model requires (a struct): absent or drifted, it keeps
/// its default and field number `i` is marked, so it is not written back.
#[inline]
pub fn read_required<'de, A: MapAccess<'de>, T: Model + Default>(
    map: &mut A,
    slot: &mut T,
    extra: &mut Map<String, Value>,
    marks: &mut Marks,
    i: u32,
    key: &'static str,
) -> Result<(), A::Error> {
    if !marks.get(i) {
        // Read before (a repeated key): start afresh.
        *slot = T::default();
    }
    match map.next_value_seed(InPlace(slot))? {
        None => {
            marks.clear(i);
            if !extra.is_empty() {
                extra.remove(key);
            }
        }
        Some(raw) => {
            // `slot` was left at its default.
            marks.set(i);
            extra.insert(key.to_owned(), *raw);
        }
    }
    Ok(())
}

/// Reads a field with no type evidence: any JSON, `null` included.
pub fn read_any<'de, A: MapAccess<'de>>(
    map: &mut A,
    slot: &mut Option<Value>,
) -> Result<(), A::Error> {
    *slot = Some(map.next_value::<Value>()?);
    Ok(())
}

/// Reads a key the model does not know into `extra`.
pub fn read_extra<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Map<String, Value>,
    key: Key<'de>,
) -> Result<(), A::Error> {
    let v = map.next_value::<Value>()?;
    extra.insert(key.0.into_owned(), v);
    Ok(())
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

/// Writes the keys the model does not know, and the values that drifted.
pub fn write_extra<M: SerializeMap>(m: &mut M, extra: &Map<String, Value>) -> Result<(), M::Error> {
    for (k, v) in extra {
        m.serialize_entry(k, v)?;
    }
    Ok(())
}

/// The drift under a typed field.
pub fn field_drift<T: Model>(
    slot: &Option<T>,
    key: &str,
    pointer: &mut Pointer,
    out: &mut Vec<Drift>,
) {
    if let Some(v) = slot {
        pointer.with(key, |p| v.drift(p, out));
    }
}

// ---------------------------------------------------------------------------
// Model for the building blocks.

macro_rules! scalar_visitor {
    ($name:ident, $t:ty, $expected:literal, { $($body:tt)* }, [$($raw:ident)*]) => {
        struct $name;
        impl<'de> Visitor<'de> for $name {
            type Value = Result<$t, Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($expected)
            }
            $($body)*
            $crate::raw_fallback!($($raw)*);
        }
    };
}

scalar_visitor!(BoolVisitor, bool, "a boolean", {
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> { Ok(Ok(v)) }
}, [i64 u64 f64 str unit seq map]);

impl Model for bool {
    const EXPECTED: &'static str = "boolean";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        d.deserialize_any(BoolVisitor)
    }
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_with(d, slot, BoolVisitor)
    }
}

scalar_visitor!(IntVisitor, i64, "an integer", {
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> { Ok(Ok(v)) }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_err(|_| Value::from(v)))
    }
}, [bool f64 str unit seq map]);

impl Model for i64 {
    const EXPECTED: &'static str = "integer";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        d.deserialize_any(IntVisitor)
    }
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_with(d, slot, IntVisitor)
    }
}

scalar_visitor!(NumberVisitor, serde_json::Number, "a number", {
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> { Ok(Ok(v.into())) }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> { Ok(Ok(v.into())) }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).ok_or(Value::Null))
    }
}, [bool str unit seq map]);

impl Model for serde_json::Number {
    const EXPECTED: &'static str = "number";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        d.deserialize_any(NumberVisitor)
    }
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_with(d, slot, NumberVisitor)
    }
}

impl Model for Value {
    const EXPECTED: &'static str = "any JSON";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        Ok(Ok(<Value as serde::Deserialize>::deserialize(d)?))
    }
}

scalar_visitor!(ObjectVisitor, Map<String, Value>, "an object", {
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match raw::map(map)? {
            Value::Object(m) => Ok(Ok(m)),
            other => Ok(Err(other)),
        }
    }
}, [bool i64 u64 f64 str unit seq]);

impl Model for Map<String, Value> {
    const EXPECTED: &'static str = "object";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        d.deserialize_any(ObjectVisitor)
    }
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_with(d, slot, ObjectVisitor)
    }
}

struct VecVisitor<T>(PhantomData<T>);

impl<'de, T: Model> Visitor<'de> for VecVisitor<T> {
    type Value = Result<Vec<T>, Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {}", T::EXPECTED)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items: Vec<T> = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Tolerant::<T>::default())? {
            match item {
                Ok(v) => items.push(v),
                Err(raw) => {
                    // One item does not fit: the whole array is kept raw, so
                    // the order of its items survives.
                    let mut all: Vec<Value> = items
                        .iter()
                        .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
                        .collect();
                    all.push(raw);
                    while let Some(v) = seq.next_element::<Value>()? {
                        all.push(v);
                    }
                    return Ok(Err(Value::Array(all)));
                }
            }
        }
        Ok(Ok(items))
    }
    raw_fallback!(bool i64 u64 f64 str unit map);
}

impl<T: Model> Model for Vec<T> {
    const EXPECTED: &'static str = "array";
    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        d.deserialize_any(VecVisitor::<T>(PhantomData))
    }
    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_with(d, slot, VecVisitor::<T>(PhantomData))
    }
    fn drift(&self, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        for (i, item) in self.iter().enumerate() {
            pointer.with_index(i, |p| item.drift(p, out));
        }
    }
    fn diff_raw(raw: &Value, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        let Value::Array(items) = raw else {
            out.push(Drift {
                pointer: pointer.as_str().to_owned(),
                expected: Self::EXPECTED,
                found: json_type(raw),
            });
            return;
        };
        for (i, item) in items.iter().enumerate() {
            // Items that fit on their own may still drift inside; report
            // the others where they stand.
            match T::deserialize_tolerant(item) {
                Ok(Ok(v)) => pointer.with_index(i, |p| v.drift(p, out)),
                _ => pointer.with_index(i, |p| T::diff_raw(item, p, out)),
            }
        }
    }
}
