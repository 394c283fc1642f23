//! The receiver as an axum [`Router`](https://docs.rs/axum/0.8/axum/struct.Router.html) (feature `axum`).
//!
//! ```no_run
//! use kustomer_webhooks::receiver::Receiver;
//! use kustomer_webhooks::verify::Verifier;
//! use kustomer_webhooks::Dispatcher;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let dispatcher = Dispatcher::builder().registered().build()?;
//! let receiver = Receiver::new(dispatcher, Verifier::new(std::env::var("KUSTOMER_TOKEN")?));
//! let app = axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! kustomer_webhooks::axum::Server::new()
//!     .serve(listener, app, kustomer_webhooks::axum::stop_signal())
//!     .await;
//! # Ok(())
//! # }
//! ```
//!
//! The service itself depends on axum and tokio too, for the router it
//! mounts this in and the listener:
//!
//! ```toml
//! [dependencies]
//! # a checkout's runtime crate, or a git dependency on it
//! kustomer-webhooks = { path = "../kustomer-webhooks/runtime", features = ["axum"] }
//! axum = "0.8"
//! tokio = { version = "1", features = ["macros", "net", "rt-multi-thread"] }
//! ```
//!
//! Deliveries that arrive together are handled together: the router queues
//! each delivery once its body is read, and the first of a batch lets the
//! other ready requests catch up (one turn of the scheduler), then runs the
//! queued deliveries one after another in one task, with the receiver's code
//! still in the processor's caches from the delivery before. Under load, this
//! served up to a sixth more deliveries per second than calling
//! [`Receiver::receive`] for each request when measured, and no fewer on the
//! machine of the latest runs (BENCHMARKS.md in the repository).
//! The [`batch`](crate::batch) module, which the router uses, says how, and
//! what it changes for handlers: they run in whichever task leads the batch,
//! so a value a middleware keeps in a tokio task-local for the request does
//! not reach them ([`Receiver::receive`] called from a handler of your own
//! keeps the request's task).
//!
//! [`Server`] serves the app with a time limit on request heads, a limit on
//! connections and a graceful stop. `axum::serve` works too, behind a load
//! balancer or proxy that limits slow clients, but puts no time limit on a
//! request's head: facing the internet directly, a client that sends its
//! headers a byte at a time holds a connection for as long as it likes.
//! With the feature `axum-tls`, [`Server::with_tls`] serves HTTPS itself
//! ([`Tls`]), for a receiver with no proxy in front to terminate it.

mod server;
#[cfg(feature = "axum-tls")]
pub(crate) mod tls;

/// The TLS library [`Tls`] is built on, for [`Tls::from_config`].
#[cfg(feature = "axum-tls")]
pub use rustls;
pub use server::{
    IDLE_BEFORE_MAKING_ROOM, MAKING_ROOM_GRACE, MAX_HEAD, MAX_HEAD_TIMEOUT, Server, stop_signal,
};
#[cfg(feature = "axum-tls")]
pub use tls::{Tls, TlsError, Validity};

use std::sync::Arc;

use ::axum::Router;
use ::axum::body::{Body, Bytes};
use ::axum::extract::State;
use ::axum::http::request::Parts;
use ::axum::http::{HeaderValue, Request as HttpRequest, StatusCode, header};
use ::axum::response::Response;
use ::axum::routing::any;

use crate::Events;
use crate::batch::{Batcher, Delivery};
use crate::receiver::{Receiver, Reply, within};

/// A router answering every method at `/`: mount it where Kustomer posts
/// (`Router::nest_service("/kustomer", router(receiver))`). Deliveries that
/// arrive together are handled in batches (see the [module](self) docs).
/// It has no fallback of its own, so it merges into an app with one; a path
/// below it gets that app's answer (axum's empty 404 by default).
///
/// It takes the [`Receiver`], or an `Arc` of one that other code keeps too:
/// a test can then deliver to the same receiver directly, or read its
/// counters, while the router serves it.
pub fn router<S: Events>(receiver: impl Into<Arc<Receiver<S>>>) -> Router {
    Router::new()
        .route("/", any(receive::<S>))
        .with_state(Arc::new(Batcher::new(receiver)))
}

/// The receiver alone at `path` (`"/kustomer"`, or `"/"`), as the whole
/// app: a request to any other path gets 404 with a JSON body that says
/// where deliveries are received, counted and logged as a rejection (a
/// webhook URL with the wrong path then shows in the counters and logs
/// rather than only in Kustomer's). For a receiver beside routes of your
/// own, nest [`router`] instead.
///
/// # Panics
///
/// If `path` is not one axum can nest at: not starting with `/`, or with a
/// wildcard (`*`) or a parameter (`{id}`) in it.
pub fn router_at<S: Events>(path: &str, receiver: impl Into<Arc<Receiver<S>>>) -> Router {
    let batch = Arc::new(Batcher::new(receiver));
    let mounted = path.trim_end_matches('/');
    if mounted.is_empty() {
        return at_root(batch, Mount::Root);
    }
    let mount = Mount::At(Arc::from(mounted));
    Router::new()
        .nest_service(mounted, at_root(Arc::clone(&batch), mount.clone()))
        .fallback(
            Elsewhere {
                mount,
                nested: false,
            }
            .handler::<S>(),
        )
        .with_state(batch)
}

/// The receiver at `/` with a fallback that answers 404 with a JSON body.
fn at_root<S: Events>(batch: Arc<Batcher<S, HttpDelivery>>, mount: Mount) -> Router {
    Router::new()
        .route("/", any(receive::<S>))
        .fallback(
            Elsewhere {
                mount,
                nested: true,
            }
            .handler::<S>(),
        )
        .with_state(batch)
}

/// Where the receiver is.
#[derive(Clone)]
enum Mount {
    Root,
    At(Arc<str>),
}

/// The paths where nothing is received: 404, with a body that says where
/// deliveries go.
#[derive(Clone)]
struct Elsewhere {
    mount: Mount,
    /// Whether it answers below the mount (where axum has taken the mount
    /// off the path), rather than beside it.
    nested: bool,
}

type Answer = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;
/// The router's state, as its handlers take it.
type Shared<S> = State<Arc<Batcher<S, HttpDelivery>>>;

/// How much of a path the 404 shows, in characters: a path can be as long
/// as a request head (tens of kilobytes), and it is both answered and logged.
const SHOWN_PATH: usize = 200;

/// `path`, or its first [`SHOWN_PATH`] characters and `…`.
fn shown_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.char_indices().nth(SHOWN_PATH) {
        Some((cut, _)) => format!("{}…", &path[..cut]).into(),
        None => path.into(),
    }
}

impl Elsewhere {
    fn error(&self, path: &str) -> String {
        let path = shown_path(path);
        match &self.mount {
            Mount::Root => format!("nothing is received at {path}: deliveries go to /"),
            Mount::At(at) => {
                let below = if self.nested { &**at } else { "" };
                format!("nothing is received at {below}{path}: deliveries go to {at}")
            }
        }
    }

    fn handler<S: Events>(self) -> impl Fn(Shared<S>, HttpRequest<Body>) -> Answer + Clone {
        move |State(batch): Shared<S>, request: HttpRequest<Body>| {
            let (parts, body) = request.into_parts();
            // A request target that is no path (`CONNECT host:443`,
            // `OPTIONS *`) asks the server itself: a method other than POST
            // is answered as the receiver answers it, 405.
            let path = parts.uri.path();
            let no_path = path.is_empty() || path == "*";
            let error = if no_path {
                let target = parts.uri.to_string();
                let at = match &self.mount {
                    Mount::Root => "/",
                    Mount::At(at) => at,
                };
                let target = shown_path(&target);
                format!("nothing is received at the request target {target}: deliveries go to {at}")
            } else {
                self.error(path)
            };
            Box::pin(async move {
                let receiver = batch.receiver();
                let screened = no_path && parts.method != ::axum::http::Method::POST;
                let reply = match screened.then(|| receiver.screen(parts.method.as_str(), None)) {
                    Some(Some(reply)) => reply,
                    _ => receiver.reject(404, error),
                };
                refuse_unread(receiver, &parts, body, &reply).await
            }) as Answer
        }
    }
}

/// A request whose body has been read, as the router's batches queue it.
struct HttpDelivery {
    parts: Parts,
    body: Bytes,
}

impl Delivery for HttpDelivery {
    fn method(&self) -> &str {
        self.parts.method.as_str()
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        let mut values = self.parts.headers.get_all(name).iter();
        let first = values.next()?.as_bytes();
        // A coding on several lines is one list (`identity`, then `gzip`;
        // `chunked`, then `gzip, chunked`): the receiver is shown the first
        // line that names a coding it does not undo, so that a coded body
        // is refused whichever line says so. Other headers are judged by
        // their first copy.
        let undone: &[&[u8]] = match name {
            "content-encoding" => &[b"identity"],
            "transfer-encoding" => &[b"chunked", b"identity"],
            _ => return Some(first),
        };
        if names_a_coding(first, undone) {
            return Some(first);
        }
        let coded = values
            .map(HeaderValue::as_bytes)
            .find(|v| names_a_coding(v, undone));
        Some(coded.unwrap_or(first))
    }

    fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Whether a `Content-Encoding` or `Transfer-Encoding` line names a coding
/// the receiver does not undo: an item of its list that is neither empty
/// nor one of `undone` (`identity`; for a transfer coding, `chunked` too),
/// as the receiver reads it.
fn names_a_coding(value: &[u8], undone: &[&[u8]]) -> bool {
    value.split(|&b| b == b',').any(|coding| {
        let coding = coding.trim_ascii();
        !coding.is_empty() && !undone.iter().any(|u| coding.eq_ignore_ascii_case(u))
    })
}

/// The router's handler. Not an `async fn`: one would keep its arguments
/// (the request, with its head) for as long as it runs, beside the head it
/// takes apart; the future here holds the head once, and fits the
/// allocator's fast path for small blocks.
fn receive<S: Events>(
    State(batch): State<Arc<Batcher<S, HttpDelivery>>>,
    request: HttpRequest<Body>,
) -> impl Future<Output = Response> {
    let (parts, body) = request.into_parts();
    async move {
        let receiver = batch.receiver();
        // A request of another method or content type is turned away before
        // its body is read (and so before its size matters).
        let content_type = parts.headers.get(header::CONTENT_TYPE);
        let limit = receiver.limit();
        let declared = declared_length(&parts);
        if let Some(reply) = receiver.screen(
            parts.method.as_str(),
            content_type.map(HeaderValue::as_bytes),
        ) {
            return Box::pin(refuse_unread(receiver, &parts, body, &reply)).await;
        }
        if declared.is_some_and(|n| n > limit as u64) {
            let reply = too_large(receiver);
            return Box::pin(refuse_unread(receiver, &parts, body, &reply)).await;
        }
        // The time limit counts from the first wait for the body: one that has
        // already arrived (as a Kustomer event has) arms no timer. Boxed, the
        // read (some 400 bytes) keeps this future small.
        let read = Box::pin(read_body(body, limit, declared));
        // A body not read to its end leaves the connection unusable: the
        // answer says it closes.
        let bytes = match within(None, receiver.read_timeout(), read).await {
            Some(Ok(b)) => b,
            None => {
                let wait = receiver.read_timeout();
                let error = format!("the body did not arrive within {wait:?}");
                return closing(respond(&receiver.reject(408, error)));
            }
            Some(Err(Unread::TooLarge)) => return closing(respond(&too_large(receiver))),
            Some(Err(Unread::InPieces)) => {
                let error = format!(
                    "the body came in more than {} pieces (chunks, or reads of a few bytes \
                     each): send it in larger ones",
                    max_body_pieces(limit)
                );
                return closing(respond(&receiver.reject(400, error)));
            }
            Some(Err(Unread::Failed(e))) => {
                let error = format!("the body could not be read: {e}");
                return closing(respond(&receiver.reject(400, error)));
            }
        };
        respond(&batch.receive(HttpDelivery { parts, body: bytes }).await)
    }
}

/// The most pieces a body is read in at the default size limit (its chunks,
/// or what each read of the connection brings): 4,096, pieces of 256 bytes
/// on average at 1 MiB; with a larger limit, [`max_body_pieces`] allows
/// more. Each piece costs a wake-up of the task reading it, so a body of a
/// million one-byte chunks would cost far more time than its size. A
/// Kustomer event, a few kilobytes, comes in one or a few.
pub const MAX_BODY_PIECES: usize = 4096;

/// The most pieces a body is read in under a size limit of `limit` bytes:
/// [`MAX_BODY_PIECES`], or one for each 256 bytes of the limit when that is
/// more (a body at the limit sent in network-sized reads, a segment of
/// about 1.4 KB each, is far within it).
pub fn max_body_pieces(limit: usize) -> usize {
    (limit / 256).max(MAX_BODY_PIECES)
}

/// Why a body was not read.
enum Unread {
    /// Over the size limit.
    TooLarge,
    /// In more than [`max_body_pieces`] pieces.
    InPieces,
    /// The connection failed, or the body's framing.
    Failed(String),
}

/// Reads a body of at most `limit` bytes into one buffer: a body that comes
/// in one piece (as a Kustomer event does) is taken as it is; one in several
/// is copied into a buffer of its own, sized from its `Content-Length`
/// (`declared`) or grown by doubling up to `limit`, so that it holds at most
/// the limit, and not the buffers its pieces were read into.
async fn read_body(mut body: Body, limit: usize, declared: Option<u64>) -> Result<Bytes, Unread> {
    use http_body_util::BodyExt;
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut pieces = 0usize;
    let most = max_body_pieces(limit);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Unread::Failed(crate::dispatch::with_causes(&e)))?;
        // Trailers, which hold nothing of the body, are left out.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        pieces += 1;
        if pieces > most {
            return Err(Unread::InPieces);
        }
        let held = first.as_ref().map_or(joined.len(), Bytes::len);
        let size = held.saturating_add(data.len());
        if size > limit {
            return Err(Unread::TooLarge);
        }
        if pieces == 1 {
            first = Some(data);
            continue;
        }
        if let Some(first) = first.take() {
            let expected = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
            joined.reserve_exact(expected.clamp(size, limit));
            joined.extend_from_slice(&first);
        }
        if joined.capacity() < size {
            // Doubled, as a `Vec` grows, but never past the limit.
            let to = size.max(joined.capacity().saturating_mul(2)).min(limit);
            joined.reserve_exact(to - joined.len());
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// Answers `reply` to a request whose body is not wanted, after reading
/// the body (and dropping it) when it is at most four times the size limit
/// and arrives within the body's time limit (in at most
/// [`max_body_pieces`] of four times the limit). A server that closes a
/// connection with data unread resets it, and a reset can reach the client
/// before it has read the answer: it then sees the connection fail, not the
/// 404, 405, 413 or 415 that says why. Larger bodies are not read: the
/// connection is closed under them. Nor is the body of a request that
/// waits for `100 Continue` before sending it: it gets the answer at once,
/// and its body is never sent.
async fn refuse_unread<S: Events>(
    receiver: &Receiver<S>,
    parts: &Parts,
    body: Body,
    reply: &Reply,
) -> Response {
    let declared = declared_length(parts);
    let at_most = (receiver.limit() as u64).saturating_mul(4);
    let waits_to_send = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits_to_send {
        // Its body is not asked for, and whether the client sends it anyway
        // cannot be told: the connection closes after the answer.
        return closing(respond(reply));
    }
    let mut ended = false;
    if declared.is_none_or(|n| n <= at_most) {
        let drain = async {
            use http_body_util::BodyExt;
            let mut body = body;
            let mut read = 0u64;
            let mut pieces = 0usize;
            let most = max_body_pieces(usize::try_from(at_most).unwrap_or(usize::MAX));
            loop {
                match body.frame().await {
                    None => return true,
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |data| data.len() as u64);
                        pieces += 1;
                        // As for a body read (`max_body_pieces`): one in
                        // more pieces costs more than it is worth.
                        if read > at_most || pieces > most {
                            return false;
                        }
                    }
                    Some(Err(_)) => return false,
                }
            }
        };
        ended = within(None, receiver.read_timeout(), drain).await == Some(true);
    }
    // Not read to its end: the connection is closed under it, as the
    // answer says.
    if ended {
        respond(reply)
    } else {
        closing(respond(reply))
    }
}

/// `response`, saying that the connection closes after it (RFC 9112 §9.6):
/// a client keeping connections alive then does not send another request
/// on it.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The request's `Content-Length`, when it has a valid one.
fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn too_large<S: Events>(receiver: &Receiver<S>) -> Reply {
    let limit = receiver.limit();
    receiver.reject(413, format!("the body is over the {limit} byte limit"))
}

fn respond(reply: &Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body()));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers() {
        response.headers_mut().insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{Elsewhere, MAX_BODY_PIECES, Mount, SHOWN_PATH, max_body_pieces, shown_path};

    #[test]
    fn a_larger_size_limit_allows_a_body_in_more_pieces() {
        assert_eq!(max_body_pieces(0), MAX_BODY_PIECES);
        assert_eq!(max_body_pieces(1 << 20), MAX_BODY_PIECES);
        assert_eq!(max_body_pieces(8 << 20), 32_768);
        // 6 MB in reads of a TCP segment each: well within.
        assert!(6_000_000 / 1448 < max_body_pieces(8 << 20));
    }

    #[test]
    fn a_404_shows_a_long_path_cut_short() {
        assert_eq!(shown_path("/webhooks"), "/webhooks");
        let exactly = "a".repeat(SHOWN_PATH);
        assert_eq!(shown_path(&exactly), exactly);
        let long = format!("/{}", "é".repeat(64 * 1024));
        let shown = shown_path(&long);
        assert_eq!(shown.chars().count(), SHOWN_PATH + 1);
        assert!(shown.starts_with("/éé") && shown.ends_with("é…"), "{shown}");
        let elsewhere = Elsewhere {
            mount: Mount::At("/kustomer".into()),
            nested: true,
        };
        let error = elsewhere.error(&long);
        assert!(
            error.starts_with("nothing is received at /kustomer/éé"),
            "{error}"
        );
        assert!(error.ends_with("é…: deliveries go to /kustomer"), "{error}");
        assert!(error.len() < 1024, "{}", error.len());
    }
}
