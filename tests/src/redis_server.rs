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
    /// Its working directory (where a replica writes what it receives),
    /// when it was started here.
    dir: Option<tempfile::TempDir>,
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
    /// `redis-cli` on it: what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        match &self.server {
            Some((_, port)) => cli(*port, self.listen, args),
            None => {
                let out = std::process::Command::new("redis-cli")
                    .args(["-u", &self.url])
                    .args(args)
                    .output()
                    .expect("redis-cli runs");
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr)
            }
        }
    }

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
        let dir = self
            .dir
            .as_ref()
            .expect("a server this test started")
            .path();
        *server = redis_server(*port, self.listen, dir).expect("redis-server started before");
    }
}

/// `redis-server` on `port` of the loopback, working in `dir`, listening
/// once this returns.
fn redis_server(port: u16, listen: Listen, dir: &std::path::Path) -> std::io::Result<Child> {
    let server = server_command(port, listen, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    listening(port, Instant::now() + Duration::from_secs(10));
    Ok(server)
}

/// Waits until something listens on `port` of the loopback; a panic past
/// `deadline`.
fn listening(port: u16, deadline: Instant) {
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The major version of the `redis-server` on the path (0 if it cannot be
/// told).
fn major_version() -> u32 {
    static VERSION: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new("redis-server").arg("--version").output();
        out.ok()
            .and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let v = text.split("v=").nth(1)?.split('.').next()?.parse().ok()?;
                Some(v)
            })
            .unwrap_or(0)
    })
}

/// `redis://` or `rediss://`.
fn scheme(listen: Listen) -> &'static str {
    match listen {
        Listen::Tcp => "redis",
        Listen::Tls { .. } => "rediss",
    }
}

/// The `redis-server` command for `port`, keeping nothing on disk but
/// what a replica receives, in `dir`.
fn server_command(port: u16, listen: Listen, dir: &std::path::Path) -> Command {
    let mut command = Command::new("redis-server");
    command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    command.arg("--dir").arg(dir);
    // `DEBUG SLEEP`, to hold the server still for a moment: from Redis 7,
    // for local clients only when asked for (before, always).
    if major_version() >= 7 {
        command.args(["--enable-debug-command", "local"]);
    }
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
    command
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
            dir: None,
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
    let dir = tempfile::tempdir().unwrap();
    match redis_server(port, listen, dir.path()) {
        Ok(server) => Some(Redis {
            url: format!("{}://127.0.0.1:{port}/", scheme(listen)),
            server: Some((server, port)),
            listen,
            dir: Some(dir),
        }),
        Err(e) => not_started(&e),
    }
}

/// No Redis could be started (`e`): a panic under CI, where one must be;
/// elsewhere `None`, with a message, so the test is skipped.
fn not_started<T>(e: &dyn std::fmt::Display) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("redis-server could not be started ({e}); install it: apt-get install redis-server");
    }
    eprintln!(
        "skipped: redis-server could not be started ({e}); install it \
         (apt-get install redis-server) or set KUSTOMER_WEBHOOKS_TEST_REDIS_URL"
    );
    None
}

/// A Redis Cluster of three primaries for one test, on loopback (each
/// node's cluster bus, on its port + 10000, free too); killed when dropped.
pub struct RedisCluster {
    /// `redis://127.0.0.1:PORT/` of each node.
    pub urls: Vec<String>,
    servers: Vec<Child>,
    ports: Vec<u16>,
    listen: Listen,
    /// The nodes' cluster configuration files.
    dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Stops node `i`.
    pub fn stop(&mut self, i: usize) {
        self.servers[i].kill().unwrap();
        self.servers[i].wait().unwrap();
    }

    /// Starts node `i` again on its port, with its cluster configuration
    /// (its id and slots), so it rejoins the cluster.
    pub fn restart(&mut self, i: usize) {
        self.servers[i] = cluster_node(self.ports[i], self.listen, self.dir.path())
            .spawn()
            .expect("redis-server started before");
    }
}

/// The command of a cluster node on `port`, its configuration in `dir`.
fn cluster_node(port: u16, listen: Listen, dir: &std::path::Path) -> Command {
    let mut command = server_command(port, listen, dir);
    if let Listen::Tls { .. } = listen {
        // The nodes speak TLS to each other too: each shows the client
        // certificate and trusts both authorities (the bundle's).
        command
            .args(["--tls-cluster", "yes"])
            .args(["--tls-ca-cert-file", &format!("{TLS_DIR}/authorities.pem")])
            .args(["--tls-client-cert-file", &format!("{TLS_DIR}/client.pem")])
            .args(["--tls-client-key-file", &format!("{TLS_DIR}/client.key")]);
    }
    command
        .args(["--cluster-enabled", "yes"])
        .arg("--cluster-config-file")
        .arg(dir.join(format!("nodes-{port}.conf")))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A loopback port that is free, and whose cluster bus port (+ 10000) is
/// free too, neither of them one of the `taken` nodes' ports.
fn cluster_port(taken: &[u16]) -> u16 {
    loop {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        let clashes = taken.iter().any(|&other| {
            [other, other + 10_000]
                .iter()
                .any(|p| [port, port + 10_000].contains(p))
        });
        if port < 55_000 && !clashes && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Starts a Redis Cluster of three primaries (every slot assigned, the
/// cluster `ok` on every node when this returns), listening as `listen`
/// says (over TLS, the nodes speak TLS to each other too); `None` (with a
/// message) where none can be had outside CI, a panic under CI.
pub fn redis_cluster(listen: Listen) -> Option<RedisCluster> {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = RedisCluster {
        urls: Vec::new(),
        servers: Vec::new(),
        ports: Vec::new(),
        listen,
        dir,
    };
    for _ in 0..3 {
        let port = cluster_port(&cluster.ports);
        let server = cluster_node(port, listen, cluster.dir.path()).spawn();
        match server {
            Ok(server) => cluster.servers.push(server),
            Err(e) => return not_started(&e),
        }
        cluster.ports.push(port);
        cluster
            .urls
            .push(format!("{}://127.0.0.1:{port}/", scheme(listen)));
    }
    let cli = |port: u16, args: &[&str]| cli_command(port, listen).args(args).output();
    let ports = cluster.ports.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    for &port in &ports {
        listening(port, deadline);
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut create = vec!["--cluster", "create"];
    create.extend(nodes.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    let created = match cli(ports[0], &create) {
        Ok(out) => out,
        Err(e) => return not_started(&format!("redis-cli: {e}")),
    };
    assert!(
        created.status.success(),
        "redis-cli --cluster create: {}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    for &port in &ports {
        loop {
            let info = cli(port, &["cluster", "info"]).unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster is not ok at {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Some(cluster)
}

/// The name the Sentinel of [`redis_sentinel`] monitors its primary by.
pub const SENTINEL_SERVICE: &str = "webhooks";

/// A primary, its replica and a Redis Sentinel monitoring them, for one
/// test, on loopback; killed when dropped.
pub struct RedisSentinel {
    /// `redis://127.0.0.1:PORT/` of the Sentinel (`rediss://` over TLS).
    pub url: String,
    /// The first primary (`[0]`) and its replica (`[1]`).
    pub servers: [Redis; 2],
    sentinel: Child,
    port: u16,
    listen: Listen,
    /// The Sentinel's configuration, which it rewrites.
    dir: tempfile::TempDir,
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}

impl RedisSentinel {
    /// `redis-cli` on the Sentinel.
    pub fn sentinel_cli(&self, args: &[&str]) -> String {
        cli(self.port, self.listen, args)
    }

    /// The Sentinel's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the Sentinel (the primary and replica go on).
    pub fn stop_sentinel(&mut self) {
        self.sentinel.kill().unwrap();
        self.sentinel.wait().unwrap();
    }

    /// Starts the stopped Sentinel again, on its port, with the
    /// configuration it had rewritten; returns once it listens.
    pub fn restart_sentinel(&mut self) {
        self.sentinel = sentinel_command(&self.dir.path().join("sentinel.conf"))
            .spawn()
            .expect("redis-server --sentinel started before");
        listening(self.port, Instant::now() + Duration::from_secs(10));
    }

    /// The port of the primary the Sentinel names now.
    pub fn primary_port(&self) -> u16 {
        let answer = self.sentinel_cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE]);
        answer
            .lines()
            .nth(1)
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("the Sentinel named no primary: {answer}"))
    }
}

/// `redis-cli` for the server on `port` of the loopback, speaking TLS
/// with the test certificates where `listen` says.
fn cli_command(port: u16, listen: Listen) -> Command {
    let mut command = Command::new("redis-cli");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Listen::Tls { .. } = listen {
        command
            .args(["--tls", "--cacert", &format!("{TLS_DIR}/ca.pem")])
            .args(["--cert", &format!("{TLS_DIR}/client.pem")])
            .args(["--key", &format!("{TLS_DIR}/client.key")]);
    }
    command.stdin(Stdio::null());
    command
}

/// `redis-cli` on `port` of the loopback: its output (a panic where it
/// cannot run).
fn cli(port: u16, listen: Listen, args: &[&str]) -> String {
    let out = cli_command(port, listen)
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Starts a primary, a replica of it and a Redis Sentinel monitoring them
/// as [`SENTINEL_SERVICE`] (a quorum of one; the primary is down for it
/// after one second without an answer), all listening as `listen` says (a
/// client certificate is never required); returns once the replica is in
/// sync and the Sentinel knows it. `None` (with a message) where none can
/// be had outside CI, a panic under CI.
pub fn redis_sentinel(listen: Listen) -> Option<RedisSentinel> {
    let listen = match listen {
        Listen::Tcp => Listen::Tcp,
        Listen::Tls { .. } => Listen::Tls {
            client_certificate: false,
        },
    };
    let (primary, replica) = (start(listen)?, start(listen)?);
    let port_of = |redis: &Redis| redis.server.as_ref().map(|(_, port)| *port).unwrap();
    let (primary_port, replica_port) = (port_of(&primary), port_of(&replica));
    if let Listen::Tls { .. } = listen {
        // The replica reaches its primary over TLS, trusting its authority.
        for port in [primary_port, replica_port] {
            cli(port, listen, &["CONFIG", "SET", "tls-replication", "yes"]);
            let bundle = format!("{TLS_DIR}/authorities.pem");
            cli(
                port,
                listen,
                &["CONFIG", "SET", "tls-ca-cert-file", &bundle],
            );
        }
    }
    cli(
        replica_port,
        listen,
        &["REPLICAOF", "127.0.0.1", &primary_port.to_string()],
    );

    let dir = tempfile::tempdir().unwrap();
    let port = cluster_port(&[primary_port, replica_port]);
    let mut config = match listen {
        Listen::Tcp => format!("port {port}\n"),
        Listen::Tls { .. } => format!(
            "port 0\ntls-port {port}\ntls-cert-file {TLS_DIR}/server.pem\n\
             tls-key-file {TLS_DIR}/server.key\ntls-ca-cert-file {TLS_DIR}/authorities.pem\n\
             tls-auth-clients no\ntls-replication yes\n"
        ),
    };
    config += &format!(
        "bind 127.0.0.1\n\
         sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary_port} 1\n\
         sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
         sentinel failover-timeout {SENTINEL_SERVICE} 10000\n"
    );
    let file = dir.path().join("sentinel.conf");
    std::fs::write(&file, config).unwrap();
    let sentinel = match sentinel_command(&file).spawn() {
        Ok(sentinel) => sentinel,
        Err(e) => return not_started(&e),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    listening(port, deadline);
    let sentinel = RedisSentinel {
        url: format!("{}://127.0.0.1:{port}/", scheme(listen)),
        servers: [primary, replica],
        sentinel,
        port,
        listen,
        dir,
    };
    loop {
        let in_sync =
            cli(replica_port, listen, &["INFO", "replication"]).contains("master_link_status:up");
        let known = sentinel
            .sentinel_cli(&["SENTINEL", "REPLICAS", SENTINEL_SERVICE])
            .contains(&replica_port.to_string());
        if in_sync && known {
            return Some(sentinel);
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not sync, or the Sentinel did not find it"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `redis-server FILE --sentinel`, its output dropped.
fn sentinel_command(file: &std::path::Path) -> Command {
    let mut command = Command::new("redis-server");
    command
        .arg(file)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}
