//! `kustomer_webhooks::axum::Server` over real TCP on loopback: the time
//! limit on request heads, the limit on connections, a graceful stop that
//! finishes the delivery in progress and is held up by no client, and HTTPS
//! (`axum::Tls`, with the test certificates in `tests/tls/`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kustomer_webhooks::axum::{Server, Tls, TlsError, Validity};
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::testing::Delivery;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{Dispatcher, State, TeamCreate};
use kustomer_webhooks_tests::TLS_DIR;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const TOKEN: &str = "t0ken";

/// Not a measurement: only so that a server that hangs fails the test
/// instead of stalling it.
const HANG: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Slow {
    /// How long a team's handler takes.
    wait: std::sync::Mutex<Duration>,
    started: Notify,
    finished: AtomicBool,
    /// Team creations handled.
    handled: std::sync::atomic::AtomicUsize,
}

async fn team(_: TeamCreate, slow: State<Arc<Slow>>) {
    slow.started.notify_one();
    let wait = *slow.wait.lock().unwrap();
    tokio::time::sleep(wait).await;
    slow.finished.store(true, Ordering::SeqCst);
    slow.handled.fetch_add(1, Ordering::SeqCst);
}

struct Running {
    addr: SocketAddr,
    server: Server,
    slow: Arc<Slow>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<()>,
}

async fn start(server: Server) -> Running {
    let slow = Arc::new(Slow::default());
    let dispatcher = Dispatcher::with_state(slow.clone())
        .handler(team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN));
    let app =
        axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let server = server.clone();
        async move {
            server
                .serve(listener, app, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    Running {
        addr,
        server,
        slow,
        stop: Some(stop),
        serving,
    }
}

/// Delivers a team creation with the event id `id` to the server at
/// `addr`: its status and outcome.
async fn deliver(addr: SocketAddr, id: &str) -> (u16, String) {
    deliver_to(addr, "/kustomer", id).await
}

/// A team's creation with the event id `id`, posted to `path`: the status
/// and the reply's outcome.
async fn deliver_to(addr: SocketAddr, path: &str, id: &str) -> (u16, String) {
    let delivery = Delivery::sample("kustomer.team.create")
        .unwrap()
        .set("/id", id)
        .signed_with(TOKEN);
    let mut request = reqwest::Client::builder()
        .timeout(HANG)
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .body(delivery.body());
    for (name, value) in delivery.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let reply: serde_json::Value = response.json().await.unwrap();
    (
        status,
        reply["outcome"].as_str().unwrap_or_default().to_owned(),
    )
}

impl Running {
    /// A connection that has sent `head` and nothing more.
    async fn open(&self, head: &str) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    }

    /// Waits until the server has read all `stream` sent (its end of the
    /// connection has nothing queued, in Linux's `/proc/net/tcp`; elsewhere
    /// a pause). A stop closes at once a connection it has read nothing
    /// from, as an idle one.
    async fn read_by_server(&self, stream: &TcpStream) {
        let client = stream.local_addr().unwrap();
        let queued = || kustomer_webhooks_tests::unread_by_server(self.addr, client);
        if queued().is_none() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        until(
            || queued() == Some(0),
            || "the server never read what was sent".to_owned(),
        )
        .await;
    }

    async fn handshakes_failed(&self, n: u64) {
        until(
            || self.server.tls_handshakes_failed() == n,
            || format!("{:?}, never {n} handshakes failed", self.server),
        )
        .await;
    }

    async fn open_connections(&self, n: usize) {
        until(
            || self.server.open_connections() == n,
            || format!("{:?}, never {n} open", self.server),
        )
        .await;
    }
}

/// Waits until `done()`, failing with what `never()` says (then) if it
/// does not come.
async fn until(done: impl Fn() -> bool, never: impl Fn() -> String) {
    tokio::time::timeout(HANG, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{}", never()));
}

/// A signed team creation as raw HTTP, after its request line and `Host`:
/// the other headers, the blank line and the body.
fn raw_delivery(id: &str) -> Vec<u8> {
    let delivery = Delivery::sample("kustomer.team.create")
        .unwrap()
        .set("/id", id)
        .signed_with(TOKEN);
    let body = delivery.body();
    let mut raw = String::new();
    for (name, value) in delivery.headers() {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// What the server writes on `stream` before closing it.
async fn answer_then_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut answer))
        .await
        .expect("the connection was not closed");
    assert!(
        read.is_ok() || read.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_whole_head_in_time_is_closed() {
    let running = start(Server::new().with_head_timeout(Duration::from_secs(1))).await;
    let mut silent = running.open("").await;
    let mut half = running
        .open("POST /kustomer HTTP/1.1\r\nHost: example\r\n")
        .await;
    running.open_connections(2).await;
    assert_eq!(answer_then_close(&mut silent).await, "");
    let half = answer_then_close(&mut half).await;
    assert!(
        half.is_empty() || half.starts_with("HTTP/1.1 408"),
        "{half}"
    );
    running.open_connections(0).await;
    // A delivery that sends its head at once is served as ever, and its
    // connection, idle afterwards, is closed in time too.
    assert_eq!(
        deliver(running.addr, "a1").await,
        (200, "handled".to_owned())
    );
    running.open_connections(0).await;
}

/// The app sees each client's address, as axum's `ConnectInfo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_sees_the_clients_address() {
    use axum::extract::ConnectInfo;
    async fn peer(ConnectInfo(addr): ConnectInfo<SocketAddr>) -> String {
        addr.to_string()
    }
    let app = axum::Router::new().route("/peer", axum::routing::get(peer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new();
    tokio::spawn(async move { server.serve(listener, app, std::future::pending()).await });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = answer_then_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&client.to_string()), "{answer}");
}

/// `Server::serve` takes any tower service over axum's requests and
/// responses, not only a `Router`: here the router wrapped in a layer that
/// rewrites a path before routing (which `Router::layer` cannot do, as it
/// runs once the route is chosen), so that deliveries to the URL an app
/// definition registered before a move still reach the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_tower_service_can_be_served() {
    use tower::ServiceExt as _;
    fn moved(mut request: axum::extract::Request) -> axum::extract::Request {
        if request.uri().path() == "/hooks/kustomer-old" {
            *request.uri_mut() = axum::http::Uri::from_static("/kustomer");
        }
        request
    }
    let dispatcher = Dispatcher::with_state(Arc::new(Slow::default()))
        .handler(team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN));
    let router =
        axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
    let app = router.map_request(moved);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new();
    tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener, app, std::future::pending()).await }
    });
    for (path, id) in [("/hooks/kustomer-old", "moved"), ("/kustomer", "plain")] {
        let (status, outcome) = deliver_to(addr, path, id).await;
        assert_eq!((status, outcome.as_str()), (200, "handled"), "{path}");
    }
    // The server's own bookkeeping still sees each request through.
    assert_eq!(server.requests_in_progress(), 0);
}

/// Requests the HTTP layer answers before the receiver sees them (a TLS
/// handshake on the plain port, a head with too many headers, a request
/// line that is not HTTP) are counted, so that `/metrics` shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_head_cannot_be_read_are_counted() {
    let running = start(Server::new()).await;
    assert_eq!(running.server.requests_unreadable(), 0);
    // The first bytes of a TLS ClientHello.
    let hello = "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}\r\n\r\n";
    let many: String = (0..200).map(|n| format!("X-{n}: y\r\n")).collect();
    let too_many = format!("POST /kustomer HTTP/1.1\r\nHost: example\r\n{many}\r\n");
    for (n, head) in [hello, too_many.as_str(), "NOT A REQUEST\r\n\r\n"]
        .into_iter()
        .enumerate()
    {
        let mut stream = running.open(head).await;
        let answer = answer_then_close(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 4") || answer.is_empty(),
            "{answer}"
        );
        until(
            || running.server.requests_unreadable() == n as u64 + 1,
            || format!("{} counted", running.server.requests_unreadable()),
        )
        .await;
    }
    assert!(
        running
            .server
            .prometheus()
            .contains("kustomer_webhooks_requests_unreadable_total 3\n")
    );
    // A delivery is served as ever, and not counted.
    assert_eq!(
        deliver(running.addr, "u1").await,
        (200, "handled".to_owned())
    );
    assert_eq!(running.server.requests_unreadable(), 3);
}

/// A head past `MAX_HEAD` is refused (431) before it is all read; a
/// delivery whose head is large but under it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_past_its_limit_gets_431_and_one_under_it_is_served() {
    let running = start(Server::new()).await;
    let padding = |bytes: usize| format!("x-padding: {}\r\n", "p".repeat(bytes));
    let over = format!(
        "POST /kustomer HTTP/1.1\r\nhost: example\r\n{}",
        padding(kustomer_webhooks::axum::MAX_HEAD)
    );
    let mut stream = running.open(&over).await;
    let answer = answer_then_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let raw = raw_delivery("large-head");
    let (head, body) = raw.split_at(raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2);
    let mut under = b"POST /kustomer HTTP/1.1\r\nhost: example\r\nconnection: close\r\n".to_vec();
    under.extend_from_slice(padding(kustomer_webhooks::axum::MAX_HEAD / 2).as_bytes());
    under.extend_from_slice(head);
    under.extend_from_slice(body);
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream.write_all(&under).await.unwrap();
    let answer = answer_then_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\"outcome\":\"handled\""),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_connections_are_served_at_once() {
    let running = start(Server::new().with_max_connections(1)).await;
    assert_eq!(running.server.max_connections(), 1);
    // A delivery whose handler runs takes the only slot.
    *running.slow.wait.lock().unwrap() = Duration::from_millis(800);
    let first = tokio::spawn(deliver(running.addr, "a2"));
    running.slow.started.notified().await;
    // Another waits for it (a connection with a request in progress is
    // never closed to make room), then is handled.
    let second = tokio::spawn(deliver(running.addr, "a3"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "served past the limit");
    assert_eq!(running.slow.handled.load(Ordering::SeqCst), 0);
    assert_eq!(first.await.unwrap(), (200, "handled".to_owned()));
    assert_eq!(second.await.unwrap(), (200, "handled".to_owned()));
    running.open_connections(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_the_oldest_connection_with_nothing_in_progress_makes_room() {
    // Heads may take two minutes: without room made, the delivery would
    // wait past the test's limit for one of the idle connections to close.
    let running = start(
        Server::new()
            .with_max_connections(3)
            .with_head_timeout(Duration::from_secs(120)),
    )
    .await;
    let mut silent = running.open("").await;
    let half = running
        .open("POST /kustomer HTTP/1.1\r\nHost: example\r\n")
        .await;
    let _idle = running.open("").await;
    running.open_connections(3).await;
    running.read_by_server(&half).await;
    assert_eq!(
        deliver(running.addr, "a4").await,
        (200, "handled".to_owned())
    );
    // The oldest was closed, and only it.
    assert_eq!(answer_then_close(&mut silent).await, "");
    assert_eq!(running.server.connections_closed_at_limit(), 1);
    assert!(
        running
            .server
            .prometheus()
            .contains("kustomer_webhooks_connections_closed_at_limit_total 1\n")
    );
    running.open_connections(2).await;
}

/// A connection closed to make room is closed at once, not given the stop's
/// grace: a client that keeps a head half sent would otherwise hold the new
/// delivery back for all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_to_make_room_is_not_given_the_stops_grace() {
    let running = start(
        Server::new()
            .with_max_connections(1)
            .with_head_timeout(Duration::from_secs(300))
            .with_stop_grace(Duration::from_secs(300)),
    )
    .await;
    let half = running
        .open("POST /kustomer HTTP/1.1\r\nHost: example\r\n")
        .await;
    running.open_connections(1).await;
    running.read_by_server(&half).await;
    // Well within the grace, and the head's time limit.
    let answered = tokio::time::timeout(Duration::from_secs(60), deliver(running.addr, "a9"))
        .await
        .expect("the delivery waited for the stop's grace");
    assert_eq!(answered, (200, "handled".to_owned()));
    assert_eq!(running.server.connections_closed_at_limit(), 1);
}

/// A server at a limit of two connections, both held by `hold` (each
/// given its connection and a flag that turns when the test is done): a
/// delivery must still get a place, by one of them closed to make room.
async fn a_delivery_gets_a_place_beside<F, H>(hold: H)
where
    H: Fn(TcpStream, Arc<AtomicBool>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let running = start(
        Server::new()
            .with_max_connections(2)
            .with_head_timeout(Duration::from_secs(120)),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut holding = Vec::new();
    for _ in 0..2 {
        let stream = TcpStream::connect(running.addr).await.unwrap();
        holding.push(tokio::spawn(hold(stream, stop.clone())));
    }
    running.open_connections(2).await;
    let answered = tokio::time::timeout(HANG, deliver(running.addr, "held"))
        .await
        .expect("the two connections held every place");
    assert_eq!(answered, (200, "handled".to_owned()));
    stop.store(true, Ordering::SeqCst);
    for task in holding {
        task.await.unwrap();
    }
    assert!(running.server.connections_closed_at_limit() >= 1);
}

/// Sends a request the server refuses (its signature is wrong) with `body`
/// a byte every `every`, and reads the answer; false once the connection
/// is closed.
async fn refused_slowly(stream: &mut TcpStream, body: &[u8], every: Duration) -> bool {
    let head = format!(
        "POST /kustomer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Kustomer-Webhook-Signature: 00\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    for (i, byte) in body.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return false;
        }
    }
    let mut answer = [0u8; 4096];
    !matches!(stream.read(&mut answer).await, Ok(0) | Err(_))
}

/// Connections whose every request is refused, sent one after another, are
/// never idle for a second, yet do not hold the limit: a delivery gets the
/// place of one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_with_only_refused_requests_make_room() {
    a_delivery_gets_a_place_beside(|mut stream, stop| async move {
        let mut answer = [0u8; 4096];
        // A 501 first (a transfer coding not undone), which needs no token
        // either: a refusal too.
        let coded = "POST /kustomer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
        stream.write_all(coded.as_bytes()).await.unwrap();
        let n = stream.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 501"));
        while !stop.load(Ordering::SeqCst) {
            let sent = stream
                .write_all(b"GET /kustomer HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            if sent.is_err() || matches!(stream.read(&mut answer).await, Ok(0) | Err(_)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

/// Connections sending bodies a byte at a time, each finished within the
/// body's time limit and refused, then another, never idle: at the limit,
/// one whose body has been arriving for a second is closed, its request cut
/// short, so that a delivery gets its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_sending_bodies_a_byte_at_a_time_make_room() {
    a_delivery_gets_a_place_beside(|mut stream, stop| async move {
        let every = Duration::from_millis(300);
        while !stop.load(Ordering::SeqCst)
            && refused_slowly(&mut stream, br#"{"name":"x.y.z"}  "#, every).await
        {}
    })
    .await;
}

/// The same with bodies that each take under a second, one after another:
/// their times count together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_sending_short_slow_bodies_one_after_another_make_room() {
    a_delivery_gets_a_place_beside(|mut stream, stop| async move {
        let every = Duration::from_millis(700);
        while !stop.load(Ordering::SeqCst) && refused_slowly(&mut stream, b"{}", every).await {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_no_connection_is_closed_before_its_request_is_read() {
    // Every connection sends its whole request at once, while one slot is
    // busy: each waits for a slot, and none is closed to make room for
    // another before its request is read.
    let running = start(Server::new().with_max_connections(2)).await;
    *running.slow.wait.lock().unwrap() = Duration::from_millis(300);
    let deliveries: Vec<_> = (0..20)
        .map(|i| {
            let addr = running.addr;
            tokio::spawn(async move { deliver(addr, &format!("q{i}")).await })
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.await.unwrap(), (200, "handled".to_owned()));
    }
    assert_eq!(running.slow.handled.load(Ordering::SeqCst), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_finishes_the_delivery_in_progress_and_no_half_sent_head_holds_it() {
    // Heads may take two minutes: a stop that waited for one would fail
    // the test's limit.
    let mut running = start(Server::new().with_head_timeout(Duration::from_secs(120))).await;
    *running.slow.wait.lock().unwrap() = Duration::from_millis(500);
    let mut idle = running.open("").await;
    let mut half = running
        .open("POST /kustomer HTTP/1.1\r\nHost: example\r\n")
        .await;
    let addr = running.addr;
    let delivery = tokio::spawn(deliver(addr, "a3"));
    running.slow.started.notified().await;
    running.open_connections(3).await;
    running.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(HANG, &mut running.serving)
        .await
        .expect("the stop waited for a connection")
        .unwrap();
    // It returned only once the handler had finished and been answered.
    assert!(running.slow.finished.load(Ordering::SeqCst));
    assert_eq!(delivery.await.unwrap(), (200, "handled".to_owned()));
    assert_eq!(answer_then_close(&mut idle).await, "");
    assert_eq!(answer_then_close(&mut half).await, "");
    assert_eq!(running.server.open_connections(), 0);
    // And it takes no more connections.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_client_closes_once_it_is_sent_is_still_handled() {
    let running = start(Server::new()).await;
    let addr = running.addr;
    let send = |n: usize| async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request = b"POST /kustomer HTTP/1.1\r\nhost: kustomer\r\n".to_vec();
        request.extend(raw_delivery(&format!("{n:024x}")));
        stream.write_all(&request).await.unwrap();
        stream
    };
    // Half-closed (the client sends nothing more, and waits): answered.
    for n in 0..10 {
        let mut stream = send(n).await;
        stream.shutdown().await.unwrap();
        let answer = answer_then_close(&mut stream).await;
        assert!(handled(&answer), "{answer}");
    }
    // Closed at once (nobody reads the answer): handled all the same.
    for n in 10..40 {
        drop(send(n).await);
    }
    until(
        || running.slow.handled.load(Ordering::SeqCst) == 40,
        || {
            format!(
                "{} of 40 handled",
                running.slow.handled.load(Ordering::SeqCst)
            )
        },
    )
    .await;
}

#[tokio::test]
async fn stop_signal_resolves_on_sigterm() {
    let mut stop = Box::pin(kustomer_webhooks::axum::stop_signal());
    // Its first poll listens for the signals; nothing has come yet.
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut stop)
            .await
            .is_err()
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    tokio::time::timeout(HANG, stop)
        .await
        .expect("SIGTERM did not resolve it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_stop_grace_lets_a_half_sent_delivery_finish() {
    let mut running = start(
        Server::new()
            .with_head_timeout(Duration::from_secs(120))
            .with_stop_grace(Duration::from_secs(600)),
    )
    .await;
    assert_eq!(running.server.stop_grace(), Duration::from_secs(600));
    let mut half = running
        .open("POST /kustomer HTTP/1.1\r\nHost: example\r\n")
        .await;
    running.open_connections(1).await;
    running.read_by_server(&half).await;
    running.stop.take().unwrap().send(()).unwrap();
    // The default grace (one second) would have closed it by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!running.serving.is_finished(), "closed within its grace");
    // The rest of the delivery comes within the grace: it is served, then
    // the connection is closed and the stop completes.
    half.write_all(&raw_delivery("a4")).await.unwrap();
    let answer = answer_then_close(&mut half).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"outcome\":\"handled\""), "{answer}");
    assert!(running.slow.finished.load(Ordering::SeqCst));
    tokio::time::timeout(HANG, &mut running.serving)
        .await
        .expect("the stop waited after the connection closed")
        .unwrap();
    assert_eq!(running.server.open_connections(), 0);
}

/// A TLS client trusting the authority in `tests/tls/{ca}`, offering HTTP/2
/// before HTTP/1.1 (the server must choose the latter).
fn tls_client(ca: &str) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(format!("{TLS_DIR}/{ca}")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

async fn handshake(addr: SocketAddr, ca: &str) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr).await?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(HANG, tls_client(ca).connect(name, tcp))
        .await
        .expect("the handshake hung")
}

/// Delivers a team creation over TLS, trusting `ca`: the whole answer.
async fn deliver_tls(addr: SocketAddr, ca: &str, id: &str) -> std::io::Result<String> {
    let mut stream = handshake(addr, ca).await?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    stream
        .write_all(b"POST /kustomer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
        .await?;
    stream.write_all(&raw_delivery(id)).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut answer))
        .await
        .expect("no answer")?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn handled(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 200") && answer.contains("\"outcome\":\"handled\"")
}

fn server_tls(dir: &str) -> Tls {
    Tls::from_pem_files(format!("{dir}/server.pem"), format!("{dir}/server.key")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_over_tls_is_handled_and_a_client_that_does_not_trust_it_is_turned_away() {
    let running = start(Server::new().with_tls(server_tls(TLS_DIR))).await;
    let answer = deliver_tls(running.addr, "ca.pem", "t1").await.unwrap();
    assert!(handled(&answer), "{answer}");
    // A client trusting another authority gives up in the handshake.
    let refused = handshake(running.addr, "other-ca.pem").await.unwrap_err();
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
    // Plain HTTP on the TLS port: no handshake, no delivery.
    let mut plain = running
        .open("POST /kustomer HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let answer = answer_then_close(&mut plain).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    running.open_connections(0).await;
    running.handshakes_failed(2).await;
    let answer = deliver_tls(running.addr, "ca.pem", "t2").await.unwrap();
    assert!(handled(&answer), "{answer}");
    assert_eq!(running.server.tls_handshakes_failed(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_served_its_dates_told_and_clients_refuse_it() {
    let tls = Tls::from_pem_files(
        format!("{TLS_DIR}/expired.pem"),
        format!("{TLS_DIR}/server.key"),
    )
    .unwrap();
    let validity = tls.validity().unwrap();
    assert_eq!(validity, dates(EXPIRED_PEM));
    assert!(!validity.contains(std::time::SystemTime::now()));
    assert_eq!(validity.remaining(std::time::SystemTime::now()), None);
    let running = start(Server::new().with_tls(tls)).await;
    // Even a client that trusts it as its own authority.
    let refused = handshake(running.addr, "expired.pem").await.unwrap_err();
    assert!(
        refused.to_string().contains("certificate expired"),
        "{refused}"
    );
    running.handshakes_failed(1).await;
    running.open_connections(0).await;
    // For a `/metrics` endpoint.
    let text = running.server.prometheus();
    for line in [
        "kustomer_webhooks_tls_handshakes_failed_total 1\n",
        "kustomer_webhooks_tls_certificate_not_before_timestamp_seconds 1735689600\n",
        "kustomer_webhooks_tls_certificate_not_after_timestamp_seconds 1743465600\n",
        "# TYPE kustomer_webhooks_tls_certificate_not_after_timestamp_seconds gauge\n",
        "kustomer_webhooks_connections_open 0\n",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_sends_no_hello_is_closed_in_time_and_holds_up_no_stop() {
    let running = start(
        Server::new()
            .with_head_timeout(Duration::from_secs(1))
            .with_tls(server_tls(TLS_DIR)),
    )
    .await;
    let mut silent = running.open("").await;
    running.open_connections(1).await;
    assert_eq!(answer_then_close(&mut silent).await, "");
    running.open_connections(0).await;
    running.handshakes_failed(1).await;

    // Heads (and handshakes) may take two minutes; a stop does not wait.
    let mut running = start(
        Server::new()
            .with_head_timeout(Duration::from_secs(120))
            .with_tls(server_tls(TLS_DIR)),
    )
    .await;
    let mut silent = running.open("").await;
    running.open_connections(1).await;
    running.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(HANG, &mut running.serving)
        .await
        .expect("the stop waited for a handshake")
        .unwrap();
    assert_eq!(answer_then_close(&mut silent).await, "");
    assert_eq!(running.server.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_a_tls_connection_silent_in_its_handshake_makes_room() {
    // Handshakes may take two minutes: without room made, the delivery
    // would wait past the test's limit.
    let running = start(
        Server::new()
            .with_max_connections(2)
            .with_head_timeout(Duration::from_secs(120))
            .with_tls(server_tls(TLS_DIR)),
    )
    .await;
    let mut silent = running.open("").await;
    let _also = running.open("").await;
    running.open_connections(2).await;
    let answer = deliver_tls(running.addr, "ca.pem", "t9").await.unwrap();
    assert!(handled(&answer), "{answer}");
    assert_eq!(answer_then_close(&mut silent).await, "");
    assert_eq!(running.server.connections_closed_at_limit(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_the_certificate_and_a_bad_file_keeps_the_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let copy = |from: &str, to: &str| std::fs::copy(format!("{TLS_DIR}/{from}"), path(to)).unwrap();
    copy("server.pem", "server.pem");
    copy("server.key", "server.key");
    let tls = server_tls(dir.path().to_str().unwrap());
    assert_eq!(
        tls.files(),
        Some((path("server.pem").as_path(), path("server.key").as_path()))
    );
    assert!(!tls.reload().unwrap(), "nothing changed");
    assert_eq!(tls.validity(), Some(dates(SERVER_PEM)));
    let running = start(Server::new().with_tls(tls.clone())).await;
    assert!(handled(
        &deliver_tls(running.addr, "ca.pem", "r1").await.unwrap()
    ));

    // Files that cannot be used: an error naming them, the old certificate kept.
    copy("client.key", "server.key");
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("server.key does not go with the certificate in"),
        "{e}"
    );
    std::fs::write(path("server.pem"), "not a certificate\n").unwrap();
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e:?}");
    // Cut short (written half way): said in words, not bytes.
    let pem = std::fs::read_to_string(format!("{TLS_DIR}/server.pem")).unwrap();
    std::fs::write(path("server.pem"), &pem[..pem.len() / 2]).unwrap();
    let e = tls.reload().unwrap_err().to_string();
    assert!(
        e.ends_with("the file ends before \"-----END CERTIFICATE-----\" (cut short?)"),
        "{e}"
    );
    // A key the TLS library does not sign with (1024-bit RSA), with its
    // own certificate: not said to be another's key.
    copy("rsa1024.pem", "server.pem");
    copy("rsa1024.key", "server.key");
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::Unusable { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("cannot be used (the TLS library takes"),
        "{e}"
    );
    // An expired certificate (for the same key), while the one in use is
    // valid: clients would refuse it, so it is not swapped in.
    copy("expired.pem", "server.pem");
    copy("server.key", "server.key");
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::NotValidNow { .. }), "{e:?}");
    assert!(
        e.to_string().ends_with(
            "the certificate is not valid now (valid from 2025-01-01T00:00:00Z to \
             2025-04-01T00:00:00Z): clients would refuse it, so the one in use stays"
        ),
        "{e}"
    );
    // A key encrypted with a passphrase: said so.
    std::fs::write(
        path("server.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::NoKey { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("the key in it is encrypted with a passphrase"),
        "{e}"
    );
    std::fs::remove_file(path("server.key")).unwrap();
    let e = tls.reload().unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("reading {}", path("server.key").display())),
        "{e}"
    );
    assert!(handled(
        &deliver_tls(running.addr, "ca.pem", "r2").await.unwrap()
    ));
    assert_eq!(
        tls.validity(),
        Some(dates(SERVER_PEM)),
        "the dates of the one in use"
    );

    // Another certificate (the client's, from another authority): served
    // from the next handshake on.
    copy("client.pem", "server.pem");
    copy("client.key", "server.key");
    assert!(tls.reload().unwrap(), "a new certificate");
    assert_eq!(tls.validity(), Some(dates(CLIENT_PEM)), "its dates");
    let refused = handshake(running.addr, "ca.pem").await.unwrap_err();
    assert!(
        refused.to_string().contains("invalid peer certificate"),
        "{refused}"
    );
    // And back.
    copy("server.pem", "server.pem");
    copy("server.key", "server.key");
    assert!(tls.reload().unwrap());
    assert_eq!(tls.validity(), Some(dates(SERVER_PEM)));
    assert!(handled(
        &deliver_tls(running.addr, "ca.pem", "r3").await.unwrap()
    ));
}

/// A certificate's dates (`openssl x509 -noout -dates`), in seconds since
/// 1970.
fn dates((not_before, not_after): (u64, u64)) -> Validity {
    let at = |secs| std::time::UNIX_EPOCH + Duration::from_secs(secs);
    Validity {
        not_before: at(not_before),
        not_after: at(not_after),
    }
}

/// `tests/tls/server.pem`: Dec 2 22:40:26 2026 GMT to Nov 8 22:40:26 2126 GMT.
const SERVER_PEM: (u64, u64) = (1_796_251_226, 4_949_851_226);
/// `tests/tls/client.pem`: Dec 3 06:39:51 2026 GMT to Nov 9 06:39:51 2126 GMT.
const CLIENT_PEM: (u64, u64) = (1_796_279_991, 4_949_879_991);
/// `tests/tls/expired.pem`: Jan 1 00:00:00 2025 GMT to Apr 1 00:00:00 2025 GMT.
const EXPIRED_PEM: (u64, u64) = (1_735_689_600, 1_743_465_600);

#[test]
fn a_chain_is_valid_from_its_latest_start_to_its_earliest_end() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str| std::fs::read_to_string(format!("{TLS_DIR}/{name}")).unwrap();
    // The server's certificate, then an authority issued hours after it
    // and expiring hours after it.
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, read("server.pem") + &read("client-ca.pem")).unwrap();
    let tls = Tls::from_pem_files(&chain, format!("{TLS_DIR}/server.key")).unwrap();
    let validity = tls.validity().unwrap();
    let (server, authority) = (dates(SERVER_PEM), dates(CLIENT_PEM));
    assert_eq!(validity.not_before, authority.not_before, "the later start");
    assert_eq!(validity.not_after, server.not_after, "the earlier end");

    let second = Duration::from_secs(1);
    assert!(validity.contains(authority.not_before));
    assert!(validity.contains(server.not_after));
    assert!(
        !validity.contains(server.not_before),
        "before the authority's start"
    );
    assert!(!validity.contains(server.not_after + second));
    assert_eq!(
        validity.remaining(server.not_after - 90 * second),
        Some(90 * second)
    );
    assert_eq!(validity.remaining(server.not_after + second), None);
}

#[test]
fn tls_files_that_cannot_be_used_are_named() {
    let missing = Tls::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert_eq!(
        missing.to_string(),
        "reading /nonexistent/cert.pem: No such file or directory (os error 2)"
    );
    let no_key = Tls::from_pem_files(
        format!("{TLS_DIR}/server.pem"),
        format!("{TLS_DIR}/server.pem"),
    )
    .unwrap_err();
    assert!(matches!(no_key, TlsError::NoKey { .. }), "{no_key:?}");
    assert!(
        no_key
            .to_string()
            .contains("server.pem: no PEM private key in it"),
        "{no_key}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rustls_configuration_of_ones_own_is_served_with_http_1_1() {
    use kustomer_webhooks::axum::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let chain = CertificateDer::pem_file_iter(format!("{TLS_DIR}/server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS_DIR}/server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    // HTTP/2 alone, which the server does not speak: replaced.
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = Tls::from_config(config);
    assert_eq!(tls.files(), None);
    assert!(!tls.reload().unwrap(), "nothing to read again");
    assert_eq!(tls.validity(), None, "its certificates are its own");
    let running = start(Server::new().with_tls(tls)).await;
    // `deliver_tls` checks that HTTP/1.1 was chosen.
    let answer = deliver_tls(running.addr, "ca.pem", "c1").await.unwrap();
    assert!(handled(&answer), "{answer}");
}
