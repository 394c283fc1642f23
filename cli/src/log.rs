//! `serve`'s log on stderr: plain lines by default, or one JSON object per
//! line (`--log-format json`) for a log pipeline to index by field.
//!
//! A JSON line holds `timestamp` (RFC 3339, UTC), `level`, `target`,
//! `message`, the event's own fields (`error`, `status`, `outcome`, …) and,
//! for a line logged during a delivery, `span`: the delivery's `event`, `id`
//! and `resource_id`, with the span's `name`. `serve`'s own notes (listening,
//! stopping, reloads) are JSON lines too, with the target
//! `kustomer_webhooks::serve`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How `serve` writes its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line of text each.
    #[default]
    Text,
    /// One JSON object each.
    Json,
}

/// The least severe of the receiver's log lines written (`serve
/// --log-level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Errors alone.
    Error,
    /// Warnings and errors.
    Warn,
    /// Also rejections and 409s (the default).
    #[default]
    Info,
    /// Also failed TLS handshakes, Redis reconnections and the like.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn filter(self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// Whether notes are written as JSON lines.
static JSON: AtomicBool = AtomicBool::new(false);

/// The target of `serve`'s own notes in JSON lines.
pub const NOTE_TARGET: &str = "kustomer_webhooks::serve";

/// Sends the process's log (the receiver's `tracing` events at `level` and
/// above) to stderr in `format`, and writes notes in it too, all of it
/// through a thread of its own (see [`write`]).
pub fn init(format: Format, level: LogLevel) {
    PIPE.get_or_init(|| Pipe::start(std::io::stderr(), QUEUED_LOG_LINES));
    match format {
        Format::Text => {
            // tracing's formatter writes each event with one `write_all`.
            let _ = tracing_subscriber::fmt()
                .with_writer(|| ToStderr)
                .with_max_level(level.filter())
                .log_internal_errors(false)
                .try_init();
        }
        Format::Json => {
            JSON.store(true, Ordering::Relaxed);
            let _ = tracing_subscriber::registry()
                .with(level.filter())
                .with(JsonLayer { write })
                .try_init();
        }
    }
}

/// How many lines may wait for the log's thread before more are dropped.
const QUEUED_LOG_LINES: usize = 4096;

/// Once [`init`] ran: the queue to the thread that writes stderr.
static PIPE: OnceLock<Pipe> = OnceLock::new();

/// Lines queued for a thread that writes them in order; past its capacity,
/// lines are dropped and counted, and the thread says how many before the
/// next line it writes.
struct Pipe {
    queue: SyncSender<ToWrite>,
    counts: Arc<Dropped>,
}

#[derive(Default)]
struct Dropped {
    /// Lines dropped so far.
    total: AtomicU64,
    /// Of those, how many the log has not said yet.
    unsaid: AtomicU64,
}

/// A message to the log's thread, with how many lines were dropped just
/// before it (said first).
struct ToWrite {
    dropped_before: u64,
    what: What,
}

enum What {
    Line(Vec<u8>),
    /// Answered once everything queued before it is written.
    Flush(std::sync::mpsc::Sender<()>),
}

impl Pipe {
    /// A thread writing to `out`, with room for `capacity` lines waiting.
    /// Should the thread not start, every line is dropped (and counted).
    fn start(mut out: impl Write + Send + 'static, capacity: usize) -> Pipe {
        let (queue, lines) = std::sync::mpsc::sync_channel(capacity);
        let counts = Arc::new(Dropped::default());
        let _ = std::thread::Builder::new()
            .name("stderr-log".to_owned())
            .spawn(move || {
                for ToWrite {
                    dropped_before,
                    what,
                } in lines
                {
                    // A line that cannot be written (nobody reads stderr any
                    // more) is dropped: serving goes on.
                    if dropped_before > 0 {
                        let _ = out.write_all(dropped_note(dropped_before).as_bytes());
                    }
                    match what {
                        What::Line(line) => {
                            let _ = out.write_all(&line);
                        }
                        What::Flush(done) => {
                            let _ = out.flush();
                            let _ = done.send(());
                        }
                    }
                }
            });
        Pipe { queue, counts }
    }

    /// Queues `what`, or gives it back when the queue is full (or the
    /// thread gone). The lines dropped since the last message queued go with
    /// it.
    fn send(&self, what: What) -> Result<(), What> {
        let dropped_before = self.counts.unsaid.swap(0, Ordering::Relaxed);
        let message = ToWrite {
            dropped_before,
            what,
        };
        self.queue.try_send(message).map_err(|e| {
            let ToWrite {
                dropped_before,
                what,
            } = match e {
                TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
            };
            self.counts
                .unsaid
                .fetch_add(dropped_before, Ordering::Relaxed);
            what
        })
    }

    fn write(&self, line: &[u8]) {
        if self.send(What::Line(line.to_vec())).is_err() {
            self.counts.total.fetch_add(1, Ordering::Relaxed);
            self.counts.unsaid.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let (done, written) = std::sync::mpsc::channel();
        let mut flush = What::Flush(done);
        while let Err(back) = self.send(flush) {
            if Instant::now() >= until {
                return;
            }
            flush = back;
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = written.recv_timeout(until.saturating_duration_since(Instant::now()));
    }
}

/// The line saying that `n` lines were dropped.
fn dropped_note(n: u64) -> String {
    let message = format!(
        "{n} log line{} dropped: stderr was not read fast enough",
        if n == 1 { " was" } else { "s were" }
    );
    if json() {
        note_json(Level::WARN, &message) + "\n"
    } else {
        format!("warning: {message}\n")
    }
}

/// Writes one line (or lines) of the log on stderr. Once [`init`] ran, the
/// line is queued for the log's thread and written in order, so that a
/// stderr nobody reads (a full pipe) never holds up a delivery, `/healthz`
/// or a signal: past [`QUEUED_LOG_LINES`] waiting, lines are dropped,
/// counted ([`dropped`], `/metrics`), and said in the log once it moves
/// again. Before, as for commands other than `serve`, it is written at once.
/// A failure to write is ignored: reporting it would write to stderr again.
pub fn write(line: &[u8]) {
    match PIPE.get() {
        Some(pipe) => pipe.write(line),
        None => {
            let _ = std::io::stderr().lock().write_all(line);
        }
    }
}

/// Log lines dropped so far because stderr was not read fast enough.
pub fn dropped() -> u64 {
    PIPE.get()
        .map_or(0, |pipe| pipe.counts.total.load(Ordering::Relaxed))
}

/// Waits, up to `wait`, until the log's thread has written what is queued:
/// before the process ends, so that its last lines are not lost. A stderr
/// that nobody reads does not keep the process from ending.
pub fn flush(wait: Duration) {
    if let Some(pipe) = PIPE.get() {
        pipe.flush(wait);
    }
}

/// tracing's writer: each write goes to [`write`].
struct ToStderr;

impl std::io::Write for ToStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether notes are JSON lines.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A note (`serve`'s own line, or a command's error) as a JSON line.
pub fn note_json(level: Level, message: &str) -> String {
    let mut line = head(level, NOTE_TARGET);
    line.push("message", Value::from(message));
    line.to_json()
}

/// A JSON object whose keys keep the order they were added in (serde_json's
/// own map sorts them), so that every line starts with its time and level.
#[derive(Clone, Default)]
struct Object(Vec<(String, Entry)>);

/// A value in an [`Object`]: any JSON value, or an object keeping its order.
#[derive(Clone)]
enum Entry {
    Value(Value),
    Object(Object),
}

impl From<Value> for Entry {
    fn from(value: Value) -> Self {
        Entry::Value(value)
    }
}

impl Object {
    fn push(&mut self, key: impl Into<String>, value: impl Into<Entry>) {
        self.0.push((key.into(), value.into()));
    }

    /// Sets `key`, in its place if it is there already.
    fn set(&mut self, key: &str, value: impl Into<Entry>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.push(key, value),
        }
    }

    fn to_json(&self) -> String {
        // Strings and serde_json values always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::Value(value) => value.serialize(serializer),
            Entry::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `timestamp`, `level` and `target`, in that order.
fn head(level: Level, target: &str) -> Object {
    let mut now = String::new();
    // Formatting into a String cannot fail.
    let _ = SystemTime.format_time(&mut Writer::new(&mut now));
    let mut line = Object::default();
    line.push("timestamp", Value::from(now));
    line.push("level", Value::from(level.as_str()));
    line.push("target", Value::from(target));
    line
}

/// The keys a line sets itself; an event's field of one of these names is
/// written as `field.<name>` instead of replacing it.
const RESERVED: [&str; 4] = ["timestamp", "level", "target", "span"];

/// Writes each event as one JSON line with `write` (which gets the line
/// with its newline, whole).
struct JsonLayer<W> {
    write: W,
}

/// A span's fields, kept in its extensions until it closes.
struct SpanFields(Object);

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Fn(&[u8]) + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Object::default();
        attrs.record(&mut Fields(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Fields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = head(*meta.level(), meta.target());
        let mut fields = Object::default();
        event.record(&mut Fields(&mut fields));
        // The message first, then the other fields in the order given.
        fields.0.sort_by_key(|(name, _)| name != "message");
        for (name, value) in fields.0 {
            let name = if RESERVED.contains(&name.as_str()) {
                format!("field.{name}")
            } else {
                name
            };
            line.set(&name, value);
        }
        if let Some(scope) = ctx.event_scope(event) {
            // The spans' fields, outermost first, so that an inner span's
            // field of the same name wins; named after the innermost.
            let mut span = Object::default();
            span.push("name", Value::Null);
            for s in scope.from_root() {
                span.set("name", Value::from(s.name()));
                if let Some(SpanFields(fields)) = s.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        span.set(k, v.clone());
                    }
                }
            }
            line.push("span", Entry::Object(span));
        }
        let mut text = line.to_json();
        text.push('\n');
        (self.write)(text.as_bytes());
    }
}

/// Records fields into a JSON object: numbers and booleans as such,
/// everything else as its text.
struct Fields<'a>(&'a mut Object);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set(field.name(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(field.name(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(field.name(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(field.name(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and the infinities have no JSON number: null.
        self.0.set(field.name(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.set(field.name(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.set(field.name(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out::tests::Stdout;

    #[test]
    fn a_stalled_stderr_drops_lines_without_waiting_and_says_how_many() {
        let stderr = Stdout::default();
        let (stalled, open) = stderr.stall();
        let pipe = Pipe::start(stderr.clone(), 4);
        // The thread takes the first line and stalls writing it; four more
        // wait in the queue, and the six after them are dropped, each write
        // returning at once.
        pipe.write(b"line 0\n");
        stalled.recv().unwrap();
        for n in 1..=10 {
            pipe.write(format!("line {n}\n").as_bytes());
        }
        assert_eq!(pipe.counts.total.load(Ordering::Relaxed), 6);
        // Once stderr moves, the note comes where the lines went missing.
        open.send(()).unwrap();
        pipe.flush(Duration::from_secs(30));
        pipe.write(b"line 11\n");
        pipe.flush(Duration::from_secs(30));
        assert_eq!(
            stderr.text(),
            "line 0\nline 1\nline 2\nline 3\nline 4\n\
             warning: 6 log lines were dropped: stderr was not read fast enough\n\
             line 11\n"
        );
        assert_eq!(pipe.counts.total.load(Ordering::Relaxed), 6);
        assert_eq!(pipe.counts.unsaid.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn flushing_a_stalled_stderr_gives_up_after_its_wait() {
        let stderr = Stdout::default();
        let (stalled, _open) = stderr.stall();
        let pipe = Pipe::start(stderr.clone(), 1);
        pipe.write(b"line 0\n");
        stalled.recv().unwrap();
        // The queue full, then not: either way flush returns.
        pipe.write(b"line 1\n");
        pipe.flush(Duration::from_millis(50));
        assert_eq!(stderr.text(), "");
    }

    /// The JSON lines the layer writes while `f` runs.
    fn lines_of(f: impl FnOnce()) -> Vec<Value> {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLayer {
            write: move |line: &[u8]| sink.lock().unwrap().extend_from_slice(line),
        });
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn assert_head(line: &Value, level: &str, target: &str) {
        assert_eq!(line["level"], level);
        assert_eq!(line["target"], target);
        let ts = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "not RFC 3339: {ts}"
        );
    }

    #[test]
    fn fields_keep_their_json_types() {
        let lines = lines_of(|| {
            let e = std::io::Error::other("the database is down");
            tracing::warn!(
                target: "kustomer_webhooks::receiver",
                status = 503u16,
                rev = -1i64,
                ok = false,
                ratio = 0.5,
                nan = f64::NAN,
                error = &e as &dyn std::error::Error,
                timeout = ?std::time::Duration::from_secs(1),
                "handler failed"
            );
        });
        let mut line = lines[0].clone();
        assert_head(&line, "WARN", "kustomer_webhooks::receiver");
        for key in ["timestamp", "level", "target"] {
            line.as_object_mut().unwrap().remove(key);
        }
        assert_eq!(
            line,
            serde_json::json!({
                "message": "handler failed",
                "status": 503,
                "rev": -1,
                "ok": false,
                "ratio": 0.5,
                "nan": null,
                "error": "the database is down",
                "timeout": "1s",
            })
        );
    }

    #[test]
    fn a_line_in_a_delivery_carries_its_span() {
        let lines = lines_of(|| {
            let span = tracing::info_span!(
                "kustomer_webhook",
                event = %"kustomer.team.update",
                id = "5f2a",
                resource_id = tracing::field::Empty,
            );
            let _entered = span.enter();
            span.record("resource_id", "r1");
            let inner = tracing::info_span!("inner", id = "inner-id");
            let _inner = inner.enter();
            tracing::error!(level = "a field", span = 1, "store \"down\"");
        });
        let line = &lines[0];
        assert_head(line, "ERROR", module_path!());
        assert_eq!(line["message"], "store \"down\"");
        // Fields named as the line's own keys keep them and are renamed.
        assert_eq!(line["field.level"], "a field");
        assert_eq!(line["field.span"], 1);
        assert_eq!(
            line["span"],
            serde_json::json!({
                "name": "inner",
                "event": "kustomer.team.update",
                "id": "inner-id",
                "resource_id": "r1",
            })
        );
        // Outside any span, none.
        let lines = lines_of(|| tracing::info!("plain"));
        assert!(lines[0].get("span").is_none(), "{}", lines[0]);
    }

    #[test]
    fn a_note_is_one_json_object() {
        let line = note_json(Level::INFO, "receiving \"Kustomer\" webhooks\nat /");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_head(&v, "INFO", NOTE_TARGET);
        assert_eq!(v["message"], "receiving \"Kustomer\" webhooks\nat /");
        assert!(!line.contains('\n'), "one line: {line}");
        // Keys in the order written, not sorted.
        let order: Vec<usize> = [
            "\"timestamp\":",
            "\"level\":",
            "\"target\":",
            "\"message\":",
        ]
        .iter()
        .map(|k| line.find(k).unwrap())
        .collect();
        assert!(order.is_sorted() && order[0] == 1, "{line}");
    }
}
