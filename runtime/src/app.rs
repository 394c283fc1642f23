//! The app definition's outbound webhooks: typed, validated, and generated
//! from the handlers a service registers, so the definition Kustomer gets and
//! the code that receives the events cannot disagree.
//!
//! [`AppDefinition::validate`] also refuses what the receiver (`serve
//! --header`) would: custom headers it cannot require (a name HTTP does not
//! allow or one of [`RESERVED_HEADERS`], a blank value or one with a control
//! character, a name given twice), a `url` with white space around it; keys of
//! a webhook it does not know are warnings, and [`AppDefinition::validate_json`]
//! reports a key an object repeats (a JSON reader silently keeps one value).
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
use crate::read::{ReadError, Reader};
use crate::verify::{HOP_BY_HOP_HEADERS, RESERVED_HEADERS};

/// The longest `name` and `url` Kustomer accepts.
pub const MAX_LENGTH: usize = 255;
/// The most events one outbound webhook may subscribe to.
pub const MAX_EVENTS: usize = 12;

/// The parts of a Kustomer app definition this toolkit knows: `app`,
/// `version`, `title` and `outboundWebhooks`. Every other key of a real
/// definition is left out when it is read, so writing this back gives those
/// four only: edit the definition's JSON itself to keep the rest.
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

    /// The outbound webhook for the events `dispatcher` has handlers of
    /// their own for ([`Dispatcher::events`](crate::Dispatcher::events)). A
    /// catch-all takes whatever is posted, so the events it should see are
    /// not known here: add them with [`with_events`](Self::with_events).
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
    /// Kustomer refuses the definition, or the webhook could never be
    /// received as defined: a custom header that a receiver of this
    /// toolkit (`serve --header`, `Verifier::with_header`) refuses, or that
    /// every delivery already carries or a proxy rewrites; no events; a
    /// header given twice. The message says which.
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
    /// Whether it is an [error](Severity::Error): Kustomer refuses the
    /// definition, or its webhook could never be received as defined.
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

/// The top-level keys of the app format that Kustomer documents: the four
/// this toolkit checks, and the others (`iconUrl`, `widgets`, …), which it
/// takes without a word. A key that is none of them is warned of (the list
/// may lag behind Kustomer's), or, when it is one of them misspelt, refused.
const KNOWN_KEYS: [&str; 23] = [
    "app",
    "version",
    "title",
    "outboundWebhooks",
    "iconUrl",
    "instructions",
    "dependencies",
    "description",
    "appDetails",
    "screenshots",
    "installUrl",
    "postInstallMessage",
    "workflows",
    "klasses",
    "kviews",
    "actions",
    "triggers",
    "hooks",
    "i18n",
    "visibility",
    "settingsPageConfig",
    "settings",
    "widgets",
];

/// The keys of an outbound webhook (all of them, in Kustomer's app format).
const WEBHOOK_KEYS: [&str; 4] = ["name", "url", "headers", "events"];

impl AppDefinition {
    /// Every problem of an app definition's JSON text; empty when it is fine.
    /// Besides [`validate`](AppDefinition::validate)'s, a key an object
    /// repeats is an error (a JSON reader keeps one of its values, usually
    /// the last, without a word).
    pub fn validate_json(text: &str) -> Vec<Problem> {
        // A byte order mark, as some editors save one, is not JSON: read
        // past, and warned of, since a JSON parser may refuse the upload.
        let bom = text.starts_with('\u{feff}');
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // The runtime's own reader: it accepts what `serde_json` accepts, and
        // says where the text breaks off, as a JSON Pointer too.
        let mut reader = Reader::new(text);
        let mut repeats = Vec::new();
        match read_noting_repeats(&mut reader, &mut String::new(), &mut repeats)
            .and_then(|v| reader.end().map(|()| v))
        {
            Ok(v) => {
                let mut out = Vec::new();
                if bom {
                    out.push(Problem {
                        pointer: String::new(),
                        message: "the file starts with a byte order mark (U+FEFF), which \
                                  JSON parsers such as JavaScript's `JSON.parse` refuse: save \
                                  it without one"
                            .into(),
                        severity: Severity::Warning,
                    });
                }
                out.extend(AppDefinition::validate(&v));
                out.extend(repeats);
                out
            }
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
            let pointer = format!("/{}", escape(key));
            match misspelt_key(key) {
                // `outboundWebhook`, `Version`: Kustomer refuses the key, and
                // the definition lacks the one meant.
                Some(meant) => out.push(error(
                    pointer,
                    format!(
                        "`{key}` is not a key Kustomer knows; did you mean `{meant}`? (Kustomer \
                         refuses top-level keys it does not know)"
                    ),
                )),
                None => out.push(Problem {
                    pointer,
                    message: format!(
                        "`{key}` is not a top-level key Kustomer documents; Kustomer refuses a \
                         top-level key its format does not have, so check its spelling"
                    ),
                    severity: Severity::Warning,
                }),
            }
        }
        match root.get("outboundWebhooks") {
            None => out.push(Problem {
                pointer: String::new(),
                message: "no `outboundWebhooks`: this app definition sends no webhooks".into(),
                severity: Severity::Warning,
            }),
            Some(Value::Array(hooks)) if hooks.is_empty() => out.push(Problem {
                pointer: "/outboundWebhooks".into(),
                message: "`outboundWebhooks` is empty: this app definition sends no webhooks"
                    .into(),
                severity: Severity::Warning,
            }),
            Some(Value::Array(hooks)) => {
                for (i, hook) in hooks.iter().enumerate() {
                    validate_webhook(hook, &format!("/outboundWebhooks/{i}"), &mut out);
                }
                repeated_webhooks(hooks, &mut out);
            }
            Some(_) => out.push(error(
                "/outboundWebhooks",
                "`outboundWebhooks` must be an array",
            )),
        }
        out
    }
}

/// The known top-level key `key` is a misspelling of: the same but for case
/// or a letter or two (`outboundWebhook`, `Title`, `verison`).
fn misspelt_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    KNOWN_KEYS.iter().copied().find(|known| {
        let known = known.to_ascii_lowercase();
        lower == known || (known.len() > 4 && strsim::damerau_levenshtein(&lower, &known) <= 2)
    })
}

/// The next value of `reader`, as [`Reader::raw_value`] reads it (the last
/// value of a repeated key), with an error in `out` for each key an object
/// repeats, at the pointer of the key (`at` is the value's).
fn read_noting_repeats(
    reader: &mut Reader<'_>,
    at: &mut String,
    out: &mut Vec<Problem>,
) -> Result<Value, ReadError> {
    let len = at.len();
    if reader.begin_object()? {
        let mut map = serde_json::Map::new();
        let mut repeated: Vec<String> = Vec::new();
        while let Some(key) = reader.next_key()? {
            at.push('/');
            at.push_str(&escape(&key));
            let value = read_noting_repeats(reader, at, out)?;
            if map.contains_key(key.as_ref()) && !repeated.iter().any(|k| *k == key) {
                out.push(error(
                    at.as_str(),
                    format!(
                        "`{key}` is given more than once in this object; only one value counts"
                    ),
                ));
                repeated.push(key.to_string());
            }
            map.insert(key.into_owned(), value);
            at.truncate(len);
        }
        return Ok(Value::Object(map));
    }
    if reader.begin_array()? {
        let mut items = Vec::new();
        while reader.next_item()? {
            at.push('/');
            at.push_str(&items.len().to_string());
            items.push(read_noting_repeats(reader, at, out)?);
            at.truncate(len);
        }
        return Ok(Value::Array(items));
    }
    reader.raw_value()
}

/// Whether `name` is an HTTP header name: a token (RFC 9110: letters,
/// digits and ``!#$%&'*+-.^_`|~``), as `http::HeaderName` requires.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as an HTTP header value: visible ASCII,
/// space, tab and obs-text (bytes 0x80–0xFF), no other control character,
/// as `http::HeaderValue::from_str` requires.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn validate_webhook(hook: &Value, at: &str, out: &mut Vec<Problem>) {
    let Some(obj) = hook.as_object() else {
        out.push(error(
            at,
            "an outbound webhook is an object with `name`, `url`, `events`",
        ));
        return;
    };
    for key in obj.keys().filter(|k| !WEBHOOK_KEYS.contains(&k.as_str())) {
        out.push(Problem {
            pointer: format!("{at}/{}", escape(key)),
            message: format!(
                "`{key}` is not a key of an outbound webhook; the known keys are `name`, `url`, \
                 `headers` and `events`"
            ),
            severity: Severity::Warning,
        });
    }
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
        if url.trim() != url {
            out.push(error(
                &ptr,
                format!(
                    "`url` {:?} has white space around it; remove it",
                    shown(url)
                ),
            ));
        } else if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            // The URL parser drops tabs and line breaks without a word.
            out.push(error(
                &ptr,
                format!(
                    "`url` {:?} has white space or a control character in it",
                    shown(url)
                ),
            ));
        } else if url.chars().any(is_invisible) {
            // A host's name drops them without a word too.
            out.push(error(
                &ptr,
                format!("`url` {:?} has an invisible character (a zero-width space, a soft hyphen) in it", shown(url)),
            ));
        } else if url.contains('\\') {
            out.push(error(
                &ptr,
                format!("`url` {:?} has a backslash, which URL parsers read as `/` without a word: write `/`", shown(url)),
            ));
        } else if url.split_once(':').is_some_and(|(scheme, rest)| {
            scheme.eq_ignore_ascii_case("https")
                && (!rest.starts_with("//") || rest.starts_with("///"))
        }) {
            out.push(error(
                &ptr,
                format!("`url` {:?} does not have exactly two slashes before its host (`https://host/…`), which URL parsers mend without a word", shown(url)),
            ));
        }
        if url.chars().count() > MAX_LENGTH {
            out.push(error(
                &ptr,
                format!("`url` is longer than {MAX_LENGTH} characters"),
            ));
        }
        match url::Url::parse(url) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => {
                if let Some(why) = unreachable_from_kustomer(&u) {
                    out.push(Problem {
                        pointer: ptr.clone(),
                        message: why,
                        severity: Severity::Warning,
                    });
                }
                if !u.username().is_empty() || u.password().is_some() {
                    out.push(Problem {
                        pointer: ptr.clone(),
                        message: "`url` has a user name or password in it, which Kustomer's \
                                  app definitions show to whoever reads them: check a custom \
                                  header instead"
                            .to_owned(),
                        severity: Severity::Warning,
                    });
                }
            }
            Ok(u) if u.scheme() != "https" => out.push(error(
                &ptr,
                format!("`url` must use https, not {}", u.scheme()),
            )),
            Ok(_) => out.push(error(&ptr, "`url` has no host")),
            Err(e) => out.push(error(
                &ptr,
                format!("`url` {:?} is not a URL: {e}", shown(url)),
            )),
        }
    }
    match obj.get("headers") {
        None => {}
        Some(Value::Array(headers)) => {
            // The valid names so far, with their index, to find a repeat.
            // Each name given, in lower case (names are compared so), and
            // the header that gave it first.
            let mut names: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            for (i, h) in headers.iter().enumerate() {
                let hp = format!("{at}/headers/{i}");
                let Some(h) = h.as_object() else {
                    out.push(error(&hp, "a header is `{\"name\": …, \"value\": …}`"));
                    continue;
                };
                let np = format!("{hp}/name");
                if let Some(n) = string(h.get("name"), &np, out) {
                    if !is_header_name(n) {
                        out.push(error(
                            &np,
                            format!(
                                "{n:?} is not a valid header name (letters, digits and \
                                 !#$%&'*+-.^_`|~ only)"
                            ),
                        ));
                    } else if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                        out.push(error(
                            &np,
                            format!(
                                "{n} cannot be a custom header: a delivery's own headers carry \
                                 it (its signature, event name, content type, encoding or \
                                 length, or the resent signature `send` adds), and the receiver refuses it as one"
                            ),
                        ));
                    } else if HOP_BY_HOP_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                        out.push(error(
                            &np,
                            format!(
                                "{n} cannot be a custom header: a proxy in front of the \
                                 receiver may drop or rewrite it, and then every delivery \
                                 would be refused"
                            ),
                        ));
                    } else if let Some(first) = names.get(&n.to_ascii_lowercase()) {
                        out.push(error(
                            &np,
                            format!(
                                "{n} is already header {first} of this webhook; a header sent \
                                 twice is judged by its first copy, so give each name once"
                            ),
                        ));
                    } else {
                        let proxied = PROXY_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(n))
                            || n.get(..12)
                                .is_some_and(|p| p.eq_ignore_ascii_case("x-forwarded-"));
                        if proxied {
                            out.push(Problem {
                                pointer: np.clone(),
                                message: format!(
                                    "{n} is a header proxies and load balancers set or rewrite \
                                     themselves: one in front of the receiver may replace its \
                                     value, and every delivery would then be refused"
                                ),
                                severity: Severity::Warning,
                            });
                        }
                        names.insert(n.to_ascii_lowercase(), i);
                    }
                }
                for key in h.keys().filter(|k| !matches!(k.as_str(), "name" | "value")) {
                    out.push(Problem {
                        pointer: format!("{hp}/{}", escape(key)),
                        message: format!(
                            "`{key}` is not a key of a header, which is `{{\"name\", \"value\"}}`"
                        ),
                        severity: Severity::Warning,
                    });
                }
                // The value is often a secret: never quoted.
                if let Some(v) = string(h.get("value"), &format!("{hp}/value"), out) {
                    if v.trim().is_empty() {
                        out.push(error(
                            format!("{hp}/value"),
                            "`value` must not be empty or only white space: the receiver \
                             requires a custom header's value",
                        ));
                    } else if !is_header_value(v) {
                        out.push(error(
                            format!("{hp}/value"),
                            "`value` cannot be sent in an HTTP header: it holds a control \
                             character (such as a newline)",
                        ));
                    }
                }
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
            let mut listed = std::collections::HashSet::new();
            for (i, e) in events.iter().enumerate() {
                let ep = format!("{at}/events/{i}");
                let Some(name) = e.as_str() else {
                    out.push(error(&ep, "an event name is a string"));
                    continue;
                };
                if !EventName::from(name).is_known() {
                    let mut message =
                        format!("{name:?} is not an event Kustomer's outbound webhooks send");
                    let mut severity = Severity::Error;
                    if let Some(near) = nearest_event(name) {
                        message.push_str(&format!("; did you mean {near:?}?"));
                    } else if name.ends_with(".delete") {
                        message.push_str(
                            " (it sends no delete events: a deleted resource comes as an \
                             update with `deleted: true`)",
                        );
                    } else if well_formed_event(name) {
                        // `kustomer.note.create`, `kustomer.kobject.order.update`:
                        // the org's own list may have it.
                        message = format!(
                            "{name:?} is not one of the {} events Kustomer documents for outbound \
                             webhooks; the org's own list (from Kustomer's API) may have it: \
                             check it there before registering",
                            EventName::KNOWN.len()
                        );
                        severity = Severity::Warning;
                    }
                    out.push(Problem {
                        pointer: ep.clone(),
                        message,
                        severity,
                    });
                }
                if !listed.insert(name) {
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

/// Warnings for a webhook that repeats an earlier one's name, or its URL
/// with events of its own: Kustomer would post those events twice, each
/// signed with its own webhook's token.
fn repeated_webhooks(hooks: &[Value], out: &mut Vec<Problem>) {
    use std::collections::{BTreeMap, HashMap};
    fn text<'v>(hook: &'v Value, key: &str) -> Option<&'v str> {
        hook.get(key).and_then(Value::as_str)
    }
    // Each name's first webhook, and each URL and event's: every webhook
    // is compared with the first that shares them, so the warnings grow
    // with the webhooks, not with their pairs.
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut posts: HashMap<(String, &str), usize> = HashMap::new();
    for (i, hook) in hooks.iter().enumerate() {
        if let Some(name) = text(hook, "name") {
            match names.get(name) {
                Some(&j) => out.push(Problem {
                    pointer: format!("/outboundWebhooks/{i}/name"),
                    message: format!("{name:?} is also the name of webhook {j}"),
                    severity: Severity::Warning,
                }),
                None => {
                    names.insert(name, i);
                }
            }
        }
        let Some(url) = text(hook, "url") else {
            continue;
        };
        // One URL however it is spelt (`https://E.com/x` is `https://e.com/x`).
        let url = url::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.to_string());
        let mut shared: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let events = hook.get("events").and_then(Value::as_array);
        for event in events.into_iter().flatten().filter_map(Value::as_str) {
            match posts.get(&(url.clone(), event)) {
                Some(&j) if j != i => shared.entry(j).or_default().push(format!("{event:?}")),
                Some(_) => {}
                None => {
                    posts.insert((url.clone(), event), i);
                }
            }
        }
        for (j, both) in shared {
            out.push(Problem {
                pointer: format!("/outboundWebhooks/{i}/url"),
                message: format!(
                    "webhook {j} posts {} to this URL too: each such event would be \
                     delivered twice, each signed with its own webhook's token (a receiver \
                     would need both)",
                    both.join(", ")
                ),
                severity: Severity::Warning,
            });
        }
    }
}

/// Whether `name` has the shape of Kustomer's event names:
/// `kustomer.<resource>[.<klass>].create` or `.update`, in lower case.
fn well_formed_event(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    // Letters of either case: a custom object's klass may be camelCase
    // (`kustomer.kobject.orderItem.update`).
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    matches!(parts.as_slice(), ["kustomer", middle @ .., "create" | "update"]
        if (1..=2).contains(&middle.len()) && middle.iter().all(|w| word(w)))
}

/// Headers that proxies and load balancers add or rewrite (lowercase):
/// allowed as a custom header, with a warning, as is any `X-Forwarded-…`.
const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// A `url` as a problem quotes it: a user name or password in it (before an
/// `@` after the scheme) shown as `***`, since problems are printed and
/// logged, and its own warning already says it is there. A password may
/// hold a `/`, `?` or `#` the URL should have escaped, so the user
/// information runs to the last `@` when what comes before it has no `/`
/// (which a path would have), or has a `:` before its first `/` followed by
/// something other than a port's digits (a password's).
fn shown(url: &str) -> std::borrow::Cow<'_, str> {
    // After the scheme's `:` and any slashes.
    let after_scheme = url.find(':').map_or(0, |at| at + 1);
    let start = url[after_scheme..]
        .find(|c| c != '/' && c != '\\')
        .map_or(url.len(), |at| after_scheme + at);
    let rest = &url[start..];
    // To the last `@`, when what is before it can be user information; else
    // to an `@` before the path, if there is one.
    let user = rest
        .rfind('@')
        .filter(|&at| {
            let before = &rest[..at];
            match before.find(['/', '\\']) {
                None => true,
                Some(slash) => before[..slash].split_once(':').is_some_and(|(_, after)| {
                    !after.is_empty() && !after.bytes().all(|b| b.is_ascii_digit())
                }),
            }
        })
        .or_else(|| {
            let authority = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
            rest[..authority].rfind('@')
        });
    match user {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]).into(),
        None => url.into(),
    }
}

/// Why Kustomer, posting from the internet, would not reach `url`'s host,
/// if it would not: `localhost`, or an address of a loopback, private,
/// link-local or unspecified network.
fn unreachable_from_kustomer(url: &url::Url) -> Option<String> {
    let not_public = match url.host()? {
        url::Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        url::Host::Ipv6(ip) => match ip.to_ipv4_mapped() {
            // `::ffff:127.0.0.1` is 127.0.0.1.
            Some(ip) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
            }
            None => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_unique_local()
                    || ip.is_unicast_link_local()
            }
        },
    };
    not_public.then(|| {
        format!(
            "`url`'s host {} is not on the internet, where Kustomer posts from: it can only be \
             reached from this network",
            url.host_str().unwrap_or_default()
        )
    })
}

/// A character that shows as nothing, which a host's name drops (IDNA maps
/// it to nothing): `exam\u{200b}ple.com` is `example.com`.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{34f}' | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
    )
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
    let lower = name.trim().to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('.').collect();
    if parts.first() == Some(&"kustomer") {
        parts.remove(0);
    }
    let [resource, action] = parts[..] else {
        return None;
    };
    // A typo, or a shortening (`convo`); not a longer word that starts
    // like a known one (`teammember`), which may be an event of its own.
    let close = |known: &str, typed: &str| {
        let common = known
            .chars()
            .zip(typed.chars())
            .take_while(|(x, y)| x == y)
            .count();
        strsim::levenshtein(known, typed) <= 2 || (common >= 4 && typed.len() <= known.len())
    };
    // The closest of the close ones (`tag` is close to `team` too, but
    // closer to `tag`).
    EventName::KNOWN
        .iter()
        .copied()
        .filter_map(|known| {
            let mut k = known.split('.').skip(1);
            match (k.next(), k.next()) {
                (Some(r), Some(a)) if close(r, resource) && close(a, action) => Some((
                    strsim::levenshtein(r, resource) + strsim::levenshtein(a, action),
                    known,
                )),
                _ => None,
            }
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
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

    /// Problems are printed and logged: a password in a URL they quote is
    /// not shown.
    #[test]
    fn a_url_quoted_in_a_problem_hides_its_user_and_password() {
        for (url, shown) in [
            (
                "https://admin:Sup3r@e.com/k\\hook",
                "https://***@e.com/k\\hook",
            ),
            ("https://a@b:pw@e.com /x", "https://***@e.com /x"),
            ("https:/admin:Sup3r@e.com/x ", "https:/***@e.com/x "),
            ("https:\\\\admin:Sup3r@e.com", "https:\\\\***@e.com"),
            ("ftp://e.com/a@b", "ftp://e.com/a@b"),
            // A password with what the URL should have escaped.
            ("https://admin:p#ss@e.com/k", "https://***@e.com/k"),
            ("https://admin:p?ss@e.com/k", "https://***@e.com/k"),
            ("https://admin:pa/ss@e.com/k", "https://***@e.com/k"),
            ("https://admin@e.com/k?to=a@b", "https://***@e.com/k?to=a@b"),
            // No user information: a port, an `@` in the path or query.
            (
                "https://hooks.example.com:8443/kustomer\\hook?notify=ops@example.com",
                "https://hooks.example.com:8443/kustomer\\hook?notify=ops@example.com",
            ),
            ("https://e.com/a:b@c", "https://e.com/a:b@c"),
            ("admin:Sup3r@e.com", "admin:***@e.com"),
            ("", ""),
            ("https://", "https://"),
        ] {
            assert_eq!(super::shown(url), shown, "{url:?}");
        }
        for url in [
            "https://admin:Sup3r@e.com/k\\hook",
            "https://admin:Sup#3r@e.com/k",
        ] {
            let got = problems_after(|v| v["outboundWebhooks"][0]["url"] = url.into());
            assert!(!got.is_empty(), "{got:#?}");
            assert!(got.iter().all(|p| !p.contains("Sup")), "{got:#?}");
        }
    }

    #[test]
    fn the_seed_example_is_valid() {
        assert_eq!(problems_after(|_| {}), Vec::<String>::new());
        let parsed: AppDefinition = serde_json::from_value(valid()).unwrap();
        assert_eq!(parsed.outbound_webhooks[0].events.len(), 2);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), valid());
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_no_webhooks_is_a_warning() {
        let text = format!("\u{feff}{}", valid());
        let problems = AppDefinition::validate_json(&text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .starts_with("warning: /: the file starts with a byte order mark"),
            "{problems:?}"
        );
        let without = |edit: fn(&mut Value)| {
            let mut v = valid();
            edit(&mut v);
            AppDefinition::validate_json(&v.to_string())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            without(|v| {
                v.as_object_mut().unwrap().remove("outboundWebhooks");
            }),
            ["warning: /: no `outboundWebhooks`: this app definition sends no webhooks"]
        );
        assert_eq!(
            without(|v| v["outboundWebhooks"] = json!([])),
            [
                "warning: /outboundWebhooks: `outboundWebhooks` is empty: this app definition sends no webhooks"
            ]
        );
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
            (" kustomer.team.update", Some("kustomer.team.update")),
            ("kustomer.user.delete", None),
            ("kustomer.company.create", None),
            ("kustomer.note.create", None),
            ("kustomer.kobject.order.create", None),
            ("kustomer.teammember.update", None),
            ("kustomer.customersearch.update", None),
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
                "warning: /extra: `extra` is not a top-level key Kustomer documents",
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
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://e.com/a\nb".into()),
                "error: /outboundWebhooks/0/url: `url` \"https://e.com/a\\nb\" has white space or a control character in it",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://localhost:3000/x".into()),
                "warning: /outboundWebhooks/0/url: `url`'s host localhost is not on the internet",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://10.0.0.5/x".into()),
                "warning: /outboundWebhooks/0/url: `url`'s host 10.0.0.5 is not on the internet",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://0x7f000001/x".into()),
                "warning: /outboundWebhooks/0/url: `url`'s host 127.0.0.1 is not on the internet",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://[::1]/x".into()),
                "warning: /outboundWebhooks/0/url: `url`'s host [::1] is not on the internet",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["url"] = "https://[::ffff:10.1.2.3]/x".into()
                }),
                "warning: /outboundWebhooks/0/url: `url`'s host [::ffff:a01:203] is not on the internet",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https:///e.com/x".into()),
                "error: /outboundWebhooks/0/url: `url` \"https:///e.com/x\" does not have exactly two slashes",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https:\\\\e.com\\x".into()),
                "error: /outboundWebhooks/0/url: `url` \"https:\\\\\\\\e.com\\\\x\" has a backslash",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://e\u{200b}x.com/x".into()),
                "error: /outboundWebhooks/0/url: `url` \"https://e\\u{200b}x.com/x\" has an invisible character",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["headers"][0] =
                        json!({"name": "X-Forwarded-For", "value": "1.2.3.4"})
                }),
                "warning: /outboundWebhooks/0/headers/0/name: X-Forwarded-For is a header proxies",
            ),
            (
                Box::new(|v| {
                    v["outboundWebhooks"][0]["headers"][0] =
                        json!({"name": "X-Forwarded-Server", "value": "edge"})
                }),
                "warning: /outboundWebhooks/0/headers/0/name: X-Forwarded-Server is a header proxies",
            ),
            (
                Box::new(|v| v["outboundWebhooks"][0]["url"] = "https://kw:s3cret@e.com/x".into()),
                "warning: /outboundWebhooks/0/url: `url` has a user name or password in it",
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

    /// The problems of the seed example with its one header replaced by
    /// `headers`.
    fn header_problems(headers: Value) -> Vec<String> {
        problems_after(|v| v["outboundWebhooks"][0]["headers"] = headers)
    }

    #[test]
    fn a_custom_header_value_must_be_one_the_receiver_can_require() {
        for (value, want) in [
            ("", "must not be empty or only white space"),
            (" \t ", "must not be empty or only white space"),
            ("s3cret\nx-evil: 1", "cannot be sent in an HTTP header"),
            ("s3cret\r", "cannot be sent in an HTTP header"),
            ("s3\u{7f}cret", "cannot be sent in an HTTP header"),
            ("s3\0cret", "cannot be sent in an HTTP header"),
        ] {
            let got = header_problems(json!([{"name": "x-app-secret", "value": value}]));
            assert_eq!(got.len(), 1, "{value:?}: {got:#?}");
            assert!(
                got[0].starts_with("error: /outboundWebhooks/0/headers/0/value: `value` ")
                    && got[0].contains(want),
                "{value:?}: {got:#?}"
            );
            // The value is a secret: never quoted.
            assert!(value.trim().is_empty() || !got[0].contains("s3"), "{got:?}");
        }
        // Tab, space and obs-text (non-ASCII) are allowed, as `http` allows them.
        for value in ["a\tb c", "clé-ü", "~!\"#"] {
            let got = header_problems(json!([{"name": "x-app-secret", "value": value}]));
            assert_eq!(got, Vec::<String>::new(), "{value:?}");
        }
    }

    #[test]
    fn a_custom_header_name_must_be_an_http_token_and_not_reserved() {
        for name in ["x(a)", "x\"a", "x{a}", "x/a", "x@a", "x:a", "", "x-é"] {
            let got = header_problems(json!([{"name": name, "value": "1"}]));
            assert!(
                got.len() == 1
                    && got[0].starts_with(&format!(
                        "error: /outboundWebhooks/0/headers/0/name: {name:?} is not a valid header name"
                    )),
                "{name:?}: {got:#?}"
            );
        }
        for name in ["x-app_secret.v2", "X-Special~Info!", "a#$%&'*+^`|9"] {
            assert_eq!(
                header_problems(json!([{"name": name, "value": "1"}])),
                Vec::<String>::new(),
                "{name:?}"
            );
        }
        for name in [
            "X-Kustomer-Webhook-Signature",
            "x-kustomer-webhook-event",
            "Content-Type",
            "CONTENT-LENGTH",
            "transfer-encoding",
            "Content-Encoding",
            "X-Kustomer-Webhooks-Resent",
        ] {
            let got = header_problems(json!([{"name": name, "value": "1"}]));
            assert!(
                got.len() == 1
                    && got[0].starts_with(&format!(
                        "error: /outboundWebhooks/0/headers/0/name: {name} cannot be a custom header"
                    )),
                "{name:?}: {got:#?}"
            );
        }
        assert_eq!(crate::verify::RESERVED_HEADERS.len(), 7);
        assert_eq!(
            header_problems(json!([{"name": "x-a", "value": "1", "secret": true}])),
            [
                "warning: /outboundWebhooks/0/headers/0/secret: `secret` is not a key of a header, which is `{\"name\", \"value\"}`"
            ]
        );
        for name in [
            "Host",
            "connection",
            "Keep-Alive",
            "TE",
            "upgrade",
            "Expect",
            "Proxy-Authorization",
        ] {
            let got = header_problems(json!([{"name": name, "value": "1"}]));
            assert!(
                got.len() == 1
                    && got[0].starts_with(&format!(
                        "error: /outboundWebhooks/0/headers/0/name: {name} cannot be a custom header: a proxy"
                    )),
                "{name:?}: {got:#?}"
            );
        }
    }

    #[test]
    fn a_custom_header_name_given_twice_in_a_webhook_is_an_error() {
        let got = header_problems(json!([
            {"name": "x-app-secret", "value": "1"},
            {"name": "x-other", "value": "2"},
            {"name": "X-App-Secret", "value": "3"},
        ]));
        assert_eq!(
            got,
            [
                "error: /outboundWebhooks/0/headers/2/name: X-App-Secret is already header 0 of \
              this webhook; a header sent twice is judged by its first copy, so give each name once"
            ]
        );
        // The same name in two webhooks is fine.
        let got = problems_after(|v| {
            let mut hook = v["outboundWebhooks"][0].clone();
            hook["name"] = "Another".into();
            hook["url"] = "https://example.com/other".into();
            v["outboundWebhooks"].as_array_mut().unwrap().push(hook);
        });
        assert_eq!(got, Vec::<String>::new());
    }

    #[test]
    fn a_webhook_repeating_another_is_a_warning() {
        let got = problems_after(|v| {
            let hook = v["outboundWebhooks"][0].clone();
            v["outboundWebhooks"].as_array_mut().unwrap().push(hook);
        });
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with("warning: /outboundWebhooks/1/name: "),
            "{got:#?}"
        );
        assert!(
            got[0].ends_with("is also the name of webhook 0"),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with("warning: /outboundWebhooks/1/url: webhook 0 posts \"kustomer."),
            "{got:#?}"
        );
        // Another URL, or other events at the same URL: fine.
        let got = problems_after(|v| {
            let mut hook = v["outboundWebhooks"][0].clone();
            hook["name"] = "Teams".into();
            hook["events"] = json!(["kustomer.team.create"]);
            v["outboundWebhooks"].as_array_mut().unwrap().push(hook);
        });
        assert_eq!(got, Vec::<String>::new());
        // The same URL spelt otherwise is the same URL.
        let got = problems_after(|v| {
            let mut hook = v["outboundWebhooks"][0].clone();
            hook["name"] = "Again".into();
            let url = hook["url"]
                .as_str()
                .unwrap()
                .replacen("https://", "HTTPS://", 1);
            hook["url"] = url.into();
            v["outboundWebhooks"].as_array_mut().unwrap().push(hook);
        });
        assert_eq!(got.len(), 1, "{got:#?}");
        // Many repeats: each against the first, one warning of each kind,
        // not one per pair.
        let got = problems_after(|v| {
            let hook = v["outboundWebhooks"][0].clone();
            let hooks = v["outboundWebhooks"].as_array_mut().unwrap();
            hooks.extend(std::iter::repeat_n(hook, 2_000));
        });
        assert_eq!(got.len(), 2 * 2_000, "{:#?}", &got[..4]);
        assert!(got[2 * 1_999].ends_with("is also the name of webhook 0"));
    }

    #[test]
    fn a_misspelt_top_level_key_is_an_error_and_another_a_warning() {
        for (key, meant) in [
            ("outboundWebhook", "outboundWebhooks"),
            ("OutboundWebhooks", "outboundWebhooks"),
            ("verison", "version"),
            ("Title", "title"),
        ] {
            let got = problems_after(|v| v[key] = json!(1));
            assert!(
                got.iter().any(|p| p.starts_with(&format!(
                    "error: /{key}: `{key}` is not a key Kustomer knows; did you mean `{meant}`?"
                ))),
                "{key}: {got:#?}"
            );
        }
        // Misspelt keys of the format that the toolkit does not check.
        for (key, meant) in [("iconURL", "iconUrl"), ("dependancies", "dependencies")] {
            let got = problems_after(|v| v[key] = json!(1));
            assert!(
                got.iter()
                    .any(|p| p.contains(&format!("did you mean `{meant}`?"))),
                "{key}: {got:#?}"
            );
        }
        // Keys of the format pass without a word.
        for key in ["description", "iconUrl", "widgets", "settings"] {
            let got = problems_after(|v| v[key] = json!(1));
            assert!(got.is_empty(), "{key}: {got:#?}");
        }
        for key in ["ap", "webhooks"] {
            let got = problems_after(|v| v[key] = json!(1));
            assert_eq!(
                got,
                [format!(
                    "warning: /{key}: `{key}` is not a top-level key Kustomer documents; \
                     Kustomer refuses a top-level key its format does not have, so check its \
                     spelling"
                )],
                "{key}"
            );
        }
    }

    #[test]
    fn an_event_of_kustomers_shape_outside_the_documented_list_is_a_warning() {
        for name in [
            "kustomer.note.create",
            "kustomer.kobject.order.update",
            "kustomer.kobject.orderItem.update",
            "kustomer.teammember.update",
        ] {
            let got = problems_after(|v| v["outboundWebhooks"][0]["events"] = json!([name]));
            assert_eq!(got.len(), 1, "{got:#?}");
            assert!(
                got[0].starts_with(&format!(
                    "warning: /outboundWebhooks/0/events/0: {name:?} is not one of the 12 events"
                )),
                "{got:#?}"
            );
        }
        // Typos, deletes and other shapes stay errors.
        for name in [
            "kustomer.customer.updated",
            "kustomer.user.delete",
            "orders.sync",
            "Kustomer.Note.Create",
        ] {
            let got = problems_after(|v| v["outboundWebhooks"][0]["events"] = json!([name]));
            assert!(got[0].starts_with("error: "), "{name}: {got:#?}");
        }
    }

    #[test]
    fn a_url_with_white_space_around_it_is_an_error() {
        for url in [" https://x.com/ ", "https://x.com/\n", "\thttps://x.com/"] {
            let got = problems_after(|v| v["outboundWebhooks"][0]["url"] = url.into());
            assert_eq!(
                got,
                [format!(
                    "error: /outboundWebhooks/0/url: `url` {url:?} has white space around it; remove it"
                )],
                "{url:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_of_a_webhook_are_warnings_naming_the_known_ones() {
        let got = problems_after(|v| {
            v["outboundWebhooks"][0]["header"] = json!([]);
            v["outboundWebhooks"][0]["a/b"] = 1.into();
        });
        let want = |key: &str, at: &str| {
            format!(
                "warning: /outboundWebhooks/0/{at}: `{key}` is not a key of an outbound webhook; \
                 the known keys are `name`, `url`, `headers` and `events`"
            )
        };
        let mut want = vec![want("header", "header"), want("a/b", "a~1b")];
        let mut got = got;
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let problems = AppDefinition::validate(&json!({
            "app": "a", "version": "1.0.0", "title": "A",
            "outboundWebhooks": [{"name": "n", "url": "https://x.com", "events": ["kustomer.team.create"], "secret": 1}]
        }));
        assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
    }

    #[test]
    fn a_key_given_twice_is_an_error_at_its_path() {
        let problems = |text: &str| -> Vec<String> {
            AppDefinition::validate_json(text)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let seed = serde_json::to_string(&valid()).unwrap();
        assert_eq!(problems(&seed), Vec::<String>::new());
        // Top level, three times: reported once, the last value kept.
        let text = seed.replacen('{', r#"{"app": "a b", "app": "first", "#, 1);
        assert_eq!(
            problems(&text),
            ["error: /app: `app` is given more than once in this object; only one value counts"]
        );
        // Inside a webhook and inside one of its headers.
        let text = seed
            .replacen(
                r#""url":"#,
                r#""url": "https://other.example.com", "url":"#,
                1,
            )
            .replacen(r#""value":"#, r#""value": "1", "value":"#, 1);
        assert_eq!(
            problems(&text),
            [
                "error: /outboundWebhooks/0/headers/0/value: `value` is given more than once in \
                 this object; only one value counts",
                "error: /outboundWebhooks/0/url: `url` is given more than once in this object; \
                 only one value counts",
            ]
        );
        // Escaped keys: the pointer escapes them as JSON Pointer does.
        let text = seed.replacen('{', r#"{"a/b": 1, "a\/b": 2, "#, 1);
        assert!(
            problems(&text).contains(
                &"error: /a~1b: `a/b` is given more than once in this object; only one value counts"
                    .to_owned()
            ),
            "{:#?}",
            problems(&text)
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
