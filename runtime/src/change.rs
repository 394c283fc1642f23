//! One entry of an event's `changes`: `{op, before, after}`, typed by the
//! attribute it describes.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::model::{
    Key, Marks, Misfit, Model, Pointer, diff_raw_nullable, field_drift, read_extra, read_field,
    read_in_place, read_nullable, read_option_in_place, write_extra, write_field,
};
use crate::{Drift, Op, raw_fallback};

/// How one field changed: `op`, and its value `before` and `after`, typed as
/// the field itself is. Either value may be absent (an `add` has no
/// `before`) or null.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<T> {
    /// What happened: `replace`, `add`, `remove`, or an operation this
    /// version does not know.
    pub op: Option<Op>,
    /// The value before the change.
    pub before: Option<T>,
    /// The value after the change.
    pub after: Option<T>,
    /// Keys the model does not know, and values of another type than the
    /// field's, as received.
    pub extra: Map<String, Value>,
    #[doc(hidden)]
    pub __marks: Marks,
}

impl<T> Default for Change<T> {
    fn default() -> Self {
        Change {
            op: None,
            before: None,
            after: None,
            extra: Map::new(),
            __marks: Marks::default(),
        }
    }
}

const OP: &str = "op";
const BEFORE: &str = "before";
const AFTER: &str = "after";

impl<T: Model> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        write_field(&mut m, OP, &self.op, false)?;
        write_field(&mut m, BEFORE, &self.before, self.__marks.get(1))?;
        write_field(&mut m, AFTER, &self.after, self.__marks.get(2))?;
        write_extra(&mut m, &self.extra)?;
        m.end()
    }
}

/// Reads a change into a fresh one, in place.
struct ChangeVisitor<'a, T>(&'a mut Change<T>);

impl<'de, T: Model> Visitor<'de> for ChangeVisitor<'_, T> {
    type Value = Misfit;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a change object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let out = self.0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                OP => read_field(&mut map, &mut out.op, &mut out.extra, OP)?,
                BEFORE => read_nullable(
                    &mut map,
                    &mut out.before,
                    &mut out.extra,
                    &mut out.__marks,
                    1,
                    BEFORE,
                )?,
                AFTER => read_nullable(
                    &mut map,
                    &mut out.after,
                    &mut out.extra,
                    &mut out.__marks,
                    2,
                    AFTER,
                )?,
                _ => read_extra(&mut map, &mut out.extra, key)?,
            }
        }
        Ok(None)
    }
    raw_fallback!(in_place: bool i64 u64 f64 str unit seq);
}

impl<T: Model> Model for Change<T> {
    const EXPECTED: &'static str = "object";

    fn deserialize_tolerant<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Self, Value>, D::Error> {
        read_in_place(d)
    }

    fn deserialize_tolerant_in_place<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Self,
    ) -> Result<Misfit, D::Error> {
        d.deserialize_any(ChangeVisitor(slot))
    }

    fn deserialize_tolerant_option<'de, D: Deserializer<'de>>(
        d: D,
        slot: &mut Option<Self>,
    ) -> Result<Misfit, D::Error> {
        read_option_in_place(d, slot)
    }

    fn drift(&self, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        field_drift(&self.before, BEFORE, pointer, out);
        field_drift(&self.after, AFTER, pointer, out);
        for (k, v) in &self.extra {
            match k.as_str() {
                OP => pointer.with(k, |p| Op::diff_raw(v, p, out)),
                BEFORE | AFTER => pointer.with(k, |p| diff_raw_nullable::<T>(v, p, out)),
                _ => {}
            }
        }
    }
}
