//! `kustomer_webhooks::axum::Server` over real TCP on loopback: the time
//! limit on request heads, the limit on connections, and a graceful stop
//! that finishes the delivery in progress and is held up by no client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kustomer_webhooks::axum::Server;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::testing::Delivery;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{Dispatcher, State, TeamCreate};
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
}

async fn team(_: TeamCreate, slow: State<Arc<Slow>>) {
    slow.started.notify_one();
    let wait = *slow.wait.lock().unwrap();
    tokio::time::sleep(wait).await;
    slow.finished.store(true, Ordering::SeqCst);
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
    let delivery = Delivery::sample("kustomer.team.create")
        .unwrap()
        .set("/id", id)
        .signed_with(TOKEN);
    let mut request = reqwest::Client::builder()
        .timeout(HANG)
        .build()
        .unwrap()
        .post(format!("http://{addr}/kustomer"))
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

    async fn open_connections(&self, n: usize) {
        tokio::time::timeout(HANG, async {
            while self.server.open_connections() != n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{:?}, never {n} open", self.server));
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_connections_are_served_at_once() {
    let running = start(Server::new().with_max_connections(1)).await;
    assert_eq!(running.server.max_connections(), 1);
    // An idle connection takes the only slot.
    let held = running.open("").await;
    running.open_connections(1).await;
    // A delivery waits for it, then is handled.
    let delivery = tokio::spawn(deliver(running.addr, "a2"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!delivery.is_finished(), "served past the limit");
    assert!(!running.slow.finished.load(Ordering::SeqCst));
    drop(held);
    assert_eq!(delivery.await.unwrap(), (200, "handled".to_owned()));
    running.open_connections(0).await;
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
    running.stop.take().unwrap().send(()).unwrap();
    // The default grace (one second) would have closed it by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!running.serving.is_finished(), "closed within its grace");
    // The rest of the delivery comes within the grace: it is served, then
    // the connection is closed and the stop completes.
    let delivery = Delivery::sample("kustomer.team.create")
        .unwrap()
        .set("/id", "a4")
        .signed_with(TOKEN);
    let body = delivery.body();
    let mut rest = String::new();
    for (name, value) in delivery.headers() {
        rest.push_str(&format!("{name}: {value}\r\n"));
    }
    rest.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    half.write_all(rest.as_bytes()).await.unwrap();
    half.write_all(&body).await.unwrap();
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
