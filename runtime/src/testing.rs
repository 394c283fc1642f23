//! Deliveries for a service's own tests (feature `testing`): Kustomer's
//! published sample of each event, changed as a test needs, signed and named
//! the way Kustomer delivers them.
//!
//! A [`Delivery`] starts from a sample ([`Delivery::sample`]) or from any
//! body ([`Delivery::from_body`]), takes changes by JSON Pointer, and is then
//! given to a [`Receiver`] without any HTTP ([`Delivery::deliver_to`]), to an
//! axum router as a request ([`Delivery::request`], feature `axum`), or to
//! anything else as bytes and headers ([`Delivery::body`],
//! [`Delivery::headers`]).
//!
//! ```
//! use kustomer_webhooks::receiver::{Receiver, outcome};
//! use kustomer_webhooks::testing::Delivery;
//! use kustomer_webhooks::verify::Verifier;
//! use kustomer_webhooks::{CustomerUpdate, Dispatcher};
//!
//! async fn on_update(event: CustomerUpdate) -> Result<(), std::io::Error> {
//!     assert_eq!(event.data.attributes.rev, Some(42));
//!     Ok(())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let dispatcher = Dispatcher::builder().handler(on_update).build()?;
//! let receiver = Receiver::new(dispatcher, Verifier::new("t0ken"));
//!
//! let update = Delivery::sample("kustomer.customer.update")?
//!     .set("/data/attributes/rev", 42)
//!     .signed_with("t0ken");
//! let reply = update.deliver_to(&receiver).await;
//! assert_eq!((reply.status, reply.outcome), (200, outcome::HANDLED));
//!
//! // Kustomer's retry of the same event: acknowledged, not run again.
//! assert_eq!(update.deliver_to(&receiver).await.outcome, outcome::DUPLICATE);
//! // The same event as a new one.
//! let again = update.clone().fresh_id();
//! assert_eq!(again.deliver_to(&receiver).await.outcome, outcome::HANDLED);
//! // Signed with another token: refused.
//! let forged = update.signed_with("guess").fresh_id();
//! assert_eq!(forged.deliver_to(&receiver).await.status, 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::Events;
use crate::receiver::{Receiver, Reply, Request};
use crate::verify::{EVENT_HEADER, SIGNATURE_HEADER, sign};

/// Kustomer's published sample payload of `event` (such as
/// `kustomer.customer.update`), as JSON text.
pub fn sample(event: &str) -> Option<&'static str> {
    kustomer_schema::SEED_SAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, text)| *text)
}

/// Every published sample: `(event name, JSON text)`, in name order.
pub fn samples() -> impl Iterator<Item = (&'static str, &'static str)> {
    kustomer_schema::SEED_SAMPLES.iter().copied()
}

/// There is no sample of the event asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no sample of {event:?}{}; the samples are of {}",
    why_none(.event, *.suggestion),
    kustomer_schema::SEED_SAMPLES.map(|(name, _)| name).join(", ")
)]
pub struct NoSample {
    /// The event asked for.
    pub event: String,
    /// The known event its name is closest to, if any is close (which
    /// may be one without a sample: the message then says so).
    pub suggestion: Option<&'static str>,
}

/// Why there is no sample of `event`: a known event Kustomer published
/// none of, or (a name misspelt) the known event it is closest to, which
/// may be one of those too.
fn why_none(event: &str, suggestion: Option<&str>) -> String {
    const NONE_PUBLISHED: &str = "Kustomer published no sample of it: build its body, and use \
                                  Delivery::from_body";
    if crate::EventName::KNOWN.contains(&event) {
        format!(" (a known event, but {NONE_PUBLISHED})")
    } else {
        match suggestion {
            Some(s) if sample(s).is_some() => format!(" (did you mean {s:?}?)"),
            Some(s) => format!(" (did you mean {s:?}? {NONE_PUBLISHED})"),
            None => String::new(),
        }
    }
}

/// One delivery as Kustomer makes it: a body, the
/// `X-Kustomer-Webhook-Event` header naming the event, and the
/// `X-Kustomer-Webhook-Signature` header once signed.
#[derive(Clone)]
pub struct Delivery {
    body: Body,
    event: Option<String>,
    token: Option<Vec<u8>>,
    signature: Option<String>,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
}

/// A body to change by JSON Pointer, or bytes sent as they are.
#[derive(Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for Delivery {
    /// The event and the headers' names; never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event)
            .field(
                "signed",
                &(self.token.is_some() || self.signature.is_some()),
            )
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The published sample of `event` (such as `kustomer.customer.update`),
    /// named by its header, not yet signed. Its body is the sample's text
    /// as published until a change; a change sends compact JSON, its keys
    /// in name order.
    pub fn sample(event: &str) -> Result<Self, NoSample> {
        let text = sample(event).ok_or_else(|| NoSample {
            event: event.to_owned(),
            suggestion: (!crate::EventName::KNOWN.contains(&event))
                .then(|| crate::app::nearest_event(event))
                .flatten(),
        })?;
        // The sample's own text, in Kustomer's order of keys, until a
        // change.
        Ok(Delivery {
            event: Some(event.to_owned()),
            ..Delivery::from_body(text)
        })
    }

    /// A delivery of `body`, sent byte for byte as given (a payload captured
    /// from Kustomer, a body that is not JSON at all), with no event header
    /// and not yet signed. A change ([`set`](Self::set),
    /// [`remove`](Self::remove), [`fresh_id`](Self::fresh_id)) reads it as
    /// JSON first and sends it as compact JSON from then on; a body that is
    /// not JSON is `null` to a change.
    pub fn from_body(body: impl Into<Vec<u8>>) -> Self {
        Delivery {
            // Kept as it is unless it is changed: a captured payload keeps
            // its exact bytes.
            body: Body::Bytes(body.into()),
            event: None,
            token: None,
            signature: None,
            headers: Vec::new(),
            content_type: Some("application/json".to_owned()),
        }
    }

    /// Sets the value at the JSON Pointer `pointer` (`/data/attributes/rev`):
    /// an existing value, a new key of an existing object, or a new last
    /// item of an array (its length, or `-`, as the index). The empty
    /// pointer replaces the whole body. Setting `/name` to a string renames
    /// the event in its header too, when the header named the body's event
    /// (as a sample's does).
    ///
    /// # Panics
    ///
    /// When the pointer leads nowhere: a step before the last that does not
    /// exist (a misspelt key, `/data/attribute/rev`, says which step and the
    /// key meant), or that goes through a string, number or other value that
    /// has no children, or an index past an array's end; when the last step
    /// is a new key that differs from one of its object's keys only by case
    /// or a typo of the same length (`/data/attributes/Rev`,
    /// `/data/attributes/nmae`), which would add a key beside the one meant
    /// (a longer or shorter key, `deletedAt` beside `deleted`, is taken as
    /// one of its own); and when the body is not JSON.
    /// A test meant to change the sample would otherwise pass while sending
    /// it unchanged. To make what is missing on the way, or add such a key
    /// after all, use [`set_creating`](Self::set_creating).
    #[track_caller]
    pub fn set(self, pointer: &str, value: impl Into<Value>) -> Self {
        if !pointer.is_empty() {
            let reached = self.peek_json().and_then(|body| reachable(&body, pointer));
            if let Err(why) = reached {
                let fix = if why.ends_with("(a new key of its own") {
                    ": use set_creating)"
                } else {
                    "; to make it, use set_creating"
                };
                panic!("Delivery::set({pointer:?}): {why}{fix}");
            }
        }
        self.set_creating(pointer, value)
    }

    /// Sets the value at the JSON Pointer `pointer`, creating the objects on
    /// the way that are missing; a step through a value that is not an
    /// object (or an array, for an index) replaces it with an object. `-` as
    /// the last step appends to an array, and an index past an array's end
    /// lengthens it (with `null`s between). A body that is not JSON becomes
    /// `value` wherever the pointer leads. For a payload of a shape the
    /// sample does not have (drift, a new field's object); otherwise
    /// [`set`](Self::set), which refuses a pointer that leads nowhere.
    pub fn set_creating(mut self, pointer: &str, value: impl Into<Value>) -> Self {
        let mut body = self.json();
        let value = value.into();
        if pointer == "/name"
            && let Value::String(name) = &value
            && self.event.is_some()
            && self.event.as_deref() == body.get("name").and_then(Value::as_str)
        {
            self.event = Some(name.clone());
        }
        let mut at = &mut body;
        for step in steps(pointer) {
            at = child(at, &step);
        }
        *at = value;
        self.body = Body::Json(body);
        self
    }

    /// Removes the value at the JSON Pointer `pointer`, if there is one.
    pub fn remove(mut self, pointer: &str) -> Self {
        let mut body = self.json();
        let steps: Vec<String> = steps(pointer).collect();
        if let Some((last, path)) = steps.split_last() {
            let mut at = Some(&mut body);
            for step in path {
                at = at.and_then(|v| match v {
                    Value::Object(map) => map.get_mut(step),
                    Value::Array(items) => {
                        step.parse::<usize>().ok().and_then(|i| items.get_mut(i))
                    }
                    _ => None,
                });
            }
            match at {
                Some(Value::Object(map)) => {
                    map.remove(last);
                }
                Some(Value::Array(items)) => {
                    if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
        self.body = Body::Json(body);
        self
    }

    /// Gives the event a new id, unique in the process: the same event
    /// delivered as a new one rather than as a retry.
    ///
    /// To a receiver with the ordering guard on, an update with a new id
    /// is still an update of its resource: with the same `rev` (or
    /// `updatedAt`) as one handled before, it is answered `stale`. Give it
    /// a newer one with [`set`](Self::set) to have it handled.
    ///
    /// # Panics
    ///
    /// When the body is not a JSON object (one made by
    /// [`from_body`](Self::from_body) from bytes that are not), as
    /// [`set`](Self::set) does: it has no `id` to change.
    #[track_caller]
    pub fn fresh_id(self) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}{n:016x}", std::process::id());
        self.set("/id", id)
    }

    /// The `X-Kustomer-Webhook-Event` header: `Some(name)`, or `None` for
    /// none (the receiver then goes by the body's `name`).
    pub fn event_header(mut self, name: Option<&str>) -> Self {
        self.event = name.map(str::to_owned);
        self
    }

    /// Signs the delivery with `token` as Kustomer does (the signature is
    /// computed over the body as it is when sent, after every change).
    pub fn signed_with(mut self, token: impl AsRef<[u8]>) -> Self {
        self.token = Some(token.as_ref().to_vec());
        self.signature = None;
        self
    }

    /// Sends `signature` as the signature header, whatever the body: for a
    /// test of a malformed or tampered one.
    pub fn signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// Adds a header (such as a custom header the app definition sets).
    /// The headers the delivery sends itself are set, not added: a
    /// `Content-Type` is [`content_type`](Self::content_type), an
    /// `X-Kustomer-Webhook-Event` [`event_header`](Self::event_header), an
    /// `X-Kustomer-Webhook-Signature` [`signature`](Self::signature) (any
    /// case), so that none is sent twice. Its value arrives without the
    /// white space around it, as over HTTP (a value read from a file with a
    /// line break at its end still matches).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        let trimmed = value.trim_ascii();
        if name.eq_ignore_ascii_case("content-type") {
            self.content_type(Some(trimmed))
        } else if name.eq_ignore_ascii_case(EVENT_HEADER) {
            self.event_header(Some(trimmed))
        } else if name.eq_ignore_ascii_case(SIGNATURE_HEADER) {
            self.signature(trimmed)
        } else {
            self.headers.push((name, value));
            self
        }
    }

    /// The `Content-Type` (`application/json` unless changed); `None` sends
    /// none.
    pub fn content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self
    }

    /// The body as sent: compact JSON, keys in name order, once changed;
    /// else the bytes given (or the sample's text).
    pub fn body(&self) -> Vec<u8> {
        match &self.body {
            Body::Json(value) => serde_json::to_vec(value).unwrap_or_default(),
            Body::Bytes(bytes) => bytes.clone(),
        }
    }

    /// The headers as sent, names in lowercase: the content type, the
    /// event's name, the signature, then the ones added.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers_for(&self.body())
    }

    fn headers_for(&self, body: &[u8]) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(content_type) = &self.content_type {
            headers.push(("content-type".to_owned(), content_type.clone()));
        }
        if let Some(event) = &self.event {
            headers.push((EVENT_HEADER.to_owned(), event.clone()));
        }
        let signature = match (&self.signature, &self.token) {
            (Some(signature), _) => Some(signature.clone()),
            (None, Some(token)) => Some(sign(token, body)),
            (None, None) => None,
        };
        if let Some(signature) = signature {
            headers.push((SIGNATURE_HEADER.to_owned(), signature));
        }
        headers.extend(
            self.headers
                .iter()
                // Without the white space around the value, which HTTP
                // drops as it arrives (and the verifier drops from the
                // value it requires).
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim_ascii().to_owned())),
        );
        headers
    }

    /// The delivery's event as the type a handler takes, parsed as the
    /// receiver parses it (named by its event header when it has one): a
    /// handler called directly in a unit test, with no receiver at all.
    ///
    /// ```
    /// use kustomer_webhooks::CustomerUpdate;
    /// use kustomer_webhooks::testing::Delivery;
    ///
    /// async fn on_update(event: CustomerUpdate) -> Result<Option<i64>, std::io::Error> {
    ///     Ok(event.data.attributes.rev)
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let update = Delivery::sample("kustomer.customer.update")?.set("/data/attributes/rev", 42);
    /// assert_eq!(on_update(update.event()).await?, Some(42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// When the body is not an event the receiver would dispatch (what
    /// [`parse`](crate::parse) refuses: the panic names the JSON Pointer),
    /// or is another event than `E` takes (a `CustomerCreate` asked of a
    /// customer update): a test would otherwise call the handler with
    /// something Kustomer never delivers to it.
    #[track_caller]
    pub fn event<E: crate::FromEvent>(&self) -> E {
        let body = self.body();
        let parsed = match &self.event {
            Some(name) => crate::Parsed::<E::Set>::parse_as(&body, name),
            None => crate::Parsed::<E::Set>::parse(&body),
        };
        let event = match parsed {
            Ok(parsed) => parsed.event,
            Err(e) => panic!("the delivery is not an event a receiver dispatches: {e}"),
        };
        match E::from_event(event) {
            Ok(event) => event,
            Err(other) => panic!(
                "the delivery is {}, which {} does not take",
                other.name(),
                std::any::type_name::<E>()
            ),
        }
    }

    /// Posts the delivery to `receiver` without HTTP, as its adapter would:
    /// its reply (status, outcome, error), counted in its counters.
    pub async fn deliver_to<S: Events>(&self, receiver: &Receiver<S>) -> Reply {
        let body = self.body();
        let headers = self.headers_for(&body);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        };
        receiver
            .receive(Request {
                method: "POST",
                header,
                body: &body,
            })
            .await
    }

    /// The delivery as an HTTP `POST` to `uri`, for a router under test
    /// (`tower::ServiceExt::oneshot`, or any `Service`). A header whose
    /// name or value HTTP does not allow is left out, and a `uri` that is
    /// not one gives a request to `/` (which a router nesting the receiver
    /// elsewhere answers with 404).
    #[cfg(feature = "axum")]
    pub fn request(&self, uri: &str) -> ::axum::http::Request<::axum::body::Body> {
        let body = self.body();
        let mut request = ::axum::http::Request::post(uri);
        for (name, value) in self.headers_for(&body) {
            if let (Ok(name), Ok(value)) = (
                ::axum::http::HeaderName::from_bytes(name.as_bytes()),
                ::axum::http::HeaderValue::from_str(&value),
            ) {
                request = request.header(name, value);
            }
        }
        request
            .body(::axum::body::Body::from(body.clone()))
            .unwrap_or_else(|_| {
                // Only a bad URI fails here: the request goes to `/` instead.
                let mut fallback = ::axum::http::Request::new(::axum::body::Body::from(body));
                *fallback.method_mut() = ::axum::http::Method::POST;
                fallback
            })
    }

    /// The body as JSON to change: a body of bytes that is not JSON is
    /// `null` from here on.
    fn json(&mut self) -> Value {
        match std::mem::replace(&mut self.body, Body::Json(Value::Null)) {
            Body::Json(value) => value,
            Body::Bytes(bytes) => read_json(&bytes).unwrap_or(Value::Null),
        }
    }

    /// The body as JSON, or why it is not.
    fn peek_json(&self) -> Result<std::borrow::Cow<'_, Value>, String> {
        match &self.body {
            Body::Json(value) => Ok(std::borrow::Cow::Borrowed(value)),
            Body::Bytes(bytes) => read_json(bytes)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| format!("the body is not JSON ({e})")),
        }
    }
}

/// A body's JSON, after a UTF-8 byte order mark if it starts with one (as
/// the receiver reads it).
fn read_json(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}

/// Whether [`Delivery::set`] can set `pointer` in `body` without making
/// anything on the way; if not, why.
fn reachable(body: &Value, pointer: &str) -> Result<(), String> {
    if !pointer.starts_with('/') {
        return Err("a JSON Pointer starts with `/`".to_owned());
    }
    let steps: Vec<String> = steps(pointer).collect();
    let mut at = body;
    let mut walked = String::new();
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        let here = format!("{walked}/{}", step.replace('~', "~0").replace('/', "~1"));
        at = match at {
            Value::Object(map) => match map.get(step) {
                Some(child) => child,
                None if last => {
                    // A new key, unless it is an existing one misspelt.
                    return match misspelt(map, step) {
                        Some(key) => Err(format!(
                            "`{here}` would be a new key beside `{walked}/{key}`, which it \
                             differs from by case or a typo; did you mean `{walked}/{key}`? (a \
                             new key of its own"
                        )),
                        None => Ok(()),
                    };
                }
                None => {
                    let meant = map
                        .keys()
                        .filter(|key| strsim::levenshtein(key, step) <= 2)
                        .min_by_key(|key| strsim::levenshtein(key, step));
                    return Err(match meant {
                        Some(key) => {
                            format!("`{here}` does not exist; did you mean `{walked}/{key}`?")
                        }
                        None => format!("`{here}` does not exist"),
                    });
                }
            },
            Value::Array(items) => {
                let index = if step == "-" {
                    Some(items.len())
                } else {
                    step.parse::<usize>()
                        .ok()
                        .filter(|_| step.bytes().all(|b| b.is_ascii_digit()))
                };
                match index {
                    Some(i) if i < items.len() => &items[i],
                    Some(i) if last && i == items.len() => return Ok(()),
                    Some(_) => {
                        return Err(format!(
                            "`{here}` is past the end of `{}`, which has {} item(s)",
                            if walked.is_empty() { "/" } else { &walked },
                            items.len()
                        ));
                    }
                    None => return Err(format!("`{here}`: an array's step is an index")),
                }
            }
            other => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => "a string",
                };
                let parent = if walked.is_empty() {
                    "the body"
                } else {
                    walked.as_str()
                };
                return Err(format!("`{parent}` is {kind}, which has no `{step}`"));
            }
        };
        walked = here;
    }
    Ok(())
}

/// The key of `map` that `step`, a key it lacks, is a misspelling of: the
/// same but for case, or of the same length with a letter changed or two
/// swapped (two such for keys of more than five letters). A key longer or
/// shorter than one there is taken for a key of its own: Kustomer sends
/// `deleted` beside `deletedAt`, `id` beside `ids`.
fn misspelt<'m>(map: &'m serde_json::Map<String, Value>, step: &str) -> Option<&'m str> {
    let length = step.chars().count();
    let allowed = if length > 5 { 2 } else { 1 };
    map.keys()
        .filter(|key| key.chars().count() == length)
        .map(|key| {
            let distance = if key.eq_ignore_ascii_case(step) {
                0
            } else {
                strsim::osa_distance(key, step)
            };
            (distance, key.as_str())
        })
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key)
}

/// The steps of a JSON Pointer, unescaped (`~1` is `/`, `~0` is `~`). A
/// pointer not starting with `/` is read as if it did.
fn steps(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .strip_prefix('/')
        .unwrap_or(pointer)
        .split('/')
        .filter(move |_| !pointer.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
}

/// The child `step` of `value`, made if missing (see [`Delivery::set`]).
fn child<'v>(value: &'v mut Value, step: &str) -> &'v mut Value {
    let index = match &*value {
        Value::Array(items) if step == "-" => Some(items.len()),
        // An index is digits only (`+1` and ` 1` are keys), and a
        // reasonable one: past a million, a key too.
        Value::Array(_) if step.bytes().all(|b| b.is_ascii_digit()) => {
            step.parse::<usize>().ok().filter(|i| *i < 1 << 20)
        }
        _ => None,
    };
    if index.is_none() && !value.is_object() {
        *value = Value::Object(serde_json::Map::new());
    }
    match (value, index) {
        (Value::Array(items), Some(i)) => {
            if i >= items.len() {
                items.resize(i + 1, Value::Null);
            }
            &mut items[i]
        }
        (Value::Object(map), _) => map.entry(step.to_owned()).or_insert(Value::Null),
        // Not reached: anything else was made an object above.
        (other, _) => other,
    }
}
