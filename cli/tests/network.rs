//! `demo`, `serve` and `send`, run as real processes on loopback.

use std::io::{BufRead, BufReader};
use std::process::{ChildStderr, Command, Stdio};

mod common;
use common::{BIN, ROOT};

#[test]
fn demo_delivers_and_reports_every_case() {
    let out = Command::new(BIN)
        .arg("demo")
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "200 kustomer.team.update",
        "200 kustomer.customer.create again (a retry)",
        "\"outcome\":\"duplicate\"",
        "401 a tampered body, original signature",
        "400 a malformed body",
        "\"pointer\":\"/data/attributes/name\"",
        "200 kustomer.customer.update rev 2, arriving late",
        "\"outcome\":\"stale\"",
        "200 kustomer.customer.update rev 4, drifted",
        "200 kustomer.tag.create, an event without a model",
        "503 kustomer.conversation.update, the store down",
        "    kept as a dead letter: ",
        "200 the dead letter, replayed",
        "every delivery got the status it should",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    // One JSON line per dispatched event: the ten samples, the drifted
    // update, the tag event and the replayed dead letter; not the
    // duplicate, the stale update or the delivery while the store was down.
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13, "{stdout}");
    assert!(
        lines[..10]
            .iter()
            .all(|l| l["typed"] == true && l["drift"] == serde_json::json!([]))
    );
    assert_eq!(
        lines[10]["drift"],
        serde_json::json!([
            {"pointer": "/changes/attributes/rev/after", "expected": "integer", "found": "string"},
            {"pointer": "/data/attributes/rev", "expected": "integer", "found": "string"},
        ])
    );
    assert_eq!(lines[11]["event"], "kustomer.tag.create");
    assert_eq!(lines[11]["typed"], false);
    assert_eq!(lines[12]["event"], "kustomer.conversation.update");
    assert_eq!(lines[12]["id"], "608738af3c16f2a7c22a36f0");
    // The dead letter was removed once handled, and the demo's directory
    // with it.
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("    kept as a dead letter: "))
        .unwrap();
    let kept = std::path::Path::new(kept);
    assert!(
        !kept.exists() && !kept.parent().unwrap().exists(),
        "{kept:?}"
    );
}

struct Killed(std::process::Child);

impl Killed {
    /// Sends the process a SIGHUP.
    #[cfg(unix)]
    fn hang_up(&self) {
        self.signal("-HUP");
    }

    /// Sends the process a SIGTERM.
    #[cfg(unix)]
    fn terminate(&self) {
        self.signal("-TERM");
    }

    #[cfg(unix)]
    fn signal(&self, which: &str) {
        let sent = Command::new("kill")
            .args([which, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --addr 127.0.0.1:0` with `args` more, at the repository
/// root, its stdout piped: the process, its log (stderr) after the first
/// line, and the URL that line names.
fn start_serve(args: &[&str]) -> (Killed, BufReader<ChildStderr>, String) {
    let (child, log, url, _) = start_serve_logged(args);
    (child, log, url)
}

/// [`start_serve`], and the lines it logged before the one naming its URL.
fn start_serve_logged(args: &[&str]) -> (Killed, BufReader<ChildStderr>, String, Vec<String>) {
    start_serve_with_env(args, &[])
}

/// [`start_serve_logged`] with `env` set for `serve`.
fn start_serve_with_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Killed, BufReader<ChildStderr>, String, Vec<String>) {
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied());
    start_serving(serve)
}

/// Runs `serve` (the whole command given), at the repository root, its
/// stdout piped, until it logs its URL: as [`start_serve_logged`].
fn start_serving(serve: Command) -> (Killed, BufReader<ChildStderr>, String, Vec<String>) {
    start_serving_to(serve, Stdio::piped())
}

/// [`start_serving`] with its stdout given.
fn start_serving_to(
    mut serve: Command,
    stdout: impl Into<Stdio>,
) -> (Killed, BufReader<ChildStderr>, String, Vec<String>) {
    let child = serve
        .current_dir(ROOT)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut log = BufReader::new(child.0.stderr.take().unwrap());
    let mut before = Vec::new();
    let first = loop {
        let mut line = String::new();
        assert_ne!(
            log.read_line(&mut line).unwrap(),
            0,
            "serve ended: {before:?}"
        );
        if line.contains("receiving Kustomer webhooks") {
            break line;
        }
        before.push(line);
    };
    // The URL ends the line, or the message of a JSON line.
    let url = first.trim().trim_end_matches(['"', '}']);
    let url = url.rsplit(' ').next().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
        "{first}"
    );
    (child, log, url, before)
}

#[test]
fn send_posts_signed_payloads_to_serve() {
    let (mut server, mut log, url) = start_serve(&[
        "--token",
        "t0ken",
        "--token",
        "previous",
        "--header",
        "x-app=secret",
    ]);
    let stdout = server.0.stdout.take().unwrap();

    let send = |token: &str, header: &str, path: &str| {
        Command::new(BIN)
            .args([
                "send", "--url", &url, "--token", token, "--header", header, path,
            ])
            .current_dir(ROOT)
            .output()
            .unwrap()
    };
    let ok = send("t0ken", "x-app=secret", "schema/samples");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("200 ")).count(),
        10,
        "{text}"
    );
    // The second token is accepted too (rotation).
    let previous = send(
        "previous",
        "x-app=secret",
        "schema/samples/kustomer.team.create.json",
    );
    assert!(
        String::from_utf8_lossy(&previous.stdout).starts_with("200 "),
        "{}",
        String::from_utf8_lossy(&previous.stdout)
    );
    let bad = send(
        "wrong",
        "x-app=secret",
        "schema/samples/kustomer.team.create.json",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("401 "));
    let no_header = send(
        "t0ken",
        "x-other=1",
        "schema/samples/kustomer.team.update.json",
    );
    assert!(String::from_utf8_lossy(&no_header.stdout).starts_with("401 "));
    // Each rejection is logged on stderr, with its status and reason.
    for want in [
        "the signature does not match the body for any accepted token",
        "the x-app header is missing",
    ] {
        let mut line = String::new();
        log.read_line(&mut line).unwrap();
        assert!(
            line.contains("delivery rejected") && line.contains("status=401"),
            "{line}"
        );
        assert!(line.contains(want), "{line}");
    }

    // serve printed one JSON line per dispatched event.
    let mut reader = BufReader::new(stdout);
    let mut events = Vec::new();
    for _ in 0..10 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        events.push(v["event"].as_str().unwrap().to_owned());
    }
    assert!(
        events.contains(&"kustomer.message.update".to_owned()),
        "{events:?}"
    );
    drop(server);
}

#[test]
fn serve_captures_deliveries_into_a_directory() {
    let dir = tempfile::TempDir::new().unwrap();
    let captured = dir.path().join("captured");
    let (server, log, url) =
        start_serve(&["--token", "t0ken", "--capture", captured.to_str().unwrap()]);
    let mut lines = log.lines();
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("personal data"), "{second}");

    let sent = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken", "schema/samples"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stdout)
    );
    drop(server);
    let mut files: Vec<String> = std::fs::read_dir(&captured)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 10, "{files:?}");
    // Each is the sample it came from, named after its event id.
    let sample = std::fs::read(format!("{ROOT}/schema/samples/kustomer.team.create.json")).unwrap();
    let id = serde_json::from_slice::<serde_json::Value>(&sample).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = std::fs::read(captured.join(format!("{id}.json"))).unwrap();
    let send_body: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(
        send_body,
        serde_json::from_slice::<serde_json::Value>(&sample).unwrap()
    );
}

#[test]
fn serve_and_send_take_tokens_and_headers_from_files() {
    let dir = tempfile::TempDir::new().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    // As secret stores write them: a Windows line end, a blank line, the
    // newline `echo` adds.
    let tokens = write("tokens", "current\r\n\nprevious\n");
    let headers = write("headers", "x-app-secret = s3cret\n");
    let (server, _log, url, _) = start_serve_with_env(
        &["--header-file", &headers],
        &[("KUSTOMER_WEBHOOK_TOKEN_FILE", tokens.as_str())],
    );
    let send = |token_args: &[&str], header_args: &[&str]| {
        let out = Command::new(BIN)
            .args(["send", "--url", &url])
            .args(token_args)
            .args(header_args)
            .arg("schema/samples/kustomer.team.create.json")
            .current_dir(ROOT)
            .env_remove("KUSTOMER_WEBHOOK_TOKEN")
            .env_remove("KUSTOMER_WEBHOOK_TOKEN_FILE")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let current = write("current", "current\n");
    let previous = write("previous", "previous");
    // Both tokens in the file are accepted; the first delivery is handled,
    // the second (the same event) is a duplicate.
    let first = send(&["--token-file", &current], &["--header-file", &headers]);
    assert!(
        first.starts_with("200 ") && first.contains("handled"),
        "{first}"
    );
    let again = send(
        &["--token-file", &previous],
        &["--header", "x-app-secret=s3cret"],
    );
    assert!(
        again.starts_with("200 ") && again.contains("duplicate"),
        "{again}"
    );
    for (tokens, headers) in [
        (
            &["--token", "other"][..],
            &["--header-file", headers.as_str()][..],
        ),
        (
            &["--token-file", &current],
            &["--header", "x-app-secret=wrong"],
        ),
        (&["--token-file", &current], &[]),
    ] {
        let out = send(tokens, headers);
        assert!(out.starts_with("401 "), "{tokens:?} {headers:?}: {out}");
    }
    drop(server);
}

/// Reads `log` until a line containing `want`: that line.
fn log_until(log: &mut BufReader<ChildStderr>, want: &str) -> String {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            log.read_line(&mut line).unwrap(),
            0,
            "no {want:?}: {seen:?}"
        );
        if line.contains(want) {
            return line;
        }
        seen.push(line);
    }
}

#[test]
#[cfg(unix)]
fn serve_reloads_its_token_and_header_files_on_sighup() {
    let dir = tempfile::TempDir::new().unwrap();
    let tokens = dir.path().join("tokens");
    let headers = dir.path().join("headers");
    std::fs::write(&tokens, "first\n").unwrap();
    std::fs::write(&headers, "x-app-secret=s3cret\n").unwrap();
    let (server, mut log, url, logged) = start_serve_logged(&[
        "--token-file",
        tokens.to_str().unwrap(),
        "--header-file",
        headers.to_str().unwrap(),
        "--reload-every",
        "0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_url(&logged);
    let metric = |name: &str| metric(&metrics, name);
    assert_eq!(metric("kustomer_webhooks_tokens"), 1);
    let hangup = || server.hang_up();
    let status = |token: &str, secret: &str, sample: &str| {
        let out = Command::new(BIN)
            .args(["send", "--url", &url, "--token", token])
            .args(["--header", &format!("x-app-secret={secret}")])
            .arg(format!("schema/samples/{sample}.json"))
            .current_dir(ROOT)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)[..3].to_owned()
    };
    assert_eq!(status("first", "s3cret", "kustomer.team.create"), "200");

    // Rotation: the file now holds the new token and the old one.
    std::fs::write(&tokens, "second\nfirst\n").unwrap();
    assert_eq!(status("second", "s3cret", "kustomer.team.update"), "401");
    hangup();
    let line = log_until(&mut log, "reloaded the token and header files");
    assert!(
        line.contains("now accepting 2 tokens (1 added), 1 custom header"),
        "{line}"
    );
    assert_eq!(metric("kustomer_webhooks_tokens"), 2);
    assert_eq!(status("second", "s3cret", "kustomer.team.update"), "200");
    assert_eq!(status("first", "s3cret", "kustomer.user.create"), "200");

    // The old token retired, the header's value changed.
    std::fs::write(&tokens, "second\n").unwrap();
    std::fs::write(&headers, "x-app-secret=s3cret-2\n").unwrap();
    hangup();
    let line = log_until(&mut log, "reloaded the token and header files");
    assert!(
        line.contains("now accepting 1 token (1 removed), 1 custom header (changed: x-app-secret)"),
        "{line}"
    );
    assert!(
        !line.contains("s3cret") && !line.contains("second"),
        "{line}"
    );
    assert_eq!(status("first", "s3cret-2", "kustomer.user.update"), "401");
    assert_eq!(status("second", "s3cret", "kustomer.user.update"), "401");
    assert_eq!(status("second", "s3cret-2", "kustomer.user.update"), "200");

    // A file emptied halfway through an update changes nothing.
    std::fs::write(&tokens, "").unwrap();
    hangup();
    let line = log_until(&mut log, "cannot reload the token and header files");
    assert!(
        line.contains("still accepting what was read before"),
        "{line}"
    );
    assert!(line.contains("holds no token"), "{line}");
    assert_eq!(metric("kustomer_webhooks_secret_reload_failing"), 1);
    assert_eq!(
        metric("kustomer_webhooks_secret_reloads_total{outcome=\"failed\"}"),
        1
    );
    assert_eq!(
        metric("kustomer_webhooks_secret_reloads_total{outcome=\"changed\"}"),
        2
    );
    assert_eq!(metric("kustomer_webhooks_tokens"), 1);
    assert_eq!(
        status("second", "s3cret-2", "kustomer.customer.create"),
        "200"
    );
    std::fs::write(&tokens, "second\n").unwrap();
    hangup();
    // The all-clear after the failure.
    let line = log_until(&mut log, "the token and header files can be read again");
    assert!(line.contains("nothing changed"), "{line}");
    assert_eq!(metric("kustomer_webhooks_secret_reload_failing"), 0);
    drop(server);
}

/// The value of the metric `name` (with its labels) on `/metrics` at `base`.
fn metric(base: &str, name: &str) -> u64 {
    let (status, text) = http("GET", base, "/metrics");
    assert_eq!(status, 200);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
}

/// The gauge of the served certificate's end.
#[cfg(feature = "tls")]
const NOT_AFTER: &str = "kustomer_webhooks_tls_certificate_not_after_timestamp_seconds";

/// A certificate and a key copied from `tests/tls` into a directory of
/// their own, where a test replaces them while `serve` runs.
#[cfg(feature = "tls")]
struct TlsFiles {
    dir: tempfile::TempDir,
}

#[cfg(feature = "tls")]
impl TlsFiles {
    fn new(cert: &str, key: &str) -> Self {
        let files = TlsFiles {
            dir: tempfile::TempDir::new().unwrap(),
        };
        files.cert(cert);
        files.key(key);
        files
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn install(&self, from: &str, to: &str) {
        std::fs::copy(format!("{ROOT}/tests/tls/{from}"), self.path(to)).unwrap();
    }

    /// Puts `tests/tls/{from}` in place of the certificate.
    fn cert(&self, from: &str) {
        self.install(from, "cert.pem");
    }

    /// Puts `tests/tls/{from}` in place of the key.
    fn key(&self, from: &str) {
        self.install(from, "key.pem");
    }

    /// `serve` over HTTPS with these files, reading them again only on
    /// SIGHUP, with a metrics listener: the process, its log, its URL and
    /// the metrics URL.
    fn serve(&self) -> (Killed, BufReader<ChildStderr>, String, String) {
        let (cert, key) = (self.path("cert.pem"), self.path("key.pem"));
        let (server, log, url, logged) = start_serve_logged(&[
            "--token",
            "t0ken",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--reload-every",
            "0",
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        (server, log, url, metrics_url(&logged))
    }
}

#[test]
#[cfg(all(unix, feature = "tls"))]
fn serve_over_https_takes_up_a_renewed_certificate_on_sighup() {
    let files = TlsFiles::new("server.pem", "server.key");
    let (server, mut log, url, metrics) = files.serve();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let line = log_until(&mut log, "serving the TLS certificate in");
    assert!(
        line.contains("cert.pem (valid until 2126-11-08T22:40:26Z)"),
        "{line}"
    );
    let not_after = || metric(&metrics, NOT_AFTER);
    assert_eq!(not_after(), 4_949_851_226);
    assert_eq!(
        metric(
            &metrics,
            "kustomer_webhooks_tls_certificate_not_before_timestamp_seconds"
        ),
        1_796_251_226
    );
    // `send` trusting the test authority, which issued `server.pem`.
    let send = |url: &str| {
        let out = Command::new(BIN)
            .args(["send", "--url", url, "--token", "t0ken"])
            .args(["--ca-cert", "tests/tls/ca.pem"])
            .arg("schema/samples/kustomer.team.create.json")
            .current_dir(ROOT)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let sent = send(&url);
    assert!(sent.starts_with("200 "), "{sent}");
    // Plain HTTP on the HTTPS port is not served.
    let plain = send(&url.replacen("https://", "http://", 1));
    assert!(!plain.starts_with("200 "), "{plain}");
    // Counted once the server has closed the connection, which `send` may
    // see first.
    let failed = || metric(&metrics, "kustomer_webhooks_tls_handshakes_failed_total");
    let start = std::time::Instant::now();
    while failed() != 1 && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(failed(), 1);

    // A key that is not the certificate's: the certificate in use stays.
    files.key("client.key");
    server.hang_up();
    let line = log_until(&mut log, "cannot reload the TLS certificate");
    assert!(line.contains("still serving the one read before"), "{line}");
    assert!(
        line.contains("does not go with the certificate in"),
        "{line}"
    );
    assert_eq!(metric(&metrics, "kustomer_webhooks_tls_reload_failing"), 1);
    let sent = send(&url);
    assert!(sent.starts_with("200 "), "{sent}");

    // Another certificate (from an authority `send` does not trust): served
    // from then on.
    files.cert("client.pem");
    server.hang_up();
    let line = log_until(&mut log, "reloaded the TLS certificate");
    assert!(
        line.contains("serving the one in") && line.contains("(valid until 2126-11-09T06:39:51Z)"),
        "{line}"
    );
    assert_eq!(not_after(), 4_949_879_991);
    let refused = send(&url);
    assert!(!refused.starts_with("200 "), "{refused}");
    assert!(refused.contains("certificate"), "{refused}");

    // And back, without a restart.
    files.cert("server.pem");
    files.key("server.key");
    server.hang_up();
    log_until(&mut log, "reloaded the TLS certificate: serving");
    let sent = send(&url);
    assert!(sent.starts_with("200 "), "{sent}");
    assert_eq!(
        metric(
            &metrics,
            "kustomer_webhooks_tls_reloads_total{outcome=\"changed\"}"
        ),
        2
    );
    assert_eq!(
        metric(
            &metrics,
            "kustomer_webhooks_tls_reloads_total{outcome=\"failed\"}"
        ),
        1
    );
    assert_eq!(metric(&metrics, "kustomer_webhooks_tls_reload_failing"), 0);
    drop(server);
}

#[test]
#[cfg(all(unix, feature = "tls"))]
fn serve_says_when_its_certificate_has_expired_and_when_it_is_renewed() {
    let files = TlsFiles::new("expired.pem", "server.key");
    let (server, mut log, url, metrics) = files.serve();
    // It serves (clients decide), and says at once why nothing will arrive.
    let line = log_until(&mut log, "serving the TLS certificate in");
    assert!(
        line.contains("cert.pem (expired at 2025-04-01T00:00:00Z)"),
        "{line}"
    );
    let line = log_until(&mut log, "clients refuse it");
    assert!(
        line.contains("ERROR")
            && line.contains("cert.pem expired at 2025-04-01T00:00:00Z: clients refuse it"),
        "{line}"
    );
    let not_after = || metric(&metrics, NOT_AFTER);
    assert_eq!(not_after(), 1_743_465_600);
    // A client that trusts it as its own authority still refuses it.
    let out = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .args(["--ca-cert", "tests/tls/expired.pem"])
        .arg("schema/samples/kustomer.team.create.json")
        .current_dir(ROOT)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("expired"), "{said}");

    // Renewed: taken up on SIGHUP, with its dates.
    files.cert("server.pem");
    server.hang_up();
    let line = log_until(&mut log, "reloaded the TLS certificate");
    assert!(
        line.contains("(valid until 2126-11-08T22:40:26Z)"),
        "{line}"
    );
    assert_eq!(not_after(), 4_949_851_226);
    drop(server);
}

#[test]
#[cfg(feature = "tls")]
fn serve_names_a_tls_file_it_cannot_use() {
    let stderr = serve_stops_at_start(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(
        stderr.contains(
            "serving HTTPS (--tls-cert, --tls-key): reading /nonexistent/cert.pem: No such file"
        ),
        "{stderr}"
    );
    let stderr = serve_stops_at_start(&[
        "--tls-cert",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tls/server.pem"),
        "--tls-key",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/tls/client.key"),
    ]);
    assert!(
        stderr.contains("client.key does not go with the certificate in"),
        "{stderr}"
    );
    // One without the other is a usage error.
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args(["--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[test]
#[cfg(unix)]
fn a_sighup_without_files_to_read_leaves_serve_serving() {
    let (server, mut log, url) = start_serve(&["--token", "t0ken"]);
    server.hang_up();
    let line = log_until(&mut log, "SIGHUP");
    assert!(line.contains("nothing to reload"), "{line}");
    assert!(send_sample(&url, "t0ken", "kustomer.team.create").starts_with("200 "));
    drop(server);
}

#[test]
fn serve_takes_up_a_rotated_token_file_by_itself() {
    let dir = tempfile::TempDir::new().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "first\n").unwrap();
    let (server, mut log, url) = start_serve(&[
        "--token-file",
        tokens.to_str().unwrap(),
        "--reload-every",
        "1",
    ]);
    assert!(send_sample(&url, "first", "kustomer.team.create").starts_with("200 "));
    // As a secret store replaces a mounted file: a new file renamed over it.
    let next = dir.path().join("tokens.next");
    std::fs::write(&next, "second\n").unwrap();
    std::fs::rename(&next, &tokens).unwrap();
    let line = log_until(&mut log, "reloaded the token and header files");
    assert!(
        line.contains("now accepting 1 token (1 added, 1 removed), 0 custom headers"),
        "{line}"
    );
    assert!(send_sample(&url, "second", "kustomer.team.update").starts_with("200 "));
    assert!(send_sample(&url, "first", "kustomer.user.create").starts_with("401 "));
    drop(server);
}

#[test]
fn a_token_or_header_file_that_cannot_serve_stops_at_start_saying_why() {
    let dir = tempfile::TempDir::new().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "x-app: s3cret\n").unwrap();
    let missing = dir.path().join("missing");
    for (args, want) in [
        (
            vec!["serve", "--token-file", empty.to_str().unwrap()],
            format!("error: {}: holds no token", empty.display()),
        ),
        (
            vec!["serve", "--token-file", missing.to_str().unwrap()],
            format!("error: reading --token-file {}: ", missing.display()),
        ),
        (
            vec![
                "serve",
                "--token",
                "t",
                "--header-file",
                missing.to_str().unwrap(),
            ],
            format!("error: reading --header-file {}: ", missing.display()),
        ),
        (
            vec![
                "serve",
                "--token",
                "t",
                "--header-file",
                bad.to_str().unwrap(),
            ],
            format!("error: {}:1: expected NAME=VALUE", bad.display()),
        ),
        (
            vec!["serve", "--token", "t", "--header", "x app=s3cret"],
            "error: --header: the header name \"x\"… goes on with white space".to_owned(),
        ),
        (
            vec![
                "send",
                "--url",
                "http://127.0.0.1:9/",
                "--token",
                "t",
                "--token-file",
            ],
            "error: both a token and a token file are given".to_owned(),
        ),
    ] {
        let mut args = args;
        if args[0] == "send" {
            args.push(bad.to_str().unwrap());
            args.push("x.json");
        }
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("KUSTOMER_WEBHOOK_TOKEN")
            .env_remove("KUSTOMER_WEBHOOK_TOKEN_FILE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(&want), "{args:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "a secret leaked: {stderr}");
    }
}

#[test]
fn help_never_shows_a_secret_from_the_environment() {
    for command in ["serve", "send"] {
        let out = Command::new(BIN)
            .args([command, "--help"])
            .env("KUSTOMER_WEBHOOK_TOKEN", "s3cret-token")
            .env(
                "KUSTOMER_WEBHOOKS_REDIS_URL",
                "redis://:s3cret-password@redis/",
            )
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{help}");
        assert!(help.contains("[env: KUSTOMER_WEBHOOK_TOKEN]"), "{help}");
        assert!(!help.contains("s3cret"), "{command} --help: {help}");
    }
}

#[test]
fn serve_takes_either_value_of_a_header_given_twice_and_names_events_as_dispatched() {
    let (mut server, _log, url) = start_serve(&[
        "--token",
        "t0ken",
        "--header",
        "x-app=old",
        "--header",
        "X-App=new",
    ]);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    // A customer's creation without `name` in its body: the event is the
    // one its header names, on the reply and on the printed line alike.
    let mut body: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/schema/samples/kustomer.customer.create.json"
        ))
        .unwrap(),
    )
    .unwrap();
    body.as_object_mut().unwrap().remove("name");
    let body = body.to_string();
    let signature = kustomer_webhooks::verify::sign(b"t0ken", body.as_bytes());
    let post = |app: &str, body: &str| {
        request(
            &url,
            "POST /",
            &[
                ("Content-Type", "application/json"),
                (kustomer_webhooks::verify::SIGNATURE_HEADER, &signature),
                (
                    kustomer_webhooks::verify::EVENT_HEADER,
                    "kustomer.customer.create",
                ),
                ("X-App", app),
            ],
            body,
        )
    };
    let (status, reply) = post("older", &body);
    assert_eq!(status, 401, "{reply}");
    assert!(
        reply.contains("the x-app header has the wrong value"),
        "{reply}"
    );
    let (status, reply) = post("new", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.contains(r#""event":"kustomer.customer.create""#),
        "{reply}"
    );
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["event"], "kustomer.customer.create", "{line}");
    assert_eq!(line["typed"], true, "{line}");
    // The other value is accepted too (the same event again: a duplicate).
    let (status, reply) = post("old", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains(r#""outcome":"duplicate""#), "{reply}");
}

#[test]
fn a_custom_header_that_cannot_work_is_refused_at_start() {
    for (header, want) in [
        ("x-app=", "the value after the first `=` is empty"),
        ("x-app=  ", "the value after the first `=` is empty"),
        ("x-app===", "the value after the first `=` is only `=`"),
        (
            "X-Kustomer-Webhook-Signature=abc",
            "X-Kustomer-Webhook-Signature cannot be a custom header",
        ),
        (
            "content-type=application/json",
            "content-type cannot be a custom header",
        ),
        // Every delivery carrying it would be refused as encoded (415).
        (
            "Content-Encoding=s3cret",
            "Content-Encoding cannot be a custom header",
        ),
    ] {
        let stderr = serve_stops_at_start(&["--header", header]);
        assert!(stderr.contains(want), "{header}: {stderr}");
    }
}

/// `send` posts every payload even when nobody reads what it prints (`send
/// dir | head -1`), and its status still says whether each was
/// acknowledged.
#[test]
fn send_posts_every_payload_when_its_output_is_not_read() {
    let (mut server, _log, url) = start_serve(&["--token", "t0ken"]);
    let printed = BufReader::new(server.0.stdout.take().unwrap());
    let dir = tempfile::TempDir::new().unwrap();
    for entry in std::fs::read_dir(format!("{ROOT}/schema/samples")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    // Sent last, and refused with 400.
    std::fs::write(dir.path().join("zz-not-json.json"), "{bad").unwrap();
    let r = common::run_unread(&[
        "send",
        "--url",
        &url,
        "--token",
        "t0ken",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "the 400 is in the status: {}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Every sample was posted and handled: serve printed a line for each.
    let events = printed.lines().take(10).map(Result::unwrap).count();
    assert_eq!(events, 10);
}

#[test]
fn send_reports_a_payload_it_cannot_read_and_sends_the_others() {
    let (_server, _log, url) = start_serve(&["--token", "t0ken"]);
    let out = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .args([
            "schema/samples/kustomer.team.create.json",
            "schema/samples/no-such-payload.json",
            "schema/samples/kustomer.team.update.json",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("200 schema/samples/kustomer.team.create.json"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("--- schema/samples/no-such-payload.json not sent: it cannot be read"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("200 schema/samples/kustomer.team.update.json"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn directories_serve_cannot_use_are_refused_at_start_and_open_ones_named() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let file = file.to_str().unwrap();
    let stderr = serve_stops_at_start(&["--dead-letters", file]);
    assert!(stderr.contains("is not a directory"), "{stderr}");
    let stderr = serve_stops_at_start(&["--capture", file]);
    assert!(
        stderr.contains("--capture") && stderr.contains("cannot write in it"),
        "{stderr}"
    );
    // A directory other users can read is used, and said so.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_server, _log, _url, logged) =
            start_serve_logged(&["--token", "t0ken", "--dead-letters", open.to_str().unwrap()]);
        assert!(
            logged
                .iter()
                .any(|l| l.contains("is open to other users of this machine (mode 755)")),
            "{logged:?}"
        );
    }
    // A limit of no dead letters at all is a mistake.
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args([
            "--dead-letters",
            open.to_str().unwrap(),
            "--dead-letters-max",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn send_has_nothing_to_do_with_an_empty_directory() {
    let (_server, _log, url) = start_serve(&["--token", "t0ken"]);
    let empty = tempfile::TempDir::new().unwrap();
    let out = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .arg(empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("no .json, .jsonl or .ndjson payload files in it, nothing to send"),
        "{stderr}"
    );
}

#[test]
fn an_empty_token_is_refused() {
    for args in [
        &["serve", "--addr", "127.0.0.1:0", "--token", ""][..],
        &[
            "send",
            "--url",
            "http://127.0.0.1:9/",
            "--token",
            "",
            "x.json",
        ][..],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("KUSTOMER_WEBHOOK_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("the token is empty"), "{stderr}");
    }
}

#[test]
#[cfg(unix)]
fn serve_stops_cleanly_on_sigterm() {
    let (mut server, mut log, url) = start_serve(&["--token", "t0ken"]);
    let sent = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .arg("schema/samples/kustomer.team.create.json")
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    server.terminate();
    let status = server.0.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("stopping: finishing the deliveries in progress"),
        "{rest}"
    );
    assert!(
        rest.contains("stopped; every delivery in progress was answered (1 accepted, 0 rejected, 0 duplicate, 0 stale, 0 failed)"),
        "{rest}"
    );
}

#[test]
fn send_refuses_a_url_it_cannot_post_to_before_sending_anything() {
    for (url, want) in [
        ("ftp://example.com/", "expected an http:// or https:// URL"),
        ("127.0.0.1:8080", "expected an http:// or https:// URL"),
        ("not a url", "such as http://127.0.0.1:8080/"),
    ] {
        let out = Command::new(BIN)
            .args(["send", "--url", url, "--token", "t", "missing.json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(want), "{url}: {stderr}");
        assert!(!stderr.contains("missing.json"), "{url}: {stderr}");
    }
}

#[test]
fn serve_answers_500_when_it_cannot_write_an_events_line() {
    let (mut server, mut log, url, logged) =
        start_serve_logged(&["--token", "t0ken", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_url(&logged);
    assert_eq!(http("GET", &metrics, "/readyz").0, 200);
    // Nobody reads the event lines.
    drop(server.0.stdout.take());
    let send = || {
        Command::new(BIN)
            .args([
                "send",
                "--url",
                &url,
                "--token",
                "t0ken",
                "schema/samples/kustomer.team.create.json",
            ])
            .current_dir(ROOT)
            .output()
            .unwrap()
    };
    // The event is not acknowledged: Kustomer would send it again (to a
    // serve started again with a reader: it was never marked done).
    let out = send();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("500 "), "{stdout}");
    assert!(stdout.contains("writing the event's line"), "{stdout}");
    let line = log_until(&mut log, "stdout is closed");
    assert!(
        line.contains("ERROR") && line.contains("serve stops (exit 1"),
        "{line}"
    );
    // A reader that has gone never comes back: serve stops by itself, as a
    // stop signal has it (a load balancer told by /readyz meanwhile), and
    // exits 1, so that whatever runs it starts it again with a reader.
    let stopping = log_until(&mut log, "stopping");
    assert!(!stopping.contains("--stop-delay"), "{stopping}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    let status = server.0.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("error: stopped because stdout is closed"),
        "{rest}"
    );
    assert!(
        !rest.contains("no event's line can be written"),
        "said once: {rest}"
    );
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://").trim_end_matches('/'))
            .is_err(),
        "no longer listening"
    );
    let _ = metrics;
}

/// A stdout that takes no line for another reason than a closed pipe (a
/// full disk): 500, said once, and `/readyz` 503 after each failure.
#[cfg(target_os = "linux")]
#[test]
fn serve_is_not_ready_while_its_event_lines_fail_to_be_written() {
    let mut serve = Command::new(BIN);
    serve.args([
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--token",
        "t0ken",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let (server, mut log, url, logged) =
        start_serving_to(serve, std::fs::File::create("/dev/full").unwrap());
    let metrics = metrics_url(&logged);
    assert_eq!(http("GET", &metrics, "/readyz").0, 200);
    let body = std::fs::read_to_string(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
        .unwrap();
    for _ in 0..2 {
        let (status, reply) = post(&url, "t0ken", &body);
        assert_eq!(status, 500, "{reply}");
        assert!(reply.contains("No space left on device"), "{reply}");
    }
    let line = log_until(&mut log, "could not be written to stdout");
    assert!(line.contains("ERROR"), "{line}");
    let (status, text) = http("GET", &metrics, "/readyz");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("could not be written to stdout"), "{text}");
    drop(server);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(
        !rest.contains("could not be written to stdout"),
        "said once: {rest}"
    );
}

/// A body far over the receiver's limit, whose 413 the closed connection
/// cuts off: `send` says the limit may be why there was no reply.
#[test]
fn send_says_a_body_far_over_the_limit_may_be_why_there_was_no_reply() {
    let (_server, _log, url) = start_serve(&["--token", "t0ken"]);
    let dir = tempfile::TempDir::new().unwrap();
    let big = dir.path().join("big.json");
    let filler = "x".repeat(60 << 20);
    std::fs::write(
        &big,
        format!("{{\"name\":\"kustomer.team.create\",\"pad\":\"{filler}\"}}"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .arg(&big)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Either the 413 was read, or the reason is said.
    assert!(
        stdout.starts_with("413 ") || stdout.contains("may have refused it with 413"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
}

/// The address can come from the environment, as a container sets it.
#[test]
fn serve_takes_its_address_from_the_environment() {
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--token", "t0ken"])
        .env("KUSTOMER_WEBHOOKS_ADDR", "127.0.0.1:0");
    let (_server, _log, url, _) = start_serving(serve);
    assert!(!url.ends_with(":8080/"), "{url}");
    let body = std::fs::read_to_string(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
        .unwrap();
    assert_eq!(post(&url, "t0ken", &body).0, 200);
}

/// A note that says it is a warning is a JSON line at level WARN, for a
/// pipeline that alerts by level.
#[cfg(unix)]
#[test]
fn serve_warnings_are_json_lines_at_level_warn() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let letters = dir.path().join("letters");
    std::fs::create_dir(&letters).unwrap();
    std::fs::set_permissions(&letters, std::fs::Permissions::from_mode(0o777)).unwrap();
    let letters = letters.to_str().unwrap();
    let (_server, _log, _url, before) = start_serve_logged(&[
        "--token",
        "t0ken",
        "--log-format",
        "json",
        "--dead-letters",
        letters,
    ]);
    let warning = before
        .iter()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|line| line["level"] == "WARN")
        .unwrap_or_else(|| panic!("no warning before serving: {before:?}"));
    // The level says it is a warning; the message does not again.
    assert!(
        !warning["message"].as_str().unwrap().starts_with("warning"),
        "{warning}"
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("open to other users"),
        "{warning}"
    );
}

#[test]
fn serve_logs_json_lines_with_the_deliverys_span() {
    let (mut server, mut log) = serve_logging(&[], &[("KUSTOMER_WEBHOOKS_LOG_FORMAT", "json")]);
    let mut next = || next_json_line(&mut log);
    // Its own notes are JSON lines too.
    let first = next();
    assert_eq!(first["level"], "INFO", "{first}");
    assert_eq!(first["target"], "kustomer_webhooks::serve", "{first}");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.starts_with("receiving Kustomer webhooks at "),
        "{first}"
    );
    let url = message.rsplit(' ').next().unwrap().to_owned();

    // A forgery: rejected before any span.
    assert!(send_sample(&url, "guess", "kustomer.team.create").starts_with("401 "));
    let rejected = next();
    assert_eq!(rejected["message"], "delivery rejected", "{rejected}");
    assert_eq!(rejected["status"], 401, "{rejected}");
    assert_eq!(
        rejected["target"], "kustomer_webhooks::receiver",
        "{rejected}"
    );
    assert!(rejected.get("span").is_none(), "{rejected}");

    // A handler that fails (nobody reads the event lines): its line carries
    // the delivery's event, id and resource id.
    drop(server.0.stdout.take());
    assert!(send_sample(&url, "t0ken", "kustomer.team.create").starts_with("500 "));
    // First, once, that stdout is closed, in the same span.
    let closed = next();
    assert_eq!(closed["level"], "ERROR", "{closed}");
    assert_eq!(closed["span"]["event"], "kustomer.team.create", "{closed}");
    let failed = next();
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert_eq!(failed["message"], "handler failed", "{failed}");
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(failed["span"]["name"], "kustomer_webhook", "{failed}");
    assert_eq!(failed["span"]["event"], "kustomer.team.create", "{failed}");
    assert_eq!(failed["span"]["id"], sample["id"], "{failed}");
    assert_eq!(
        failed["span"]["resource_id"], sample["data"]["id"],
        "{failed}"
    );
    assert_eq!(failed["span"]["org"], sample["org"], "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("writing the event's line"),
        "{failed}"
    );

    // A command's own error, too.
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .args(["--token-file", "/nonexistent/tokens"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {stderr}"));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("reading --token-file /nonexistent/tokens"),
        "{error}"
    );
    drop(server);
}

/// The warning that a body names no event, which its header does, is
/// logged in the delivery's span.
#[test]
fn a_body_named_by_its_header_alone_is_warned_of_in_its_span() {
    let (_server, mut log, url) = start_serve(&["--token", "t0ken", "--log-format", "json"]);
    let body = r#"{"id":"6087326fa8b1c7b07da5e5d1","data":{"id":"r1","type":"team"}}"#;
    let (status, reply) = post_named(&url, "t0ken", body, "kustomer.team.create");
    assert_eq!(status, 200, "{reply}");
    let line = log_until(&mut log, "the event is the one its header names");
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["span"]["event"], "kustomer.team.create", "{line}");
    assert_eq!(line["span"]["id"], "6087326fa8b1c7b07da5e5d1", "{line}");
    assert_eq!(line["span"]["resource_id"], "r1", "{line}");
}

/// An event id of another JSON type than a string (drift) is printed as
/// that value, as it is de-duplicated by it: two such events keep two ids.
#[test]
fn an_id_of_another_type_is_printed_as_it_came() {
    let (mut server, _log, url) = start_serve(&["--token", "t0ken"]);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let sample =
        std::fs::read_to_string(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
            .unwrap();
    for id in [serde_json::json!(42), serde_json::json!({"a": 1})] {
        let mut body: serde_json::Value = serde_json::from_str(&sample).unwrap();
        body["id"] = id.clone();
        let (status, reply) = post(&url, "t0ken", &body.to_string());
        assert_eq!(status, 200, "{reply}");
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let line: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(line["id"], id, "{line}");
    }
    // So is a resource id (`data.id`), beside an id of its own.
    let mut body: serde_json::Value = serde_json::from_str(&sample).unwrap();
    body["id"] = "6087326fa8b1c7b07da5e5aa".into();
    body["data"]["id"] = 5.into();
    let (status, reply) = post(&url, "t0ken", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["id"], "6087326fa8b1c7b07da5e5aa", "{line}");
    assert_eq!(line["resource_id"], 5, "{line}");
}

#[test]
fn a_signed_delivery_cannot_forge_a_line_of_the_log() {
    // An event name holding a line break, and a fake log line after it.
    let forged = "kustomer.team.create\n2026-01-01T00:00:00Z  INFO forged: all is well";
    let dir = tempfile::TempDir::new().unwrap();
    let body = serde_json::json!({"id": "6087326fa8b1c7b07da5e5c9", "name": forged, "data": {}});
    let file = dir.path().join("forged.json");
    std::fs::write(&file, body.to_string()).unwrap();
    for format in ["text", "json"] {
        let (mut server, mut log, url) = start_serve(&["--token", "t0ken", "--log-format", format]);
        // Its handler fails (nobody reads the event lines), so a line is
        // logged inside the delivery's span, which names the event.
        drop(server.0.stdout.take());
        let out = Command::new(BIN)
            .args(["send", "--url", &url, "--token", "t0ken"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("500 "),
            "{out:?}"
        );
        let line = log_until(&mut log, "handler failed");
        assert!(
            line.contains("kustomer.team.create\\n2026"),
            "{format}: {line}"
        );
        drop(server);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
        assert!(!rest.contains("forged"), "{format}: {rest}");
    }
}

/// Captures are counted on `/metrics`: written, left out by the filter, and
/// failed (a file where the directory was, say), for an alert on the last.
#[test]
fn serve_counts_captures_on_its_metrics() {
    let dir = tempfile::TempDir::new().unwrap();
    let captured = dir.path().join("captured");
    let (server, _log, url, logged) = start_serve_logged(&[
        "--token",
        "t0ken",
        "--capture",
        captured.to_str().unwrap(),
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert!(send_sample(&url, "t0ken", "kustomer.team.create").starts_with("200 "));
    std::fs::remove_dir_all(&captured).unwrap();
    std::fs::write(&captured, b"not a directory").unwrap();
    assert!(send_sample(&url, "t0ken", "kustomer.user.update").starts_with("200 "));
    let (_, text) = http("GET", &metrics_url(&logged), "/metrics");
    for line in [
        "\nkustomer_webhooks_captures_written_total 1\n",
        "\nkustomer_webhooks_captures_skipped_total 0\n",
        "\nkustomer_webhooks_captures_failed_total 1\n",
        "# TYPE kustomer_webhooks_captures_failed_total counter\n",
    ] {
        assert!(text.contains(line), "{line:?}: {text}");
    }
    drop(server);
}

/// [`start_serve_logged`] with stdout a full disk (`/dev/full`): every
/// event's line fails to be written, and serve goes on.
#[cfg(target_os = "linux")]
fn start_serve_unable_to_print(
    args: &[&str],
) -> (Killed, BufReader<ChildStderr>, String, Vec<String>) {
    let mut serve = Command::new(BIN);
    serve.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
    start_serving_to(serve, std::fs::File::create("/dev/full").unwrap())
}

#[cfg(target_os = "linux")]
#[test]
fn serve_keeps_failed_deliveries_as_dead_letters_that_send_replays() {
    let dir = tempfile::TempDir::new().unwrap();
    let dead = dir.path().join("dead");
    let dead_arg = dead.to_str().unwrap();
    let samples = ["kustomer.team.create", "kustomer.user.update"];
    {
        // No event line can be written (a full disk): every delivery fails.
        let (_server, _log, url, logged) = start_serve_unable_to_print(&[
            "--token",
            "t0ken",
            "--dead-letters",
            dead_arg,
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        for sample in samples {
            let reply = send_sample(&url, "t0ken", sample);
            assert!(reply.starts_with("500 "), "{reply}");
        }
        // A forgery is not kept.
        assert!(send_sample(&url, "wrong", "kustomer.team.update").starts_with("401 "));
        let (_, text) = http("GET", &metrics_url(&logged), "/metrics");
        assert!(
            text.contains("\nkustomer_webhooks_dead_letters_pending 2\n"),
            "{text}"
        );
        assert!(
            text.contains("\nkustomer_webhooks_dead_letters_saved_total 2\n"),
            "{text}"
        );
    }
    // Each is kept byte for byte, named after its event id.
    let mut kept: Vec<String> = std::fs::read_dir(&dead)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    let mut want = Vec::new();
    for sample in samples {
        let body = std::fs::read(format!("{ROOT}/schema/samples/{sample}.json")).unwrap();
        let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            std::fs::read(dead.join(format!("{id}.json"))).unwrap(),
            body
        );
        want.push(format!("{id}.json"));
    }
    want.sort();
    assert_eq!(kept, want);

    // Restarted, serve says they wait; replayed with `send`, each is handled
    // and its file removed.
    // Asking for a custom header, serve names it in the replay's command (a
    // dead letter keeps the body alone).
    let (server, mut log, url) = start_serve(&[
        "--token",
        "t0ken",
        "--header",
        "x-shared=s3cret",
        "--dead-letters",
        dead_arg,
    ]);
    let mut said = String::new();
    for _ in 0..2 {
        log.read_line(&mut said).unwrap();
    }
    assert!(
        said.contains(&format!("dead letters waiting in {dead_arg}: 2;"))
            && said.contains(&format!(
                "`kustomer-webhooks send --url URL --token-file FILE --header-file FILE \
                 {dead_arg}` (within the idempotency store's retention, 75 minutes"
            ))
            && !said.contains("s3cret"),
        "{said}"
    );
    let out = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .args(["--header", "x-shared=s3cret", dead_arg])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("\"outcome\":\"handled\"").count(),
        2,
        "{stdout}"
    );
    assert_eq!(std::fs::read_dir(&dead).unwrap().count(), 0);
    drop(server);

    // With a limit of one event, the second that fails is not kept.
    let (_server, _log, url, logged) = start_serve_unable_to_print(&[
        "--token",
        "t0ken",
        "--dead-letters",
        dead_arg,
        "--dead-letters-max",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    for sample in samples {
        assert!(send_sample(&url, "t0ken", sample).starts_with("500 "));
    }
    let (_, text) = http("GET", &metrics_url(&logged), "/metrics");
    for line in [
        "kustomer_webhooks_dead_letters_pending 1",
        "kustomer_webhooks_dead_letters_over_limit_total 1",
        "kustomer_webhooks_dead_letters_errors_total 0",
    ] {
        assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
    }
    assert_eq!(std::fs::read_dir(&dead).unwrap().count(), 1);
}

/// `send --remove-delivered` of `dir` to `url`, signed with `t0ken`.
fn send_removing_delivered(url: &str, dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args([
            "send",
            "--url",
            url,
            "--token",
            "t0ken",
            "--remove-delivered",
        ])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn send_removes_the_files_it_delivered_when_asked() {
    let dir = tempfile::TempDir::new().unwrap();
    let sample = std::fs::read(format!("{ROOT}/schema/samples/kustomer.team.create.json")).unwrap();
    std::fs::write(dir.path().join("a.json"), &sample).unwrap();
    // Not an event: answered 400, so kept.
    std::fs::write(dir.path().join("b.json"), "{\"name\": 1}").unwrap();
    let (server, _log, url) = start_serve(&["--token", "t0ken"]);
    let out = send_removing_delivered(&url, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("200 ") && stdout.contains("400 "),
        "{stdout}"
    );
    assert!(!dir.path().join("a.json").exists());
    assert!(dir.path().join("b.json").exists());
    drop(server);
}

#[test]
fn send_posts_each_payload_of_a_json_lines_file_and_says_what_it_skipped() {
    let dir = tempfile::TempDir::new().unwrap();
    let compact = |sample: &str| {
        let text = std::fs::read_to_string(format!("{ROOT}/schema/samples/{sample}")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap()
            .to_string()
    };
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        format!(
            "{}\n{}\n",
            compact("kustomer.team.create.json"),
            compact("kustomer.team.update.json")
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("older")).unwrap();
    std::fs::write(
        dir.path().join("older/a.json"),
        compact("kustomer.user.create.json"),
    )
    .unwrap();
    let (mut server, _log, url) = start_serve(&["--token", "t0ken"]);
    let stdout = server.0.stdout.take().unwrap();
    let out = send_removing_delivered(&url, dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}{stderr}");
    let shown = events.display();
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(
        lines[0].starts_with(&format!(
            "200 {shown}:1 {{\"outcome\":\"handled\",\"event\":\"kustomer.team.create\""
        )),
        "{said}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "200 {shown}:2 {{\"outcome\":\"handled\",\"event\":\"kustomer.team.update\""
        )),
        "{said}"
    );
    assert!(
        stderr.contains("1 subdirectory not sent (name it to have its files sent)"),
        "{stderr}"
    );
    // Every payload of the file acknowledged: the file is removed.
    assert!(!events.exists());
    assert!(dir.path().join("older/a.json").exists());
    // Each was a delivery of its own, dispatched once.
    let mut reader = BufReader::new(stdout);
    for want in ["kustomer.team.create", "kustomer.team.update"] {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(&format!("\"event\":\"{want}\"")), "{line}");
    }
}

#[test]
fn serve_with_ordering_acknowledges_an_older_update_as_stale() {
    let (mut server, _log, url) = start_serve(&["--token", "t0ken", "--ordering"]);
    let stdout = server.0.stdout.take().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/schema/samples/kustomer.customer.update.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // rev 3 (the sample), then rev 2 of the same customer, another event.
    let mut older = sample.clone();
    older["id"] = "6087326fa8b1c7b07da5e5c0".into();
    older["data"]["attributes"]["rev"] = 2.into();
    let newer = dir.path().join("1-newer.json");
    let late = dir.path().join("2-older.json");
    std::fs::write(&newer, serde_json::to_vec(&sample).unwrap()).unwrap();
    std::fs::write(&late, serde_json::to_vec(&older).unwrap()).unwrap();
    let sent = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sent.stdout);
    let replies: Vec<&str> = text.lines().collect();
    assert_eq!(replies.len(), 2, "{text}");
    assert!(replies[0].contains("\"outcome\":\"handled\""), "{text}");
    assert!(
        replies[1].starts_with("200 ") && replies[1].contains("\"outcome\":\"stale\""),
        "{text}"
    );
    // Only the newer one was dispatched, so printed.
    drop(server);
    let mut lines = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut lines).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("6087326fa8b1c7b07da5e5c9"), "{lines}");
}

/// `--ordering-max-resources` sizes the guard: past it, the least recently
/// updated resource is forgotten, and an older update of it is handled.
#[test]
fn serve_ordering_max_resources_forgets_the_least_recently_updated() {
    let (mut server, _log, url) = start_serve(&[
        "--token",
        "t0ken",
        "--ordering",
        "--ordering-max-resources",
        "1",
    ]);
    let stdout = server.0.stdout.take().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/schema/samples/kustomer.customer.update.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // rev 3 of the sample's customer; then updates of 100 other customers,
    // which take the one place in turn (the guard forgets in its upkeep,
    // which that many records run); then rev 2 of the first, forgotten:
    // handled.
    let write = |name: String, body: &serde_json::Value| {
        std::fs::write(dir.path().join(name), serde_json::to_vec(body).unwrap()).unwrap();
    };
    write("000.json".to_owned(), &sample);
    let others = 100;
    for i in 1..=others {
        let mut other = sample.clone();
        other["id"] = format!("6087326fa8b1c7b07da5{i:04x}").into();
        other["data"]["id"] = format!("6087326fa8b1c7b07da6{i:04x}").into();
        write(format!("{i:03}.json"), &other);
    }
    let mut older = sample.clone();
    older["id"] = "6087326fa8b1c7b07da5e5d3".into();
    older["data"]["attributes"]["rev"] = 2.into();
    write("999.json".to_owned(), &older);
    let sent = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sent.stdout);
    let replies: Vec<&str> = text.lines().collect();
    assert_eq!(replies.len(), others + 2, "{text}");
    for reply in &replies {
        assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    }
    drop(server);
    let mut lines = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut lines).unwrap();
    assert_eq!(lines.lines().count(), others + 2, "{lines}");
}

#[test]
fn serve_with_a_max_event_age_leaves_an_old_event_that_send_then_delivers() {
    let letters = tempfile::TempDir::new().unwrap();
    let dir = letters.path().to_str().unwrap();
    let (mut server, _log, url) = start_serve(&[
        "--token",
        "t0ken",
        "--max-event-age",
        "4500",
        "--dead-letters",
        dir,
    ]);
    let stdout = server.0.stdout.take().unwrap();
    // The published sample was created in 2021: posted as Kustomer would,
    // it is acknowledged, not dispatched, and not kept (a replay must not
    // become a dead letter).
    let path = format!("{ROOT}/schema/samples/kustomer.customer.update.json");
    let sample = std::fs::read_to_string(&path).unwrap();
    let (status, reply) = post(&url, "t0ken", &sample);
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.contains("\"outcome\":\"too old\"")
            && reply.contains("more than the receiver's max event age of 4500 s (75 min)"),
        "{reply}"
    );
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    // `send` signs what it posts with the time: handled.
    let sent = Command::new(BIN)
        .args(["send", "--url", &url, "--token", "t0ken", &path])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success()
            && text.starts_with("200 ")
            && text.contains("\"outcome\":\"handled\""),
        "{text}"
    );
    drop(server);
    let mut lines = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut lines).unwrap();
    assert_eq!(lines.lines().count(), 1, "dispatched once: {lines}");
    // The value is checked.
    let refused = Command::new(BIN)
        .args(["serve", "--token", "t0ken", "--max-event-age", "75m"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("expected whole seconds, such as 4500"),
        "{said}"
    );
}

#[test]
fn a_replayed_old_event_gets_one_line_in_its_span() {
    let (_server, mut log) =
        serve_logging(&["--max-event-age", "4500", "--log-format", "json"], &[]);
    let mut next = || next_json_line(&mut log);
    let on = next();
    assert!(
        on["message"]
            .as_str()
            .unwrap()
            .starts_with("events created more than 4500 s ago are not dispatched"),
        "{on}"
    );
    let first = next();
    let url = first["message"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let sample =
        |name: &str| std::fs::read_to_string(format!("{ROOT}/schema/samples/{name}.json")).unwrap();
    // One recorded delivery replayed three times: one line, in its span.
    let old = sample("kustomer.message.create");
    for _ in 0..3 {
        let (status, reply) = post(&url, "t0ken", &old);
        assert!(status == 200 && reply.contains("too old"), "{reply}");
    }
    let line = next();
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(
        line["message"], "event acknowledged without being dispatched: too old",
        "{line}"
    );
    assert_eq!(line["span"]["event"], "kustomer.message.create", "{line}");
    // Another one: the next line is its, the replays above had none.
    let (status, _) = post(&url, "t0ken", &sample("kustomer.user.create"));
    assert_eq!(status, 200);
    let line = next();
    assert_eq!(line["span"]["event"], "kustomer.user.create", "{line}");
    // More too-old events than a second's lines: those without one are
    // counted in a line of no delivery's span (it is said while the next
    // is logged, in the next's span).
    let mut old: serde_json::Value = serde_json::from_str(&sample("kustomer.team.create")).unwrap();
    for n in 0..25 {
        old["id"] = format!("{n:024x}").into();
        let (status, _) = post(&url, "t0ken", &old.to_string());
        assert_eq!(status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(post(&url, "t0ken", &sample("kustomer.user.update")).0, 200);
    let mut counted = 0;
    loop {
        let line = next();
        if line["span"]["event"] == "kustomer.user.update" {
            break;
        }
        if line["message"]
            .as_str()
            .unwrap()
            .contains("more deliveries were acknowledged as too old")
        {
            assert!(line.get("span").is_none(), "{line}");
            counted += line["unlogged"].as_u64().unwrap();
        }
    }
    assert!(counted >= 5, "{counted}");
}

#[test]
fn send_does_not_count_an_event_left_for_its_age_as_delivered() {
    use std::io::{Read, Write};
    // A receiver whose clock is far from this one, say: it answers every
    // delivery 200 `too old`.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as much body as it announces.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let body = r#"{"outcome":"too old","event":"kustomer.team.update","detail":"created long ago"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("old.json");
    std::fs::copy(
        format!("{ROOT}/schema/samples/kustomer.team.update.json"),
        &file,
    )
    .unwrap();
    let sent = Command::new(BIN)
        .args([
            "send",
            "--url",
            &url,
            "--token",
            "t0ken",
            "--remove-delivered",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&sent.stderr);
    assert!(!sent.status.success(), "{said}");
    assert!(
        said.contains("was not handled: the receiver took it for a replay"),
        "{said}"
    );
    assert!(file.exists(), "not delivered, so kept");
}

#[cfg(feature = "redis")]
#[test]
fn two_serves_sharing_a_redis_share_de_duplication() {
    let Some(redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    let prefix = format!("serve-test:{}:", std::process::id());
    let args = ["--redis", &redis.url, "--redis-prefix", &prefix];
    assert_two_serves_share(&args, &args, &[], &prefix);
}

#[cfg(feature = "redis")]
#[test]
fn two_serves_sharing_a_redis_share_the_revisions_of_ordering() {
    let Some(redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    let prefix = format!("serve-ordering-test:{}:", std::process::id());
    let args = [
        "--token",
        "t0ken",
        "--ordering",
        "--redis",
        &redis.url,
        "--redis-prefix",
        &prefix,
    ];
    let (_one, _, one, logged) = start_serve_logged(&args);
    assert!(
        logged.iter().any(|l| l
            .starts_with("claiming event ids and keeping the revisions of --ordering in Redis")),
        "{logged:?}"
    );
    let (_other, _, other, _) = start_serve_logged(&args);
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{ROOT}/schema/samples/kustomer.customer.update.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let customer = sample["data"]["id"].as_str().unwrap().to_owned();
    let update = |event: &str, rev: i64| {
        let mut update = sample.clone();
        update["id"] = event.into();
        update["data"]["attributes"]["rev"] = rev.into();
        serde_json::to_string(&update).unwrap()
    };
    // Rev 3 handled by one; rev 2, arriving late at the other, is stale
    // there; rev 4 at the other is handled.
    let (status, reply) = post(&one, "t0ken", &update("6087326fa8b1c7b07da5e5d1", 3));
    assert!(
        status == 200 && reply.contains("\"outcome\":\"handled\""),
        "{reply}"
    );
    let (status, reply) = post(&other, "t0ken", &update("6087326fa8b1c7b07da5e5d2", 2));
    assert!(
        status == 200 && reply.contains("\"outcome\":\"stale\""),
        "{reply}"
    );
    let (status, reply) = post(&other, "t0ken", &update("6087326fa8b1c7b07da5e5d3", 4));
    assert!(
        status == 200 && reply.contains("\"outcome\":\"handled\""),
        "{reply}"
    );
    // Where they are kept: beside the event ids, under the prefix.
    let key = format!("{prefix}{customer}:rev");
    assert_eq!(redis.cli(&["GET", &key]).trim(), "4");
}

/// `send`s `schema/samples/<sample>.json` to `url` signed with `token`: what
/// it printed, stdout then stderr.
/// Starts `serve --addr 127.0.0.1:0 --token t0ken` with `args` more and
/// `env` set, at the repository root, its stdout piped: the process and its
/// log (stderr), from its first line.
fn serve_logging(args: &[&str], env: &[(&str, &str)]) -> (Killed, BufReader<ChildStderr>) {
    let child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Killed(child);
    let log = BufReader::new(server.0.stderr.take().unwrap());
    (server, log)
}

/// The next line of a log written as JSON lines.
fn next_json_line(log: &mut BufReader<ChildStderr>) -> serde_json::Value {
    let mut line = String::new();
    assert_ne!(log.read_line(&mut line).unwrap(), 0, "serve ended");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

fn send_sample(url: &str, token: &str, sample: &str) -> String {
    let out = Command::new(BIN)
        .args(["send", "--url", url, "--token", token])
        .arg(format!("schema/samples/{sample}.json"))
        .current_dir(ROOT)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `serve --addr 127.0.0.1:0 --token t0ken` with `args` more, which
/// must stop at start with exit code 1: what it printed on stderr.
fn serve_stops_at_start(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

/// `METHOD base+path` over a plain connection: the status and the body.
fn http(method: &str, base: &str, path: &str) -> (u16, String) {
    request(base, &format!("{method} {path}"), &[], "")
}

/// [`post`], with the event named by its `X-Kustomer-Webhook-Event` header.
fn post_named(base: &str, token: &str, body: &str, event: &str) -> (u16, String) {
    signed_post(base, token, body, Some(event))
}

/// `body` POSTed to `base` as Kustomer posts it, signed with `token`, over a
/// plain connection: the status and the reply.
fn post(base: &str, token: &str, body: &str) -> (u16, String) {
    signed_post(base, token, body, None)
}

fn signed_post(base: &str, token: &str, body: &str, event: Option<&str>) -> (u16, String) {
    let signature = kustomer_webhooks::verify::sign(token.as_bytes(), body.as_bytes());
    let mut headers = vec![
        ("Content-Type", "application/json"),
        (
            kustomer_webhooks::verify::SIGNATURE_HEADER,
            signature.as_str(),
        ),
    ];
    headers.extend(event.map(|event| (kustomer_webhooks::verify::EVENT_HEADER, event)));
    request(base, "POST /", &headers, body)
}

/// One request (`request` its method and path) over its own connection,
/// failing the test when no answer comes within 30 seconds: the status and
/// the body.
fn request(base: &str, request: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{request} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("{request} to {base}: no whole answer within 30 s ({e})"));
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The metrics address `serve` logged, as `http://HOST:PORT`.
fn metrics_url(logged: &[String]) -> String {
    let line = logged
        .iter()
        .find(|l| l.starts_with("metrics at "))
        .unwrap_or_else(|| panic!("no metrics address in {logged:?}"));
    let url = line.split(' ').nth(2).unwrap();
    url.trim_end_matches("/metrics,").to_owned()
}

#[test]
fn serve_reports_metrics_and_health_on_its_metrics_address() {
    let (_server, _log, url, logged) =
        start_serve_logged(&["--token", "t0ken", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_url(&logged);
    for (token, status) in [("t0ken", "200 "), ("wrong", "401 "), ("t0ken", "200 ")] {
        let reply = send_sample(&url, token, "kustomer.team.create");
        assert!(reply.starts_with(status), "{reply}");
    }
    let (status, text) = http("GET", &metrics, "/metrics");
    assert_eq!(status, 200, "{text}");
    for (outcome, n) in [
        ("accepted", 1),
        ("rejected", 1),
        ("duplicate", 1),
        ("stale", 0),
        ("failed", 0),
    ] {
        let line = format!("kustomer_webhooks_deliveries_total{{outcome=\"{outcome}\"}} {n}\n");
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    // No shared store, nothing said of one.
    assert!(!text.contains("store_up"), "{text}");
    assert_eq!(http("GET", &metrics, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(
        http("GET", &metrics, "/readyz"),
        (200, "ready\n".to_owned())
    );
    assert_eq!(http("POST", &metrics, "/metrics").0, 405);
    assert_eq!(http("GET", &metrics, "/nothing").0, 404);
    // The receiver's own address does not serve them.
    assert_ne!(http("GET", &url, "/metrics").0, 200);

    // An address that cannot be had stops serve at start.
    let taken = metrics.trim_start_matches("http://");
    let stderr = serve_stops_at_start(&["--metrics-addr", taken]);
    assert!(stderr.contains("(--metrics-addr)"), "{stderr}");
}

#[test]
#[cfg(unix)]
fn serve_is_not_ready_once_stopping_while_a_delivery_finishes() {
    use std::io::Write;
    let (mut server, mut log, url, logged) =
        start_serve_logged(&["--token", "t0ken", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_url(&logged);
    assert_eq!(http("GET", &metrics, "/readyz").0, 200);
    // A delivery in progress: its body not all sent yet.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut delivery = std::net::TcpStream::connect(host).unwrap();
    write!(
        delivery,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"id\":"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.terminate();
    let mut line = String::new();
    while !line.contains("stopping: finishing the deliveries in progress") {
        line.clear();
        assert_ne!(log.read_line(&mut line).unwrap(), 0, "serve ended");
    }
    // While it finishes, it is alive but not ready for more.
    assert_eq!(
        http("GET", &metrics, "/readyz"),
        (
            503,
            "not ready: stopping (deliveries still arriving are taken until any --stop-delay \
             ends, and those in progress are finished)\n"
                .to_owned()
        )
    );
    assert_eq!(http("GET", &metrics, "/healthz").0, 200);
    drop(delivery);
    assert!(server.0.wait().unwrap().success());
}

#[test]
fn serve_keeps_serving_when_nobody_reads_its_log_any_more() {
    // The log's reader goes away (a log shipper that died, `2>&1 | head`).
    let (_server, log, url) = start_serve(&["--token", "t0ken"]);
    drop(log);
    let send = |token: &str| send_sample(&url, token, "kustomer.team.create");
    // A rejection is logged (to nobody), and answered; serve goes on.
    for _ in 0..3 {
        let reply = send("wrong");
        assert!(reply.starts_with("401 "), "{reply}");
    }
    let reply = send("t0ken");
    assert!(reply.starts_with("200 "), "{reply}");
}

/// Waits up to 30 seconds for `server` to exit: whether it exited 0.
fn exits_successfully(server: &mut Killed) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            return status.success();
        }
        assert!(
            std::time::Instant::now() < until,
            "serve did not exit within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
#[cfg(unix)]
fn serve_closes_connections_that_send_no_whole_request_head() {
    use std::io::{Read, Write};
    let (mut server, _log, url) = start_serve(&["--token", "t0ken", "--head-timeout", "1"]);
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let open = |head: &str| {
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream
    };
    // Nothing sent, half a head, and a head sent a byte at a time too
    // slowly: each is closed once its second is up, answered nothing.
    let mut silent = open("");
    let mut half = open("POST / HTTP/1.1\r\nHost: example\r\n");
    let mut slow = open("P");
    for byte in b"OST / HTTP/1.1\r\n" {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
    }
    for stream in [&mut silent, &mut half, &mut slow] {
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(
            read.is_ok()
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // A delivery on a connection of its own is handled as ever.
    let (status, reply) = post(&url, "t0ken", &team_create("after-the-idle-ones"));
    assert_eq!(status, 200, "{reply}");
    server.terminate();
    assert!(exits_successfully(&mut server));
}

#[test]
#[cfg(unix)]
fn a_half_sent_request_head_does_not_hold_up_a_stop() {
    use std::io::Write;
    // Heads may take two minutes; the stop must not wait for this one
    // (`exits_successfully` allows 30 s).
    let (mut server, _log, url) = start_serve(&["--token", "t0ken", "--head-timeout", "120"]);
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut held = std::net::TcpStream::connect(host).unwrap();
    held.write_all(b"POST / HTTP/1.1\r\nHost: example\r\n")
        .unwrap();
    let (status, reply) = post(&url, "t0ken", &team_create("beside-a-half-head"));
    assert_eq!(status, 200, "{reply}");
    server.terminate();
    assert!(exits_successfully(&mut server));
}

#[test]
#[cfg(unix)]
fn serve_stop_grace_lets_a_delivery_whose_head_is_arriving_finish() {
    use std::io::{Read, Write};
    let (mut server, _log, url) = start_serve(&["--token", "t0ken", "--stop-grace", "60"]);
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut half = std::net::TcpStream::connect(host).unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: example\r\n")
        .unwrap();
    // A stop closes at once a connection the server has read nothing from.
    let (server_addr, client) = (host.parse().unwrap(), half.local_addr().unwrap());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while kustomer_webhooks_tests::unread_by_server(server_addr, client).is_some_and(|n| n > 0) {
        assert!(std::time::Instant::now() < until, "serve never read it");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.terminate();
    // The default grace (a second) would have closed it by now.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(server.0.try_wait().unwrap().is_none(), "serve stopped");
    let body = team_create("its-head-came-after-the-stop");
    let signature = kustomer_webhooks::verify::sign(b"t0ken", body.as_bytes());
    write!(
        half,
        "Content-Type: application/json\r\n{}: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        kustomer_webhooks::verify::SIGNATURE_HEADER,
        body.len()
    )
    .unwrap();
    half.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(exits_successfully(&mut server));
}

#[test]
fn serve_takes_deliveries_at_its_path_only() {
    let (_server, _log, url) = start_serve(&["--token", "t0ken", "--path", "/webhooks/kustomer/"]);
    let base = url
        .strip_suffix("/webhooks/kustomer")
        .unwrap_or_else(|| panic!("the URL logged is {url}"));
    let post_to = |path: &str, id: &str| {
        let body = team_create(id);
        let signature = kustomer_webhooks::verify::sign(b"t0ken", body.as_bytes());
        request(
            base,
            &format!("POST {path}"),
            &[
                ("Content-Type", "application/json"),
                (kustomer_webhooks::verify::SIGNATURE_HEADER, &signature),
            ],
            &body,
        )
    };
    let (status, reply) = post_to("/webhooks/kustomer", "at-its-path");
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    let (status, reply) = post_to("/webhooks/kustomer/", "with-a-slash");
    assert_eq!(status, 200, "{reply}");
    for elsewhere in [
        "/",
        "/webhooks",
        "/webhooks/kustomer/more",
        "/webhooks/kustomers",
    ] {
        let (status, reply) = post_to(elsewhere, "elsewhere");
        assert_eq!(status, 404, "{elsewhere}: {reply}");
        // Said, so that a wrong path in the app definition shows.
        assert!(
            reply.contains(&format!(
                "\"nothing is received at {elsewhere}: deliveries go to /webhooks/kustomer\""
            )),
            "{reply}"
        );
    }
    // `send` posts to the URL serve logs.
    assert!(send_sample(&url, "t0ken", "kustomer.team.update").starts_with("200 "));

    // A path the router would read as a parameter: a usage error.
    let out = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args(["--path", "/{id}"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"/{id}\" has '{' in it: a path here is letters, digits and -._~"),
        "{stderr}"
    );
}

#[test]
fn serve_serves_at_most_max_connections_at_once() {
    let (_server, mut log, url, logged) = start_serve_logged(&[
        "--token",
        "t0ken",
        "--max-connections",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_url(&logged);
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let open_connections = |n: usize| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (_, text) = http("GET", &metrics, "/metrics");
            if text.contains(&format!("kustomer_webhooks_connections_open {n}\n")) {
                assert!(
                    text.contains("kustomer_webhooks_connections_max 1\n"),
                    "{text}"
                );
                break;
            }
            assert!(std::time::Instant::now() < until, "never {n} open: {text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    open_connections(0);
    // One connection, open and idle, takes the only slot.
    let mut held = std::net::TcpStream::connect(host).unwrap();
    open_connections(1);
    // A delivery gets its place: the idle connection is closed to make
    // room (health checks have connections of their own: above), logged
    // and counted.
    let (status, reply) = post(&url, "t0ken", &team_create("room-made"));
    assert_eq!(status, 200, "{reply}");
    held.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        std::io::Read::read_to_end(&mut held, &mut rest).unwrap(),
        0,
        "closed"
    );
    log_until(&mut log, "every connection slot is taken");
    let (_, text) = http("GET", &metrics, "/metrics");
    assert!(
        text.contains("kustomer_webhooks_connections_closed_at_limit_total 1\n"),
        "{text}"
    );
    // A delivery whose connection has a request in progress is never
    // closed for another: that one waits. (Tested in the runtime's
    // `tests/tests/server.rs`, with a handler that takes its time.)
    open_connections(0);
}

/// The team sample with the event id `id`, as compact JSON.
fn team_create(id: &str) -> String {
    let sample =
        std::fs::read_to_string(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
            .unwrap();
    let mut sample: serde_json::Value = serde_json::from_str(&sample).unwrap();
    sample["id"] = id.into();
    sample.to_string()
}

#[test]
#[cfg(unix)]
fn serve_answers_503_and_stays_up_while_nobody_reads_its_stdout() {
    let (mut server, mut log, url, logged) = start_serve_logged(&[
        "--token",
        "t0ken",
        "--handler-timeout",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let metrics = metrics_url(&logged);
    // Held open, not read: once the pipe is full, a line cannot be written.
    let stdout = server.0.stdout.take().unwrap();
    let mut handled = Vec::new();
    let (last, body, reply) = loop {
        let id = format!("stalled{:05}", handled.len());
        let body = team_create(&id);
        let (status, reply) = post(&url, "t0ken", &body);
        if status != 200 {
            assert_eq!(status, 503, "{reply}");
            break (id, body, reply);
        }
        handled.push(id);
        assert!(handled.len() < 20_000, "stdout never filled up");
    };
    assert!(reply.contains("the handler took longer than 1s"), "{reply}");
    // The log names the cause beside the handler's time limit.
    log_until(&mut log, "stdout has taken no line for ");
    // Not ready once a line has waited as long as a handler may (the write
    // began about when the refused delivery started waiting): a load
    // balancer sends the deliveries elsewhere.
    let waited = std::time::Instant::now();
    let (status, text) = loop {
        let (status, text) = http("GET", &metrics, "/readyz");
        if status != 200 || waited.elapsed() > std::time::Duration::from_secs(5) {
            break (status, text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, 503, "{text}");
    assert!(
        text.starts_with("not ready: stdout has taken no line for ")
            && text.contains("deliveries get 503 until it reads again"),
        "{text}"
    );
    // Everything else goes on meanwhile.
    assert_eq!(http("GET", &metrics, "/healthz"), (200, "ok\n".to_owned()));
    let (_, text) = http("GET", &metrics, "/metrics");
    for line in [
        format!(
            "kustomer_webhooks_deliveries_total{{outcome=\"accepted\"}} {}\n",
            handled.len()
        ),
        "kustomer_webhooks_deliveries_total{outcome=\"failed\"} 1\n".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    assert_eq!(post(&url, "wrong", &body).0, 401);
    // Read again, stdout takes every line; the refused delivery was not
    // marked done, so its retry is handled.
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap())
            .collect::<Vec<_>>()
    });
    let (status, reply) = post(&url, "t0ken", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    assert_eq!(
        http("GET", &metrics, "/readyz"),
        (200, "ready\n".to_owned())
    );
    log_until(&mut log, "stdout takes the events' lines again");
    server.terminate();
    assert!(server.0.wait().unwrap().success());
    let lines = reader.join().unwrap();
    // Each acknowledged delivery's line once, in order; the refused one's
    // at the end, and once more before it if its line was already being
    // written when its handler gave up (at least once, never lost).
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = handled.iter().map(String::as_str).collect();
    want.push(&last);
    if ids.len() == want.len() + 1 {
        want.insert(handled.len(), &last);
    }
    assert_eq!(ids, want);
}

#[test]
#[cfg(unix)]
fn serve_stays_up_while_nobody_reads_its_log_and_loses_no_line_it_has_room_for() {
    let (mut server, mut log, url, logged) =
        start_serve_logged(&["--token", "t0ken", "--metrics-addr", "127.0.0.1:0"]);
    let metrics = metrics_url(&logged);
    let stdout = server.0.stdout.take().unwrap();
    let printed = std::thread::spawn(move || BufReader::new(stdout).lines().count());
    // Each delivery named by its header alone logs a warning of about 250
    // bytes, and nobody reads them: far more than a pipe holds.
    let warned = 1_500;
    for n in 0..warned {
        let mut body: serde_json::Value =
            serde_json::from_str(&team_create(&format!("unread{n:05}"))).unwrap();
        body.as_object_mut().unwrap().remove("name");
        let body = body.to_string();
        let (status, reply) = post_named(&url, "t0ken", &body, "kustomer.team.create");
        assert_eq!(status, 200, "{reply}");
    }
    // A flood of forged deliveries gets a few lines a second, not a line
    // each; the next one logged says how many had none.
    let started = std::time::Instant::now();
    let refused = 300;
    for n in 0..refused {
        let (status, reply) = post(&url, "wrong", &team_create(&format!("forged{n:05}")));
        assert_eq!(status, 401, "{reply}");
    }
    let flood_seconds = started.elapsed().as_secs() + 1;
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(post(&url, "wrong", &team_create("forged-last")).0, 401);
    assert_eq!(http("GET", &metrics, "/healthz"), (200, "ok\n".to_owned()));
    let (_, text) = http("GET", &metrics, "/metrics");
    assert!(
        text.contains("kustomer_webhooks_log_lines_dropped_total 0\n"),
        "{text}"
    );
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
        rest
    });
    server.terminate();
    assert!(server.0.wait().unwrap().success());
    assert_eq!(printed.join().unwrap(), warned);
    let rest = reader.join().unwrap();
    let lines: Vec<&str> = rest.lines().collect();
    let count = |text: &str| lines.iter().filter(|l| l.contains(text)).count();
    let last = lines.last().copied().unwrap_or_default();
    assert_eq!(
        count("the body has no `name` string"),
        warned,
        "{} lines, the last {last:?}",
        lines.len()
    );
    let rejections = count(" delivery rejected status=401 ");
    let unlogged: usize = lines
        .iter()
        .filter(|l| l.contains("more deliveries were rejected without a line of their own"))
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("unlogged="))
        })
        .map(|n| n.expect("unlogged=N").parse::<usize>().unwrap())
        .sum();
    assert_eq!(rejections + unlogged, refused + 1, "{rest}");
    assert!(
        rejections as u64 <= 10 * (flood_seconds + 1),
        "{rejections} lines in about {flood_seconds}s"
    );
    assert_eq!(
        last,
        format!(
            "stopped; every delivery in progress was answered ({warned} accepted, {} rejected, \
             0 duplicate, 0 stale, 0 failed)",
            refused + 1
        )
    );
}

#[cfg(feature = "redis")]
#[test]
fn failing_open_serve_handles_deliveries_while_redis_is_down() {
    let Some(mut redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let prefix = format!("serve-fail-open-test:{}:", std::process::id());
    let url = redis.url.clone();
    let args = [
        "--token",
        "t0ken",
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
    ];
    let (_closed, _closed_log, closed, closed_logged) = start_serve_with_env(
        &[&args[..], &["--metrics-addr", "127.0.0.1:0"]].concat(),
        &[],
    );
    let closed_metrics = metrics_url(&closed_logged);
    assert_eq!(
        http("GET", &closed_metrics, "/readyz"),
        (200, "ready\n".to_owned())
    );
    let (_, text) = http("GET", &closed_metrics, "/metrics");
    assert!(text.contains("\nkustomer_webhooks_store_up 1\n"), "{text}");
    // Failing open or not, settings Redis refuses (a password it does not
    // have) stop serve at start rather than at the first delivery.
    let port = redis.server.as_ref().unwrap().1;
    let stderr = serve_stops_at_start(&[
        "--redis",
        &format!("redis://:s3cret@127.0.0.1:{port}/"),
        "--redis-fail-open",
    ]);
    assert!(
        stderr.contains("error: connecting to Redis (--redis)") && !stderr.contains("s3cret"),
        "{stderr}"
    );

    redis.stop();
    // Failing open, serve starts even while Redis is down.
    let (_open, _open_log, open, logged) = start_serve_with_env(
        &args,
        &[
            ("KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN", "true"),
            ("KUSTOMER_WEBHOOKS_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let open_metrics = metrics_url(&logged);
    // Down from the start, before any delivery: `/metrics` says so.
    let (_, text) = http("GET", &open_metrics, "/metrics");
    assert!(
        text.contains("\nkustomer_webhooks_fail_open_active 1\n"),
        "{text}"
    );
    for said in [
        "Redis cannot be reached for now",
        "in this process while Redis cannot be reached",
    ] {
        assert!(logged.iter().any(|l| l.contains(said)), "{logged:?}");
    }
    let send = |url: &str| send_sample(url, "t0ken", "kustomer.message.create");
    // Failing closed: 503, so Kustomer retries later.
    let reply = send(&closed);
    assert!(reply.starts_with("503 "), "{reply}");
    // Failing open: handled, and a retry to the same process is a duplicate.
    let reply = send(&open);
    assert!(
        reply.starts_with("200 ") && reply.contains("\"outcome\":\"handled\""),
        "{reply}"
    );
    let reply = send(&open);
    assert!(
        reply.starts_with("200 ") && reply.contains("\"outcome\":\"duplicate\""),
        "{reply}"
    );

    // Failing closed, the process is not ready while Redis is down; failing
    // open, it is, and says where the ids go.
    let (status, text) = http("GET", &closed_metrics, "/readyz");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.starts_with("not ready: Redis does not answer"),
        "{text}"
    );
    let (_, text) = http("GET", &closed_metrics, "/metrics");
    assert!(text.contains("\nkustomer_webhooks_store_up 0\n"), "{text}");
    assert!(!text.contains("fail_open"), "{text}");
    let (status, text) = http("GET", &open_metrics, "/readyz");
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("claiming event ids in this process"),
        "{text}"
    );
    let (_, text) = http("GET", &open_metrics, "/metrics");
    for line in [
        "\nkustomer_webhooks_store_up 0\n",
        "\nkustomer_webhooks_fail_open_active 1\n",
        "\nkustomer_webhooks_fail_open_claims_total 1\n",
        "kustomer_webhooks_deliveries_total{outcome=\"duplicate\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // Redis is back. With no delivery to reach it, the failing-open serve
    // still finds it (within a few seconds) and tells it what it handled
    // meanwhile: a retry reaching the other serve is a duplicate there.
    redis.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, text) = http("GET", &open_metrics, "/metrics");
        if text.contains("\nkustomer_webhooks_fail_open_active 0\n") {
            assert!(text.contains("\nkustomer_webhooks_store_up 1\n"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let reply = send(&closed);
    assert!(
        reply.starts_with("200 ") && reply.contains("\"outcome\":\"duplicate\""),
        "{reply}"
    );

    // Redis answers but refuses writes (its memory full): not ready, failing
    // open or not, since failing open covers an outage, not a refusal.
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    for metrics in [&closed_metrics, &open_metrics] {
        let (status, text) = http("GET", metrics, "/readyz");
        assert_eq!(status, 503, "{text}");
        assert!(
            text.starts_with("not ready: Redis refuses the store (") && text.contains("OOM"),
            "{text}"
        );
        // The cause alone: the line already says what failed.
        assert!(!text.contains("idempotency store failed"), "{text}");
    }
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(http("GET", &open_metrics, "/readyz").0, 200);
}

#[cfg(feature = "redis")]
#[test]
fn failing_open_serve_starts_while_every_cluster_node_or_sentinel_is_down() {
    use kustomer_webhooks_tests::redis_server::{
        Listen, SENTINEL_SERVICE, redis_cluster, redis_sentinel,
    };
    let Some(mut cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    let Some(mut sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    for node in 0..3 {
        cluster.stop(node);
    }
    sentinel.stop_sentinel();
    let cluster_args = ["--redis", &cluster.urls[0], "--redis-cluster"];
    let sentinel_args = [
        "--redis",
        &sentinel.url,
        "--redis-sentinel",
        SENTINEL_SERVICE,
    ];
    for redis in [&cluster_args[..], &sentinel_args[..]] {
        // Without failing open, serve cannot start.
        let stderr = serve_stops_at_start(redis);
        assert!(
            stderr.contains("error: connecting to Redis (--redis)"),
            "{stderr}"
        );
        // Failing open, it starts and handles deliveries in the meantime.
        let args = [&["--token", "t0ken", "--redis-fail-open"], redis].concat();
        let (_serve, _log, url, logged) = start_serve_with_env(&args, &[]);
        assert!(
            logged
                .iter()
                .any(|l| l.contains("Redis cannot be reached for now")),
            "{logged:?}"
        );
        let reply = send_sample(&url, "t0ken", "kustomer.team.update");
        assert!(
            reply.starts_with("200 ") && reply.contains("\"outcome\":\"handled\""),
            "{reply}"
        );
    }
}

#[cfg(feature = "redis")]
#[test]
fn two_serves_share_a_redis_over_tls_with_client_certificates() {
    let Some(redis) = kustomer_webhooks_tests::redis_server::redis_tls(true) else {
        return;
    };
    let tls = kustomer_webhooks_tests::TLS_DIR;
    let (ca, cert, key) = (
        format!("{tls}/ca.pem"),
        format!("{tls}/client.pem"),
        format!("{tls}/client.key"),
    );
    let prefix = format!("serve-tls-test:{}:", std::process::id());
    // One given the files as options, the other by the environment.
    let one = [
        "--redis",
        &redis.url,
        "--redis-prefix",
        &prefix,
        "--redis-ca-cert",
        &ca,
        "--redis-client-cert",
        &cert,
        "--redis-client-key",
        &key,
    ];
    let other = ["--redis-prefix", &prefix];
    let env = [
        ("KUSTOMER_WEBHOOKS_REDIS_URL", redis.url.as_str()),
        ("KUSTOMER_WEBHOOKS_REDIS_CA_CERT", &ca),
        ("KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT", &cert),
        ("KUSTOMER_WEBHOOKS_REDIS_CLIENT_KEY", &key),
    ];
    assert_two_serves_share(&one, &other, &env, &prefix);

    // Without the client certificate, the server will not have it.
    let stderr = serve_stops_at_start(&["--redis", &redis.url, "--redis-ca-cert", &ca]);
    assert!(
        stderr.contains("error: connecting to Redis (--redis)"),
        "{stderr}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn two_serves_share_a_redis_cluster() {
    use kustomer_webhooks_tests::redis_server::{Listen, redis_cluster};
    let Some(cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    let prefix = format!("serve-cluster-test:{}:", std::process::id());
    // Two nodes named as options; one, and the flag, in the environment.
    let one = [
        "--redis",
        &cluster.urls[0],
        "--redis",
        &cluster.urls[1],
        "--redis-cluster",
        "--redis-prefix",
        &prefix,
    ];
    let other = ["--redis-prefix", &prefix];
    // (The variable holds one URL or several, separated by spaces.)
    let nodes = format!("{} {}", cluster.urls[2], cluster.urls[0]);
    let env = [
        ("KUSTOMER_WEBHOOKS_REDIS_URL", nodes.as_str()),
        ("KUSTOMER_WEBHOOKS_REDIS_CLUSTER", "1"),
    ];
    assert_two_serves_share(&one, &other, &env, &prefix);
}

#[cfg(feature = "redis")]
#[test]
fn two_serves_share_the_primary_a_redis_sentinel_names() {
    use kustomer_webhooks_tests::redis_server::{Listen, SENTINEL_SERVICE, redis_sentinel};
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let prefix = format!("serve-sentinel-test:{}:", std::process::id());
    // One told by options, the other by the environment.
    let one = [
        "--redis",
        &sentinel.url,
        "--redis-sentinel",
        SENTINEL_SERVICE,
        "--redis-prefix",
        &prefix,
    ];
    let other = ["--redis-prefix", &prefix];
    let env = [
        ("KUSTOMER_WEBHOOKS_REDIS_URL", sentinel.url.as_str()),
        ("KUSTOMER_WEBHOOKS_REDIS_SENTINEL", SENTINEL_SERVICE),
    ];
    assert_two_serves_share(&one, &other, &env, &prefix);

    // A name the Sentinel does not know is named.
    let stderr = serve_stops_at_start(&["--redis", &sentinel.url, "--redis-sentinel", "billing"]);
    assert!(stderr.contains("\"billing\""), "{stderr}");
}

/// Starts a `serve` with `one` and another with `other` and `env` (both with
/// `--token t0ken`, both claiming ids under `prefix`): a delivery the first
/// handled is a duplicate at the second.
#[cfg(feature = "redis")]
fn assert_two_serves_share(one: &[&str], other: &[&str], env: &[(&str, &str)], prefix: &str) {
    fn with_token<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--token", "t0ken"], args].concat()
    }
    let (_one, _, one, logged) = start_serve_logged(&with_token(one));
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("claiming event ids in Redis")
                && l.contains(&format!(", under the prefix {prefix:?}"))),
        "{logged:?}"
    );
    let (_other, _, other, _) = start_serve_with_env(&with_token(other), env);
    let send = |url: &str| send_sample(url, "t0ken", "kustomer.message.create");
    let first = send(&one);
    assert!(
        first.starts_with("200 ") && first.contains("\"outcome\":\"handled\""),
        "{first}"
    );
    // The retry reaches the other process, which knows it was handled.
    let retry = send(&other);
    assert!(
        retry.starts_with("200 ") && retry.contains("\"outcome\":\"duplicate\""),
        "{retry}"
    );
}

#[cfg(feature = "redis")]
#[test]
fn serve_refuses_a_redis_url_it_cannot_use() {
    let serve = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
            .args(args)
            .current_dir(ROOT)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(!stderr.contains("receiving Kustomer webhooks"), "{stderr}");
        (out.status.code(), stderr)
    };
    let (code, stderr) = serve(&["--redis", "http://:s3cret@example.com/"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: connecting to Redis (--redis)"),
        "{stderr}"
    );

    // Certificates are for Redis over TLS.
    let ca = format!("{}/ca.pem", kustomer_webhooks_tests::TLS_DIR);
    let (code, stderr) = serve(&[
        "--redis",
        "redis://:s3cret@127.0.0.1:9/",
        "--redis-ca-cert",
        &ca,
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a rediss:// URL"), "{stderr}");

    // A file that is not there is named.
    let (code, stderr) = serve(&[
        "--redis",
        "rediss://:s3cret@127.0.0.1:9/",
        "--redis-ca-cert",
        "no/such/ca.pem",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("reading --redis-ca-cert no/such/ca.pem"),
        "{stderr}"
    );

    // Several URLs are the nodes of a cluster.
    let (code, stderr) = serve(&[
        "--redis",
        "redis://127.0.0.1:9/",
        "--redis",
        "redis://127.0.0.1:10/",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("add --redis-cluster"), "{stderr}");
    assert!(stderr.contains("add --redis-sentinel NAME"), "{stderr}");
    // So are several in one value, separated by spaces.
    let (code, stderr) = serve(&["--redis", "redis://127.0.0.1:9/ redis://127.0.0.1:10/"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("add --redis-cluster"), "{stderr}");
    let (code, stderr) = serve(&["--redis", " "]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("holds no URL"), "{stderr}");

    // A cluster has no Sentinels.
    let (code, stderr) = serve(&[
        "--redis",
        "redis://127.0.0.1:9/",
        "--redis-cluster",
        "--redis-sentinel",
        "webhooks",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    // A client certificate comes with its key, and the files with --redis.
    let (code, stderr) = serve(&[
        "--redis",
        "rediss://127.0.0.1:9/",
        "--redis-client-cert",
        &ca,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--redis-client-key"), "{stderr}");
    let (code, stderr) = serve(&["--redis-ca-cert", &ca]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--redis <URL>"), "{stderr}");
}

/// Answers every request on a loopback port with `reply` (a whole HTTP/1.1
/// response), after reading the request to its end; the port.
fn answering(reply: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as many body bytes as Content-Length says.
            let wanted = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break Some(end + 4 + length);
                }
            };
            let Some(wanted) = wanted else { continue };
            while request.len() < wanted {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn send_follows_no_redirect_and_prints_the_status() {
    let port = answering(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/elsewhere\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let out = Command::new(BIN)
        .args(["send", "--url", &format!("http://127.0.0.1:{port}/")])
        .args([
            "--token",
            "t0ken",
            "schema/samples/kustomer.team.create.json",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("307 schema/samples/kustomer.team.create.json"),
        "{stdout}"
    );
}

#[test]
fn serve_max_body_sets_the_largest_body_taken() {
    let body = team_create("sized");
    let limit = (body.len() - 1).to_string();
    let (_server, _log, url, _) = start_serve_logged(&["--token", "t0ken", "--max-body", &limit]);
    let (status, reply) = post(&url, "t0ken", &body);
    assert_eq!(status, 413, "{reply}");
    assert!(
        reply.contains(&format!("the body is over the {limit} byte limit")),
        "{reply}"
    );
    for (bad, said) in [
        ("0", "the size must be at least 1"),
        // Past 64 MiB: a dead letter that large could not be replayed.
        ("67108865", "the largest file `send` replays"),
        ("1MiB", "expected a number of bytes"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
            .args(["--max-body", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{bad}: {stderr}");
    }
}

#[test]
fn serve_body_timeout_sets_how_long_a_body_may_take() {
    use std::io::{Read, Write};
    let (_server, _log, url, _) = start_serve_logged(&["--token", "t0ken", "--body-timeout", "1"]);
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    // Ten bytes of a hundred, then nothing: 408 after a second, well
    // within the read limit here (the default is ten seconds).
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"name\": \"",
        )
        .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 408");
}

/// Failing open, what an outage left to tell Redis is told when `serve`
/// stops, if Redis answers by then, and said when it does not.
#[cfg(all(feature = "redis", unix))]
#[test]
fn failing_open_serve_tells_redis_what_it_holds_when_it_stops() {
    let Some(mut redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let prefix = format!("serve-fail-open-stop:{}:", std::process::id());
    let url = redis.url.clone();
    let args = [
        "--token",
        "t0ken",
        "--redis",
        &url,
        "--redis-prefix",
        &prefix,
        "--redis-fail-open",
    ];
    let stop = |serve: Killed, mut log: BufReader<ChildStderr>| {
        serve.terminate();
        let mut serve = serve;
        let status = serve.0.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
        assert!(status.success(), "{status:?}: {rest}");
        rest
    };
    let id_key = |sample: &str| {
        let text = std::fs::read_to_string(format!("{ROOT}/schema/samples/{sample}.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        format!("{prefix}{}", v["id"].as_str().unwrap())
    };

    // Redis comes back just before the stop, before any look of the
    // serve's own: told at the stop.
    let (serve, log, serve_url, _) = start_serve_with_env(&args, &[]);
    redis.stop();
    let reply = send_sample(&serve_url, "t0ken", "kustomer.team.create");
    assert!(reply.starts_with("200 "), "{reply}");
    redis.restart();
    let rest = stop(serve, log);
    assert!(!rest.contains("were not told"), "{rest}");
    assert_eq!(
        redis.cli(&["GET", &id_key("kustomer.team.create")]).trim(),
        "done"
    );

    // Still down at the stop: said.
    let (serve, log, serve_url, _) = start_serve_with_env(&args, &[]);
    redis.stop();
    let reply = send_sample(&serve_url, "t0ken", "kustomer.team.update");
    assert!(reply.starts_with("200 "), "{reply}");
    let rest = stop(serve, log);
    assert!(
        rest.contains("warning: 1 ids or revisions handled while Redis could not be reached were not told to it"),
        "{rest}"
    );
}

/// A Redis user allowed only the service's own keys (its prefix) is enough:
/// `serve`'s check at start writes under the prefix too.
#[cfg(feature = "redis")]
#[test]
fn serve_starts_with_a_redis_user_allowed_only_its_prefix() {
    let Some(redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    let Some((_, port)) = redis.server.as_ref().map(|(c, p)| (c.id(), *p)) else {
        return; // An external Redis is not the test's to reconfigure.
    };
    let prefix = format!("svc{}:", std::process::id());
    let said = redis.cli(&[
        "ACL",
        "SETUSER",
        "svc",
        "on",
        ">pw",
        &format!("~{prefix}*"),
        "+@all",
    ]);
    assert!(said.contains("OK"), "{said}");
    let url = format!("redis://svc:pw@127.0.0.1:{port}/");
    let (_serve, _log, serve_url, _) = start_serve_with_env(
        &[
            "--token",
            "t0ken",
            "--redis",
            &url,
            "--redis-prefix",
            &prefix,
        ],
        &[],
    );
    let reply = send_sample(&serve_url, "t0ken", "kustomer.team.create");
    assert!(reply.starts_with("200 "), "{reply}");
    // Without the prefix, the same user may not write: refused at start.
    let stderr = serve_stops_at_start(&["--redis", &url]);
    assert!(
        stderr.contains("error: connecting to Redis (--redis)")
            && stderr.contains("refuses a write"),
        "{stderr}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn serve_fits_its_connections_to_its_limit_on_open_files() {
    // A limit on open files (soft and hard) far below the default 1,024
    // connections: serve takes as many as fit, beside what else it opens.
    let mut serve = Command::new("sh");
    serve
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", BIN, "serve"])
        .args(["--addr", "127.0.0.1:0", "--token", "t0ken"])
        .args(["--head-timeout", "60", "--metrics-addr", "127.0.0.1:0"]);
    let (mut server, mut log, url, logged) = start_serving(serve);
    assert!(
        logged.iter().any(|l| l.starts_with(
            "warning: serving at most 32 connections at once, not 1024 (--max-connections): \
             this process may open at most 64 files"
        )),
        "{logged:?}"
    );
    let metrics = metrics_url(&logged);
    assert_eq!(metric(&metrics, "kustomer_webhooks_connections_max"), 32);
    // More idle connections than fit, open for longer than a second: a
    // delivery gets the place of one, at once, rather than once their time
    // limit on heads is up.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let idle: Vec<_> = (0..48)
        .map(|_| std::net::TcpStream::connect(host).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, reply) = post(&url, "t0ken", &team_create("beside-idle-ones"));
    assert_eq!(status, 200, "{reply}");
    drop(idle);
    server.terminate();
    assert!(exits_successfully(&mut server));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(rest.contains("every connection slot is taken"), "{rest}");
    assert!(
        !rest.contains("out of file descriptors") && !rest.contains("Too many open files"),
        "{rest}"
    );
}

#[test]
fn serve_refuses_a_timeout_past_a_day() {
    for flag in ["--head-timeout", "--body-timeout", "--handler-timeout"] {
        for value in ["86401", "9300000000000000000"] {
            // Refused at once, not served with (where each connection failed).
            let mut serve = Killed(
                Command::new(BIN)
                    .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
                    .args([flag, value])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let status = loop {
                if let Some(status) = serve.0.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    std::time::Instant::now() < until,
                    "serve {flag} {value} was not refused"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            let mut stderr = String::new();
            std::io::Read::read_to_string(serve.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert_eq!(status.code(), Some(2), "{flag} {value}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "the timeout must be at least 1 second and at most 86400 (a day), not {value}"
                )) && stderr.contains(flag),
                "{stderr}"
            );
        }
    }
    // A day is served with.
    let (_server, _log, url) = start_serve(&["--token", "t0ken", "--head-timeout", "86400"]);
    let (status, reply) = post(&url, "t0ken", &team_create("a-day-for-heads"));
    assert_eq!(status, 200, "{reply}");
}

#[test]
#[cfg(unix)]
fn a_byte_order_mark_in_a_token_or_header_file_is_read_past() {
    let dir = tempfile::TempDir::new().unwrap();
    let tokens = dir.path().join("tokens");
    let headers = dir.path().join("headers");
    std::fs::write(&tokens, "\u{feff}first\n").unwrap();
    std::fs::write(&headers, "\u{feff}x-app-secret=s3cret\n").unwrap();
    let (server, mut log, url, logged) = start_serve_logged(&[
        "--token-file",
        tokens.to_str().unwrap(),
        "--header-file",
        headers.to_str().unwrap(),
        "--reload-every",
        "0",
    ]);
    for file in [&tokens, &headers] {
        let warning = format!(
            "warning: {} starts with a byte order mark (U+FEFF), read past",
            file.display()
        );
        assert!(logged.iter().any(|l| l.starts_with(&warning)), "{logged:?}");
    }
    let status = |token: &str, sample: &str| {
        let out = Command::new(BIN)
            .args(["send", "--url", &url, "--token", token])
            .args(["--header", "x-app-secret=s3cret"])
            .arg(format!("schema/samples/{sample}.json"))
            .current_dir(ROOT)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)[..3].to_owned()
    };
    assert_eq!(status("first", "kustomer.team.create"), "200");
    // Rotated, the file saved with a mark again: read past on SIGHUP too.
    std::fs::write(&tokens, "\u{feff}second\n").unwrap();
    server.hang_up();
    let line = log_until(&mut log, "reloaded the token and header files");
    assert!(
        line.contains("now accepting 1 token (1 added, 1 removed), 1 custom header"),
        "{line}"
    );
    assert_eq!(status("second", "kustomer.team.update"), "200");
    assert_eq!(status("first", "kustomer.user.create"), "401");
}

#[test]
fn a_404_shows_a_long_path_cut_short() {
    let (_server, _log, url) = start_serve(&["--token", "t0ken", "--path", "/webhooks/kustomer"]);
    let base = url.strip_suffix("/webhooks/kustomer").unwrap();
    let path = format!("/{}", "a".repeat(16 * 1024));
    let (status, reply) = request(base, &format!("POST {path}"), &[], "");
    assert_eq!(status, 404, "{reply}");
    assert!(
        reply.contains(&format!(
            "\"nothing is received at /{}…: deliveries go to /webhooks/kustomer\"",
            "a".repeat(199)
        )),
        "{reply}"
    );
    assert!(reply.len() < 1024, "{}", reply.len());
}

/// A second SIGINT or SIGTERM while serve waits for a delivery in progress
/// stops it at once, with the exit code of a process the signal ended.
#[cfg(unix)]
fn a_second_stop_signal_stops_at_once(first: &str, second: &str, code: i32) {
    use std::io::Write;
    let (mut server, mut log, url) = start_serve(&["--token", "t0ken", "--body-timeout", "60"]);
    // A delivery in progress: its body not all sent.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut delivery = std::net::TcpStream::connect(host).unwrap();
    write!(
        delivery,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"id\":"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.signal(first);
    log_until(&mut log, "stopping: finishing the deliveries in progress");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(server.0.try_wait().unwrap().is_none(), "serve stopped");
    server.signal(second);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < until, "serve did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert_eq!(status.code(), Some(code), "{rest}");
    let name = if second == "-INT" {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(
        rest.contains(&format!(
            "warning: {name} again: stopping at once, 1 delivery in progress not answered \
             (Kustomer sends it again)"
        )),
        "{rest}"
    );
    drop(delivery);
}

/// With `--stop-delay`, a stop signal first turns `/readyz` to 503 while
/// deliveries are still taken, then stops gracefully.
#[test]
#[cfg(unix)]
fn serve_takes_deliveries_for_its_stop_delay_after_a_stop_signal() {
    let (mut server, mut log, url, logged) = start_serve_logged(&[
        "--token",
        "t0ken",
        "--metrics-addr",
        "127.0.0.1:0",
        "--stop-delay",
        "3",
    ]);
    let metrics = metrics_url(&logged);
    server.terminate();
    log_until(&mut log, "stopping in 3s (--stop-delay)");
    let (status, text) = http("GET", &metrics, "/readyz");
    assert_eq!(status, 503, "{text}");
    let reply = send_sample(&url, "t0ken", "kustomer.team.create");
    assert!(reply.starts_with("200 "), "taken during the delay: {reply}");
    assert!(server.0.try_wait().unwrap().is_none(), "stopped early");
    let status = server.0.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(
        rest.contains("stopping: finishing the deliveries in progress"),
        "{rest}"
    );
    assert!(rest.contains("(1 accepted,"), "{rest}");
}

#[test]
#[cfg(unix)]
fn a_second_sigterm_stops_serve_at_once() {
    a_second_stop_signal_stops_at_once("-TERM", "-TERM", 143);
}

#[test]
#[cfg(unix)]
fn a_second_sigint_stops_serve_at_once() {
    a_second_stop_signal_stops_at_once("-TERM", "-INT", 130);
}

/// `serve`'s Redis switches set to false in the environment (as a
/// deployment template may have them by default) are off, not a missing
/// `--redis`; an option set by its variable alone without what it needs (a
/// deployment's shared settings) is left out with a warning; given on the
/// command line without it, it is a usage error naming it.
#[test]
fn redis_switches_set_off_in_the_environment_need_no_redis() {
    let off = [
        ("KUSTOMER_WEBHOOKS_REDIS_CLUSTER", "0"),
        ("KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN", "false"),
    ];
    let (_serve, _log, url, said) = start_serve_with_env(&["--token", "t0ken"], &off);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!said.iter().any(|l| l.contains("left out")), "{said:?}");
    let shared = [
        ("KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN", "true"),
        ("KUSTOMER_WEBHOOKS_REDIS_PREFIX", "billing:"),
        ("KUSTOMER_WEBHOOKS_DEAD_LETTERS_MAX", "5"),
        ("KUSTOMER_WEBHOOKS_ORDERING_MAX_RESOURCES", "5"),
        (
            "KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT",
            "/nonexistent/client.pem",
        ),
    ];
    let (_serve, _log, url, said) = start_serve_with_env(&["--token", "t0ken"], &shared);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    for want in [
        "warning: KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN is set, but serve has no --redis <URL>: left out",
        "warning: KUSTOMER_WEBHOOKS_REDIS_PREFIX is set, but serve has no --redis <URL>: left out",
        "warning: KUSTOMER_WEBHOOKS_DEAD_LETTERS_MAX is set, but serve has no --dead-letters <DIR>: left out",
        "warning: KUSTOMER_WEBHOOKS_ORDERING_MAX_RESOURCES is set, but serve has no --ordering: left out",
        "warning: KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT is set, but serve has no --redis <URL>: left out",
    ] {
        assert!(said.iter().any(|l| l.contains(want)), "{want}: {said:?}");
    }
    let closed = "redis://127.0.0.1:9/";
    /// Arguments, environment, the exit code, and what stderr says.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: [Case; 9] = [
        (
            &["--redis", closed, "--redis-client-cert", "client.pem"],
            &[],
            2,
            "--redis-client-cert needs --redis-client-key <FILE>",
        ),
        (
            &["--redis-cluster"],
            &[],
            2,
            "--redis-cluster needs --redis <URL>",
        ),
        (
            &["--redis-prefix", "billing:"],
            &[],
            2,
            "--redis-prefix needs --redis <URL>",
        ),
        (
            &["--dead-letters-max", "5"],
            &[],
            2,
            "--dead-letters-max needs --dead-letters <DIR>",
        ),
        (
            &["--ordering-max-resources", "5"],
            &[],
            2,
            "--ordering-max-resources needs --ordering",
        ),
        (
            &[
                "--redis",
                closed,
                "--ordering",
                "--ordering-max-resources",
                "5",
            ],
            &[],
            2,
            "--ordering-max-resources cannot be used with --redis",
        ),
        // --ordering from its variable.
        (
            &["--redis", closed, "--ordering-max-resources", "5"],
            &[("KUSTOMER_WEBHOOKS_ORDERING", "yes")],
            2,
            "--ordering-max-resources cannot be used with --redis",
        ),
        (
            &[
                "--redis",
                closed,
                "--redis-sentinel",
                "m",
                "--redis-cluster",
            ],
            &[],
            2,
            "--redis-sentinel cannot be used with --redis-cluster",
        ),
        // Off in the environment: no conflict, and the Sentinel is tried.
        (
            &["--redis", closed, "--redis-sentinel", "m"],
            &[("KUSTOMER_WEBHOOKS_REDIS_CLUSTER", "false")],
            1,
            "connecting to Redis (--redis)",
        ),
    ];
    for (args, env, code, want) in cases {
        let out = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?} {env:?}: {stderr}");
    }
}

/// `rediss://` to a Redis that does not speak TLS (here a listener that
/// never answers, as such a Redis does with the handshake) times out: the
/// cluster's error at start, and the warning of one failing open, say why.
#[test]
#[cfg(feature = "redis")]
fn a_tls_redis_url_that_times_out_names_tls_whatever_the_topology() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rediss://{}/", silent.local_addr().unwrap());
    // Accepted and held open, never answered.
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in silent.incoming().take(32) {
            held.push(connection);
        }
    });
    let hint = "a Redis that does not speak TLS never answers the handshake";
    let stderr = serve_stops_at_start(&["--redis", &url, "--redis-cluster"]);
    assert!(stderr.contains(hint), "{stderr}");
    let (_serve, _log, _url, said) =
        start_serve_logged(&["--token", "t0ken", "--redis", &url, "--redis-fail-open"]);
    assert!(
        said.iter()
            .any(|l| l.contains("Redis cannot be reached for now") && l.contains(hint)),
        "{said:?}"
    );
    drop(held);
}

/// The replay command names a dead-letter directory whose name starts
/// with `-` as `./-…`, which `send` does not read as an option.
#[test]
fn the_replay_command_names_a_directory_that_looks_like_an_option_as_a_path() {
    let work = tempfile::TempDir::new().unwrap();
    std::fs::create_dir(work.path().join("-dl")).unwrap();
    std::fs::write(work.path().join("-dl").join("a.json"), "{}").unwrap();
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
        .arg("--dead-letters=-dl")
        .current_dir(work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Killed(serve.spawn().unwrap());
    let mut log = BufReader::new(child.0.stderr.take().unwrap());
    let line = log_until(&mut log, "dead letters waiting in -dl: 1;");
    assert!(
        line.contains("`kustomer-webhooks send --url URL --token-file FILE ./-dl` "),
        "{line}"
    );
}

/// `serve` warns of a file of secrets other users can read, naming it and
/// never its contents; owner-only, it says nothing.
#[cfg(unix)]
#[test]
fn serve_warns_of_a_token_file_other_users_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "t0ken-s3cret\n").unwrap();
    let path = tokens.to_str().unwrap();
    for (mode, warned) in [
        // Its own file: one step to a file nobody else can use.
        (
            0o644,
            Some(("can be read by any user of this machine", "chmod 600")),
        ),
        (
            0o640,
            Some(("can be read by other users of this machine", "chmod 600")),
        ),
        (0o600, None),
    ] {
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(mode)).unwrap();
        let (_serve, _log, _url, said) = start_serve_logged(&["--token-file", path]);
        let warning = said.iter().find(|l| l.contains("can be read by"));
        assert_eq!(warning.is_some(), warned.is_some(), "{mode:o}: {said:?}");
        if let (Some(warning), Some((what, fix))) = (warning, warned) {
            assert!(
                warning.contains(path) && warning.contains(what) && warning.contains(fix),
                "{warning}"
            );
        }
        assert!(!said.iter().any(|l| l.contains("s3cret")), "{said:?}");
    }
}

/// `send` warns before posting over plain http to another machine.
#[test]
fn send_warns_of_plain_http_to_another_machine() {
    let out = Command::new(BIN)
        .args(["send", "--url", "http://receiver.invalid/k", "--token", "t"])
        .arg(format!("{ROOT}/schema/samples/kustomer.team.create.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: posting over plain http to receiver.invalid, not this machine"),
        "{stderr}"
    );
}

/// A Redis CA file with no certificate is named as the option and file it
/// came from.
#[cfg(feature = "redis")]
#[test]
fn a_redis_ca_file_without_a_certificate_is_named() {
    let dir = tempfile::TempDir::new().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let stderr = serve_stops_at_start(&[
        "--redis",
        "rediss://127.0.0.1:9/",
        "--redis-ca-cert",
        ca.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains(&format!(
            "--redis-ca-cert {} holds no certificate",
            ca.display()
        )),
        "{stderr}"
    );
}

/// Captures and dead letters in one directory would mix: each capture
/// would be listed as a dead letter waiting to be sent again.
#[test]
fn capture_and_dead_letters_in_one_directory_are_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().to_str().unwrap();
    let dotted = format!("{path}/.");
    for other in [path, dotted.as_str()] {
        let stderr = serve_stops_at_start(&["--capture", path, "--dead-letters", other]);
        assert!(
            stderr.contains("--capture and --dead-letters name one directory"),
            "{stderr}"
        );
    }
}

/// `send` to a receiver it cannot reach says where it posted without the
/// URL's password.
#[test]
fn send_never_shows_the_password_of_its_url() {
    let out = Command::new(BIN)
        .args([
            "send",
            "--url",
            "http://kw:s3cretpw@127.0.0.1:9/k",
            "--token",
            "t",
            &format!("{ROOT}/schema/samples/kustomer.team.create.json"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("to http://kw:***@127.0.0.1:9/k: "),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cretpw"), "{stderr}");
}

/// A `serve` asked for JSON log lines says an option it refuses in one,
/// whether the format and the value came from the command line or the
/// environment; help stays as it is.
#[test]
fn an_option_refused_is_a_json_line_when_the_log_is_json() {
    let runs = [
        (vec!["--log-format", "json", "--max-body", "abc"], vec![]),
        (
            vec![],
            vec![
                ("KUSTOMER_WEBHOOKS_LOG_FORMAT", "json"),
                ("KUSTOMER_WEBHOOKS_MAX_BODY", "abc"),
            ],
        ),
    ];
    for (args, env) in runs {
        let out = Command::new(BIN)
            .args(["serve", "--token", "t0ken"])
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["level"], "ERROR", "{line}");
        let message = line["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid value 'abc' for '--max-body"),
            "{line}"
        );
        assert_eq!(
            message.contains("KUSTOMER_WEBHOOKS_MAX_BODY's"),
            args.is_empty(),
            "{line}"
        );
    }
    let help = Command::new(BIN)
        .args(["serve", "--log-format", "json", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("Receive webhooks"));
}

/// A value clap refuses that came from an environment variable, not from
/// the option clap names, is said to be the variable's.
#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    for (variable, value, option) in [
        ("KUSTOMER_WEBHOOKS_DEAD_LETTERS", "", "--dead-letters"),
        ("KUSTOMER_WEBHOOK_TOKEN_FILE", "", "--token-file"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--token", "t0ken"])
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "note: {option} was not given: its value is {variable}'s, set in the environment"
            )),
            "{stderr}"
        );
    }
    // Given on the command line, the option's own value is the one refused.
    let out = Command::new(BIN)
        .args(["serve", "--token", "t0ken", "--dead-letters-max", "0"])
        .args(["--dead-letters", "/nonexistent"])
        .env("KUSTOMER_WEBHOOKS_DEAD_LETTERS_MAX", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value '0' for '--dead-letters-max <N>'"),
        "{stderr}"
    );
    assert!(!stderr.contains("note:"), "{stderr}");
}

/// The token and header-file variables spelled with the other settings'
/// prefix (`KUSTOMER_WEBHOOKS_`) are not read: `serve` and `send` refuse to
/// start rather than run without the header check or the token the
/// operator meant, unless the command line gives what the variable would
/// have; help is still shown, and other commands do not mind them.
#[test]
fn a_webhook_variable_spelled_like_the_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    std::fs::write(&headers, "X-Secret=abc\n").unwrap();
    let run = |args: &[&str], set: &[(&str, &std::path::Path)]| {
        let mut command = Command::new(BIN);
        command.args(args);
        for (_, read) in [
            ("", "KUSTOMER_WEBHOOK_TOKEN"),
            ("", "KUSTOMER_WEBHOOK_TOKEN_FILE"),
            ("", "KUSTOMER_WEBHOOK_HEADER_FILE"),
        ] {
            command.env_remove(read);
        }
        for (variable, value) in set {
            command.env(variable, value);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let serve: &[&str] = &["serve", "--addr", "127.0.0.1:0"];
    let send: &[&str] = &["send", "--url", "http://127.0.0.1:9/", "x.json"];
    for (variable, read, given) in [
        (
            "KUSTOMER_WEBHOOKS_HEADER_FILE",
            "KUSTOMER_WEBHOOK_HEADER_FILE",
            "--header-file",
        ),
        (
            "KUSTOMER_WEBHOOKS_TOKEN_FILE",
            "KUSTOMER_WEBHOOK_TOKEN_FILE",
            "--token-file",
        ),
        (
            "KUSTOMER_WEBHOOKS_TOKEN",
            "KUSTOMER_WEBHOOK_TOKEN",
            "--token",
        ),
    ] {
        for args in [serve, send] {
            // With a token, but the header file: refused. Without a
            // token: the token variables refused, before clap says a token
            // is missing.
            let mut args = args.to_vec();
            if variable.ends_with("HEADER_FILE") {
                args.extend(["--token", "t0ken"]);
            }
            let (code, stderr) = run(&args, &[(variable, &headers)]);
            assert_eq!(code, Some(2), "{stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "error: {variable} is set, but the variable read is {read} (WEBHOOK, one webhook's): rename it"
                )),
                "{stderr}"
            );
            assert!(
                stderr.contains(&format!("Usage: kustomer-webhooks {} ", args[0])),
                "{stderr}"
            );
            // Help is shown.
            let (code, stderr) = run(&[args[0], "--help"], &[(variable, &headers)]);
            assert_eq!(code, Some(0), "{stderr}");
            // What the variable would give, given on the command line: the
            // variable does not matter (here, the file given is read).
            // A token given with a header file that cannot be read, so
            // that `serve` stops at once.
            let mut given_args = args.clone();
            if given == "--token" {
                given_args.extend(["--token", "t0ken", "--header-file", "/nonexistent/file"]);
            } else {
                given_args.extend([given, "/nonexistent/file"]);
            }
            let (_, stderr) = run(&given_args, &[(variable, &headers)]);
            assert!(!stderr.contains("is set, but"), "{stderr}");
            assert!(stderr.contains("/nonexistent/file"), "{stderr}");
        }
    }
    // `serve` adds a token file's tokens to `--token`'s: a token given does
    // not make the misspelled token-file variable matter less.
    let (code, stderr) = run(
        &[serve, &["--token", "t0ken"]].concat(),
        &[("KUSTOMER_WEBHOOKS_TOKEN_FILE", &headers)],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("KUSTOMER_WEBHOOKS_TOKEN_FILE is set"),
        "{stderr}"
    );
    // Set alike under both names, it is read as it is.
    let mut both = send.to_vec();
    both.extend(["--token", "t0ken"]);
    let (_, stderr) = run(
        &both,
        &[
            ("KUSTOMER_WEBHOOKS_HEADER_FILE", &headers),
            ("KUSTOMER_WEBHOOK_HEADER_FILE", &headers),
        ],
    );
    assert!(!stderr.contains("is set, but"), "{stderr}");
    // Another command does not read them.
    let (_, stderr) = run(
        &["app-definition", "validate", "/nonexistent.json"],
        &[("KUSTOMER_WEBHOOKS_TOKEN", &headers)],
    );
    assert!(!stderr.contains("is set, but"), "{stderr}");
}

/// The metrics given the address deliveries are received at are refused,
/// saying so, rather than as an address already in use.
#[test]
fn metrics_at_the_receivers_own_address_are_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for metrics in [format!("127.0.0.1:{port}"), format!("0.0.0.0:{port}")] {
        let out = Command::new(BIN)
            .args(["serve", "--token", "t0ken", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--metrics-addr", &metrics])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "--metrics-addr {metrics} is the address deliveries are received at (--addr \
                 127.0.0.1:{port}): give the metrics a port of their own"
            )),
            "{stderr}"
        );
    }
}

/// An option that needs another, missing, is refused with the program's
/// usage line.
#[test]
fn an_option_needing_another_is_refused_with_the_programs_usage() {
    let out = Command::new(BIN)
        .args(["serve", "--token", "t0ken", "--dead-letters-max", "5"])
        .env_remove("KUSTOMER_WEBHOOKS_DEAD_LETTERS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--dead-letters-max needs --dead-letters"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Usage: kustomer-webhooks serve "),
        "{stderr}"
    );
}

/// `--log-level warn` leaves out the lines of rejections (at `info`) and
/// keeps the warnings, each in its delivery's span.
#[test]
fn serve_log_level_sets_the_least_severe_line_written() {
    let (mut server, mut log, url) = start_serve(&["--token", "t0ken", "--log-level", "warn"]);
    let stdout = server.0.stdout.take().unwrap();
    let printed = std::thread::spawn(move || BufReader::new(stdout).lines().count());
    assert_eq!(post(&url, "wrong", &team_create("forged")).0, 401);
    let mut body: serde_json::Value = serde_json::from_str(&team_create("unnamed")).unwrap();
    body.as_object_mut().unwrap().remove("name");
    let (status, reply) = post_named(&url, "t0ken", &body.to_string(), "kustomer.team.create");
    assert_eq!(status, 200, "{reply}");
    server.terminate();
    assert!(server.0.wait().unwrap().success());
    assert_eq!(printed.join().unwrap(), 1);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert!(!rest.contains("delivery rejected"), "{rest}");
    let warned = rest
        .lines()
        .find(|l| l.contains("the body has no `name` string"))
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(
        warned.contains("kustomer_webhook{event=\"kustomer.team.create\""),
        "{warned}"
    );
    // serve's own notes are always written.
    assert!(
        rest.contains("stopped; every delivery in progress was answered"),
        "{rest}"
    );
}
