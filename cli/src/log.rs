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
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Whether notes are written as JSON lines.
static JSON: AtomicBool = AtomicBool::new(false);

/// The target of `serve`'s own notes in JSON lines.
const NOTE_TARGET: &str = "kustomer_webhooks::serve";

/// Sends the process's log (the receiver's `tracing` events at INFO and
/// above) to stderr in `format`, and writes notes in it too.
pub fn init(format: Format) {
    match format {
        Format::Text => {
            // A log line that cannot be written (nobody reads stderr any
            // more) is dropped; reporting it would write to stderr again,
            // and panic.
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(Level::INFO)
                .log_internal_errors(false)
                .try_init();
        }
        Format::Json => {
            JSON.store(true, Ordering::Relaxed);
            let _ = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(JsonLayer {
                    // A line that cannot be written (nobody reads stderr any
                    // more) is dropped: serving goes on.
                    write: |line: &[u8]| {
                        let _ = std::io::stderr().lock().write_all(line);
                    },
                })
                .try_init();
        }
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
