//! Saving deliveries to a directory, to regenerate the models from your own
//! traffic.
//!
//! Off by default, and meant to stay off unless you need samples: **payloads
//! hold personal data** (names, emails, phone numbers, message previews of
//! your customers). Capture into a directory only you can read, keep it
//! out of version control and backups you do not control, and delete the
//! files once the models are regenerated.
//!
//! What it writes:
//!
//! - one file per event id, `<id>.json`, holding the body exactly as it was
//!   received (the bytes the signature covers); a retry of the same event
//!   rewrites the same file, so a directory never holds one event twice;
//!   an id that is not a safe file name (anything but lowercase letters,
//!   digits, `-`, `_` and `.`; or one a hashed name could be, or a Windows
//!   device's) is `id-<its SHA-256>.json` (`raw-<…>.json`, of its JSON text
//!   as received, for an id read from lone surrogate escapes, each read as
//!   U+FFFD), and an event without a usable id is named after the SHA-256
//!   of its body, `body-<…>.json`;
//! - atomically: each file is written under a temporary name in the same
//!   directory, then renamed, so a reader (such as `kustomer-webhooks
//!   infer`) never sees half a file;
//! - owner-only: the directory is created with mode `0700` and each file
//!   with `0600` (on Unix).
//!
//! The file is written (and synced to disk) on tokio's blocking pool before
//! the handler runs, so a captured delivery is answered a little later: one
//! small file write.
//!
//! Only deliveries that were verified, parsed, and are about to be
//! dispatched are captured: no forgeries, no bodies that are not events, no
//! duplicates, no stale updates. [`Filter`] narrows it further to the
//! payloads worth learning from.
//!
//! ```no_run
//! use kustomer_webhooks::capture::{Capture, Filter};
//! use kustomer_webhooks::receiver::Receiver;
//! use kustomer_webhooks::verify::Verifier;
//! use kustomer_webhooks::Dispatcher;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dispatcher = Dispatcher::builder().registered().build()?;
//! let receiver = Receiver::new(dispatcher, Verifier::new("my webhook token"))
//!     .with_capture(Capture::new("/var/lib/my-service/captured").filter(Filter::Unexpected));
//! # let _ = receiver;
//! # Ok(())
//! # }
//! ```
//!
//! Then `kustomer-webhooks regenerate --samples /var/lib/my-service/captured
//! --out src/models` turns them into models (see the README's "when
//! Kustomer's payloads change").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::{Events, Parsed};

/// Which deliveries to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Filter {
    /// Every delivery about to be dispatched.
    #[default]
    All,
    /// Only the payloads the models did not fully expect: those with drift
    /// (a value of another type than the models have), and events without a
    /// generated type (a name outside the known list, or a known name no
    /// sample had yet, such as `kustomer.tag.create`). Keys the models do
    /// not know (a new attribute) and values in fields the samples only had
    /// as `null` are kept without drift, so they do not count here: to
    /// catch those for a regeneration, capture [`All`](Filter::All) for a
    /// while.
    Unexpected,
}

impl Filter {
    /// Whether a delivery passes the filter.
    pub fn wants<S: Events>(self, parsed: &Parsed<'_, S>) -> bool {
        match self {
            Filter::All => true,
            Filter::Unexpected => !parsed.event.is_typed() || !parsed.drift().is_empty(),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Filter::All),
            "unexpected" => Ok(Filter::Unexpected),
            other => Err(format!(
                "unknown capture filter {other:?}: expected `all` or `unexpected`"
            )),
        }
    }
}

/// Why a delivery could not be saved. The delivery itself is still handled:
/// capture never fails a delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The directory could not be created.
    #[error("cannot create the capture directory {}: {error}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file could not be written or moved into place.
    #[error("cannot write the captured delivery {}: {error}", path.display())]
    Write {
        /// The file it was going to be.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file was still being written after [`CAPTURE_WAIT`] (a disk that
    /// stalls): the delivery went on without waiting, and the write, left
    /// to finish, is counted when it does.
    #[error(
        "the captured delivery {} was still being written after {waited:?} (a slow or stalled \
         disk?): the delivery goes on without it",
        path.display()
    )]
    Slow {
        /// The file it is going to be.
        path: PathBuf,
        /// How long the delivery waited.
        waited: std::time::Duration,
    },
    /// [`MAX_STALLED_CAPTURES`] captures were still being written past
    /// [`CAPTURE_WAIT`] (a disk that stalls): this one was left out.
    #[error(
        "{writing} captures into {} are still being written after {:?} (a stalled disk?): this \
         delivery is not captured",
        dir.display(),
        CAPTURE_WAIT
    )]
    Backlog {
        /// The capture directory.
        dir: PathBuf,
        /// How many were still being written past their wait.
        writing: usize,
    },
}

/// How long a delivery waits for its capture to be written: past it (a disk
/// that stalls), the delivery goes on, and the write finishes, or fails, on
/// its own, counted then.
pub const CAPTURE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The most captures still being written past [`CAPTURE_WAIT`] at once,
/// each holding a thread of tokio's blocking pool: past it, a delivery is
/// not captured (counted failed), so that a disk that stalls does not take
/// every thread of the pool. Writes that end within their wait, however
/// many at once, are not limited.
pub const MAX_STALLED_CAPTURES: usize = crate::stall::MAX_STALLED;

/// Saves deliveries into a directory; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Capture {
    dir: PathBuf,
    filter: Filter,
    counts: Arc<CaptureCounts>,
    /// Captures still being written past their wait, shared by clones.
    stalls: Arc<crate::stall::Stalls>,
    /// How long each write stands still first: a disk that stalls, for
    /// tests.
    #[cfg(test)]
    stall: std::time::Duration,
}

/// What a [`Capture`] has done so far.
#[derive(Debug, Default)]
pub struct CaptureCounts {
    /// Files written.
    pub written: AtomicU64,
    /// Deliveries the filter left out.
    pub skipped: AtomicU64,
    /// Deliveries that could not be written (each logged as a warning).
    pub failed: AtomicU64,
}

impl CaptureCounts {
    /// The counts in Prometheus's text exposition format, for a `/metrics`
    /// endpoint: `kustomer_webhooks_captures_written_total`,
    /// `…_skipped_total` and `…_failed_total` (a capture that failed is
    /// also logged as a warning; its delivery was handled all the same).
    ///
    /// ```
    /// use kustomer_webhooks::capture::CaptureCounts;
    ///
    /// let text = CaptureCounts::default().prometheus();
    /// assert!(text.contains("kustomer_webhooks_captures_failed_total 0\n"));
    /// ```
    pub fn prometheus(&self) -> String {
        let mut text = String::new();
        for (name, help, count) in [
            (
                "written",
                "Deliveries captured into the capture directory.",
                &self.written,
            ),
            (
                "skipped",
                "Deliveries the capture filter left out.",
                &self.skipped,
            ),
            (
                "failed",
                "Deliveries that could not be captured (each logged as a warning).",
                &self.failed,
            ),
        ] {
            let name = format!("kustomer_webhooks_captures_{name}_total");
            text += &format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                count.load(Ordering::Relaxed)
            );
        }
        text
    }
}

impl Capture {
    /// Captures every delivery into `dir`, created when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Capture {
            dir: dir.into(),
            filter: Filter::All,
            counts: Arc::default(),
            stalls: Arc::default(),
            #[cfg(test)]
            stall: std::time::Duration::ZERO,
        }
    }

    /// Captures only the deliveries `filter` wants.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory when missing (owner-only) and checks that a
    /// file can be written in it, so that a service can refuse to start on
    /// a capture that would only log failures. (Deliveries are handled
    /// whether their capture is written or not.) Partial files a process
    /// left as it was killed mid-write, a minute old or more, are removed.
    pub fn check(&self) -> std::io::Result<()> {
        check_writable_dir(&self.dir)?;
        let removed = remove_partial_files(&self.dir, PARTIAL_FILE_AGE);
        if removed > 0 {
            tracing::warn!(
                target: "kustomer_webhooks::capture",
                dir = %self.dir.display(),
                "{}",
                partial_files_removed(removed)
            );
        }
        Ok(())
    }

    /// What has been written, skipped and failed; shared by clones.
    pub fn counts(&self) -> Arc<CaptureCounts> {
        Arc::clone(&self.counts)
    }

    /// The file a delivery is saved to: `<id>.json` when the event id is a
    /// safe file name, otherwise named after a hash (of the id, or of the
    /// body when there is no id).
    pub fn file_for(&self, id: Option<&str>, body: &[u8]) -> PathBuf {
        file_for(&self.dir, id, body)
    }

    /// Saves `parsed` if the filter wants it; `Ok(None)` when it does not.
    /// Blocking file I/O; see [`save_async`](Capture::save_async).
    pub fn save<S: Events>(&self, parsed: &Parsed<'_, S>) -> Result<Option<PathBuf>, CaptureError> {
        if !self.wants(parsed) {
            return Ok(None);
        }
        let id = parsed.event.envelope().event_id();
        self.counted(self.write(id, parsed.raw)).map(Some)
    }

    /// [`save`](Capture::save) with the writing on tokio's blocking pool, as
    /// the receiver does it, waiting at most [`CAPTURE_WAIT`] for it (a
    /// runtime with timers, as the receiver needs anyway).
    ///
    /// # Errors
    ///
    /// As `save`'s, and [`CaptureError::Slow`] when the write was still
    /// under way after the wait (it goes on, and may well end written:
    /// counted, and logged if it fails, then), [`CaptureError::Backlog`]
    /// when [`MAX_STALLED_CAPTURES`] writes were already past their wait
    /// (nothing written).
    pub async fn save_async<S: Events>(
        &self,
        parsed: &Parsed<'_, S>,
    ) -> Result<Option<PathBuf>, CaptureError> {
        if !self.wants(parsed) {
            return Ok(None);
        }
        if self.stalls.full() {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
            return Err(CaptureError::Backlog {
                dir: self.dir.clone(),
                writing: self.stalls.stalled(),
            });
        }
        let id = parsed.event.envelope().event_id().map(str::to_owned);
        let path = self.file_for(id.as_deref(), parsed.raw);
        let (body, this) = (parsed.raw.to_vec(), self.clone());
        // Counted, and said when it fails after the delivery went on, by
        // the write itself.
        let write = move |late: &dyn Fn() -> bool| {
            #[cfg(test)]
            std::thread::sleep(this.stall);
            let result = this.counted(this.write(id.as_deref(), &body));
            if let Err(e) = &result
                && late()
            {
                tracing::warn!(
                    target: "kustomer_webhooks::capture",
                    error = e.to_string().as_str(),
                    "a capture written after its delivery went on failed",
                );
            }
            result
        };
        match self.stalls.run(CAPTURE_WAIT, write).await {
            crate::stall::Waited::Done(result) => result.map(Some),
            crate::stall::Waited::Late => Err(CaptureError::Slow {
                path,
                waited: CAPTURE_WAIT,
            }),
            crate::stall::Waited::Lost => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                Err(CaptureError::Write {
                    path,
                    error: std::io::Error::other("the write could not run"),
                })
            }
        }
    }

    fn wants<S: Events>(&self, parsed: &Parsed<'_, S>) -> bool {
        let wanted = self.filter.wants(parsed);
        if !wanted {
            self.counts.skipped.fetch_add(1, Ordering::Relaxed);
        }
        wanted
    }

    fn counted(&self, result: Result<PathBuf, CaptureError>) -> Result<PathBuf, CaptureError> {
        let counter = match &result {
            Ok(_) => &self.counts.written,
            Err(_) => &self.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Writes `body` as the capture of event `id`, atomically and owner-only.
    /// Not counted in [`counts`](Capture::counts), which count what
    /// [`save`](Capture::save) and [`save_async`](Capture::save_async) do.
    pub fn write(&self, id: Option<&str>, body: &[u8]) -> Result<PathBuf, CaptureError> {
        create_private_dir(&self.dir).map_err(|source| CaptureError::Directory {
            path: self.dir.clone(),
            error: source,
        })?;
        let path = self.file_for(id, body);
        match write_private(&self.dir, &path, body) {
            Ok(()) => Ok(path),
            Err(source) => Err(CaptureError::Write {
                path,
                error: source,
            }),
        }
    }
}

/// The file of a delivery in `dir`: `<id>.json` when the event id is a safe
/// file name, otherwise named after a hash (of the id, or of the body when
/// there is no id), so that every delivery of one event has the same file.
/// An empty id (or one of white space alone) is no id: events with `"id": ""` are told apart by their
/// bodies, as the receiver tells them apart (it keys none of them), rather
/// than sharing one file that each would overwrite or clear.
pub(crate) fn file_for(dir: &Path, id: Option<&str>, body: &[u8]) -> PathBuf {
    let stem = match id.filter(|id| !crate::receiver::names_nothing(id)) {
        Some(id) if is_safe_stem(id) => id.to_owned(),
        // An id read from lone surrogate escapes (each read as U+FFFD) is
        // named by its JSON text as received, so that two such ids are two
        // files, as they are two events.
        // `raw-`, which no other file name starts with, so that it is no
        // other id's name (a string id that is this text).
        Some(id)
            if id.contains('\u{FFFD}')
                && let Some(text) = crate::parse::raw_id(body) =>
        {
            format!("raw-{}", hex::encode(Sha256::digest(text.as_bytes())))
        }
        Some(id) => format!("id-{}", hex::encode(Sha256::digest(id.as_bytes()))),
        None => format!("body-{}", hex::encode(Sha256::digest(body))),
    };
    dir.join(format!("{stem}.json"))
}

/// Writes `body` to `path` in `dir` atomically (under a temporary name,
/// synced, then renamed) and owner-only.
pub(crate) fn write_private(dir: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    // `tempfile` creates the file with mode 0600 under a random name in the
    // same directory, so the rename below is atomic.
    let mut file = tempfile::Builder::new()
        .prefix(".capture-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(without_temporary_name)?;
    // Through the file itself: `NamedTempFile`'s own writes name the
    // temporary file in their errors, where the caller names `path`.
    file.as_file_mut().write_all(body)?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `tempfile`'s error without the temporary file's name it adds (`… at
/// path "/dir/.capture-x1Y2.tmp"`): the caller names the file it was
/// writing, and a name that never existed would only mislead.
fn without_temporary_name(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.split_once(" at path \"") {
        Some((cause, _)) => std::io::Error::new(e.kind(), cause.to_owned()),
        None => e,
    }
}

/// Creates `dir` when missing (owner-only), and checks that a file can be
/// written in it (one is written and removed).
pub(crate) fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    tempfile::Builder::new()
        .prefix(".check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(without_temporary_name)
}

/// How old a temporary file of [`write_private`] must be to be taken for
/// one a process left as it ended mid-write (killed, or its machine down):
/// a write takes a few seconds at most, so one this old is no write under
/// way (the directory is one process's; this spares one shared by mistake).
pub(crate) const PARTIAL_FILE_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temporary files in `dir` at least `age` old that writes
/// never finished (they hold part of a payload, personal data, and are
/// hidden from whoever replays the directory); how many.
pub(crate) fn remove_partial_files(dir: &Path, age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = (name.starts_with(".capture-") && name.ends_with(".tmp"))
            || name.starts_with(".check-");
        // Only the temporary files' own times are looked up, not every
        // capture's.
        if !ours {
            continue;
        }
        let old = entry.metadata().is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .is_ok_and(|at| at.elapsed().is_ok_and(|elapsed| elapsed >= age))
        });
        if old && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The warning that `removed` partial files were removed.
pub(crate) fn partial_files_removed(removed: usize) -> String {
    format!(
        "removed {removed} partial {} left by a write that never finished (a process that \
         ended mid-write)",
        if removed == 1 { "file" } else { "files" }
    )
}

/// Ids Kustomer sends are 24 lowercase hex digits; anything else is used as
/// a file name only when it cannot escape the directory or hide, cannot be
/// taken for a hashed name (`id-…`, `raw-…`, `body-…`), has no capital letter (which a
/// case-insensitive file system, as macOS's and Windows' are by default,
/// would take for another id's file) and is no name Windows reserves for a
/// device (`con`, `nul`, `com1`…, whatever follows a dot).
fn is_safe_stem(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && !id.starts_with("id-")
        && !id.starts_with("raw-")
        && !id.starts_with("body-")
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !is_device_name(id.split('.').next().unwrap_or(id))
}

/// Whether `name` (lowercase) is a device name Windows reserves in every
/// directory.
fn is_device_name(name: &str) -> bool {
    matches!(name, "con" | "prn" | "aux" | "nul")
        || ["com", "lpt"].iter().any(|device| {
            name.strip_prefix(device)
                .is_some_and(|n| matches!(n.as_bytes(), [b'1'..=b'9']))
        })
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        // Made meanwhile by another write (the first deliveries into a
        // directory not there yet, at once).
        Err(_) if dir.is_dir() => Ok(()),
        Err(_) if dir.exists() => Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is there, and is not a directory",
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk that stalls: a delivery waits [`CAPTURE_WAIT`] for its
    /// capture, then goes on; the write is counted when it ends; past
    /// [`MAX_STALLED_CAPTURES`] writes still under way after their wait, a
    /// delivery is not captured. Writes that end in time are not limited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_disk_does_not_hold_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let sample = kustomer_schema::SEED_SAMPLES[0].1;
        let parsed = crate::parse(sample.as_bytes()).unwrap();
        // A healthy disk: a burst of many more than the limit, all written.
        let capture = Capture::new(dir.path().join("healthy"));
        let event = |i: usize| {
            let mut body: serde_json::Value = serde_json::from_str(sample).unwrap();
            body["id"] = format!("{i:024x}").into();
            body.to_string()
        };
        let burst: Vec<_> = (0..3 * MAX_STALLED_CAPTURES)
            .map(|i| {
                let (capture, body) = (capture.clone(), event(i));
                tokio::spawn(async move {
                    let parsed = crate::parse(body.as_bytes()).unwrap();
                    capture.save_async(&parsed).await.map(|_| ())
                })
            })
            .collect();
        for b in burst {
            // (A write past its second on a machine this busy is no
            // backlog: it is written all the same.)
            let result = b.await.unwrap();
            assert!(
                !matches!(result, Err(CaptureError::Backlog { .. })),
                "{result:?}"
            );
        }
        while capture.stalls.stalled() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            capture.counts().written.load(Ordering::Relaxed),
            3 * MAX_STALLED_CAPTURES as u64
        );
        // A stalled one.
        let mut capture = Capture::new(dir.path().join("stalled"));
        capture.stall = CAPTURE_WAIT * 3;
        let stalled: Vec<_> = (0..MAX_STALLED_CAPTURES)
            .map(|i| {
                let (capture, body) = (capture.clone(), event(i));
                tokio::spawn(async move {
                    let parsed = crate::parse(body.as_bytes()).unwrap();
                    capture.save_async(&parsed).await.map(|_| ())
                })
            })
            .collect();
        for s in stalled {
            assert!(matches!(s.await.unwrap(), Err(CaptureError::Slow { .. })));
        }
        assert_eq!(capture.stalls.stalled(), MAX_STALLED_CAPTURES);
        assert_eq!(capture.counts().written.load(Ordering::Relaxed), 0);
        let err = capture.save_async(&parsed).await.unwrap_err();
        assert!(
            matches!(err, CaptureError::Backlog { writing, .. } if writing == MAX_STALLED_CAPTURES),
            "{err}"
        );
        assert_eq!(capture.counts().failed.load(Ordering::Relaxed), 1);
        // The writes end, and are counted then.
        while capture.stalls.stalled() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            capture.counts().failed.load(Ordering::Relaxed),
            1,
            "late failures"
        );
        assert_eq!(
            capture.counts().written.load(Ordering::Relaxed),
            MAX_STALLED_CAPTURES as u64
        );
    }

    /// A write that fails says why without the temporary file's name.
    #[test]
    fn a_failed_write_does_not_name_its_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let e = write_private(&gone, &gone.join("x.json"), b"{}").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(!e.to_string().contains(".capture-"), "{e}");
        // A directory whose file cannot be made: a file stands in its way.
        std::fs::write(dir.path().join("a-file"), "").unwrap();
        let e = write_private(
            &dir.path().join("a-file"),
            &dir.path().join("a-file/x.json"),
            b"{}",
        )
        .unwrap_err();
        assert!(!e.to_string().contains(".capture-"), "{e}");
    }

    #[test]
    fn safe_stems() {
        assert!(is_safe_stem("6087326fa8b1c7b07da5e5c9"));
        for bad in ["", "../etc/passwd", ".hidden", "a/b", "a\\b", "a b", "ü"] {
            assert!(!is_safe_stem(bad), "{bad:?}");
        }
        assert!(!is_safe_stem(&"a".repeat(129)));
        // Not one a hashed name could be, nor another's on a file system
        // that ignores case, nor a Windows device.
        for taken in [
            "id-9cdf6a50",
            "raw-9cdf6a50",
            "body-00",
            "AbCdEf",
            "6087326FA8B1C7B07DA5E5C9",
            "con",
            "nul.x",
            "com1",
            "lpt9.json",
        ] {
            assert!(!is_safe_stem(taken), "{taken:?}");
        }
        for fine in [
            "abc-1_2.3",
            "console",
            "com10",
            "com0",
            "nul-x",
            "idx",
            "id",
        ] {
            assert!(is_safe_stem(fine), "{fine:?}");
        }
    }

    /// An event whose id is another's hashed name gets a file of its own.
    #[test]
    fn no_id_is_written_as_another_ids_hashed_name() {
        let capture = Capture::new("/captures");
        let hashed = capture.file_for(Some("../../x"), b"{}");
        let stem = hashed.file_stem().unwrap().to_str().unwrap();
        assert_ne!(capture.file_for(Some(stem), b"{}"), hashed);
        // Ids that differ only in case: two files, wherever they are kept.
        let lower = capture.file_for(Some("abcdef"), b"{}");
        let upper = capture.file_for(Some("ABCDEF"), b"{}");
        assert_ne!(
            lower.to_str().unwrap().to_lowercase(),
            upper.to_str().unwrap().to_lowercase()
        );
    }

    /// Ids read from different lone surrogate escapes (both U+FFFD once
    /// read) are two files; one body's id, one file.
    #[test]
    fn ids_read_from_lone_surrogates_are_named_by_their_text() {
        let capture = Capture::new("/captures");
        let read = Some("lone\u{FFFD}");
        let a = capture.file_for(read, br#"{"id":"lone\ud800","name":"x"}"#);
        let b = capture.file_for(read, br#"{"id":"lone\udbff","name":"x"}"#);
        assert_ne!(a, b);
        assert_eq!(
            a,
            capture.file_for(read, br#"{"id": "lone\ud800" ,"name":"y"}"#)
        );
        // Nor is it the file of a string id that is its text.
        let text = r#""lone\ud800""#;
        assert_ne!(a, capture.file_for(Some(text), b"{}"));
        assert_ne!(a, capture.file_for(Some(&format!("json:{text}")), b"{}"));
        let stem = a.file_stem().unwrap().to_str().unwrap().to_owned();
        assert_ne!(a, capture.file_for(Some(&stem), b"{}"));
    }

    #[test]
    fn unsafe_ids_are_hashed_inside_the_directory() {
        let capture = Capture::new("/captures");
        let path = capture.file_for(Some("../../etc/passwd"), b"{}");
        assert_eq!(path.parent(), Some(Path::new("/captures")));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("id-") && name.ends_with(".json"), "{name}");
        let path = capture.file_for(None, b"{}");
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("body-")
        );
        // An empty id is no id: two events with one get two files.
        let a = capture.file_for(Some(""), br#"{"id":"","n":1}"#);
        let b = capture.file_for(Some(""), br#"{"id":"","n":2}"#);
        assert_ne!(a, b);
        assert_eq!(a, capture.file_for(None, br#"{"id":"","n":1}"#));
        let blank = capture.file_for(Some(" "), br#"{"id":" ","n":1}"#);
        assert_ne!(blank, capture.file_for(Some(" "), br#"{"id":" ","n":2}"#));
        assert!(
            blank
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("body-")
        );
    }

    #[test]
    fn filters_parse() {
        assert_eq!("all".parse::<Filter>(), Ok(Filter::All));
        assert_eq!("unexpected".parse::<Filter>(), Ok(Filter::Unexpected));
        assert!(
            "drift"
                .parse::<Filter>()
                .unwrap_err()
                .contains("unexpected")
        );
    }

    /// Temporary files a process left as it ended mid-write are removed as
    /// the directory is opened again, once old enough to be no write under
    /// way; recent ones, and other files, are left.
    #[test]
    fn partial_files_left_by_a_write_that_never_finished_are_removed() {
        let dir = tempfile::TempDir::new().unwrap();
        for name in [".capture-a1.tmp", ".check-b2", "a.json", ".capture-c3.json"] {
            std::fs::write(dir.path().join(name), "{").unwrap();
        }
        assert_eq!(
            remove_partial_files(dir.path(), std::time::Duration::from_secs(3600)),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            4,
            "recent: kept"
        );
        assert_eq!(
            remove_partial_files(dir.path(), std::time::Duration::ZERO),
            2
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".capture-c3.json", "a.json"]);
    }

    /// Writes made at once into a directory not there yet each make it or
    /// find it made: none fails (one used to find it there, just made by
    /// another, and take it for something that is not a directory).
    #[test]
    fn writes_at_once_into_a_new_directory_all_succeed() {
        for round in 0..20 {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join(format!("new-{round}")).join("captures");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let writes: Vec<_> = (0..8)
                .map(|i| {
                    let (dir, barrier) = (dir.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        let capture = Capture::new(&dir);
                        capture.write(Some(&format!("{i:024x}")), b"{}")
                    })
                })
                .collect();
            for w in writes {
                w.join().unwrap().unwrap();
            }
        }
        // A file in the directory's place is still said to be one.
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = create_private_dir(&file).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory, "{e}");
    }
}
