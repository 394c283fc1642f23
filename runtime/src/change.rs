//! One entry of an event's `changes`: `{op, before, after}`, typed by the
//! attribute it describes.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::model::{
    Marks, Misfit, Model, Pointer, ReadError, Reader, diff_raw_nullable, field_drift, misfit,
    read_extra, read_field, read_nullable, read_option_in_place, write_extra, write_field,
};
use crate::{Drift, Extra, Op};

/// How one field changed: `op`, and its value `before` and `after`, typed as
/// the field itself is. Either value may be absent (an `add` has no
/// `before`) or null.
///
/// The generated change sets hold each as `Option<Box<Change<T>>>`: boxed,
/// so that an event with dozens of possible changes stays small, and only
/// the changes a payload carries are allocated. Fields read through the box
/// (`change.after`); to match on one, take `as_deref()` first.
#[derive(Clone)]
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
    pub extra: Extra,
    #[doc(hidden)]
    pub __marks: Marks,
}

/// `op`, `before`, `after` and `extra`; whether a value was absent or null
/// (kept to write the payload back) is neither shown nor compared, as in
/// the models.
impl<T: std::fmt::Debug> std::fmt::Debug for Change<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("op", &self.op)
            .field("before", &self.before)
            .field("after", &self.after)
            .field("extra", &self.extra)
            .finish()
    }
}

impl<T: PartialEq> PartialEq for Change<T> {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op
            && self.before == other.before
            && self.after == other.after
            && self.extra == other.extra
    }
}

impl<T> Default for Change<T> {
    fn default() -> Self {
        Change {
            op: None,
            before: None,
            after: None,
            extra: Extra::default(),
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
        write_extra(&mut m, &self.extra, |key| match key {
            OP => self.op.is_some(),
            BEFORE => self.before.is_some() || self.__marks.get(1),
            AFTER => self.after.is_some() || self.__marks.get(2),
            _ => false,
        })?;
        m.end()
    }
}

impl<T: Model> Model for Change<T> {
    const EXPECTED: &'static str = "object";

    fn read_option(r: &mut Reader<'_>, slot: &mut Option<Self>) -> Result<Misfit, ReadError> {
        read_option_in_place(r, slot)
    }

    fn read_in_place(r: &mut Reader<'_>, out: &mut Self) -> Result<Misfit, ReadError> {
        if !r.begin_object()? {
            return misfit(r);
        }
        while let Some(key) = r.next_key()? {
            match &*key {
                OP => read_field(r, &mut out.op, &mut out.extra, OP)?,
                BEFORE => read_nullable(
                    r,
                    &mut out.before,
                    &mut out.extra,
                    &mut out.__marks,
                    1,
                    BEFORE,
                )?,
                AFTER => read_nullable(
                    r,
                    &mut out.after,
                    &mut out.extra,
                    &mut out.__marks,
                    2,
                    AFTER,
                )?,
                _ => read_extra(r, &mut out.extra, key)?,
            }
        }
        Ok(None)
    }

    fn add_drift(&self, pointer: &mut Pointer, out: &mut Vec<Drift>) {
        field_drift(&self.before, BEFORE, pointer, out);
        field_drift(&self.after, AFTER, pointer, out);
        for (k, v) in &self.extra {
            // A value given since is written in place of the drifted one:
            // nothing drifts there now.
            match k.as_str() {
                OP if self.op.is_none() => pointer.with(k, |p| Op::diff_raw(v, p, out)),
                BEFORE if self.before.is_none() && !self.__marks.get(1) => {
                    pointer.with(k, |p| diff_raw_nullable::<T>(v, p, out))
                }
                AFTER if self.after.is_none() && !self.__marks.get(2) => {
                    pointer.with(k, |p| diff_raw_nullable::<T>(v, p, out))
                }
                _ => {}
            }
        }
    }
}
