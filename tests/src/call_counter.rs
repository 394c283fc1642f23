//! A global allocator counting the calls that allocate (`alloc`,
//! `alloc_zeroed`, `realloc`), only while asked to.
//!
//! [`alloc_counter`](crate::alloc_counter) counts bytes and updates its
//! counters on every call; this one counts calls, and only inside
//! [`allocations`], so that a benchmark's timing loops run on the plain
//! system allocator (one relaxed load more per call) and an
//! allocation-heavy baseline is not slowed by the instrument.
//!
//! A benchmark binary installs it with
//! `#[global_allocator] static ALLOCATOR: CountingCalls = CountingCalls;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, counting allocating calls inside [`allocations`].
pub struct CountingCalls;

static COUNTING: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn counted() {
    if COUNTING.load(Ordering::Relaxed) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter only observes calls.
unsafe impl GlobalAlloc for CountingCalls {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The allocating calls `f` makes (with [`CountingCalls`] installed as the
/// global allocator; zero otherwise). Counts every thread's calls: run it
/// while the process does nothing else.
pub fn allocations(f: impl FnOnce()) -> usize {
    CALLS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    CALLS.load(Ordering::SeqCst)
}
