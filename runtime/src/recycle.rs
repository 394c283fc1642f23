//! Event boxes kept for the next event of their type.
//!
//! An event is parsed in place into a box of its own (events are large, up
//! to a few kilobytes), and a handler takes it by value, out of that box.
//! Blocks that large miss the system allocator's per-thread cache, and on
//! glibc each allocation of one first merges every small block freed since
//! the last: a cost paid on every delivery. So when a handler takes its
//! event, the emptied box (left holding the type's default value, exactly
//! what a new one would be) is kept, a few per thread, and the next parse of
//! that type on the thread starts from it.

use std::any::{Any, TypeId};
use std::cell::RefCell;

/// Boxes kept per thread, of all types together.
const KEPT: usize = 16;

thread_local! {
    /// Each box beside its type's id, so that finding one of a type reads
    /// the ids in place instead of calling each box's `type_id` through its
    /// vtable (up to sixteen indirect calls per parse).
    static KEPT_BOXES: RefCell<Vec<(TypeId, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// A box holding `T::default()`: one kept on this thread, or a new one.
pub fn boxed_default<T: Default + 'static>() -> Box<T> {
    KEPT_BOXES
        .try_with(|kept| {
            let mut kept = kept.try_borrow_mut().ok()?;
            let at = kept.iter().rposition(|(id, _)| *id == TypeId::of::<T>())?;
            kept.swap_remove(at).1.downcast::<T>().ok()
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The value of `field` of a boxed event, the box then kept (holding the
/// default in its place) for the next event of its type on this thread.
#[inline]
pub fn take<T: Default + 'static, F: Default>(
    mut boxed: Box<T>,
    field: impl FnOnce(&mut T) -> &mut F,
) -> F {
    let value = std::mem::take(field(&mut boxed));
    keep(TypeId::of::<T>(), boxed);
    value
}

fn keep(id: TypeId, boxed: Box<dyn Any>) {
    // On a thread whose locals are being destroyed, the box is just freed.
    let _ = KEPT_BOXES.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut()
            && kept.len() < KEPT
        {
            kept.push((id, boxed));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Big(Vec<u8>, [u64; 4]);

    #[derive(Debug, Default, PartialEq)]
    struct Wrapped(Big);

    #[test]
    fn a_taken_box_is_kept_holding_the_default_and_handed_out_again() {
        let mut boxed = boxed_default::<Wrapped>();
        boxed.0 = Big(vec![1, 2, 3], [7; 4]);
        let at = &*boxed as *const Wrapped as usize;
        let value = take(boxed, |w| &mut w.0);
        assert_eq!(value, Big(vec![1, 2, 3], [7; 4]));
        let again = boxed_default::<Wrapped>();
        assert_eq!(&*again as *const Wrapped as usize, at, "the same box");
        assert_eq!(*again, Wrapped::default());
        // Another type does not get it.
        let other = boxed_default::<Big>();
        assert_eq!(*other, Big::default());
    }

    #[test]
    fn at_most_a_few_boxes_are_kept() {
        for _ in 0..KEPT + 8 {
            take(Box::new(Big::default()), |b| b);
        }
        assert_eq!(KEPT_BOXES.with(|k| k.borrow().len()), KEPT);
        KEPT_BOXES.with(|k| k.borrow_mut().clear());
    }
}
