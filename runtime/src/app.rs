//! The app definition's outbound webhooks: typed, validated, and generated
//! from the handlers a service registers, so the definition Kustomer gets and
//! the code that receives the events cannot disagree.
//!
//! ```
//! use kustomer_webhooks::app::{AppDefinition, OutboundWebhook};
//!
//! let text = r#"{
//!   "app": "ecommstore", "version": "0.0.1", "title": "E-comm Store",
//!   "outboundWebhooks": [{
//!     "name": "Send conversation events to Ecomm Store",
//!     "url": "https://example-ecommstore.com/conversations",
//!     "headers": [{"name": "x-special-info-source", "value": "kustomer"}],
//!     "events": ["kustomer.conversation.create", "kustomer.conversation.update"]
//!   }]
//! }"#;
//! let problems = AppDefinition::validate_json(text);
//! assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
//!
//! let webhook = OutboundWebhook::new("Orders", "https://example.com/kustomer")
//!     .with_events(["kustomer.customer.update"]);
//! assert_eq!(webhook.events, ["kustomer.customer.update"]);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EventName;

/// The longest `name` and `url` Kustomer accepts.
pub const MAX_LENGTH: usize = 255;
/// The most events one outbound webhook may subscribe to.
pub const MAX_EVENTS: usize = 12;

/// The parts of a Kustomer app definition this toolkit knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppDefinition {
    /// The app's id: no spaces or dashes.
    pub app: String,
    /// Its version (semver): a version registers once and must increase.
    pub version: String,
    /// Its title.
    pub title: String,
    /// The outbound webhooks.
    #[serde(
        rename = "outboundWebhooks",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub outbound_webhooks: Vec<OutboundWebhook>,
}

/// One outbound webhook of an app definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundWebhook {
    /// A human-readable name (required, at most 255 characters).
    pub name: String,
    /// Where Kustomer posts (required, https, at most 255 characters).
    pub url: String,
    /// Custom headers added to every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// The events it subscribes to (at most 12).
    pub events: Vec<String>,
}

/// A custom header: `{name, value}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The header's name.
    pub name: String,
    /// Its value (often a shared secret: not shown by `Debug`).
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &"***")
            .finish()
    }
}

impl OutboundWebhook {
    /// An outbound webhook posting to `url`, with no events yet.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        OutboundWebhook {
            name: name.into(),
            url: url.into(),
            headers: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Subscribes to `events` (sorted, without repeats).
    pub fn with_events<S: Into<String>>(mut self, events: impl IntoIterator<Item = S>) -> Self {
        self.events.extend(events.into_iter().map(Into::into));
        self.events.sort();
        self.events.dedup();
        self
    }

    /// Adds a custom header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The outbound webhook for the events `dispatcher` has handlers for.
    pub fn for_dispatcher<S: crate::Events>(
        name: impl Into<String>,
        url: impl Into<String>,
        dispatcher: &crate::Dispatcher<S>,
    ) -> Self {
        OutboundWebhook::new(name, url).with_events(dispatcher.events())
    }
}

/// How serious a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Kustomer refuses the definition.
    Error,
    /// Worth a look; the toolkit cannot tell whether Kustomer accepts it.
    Warning,
}

/// One problem of an app definition, at its JSON Pointer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where.
    pub pointer: String,
    /// What.
    pub message: String,
    /// How serious.
    pub severity: Severity,
}

impl Problem {
    /// Whether Kustomer refuses the definition for it.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{what}: {at}: {}", self.message)
    }
}

/// The top-level keys this toolkit knows to be part of the app format.
const KNOWN_KEYS: [&str; 4] = ["app", "version", "title", "outboundWebhooks"];

impl AppDefinition {
    /// Every problem of an app definition's JSON text; empty when it is fine.
    pub fn validate_json(text: &str) -> Vec<Problem> {
        // The runtime's own reader: it accepts what `serde_json` accepts, and
        // says where the text breaks off, as a JSON Pointer too.
        let mut reader = crate::read::Reader::new(text);
        match reader.raw_value().and_then(|v| reader.end().map(|()| v)) {
            Ok(v) => AppDefinition::validate(&v),
            Err(e) => {
                let (line, column) = e.line_column(text.as_bytes());
                vec![error(
                    e.pointer(text.as_bytes()),
                    format!(
                        "invalid JSON at line {line}, column {column}: {}",
                        e.message()
                    ),
                )]
            }
        }
    }

    /// Every problem of an app definition; empty when it is fine.
    pub fn validate(value: &Value) -> Vec<Problem> {
        let mut out = Vec::new();
        let Some(root) = value.as_object() else {
            return vec![error("", "an app definition is a JSON object")];
        };
        match string(root.get("app"), "/app", &mut out) {
            Some("") => out.push(error("/app", "`app` must not be empty")),
            Some(app) if app.contains(char::is_whitespace) || app.contains('-') => out.push(error(
                "/app",
                format!("`app` {app:?} must not contain spaces or dashes"),
            )),
            _ => {}
        }
        if let Some(version) = string(root.get("version"), "/version", &mut out)
            && let Err(e) = semver::Version::parse(version)
        {
            out.push(error(
                "/version",
                format!("`version` {version:?} is not semver: {e}"),
            ));
        }
        if let Some(title) = string(root.get("title"), "/title", &mut out)
            && title.trim().is_empty()
        {
            out.push(error("/title", "`title` must not be empty"));
        }
        for key in root.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            out.push(Problem {
                pointer: format!("/{}", escape(key)),
                message: format!(
                    "`{key}` is not a key this toolkit knows; Kustomer refuses top-level keys it does not know"
                ),
                severity: Severity::Warning,
            });
        }
        match root.get("outboundWebhooks") {
            None => {}
            Some(Value::Array(hooks)) => {
                for (i, hook) in hooks.iter().enumerate() {
                    validate_webhook(hook, &format!("/outboundWebhooks/{i}"), &mut out);
                }
            }
            Some(_) => out.push(error(
                "/outboundWebhooks",
                "`outboundWebhooks` must be an array",
            )),
        }
        out
    }
}

fn validate_webhook(hook: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(obj) = hook.as_object() else {
        out.push(error(
            at,
            "an outbound webhook is an object with `name`, `url`, `events`",
        ));
        return;
    };
    if let Some(name) = string(obj.get("name"), &format!("{at}/name"), out) {
        if name.trim().is_empty() {
            out.push(error(format!("{at}/name"), "`name` must not be empty"));
        } else if name.chars().count() > MAX_LENGTH {
            out.push(error(
                format!("{at}/name"),
                format!("`name` is longer than {MAX_LENGTH} characters"),
            ));
        }
    }
    if let Some(url) = string(obj.get("url"), &format!("{at}/url"), out) {
        let ptr = format!("{at}/url");
        if url.chars().count() > MAX_LENGTH {
            out.push(error(
                &ptr,
                format!("`url` is longer than {MAX_LENGTH} characters"),
            ));
        }
        match url::Url::parse(url) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => {}
            Ok(u) if u.scheme() != "https" => out.push(error(
                &ptr,
                format!("`url` must use https, not {}", u.scheme()),
            )),
            Ok(_) => out.push(error(&ptr, "`url` has no host")),
            Err(e) => out.push(error(&ptr, format!("`url` {url:?} is not a URL: {e}"))),
        }
    }
    match obj.get("headers") {
        None => {}
        Some(Value::Array(headers)) => {
            for (i, h) in headers.iter().enumerate() {
                let hp = format!("{at}/headers/{i}");
                let Some(h) = h.as_object() else {
                    out.push(error(&hp, "a header is `{\"name\": …, \"value\": …}`"));
                    continue;
                };
                if let Some(n) = string(h.get("name"), &format!("{hp}/name"), out)
                    && (n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
                {
                    out.push(error(
                        format!("{hp}/name"),
                        format!("{n:?} is not a valid header name"),
                    ));
                }
                string(h.get("value"), &format!("{hp}/value"), out);
            }
        }
        Some(_) => out.push(error(format!("{at}/headers"), "`headers` must be an array")),
    }
    match obj.get("events") {
        None => out.push(error(format!("{at}/events"), "`events` is required")),
        Some(Value::Array(events)) => {
            if events.is_empty() {
                out.push(error(
                    format!("{at}/events"),
                    "`events` must name at least one event",
                ));
            }
            if events.len() > MAX_EVENTS {
                out.push(error(
                    format!("{at}/events"),
                    format!("at most {MAX_EVENTS} events, found {}", events.len()),
                ));
            }
            for (i, e) in events.iter().enumerate() {
                let ep = format!("{at}/events/{i}");
                let Some(name) = e.as_str() else {
                    out.push(error(&ep, "an event name is a string"));
                    continue;
                };
                if !EventName::from(name).is_known() {
                    let mut message =
                        format!("{name:?} is not an event Kustomer's outbound webhooks send");
                    if let Some(near) = nearest_event(name) {
                        message.push_str(&format!("; did you mean {near:?}?"));
                    } else if name.ends_with(".delete") {
                        message.push_str(
                            " (it sends no delete events: a deleted resource comes as an \
                             update with `deleted: true`)",
                        );
                    }
                    out.push(error(&ep, message));
                }
                if events[..i].iter().any(|p| p == e) {
                    out.push(Problem {
                        pointer: ep,
                        message: format!("{name:?} is listed twice"),
                        severity: Severity::Warning,
                    });
                }
            }
        }
        Some(_) => out.push(error(format!("{at}/events"), "`events` must be an array")),
    }
}

fn error(pointer: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        pointer: pointer.into(),
        message: message.into(),
        severity: Severity::Error,
    }
}

/// The string at `pointer`, or a problem when it is missing or not a string.
fn string<'v>(v: Option<&'v Value>, pointer: &str, out: &mut Vec<Problem>) -> Option<&'v str> {
    let key = pointer.rsplit('/').next().unwrap_or(pointer);
    match v {
        None => {
            out.push(error(pointer, format!("`{key}` is required")));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            out.push(error(pointer, format!("`{key}` must be a string")));
            None
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The documented event name `name` was probably meant to be: the same
/// resource and action up to case, a missing `kustomer.` prefix, a typo of
/// one or two letters (`customers`, `updated`), or a shortened resource
/// (`convo`). `None` when nothing is that close, rather than a guess.
pub(crate) fn nearest_event(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('.').collect();
    if parts.first() == Some(&"kustomer") {
        parts.remove(0);
    }
    let [resource, action] = parts[..] else {
        return None;
    };
    let close = |a: &str, b: &str| {
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        strsim::levenshtein(a, b) <= 2 || common >= 4
    };
    EventName::KNOWN.iter().copied().find(|known| {
        let mut k = known.split('.').skip(1);
        matches!((k.next(), k.next()), (Some(r), Some(a)) if close(r, resource) && close(a, action))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "app": "ecommstore",
            "version": "0.0.1",
            "title": "E-comm Store",
            "outboundWebhooks": [{
                "name": "Send conversation events to Ecomm Store",
                "url": "https://example-ecommstore.com/conversations",
                "headers": [{"name": "x-special-info-source", "value": "kustomer"}],
                "events": ["kustomer.conversation.create", "kustomer.conversation.update"]
            }]
        })
    }

    fn problems_after(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut v = valid();
        edit(&mut v);
        AppDefinition::validate(&v)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_seed_example_is_valid() {
        assert_eq!(problems_after(|_| {}), Vec::<String>::new());
        let parsed: AppDefinition = serde_json::from_value(valid()).unwrap();
        assert_eq!(parsed.outbound_webhooks[0].events.len(), 2);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), valid());
    }

    #[test]
    fn invalid_json_says_where_once_with_its_pointer() {
        let problems = |text: &str| -> Vec<String> {
            AppDefinition::validate_json(text)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            problems("{\"app\": \"x\"\n"),
            ["error: /: invalid JSON at line 2, column 1: EOF while parsing an object"]
        );
        assert_eq!(
            problems("{\"outboundWebhooks\": [{\"name\": tru}]}"),
            ["error: /outboundWebhooks/0/name: invalid JSON at line 1, column 35: expected ident"]
        );
    }

    #[test]
    fn a_near_miss_of_an_event_name_gets_a_suggestion_and_nothing_else_does() {
        for (typed, meant) in [
            (
                "kustomer.convo.update",
                Some("kustomer.conversation.update"),
            ),
            (
                "kustomer.customer.updated",
                Some("kustomer.customer.update"),
            ),
            ("customer.update", Some("kustomer.customer.update")),
            ("Kustomer.Customer.Update", Some("kustomer.customer.update")),
            (
                "kustomer.customers.create",
                Some("kustomer.customer.create"),
            ),
            ("kustomer.teams.udpate", Some("kustomer.team.update")),
            ("kustomer.user.delete", None),
            ("kustomer.company.create", None),
            ("kustomer.note.create", None),
            ("kustomer.kobject.order.create", None),
            ("orders.sync", None),
            ("", None),
        ] {
            assert_eq!(nearest_event(typed), meant, "{typed}");
        }
    }

    #[test]
    fn every_rule_has_its_bad_case() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("app");
                }),
                "error: /app: `app` is required",
            ),
            (
                Box::new(|v| v["app"] = "ecomm store".into()),
                "error: /app: `app` \"ecomm store\" must not contain spaces or dashes",
            ),
            (
                Box::new(|v| v["app"] = "ecomm-store".into()),
                "error: /app: `app` \"ecomm-store\" must not contain spaces or dashes",
            ),
            (
                Box::new(|v| v["version"] = "1.0".into()),
                "error: /version: `version` \"1.0\" is not semver",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("title");
                }),
                "error: /title: `title` is required",
            ),
            (
                Box::new(|v| v["extra"] = 1.into()),
                "warning: /extra: `extra` is not a key this toolkit knows",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("name");
                }),
                "error: /outboundWebhooks/0/name: `name` is required",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["name"] = "x".repeat(256).into()),
                "error: /outboundWebhooks/0/name: `name` is longer than 255",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("url");
                }),
                "error: /outboundWebhooks/0/url: `url` is required",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "http://example.com/hooks".into()),
                "error: /outboundWebhooks/0/url: `url` must use https, not http",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["url"] =
                        format!("https://example.com/{}", "a".repeat(250)).into()
                }),
                "error: /outboundWebhooks/0/url: `url` is longer than 255",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "not a url".into()),
                "error: /outboundWebhooks/0/url: `url` \"not a url\" is not a URL",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["headers"][0] = json!({"name": "bad name"})),
                "error: /outboundWebhooks/0/headers/0/name: \"bad name\" is not a valid header name",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["headers"][0] = json!({"name": "x-a"})),
                "error: /outboundWebhooks/0/headers/0/value: `value` is required",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["events"] = json!([])),
                "error: /outboundWebhooks/0/events: `events` must name at least one event",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["events"][1] = "kustomer.convo.update".into()
                }),
                "error: /outboundWebhooks/0/events/1: \"kustomer.convo.update\" is not an event \
                 Kustomer's outbound webhooks send; did you mean \"kustomer.conversation.update\"?",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["events"][1] = "kustomer.user.delete".into()),
                "error: /outboundWebhooks/0/events/1: \"kustomer.user.delete\" is not an event \
                 Kustomer's outbound webhooks send (it sends no delete events",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["events"] = json!(vec!["kustomer.team.create"; 13])
                }),
                "error: /outboundWebhooks/0/events: at most 12 events, found 13",
            ),
            (
                Box::new(|v| v["outboundWebhooks"] = json!({})),
                "error: /outboundWebhooks: `outboundWebhooks` must be an array",
            ),
        ];
        for (edit, want) in cases {
            let got = problems_after(edit);
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "want {want:?}, got {got:#?}"
            );
        }
        assert_eq!(
            AppDefinition::validate_json("{")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()[0]
                .split(':')
                .next(),
            Some("error")
        );
        assert!(
            AppDefinition::validate(&json!([1]))[0]
                .message
                .contains("JSON object")
        );
    }

    #[test]
    fn header_values_never_show() {
        let h = Header {
            name: "x-secret".into(),
            value: "s3cret".into(),
        };
        assert!(!format!("{h:?}").contains("s3cret"));
    }
}
