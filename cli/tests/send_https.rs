//! `send` to an `https://` receiver, and to one that never answers.
//!
//! The receiver is the library's own axum router behind a TLS listener, its
//! certificate (for `localhost` and `127.0.0.1`) issued by a test authority
//! whose files are in the workspace's `tests/tls/` (with another authority's, which did not
//! issue it) and valid until 2126. The tests need
//! the `tls` feature (on by default).
#![cfg(feature = "tls")]

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kustomer_webhooks::receiver::{Counters, Receiver};
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{CustomerEvent, Dispatcher};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const BIN: &str = env!("CARGO_BIN_EXE_kustomer-webhooks");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const TLS: &str = kustomer_webhooks_tests::TLS_DIR;
const TOKEN: &str = "https-t0ken";

/// Accepts TCP connections and completes the TLS handshake on each; a
/// client that gives up on the handshake (it does not trust the
/// certificate) is dropped and the next connection accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(stream) = self.tls.accept(tcp).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

static CUSTOMER_EVENTS: AtomicUsize = AtomicUsize::new(0);

async fn on_customer(_: CustomerEvent) {
    CUSTOMER_EVENTS.fetch_add(1, Ordering::SeqCst);
}

/// A receiver on `https://localhost:PORT/`, served from a thread of its own
/// for the rest of the test process: its port and counters.
fn start_https_receiver() -> (u16, Arc<Counters>) {
    let certs = CertificateDer::pem_file_iter(format!("{TLS}/server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS}/server.key")).unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let dispatcher = Dispatcher::builder().handler(on_customer).build().unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN));
    let counters = receiver.counters();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tcp = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
    };
    std::thread::spawn(move || {
        runtime.block_on(async {
            axum::serve(listener, kustomer_webhooks::axum::router(receiver)).await
        })
    });
    (port, counters)
}

fn send(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("send")
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

/// `send` on a system without root certificates (where the TLS library
/// looks for them, nothing is found).
fn send_without_system_roots(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("send")
        .args(args)
        .env("SSL_CERT_FILE", "/nonexistent/ca-certificates.crt")
        .env("SSL_CERT_DIR", "/nonexistent")
        .current_dir(ROOT)
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn send_posts_over_https_to_a_receiver_it_trusts_and_refuses_one_it_does_not() {
    let (port, counters) = start_https_receiver();
    let url = format!("https://localhost:{port}/");
    let ca = format!("{TLS}/ca.pem");

    // Trusting the test authority: every sample is delivered, verified and
    // dispatched, the two customer events to their typed handler.
    let ok = send(&[
        "--url",
        &url,
        "--token",
        TOKEN,
        "--ca-cert",
        &ca,
        "schema/samples",
    ]);
    let stdout = text(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", text(&ok.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("200 ")), "{stdout}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"outcome\":\"handled\""))
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(counters.accepted.load(Ordering::SeqCst), 10);
    assert_eq!(CUSTOMER_EVENTS.load(Ordering::SeqCst), 2);

    // By the address the certificate also names (a retry of a delivered
    // event: acknowledged as a duplicate).
    let by_ip = send(&[
        "--url",
        &format!("https://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "--ca-cert",
        &ca,
        "schema/samples/kustomer.team.create.json",
    ]);
    let by_ip = text(&by_ip.stdout);
    assert!(
        by_ip.starts_with("200 ") && by_ip.contains("\"outcome\":\"duplicate\""),
        "{by_ip}"
    );

    // A wrong token still reaches the receiver, which answers 401.
    let forged = send(&[
        "--url",
        &url,
        "--token",
        "wrong",
        "--ca-cert",
        &ca,
        "schema/samples/kustomer.team.update.json",
    ]);
    assert_eq!(forged.status.code(), Some(1));
    assert!(
        text(&forged.stdout).starts_with("401 "),
        "{}",
        text(&forged.stdout)
    );

    // Trusting only another authority, the certificate is not trusted:
    // nothing is delivered, and the error says why.
    let untrusted = send_without_system_roots(&[
        "--url",
        &url,
        "--token",
        TOKEN,
        "--ca-cert",
        &format!("{TLS}/other-ca.pem"),
        "schema/samples/kustomer.team.update.json",
    ]);
    let stderr = text(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(1), "{stderr}");
    assert!(untrusted.stdout.is_empty(), "{}", text(&untrusted.stdout));
    assert!(
        stderr.starts_with(&format!(
            "error: posting schema/samples/kustomer.team.update.json to {url}: "
        )) && stderr.contains("invalid peer certificate: UnknownIssuer")
            && stderr.contains("does not trust; give that authority's certificate"),
        "{stderr}"
    );

    // With no root certificates on the system, an https:// URL is refused
    // before anything is sent, saying what to do; the authority given with
    // --ca-cert is enough on its own.
    let no_roots = send_without_system_roots(&[
        "--url",
        &url,
        "--token",
        TOKEN,
        "schema/samples/kustomer.team.update.json",
    ]);
    let stderr = text(&no_roots.stderr);
    assert_eq!(no_roots.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: found no root certificates on this system")
            && stderr.contains("pass --ca-cert FILE"),
        "{stderr}"
    );
    let own_roots = send_without_system_roots(&[
        "--url",
        &url,
        "--token",
        TOKEN,
        "--ca-cert",
        &ca,
        "schema/samples/kustomer.team.update.json",
    ]);
    assert!(
        text(&own_roots.stdout).starts_with("200 "),
        "{}",
        text(&own_roots.stderr)
    );

    assert_eq!(counters.accepted.load(Ordering::SeqCst), 10);
    assert_eq!(counters.duplicate.load(Ordering::SeqCst), 2);
    assert_eq!(counters.rejected.load(Ordering::SeqCst), 1);
}

#[test]
fn a_ca_cert_that_is_not_a_certificate_is_an_error_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let cut_short = dir.path().join("cut.pem");
    let whole = std::fs::read_to_string(format!("{TLS}/ca.pem")).unwrap();
    std::fs::write(&cut_short, &whole[..whole.len() / 2]).unwrap();
    for (path, want) in [
        (&not_pem, "no PEM certificate in it"),
        (
            &cut_short,
            "the file ends before \"-----END CERTIFICATE-----\" (cut short?)",
        ),
        (&missing, "reading"),
    ] {
        let out = send(&[
            "--url",
            // Nothing listens on port 9 (discard) here; the error must come
            // before any connection is tried.
            "https://127.0.0.1:9/",
            "--token",
            TOKEN,
            "--ca-cert",
            path.to_str().unwrap(),
            "schema/samples/kustomer.team.create.json",
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(path.to_str().unwrap()) && stderr.contains(want),
            "{stderr}"
        );
        assert!(!stderr.contains("posting"), "{stderr}");
    }
}

#[test]
fn a_receiver_that_never_answers_counts_as_failed_and_the_next_payload_is_sent() {
    // Accepts connections, reads, and never replies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    // An http:// URL needs no root certificates.
    let out = send_without_system_roots(&[
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "--timeout",
        "1",
        "schema/samples/kustomer.team.create.json",
        "schema/samples/kustomer.team.update.json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, file) in lines.iter().zip(["team.create", "team.update"]) {
        assert!(
            line.starts_with("--- schema/samples/kustomer.")
                && line.contains(file)
                && line.contains("no reply within 1s"),
            "{line}"
        );
    }
}

#[test]
fn the_timeout_must_be_whole_seconds_of_at_least_one() {
    for (value, want) in [
        ("0", "at least 1 second"),
        ("1.5", "expected whole seconds"),
    ] {
        let out = send(&[
            "--url",
            "http://127.0.0.1:9/",
            "--token",
            TOKEN,
            "--timeout",
            value,
            "schema/samples",
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}

/// Reads one HTTP/1.1 request (its head, and a body of its
/// `content-length`) from `stream`.
fn read_request(stream: &mut std::net::TcpStream) {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn a_connection_closed_without_an_answer_fails_that_payload_and_the_next_is_sent() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().flatten().enumerate() {
            let mut stream = stream;
            read_request(&mut stream);
            let answer: Vec<u8> = match i {
                // The first is dropped, unanswered.
                0 => continue,
                // A page over several lines, with a terminal escape in it.
                1 => {
                    let body = "<html>\nforged line\x1b[2K\r\n</html>\n";
                    format!(
                        "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                }
                2 => b"HTTP/1.1 307 Temporary Redirect\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                // A redirect with a page, as proxies send them.
                _ => {
                    let body = "<html><title>301 Moved Permanently</title></html>";
                    format!(
                        "HTTP/1.1 301 Moved Permanently\r\nlocation: https://hooks.example/k\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                }
            };
            let _ = stream.write_all(&answer);
        }
    });
    let out = send_without_system_roots(&[
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "schema/samples/kustomer.team.create.json",
        "schema/samples/kustomer.team.update.json",
        "schema/samples/kustomer.user.create.json",
        "schema/samples/kustomer.user.update.json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("--- schema/samples/kustomer.team.create.json no reply: ")
            && lines[0].ends_with("(Kustomer would count it failed and retry)"),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        "502 schema/samples/kustomer.team.update.json <html>\\u{a}forged line\\u{1b}[2K\\u{d}\\u{a}</html>"
    );
    assert_eq!(
        lines[2],
        "307 schema/samples/kustomer.user.create.json (Location: https://elsewhere.example/)"
    );
    assert_eq!(
        lines[3],
        "301 schema/samples/kustomer.user.update.json (Location: https://hooks.example/k) \
         <html><title>301 Moved Permanently</title></html>"
    );
}

/// A receiver whose address takes no connection (a firewall dropping the
/// attempts) is out of reach: the run ends at the first payload, said as
/// such, rather than each payload waiting out its timeout as "no reply".
#[test]
fn a_receiver_that_takes_no_connection_ends_the_run_as_out_of_reach() {
    // A listener whose queue of connections is full drops new attempts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (listener, port) = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    });
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            std::time::Duration::from_millis(300),
        ) {
            Ok(stream) => held.push(stream),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "the listener's queue never filled");
    let out = send_without_system_roots(&[
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "--timeout",
        "2",
        "schema/samples/kustomer.team.create.json",
        "schema/samples/kustomer.team.update.json",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("posting schema/samples/kustomer.team.create.json to http://127.0.0.1:")
            && stderr.contains("no connection within 1s (nothing answers at that address"),
        "{stderr}"
    );
    drop((held, listener));
}

#[test]
fn a_long_reply_is_cut_short() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            read_request(&mut stream);
            // Endless: a body with no length, until the client goes.
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let chunk = [b'x'; 8192];
            while stream.write_all(&chunk).is_ok() {}
        }
    });
    let out = send_without_system_roots(&[
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "schema/samples/kustomer.team.create.json",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let line = stdout.lines().next().unwrap();
    assert!(
        line.starts_with("200 schema/samples/kustomer.team.create.json xxx"),
        "{line}"
    );
    assert!(line.ends_with("x …"), "{line}");
    assert!(line.len() < 2200, "{}", line.len());
}

/// A custom header given twice would reach the receiver as two values, of
/// which it judges one: refused before anything is sent.
#[test]
fn a_header_given_twice_is_refused_before_anything_is_sent() {
    let out = send(&[
        "--url",
        "http://127.0.0.1:9/",
        "--token",
        TOKEN,
        "--header",
        "x-source=one",
        "--header",
        "X-Source=two",
        "schema/samples",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "error: the header X-Source is given twice (--header or --header-file): a receiver takes \
         one of its values, so give it once\n"
    );
    assert!(out.stdout.is_empty());
}

/// `--remove-delivered` that cannot remove a delivered file fails the run:
/// a script trusting its success would send the file again. The file is
/// made immutable with `chattr +i` (which even root cannot remove); where
/// the file system or the tool does not allow it, there is nothing to test.
#[test]
fn a_delivered_file_that_cannot_be_removed_fails_the_run() {
    use std::io::Write;
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("kustomer.team.create.json");
    std::fs::copy(
        format!("{ROOT}/schema/samples/kustomer.team.create.json"),
        &file,
    )
    .unwrap();
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(&file)
        .output()
        .is_ok_and(|o| o.status.success());
    if !immutable {
        eprintln!("chattr +i is not available here: not tested");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            read_request(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{\"outcome\":\"handled\"}",
            );
        }
    });
    let out = send(&[
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--token",
        TOKEN,
        "--remove-delivered",
        dir.path().to_str().unwrap(),
    ]);
    let _ = Command::new("chattr").arg("-i").arg(&file).status();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.starts_with("200 "), "{stdout}{stderr}");
    assert!(
        stderr.contains("error: could not remove ") && stderr.contains("do not send it again"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
}
