//! Lines on stdout. Output is often piped (`parse dir | head`); a reader
//! that goes away ends a command quietly instead of with a panic.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Writes one line on stdout.
fn try_line(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Whether the command's work is more than its output (`send` posts every
/// payload), so that it goes on when its reader goes away.
static GOES_ON: AtomicBool = AtomicBool::new(false);
/// Whether stdout was found closed, in a command that goes on: its lines
/// are then dropped.
static GONE: AtomicBool = AtomicBool::new(false);
/// Whether the command has already failed at something, so that it exits
/// with status 1 whenever it ends.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Has the command go on when its reader goes away, printing nothing more:
/// for one whose work is more than what it prints.
pub fn go_on_without_stdout() {
    GOES_ON.store(true, Ordering::Relaxed);
}

/// Records that the command failed at something: if it ends at a closed
/// stdout ([`line`]), it does so with status 1, not 0.
pub fn failed() {
    FAILED.store(true, Ordering::Relaxed);
}

/// Writes one line on stdout for a command that prints as it goes. When the
/// reader has gone away (a closed pipe), nobody reads the rest: the command
/// ends there, with status 1 if it had failed at something before
/// ([`failed`]) and 0 otherwise; or, for a command whose work is more than
/// its output ([`go_on_without_stdout`]), it goes on, printing nothing more.
/// Any other failure to write ends it with an error and status 1.
pub fn line(args: std::fmt::Arguments<'_>) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = try_line(args) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            if GOES_ON.load(Ordering::Relaxed) {
                GONE.store(true, Ordering::Relaxed);
                return;
            }
            remove_left_behind();
            std::process::exit(i32::from(FAILED.load(Ordering::Relaxed)));
        }
        remove_left_behind();
        let _ = writeln!(io::stderr(), "error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Directories a command removes before it ends at a closed stdout
/// ([`line`]), which skips the destructors that would otherwise remove
/// them.
static LEFT_BEHIND: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Has `dir` removed if the command ends at a closed stdout.
pub fn remove_on_exit(dir: &std::path::Path) {
    if let Ok(mut dirs) = LEFT_BEHIND.lock() {
        dirs.push(dir.to_owned());
    }
}

pub fn remove_left_behind() {
    if let Ok(dirs) = LEFT_BEHIND.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes one line on stderr, ignoring a failure: a long-running `serve`
/// whose log reader went away (a closed pipe) keeps serving rather than
/// panicking in `eprintln!`; in `serve`, through its log's thread
/// ([`crate::log::write`]).
pub fn note_line(args: std::fmt::Arguments<'_>) {
    if crate::log::json() {
        let note = args.to_string();
        // The level says it: the message is the rest.
        let level = note_level(&note);
        let message = note
            .strip_prefix("warning: ")
            .or_else(|| note.strip_prefix("error: "))
            .unwrap_or(&note);
        return write_json_note(level, message);
    }
    let mut line = args.to_string();
    line.push('\n');
    crate::log::write(line.as_bytes());
}

/// The level of a note in a JSON log: a note that says it is a warning
/// (`warning: …`) or an error is one, for a pipeline that alerts by level.
fn note_level(note: &str) -> tracing::Level {
    if note.starts_with("warning: ") {
        tracing::Level::WARN
    } else if note.starts_with("error: ") {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    }
}

/// Writes a command's error on stderr: `error: …`, or, with a JSON log, a
/// JSON line at level ERROR.
pub fn error_line(message: &str) {
    // A file name or an event name in it may hold a terminal escape.
    let message = &*printable(message);
    if crate::log::json() {
        return write_json_note(tracing::Level::ERROR, message);
    }
    note_line(format_args!("error: {message}"));
}

fn write_json_note(level: tracing::Level, message: &str) {
    let mut line = crate::log::note_json(level, message);
    line.push('\n');
    crate::log::write(line.as_bytes());
}

/// `text` as it can be shown on one line of a terminal: control characters
/// (line breaks, escape sequences) and the characters that reorder text
/// (bidirectional overrides) are written as `\u{…}` escapes, so that a
/// payload's or a receiver's text cannot break a line or forge another.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `eprintln!` that never panics: see [`note_line`].
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::out::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// `println!` for the commands: see [`line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// How many lines may wait for a [`Lines`] thread; a handler whose line
/// finds the queue full waits for room (within its time limit).
const QUEUED_LINES: usize = 1024;

/// `serve`'s event lines, written to stdout by a thread of their own.
///
/// Writing to stdout can block for as long as its reader does not read (a
/// full pipe). Done in a handler, that would stop a runtime thread: with a
/// stalled reader, every delivery, `/healthz` and even SIGTERM would hang. Here a
/// handler queues its line and waits, asynchronously, until the thread has
/// written it, so that a delivery is still acknowledged only once its line
/// is out; when stdout stalls, the handler's time limit answers 503 (and
/// Kustomer retries) while everything else goes on.
#[derive(Clone)]
pub struct Lines {
    queue: tokio::sync::mpsc::Sender<Pending>,
    /// The output, held while a write is under way: [`Lines::settle`] takes
    /// it, so that the process does not end in the middle of one.
    writing: Arc<std::sync::Mutex<Output>>,
    /// Set once a write found the output closed (a pipe whose reader has
    /// gone, which never comes back).
    closed: Arc<AtomicBool>,
    /// When the write under way began, in milliseconds after [`epoch`],
    /// plus one; 0 while none is.
    write_began: Arc<std::sync::atomic::AtomicU64>,
    /// The last write that failed other than at a closed output (a full
    /// disk, an I/O error), when, and why; `None` once one is written since.
    failing: Failing,
}

/// Where [`Lines`] writes, and whether its last write failed after writing
/// part of its text (a line cut short by a full disk, to be ended before
/// anything else is written, or when the process ends).
struct Output {
    out: Box<dyn Write + Send>,
    cut_short: bool,
}

/// How [`Lines::settle`] left stdout.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Every line written is whole.
    Whole,
    /// A write was still under way at the time limit (its reader had
    /// stopped reading).
    StillWriting,
    /// A line a failed write cut short (a full disk) could not be ended,
    /// the newline failing too: why.
    CutShort(String),
}

/// See [`Lines::failing`].
type Failing = Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>;

/// The instant [`Lines`] measures its writes from.
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// A line waiting for the thread, and who waits for it.
struct Pending {
    line: String,
    written: tokio::sync::oneshot::Sender<io::Result<()>>,
}

/// Stdout without the standard library's line buffer, where the system
/// allows it: a write cut short by a full disk then leaves no rest in a
/// buffer to be written ahead of the next line, which the newline that
/// ends the cut line would then follow as a blank line.
fn unbuffered_stdout() -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(io::stdout())
}

impl Lines {
    /// The process's stdout writer, started on first use.
    pub fn stdout() -> &'static Lines {
        static STDOUT: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
        STDOUT.get_or_init(|| Lines::spawn(unbuffered_stdout()))
    }

    /// Lines written to `out` by a new thread. Should the thread not start,
    /// every [`write`](Self::write) fails, saying so.
    pub fn spawn(out: impl Write + Send + 'static) -> Lines {
        let (queue, waiting) = tokio::sync::mpsc::channel(QUEUED_LINES);
        let writing = Arc::new(std::sync::Mutex::new(Output {
            out: Box::new(out),
            cut_short: false,
        }));
        let closed = Arc::new(AtomicBool::new(false));
        let write_began = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failing = Failing::default();
        let thread = Thread {
            writing: Arc::clone(&writing),
            closed: Arc::clone(&closed),
            write_began: Arc::clone(&write_began),
            failing: Arc::clone(&failing),
        };
        // Without its thread, `waiting` is dropped here and every send fails.
        let _ = std::thread::Builder::new()
            .name("stdout-lines".to_owned())
            .spawn(move || write_lines(waiting, &thread));
        Lines {
            queue,
            writing,
            closed,
            write_began,
            failing,
        }
    }

    /// How long ago the last write failed, and why, when it failed other
    /// than at a closed output (a full disk, an I/O error, which may pass)
    /// and no line was written since; whether or not anyone still waited
    /// for its lines.
    pub fn failing(&self) -> Option<(std::time::Duration, String)> {
        let failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        failing
            .as_ref()
            .map(|(at, why)| (at.elapsed(), why.clone()))
    }

    /// How long the write under way has been waiting for the output to take
    /// it (a reader that stopped reading, its pipe full); `None` while no
    /// write is under way.
    pub fn stalled_for(&self) -> Option<std::time::Duration> {
        match self.write_began.load(Ordering::Relaxed) {
            0 => None,
            began => {
                let began = std::time::Duration::from_millis(began - 1);
                Some(epoch().elapsed().saturating_sub(began))
            }
        }
    }

    /// Whether a write found the output closed (its reader gone), whether or
    /// not anyone still waited for that line.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Waits, at most `within`, for a write to stdout under way to end,
    /// ends a line a failed write cut short (so that the next process's
    /// first line, appended to the same file, is not glued to it), and
    /// keeps any other write from starting: for a process about to end, so
    /// that it leaves no half line behind.
    pub fn settle(&self, within: std::time::Duration) -> Settled {
        let until = std::time::Instant::now() + within;
        let mut output = loop {
            match self.writing.try_lock() {
                Ok(guard) => break guard,
                Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::sync::TryLockError::WouldBlock) => return Settled::StillWriting,
            }
        };
        let settled = if output.cut_short {
            match write_whole(&mut output.out, b"\n").0 {
                Ok(()) => {
                    output.cut_short = false;
                    Settled::Whole
                }
                Err(e) => Settled::CutShort(e.to_string()),
            }
        } else {
            Settled::Whole
        };
        // Held until the process ends.
        std::mem::forget(output);
        settled
    }

    /// Writes `line` and a newline, and flushes: done once it is written.
    pub async fn write(&self, line: String) -> io::Result<()> {
        let stopped = || io::Error::other("the thread writing stdout stopped");
        let (written, done) = tokio::sync::oneshot::channel();
        self.queue
            .send(Pending { line, written })
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

/// The most one write to stdout holds, in whole lines (a longer line goes
/// alone): a pipe takes a write of at most `PIPE_BUF` bytes whole or not at
/// all (POSIX), so a process stopping while its reader is slow leaves no
/// half line in the pipe, for the next process's first line to be glued
/// to. `PIPE_BUF` is 4096 on Linux; elsewhere, the least POSIX allows.
#[cfg(target_os = "linux")]
const WRITE_AT_MOST: usize = 4096;
#[cfg(not(target_os = "linux"))]
const WRITE_AT_MOST: usize = 512;

/// What the thread of [`Lines`] shares with it.
struct Thread {
    writing: Arc<std::sync::Mutex<Output>>,
    closed: Arc<AtomicBool>,
    write_began: Arc<std::sync::atomic::AtomicU64>,
    failing: Failing,
}

/// The thread of [`Lines`]: writes what is queued, as many lines at a time
/// as are waiting (in writes of whole lines, at most [`WRITE_AT_MOST`]
/// bytes each unless a line is longer), and tells each waiter how its write
/// went.
fn write_lines(mut waiting: tokio::sync::mpsc::Receiver<Pending>, thread: &Thread) {
    let mut batch = Vec::new();
    let mut text = Vec::new();
    let mut chunk = Vec::new();
    while let Some(first) = waiting.blocking_recv() {
        batch.push(first);
        while batch.len() < QUEUED_LINES {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut lines = batch.drain(..).peekable();
        while lines.peek().is_some() {
            text.clear();
            while let Some(p) = lines
                .next_if(|p: &Pending| text.is_empty() || text.len() + p.line.len() < WRITE_AT_MOST)
            {
                // A line nobody waits for any more belongs to a delivery that
                // gave up (its handler timed out, and it was answered 503):
                // Kustomer sends it again, and its line comes then, once.
                if p.written.is_closed() {
                    continue;
                }
                text.extend_from_slice(p.line.as_bytes());
                text.push(b'\n');
                chunk.push(p);
            }
            if chunk.is_empty() {
                continue;
            }
            let result = {
                let mut output = thread.writing.lock().unwrap_or_else(|e| e.into_inner());
                let output = &mut *output;
                let began = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1);
                thread.write_began.store(began + 1, Ordering::Relaxed);
                // A line cut short by a failed write (a full disk) is ended
                // before the next write, so that the lines after it stay
                // whole: a reader finds one line that is not JSON, not two
                // glued together.
                if output.cut_short {
                    text.insert(0, b'\n');
                }
                let (result, cut) = write_whole(&mut output.out, &text);
                // Still cut short when not even the newline ending it went
                // out.
                output.cut_short = cut || (output.cut_short && result.is_err());
                thread.write_began.store(0, Ordering::Relaxed);
                result
            };
            {
                let mut failing = thread.failing.lock().unwrap_or_else(|e| e.into_inner());
                match &result {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                        thread.closed.store(true, Ordering::Relaxed);
                    }
                    Err(e) => *failing = Some((std::time::Instant::now(), e.to_string())),
                    Ok(()) => *failing = None,
                }
            }
            for p in chunk.drain(..) {
                let outcome = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = p.written.send(outcome);
            }
        }
    }
}

/// Writes all of `text` and flushes; on failure, also whether part of it
/// may have been written (a line cut short). A stdout left non-blocking (by
/// a parent sharing it) that is full is waited for, as a blocking one
/// would be: a full pipe is a slow reader, not a failure.
fn write_whole(out: &mut impl Write, text: &[u8]) -> (io::Result<()>, bool) {
    let mut written = 0;
    while written < text.len() {
        match out.write(&text[written..]) {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), written > 0),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_for_room(),
            Err(e) => return (Err(e), written > 0),
        }
    }
    loop {
        match out.flush() {
            Ok(()) => return (Ok(()), false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_for_room(),
            Err(e) => return (Err(e), true),
        }
    }
}

/// A pause before trying a full non-blocking output again (the writing
/// thread has nothing else to do meanwhile).
fn wait_for_room() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

/// `path` as one word of a POSIX shell command line: as it is when it is
/// made only of characters no shell treats specially; else in single
/// quotes (a quote in it written `'\''`); and, when it holds a control
/// character (a line break), in `$'…'` with escapes, so that it stays on
/// one line. A command printed for the user to run again can then be
/// pasted as it is.
pub fn shell_word(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        return text.into_owned();
    }
    if !text.chars().any(char::is_control) {
        return format!("'{}'", text.replace('\'', "'\\''"));
    }
    let mut word = String::from("$'");
    for c in text.chars() {
        match c {
            '\\' => word.push_str("\\\\"),
            '\'' => word.push_str("\\'"),
            '\n' => word.push_str("\\n"),
            '\r' => word.push_str("\\r"),
            '\t' => word.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                word.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => word.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => word.push(c),
        }
    }
    word.push('\'');
    word
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Who waits for a stalled write (told when it starts waiting), and
    /// what lets it go on.
    type Gate = (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>);

    /// A stdout (or stderr) whose reader keeps up until the test stalls it:
    /// a write while stalled says so and waits until the test lets it go on.
    #[derive(Clone, Default)]
    pub(crate) struct Stdout {
        written: Arc<Mutex<Vec<u8>>>,
        /// Each write's bytes, apart.
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        stall: Arc<Mutex<Option<Gate>>>,
        broken: bool,
    }

    impl Stdout {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.written.lock().unwrap().clone()).unwrap()
        }

        /// Stalls the next write: the receiver hears when it starts
        /// waiting, the sender lets it go on.
        pub(crate) fn stall(&self) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
            let (waiting, stalled) = std::sync::mpsc::channel();
            let (go_on, gate) = std::sync::mpsc::channel();
            *self.stall.lock().unwrap() = Some((waiting, gate));
            (stalled, go_on)
        }
    }

    impl Write for Stdout {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let stall = self.stall.lock().unwrap().take();
            if let Some((waiting, gate)) = stall {
                waiting.send(()).unwrap();
                gate.recv().unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            self.writes.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Writes `line` as a task whose write `stdout` stalls, once the thread
    /// is stalled in it: the task, and what lets the write go on.
    async fn write_stalled(
        lines: &Lines,
        stdout: &Stdout,
        line: &str,
    ) -> (
        tokio::task::JoinHandle<io::Result<()>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (stalled, go_on) = stdout.stall();
        let write = tokio::spawn({
            let (lines, line) = (lines.clone(), line.to_owned());
            async move { lines.write(line).await }
        });
        tokio::task::spawn_blocking(move || stalled.recv())
            .await
            .unwrap()
            .unwrap();
        (write, go_on)
    }

    #[tokio::test]
    async fn a_line_is_written_when_its_write_is_done() {
        let stdout = Stdout::default();
        let lines = Lines::spawn(stdout.clone());
        for (n, want) in [(1, "one\n"), (2, "one\ntwo\n")] {
            let line = if n == 1 { "one" } else { "two" };
            lines.write(line.to_owned()).await.unwrap();
            assert_eq!(stdout.text(), want);
        }
        // Many writers at once: every line whole, on a line of its own.
        let writes = (0..200).map(|n| {
            let lines = lines.clone();
            tokio::spawn(async move { lines.write(format!("line {n}")).await })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().unwrap();
        }
        let text = stdout.text();
        let mut written: Vec<&str> = text.lines().skip(2).collect();
        written.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
        let want: Vec<String> = (0..200).map(|n| format!("line {n}")).collect();
        assert_eq!(written, want);
    }

    #[tokio::test]
    async fn a_stalled_stdout_keeps_the_writer_waiting_not_the_thread() {
        let stdout = Stdout::default();
        let lines = Lines::spawn(stdout.clone());
        // The thread stalls writing the first line; its writer waits
        // without holding up this (single-threaded) runtime, and gives up.
        let (first, go_on) = write_stalled(&lines, &stdout, "first").await;
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        // A second line, queued while the thread is stalled, is given up
        // too: nobody waits for it any more, so it is never written.
        let second = tokio::time::timeout(Duration::from_millis(50), lines.write("second".into()));
        assert!(second.await.is_err());
        go_on.send(()).unwrap();
        lines.write("third".into()).await.unwrap();
        // The first was being written when its writer gave up.
        assert_eq!(stdout.text(), "first\nthird\n");
    }

    /// Lines queued together are written in writes of whole lines, each at
    /// most what a pipe takes whole, or one longer line alone.
    #[tokio::test]
    async fn lines_are_written_whole_in_writes_a_pipe_takes_whole() {
        let stdout = Stdout::default();
        let lines = Lines::spawn(stdout.clone());
        let (first, go_on) = write_stalled(&lines, &stdout, "first").await;
        // Queued while the first is being written: written together after.
        let queued: Vec<_> = (0..300)
            .map(|n| {
                let lines = lines.clone();
                let line = if n % 100 == 7 {
                    format!("{n} {}", "x".repeat(5000))
                } else {
                    format!("{n} {}", "y".repeat(n % 90))
                };
                tokio::spawn(async move { lines.write(line).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        go_on.send(()).unwrap();
        first.await.unwrap().unwrap();
        for write in queued {
            write.await.unwrap().unwrap();
        }
        let writes = stdout.writes.lock().unwrap().clone();
        assert!(writes.len() < 300, "{} writes", writes.len());
        for write in &writes {
            assert_eq!(write.last(), Some(&b'\n'));
            let lines = write.iter().filter(|&&b| b == b'\n').count();
            // 4096: `PIPE_BUF` on Linux, the most it may be anywhere here.
            assert!(write.len() <= 4096 || lines == 1, "{}", write.len());
        }
        assert_eq!(stdout.text().lines().count(), 301);
    }

    /// A process about to end waits for a write under way, then keeps any
    /// other from starting.
    #[tokio::test]
    async fn settling_waits_for_the_write_under_way() {
        let stdout = Stdout::default();
        let lines = Lines::spawn(stdout.clone());
        let (first, go_on) = write_stalled(&lines, &stdout, "first").await;
        assert_eq!(
            lines.settle(Duration::from_millis(30)),
            Settled::StillWriting,
            "a write is under way"
        );
        let settling = std::thread::spawn({
            let lines = lines.clone();
            move || lines.settle(Duration::from_secs(30))
        });
        std::thread::sleep(Duration::from_millis(30));
        go_on.send(()).unwrap();
        assert_eq!(settling.join().unwrap(), Settled::Whole);
        first.await.unwrap().unwrap();
        assert_eq!(stdout.text(), "first\n");
        // Nothing more is written.
        let later = tokio::time::timeout(Duration::from_millis(50), lines.write("later".into()));
        assert!(later.await.is_err());
        assert_eq!(stdout.text(), "first\n");
    }

    /// A write the output does not take is said to be stalled, for as long
    /// as it waits; once written, nothing is.
    #[tokio::test]
    async fn a_write_that_waits_is_stalled_for_as_long_as_it_waits() {
        let stdout = Stdout::default();
        let lines = Lines::spawn(stdout.clone());
        assert_eq!(lines.stalled_for(), None);
        let (first, go_on) = write_stalled(&lines, &stdout, "first").await;
        let early = lines.stalled_for().expect("a write under way");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let later = lines.stalled_for().expect("still under way");
        assert!(
            later >= early + Duration::from_millis(50),
            "{early:?} {later:?}"
        );
        go_on.send(()).unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(lines.stalled_for(), None);
        lines.write("second".into()).await.unwrap();
        assert_eq!(lines.stalled_for(), None);
    }

    #[tokio::test]
    async fn a_line_that_cannot_be_written_fails_its_write() {
        let lines = Lines::spawn(Stdout {
            broken: true,
            ..Stdout::default()
        });
        assert!(!lines.closed());
        for _ in 0..2 {
            let error = lines.write("lost".into()).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        }
        // Said to whoever asks, not only to the line's writer.
        assert!(lines.closed());
    }

    /// A disk that fills up after `room` bytes, until the test frees it.
    #[derive(Clone)]
    struct Disk {
        written: Arc<Mutex<Vec<u8>>>,
        room: Arc<Mutex<usize>>,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(*room);
            *room -= n;
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A line cut short by a full disk is ended before the next, so that
    /// every line after it is whole; the failure is told to whoever asks
    /// until a line is written.
    #[tokio::test]
    async fn a_line_cut_short_by_a_full_disk_is_ended_before_the_next() {
        let disk = Disk {
            written: Arc::default(),
            room: Arc::new(Mutex::new(12)),
        };
        let lines = Lines::spawn(disk.clone());
        lines.write("first".into()).await.unwrap();
        assert!(lines.failing().is_none());
        let error = lines.write("second line".into()).await.unwrap_err();
        assert!(error.to_string().contains("os error 28"), "{error}");
        let (_, why) = lines.failing().expect("said");
        assert!(why.contains("os error 28"), "{why}");
        assert!(!lines.closed());
        // Still full: nothing of the next line goes out, not even the
        // newline that ends the one cut short.
        lines.write("lost".into()).await.unwrap_err();
        *disk.room.lock().unwrap() = usize::MAX;
        lines.write("third".into()).await.unwrap();
        assert!(lines.failing().is_none());
        let text = String::from_utf8(disk.written.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "first\nsecond\nthird\n");
    }

    /// A non-blocking output, full for a while, is waited for: the line is
    /// written whole once it takes it, not failed.
    #[tokio::test]
    async fn a_full_non_blocking_output_is_waited_for() {
        #[derive(Clone, Default)]
        struct Full {
            written: Arc<Mutex<Vec<u8>>>,
            refusals: Arc<Mutex<u32>>,
        }
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let mut refusals = self.refusals.lock().unwrap();
                if *refusals < 5 {
                    *refusals += 1;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // A pipe taking a part at a time.
                let n = buf.len().min(3);
                self.written.lock().unwrap().extend_from_slice(&buf[..n]);
                *refusals = 0;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let full = Full::default();
        let lines = Lines::spawn(full.clone());
        lines.write("a line".into()).await.unwrap();
        assert!(lines.failing().is_none());
        assert_eq!(full.written.lock().unwrap().as_slice(), b"a line\n");
    }

    /// A line cut short by a full disk is ended when the process settles
    /// its output to end, so that the next process's first line, appended
    /// to the same file, is whole; where not even the newline goes out,
    /// that is said.
    #[tokio::test]
    async fn a_line_cut_short_is_ended_as_the_process_ends() {
        for room_at_the_end in [1, 0] {
            let disk = Disk {
                written: Arc::default(),
                room: Arc::new(Mutex::new(8)),
            };
            let lines = Lines::spawn(disk.clone());
            lines.write("first".into()).await.unwrap();
            lines.write("second line".into()).await.unwrap_err();
            *disk.room.lock().unwrap() = room_at_the_end;
            let settled = lines.settle(Duration::from_secs(5));
            let text = String::from_utf8(disk.written.lock().unwrap().clone()).unwrap();
            if room_at_the_end == 1 {
                assert_eq!(settled, Settled::Whole);
                assert_eq!(text, "first\nse\n");
            } else {
                assert!(
                    matches!(&settled, Settled::CutShort(why) if why.contains("os error 28")),
                    "{settled:?}"
                );
                assert_eq!(text, "first\nse");
            }
        }
    }

    #[test]
    fn a_path_is_quoted_only_when_a_shell_would_split_or_expand_it() {
        for (path, word) in [
            ("schema/samples", "schema/samples"),
            ("./a-b_c.d/x=1,y@z%2+", "./a-b_c.d/x=1,y@z%2+"),
            ("sp ace/samp les", "'sp ace/samp les'"),
            ("it's", "'it'\\''s'"),
            ("$HOME/*.json", "'$HOME/*.json'"),
            ("", "''"),
            ("caf\u{e9}", "'caf\u{e9}'"),
            ("a\nb's\\c\t\u{1}\u{85}", "$'a\\nb\\'s\\\\c\\t\\x01\\u0085'"),
        ] {
            assert_eq!(shell_word(std::path::Path::new(path)), word, "{path:?}");
        }
    }
}
