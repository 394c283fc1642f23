//! A `redis-server` of a test's or benchmark's own, on a free loopback port.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TLS_DIR;

/// How a Redis started here listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// Plain TCP: `redis://`.
    Tcp,
    /// TLS only, with the server certificate of [`TLS_DIR`]: `rediss://`.
    Tls {
        /// Whether a client must show a certificate of `client-ca.pem`'s
        /// (`tls-auth-clients yes`).
        client_certificate: bool,
    },
}

/// A Redis for one test or benchmark: its URL, and the server process when
/// it was started here (killed when dropped).
pub struct Redis {
    /// `redis://127.0.0.1:PORT/` (`rediss://` over TLS), or the external
    /// one.
    pub url: String,
    /// The server process and its port, when it was started here.
    pub server: Option<(Child, u16)>,
    /// How it listens.
    listen: Listen,
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some((server, _)) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Redis {
    /// Stops the server this test started: the store must then fail, not
    /// hang or panic.
    pub fn stop(&mut self) {
        let (server, _) = self.server.as_mut().expect("a server this test started");
        server.kill().unwrap();
        server.wait().unwrap();
    }

    /// Starts the stopped server again, on the same port (empty: it keeps
    /// nothing on disk).
    pub fn restart(&mut self) {
        let (server, port) = self.server.as_mut().expect("a server this test started");
        *server = redis_server(*port, self.listen).expect("redis-server started before");
    }
}

/// `redis-server` on `port` of the loopback, listening once this returns.
fn redis_server(port: u16, listen: Listen) -> std::io::Result<Child> {
    let mut command = Command::new("redis-server");
    command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    match listen {
        Listen::Tcp => command.args(["--port", &port.to_string()]),
        Listen::Tls { client_certificate } => command
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &format!("{TLS_DIR}/server.pem")])
            .args(["--tls-key-file", &format!("{TLS_DIR}/server.key")])
            .args(["--tls-ca-cert-file", &format!("{TLS_DIR}/client-ca.pem")])
            .args([
                "--tls-auth-clients",
                if client_certificate { "yes" } else { "no" },
            ]),
    };
    let server = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// Starts a Redis for the test, or uses the one at
/// `KUSTOMER_WEBHOOKS_TEST_REDIS_URL`; `None` (with a message) where none can
/// be had outside CI, a panic under CI (`CI` set).
pub fn redis() -> Option<Redis> {
    if let Ok(url) = std::env::var("KUSTOMER_WEBHOOKS_TEST_REDIS_URL") {
        return Some(Redis {
            url,
            server: None,
            listen: Listen::Tcp,
        });
    }
    start(Listen::Tcp)
}

/// Starts a Redis for the test that speaks TLS only (`rediss://`, its
/// certificate issued by [`TLS_DIR`]'s `ca.pem`); `None` (with a message)
/// where none can be had outside CI, a panic under CI.
pub fn redis_tls(client_certificate: bool) -> Option<Redis> {
    start(Listen::Tls { client_certificate })
}

fn start(listen: Listen) -> Option<Redis> {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let scheme = match listen {
        Listen::Tcp => "redis",
        Listen::Tls { .. } => "rediss",
    };
    match redis_server(port, listen) {
        Ok(server) => Some(Redis {
            url: format!("{scheme}://127.0.0.1:{port}/"),
            server: Some((server, port)),
            listen,
        }),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "redis-server could not be started ({e}); install it: apt-get install redis-server"
            )
        }
        Err(e) => {
            eprintln!(
                "skipped: redis-server could not be started ({e}); install it \
                 (apt-get install redis-server) or set KUSTOMER_WEBHOOKS_TEST_REDIS_URL"
            );
            None
        }
    }
}
