//! Deliveries the service could not handle, kept on disk until it does.
//!
//! Kustomer retries a delivery that failed for about an hour, then gives the
//! event up (and disables a webhook that keeps failing). A cause that lasts
//! longer (a handler bug, a database or a shared store down for the
//! afternoon) would lose every event of that time. With dead letters on, the
//! receiver keeps them:
//!
//! - each delivery it answers with a 5xx (its handler failed, panicked or
//!   ran past its time limit; the idempotency store failed or did not
//!   answer) is written to `DIR/<event id>.json`, the body byte for byte as
//!   it was received, atomically and owner-only, as
//!   [`capture`](crate::capture) writes (**payloads hold personal data**); a
//!   retry that fails again rewrites the same file;
//! - once a later delivery of the same event is acknowledged (handled, no
//!   handler for it, a duplicate, stale), its file is removed.
//!
//! So the directory holds exactly the events this process failed on and has
//! not handled since, across restarts ([`DeadLetters::open`] takes the files
//! already there as pending). Only deliveries that were verified and parsed
//! get there: a forgery or a body that is not an event is never kept. A
//! delivery is kept when it is answered, so one whose process dies before
//! answering (killed, out of memory) is not: Kustomer, which got no answer,
//! retries it, and if every retry meets a process that dies, nothing keeps
//! it.
//!
//! Once the cause is fixed, replay them: `kustomer-webhooks send --url
//! https://your-service/kustomer --token-file FILE DIR` signs and posts each
//! file as Kustomer would, and each one the receiver then handles is removed
//! from the directory. A replayed event that was handled meanwhile (a retry
//! reached another replica) is acknowledged as a duplicate while the
//! idempotency store remembers it (75 minutes in memory; use a shared store
//! for several replicas), and removed too. A directory copied from a
//! machine that is gone is replayed with `send --remove-delivered`, which
//! removes each file the receiver acknowledged.
//!
//! Keep one directory per process: a process removes only the files it
//! knows of (those it wrote or found at start), so a file another replica
//! wrote stays until it is replayed. Each event takes the size of its body
//! (a few kilobytes); [`DeadLetters::with_max_pending`] caps how many are
//! kept at once.
//!
//! ```no_run
//! use kustomer_webhooks::dead_letters::DeadLetters;
//! use kustomer_webhooks::receiver::Receiver;
//! use kustomer_webhooks::verify::Verifier;
//! use kustomer_webhooks::Dispatcher;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dispatcher = Dispatcher::builder().registered().build()?;
//! let dead_letters = DeadLetters::open("/var/lib/my-service/dead-letters")?;
//! if dead_letters.pending() > 0 {
//!     eprintln!("{} events wait to be replayed", dead_letters.pending());
//! }
//! let receiver = Receiver::new(dispatcher, Verifier::new("my webhook token"))
//!     .with_dead_letters(dead_letters);
//! # let _ = receiver;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::capture::{check_writable_dir, create_private_dir, file_for, write_private};

/// The target of the log lines.
const LOG: &str = "kustomer_webhooks::dead_letters";

/// The directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the dead-letter directory {}: {error}", path.display())]
pub struct OpenError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// Keeps the deliveries a receiver failed on; see the [module docs](self).
/// Clones share the directory, what is pending and the counts.
#[derive(Clone)]
pub struct DeadLetters {
    dir: PathBuf,
    /// The files this process knows to be in the directory, and whether each
    /// has been written (a delivery being saved holds its place before its
    /// file exists).
    pending: Arc<Mutex<HashMap<PathBuf, bool>>>,
    /// The most events kept at once, if limited.
    max_pending: Option<usize>,
    counts: Arc<DeadLetterCounts>,
    /// File work still under way past its wait (a disk that stalls).
    stalls: Arc<crate::stall::Stalls>,
    /// How many deliveries not kept at the limit were logged this second,
    /// and how many not: with every delivery failing, a directory at its
    /// limit would otherwise add a line to each failure's own.
    over_limit_logged: Arc<crate::receiver::RejectionLog>,
}

/// The most pieces of file work (writing a dead letter, removing one,
/// looking at the directory) still under way past [`DEAD_LETTER_WAIT`] at
/// once, each holding a thread of tokio's blocking pool: past it, a
/// delivery that fails is not kept, and a handled one's file not removed
/// (each counted as an error, and logged), so that a disk that stalls does
/// not take every thread of the pool.
pub const MAX_STALLED_DEAD_LETTERS: usize = crate::stall::MAX_STALLED;

/// How long a delivery waits for its dead letter to be written before it
/// is answered: past it (a disk that stalls), the 5xx goes out, and the
/// write, left to finish, keeps the file if it ends well.
pub const DEAD_LETTER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for DeadLetters {
    /// The directory, how many files wait and the limit: not every pending
    /// path, which could be thousands.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("dir", &self.dir)
            .field("pending", &self.pending())
            .field("max_pending", &self.max_pending)
            .field("counts", &self.counts)
            .finish()
    }
}

/// What [`DeadLetters`] has done so far.
#[derive(Debug, Default)]
pub struct DeadLetterCounts {
    /// Deliveries written (a retry that failed again counts again).
    pub saved: AtomicU64,
    /// Files removed once their event was acknowledged.
    pub cleared: AtomicU64,
    /// Deliveries that could not be written, or files that could not be
    /// removed (each logged as an error).
    pub failed: AtomicU64,
    /// Deliveries of new events not kept because the directory held
    /// [`max_pending`](DeadLetters::with_max_pending) events already (each
    /// logged as an error; Kustomer still retries them).
    pub over_limit: AtomicU64,
}

/// Says how many deliveries were not kept, at the limit, without a line of
/// their own.
#[cold]
fn over_limit_unlogged(count: u64) {
    let line = crate::receiver::unlogged_line(
        "not kept as dead letters, the directory holding its limit of events,",
        count,
    );
    tracing::error!(target: LOG, parent: None, unlogged = count, "{line}");
}

impl DeadLetters {
    /// Keeps dead letters in `dir`, created (owner-only) when missing, and
    /// in which a file can be written (checked now: one is written and
    /// removed). The `.json` files already there are pending: removed once
    /// their event is acknowledged.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, OpenError> {
        let dir = dir.into();
        let failed = |source| OpenError {
            path: dir.clone(),
            error: source,
        };
        check_writable_dir(&dir).map_err(failed)?;
        // Partial files a process left as it was killed mid-write.
        let removed = crate::capture::remove_partial_files(&dir, crate::capture::PARTIAL_FILE_AGE);
        if removed > 0 {
            tracing::warn!(
                target: LOG,
                dir = %dir.display(),
                "{}",
                crate::capture::partial_files_removed(removed)
            );
        }
        let mut pending = HashMap::new();
        for entry in std::fs::read_dir(&dir).map_err(failed)? {
            let path = entry.map_err(failed)?.path();
            let visible = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'));
            if visible && path.extension().is_some_and(|e| e == "json") {
                pending.insert(path, true);
            }
        }
        Ok(DeadLetters {
            dir,
            pending: Arc::new(Mutex::new(pending)),
            max_pending: None,
            counts: Arc::default(),
            stalls: Arc::default(),
            over_limit_logged: Arc::new(crate::receiver::RejectionLog::new(over_limit_unlogged)),
        })
    }

    /// Keeps at most `max` events at once (by default, as many as the disk
    /// holds: a few kilobytes each). Once the directory holds `max`, the
    /// deliveries of other events that fail are not kept (logged as an error,
    /// at most [`REJECTIONS_LOGGED_PER_SECOND`](crate::receiver::REJECTIONS_LOGGED_PER_SECOND)
    /// a second, the rest said in one line, and counted in
    /// [`DeadLetterCounts::over_limit`]); Kustomer still
    /// retries them for its hour, as without dead letters. A retry of an
    /// event already kept still rewrites its file.
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = Some(max);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many events are in the directory, waiting to be handled.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// The pending files, in name order.
    pub fn pending_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.lock().keys().cloned().collect();
        files.sort();
        files
    }

    /// Looks at the pending files again: those no longer in the directory
    /// (removed by another process: a replay to another receiver with
    /// `kustomer-webhooks send --remove-delivered`, or by hand) stop
    /// counting as pending. A delivery that would pass the
    /// [limit](DeadLetters::with_max_pending) does this first; call it
    /// before reading [`pending`](DeadLetters::pending) for a gauge.
    /// It waits at most [`DEAD_LETTER_WAIT`] for the directory (a disk that
    /// stalls), and then leaves the count as it was.
    pub async fn refresh(&self) {
        let written: Vec<PathBuf> = self
            .lock()
            .iter()
            .filter(|(_, written)| **written)
            .map(|(path, _)| path.clone())
            .collect();
        if written.is_empty() || self.stalls.full() {
            return;
        }
        let look = move |_: &dyn Fn() -> bool| {
            written
                .into_iter()
                .filter(|path| {
                    std::fs::symlink_metadata(path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                })
                .collect::<Vec<_>>()
        };
        let crate::stall::Waited::Done(gone) = self.stalls.run(DEAD_LETTER_WAIT, look).await else {
            return;
        };
        let mut pending = self.lock();
        for path in gone {
            // Unless it was saved again meanwhile (and is being written).
            if pending.get(&path) == Some(&true) {
                pending.remove(&path);
            }
        }
    }

    /// What has been saved, cleared and failed; shared by clones.
    pub fn counts(&self) -> Arc<DeadLetterCounts> {
        Arc::clone(&self.counts)
    }

    /// What is pending and what was done, in Prometheus's text format, to
    /// add to a `/metrics` route beside
    /// [`Counters::prometheus`](crate::receiver::Counters::prometheus):
    /// `kustomer_webhooks_dead_letters_pending` (a gauge; alert when it
    /// stays above zero), and the counters `…_saved_total`,
    /// `…_over_limit_total` and `…_errors_total`.
    pub fn prometheus(&self) -> String {
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let mut text = String::new();
        for (name, kind, help, value) in [
            (
                "pending",
                "gauge",
                "Deliveries that failed and wait in the dead-letter directory to be handled.",
                self.pending() as u64,
            ),
            (
                "saved_total",
                "counter",
                "Failed deliveries written to the dead-letter directory (each retry counts).",
                count(&self.counts.saved),
            ),
            (
                "over_limit_total",
                "counter",
                "Failed deliveries not kept: the directory held its limit of events.",
                count(&self.counts.over_limit),
            ),
            (
                "errors_total",
                "counter",
                "Dead letters that could not be written, or removed once handled.",
                count(&self.counts.failed),
            ),
        ] {
            let name = format!("kustomer_webhooks_dead_letters_{name}");
            text += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, bool>> {
        // The set stays consistent whatever panicked while holding it: each
        // change is one insert or remove.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the delivery of event `id` (its `body` as received) on
    /// tokio's blocking pool, logging `why` it is kept, waiting at most
    /// [`DEAD_LETTER_WAIT`] for the look for room (at the limit) and as
    /// long again for the write: the write, and its count, finish even if
    /// the caller stops waiting. With [`MAX_STALLED_DEAD_LETTERS`] writes
    /// still under way past their wait (a disk that stalls), it is not kept.
    pub(crate) async fn save(&self, id: Option<&str>, body: Vec<u8>, why: &str) {
        let path = file_for(&self.dir, id, &body);
        let new = match tokio::time::timeout(DEAD_LETTER_WAIT, self.hold_place(&path, why)).await {
            Ok(Some(new)) => new,
            // Over the limit: said.
            Ok(None) => return,
            Err(_) => {
                // Still looking at the directory for room: nothing written.
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    target: LOG,
                    file = %path.display(),
                    reason = why,
                    "a delivery that failed was not kept as a dead letter: the directory, at its \
                     limit, could not be looked at within {DEAD_LETTER_WAIT:?} (a slow or \
                     stalled disk?); Kustomer still retries it",
                );
                return;
            }
        };
        let give_up_place = || {
            if new {
                self.lock().remove(&path);
            }
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
        };
        if self.stalls.full() {
            give_up_place();
            tracing::error!(
                target: LOG,
                file = %path.display(),
                reason = why,
                "a delivery that failed was not kept as a dead letter: {} pieces of work on the \
                 directory are still under way after {DEAD_LETTER_WAIT:?} (a stalled disk?); \
                 Kustomer still retries it",
                self.stalls.stalled(),
            );
            return;
        }
        // The write and its bookkeeping happen on the blocking pool, so that
        // both finish even if this stops waiting (a disk that stalls, a
        // caller's time limit): a place held but never marked written would
        // count against the limit for good.
        let this = self.clone();
        let (why, written_path) = (why.to_owned(), path.clone());
        let span = tracing::Span::current();
        let write = move |_: &dyn Fn() -> bool| {
            let _in = span.enter();
            let written = create_private_dir(&this.dir)
                .and_then(|()| write_private(&this.dir, &written_path, &body));
            this.saved(written_path, new, written, &why);
        };
        match self.stalls.run(DEAD_LETTER_WAIT, write).await {
            crate::stall::Waited::Done(()) => {}
            crate::stall::Waited::Late => tracing::error!(
                target: LOG,
                file = %path.display(),
                "the dead letter was not written within {DEAD_LETTER_WAIT:?} (a slow or stalled \
                 disk?): the delivery is answered without waiting, and kept if the write ends",
            ),
            crate::stall::Waited::Lost => give_up_place(),
        }
    }

    /// Takes the place of the dead letter at `path` in the count: whether
    /// it is new, or `None` when the directory holds its limit of events
    /// (said). At the limit, the files removed by another process since (a
    /// replay to another receiver with `send --remove-delivered`, or by
    /// hand) stop counting first.
    async fn hold_place(&self, path: &Path, why: &str) -> Option<bool> {
        // A new event takes its place in the count before it is written, so
        // that deliveries failing at once cannot pass the limit together.
        let mut looked = false;
        loop {
            {
                let mut pending = self.lock();
                let new = !pending.contains_key(path);
                if !(new && self.max_pending.is_some_and(|max| pending.len() >= max)) {
                    if new {
                        pending.insert(path.to_owned(), false);
                    }
                    return Some(new);
                }
            }
            if !looked {
                self.refresh().await;
                looked = true;
                continue;
            }
            self.counts.over_limit.fetch_add(1, Ordering::Relaxed);
            if self.over_limit_logged.take() {
                tracing::error!(
                    target: LOG,
                    file = %path.display(),
                    max = self.max_pending,
                    reason = why,
                    "the dead-letter directory holds its limit of events: this delivery that \
                     failed is not kept (Kustomer still retries it)",
                );
            }
            return None;
        }
    }

    /// Counts and logs a dead letter's write, and marks its file written
    /// (or, when the write failed, gives up the place a new one held).
    fn saved(&self, path: PathBuf, new: bool, written: std::io::Result<()>, why: &str) {
        match written {
            Ok(()) => {
                self.lock().insert(path.clone(), true);
                self.counts.saved.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target: LOG,
                    file = %path.display(),
                    reason = why,
                    "delivery kept as a dead letter, to replay once it can be handled",
                );
            }
            Err(e) => {
                if new {
                    self.lock().remove(&path);
                }
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    target: LOG,
                    file = %path.display(),
                    error = %e,
                    reason = why,
                    "a delivery that failed could not be kept as a dead letter",
                );
            }
        }
    }

    /// Removes the dead letter of event `id`, if there is one, now that a
    /// delivery of it was acknowledged. Costs a lookup in memory when there
    /// is none.
    pub(crate) async fn clear(&self, id: Option<&str>, body: &[u8]) {
        if self.lock().is_empty() {
            return;
        }
        let path = file_for(&self.dir, id, body);
        if !self.lock().contains_key(&path) {
            return;
        }
        // Removed, counted and said on the blocking pool, whether or not
        // this waits (at most [`DEAD_LETTER_WAIT`]: a disk that stalls does
        // not hold the delivery's answer).
        let this = self.clone();
        let target = path.clone();
        let span = tracing::Span::current();
        let remove = move |_: &dyn Fn() -> bool| {
            let _in = span.enter();
            let removed = match std::fs::remove_file(&target) {
                // Removed by hand meanwhile: as good as cleared.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            };
            match removed {
                Ok(()) => {
                    this.lock().remove(&target);
                    this.counts.cleared.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        target: LOG,
                        file = %target.display(),
                        "dead letter handled and removed",
                    );
                }
                Err(e) => {
                    this.counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        target: LOG,
                        file = %target.display(),
                        error = %e,
                        "a dead letter whose event was handled could not be removed: remove it \
                         rather than replay it (a replay is a duplicate only while the \
                         idempotency store remembers the event)",
                    );
                }
            }
        };
        if self.stalls.full() {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                target: LOG,
                file = %path.display(),
                "a dead letter whose event was handled was not removed: {} pieces of work on the \
                 directory are still under way after {DEAD_LETTER_WAIT:?} (a stalled disk?); \
                 remove it rather than replay it",
                self.stalls.stalled(),
            );
            return;
        }
        if let crate::stall::Waited::Late = self.stalls.run(DEAD_LETTER_WAIT, remove).await {
            tracing::warn!(
                target: LOG,
                file = %path.display(),
                "the dead letter of a handled event was not removed within {DEAD_LETTER_WAIT:?} (a \
                 slow or stalled disk?): the delivery is answered without waiting",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// A disk that stalls: the delivery waits [`DEAD_LETTER_WAIT`] for its
    /// dead letter, then is answered; the write, left to finish, keeps the
    /// file once it ends.
    #[test]
    fn a_save_on_a_stalled_disk_is_waited_for_a_while_then_left_to_finish() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap();
        let file = dir.path().join("s1.json");
        // The one blocking thread is busy, as a write to a stalled disk
        // would keep it.
        let timed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        timed.block_on(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            let started = tokio::time::Instant::now();
            letters.save(Some("s1"), b"{}".to_vec(), "test").await;
            // Answered, the write not done: it waited its time, no more.
            assert!(started.elapsed() >= DEAD_LETTER_WAIT);
            assert!(!file.exists());
            release.send(()).unwrap();
            busy.await.unwrap().unwrap();
            for _ in 0..500 {
                if letters.counts().saved.load(Ordering::Relaxed) == 1 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(letters.counts().saved.load(Ordering::Relaxed), 1);
            assert!(file.exists());
        });
    }

    /// A dead letter whose event was handled but that could not be removed
    /// then (a disk gone read-only) is counted as an error and stays
    /// pending, in the directory as in the count, until a later
    /// acknowledgement removes it.
    #[test]
    fn a_handled_dead_letter_that_could_not_be_removed_stays_pending() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap();
        let file = dir.path().join("h1.json");
        runtime().block_on(async {
            letters.save(Some("h1"), b"{}".to_vec(), "test").await;
            assert!(file.is_file());
            // In its place, what `remove_file` cannot remove.
            std::fs::remove_file(&file).unwrap();
            std::fs::create_dir(&file).unwrap();
            letters.clear(Some("h1"), b"{}").await;
            assert_eq!(letters.pending(), 1);
            assert_eq!(letters.counts().failed.load(Ordering::Relaxed), 1);
            std::fs::remove_dir(&file).unwrap();
            std::fs::write(&file, b"{}").unwrap();
            letters.clear(Some("h1"), b"{}").await;
            assert!(!file.exists());
            assert_eq!(letters.pending(), 0);
            assert_eq!(letters.counts().cleared.load(Ordering::Relaxed), 1);
        });
    }

    /// With [`MAX_STALLED_DEAD_LETTERS`] pieces of file work still under
    /// way past their wait (a disk that stalls), a failing delivery is not
    /// kept: a thread of the blocking pool is not taken for each one.
    #[test]
    fn past_the_stalled_writes_a_failing_delivery_is_not_kept() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap();
        let timed = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        timed.block_on(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            let saves: Vec<_> = (0..MAX_STALLED_DEAD_LETTERS)
                .map(|i| {
                    let letters = letters.clone();
                    tokio::spawn(async move {
                        letters
                            .save(Some(&format!("w{i}")), b"{}".to_vec(), "test")
                            .await;
                    })
                })
                .collect();
            for save in saves {
                save.await.unwrap();
            }
            assert_eq!(letters.stalls.stalled(), MAX_STALLED_DEAD_LETTERS);
            letters.save(Some("over"), b"{}".to_vec(), "test").await;
            assert_eq!(letters.counts().failed.load(Ordering::Relaxed), 1);
            release.send(()).unwrap();
            busy.await.unwrap().unwrap();
            while letters.stalls.stalled() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(
                letters.counts().saved.load(Ordering::Relaxed),
                MAX_STALLED_DEAD_LETTERS as u64
            );
            assert!(!dir.path().join("over.json").exists());
            assert_eq!(letters.pending(), MAX_STALLED_DEAD_LETTERS);
        });
    }

    /// At the limit on a disk that stalls, a delivery does not wait for the
    /// look at the directory that would make room past its time: it is not
    /// kept, and that is counted and said, not promised as a write to come.
    #[test]
    fn at_the_limit_a_stalled_look_for_room_is_counted_as_not_kept() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap().with_max_pending(1);
        let timed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        timed.block_on(async {
            letters.save(Some("l1"), b"{}".to_vec(), "test").await;
            // Removed by another process: room, once the directory is
            // looked at, which the stalled disk (the busy thread) delays.
            std::fs::remove_file(dir.path().join("l1.json")).unwrap();
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            letters.save(Some("l2"), b"{}".to_vec(), "test").await;
            // Not kept, and counted: as an error when the look was cut
            // short, or over the limit when the look gave up first (it
            // waits as long).
            let counts = letters.counts();
            let not_kept =
                counts.failed.load(Ordering::Relaxed) + counts.over_limit.load(Ordering::Relaxed);
            assert_eq!(not_kept, 1);
            release.send(()).unwrap();
            busy.await.unwrap().unwrap();
            assert!(!dir.path().join("l2.json").exists());
        });
    }

    /// A save whose caller stops waiting (a time limit) still writes the
    /// file and marks it written: a place left held would count against the
    /// limit for good, even once the file is gone.
    #[test]
    fn a_save_dropped_half_way_still_writes_and_counts() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap().with_max_pending(1);
        let file = dir.path().join("d1.json");
        // One blocking thread, kept busy until the save was dropped, so that
        // its write waits behind it.
        let timed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        timed.block_on(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            // Polled once (its write handed to the blocking pool), then
            // dropped.
            let save = letters.save(Some("d1"), b"{}".to_vec(), "test");
            let zero = std::time::Duration::ZERO;
            assert!(tokio::time::timeout(zero, save).await.is_err());
            assert!(!file.exists());
            release.send(()).unwrap();
            busy.await.unwrap().unwrap();
            for _ in 0..500 {
                if letters.counts().saved.load(Ordering::Relaxed) == 1 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!(letters.counts().saved.load(Ordering::Relaxed), 1);
            assert!(file.exists());
            // Replayed elsewhere and removed: no longer counted, and the
            // next failure has room.
            std::fs::remove_file(&file).unwrap();
            letters.save(Some("d2"), b"{}".to_vec(), "test").await;
        });
        assert_eq!(letters.pending_files(), [dir.path().join("d2.json")]);
    }

    #[test]
    fn a_saved_delivery_is_pending_until_cleared_and_survives_a_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path().join("dead")).unwrap();
        assert_eq!(letters.pending(), 0);
        runtime().block_on(async {
            letters
                .save(Some("a1"), b"{\"id\":\"a1\"}".to_vec(), "test")
                .await;
            letters.save(None, b"{}".to_vec(), "test").await;
            // A retry failing again rewrites the same file.
            letters
                .save(Some("a1"), b"{\"id\":\"a1\"}".to_vec(), "test")
                .await;
        });
        let file = dir.path().join("dead/a1.json");
        assert_eq!(std::fs::read(&file).unwrap(), b"{\"id\":\"a1\"}");
        assert_eq!(letters.pending(), 2);
        assert_eq!(letters.counts().saved.load(Ordering::Relaxed), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("dead")), 0o700);
            assert_eq!(mode(&file), 0o600);
        }

        // Another process (a restart) finds both pending, and clears one.
        let reopened = DeadLetters::open(dir.path().join("dead")).unwrap();
        assert_eq!(reopened.pending_files().len(), 2);
        runtime().block_on(async {
            reopened.clear(Some("other"), b"{}").await;
            reopened.clear(Some("a1"), b"ignored").await;
        });
        assert!(!file.exists());
        assert_eq!(reopened.pending(), 1);
        assert_eq!(reopened.counts().cleared.load(Ordering::Relaxed), 1);
        let left = reopened.pending_files();
        let name = left[0].file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("body-"), "{name}");
        // Debug counts the files rather than listing them.
        let debug = format!("{reopened:?}");
        assert!(debug.contains("pending: 1,"), "{debug}");
        assert!(!debug.contains("body-"), "{debug}");
    }

    #[test]
    fn events_with_an_empty_id_are_kept_and_cleared_apart() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap();
        let (one, two, three) = (
            br#"{"id":"","n":1}"#.to_vec(),
            br#"{"id":"","n":2}"#.to_vec(),
            br#"{"id":"","n":3}"#.to_vec(),
        );
        runtime().block_on(async {
            letters.save(Some(""), one.clone(), "test").await;
            letters.save(Some(""), two.clone(), "test").await;
            // Another event with an empty id, handled: neither is cleared.
            letters.clear(Some(""), &three).await;
        });
        assert_eq!(letters.pending(), 2);
        let mut kept: Vec<Vec<u8>> = letters
            .pending_files()
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        kept.sort();
        assert_eq!(kept, [one.clone(), two]);
        runtime().block_on(letters.clear(Some(""), &one));
        assert_eq!(letters.pending(), 1);
    }

    #[test]
    fn past_its_limit_only_the_events_already_kept_are_written() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap().with_max_pending(2);
        runtime().block_on(async {
            for id in ["a", "b", "c", "b"] {
                letters.save(Some(id), id.as_bytes().to_vec(), "test").await;
            }
        });
        assert_eq!(
            letters.pending_files(),
            [dir.path().join("a.json"), dir.path().join("b.json")]
        );
        let counts = letters.counts();
        assert_eq!(counts.saved.load(Ordering::Relaxed), 3, "b twice");
        assert_eq!(counts.over_limit.load(Ordering::Relaxed), 1, "c");
        let text = letters.prometheus();
        for line in [
            "# TYPE kustomer_webhooks_dead_letters_pending gauge\n\
             kustomer_webhooks_dead_letters_pending 2\n",
            "# TYPE kustomer_webhooks_dead_letters_saved_total counter\n\
             kustomer_webhooks_dead_letters_saved_total 3\n",
            "\nkustomer_webhooks_dead_letters_over_limit_total 1\n",
            "\nkustomer_webhooks_dead_letters_errors_total 0\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        // Once one is handled, there is room again.
        runtime().block_on(async {
            letters.clear(Some("a"), b"").await;
            letters.save(Some("c"), b"c".to_vec(), "test").await;
        });
        assert!(dir.path().join("c.json").exists());
        // Files another process removed (a replay elsewhere, by hand) make
        // room too: the next delivery past the limit looks again.
        std::fs::remove_file(dir.path().join("b.json")).unwrap();
        std::fs::remove_file(dir.path().join("c.json")).unwrap();
        assert_eq!(letters.pending(), 2, "not looked at yet");
        runtime().block_on(letters.save(Some("d"), b"d".to_vec(), "test"));
        assert_eq!(letters.pending_files(), [dir.path().join("d.json")]);
        assert_eq!(counts.over_limit.load(Ordering::Relaxed), 1);
        // And `refresh` makes the gauge say what is there.
        std::fs::remove_file(dir.path().join("d.json")).unwrap();
        runtime().block_on(letters.refresh());
        assert_eq!(letters.pending(), 0);
    }

    /// With the directory at its limit and every delivery failing, the
    /// deliveries not kept are logged within a budget, the rest counted in
    /// one line: each failure's own line is not doubled for ever.
    #[test]
    fn deliveries_not_kept_at_the_limit_are_logged_within_a_budget() {
        let per_second = crate::receiver::REJECTIONS_LOGGED_PER_SECOND as usize;
        let others = per_second * 4;
        let said = crate::receiver::tests::logged(|| {
            let dir = tempfile::TempDir::new().unwrap();
            let letters = DeadLetters::open(dir.path()).unwrap().with_max_pending(1);
            runtime().block_on(async {
                letters.save(Some("kept"), b"{}".to_vec(), "test").await;
                for i in 0..others {
                    letters
                        .save(Some(&format!("e{i}")), b"{}".to_vec(), "test")
                        .await;
                }
            });
            let over = letters.counts().over_limit.load(Ordering::Relaxed);
            assert_eq!(over, others as u64);
            drop(letters);
        });
        let (lines, unlogged) = crate::receiver::tests::lines_and_unlogged(
            &said,
            "holds its limit of events: this delivery",
        );
        assert_eq!(lines + unlogged, others, "{said:?}");
        // Within a second's budget, or two if the clock's second turned.
        assert!(lines <= 2 * per_second, "{lines}: {said:?}");
        assert!(unlogged > 0, "{said:?}");
    }

    #[test]
    fn a_delivery_that_cannot_be_written_is_counted_and_not_pending() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("dead");
        let letters = DeadLetters::open(&path).unwrap();
        // The directory is gone, and a file stands in its place.
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        runtime().block_on(letters.save(Some("a"), b"{}".to_vec(), "test"));
        assert_eq!(letters.pending(), 0);
        let counts = letters.counts();
        assert_eq!(counts.failed.load(Ordering::Relaxed), 1);
        assert_eq!(counts.saved.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_file_removed_by_hand_counts_as_cleared() {
        let dir = tempfile::TempDir::new().unwrap();
        let letters = DeadLetters::open(dir.path()).unwrap();
        runtime().block_on(letters.save(Some("b2"), b"{}".to_vec(), "test"));
        std::fs::remove_file(dir.path().join("b2.json")).unwrap();
        runtime().block_on(letters.clear(Some("b2"), b"{}"));
        assert_eq!(letters.pending(), 0);
        assert_eq!(letters.counts().failed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn only_visible_json_files_are_pending_at_open() {
        let dir = tempfile::TempDir::new().unwrap();
        for name in ["a.json", ".capture-x.tmp", ".hidden.json", "notes.txt"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let letters = DeadLetters::open(dir.path()).unwrap();
        assert_eq!(letters.pending_files(), [dir.path().join("a.json")]);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error_naming_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let e = DeadLetters::open(file.join("dead")).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "cannot open the dead-letter directory {}",
                file.join("dead").display()
            )),
            "{e}"
        );
    }
}
