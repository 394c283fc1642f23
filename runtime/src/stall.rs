//! File work on tokio's blocking pool that a delivery waits for only so
//! long: a disk that stalls (a frozen file system, a dying device) must not
//! hold the delivery's answer, nor take every thread of the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// The most pieces of work of one kind still running past their wait at
/// once: past it, new ones are not started (a disk that stalls would
/// otherwise take a thread of the blocking pool for each delivery).
pub(crate) const MAX_STALLED: usize = 16;

/// Counts the work of one kind (captures, dead letters) still running past
/// its wait; shared by clones of its owner.
#[derive(Debug, Default)]
pub(crate) struct Stalls(AtomicUsize);

/// Running, finished, or still running after its waiter gave up.
const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const LATE: u8 = 2;

/// How a piece of work went, as its waiter sees it.
pub(crate) enum Waited<T> {
    /// It ended within the wait.
    Done(T),
    /// It was still running when the wait ran out; it goes on, and counts
    /// as stalled until it ends.
    Late,
    /// It could not run (it panicked, or the runtime is shutting down).
    Lost,
}

impl Stalls {
    /// How many are still running past their wait.
    pub(crate) fn stalled(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether so many are stalled that no more should start.
    pub(crate) fn full(&self) -> bool {
        self.stalled() >= MAX_STALLED
    }

    /// Runs `work` on the blocking pool and waits at most `wait` for it.
    /// `work` is told whether its waiter gave up on it (so that it says
    /// itself what it did, no one else being left to). Work still running
    /// when the wait runs out, or when this future is dropped (a caller's
    /// own time limit, a client gone), counts as stalled until it ends,
    /// panic or not.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        wait: Duration,
        work: impl FnOnce(&dyn Fn() -> bool) -> T + Send + 'static,
    ) -> Waited<T> {
        /// Marks the work finished when it ends, however it ends, and takes
        /// back its count if it was late.
        struct Finish {
            state: Arc<AtomicU8>,
            stalls: Arc<Stalls>,
        }
        impl Drop for Finish {
            fn drop(&mut self) {
                if self.state.swap(FINISHED, Ordering::AcqRel) == LATE {
                    self.stalls.0.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        /// Marks the work late when its waiter goes without its result
        /// (the wait ran out, or the waiter was dropped).
        struct Waiting {
            state: Arc<AtomicU8>,
            stalls: Arc<Stalls>,
            done: bool,
        }
        impl Waiting {
            /// Whether the work is now marked late (else it had finished).
            fn give_up(&mut self) -> bool {
                self.done = true;
                // Counted before it is marked late, so that the work, once
                // it sees the mark, has a count to take back.
                self.stalls.0.fetch_add(1, Ordering::Relaxed);
                let late = self
                    .state
                    .compare_exchange(RUNNING, LATE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if !late {
                    self.stalls.0.fetch_sub(1, Ordering::Relaxed);
                }
                late
            }
        }
        impl Drop for Waiting {
            fn drop(&mut self) {
                if !self.done {
                    self.give_up();
                }
            }
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        let finish = Finish {
            state: Arc::clone(&state),
            stalls: Arc::clone(self),
        };
        let mut waiting = Waiting {
            state: Arc::clone(&state),
            stalls: Arc::clone(self),
            done: false,
        };
        let mut task = tokio::task::spawn_blocking(move || {
            let finish = finish;
            let late = || finish.state.load(Ordering::Acquire) == LATE;
            work(&late)
        });
        match tokio::time::timeout(wait, &mut task).await {
            Ok(joined) => {
                waiting.done = true;
                joined.map_or(Waited::Lost, Waited::Done)
            }
            // Finished just as the wait ran out: its result is there.
            Err(_) if !waiting.give_up() => task.await.map_or(Waited::Lost, Waited::Done),
            Err(_) => Waited::Late,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_past_its_wait_counts_as_stalled_until_it_ends() {
        let stalls = Arc::new(Stalls::default());
        let quick = stalls
            .run(Duration::from_secs(5), |late| {
                assert!(!late());
                1
            })
            .await;
        assert!(matches!(quick, Waited::Done(1)));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (told, said) = std::sync::mpsc::channel::<bool>();
        let slow = stalls
            .run(Duration::from_millis(50), move |late| {
                wait.recv().unwrap();
                told.send(late()).unwrap();
            })
            .await;
        assert!(matches!(slow, Waited::Late));
        assert_eq!(stalls.stalled(), 1);
        release.send(()).unwrap();
        // The work knew its waiter had gone.
        assert!(said.recv().unwrap());
        while stalls.stalled() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!stalls.full());
    }
}
