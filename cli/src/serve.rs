//! `serve`, `send` and `demo`: the receiver on the network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kustomer_webhooks::axum::Server;
use kustomer_webhooks::capture::Capture;
use kustomer_webhooks::dead_letters::DeadLetters;
use kustomer_webhooks::dedupe::{
    Begin, IdempotencyStore, MemoryStore, OrderingGuard, StoreError, StoreFuture,
};
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{
    EVENT_HEADER, RESENT_HEADER, SIGNATURE_HEADER, SharedVerifier, Verifier, sign, sign_resent,
};
use kustomer_webhooks::{AnyEvent, Dispatcher, Drift, Envelope};
use serde::Serialize;

use crate::out::{Lines, note, out, printable};
use crate::reload::{Hangup, Reloads, nothing_to_reload, reload, tls, valid_until, watch_validity};
use crate::secrets::Sources;

/// The metrics listener's time limit on request heads, and how many
/// connections it serves at once: its own, so that deliveries filling the
/// receiver's never keep a health check out.
const HEALTH_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const HEALTH_CONNECTIONS: usize = 16;

/// A switch set by its environment variable (`KUSTOMER_WEBHOOKS_ORDERING=1`):
/// `true` or `false`, or `yes`/`no`, `on`/`off`, `1`/`0`, `y`/`n`, `t`/`f`,
/// in any case.
pub fn switch_arg(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "expected true or false (or yes/no, on/off, 1/0), not {:?}",
            s
        )),
    }
}

/// A webhook token, without the white space around it: not empty, nor only
/// white space (an unset variable expanded to nothing would otherwise key
/// every signature with no secret at all).
pub fn token_arg(s: &str) -> Result<String, String> {
    // As in a token file: no token Kustomer gives starts or ends with white
    // space, so any there came with the copy.
    let token = s.trim();
    if token.is_empty() {
        Err(format!(
            "the token is {}; give the webhook's token",
            if s.is_empty() {
                "empty"
            } else {
                "only white space"
            }
        ))
    } else {
        Ok(token.to_owned())
    }
}

/// `serve --addr` and `--metrics-addr`: `HOST:PORT`, where HOST is an IP
/// address (IPv6 in brackets) or a name resolved now (the first address it
/// has, an IPv4 one if there is one: `localhost` is 127.0.0.1).
pub fn addr_arg(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // A URL where an address goes (`http://0.0.0.0:8080`).
    if let Some((scheme, rest)) = s.split_once("://") {
        let addr = rest.split_once('/').map_or(rest, |(addr, _)| addr);
        return Err(format!(
            "{s:?} is a URL: give the address alone, HOST:PORT ({addr:?}), without {scheme}:// \
             or a path"
        ));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "expected HOST:PORT, such as 127.0.0.1:8080 or localhost:8080, not {s:?}"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "{s:?} has no host: give one, such as 0.0.0.0:{port} (every interface) or \
             127.0.0.1:{port} (this machine only)"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port: a port is a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{host} cannot be resolved to an address ({e})"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// `serve --addr`: as [`addr_arg`], a URL also said to have its path in
/// `--path` and its scheme in `--tls-cert`.
pub fn receiver_addr_arg(s: &str) -> Result<SocketAddr, String> {
    addr_arg(s).map_err(|e| {
        if s.contains("://") {
            format!("{e} (the receiver's path is --path; --tls-cert serves HTTPS)")
        } else {
            e
        }
    })
}

/// `send --url`: an `http://` URL, or an `https://` one when the binary is
/// built with TLS (the `tls` feature, on by default); checked before anything
/// is read or sent.
pub fn url_arg(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| {
        format!("expected an http:// or https:// URL such as http://127.0.0.1:8080/ ({e})")
    })?;
    match url.scheme() {
        "http" => Ok(s.to_owned()),
        "https" if cfg!(feature = "tls") => Ok(s.to_owned()),
        "https" => Err(
            "this build of kustomer-webhooks speaks no TLS (built without its `tls` feature): \
             post to an http:// URL, or rebuild with the default features"
                .to_owned(),
        ),
        other => Err(format!("expected an http:// or https:// URL, not {other}:")),
    }
}

/// A `--redis-prefix`: not blank (the keys would be bare event ids, among
/// whatever else the Redis holds) and without control characters.
pub fn prefix_arg(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(
            "the prefix is blank: the keys would be bare event ids beside whatever else the Redis \
             holds; give one such as myservice:event: (or leave the option out for \
             kustomer-webhooks:event:)"
                .to_owned(),
        );
    }
    if s.chars().any(char::is_control) {
        return Err("the prefix has a control character".to_owned());
    }
    Ok(s.to_owned())
}

/// `serve --path`: `/`, or segments of letters, digits and `-._~` after
/// slashes (a trailing slash dropped), so that it is a literal path to the
/// router and the same text in the app definition's URL.
pub fn path_arg(s: &str) -> Result<String, String> {
    let Some(rest) = s.strip_prefix('/') else {
        return Err(format!(
            "a path starts with /, such as /webhooks/kustomer, not {s:?}"
        ));
    };
    if rest.starts_with('/') {
        return Err(format!("{s:?} has an empty segment (//)"));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(format!("{s:?} has an empty segment (//)"));
        }
        if segment == "." || segment == ".." {
            return Err(format!("{s:?} has a {segment:?} segment"));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!(
                "{s:?} has {c:?} in it: a path here is letters, digits and -._~ between slashes"
            ));
        }
    }
    Ok(format!("/{rest}"))
}

/// The longest time limit a flag of seconds takes: a day.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// `send --timeout`, and `serve`'s `--head-timeout`, `--body-timeout` and
/// `--handler-timeout`: whole seconds, from 1 to [`MAX_TIMEOUT_SECS`] (a
/// limit further off than the clock can count would fail every request).
pub fn timeout_arg(s: &str) -> Result<Duration, String> {
    let range = format!("at least 1 second and at most {MAX_TIMEOUT_SECS} (a day)");
    match s.parse::<u64>() {
        Ok(0) => Err(format!("the timeout must be {range}")),
        Ok(n) if n > MAX_TIMEOUT_SECS => Err(format!("the timeout must be {range}, not {n}")),
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(_) => Err(format!(
            "expected whole seconds, such as 10 ({range}), got {s:?}"
        )),
    }
}

/// `--max-body`: bytes, at least 1 and at most 64 MiB
/// ([`crate::parse::MAX_PAYLOAD`]): no Kustomer payload comes near it, and
/// `send` replays no larger file (a dead letter kept past it could not be).
pub fn max_body_arg(s: &str) -> Result<u32, String> {
    let max = crate::parse::MAX_PAYLOAD;
    let range = format!(
        "at least 1 and at most {max} (64 MiB: far past any Kustomer payload, and the largest \
         file `send` replays, a dead letter included)"
    );
    match s.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n as u32),
        Ok(n) => Err(format!("the size must be {range}, not {n}")),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("the size must be {range}, not {s}"))
        }
        Err(_) => Err(format!(
            "expected a number of bytes, such as 1048576 for 1 MiB ({range}), got {s:?}"
        )),
    }
}

/// `--max-event-age`: whole seconds, at least a minute (Kustomer's first
/// retries come a minute apart) and at most a week; 0 for none (off, as
/// when it is not given), so that the variable can turn it off.
pub fn age_arg(s: &str) -> Result<Duration, String> {
    const WEEK: u64 = 7 * 24 * 3600;
    let range = format!("at least 60 seconds and at most {WEEK} (a week), or 0 for none");
    match s.parse::<u64>() {
        Ok(n) if n == 0 || (60..=WEEK).contains(&n) => Ok(Duration::from_secs(n)),
        Ok(n) => Err(format!("the age must be {range}, not {n}")),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("the age must be {range}, not {s}"))
        }
        Err(_) => Err(format!(
            "expected whole seconds, such as 4500 for 75 minutes ({range}), got {s:?}"
        )),
    }
}

/// What a `--max-event-age` above the event ids' retention lets through (one
/// under Kustomer's retries, [`MIN_EVENT_AGE`], is warned of by the
/// receiver).
///
/// [`MIN_EVENT_AGE`]: kustomer_webhooks::receiver::MIN_EVENT_AGE
fn age_warning(age: Duration) -> Option<String> {
    let retention = kustomer_webhooks::dedupe::DEFAULT_RETENTION;
    if age > retention {
        Some(format!(
            "--max-event-age {}: above the {} seconds event ids are remembered, a replay of a \
             delivery between the two ages is handled again; {} closes that gap",
            age.as_secs(),
            retention.as_secs(),
            retention.as_secs()
        ))
    } else {
        None
    }
}

/// Descriptors `serve` keeps for what it opens besides its connections
/// (the listeners, the metrics listener's connections, Redis, the files of
/// captures and dead letters), out of its limit on open files; half of the
/// limit when that is less.
#[cfg_attr(not(unix), allow(dead_code))]
const FILES_BESIDES_CONNECTIONS: u64 = 128;

/// How many connections `serve` takes at once, `max` asked for, when the
/// process may have `open_files` files open: `max`, or fewer if `max` and
/// [`FILES_BESIDES_CONNECTIONS`] do not fit (each connection is a file);
/// at least one.
#[cfg_attr(not(unix), allow(dead_code))]
fn connections_that_fit(max: usize, open_files: u64) -> usize {
    let besides = FILES_BESIDES_CONNECTIONS.min(open_files / 2);
    let fit = open_files - besides;
    usize::try_from(fit)
        .unwrap_or(usize::MAX)
        .clamp(1, max.max(1))
}

/// Raises the process's limit on open files (`RLIMIT_NOFILE`'s soft limit)
/// to its hard limit, as far as the system allows: often 1,024 otherwise,
/// no more than the default limit on connections. The limit now, if it can
/// be read.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which outlives
    // the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    // The hard limit; where the system refuses it (an unlimited hard limit:
    // macOS takes no more than OPEN_MAX, Linux no more than fs.nr_open),
    // the most it takes.
    #[allow(unused_mut)] // pushed to on Linux and macOS only
    let mut tries = vec![limit.rlim_max];
    #[cfg(target_os = "linux")]
    if let Some(nr_open) = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|n| n.trim().parse::<libc::rlim_t>().ok())
    {
        tries.push(nr_open.min(limit.rlim_max));
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    tries.push(libc::rlim_t::from(10_240u16).min(limit.rlim_max)); // OPEN_MAX
    for wanted in tries {
        if wanted <= limit.rlim_cur {
            continue;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given, which
        // outlives the call. Refused, the limit stays as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
            break;
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not u64 everywhere
    Some(limit.rlim_cur as u64)
}

/// `server` with at most as many connections as the process's limit on
/// open files leaves room for, that limit raised first as far as it goes;
/// said when that is fewer than asked for.
fn fit_to_open_files(server: Server) -> Server {
    #[cfg(unix)]
    if let Some(open_files) = raise_open_files_limit() {
        let max = server.max_connections();
        let fit = connections_that_fit(max, open_files);
        if fit < max {
            note!(
                "warning: serving at most {fit} connections at once, not {max} \
                 (--max-connections): this process may open at most {open_files} files (its \
                 limit on open files, RLIMIT_NOFILE, raised as far as the system let it), each \
                 connection is one, and {} are kept for the \
                 rest; raise the limit (`ulimit -n`, systemd's LimitNOFILE=, \
                 `docker run --ulimit nofile=`) to serve more",
                open_files.saturating_sub(fit as u64)
            );
            return server.with_max_connections(fit);
        }
    }
    server
}

/// How `send` connects: the time it gives each delivery, and the
/// certificates it trusts besides the system's.
pub struct SendOptions {
    /// How long one delivery may take, from connecting to the reply's last
    /// byte. Kustomer expects an answer within a few seconds.
    pub timeout: Duration,
    /// PEM files of certificate authorities to trust for an `https://` URL,
    /// besides the system's roots (a private CA, or a test server's own).
    pub ca_certs: Vec<PathBuf>,
    /// Remove each file once the receiver acknowledged it (2xx).
    pub remove_delivered: bool,
}

/// The client `send` and `demo` post with. Its TLS trusts the `--ca-cert`
/// files and, for an `https://` URL, the system's roots; it is set up here
/// rather than by reqwest, so that posting to an `http://` URL works on a
/// system without any root certificates (a minimal container). It follows
/// no redirect: a receiver answering 3xx gets that status printed, rather
/// than the payload being posted somewhere Kustomer may not follow. A
/// connection not made within [`connect_timeout`] is a receiver out of
/// reach, not a slow one.
fn send_client(options: &SendOptions, https: bool) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(connect_timeout(options.timeout))
        .redirect(reqwest::redirect::Policy::none());
    #[cfg(feature = "tls")]
    let builder = builder.tls_backend_preconfigured(tls_config(&options.ca_certs, https)?);
    #[cfg(not(feature = "tls"))]
    if let Some(path) = options.ca_certs.first() {
        let _ = https;
        return Err(anyhow!(
            "--ca-cert {}: this build speaks no TLS (built without its `tls` feature)",
            path.display()
        ));
    }
    builder.build().context("setting up the HTTP client")
}

/// How long `send` waits for a connection (TCP, and TLS for https): half
/// its time for a delivery, at most 5 s. Shorter than the delivery's own
/// limit, so that a receiver whose address drops every attempt (a firewall,
/// a host gone) ends the run as out of reach instead of being reported
/// slow once per payload.
fn connect_timeout(timeout: Duration) -> Duration {
    (timeout / 2).min(Duration::from_secs(5))
}

/// TLS for `send`: the certificate authorities of each `--ca-cert` file,
/// and the system's when posting to an `https://` URL.
#[cfg(feature = "tls")]
fn tls_config(ca_certs: &[PathBuf], https: bool) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for path in ca_certs {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                anyhow!(
                    "{}: {}",
                    path.display(),
                    kustomer_webhooks::__private::pem_detail(e)
                )
            })?;
        if certs.is_empty() {
            return Err(anyhow!(
                "{}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| anyhow!("{}: not a usable certificate: {e}", path.display()))?;
        }
    }
    if https {
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
        if roots.is_empty() {
            let why = system
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(anyhow!(
                "found no root certificates on this system to check the receiver's certificate \
                 with{why}: install the ca-certificates package, or pass --ca-cert FILE"
            ));
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One line printed per dispatched event.
#[derive(Serialize)]
struct Line<'a> {
    event: &'a str,
    id: Option<ShownId<'a>>,
    resource_id: Option<ShownId<'a>>,
    typed: bool,
    drift: Vec<kustomer_webhooks::Drift>,
    /// How many drifted values past the first [`MAX_DRIFT_SHOWN`] the line
    /// leaves out; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift_omitted: Option<usize>,
}

/// The most drifted values one line shows: a body with an array of many
/// values of another type (objects where ids were) would otherwise make a
/// line of megabytes, which log pipelines split or drop.
const MAX_DRIFT_SHOWN: usize = 100;

/// An event's id (or its resource's) as the line shows it: the string
/// Kustomer sends, or, for an id of another JSON type (drift: `42`), that
/// JSON value, which the receiver de-duplicates by too, so that a consumer
/// keying lines by `id` tells such events apart.
#[derive(Serialize)]
#[serde(untagged)]
enum ShownId<'a> {
    Text(&'a str),
    Other(serde_json::Value),
}

/// The line of a dispatched event; `other_id` is its `id` when that is not
/// a string, `other_resource_id` its `data.id`.
fn line(
    envelope: &dyn Envelope,
    other_id: Option<serde_json::Value>,
    other_resource_id: Option<serde_json::Value>,
    name: &str,
    typed: bool,
    mut drift: Vec<Drift>,
) -> serde_json::Result<String> {
    let drift_omitted = drift.len().checked_sub(MAX_DRIFT_SHOWN).filter(|&n| n > 0);
    drift.truncate(MAX_DRIFT_SHOWN);
    serde_json::to_string(&Line {
        event: name,
        id: envelope
            .event_id()
            .map(ShownId::Text)
            .or(other_id.map(ShownId::Other)),
        resource_id: envelope
            .resource_id()
            .map(ShownId::Text)
            .or(other_resource_id.map(ShownId::Other)),
        typed,
        drift,
        drift_omitted,
    })
}

/// Writes the line of a dispatched event (through [`Lines`], so that a
/// stdout nobody reads never blocks the server). A line that cannot be
/// written (stdout closed) fails the handler: the delivery gets 500 and is
/// not marked done, so Kustomer sends it again, rather than being
/// acknowledged with its line lost; one that waits past the handler's time
/// limit (stdout not read) gets 503, and is not written unless its write
/// had already begun.
async fn print_line(line: serde_json::Result<String>) -> std::io::Result<()> {
    let line = line?;
    let mut watch = StallWatch(true);
    let written = Lines::stdout().write(line).await;
    watch.0 = false;
    match written {
        Ok(()) => {
            // As the writer last found it, whatever order the waiters of
            // its writes wake in.
            let was_failing = Lines::stdout().failing().is_none()
                && STDOUT_FAILING.swap(false, Ordering::Relaxed);
            let was_stalled = STDOUT_STALLED.swap(false, Ordering::Relaxed);
            if was_failing || was_stalled {
                tracing::info!("stdout takes the events' lines again");
            }
            Ok(())
        }
        Err(e) => {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                stdout_closed();
            } else if Lines::stdout().failing().is_some() {
                stdout_failing(&e.to_string());
            }
            Err(std::io::Error::new(
                e.kind(),
                format!("writing the event's line: {e}"),
            ))
        }
    }
}

/// Set while the events' lines fail to be written other than at a closed
/// stdout (a full disk, an I/O error): said once each time it begins.
static STDOUT_FAILING: AtomicBool = AtomicBool::new(false);

/// Set once a delivery gave up waiting for its line (stdout's reader not
/// reading) until a line is written again: said once each time it begins,
/// so that the handler's time limit in the log has its cause beside it.
static STDOUT_STALLED: AtomicBool = AtomicBool::new(false);

/// Dropped armed, [`print_line`] stopped waiting for its line (the
/// delivery's time limit ran out): if a write is still under way, stdout is
/// not being read, which is said.
struct StallWatch(bool);

impl Drop for StallWatch {
    fn drop(&mut self) {
        if self.0
            && let Some(stalled) = Lines::stdout().stalled_for()
            && stalled >= Duration::from_millis(500)
            && !STDOUT_STALLED.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "stdout has taken no line for {}s (its reader stopped reading): each delivery \
                 waits for its line and gets 503 past the handler's time limit, until it reads again",
                stalled.as_secs()
            );
        }
    }
}

/// How long after a line failed to be written (not at a closed stdout)
/// `/readyz` answers 503, unless a line is written since: long enough for
/// a load balancer to take `serve` out, short enough that it gets
/// deliveries again, and so tries again, once what failed (a full disk)
/// may have passed.
const UNREADY_AFTER_A_FAILED_LINE: Duration = Duration::from_secs(30);

/// Says, once each time it begins, that the events' lines fail to be
/// written.
#[cold]
fn stdout_failing(why: &str) {
    if !STDOUT_FAILING.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "an event's line could not be written to stdout ({why}): deliveries get 500 and are \
             not marked done until a line is written again; /readyz answers 503 for {}s after \
             each failure",
            UNREADY_AFTER_A_FAILED_LINE.as_secs()
        );
    }
}

/// Set once an event's line found stdout closed (a pipe whose reader has
/// gone, which never comes back): `/readyz` then answers 503.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Told once stdout is closed: `serve` then stops, as a stop signal would
/// have it, and exits 1.
static STDOUT_GONE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Says, once, that stdout is closed, marks `serve` not ready, and has it
/// stop: a reader that has gone never comes back, and a `serve` left
/// running would answer every delivery 500 with nothing (a liveness probe,
/// the shell running `serve | reader`) to start it again.
#[cold]
fn stdout_closed() {
    if !STDOUT_CLOSED.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "stdout is closed (its reader has gone): no event's line can be written, so serve \
             stops (exit 1; the deliveries in progress get 500 and Kustomer sends them again) \
             to be started again with a reader; /readyz answers 503 meanwhile"
        );
        STDOUT_GONE.notify_one();
    }
}

/// The built-in handler, a catch-all: prints each event's line, with the
/// name it was dispatched by (a body without `name` is the event its header
/// names).
async fn print_event(event: AnyEvent) -> std::io::Result<()> {
    let name = event.name();
    // Rare (drift): an id of another JSON type, as written, read back from
    // the event.
    let envelope = event.envelope();
    let (no_id, no_resource_id) = (
        envelope.event_id().is_none(),
        envelope.resource_id().is_none(),
    );
    let mut body = (no_id || no_resource_id)
        .then(|| serde_json::to_value(&event).ok())
        .flatten();
    let mut take = |wanted: bool, pointer: &str| {
        body.as_mut()
            .filter(|_| wanted)
            .and_then(|body| body.pointer_mut(pointer).map(serde_json::Value::take))
            .filter(|id| !id.is_null())
    };
    let other_id = take(no_id, "/id");
    let other_resource_id = take(no_resource_id, "/data/id");
    print_line(line(
        event.envelope(),
        other_id,
        other_resource_id,
        name.as_str(),
        event.is_typed(),
        event.drift(),
    ))
    .await
}

fn receiver(verifier: SharedVerifier) -> Result<Receiver> {
    let dispatcher = Dispatcher::builder().handler(print_event).build()?;
    Ok(Receiver::with_shared_verifier(dispatcher, verifier))
}

/// `serve`: a receiver at `POST /` until interrupted.
pub async fn serve(
    addr: SocketAddr,
    sources: Sources,
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))] mut options: ServeOptions,
) -> Result<ExitCode> {
    // Rejections, handler failures and store trouble go to stderr, one line
    // each; stdout keeps one JSON line per dispatched event.
    crate::log::init(options.log_format, options.log_level);
    for ignored in &options.ignored {
        note!("warning: {ignored}");
    }
    options.server = fit_to_open_files(options.server);
    let secrets = sources.read()?;
    // Files of secrets other users can read, or change (a token added to a
    // file is accepted at the next reload).
    let keys = options.tls.iter().map(|(_, key)| (key, "a private key"));
    let redis_key = options
        .redis
        .iter()
        .filter_map(|redis| redis.client_identity.as_ref())
        .map(|(_, key)| (key, "a private key"));
    for (file, holds) in (sources.token_files.iter().map(|f| (f, "tokens")))
        .chain(sources.header_files.iter().map(|f| (f, "header secrets")))
        .chain(keys)
        .chain(redis_key)
    {
        if let Some(warning) = crate::secrets::open_to_others(file, holds) {
            note!("warning: {warning}");
        }
    }
    // Whether a delivery must carry custom headers (a replay too).
    let asks_headers = !sources.headers.is_empty() || !sources.header_files.is_empty();
    let tls = tls(options.tls.take())?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &tls {
        options.server = options.server.with_tls(tls.clone());
    }
    let verifier = SharedVerifier::new(secrets.verifier());
    let tokens = secrets.tokens.len();
    let mut receiver = receiver(verifier.clone())?
        .with_timeout(options.handler_timeout)
        .with_limit(options.max_body)
        .with_read_timeout(options.body_timeout);
    if let Some(age) = options.max_event_age.filter(|age| !age.is_zero()) {
        if let Some(warning) = age_warning(age) {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            "events created more than {} s ago are not dispatched (--max-event-age), unless sent \
             again with the token",
            age.as_secs()
        );
        receiver = receiver.with_max_event_age(age);
    }
    let counters = receiver.counters();
    let capturing = options.capture.as_ref().map(|c| c.dir().to_owned());
    let capture_counts = options.capture.as_ref().map(Capture::counts);
    if let Some(capture) = options.capture {
        capture.check().with_context(|| {
            format!("--capture {}: cannot write in it", capture.dir().display())
        })?;
        warn_if_shared(capture.dir());
        receiver = receiver.with_capture(capture);
    }
    // With Redis, the revisions are kept there, beside the event ids.
    if options.ordering && options.redis.is_none() {
        receiver = receiver.with_ordering(match options.ordering_max_resources {
            Some(max) => {
                OrderingGuard::with_limits(kustomer_webhooks::dedupe::DEFAULT_RETENTION, max)
            }
            None => OrderingGuard::new(),
        });
    }
    let dead_letters = match &options.dead_letters {
        Some((dir, max)) => {
            let mut letters = DeadLetters::open(dir)?;
            warn_if_shared(letters.dir());
            if let Some(max) = *max {
                letters = letters.with_max_pending(max);
            }
            receiver = receiver.with_dead_letters(letters.clone());
            Some(letters)
        }
        None => None,
    };
    if let (Some(capturing), Some(letters)) = (&capturing, &dead_letters)
        && same_dir(capturing, letters.dir())
    {
        anyhow::bail!(
            "--capture and --dead-letters name one directory ({}): every delivery captured \
             there would be taken for a dead letter, and sent again; give each its own",
            letters.dir().display()
        );
    }
    // Set once a signal asked serve to stop: `/readyz` then answers 503, so
    // that a load balancer sends new deliveries elsewhere.
    let stopping = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(Reloads::new(secrets.tokens.len(), tls.is_some()));
    let mut store = None;
    let mut catch_up = None;
    if let Some(redis) = options.redis {
        let probe;
        // Claims outlast the longest a handler may run (the receiver's own
        // default store is sized so).
        let claim = kustomer_webhooks::dedupe::in_progress_timeout_for(
            options.handler_timeout,
            options.ordering,
        );
        (receiver, probe, catch_up) = with_redis(receiver, redis, options.ordering, claim).await?;
        store = Some(probe);
    }
    let app = kustomer_webhooks::axum::router_at(&options.path, receiver);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    if let Some(metrics) = options.metrics {
        let receiving = listener.local_addr()?;
        let overlaps = |a: std::net::IpAddr, b: std::net::IpAddr| {
            a == b || a.is_unspecified() || b.is_unspecified()
        };
        if metrics.port() != 0
            && metrics.port() == receiving.port()
            && overlaps(metrics.ip(), receiving.ip())
        {
            anyhow::bail!(
                "--metrics-addr {metrics} is the address deliveries are received at (--addr \
                 {addr}): give the metrics a port of their own"
            );
        }
        let health = tokio::net::TcpListener::bind(metrics)
            .await
            .with_context(|| format!("binding {metrics} (--metrics-addr)"))?;
        note!(
            "metrics at http://{0}/metrics, health checks at http://{0}/healthz and /readyz",
            health.local_addr()?
        );
        let app = health_router(
            (counters.clone(), capture_counts.clone()),
            store,
            dead_letters.clone(),
            reloads.clone(),
            stopping.clone(),
            options.server.clone(),
            stall_limit(options.handler_timeout),
        );
        let server = Server::new()
            .with_head_timeout(HEALTH_HEAD_TIMEOUT)
            .with_max_connections(HEALTH_CONNECTIONS);
        tokio::spawn(async move { server.serve(health, app, std::future::pending()).await });
    }
    if tokens > 1 {
        note!("accepting deliveries signed with any of {tokens} tokens");
    }
    // Listening before the first delivery can arrive, so that a SIGHUP from
    // then on never meets the default action, which is to stop serving.
    let hangup = Hangup::listen();
    // SIGINT and SIGTERM from now on (before, they end the process at
    // once, as while it connects to Redis): a second one during the stop
    // is heard too.
    let mut stops = StopSignals::listen();
    let scheme = if tls.is_some() { "https" } else { "http" };
    note!(
        "receiving Kustomer webhooks at {scheme}://{}{}",
        listener.local_addr()?,
        options.path
    );
    if let Some(tls) = &tls {
        if let Some((cert, _)) = tls.files() {
            note!(
                "serving the TLS certificate in {}{}",
                cert.display(),
                valid_until(tls.validity())
            );
        }
        tokio::spawn(watch_validity(tls.clone()));
    }
    // Tokens given on the command line or by KUSTOMER_WEBHOOK_TOKEN beside
    // token files: no reload of the files can remove them.
    if !sources.tokens.is_empty() && !sources.token_files.is_empty() {
        tracing::warn!(
            "{} token(s) given by --token or KUSTOMER_WEBHOOK_TOKEN beside --token-file: they \
             stay accepted for as long as serve runs, whatever the token files say after a \
             reload (to rotate by file alone, give the tokens by file alone)",
            sources.tokens.len()
        );
    }
    if sources.has_files() || tls.is_some() {
        tokio::spawn(reload(
            sources,
            secrets,
            verifier,
            tls,
            hangup,
            options.reload_every,
            reloads,
        ));
    } else {
        tokio::spawn(nothing_to_reload(hangup));
    }
    if let Some(letters) = &dead_letters {
        note!(
            "keeping deliveries that fail in {} until they are handled (they hold personal data)",
            letters.dir().display()
        );
        waiting(letters, asks_headers);
    }
    if let Some(dir) = capturing {
        note!(
            "saving deliveries into {} (they hold personal data)",
            dir.display()
        );
    }
    // The first SIGINT or SIGTERM stops serving gracefully; a second one
    // stops at once.
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let server = options.server.clone();
    let delay = options.stop_delay;
    // `/readyz` is served on the metrics address alone.
    let readyz = if options.metrics.is_some() {
        "/readyz answers 503, and deliveries are still taken meanwhile"
    } else {
        "deliveries are still taken meanwhile (without --metrics-addr, no /readyz tells a load \
         balancer)"
    };
    if !delay.is_zero() && options.metrics.is_none() {
        tracing::warn!(
            "--stop-delay without --metrics-addr: no /readyz tells a load balancer that serve is \
             stopping, so the delay only keeps it taking deliveries"
        );
    }
    tokio::spawn(async move {
        let at_once = |again: Stop| {
            let left = server.requests_in_progress();
            note!(
                "warning: {} again: stopping at once, {left} {} in progress not answered \
                 (Kustomer sends {} again)",
                again.name(),
                if left == 1 { "delivery" } else { "deliveries" },
                if left == 1 { "it" } else { "them" },
            );
            settle_stdout(Duration::from_secs(1));
            crate::log::flush(Duration::from_secs(2));
            std::process::exit(again.exit_code());
        };
        let stdout_gone = tokio::select! {
            _ = stops.next() => false,
            () = STDOUT_GONE.notified() => true,
        };
        stopping.store(true, Ordering::Relaxed);
        // Without a reader, taking deliveries a while longer only fails
        // them.
        if !delay.is_zero() && !stdout_gone {
            // `/readyz` already answers 503: time for a load balancer to
            // see it and send deliveries elsewhere, while they are taken.
            note!("stopping in {}s (--stop-delay): {readyz}", delay.as_secs());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                again = stops.next() => at_once(again),
            }
        }
        note!("stopping: finishing the deliveries in progress");
        let _ = stop.send(());
        at_once(stops.next().await);
    });
    options
        .server
        .serve(listener, app, async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await;
    note!("stopped; every delivery in progress was answered ({counters})");
    // Writes the store failed after a delivery was answered, still being
    // tried: a last chance, then said, as they end with the process.
    let left = kustomer_webhooks::receiver::finish_retried_writes(RETRIED_WRITES_GRACE).await;
    if left > 0 {
        note!(
            "warning: {left} {} the store failed after {} delivery was answered (a handled \
             event's id, an update's revision) could not be written before the stop: a retry \
             of {} may be handled again",
            if left == 1 { "write" } else { "writes" },
            if left == 1 { "its" } else { "their" },
            if left == 1 {
                "that event"
            } else {
                "those events"
            },
        );
    }
    if let Some(catch_up) = catch_up {
        // What an outage left to tell Redis goes now, or is lost with the
        // process: say so.
        let untold = catch_up().await;
        if untold > 0 {
            note!(
                "warning: {untold} ids or revisions handled while Redis could not be reached \
                 were not told to it (it does not answer): a retry of those events that \
                 reaches another replica is handled again"
            );
        }
    }
    if let Some(letters) = &dead_letters {
        letters.refresh().await;
        waiting(letters, asks_headers);
    }
    settle_stdout(STDOUT_SETTLE);
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        note!("error: stopped because stdout is closed (its reader has gone)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a stopping `serve` tries again the writes its store failed
/// after their deliveries were answered
/// ([`kustomer_webhooks::receiver::finish_retried_writes`]).
const RETRIED_WRITES_GRACE: Duration = Duration::from_secs(5);

/// How long a stopping `serve` waits for a line being written to stdout
/// (a slow reader) to be written whole.
const STDOUT_SETTLE: Duration = Duration::from_secs(5);

/// Lets a write to stdout under way end before the process does (see
/// [`Lines::settle`]), and says so if its reader has stopped reading.
fn settle_stdout(within: Duration) {
    match Lines::stdout().settle(within) {
        crate::out::Settled::Whole => {}
        crate::out::Settled::StillWriting => note!(
            "warning: stdout's reader did not take the last lines within {}s: one may be left \
             unwritten, or cut short if longer than a pipe takes whole (4 KiB on Linux; its \
             delivery was not acknowledged, and Kustomer sends it again)",
            within.as_secs()
        ),
        crate::out::Settled::CutShort(why) => note!(
            "warning: stdout's last line was cut short by a failed write, and could not be \
             ended ({why}): its delivery was not acknowledged (Kustomer sends it again), but \
             the next line appended to the same file is glued to it; add a newline first"
        ),
    }
}

/// A signal that stops `serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what a container's stop sends).
    #[cfg_attr(not(unix), allow(dead_code))]
    Terminate,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// The exit code of a stop at once: 128 and the signal's number, as a
    /// shell reports a process the signal ended.
    fn exit_code(self) -> i32 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, each listened for once made, so that none that
/// comes later is missed.
struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// The next SIGINT or SIGTERM; never where neither can be listened for.
    async fn next(&mut self) -> Stop {
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                if let Some(signal) = signal
                    && signal.recv().await.is_some()
                {
                    return;
                }
                std::future::pending().await
            }
            tokio::select! {
                () = recv(&mut self.interrupt) => Stop::Interrupt,
                () = recv(&mut self.terminate) => Stop::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            Stop::Interrupt
        }
    }
}

/// Whether two directories that exist are one (through links, or `.` and
/// its full path).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Says so when `dir` (of captures or dead letters) lets other users of the
/// machine in: its files are owner-only, but their names are event ids.
fn warn_if_shared(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                note!(
                    "warning: {} is open to other users of this machine (mode {mode:o}); its \
                     files are owner-only, but their names are event ids: `chmod 700` it",
                    dir.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Says how many dead letters wait to be replayed, if any, and the command
/// that replays them (with the custom headers, when `serve` asks for some:
/// a dead letter keeps the body alone).
fn waiting(letters: &DeadLetters, headers: bool) {
    let n = letters.pending();
    if n > 0 {
        let dir = letters.dir();
        let headers = if headers { " --header-file FILE" } else { "" };
        note!(
            "dead letters waiting in {}: {n}; once they can be handled, replay them with \
             `kustomer-webhooks send --url URL --token-file FILE{headers} {}` (within the \
             idempotency store's retention, {} minutes, an event handled meanwhile is \
             acknowledged as a duplicate; after it, the replay handles it again)",
            dir.display(),
            // A relative name that starts with `-` would be read as an
            // option: `./-dir`.
            crate::out::shell_word(&if dir.to_string_lossy().starts_with('-') {
                std::path::Path::new(".").join(dir)
            } else {
                dir.to_owned()
            }),
            kustomer_webhooks::dedupe::DEFAULT_RETENTION.as_secs() / 60
        );
    }
}

/// The shared store's state, as `--metrics-addr` reports it.
struct StoreState {
    /// `Err((why, refused))` where the store does not answer a ping and a
    /// write (within 2 s): `refused` when it answers but refuses them (a
    /// refusal, unlike an outage, is not something failing open covers).
    answers: Result<(), (String, bool)>,
    /// Failing open: whether the store is taken to be down now (ids claimed
    /// in the process), and how many ids were claimed in the process so far.
    fail_open: Option<(bool, u64)>,
}

/// Asks the shared store how it is.
type StoreProbe = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = StoreState> + Send>> + Send + Sync,
>;

/// Failing open: tells the shared store, if it answers, what an outage
/// left to tell it; how many ids and revisions are still untold.
type CatchUp =
    std::sync::Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = usize> + Send>> + Send + Sync>;

/// How long a write to stdout may wait before `/readyz` answers 503: the
/// handler's time limit (a delivery waiting that long for its line gets
/// 503), and at least a second, so that a slow reader's moment is not taken
/// for one that stopped.
fn stall_limit(handler_timeout: Duration) -> Duration {
    handler_timeout.max(Duration::from_secs(1))
}

/// `GET /healthz` (the process serves), `GET /readyz` (it can handle
/// deliveries: it is not `stopping`, stdout takes its lines, and its shared
/// store answers or it fails open) and `GET /metrics` (Prometheus's text format: the receiver's
/// counters and, with a shared store, its state).
fn health_router(
    (counters, captures): (
        Arc<kustomer_webhooks::receiver::Counters>,
        Option<Arc<kustomer_webhooks::capture::CaptureCounts>>,
    ),
    store: Option<StoreProbe>,
    dead_letters: Option<DeadLetters>,
    reloads: Arc<Reloads>,
    stopping: Arc<AtomicBool>,
    server: Server,
    stall_limit: Duration,
) -> axum::Router {
    use axum::http::{StatusCode, header::CONTENT_TYPE};
    use axum::routing::get;

    let probe = store.clone();
    let ready = move || {
        let (probe, stopping) = (probe.clone(), stopping.clone());
        async move {
            if stopping.load(Ordering::Relaxed) {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: stopping (deliveries still arriving are taken until any \
                     --stop-delay ends, and those in progress are finished)\n"
                        .to_owned(),
                );
            }
            // A line's write that found stdout closed, whoever waited for
            // it (one that gave up at its time limit counts too).
            if Lines::stdout().closed() {
                stdout_closed();
            }
            if STDOUT_CLOSED.load(Ordering::Relaxed) {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: stdout is closed, so no event's line can be written \
                     (each delivery gets 500)\n"
                        .to_owned(),
                );
            }
            // A line that failed to be written otherwise (a full disk).
            if let Some((ago, why)) = Lines::stdout().failing()
                && ago < UNREADY_AFTER_A_FAILED_LINE
            {
                stdout_failing(&why);
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "not ready: an event's line could not be written to stdout {}s ago ({why}), so \
                         deliveries get 500 until a line is written again\n",
                        ago.as_secs()
                    ),
                );
            }
            // A reader that stopped reading: each delivery waits for its
            // line up to its time limit and gets 503, until it reads again.
            if let Some(stalled) = Lines::stdout().stalled_for()
                && stalled >= stall_limit
            {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "not ready: stdout has taken no line for {}s (its reader stopped \
                         reading), so deliveries get 503 until it reads again\n",
                        stalled.as_secs()
                    ),
                );
            }
            let Some(probe) = probe else {
                return (StatusCode::OK, "ready\n".to_owned());
            };
            match probe().await {
                StoreState {
                    answers: Ok(()), ..
                } => (StatusCode::OK, "ready\n".to_owned()),
                StoreState {
                    answers: Err((why, false)),
                    fail_open: Some(_),
                } => (
                    StatusCode::OK,
                    format!(
                        "ready: Redis does not answer ({why}); claiming event ids in this process\n"
                    ),
                ),
                StoreState {
                    answers: Err((why, true)),
                    ..
                } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: Redis refuses the store ({why})\n"),
                ),
                StoreState {
                    answers: Err((why, false)),
                    fail_open: None,
                } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: Redis does not answer ({why})\n"),
                ),
            }
        }
    };
    let metrics = move || {
        let (counters, probe) = (counters.clone(), store.clone());
        let captures = captures.clone();
        let letters = dead_letters.clone();
        let reloads = reloads.clone();
        let server = server.clone();
        async move {
            let mut text = counters.prometheus();
            if let Some(captures) = captures {
                text += &captures.prometheus();
            }
            if let Some(letters) = letters {
                // Files replayed elsewhere or removed by hand stop counting.
                letters.refresh().await;
                text += &letters.prometheus();
            }
            text += &reloads.prometheus();
            text += &server.prometheus();
            let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
                text += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
            };
            metric(
                "kustomer_webhooks_log_lines_dropped_total",
                "counter",
                "Log lines dropped because stderr was not read fast enough.",
                crate::log::dropped(),
            );
            if let Some(probe) = probe {
                let state = probe().await;
                metric(
                    "kustomer_webhooks_store_up",
                    "gauge",
                    "Whether the shared idempotency store (Redis) answers a ping and takes a write.",
                    u64::from(state.answers.is_ok()),
                );
                if let Some((down, claimed)) = state.fail_open {
                    metric(
                        "kustomer_webhooks_fail_open_active",
                        "gauge",
                        "Whether event ids are claimed in this process, the store taken to be down.",
                        u64::from(down),
                    );
                    metric(
                        "kustomer_webhooks_fail_open_claims_total",
                        "counter",
                        "Event ids claimed in this process while the store was down.",
                        claimed,
                    );
                }
            }
            (
                [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                text,
            )
        }
    };
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// What `serve` does besides receiving: capture, the ordering guard, and
/// where event ids are claimed.
pub struct ServeOptions {
    /// Options left out, each said once the log is set up (set by an
    /// environment variable without what they need).
    pub ignored: Vec<String>,
    /// The path deliveries are posted to (`/`, or one checked by
    /// [`path_arg`]).
    pub path: String,
    /// Save deliveries here.
    pub capture: Option<Capture>,
    /// Acknowledge stale updates without dispatching them.
    pub ordering: bool,
    /// The most resources the in-process ordering guard remembers
    /// (`None`: its default).
    pub ordering_max_resources: Option<u64>,
    /// Refuse events created longer ago than this.
    pub max_event_age: Option<Duration>,
    /// How long a delivery's handler (writing its line) may take.
    pub handler_timeout: Duration,
    /// The largest body taken (413 past it).
    pub max_body: usize,
    /// How long a body may take to arrive (408 past it).
    pub body_timeout: Duration,
    /// How connections are taken: the time limit on request heads, and
    /// how many at once.
    pub server: Server,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Claim event ids in this Redis instead of in the process.
    pub redis: Option<RedisOptions>,
    /// Serve `/metrics`, `/healthz` and `/readyz` on this address.
    pub metrics: Option<SocketAddr>,
    /// Keep the deliveries that fail in this directory, at most this many
    /// events when limited.
    pub dead_letters: Option<(PathBuf, Option<usize>)>,
    /// How the log on stderr is written.
    pub log_format: crate::log::Format,
    /// The least severe log lines written.
    pub log_level: crate::log::LogLevel,
    /// Read the token and header files again this often (and on SIGHUP);
    /// `None`: only on SIGHUP.
    pub reload_every: Option<Duration>,
    /// After a stop signal, how long deliveries are still taken (while
    /// `/readyz` answers 503) before the graceful stop begins.
    pub stop_delay: Duration,
}

/// `error` with the runtime's names of the TLS files' contents
/// (`root_cert`, `client_cert`, `client_key`) told as the options and files
/// they came from.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
fn with_files_named(error: &str, options: &RedisOptions) -> String {
    let mut text = error.to_owned();
    let files = [
        ("root_cert", "--redis-ca-cert", options.ca_cert.as_ref()),
        (
            "client_cert",
            "--redis-client-cert",
            options.client_identity.as_ref().map(|(cert, _)| cert),
        ),
        (
            "client_key",
            "--redis-client-key",
            options.client_identity.as_ref().map(|(_, key)| key),
        ),
    ];
    // In one pass, so that a file's own name is left as it is.
    let mut named = String::new();
    while let Some((at, name, said)) = files
        .iter()
        .filter_map(|(name, option, file)| {
            let said = format!("{option} {}", (*file)?.display());
            text.find(name).map(|at| (at, *name, said))
        })
        .min_by_key(|(at, ..)| *at)
    {
        named.push_str(&text[..at]);
        named.push_str(&said);
        text = text[at + name.len()..].to_owned();
    }
    named + &text
}

/// The Redis of `serve --redis`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub struct RedisOptions {
    /// `redis://…` or `rediss://…`: the server, nodes of the cluster, or
    /// Sentinels.
    pub urls: Vec<String>,
    /// What the URLs lead to.
    pub topology: Topology,
    /// The prefix of the keys, when not the default.
    pub prefix: Option<String>,
    /// While Redis is out of reach, claim ids in the process.
    pub fail_open: bool,
    /// Over TLS: the authority to trust instead of the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Over TLS: the client's certificate and key.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// What the URLs of `serve --redis` lead to.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub enum Topology {
    /// One server (or a primary behind one address).
    Single,
    /// Nodes of a Redis Cluster (`--redis-cluster`).
    Cluster,
    /// Sentinels, and the name they know the primary by
    /// (`--redis-sentinel`).
    Sentinel(String),
}

/// `receiver` with its event ids claimed in the Redis of `options`, and a
/// probe of that Redis.
#[cfg(feature = "redis")]
async fn with_redis(
    receiver: Receiver,
    options: RedisOptions,
    ordering: bool,
    claim: Duration,
) -> Result<(Receiver, StoreProbe, Option<CatchUp>)> {
    use kustomer_webhooks::dedupe::{MemoryStore, RedisStore, StoreError};
    use kustomer_webhooks::redis::{ClientTlsConfig, TlsCertificates};

    let read = |path: &PathBuf, flag: &str| {
        std::fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))
    };
    if options.urls.is_empty() {
        anyhow::bail!("--redis (or KUSTOMER_WEBHOOKS_REDIS_URL) holds no URL");
    }
    if options.urls.len() > 1 && matches!(options.topology, Topology::Single) {
        anyhow::bail!(
            "--redis more than once, or a --redis value with white space in it, names the \
             nodes of a cluster (add --redis-cluster) or Sentinels (add --redis-sentinel \
             NAME); a URL holds no white space (write a space in a password as %20)"
        );
    }
    let certificates = if options.ca_cert.is_none() && options.client_identity.is_none() {
        None
    } else {
        if !options.urls.iter().all(|url| {
            url.get(..9)
                .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
        }) {
            anyhow::bail!(
                "--redis-ca-cert and --redis-client-cert are for Redis over TLS: a rediss:// URL"
            );
        }
        Some(TlsCertificates {
            root_cert: options
                .ca_cert
                .as_ref()
                .map(|path| read(path, "--redis-ca-cert"))
                .transpose()?,
            client_tls: match &options.client_identity {
                Some((cert, key)) => Some(ClientTlsConfig {
                    client_cert: read(cert, "--redis-client-cert")?,
                    client_key: read(key, "--redis-client-key")?,
                }),
                None => None,
            },
        })
    };
    // Failing open, a `serve` (re)started while its Redis is down serves
    // from the start, and connects once Redis is up.
    let lazy = options.fail_open;
    let urls = &options.urls;
    let connecting = match (&options.topology, certificates) {
        (Topology::Single, None) if lazy => RedisStore::connect_lazy(&urls[0]),
        (Topology::Single, Some(certificates)) if lazy => {
            RedisStore::connect_lazy_tls(&urls[0], certificates)
        }
        (Topology::Single, None) => RedisStore::connect(&urls[0]).await,
        (Topology::Single, Some(certificates)) => {
            RedisStore::connect_tls(&urls[0], certificates).await
        }
        (Topology::Cluster, None) if lazy => RedisStore::connect_cluster_lazy(urls),
        (Topology::Cluster, Some(certificates)) if lazy => {
            RedisStore::connect_cluster_lazy_tls(urls, certificates)
        }
        (Topology::Cluster, None) => RedisStore::connect_cluster(urls).await,
        (Topology::Cluster, Some(certificates)) => {
            RedisStore::connect_cluster_tls(urls, certificates).await
        }
        (Topology::Sentinel(service), None) if lazy => {
            RedisStore::connect_sentinel_lazy(urls, service)
        }
        (Topology::Sentinel(service), Some(certificates)) if lazy => {
            RedisStore::connect_sentinel_lazy_tls(urls, service, certificates)
        }
        (Topology::Sentinel(service), None) => RedisStore::connect_sentinel(urls, service).await,
        (Topology::Sentinel(service), Some(certificates)) => {
            RedisStore::connect_sentinel_tls(urls, service, certificates).await
        }
    };
    let mut store = connecting
        .map_err(|e| {
            let text = e.to_string();
            let named = with_files_named(&text, &options);
            match kustomer_webhooks::__private::no_tls_hint(urls, &text) {
                Some(hint) => anyhow::anyhow!("{named}{hint}"),
                None if named != text => anyhow::anyhow!("{named}"),
                None => anyhow::Error::new(e),
            }
        })
        .context("connecting to Redis (--redis)")?
        .with_in_progress_timeout(claim);
    // Settings Redis refuses (a wrong password, a user who may not write, a
    // replica) are found now rather than at the first delivery; failing
    // open, a Redis down for now is no reason not to start.
    // (The probe writes under the prefix: set it first, for a user allowed
    // only its own keys.)
    if let Some(prefix) = options.prefix {
        store = store.with_prefix(prefix);
    }
    let open = options.fail_open.then(|| {
        let memory = MemoryStore::builder().in_progress_timeout(claim).build();
        std::sync::Arc::new(kustomer_webhooks::dedupe::FailOpen::with_memory(
            store.clone(),
            memory,
        ))
    });
    match store.ping().await {
        Ok(()) => {}
        Err(err @ StoreError::Unavailable(_)) if lazy => {
            if let StoreError::Unavailable(e) = &err {
                let hint = kustomer_webhooks::__private::no_tls_hint(urls, &e.to_string())
                    .unwrap_or_default();
                note!(
                    "warning: Redis cannot be reached for now ({e}{hint}): claiming event ids in this process until it can"
                );
            }
            // So that `/metrics` says so from the start.
            if let Some(open) = &open {
                open.found_down(&err);
            }
        }
        // Connected, but busy for now (loading its data): deliveries get
        // 503 until it is done.
        Err(StoreError::Unavailable(e)) => {
            note!(
                "warning: Redis does not take claims for now ({e}): deliveries get 503 until it does"
            );
        }
        Err(e) => return Err(anyhow!(e).context("connecting to Redis (--redis)")),
    }
    let on = match &options.topology {
        Topology::Single => String::new(),
        Topology::Cluster => " Cluster".to_owned(),
        Topology::Sentinel(service) => format!(" (the primary the Sentinels name {service:?})"),
    };
    note!(
        "claiming event ids{} in Redis{on}, under the prefix {:?}{}",
        if ordering {
            " and keeping the revisions of --ordering"
        } else {
            ""
        },
        store.prefix(),
        if options.fail_open {
            "; in this process while Redis cannot be reached"
        } else {
            ""
        }
    );
    let probe: StoreProbe = {
        let (store, open) = (store.clone(), open.clone());
        std::sync::Arc::new(move || {
            let (store, open) = (store.clone(), open.clone());
            Box::pin(async move {
                let answers = match tokio::time::timeout(Duration::from_secs(2), store.ping()).await
                {
                    Ok(Ok(())) => Ok(()),
                    // The cause alone: the line already says Redis
                    // refuses or does not answer.
                    Ok(Err(e)) => Err(match &e {
                        StoreError::Unavailable(why) => (why.to_string(), false),
                        StoreError::Failed(why) => (why.to_string(), true),
                        other => (other.to_string(), true),
                    }),
                    Err(_) => Err(("no answer within 2 s".to_owned(), false)),
                };
                StoreState {
                    answers,
                    fail_open: open.map(|open| (open.is_down(), open.claimed_in_memory())),
                }
            })
        })
    };
    let catch_up = open.clone().map(|open| {
        // Told what the outage left as soon as Redis answers again, with
        // or without deliveries to reach it.
        tokio::spawn(catch_up_every(store.clone(), open.clone(), CATCH_UP_EVERY));
        let store = store.clone();
        let catch_up: CatchUp = std::sync::Arc::new(move || {
            let (store, open) = (store.clone(), open.clone());
            Box::pin(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), catch_up(&store, &open)).await;
                open.untold()
            })
        });
        catch_up
    });
    let receiver = match open {
        Some(open) if ordering => receiver.with_store(open.clone()).with_ordering(open),
        Some(open) => receiver.with_store(open),
        None if ordering => receiver.with_store(store.clone()).with_ordering(store),
        None => receiver.with_store(store),
    };
    Ok((receiver, probe, catch_up))
}

/// How often a failing-open `serve` looks whether Redis answers again,
/// while it has taken it to be down or has something to tell it.
#[cfg(feature = "redis")]
const CATCH_UP_EVERY: Duration = Duration::from_secs(5);

/// Every `every`, while `open` takes Redis to be down or holds what an
/// outage left to tell it: once Redis answers a ping and a write, tells
/// it everything (ids handled and revisions recorded meanwhile).
#[cfg(feature = "redis")]
async fn catch_up_every(
    store: kustomer_webhooks::dedupe::RedisStore,
    open: std::sync::Arc<
        kustomer_webhooks::dedupe::FailOpen<kustomer_webhooks::dedupe::RedisStore>,
    >,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        if open.is_down() || open.untold() > 0 {
            let _ = tokio::time::timeout(every, catch_up(&store, &open)).await;
        }
    }
}

/// If Redis answers a ping and a write, tells it what the outage left.
#[cfg(feature = "redis")]
async fn catch_up(
    store: &kustomer_webhooks::dedupe::RedisStore,
    open: &kustomer_webhooks::dedupe::FailOpen<kustomer_webhooks::dedupe::RedisStore>,
) {
    if let Err(e) = store.ping().await {
        open.found_down(&e);
        return;
    }
    let untold = open.untold();
    if open.catch_up().await.is_ok() && open.catch_up_revisions().await.is_ok() && untold > 0 {
        tracing::info!(
            "told Redis the {untold} ids and revisions handled while it could not be reached"
        );
    }
}

/// Without the `redis` feature, `--redis` is an error.
#[cfg(not(feature = "redis"))]
async fn with_redis(
    _: Receiver,
    _: RedisOptions,
    _: bool,
    _: Duration,
) -> Result<(Receiver, StoreProbe, Option<CatchUp>)> {
    Err(anyhow!(
        "--redis: this build of kustomer-webhooks has no Redis store (built without its \
         `redis` feature)"
    ))
}

/// The files `send` posts: each file `paths` names, and each directory's
/// `.json`, `.jsonl` and `.ndjson` files. A directory without any is said and skipped
/// (a dead-letter directory with nothing to replay), and so are a
/// directory's subdirectories; the first path that cannot be read is the
/// error.
fn payloads(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = crate::parse::payload_files_in(path)
                .with_context(|| format!("reading the directory {}", path.display()))?;
            found.say_subdirectories(path, "sent");
            if found.files.is_empty() {
                note!(
                    "{}: no .json, .jsonl or .ndjson payload files in it, nothing to send",
                    printable(&path.display().to_string())
                );
            }
            files.extend(found.files);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// What a delivery came to.
struct Delivered {
    status: u16,
    reply: String,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> reqwest::Result<Delivered> {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let mut res = req.send().await?;
    let status = res.status().as_u16();
    // The reply, as far as it is worth showing: a receiver's answer is a
    // line of JSON, but a proxy's may be a page, or endless.
    let mut reply = Vec::new();
    while reply.len() < MAX_REPLY
        && let Ok(Some(chunk)) = res.chunk().await
    {
        reply.extend_from_slice(&chunk);
    }
    let cut = reply.len() > MAX_REPLY;
    reply.truncate(MAX_REPLY);
    let mut reply = String::from_utf8_lossy(&reply).trim_end().to_owned();
    if cut {
        reply.push_str(" …");
    }
    // Where a redirect points, before its page (which rarely says).
    if let Some(location) = res.headers().get(reqwest::header::LOCATION) {
        let location = format!(
            "(Location: {})",
            String::from_utf8_lossy(location.as_bytes())
        );
        reply = if reply.is_empty() {
            location
        } else {
            format!("{location} {reply}")
        };
    }
    Ok(Delivered { status, reply })
}

/// How much of a reply `send` shows.
const MAX_REPLY: usize = 2048;

/// Signs `body` and posts it as Kustomer does.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    custom: &[(String, String)],
    body: Vec<u8>,
) -> reqwest::Result<Delivered> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut headers = vec![
        (SIGNATURE_HEADER, sign(token.as_bytes(), &body)),
        // Sent now by whoever holds the token: a receiver with a max event
        // age handles the event whatever its age (a dead letter, a capture).
        (RESENT_HEADER, sign_resent(token.as_bytes(), &body, now)),
    ];
    // The body's `name` names the event in its header too, unless it cannot
    // be sent in a header (a line break, a control character): the receiver
    // then goes by the body alone, and the payload is still delivered.
    if let Some(name) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .filter(|name| reqwest::header::HeaderValue::from_str(name).is_ok())
    {
        headers.push((EVENT_HEADER, name));
    }
    let custom: Vec<(&str, String)> = custom
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    headers.extend(custom);
    post(client, url, body, &headers).await
}

/// Why a delivery got no reply, when the receiver was reached: its
/// connection closed or broke before an answer came.
fn no_reply_reason(e: reqwest::Error) -> String {
    // The URL is said by the caller, its password hidden (`shown_url`).
    let e = e.without_url();
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !why.ends_with(&text) {
            why.push_str(": ");
            why.push_str(&text);
        }
        source = cause.source();
    }
    why
}

/// Why a receiver cannot be reached, said plainly where the TLS library's
/// words are not.
/// A receiver out of reach, posting the payload shown as `file` (already
/// printable).
fn unreachable(url: &str, file: &str, e: reqwest::Error, timeout: Duration) -> anyhow::Error {
    if e.is_connect() && e.is_timeout() {
        let within = connect_timeout(timeout);
        let why = if is_https(url) {
            // The time covers the TLS handshake too.
            format!(
                "no connection made, or its TLS handshake not finished, within {within:?} (a \
                 host down, a firewall dropping the attempts, or a server that does not speak \
                 TLS on that port)"
            )
        } else {
            format!(
                "no connection within {within:?} (nothing answers at that address: a host down, \
                 or a firewall dropping the attempts)"
            )
        };
        let url = printable(&shown_url(url)).into_owned();
        return anyhow::anyhow!("posting {file} to {url}: {why}");
    }
    anyhow::anyhow!(unreachable_message(url, file, &no_reply_reason(e)))
}

/// A URL as it is shown: its password, if it has one, as `***`.
fn shown_url(url: &str) -> std::borrow::Cow<'_, str> {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string().into()
        }
        _ => url.into(),
    }
}

/// Whether `url`'s scheme is `https` (in any case, as URLs have it).
fn is_https(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https")
}

/// The host of an `http://` URL that is not this machine (a loopback
/// address, or `localhost`), if it is one.
fn plain_http_elsewhere(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local = match bare.parse::<std::net::IpAddr>() {
        // `0.0.0.0` and `::`, which `serve --addr 0.0.0.0:…` names, reach
        // this machine too.
        Ok(ip) => ip.is_loopback() || ip.is_unspecified() || ip.to_canonical().is_loopback(),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    (!local).then(|| host.to_owned())
}

fn unreachable_message(url: &str, file: &str, why: &str) -> String {
    let https = is_https(url);
    let url = printable(&shown_url(url)).into_owned();
    if why.contains("CaUsedAsEndEntity") {
        return format!(
            "posting {file} to {url}: the receiver's certificate is a certificate authority's \
             (basicConstraints CA:TRUE, as `openssl req -x509` makes by default), which TLS \
             does not accept as a server's own; make the server's certificate with \
             `-addext basicConstraints=critical,CA:FALSE`, or sign it with an authority \
             given to --ca-cert ({why})"
        );
    }
    // `BadSignature`: the certificate names an issuer this machine trusts
    // (a self-signed `CN=localhost` beside a system's own snake-oil
    // authority of that name) that did not sign it.
    if why.contains("UnknownIssuer") || why.contains("BadSignature") {
        return format!(
            "posting {file} to {url}: the receiver's certificate is signed by an authority this \
             machine does not trust; give that authority's certificate (for a self-signed one, \
             the certificate itself) to --ca-cert ({why})"
        );
    }
    if why.contains("certificate expired") || why.contains("CertExpired") {
        return format!(
            "posting {file} to {url}: the receiver's certificate has expired, and no client \
             takes it (Kustomer's neither): renew it on the receiver ({why})"
        );
    }
    match scheme_hint(https, why) {
        Some(hint) => format!("posting {file} to {url}: {hint} ({why})"),
        None => format!("posting {file} to {url}: {why}"),
    }
}

/// What a failure most likely means when it is the sign of a URL whose
/// scheme is not what the receiver speaks: TLS to a plain HTTP port (the
/// TLS library finds no TLS record in its answer), or plain HTTP to a TLS
/// port (the answer, a TLS alert, is no HTTP response).
fn scheme_hint(https: bool, why: &str) -> Option<&'static str> {
    if https && why.contains("InvalidContentType") {
        return Some(
            "the receiver does not answer in TLS: for one serving plain HTTP, use an http:// URL",
        );
    }
    if !https && why.contains("invalid HTTP version") {
        return Some(
            "the receiver's answer is not HTTP: for one serving TLS (serve --tls-cert), use an \
             https:// URL",
        );
    }
    None
}

/// `send`: signs and posts each payload, printing the status of each. A
/// payload that cannot be read, or a delivery that gets no reply (none in
/// time, or its connection closed first), is reported and the next one
/// sent; a receiver that cannot be reached at all (refused, unknown host, a
/// certificate not trusted) ends the run, naming the payload.
pub async fn send(
    url: &str,
    token: &str,
    headers: &[(String, String)],
    paths: &[PathBuf],
    options: &SendOptions,
) -> Result<ExitCode> {
    // Every payload is posted, whether or not anybody reads what is printed.
    crate::out::go_on_without_stdout();
    let https = is_https(url);
    if let Some(host) = plain_http_elsewhere(url) {
        note!(
            "warning: posting over plain http to {}, not this machine: the payloads (personal \
             data) and any custom header's secret travel unencrypted; use https:// unless the \
             network in between is private",
            printable(&host)
        );
    }
    let client = send_client(options, https)?;
    let mut ok = true;
    for file in payloads(paths)? {
        // One that cannot be read is reported, and the others still sent.
        let bytes = match crate::parse::read_payload(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                out!(
                    "--- {} not sent: it cannot be read ({e})",
                    printable(&file.display().to_string())
                );
                ok = false;
                continue;
            }
        };
        // Each payload of a file of several (JSON Lines) is a delivery of
        // its own; the file is removed once all of them were acknowledged.
        let mut all_acknowledged = true;
        for piece in crate::parse::pieces(&bytes, crate::parse::is_lines_file(&file)) {
            let shown = crate::parse::Place {
                file: &file,
                piece: &piece,
            }
            .to_string();
            let shown = printable(&shown);
            let body = bytes[piece.range].to_vec();
            let size = body.len();
            let acknowledged = match deliver(&client, url, token, headers, body).await {
                Ok(d) => {
                    if d.reply.is_empty() {
                        out!("{} {shown}", d.status);
                    } else {
                        out!("{} {shown} {}", d.status, printable(&d.reply));
                    }
                    // Acknowledged but not handled for its age: what `send`
                    // adds to prove it is no replay was not taken (a clock
                    // more than five minutes off, a proxy dropping the
                    // header, a receiver that verifies nothing).
                    let too_old = too_old_reply(&d.reply);
                    if too_old {
                        note!(
                            "{shown} was not handled: the receiver took it for a replay (its \
                             clock and this one's more than five minutes apart, the \
                             X-Kustomer-Webhooks-Resent header lost on the way, or a receiver \
                             that does not check signatures, so cannot check that one?)"
                        );
                    }
                    (200..300).contains(&d.status) && !too_old
                }
                Err(e) if e.is_timeout() && !e.is_connect() => {
                    out!(
                        "--- {shown} no reply within {}s (Kustomer would count it failed and retry)",
                        options.timeout.as_secs()
                    );
                    false
                }
                // Reached, but the connection closed or broke before an
                // answer (a receiver that crashed on this payload, a proxy's
                // reset): this delivery failed, and the next one is still
                // sent.
                Err(e) if !e.is_connect() && !e.is_builder() => {
                    let why = no_reply_reason(e);
                    match scheme_hint(https, &why) {
                        Some(hint) => {
                            out!("--- {shown} no reply: {hint} ({})", printable(&why))
                        }
                        None if size > kustomer_webhooks::receiver::DEFAULT_LIMIT => out!(
                            "--- {shown} no reply: {} (the body is {size} bytes: a receiver with \
                             a size limit, 1 MiB by default, may have refused it with 413 and \
                             closed the connection before the reply could be read)",
                            printable(&why)
                        ),
                        None => out!(
                            "--- {shown} no reply: {} (Kustomer would count it failed and retry)",
                            printable(&why)
                        ),
                    }
                    false
                }
                Err(e) => return Err(unreachable(url, &shown, e, options.timeout)),
            };
            all_acknowledged &= acknowledged;
        }
        ok &= all_acknowledged;
        if all_acknowledged
            && options.remove_delivered
            && let Err(e) = std::fs::remove_file(&file)
            // Removed already: by the receiver that kept it as a dead
            // letter, once handled.
            && e.kind() != std::io::ErrorKind::NotFound
        {
            // Left in place, it would be sent again by a run that trusts
            // this one's success: handled twice once the receiver's store
            // has forgotten it.
            note!(
                "error: could not remove {} (it was delivered: do not send it again): {e}",
                printable(&file.display().to_string())
            );
            ok = false;
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether a reply says its event was not handled for its age: the
/// receiver writes the outcome first, so this holds for a reply cut short
/// ([`MAX_REPLY`]) too.
fn too_old_reply(reply: &str) -> bool {
    reply.starts_with(&format!(
        "{{\"outcome\":\"{}\"",
        kustomer_webhooks::receiver::outcome::TOO_OLD
    ))
}

/// The event whose first claim the demo's store fails.
const DEMO_DOWN_ID: &str = "608738af3c16f2a7c22a36f0";

/// The demo's idempotency store: the in-process one, down (as a Redis out
/// of reach would be) for the first claim of one event.
struct DownOnce {
    inner: MemoryStore,
    id: &'static str,
    down: std::sync::atomic::AtomicBool,
}

impl DownOnce {
    fn new(id: &'static str) -> Self {
        DownOnce {
            inner: MemoryStore::new(),
            id,
            down: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl IdempotencyStore for DownOnce {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        if id == self.id && self.down.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let down = std::io::Error::other("connection refused (the demo's store is down)");
            return Box::pin(async move { Err(StoreError::unavailable(down)) });
        }
        self.inner.begin(id)
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.inner.complete(id)
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.inner.abandon(id)
    }
}

/// The demo's dead-letter directory: new, under a random name in the
/// temporary directory, owner-only; removed when dropped, and by
/// [`crate::out::line`] when the reader of stdout goes away.
fn demo_dir() -> Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("kustomer-webhooks-demo-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = builder.tempdir().with_context(|| {
        format!(
            "creating the demo's directory in {}",
            std::env::temp_dir().display()
        )
    })?;
    crate::out::remove_on_exit(dir.path());
    // Stopped by Ctrl-C or SIGTERM, which end the process without its
    // destructors: removed first.
    tokio::spawn(async {
        kustomer_webhooks::axum::stop_signal().await;
        crate::out::remove_left_behind();
        std::process::exit(130);
    });
    Ok(dir)
}

/// `demo`: a receiver on a loopback port (with the ordering guard and dead
/// letters), fed the ten samples, a duplicate, an update arriving after a
/// newer one, a drifted update, an event without a model, a delivery while
/// the store is down (kept as a dead letter, then replayed), a tampered
/// signature and a malformed body.
pub async fn demo() -> Result<ExitCode> {
    // 128 random bits: another user of the machine, who can reach the
    // loopback port, cannot forge a delivery.
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).context("no random bytes for the demo's token")?;
    let token = format!("demo-{}", hex::encode(random));
    // Deliveries that fail are kept here until they are handled; the demo's
    // store is down for the first claim of one event.
    // A directory of its own, under a name no one can guess, owner-only,
    // removed however the demo ends (a reader that goes away included).
    let dir = demo_dir()?;
    let letters = DeadLetters::open(dir.path())?;
    let receiver = receiver(SharedVerifier::new(Verifier::new(&token)))?
        .with_ordering(OrderingGuard::new())
        .with_store(DownOnce::new(DEMO_DOWN_ID))
        .with_dead_letters(letters.clone());
    let app = kustomer_webhooks::axum::router(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        Server::new()
            .with_max_connections(64)
            .serve(listener, app, std::future::pending())
            .await
    });
    let url = format!("http://{addr}/");
    out!("receiver at {url} (token generated for this run)");
    out!(
        "each event the receiver dispatches prints as one JSON line; each delivery as `status what reply`\n"
    );

    let options = SendOptions {
        timeout: Duration::from_secs(10),
        ca_certs: Vec::new(),
        remove_delivered: false,
    };
    let client = send_client(&options, false)?;
    let report = |what: &str, d: &Delivered| out!("{} {what:<47} {}", d.status, d.reply);
    let mut expected_ok = true;
    for (event, text) in kustomer_schema::SEED_SAMPLES {
        let d = deliver(&client, &url, &token, &[], text.as_bytes().to_vec()).await?;
        report(event, &d);
        expected_ok &= d.status == 200;
    }
    let (event, text) = kustomer_schema::SEED_SAMPLES[2];
    let d = deliver(&client, &url, &token, &[], text.as_bytes().to_vec()).await?;
    report(&format!("{event} again (a retry)"), &d);
    expected_ok &= d.status == 200 && d.reply.contains("duplicate");

    // The customer update again, as later deliveries of other events: each
    // with its own event id, `rev` and changes.
    let update = |id: &str, rev: serde_json::Value| -> Result<Vec<u8>> {
        let (_, text) = kustomer_schema::SEED_SAMPLES[3];
        let mut v: serde_json::Value = serde_json::from_str(text)?;
        v["id"] = id.into();
        v["data"]["attributes"]["rev"] = rev.clone();
        v["changes"]["attributes"]["rev"]["after"] = rev;
        Ok(serde_json::to_vec(&v)?)
    };
    let late = update("6087326fa8b1c7b07da5e5c0", 2.into())?;
    let d = deliver(&client, &url, &token, &[], late).await?;
    report("kustomer.customer.update rev 2, arriving late", &d);
    expected_ok &= d.status == 200 && d.reply.contains("stale");

    // `rev` sent as a string: drift, reported on its line, and still used
    // by the ordering guard.
    let drifted = update("6087326fa8b1c7b07da5e5d1", "4".into())?;
    let d = deliver(&client, &url, &token, &[], drifted).await?;
    report("kustomer.customer.update rev 4, drifted", &d);
    expected_ok &= d.status == 200 && d.reply.contains("handled");

    let tag = br#"{"id": "6087326fa8b1c7b07da5e5e2", "name": "kustomer.tag.create", "org": "5f9b5c2d8a1e4c0019a1b2c3", "data": {"type": "tag", "id": "6087326fa8b1c7b07da5e5e3", "attributes": {"name": "vip"}}}"#;
    let d = deliver(&client, &url, &token, &[], tag.to_vec()).await?;
    report("kustomer.tag.create, an event without a model", &d);
    expected_ok &= d.status == 200 && d.reply.contains("handled");

    // The store (a Redis, say) out of reach: 503, so Kustomer retries; and
    // should it stay down past Kustomer's hour of retries, the delivery is
    // kept, to replay once the store is back.
    let (_, conversation) = kustomer_schema::SEED_SAMPLES[1];
    let mut v: serde_json::Value = serde_json::from_str(conversation)?;
    v["id"] = DEMO_DOWN_ID.into();
    // A later update than the sample (the ordering guard took its `rev`).
    let rev = v["data"]["attributes"]["rev"].as_i64().unwrap_or(0) + 1;
    v["data"]["attributes"]["rev"] = rev.into();
    let d = deliver(&client, &url, &token, &[], serde_json::to_vec(&v)?).await?;
    report("kustomer.conversation.update, the store down", &d);
    expected_ok &= d.status == 503;
    let kept = letters.pending_files();
    for file in &kept {
        out!("    kept as a dead letter: {}", file.display());
    }
    expected_ok &= kept.len() == 1;
    // Replayed (as `kustomer-webhooks send --url URL --token-file FILE DIR`
    // does), it is handled, and its file removed.
    for file in &kept {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let d = deliver(&client, &url, &token, &[], body).await?;
        report("the dead letter, replayed", &d);
        expected_ok &= d.status == 200 && d.reply.contains("handled");
    }
    expected_ok &= letters.pending() == 0 && !kept.iter().any(|f| f.exists());

    let tampered = text.replace("Franz Kafka", "Josef K.");
    let sig = sign(token.as_bytes(), text.as_bytes());
    let d = post(
        &client,
        &url,
        tampered.into_bytes(),
        &[(SIGNATURE_HEADER, sig)],
    )
    .await?;
    report("a tampered body, original signature", &d);
    expected_ok &= d.status == 401;

    let d = deliver(
        &client,
        &url,
        &token,
        &[],
        // Cut off mid-way, as by a proxy that dropped the connection.
        br#"{"name": "kustomer.team.create", "data": {"type": "team", "attributes": {"name": "#
            .to_vec(),
    )
    .await?;
    report("a malformed body", &d);
    expected_ok &= d.status == 400;

    server.abort();
    drop(dir);
    if expected_ok {
        out!("\nevery delivery got the status it should");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(anyhow!("a delivery got an unexpected status (see above)"))
    }
}

#[cfg(test)]
mod tests {
    use super::{
        addr_arg, age_arg, age_warning, connections_that_fit, path_arg, plain_http_elsewhere,
        receiver_addr_arg, scheme_hint, switch_arg, timeout_arg, token_arg, unreachable_message,
    };

    /// The runtime's names of what the TLS files hold are said as the
    /// options and files they came from, a file's own name left alone.
    #[test]
    fn redis_tls_errors_name_the_options_and_files() {
        let options = super::RedisOptions {
            urls: vec!["rediss://h/".to_owned()],
            topology: super::Topology::Single,
            prefix: None,
            fail_open: false,
            ca_cert: Some("ca.pem".into()),
            client_identity: Some(("/x/client_key.crt".into(), "k.pem".into())),
        };
        assert_eq!(
            super::with_files_named("client_key cannot be used with client_cert: no", &options),
            "--redis-client-key k.pem cannot be used with --redis-client-cert /x/client_key.crt: no"
        );
        assert_eq!(
            super::with_files_named("root_cert holds no certificate", &options),
            "--redis-ca-cert ca.pem holds no certificate"
        );
        let no_files = super::RedisOptions {
            ca_cert: None,
            client_identity: None,
            ..options
        };
        assert_eq!(
            super::with_files_named("root_cert: x", &no_files),
            "root_cert: x"
        );
    }

    /// `send` warns of plain http to another machine, not to this one.
    #[test]
    fn plain_http_to_another_machine_is_told_apart() {
        for (url, elsewhere) in [
            ("http://127.0.0.1:8080/", None),
            ("http://127.9.9.9/", None),
            ("http://[::1]:8080/k", None),
            ("http://localhost:8080/", None),
            ("http://LocalHost./", None),
            ("http://receiver.localhost/", None),
            ("http://0.0.0.0:8080/", None),
            ("http://[::]:8080/", None),
            ("http://[::ffff:127.0.0.1]/", None),
            ("https://hooks.example.com/", None),
            ("http://hooks.example.com/k", Some("hooks.example.com")),
            ("http://192.0.2.2:9000/", Some("192.0.2.2")),
            ("http://[2001:db8::1]/", Some("[2001:db8::1]")),
            (
                "http://localhost.example.com/",
                Some("localhost.example.com"),
            ),
        ] {
            assert_eq!(plain_http_elsewhere(url).as_deref(), elsewhere, "{url}");
        }
    }

    #[test]
    fn connections_fit_in_the_limit_on_open_files_beside_what_else_is_open() {
        // The default limits: the connections and 128 files for the rest.
        assert_eq!(connections_that_fit(1024, 1_048_576), 1024);
        assert_eq!(connections_that_fit(1024, 1024 + 128), 1024);
        assert_eq!(connections_that_fit(1024, 1024 + 127), 1023);
        assert_eq!(connections_that_fit(1024, 1024), 896);
        assert_eq!(connections_that_fit(64, 1024), 64);
        // A low limit keeps half for the rest.
        assert_eq!(connections_that_fit(1024, 256), 128);
        assert_eq!(connections_that_fit(1024, 64), 32);
        assert_eq!(connections_that_fit(1024, 1), 1);
        assert_eq!(connections_that_fit(1024, 0), 1);
        // Unlimited.
        assert_eq!(connections_that_fit(1024, u64::MAX), 1024);
    }

    #[test]
    fn a_line_shows_at_most_a_hundred_drifted_values_and_counts_the_rest() {
        let sample = include_str!("../../schema/samples/kustomer.team.create.json");
        let mut body: serde_json::Value = serde_json::from_str(sample).unwrap();
        let members: Vec<u32> = (0..250).collect();
        body["data"]["attributes"]["members"] = members.into();
        let body = body.to_string();
        let parsed = kustomer_webhooks::parse(body.as_bytes()).unwrap();
        let event = &parsed.event;
        let text = super::line(
            event.envelope(),
            None,
            None,
            event.name().as_str(),
            true,
            event.drift(),
        )
        .unwrap();
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["drift"].as_array().unwrap().len(), 100, "{text}");
        assert_eq!(line["drift_omitted"], 150, "{text}");
        // Below the most, nothing is left out, and the field is absent.
        let sample = kustomer_webhooks::parse(sample.as_bytes()).unwrap();
        let text = super::line(
            sample.event.envelope(),
            None,
            None,
            "kustomer.team.create",
            true,
            sample.event.drift(),
        )
        .unwrap();
        assert!(!text.contains("drift_omitted"), "{text}");
    }

    #[test]
    fn a_redis_prefix_is_not_blank() {
        assert_eq!(super::prefix_arg("svc:event:").as_deref(), Ok("svc:event:"));
        for blank in ["", " ", "\t"] {
            assert!(
                super::prefix_arg(blank)
                    .unwrap_err()
                    .starts_with("the prefix is blank"),
                "{blank:?}"
            );
        }
        assert!(super::prefix_arg("a\nb").is_err());
    }

    #[test]
    fn a_timeout_is_whole_seconds_from_one_to_a_day() {
        assert_eq!(timeout_arg("1").unwrap().as_secs(), 1);
        assert_eq!(timeout_arg("86400").unwrap().as_secs(), 86_400);
        for (bad, want) in [
            (
                "0",
                "the timeout must be at least 1 second and at most 86400 (a day)",
            ),
            (
                "86401",
                "the timeout must be at least 1 second and at most 86400 (a day), not 86401",
            ),
            (
                "9300000000000000000",
                "the timeout must be at least 1 second and at most 86400 (a day), not 9300000000000000000",
            ),
            (
                "1.5",
                "expected whole seconds, such as 10 (at least 1 second and at most 86400 (a day)), got \"1.5\"",
            ),
        ] {
            assert_eq!(timeout_arg(bad).unwrap_err(), want, "{bad}");
        }
    }

    #[test]
    fn a_too_old_reply_is_told_even_cut_short() {
        assert!(super::too_old_reply(
            r#"{"outcome":"too old","event":"kustomer.team.update","detail":"…"}"#
        ));
        assert!(super::too_old_reply(
            r#"{"outcome":"too old","event":"kustomer.te …"#
        ));
        assert!(!super::too_old_reply(
            r#"{"outcome":"handled","detail":"too old"}"#
        ));
        assert!(!super::too_old_reply(""));
    }

    #[test]
    fn a_max_event_age_above_the_retention_is_warned_of() {
        let warned = |secs| age_warning(std::time::Duration::from_secs(secs));
        // Under Kustomer's retries: the receiver says so.
        assert_eq!(warned(600), None);
        assert_eq!(warned(3900), None);
        assert_eq!(warned(4500), None);
        assert!(
            warned(4501)
                .unwrap()
                .contains("a replay of a delivery between the two ages")
        );
    }

    #[test]
    fn a_max_event_age_is_whole_seconds_from_a_minute_to_a_week() {
        assert_eq!(age_arg("0").unwrap().as_secs(), 0, "none");
        assert_eq!(age_arg("60").unwrap().as_secs(), 60);
        assert_eq!(age_arg("4500").unwrap().as_secs(), 4500);
        assert_eq!(age_arg("604800").unwrap().as_secs(), 604_800);
        for (bad, want) in [
            (
                "59",
                "the age must be at least 60 seconds and at most 604800 (a week), or 0 for none, not 59",
            ),
            (
                "604801",
                "the age must be at least 60 seconds and at most 604800 (a week), or 0 for none, not 604801",
            ),
            (
                "99999999999999999999",
                "the age must be at least 60 seconds and at most 604800 (a week), or 0 for none, not 99999999999999999999",
            ),
            (
                "75m",
                "expected whole seconds, such as 4500 for 75 minutes (at least 60 seconds and at most 604800 (a week), or 0 for none), got \"75m\"",
            ),
        ] {
            assert_eq!(age_arg(bad).unwrap_err(), want, "{bad}");
        }
    }

    #[test]
    fn a_ca_certificate_served_as_a_servers_own_is_explained() {
        let file = "a.json";
        let said = unreachable_message(
            "https://127.0.0.1:8443/",
            file,
            "error sending request: client error (Connect): invalid peer certificate: \
             Other(OtherError(CaUsedAsEndEntity))",
        );
        assert!(
            said.starts_with("posting a.json to https://127.0.0.1:8443/: the receiver's certificate is a certificate authority's")
                && said.contains("basicConstraints=critical,CA:FALSE"),
            "{said}"
        );
        // An authority not trusted here: --ca-cert named.
        let said = unreachable_message(
            "https://127.0.0.1:8443/",
            file,
            "error sending request: client error (Connect): invalid peer certificate: UnknownIssuer",
        );
        assert!(said.contains("give that authority's certificate"), "{said}");
        assert!(said.contains("--ca-cert"), "{said}");
        // Nor one signed by another of the name of an authority trusted here.
        let said = unreachable_message(
            "https://localhost:8443/",
            file,
            "error sending request: client error (Connect): invalid peer certificate: BadSignature",
        );
        assert!(said.contains("give that authority's certificate"), "{said}");
        assert_eq!(
            unreachable_message("http://x/", file, "connection refused"),
            "posting a.json to http://x/: connection refused"
        );
        // A password in the URL is not shown; the user name is.
        assert_eq!(
            unreachable_message("http://kw:s3cret@x:8080/k", file, "connection refused"),
            "posting a.json to http://kw:***@x:8080/k: connection refused"
        );
    }

    #[test]
    fn a_url_whose_scheme_the_receiver_does_not_speak_is_said_so() {
        let file = "a.json";
        let tls_to_plain = "error sending request: client error (Connect): received corrupt \
                            message of type InvalidContentType";
        assert_eq!(
            unreachable_message("https://127.0.0.1:8080/", file, tls_to_plain),
            format!(
                "posting a.json to https://127.0.0.1:8080/: the receiver does not answer in \
                 TLS: for one serving plain HTTP, use an http:// URL ({tls_to_plain})"
            )
        );
        // A scheme in capitals is the same scheme.
        assert!(
            unreachable_message("HTTPS://127.0.0.1:8080/", file, tls_to_plain)
                .contains("the receiver does not answer in TLS")
        );
        let plain_to_tls = "error sending request: invalid HTTP version parsed";
        assert!(
            scheme_hint(false, plain_to_tls).is_some_and(|h| h.contains("use an https:// URL"))
        );
        // The same words under the other scheme are not that mistake.
        assert_eq!(scheme_hint(false, tls_to_plain), None);
        assert_eq!(scheme_hint(true, plain_to_tls), None);
    }

    #[test]
    fn an_address_is_an_ip_or_a_name_with_a_port_and_said_plainly_when_not() {
        assert_eq!(
            addr_arg("127.0.0.1:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(addr_arg("[::1]:0").unwrap().to_string(), "[::1]:0");
        assert_eq!(
            addr_arg("localhost:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        for (bad, want) in [
            ("8080", "expected HOST:PORT"),
            (":8080", "has no host: give one, such as 0.0.0.0:8080"),
            (
                "127.0.0.1:99999",
                "\"99999\" is not a port: a port is a number from 0 to 65535",
            ),
            ("localhost:http", "\"http\" is not a port"),
            (
                "no-such-host.invalid:8080",
                "no-such-host.invalid cannot be resolved",
            ),
            (
                "http://127.0.0.1:8080",
                "\"http://127.0.0.1:8080\" is a URL: give the address alone, HOST:PORT \
                 (\"127.0.0.1:8080\"), without http:// or a path",
            ),
        ] {
            let e = addr_arg(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        // `--metrics-addr`'s URL is said to be one, no more; `--addr`'s
        // also says where its path and scheme go.
        let url = "https://0.0.0.0:8443/kustomer";
        assert_eq!(
            addr_arg(url).unwrap_err(),
            "\"https://0.0.0.0:8443/kustomer\" is a URL: give the address alone, HOST:PORT \
             (\"0.0.0.0:8443\"), without https:// or a path"
        );
        assert!(
            receiver_addr_arg(url).unwrap_err().ends_with(
                "without https:// or a path (the receiver's path is --path; --tls-cert serves \
                 HTTPS)"
            ),
            "{}",
            receiver_addr_arg(url).unwrap_err()
        );
    }

    #[test]
    fn a_switch_is_true_or_false_in_the_usual_spellings() {
        for on in ["true", "TRUE", "t", "yes", "Y", "on", "1", " 1 "] {
            assert_eq!(switch_arg(on), Ok(true), "{on}");
        }
        for off in ["false", "f", "no", "N", "off", "0"] {
            assert_eq!(switch_arg(off), Ok(false), "{off}");
        }
        assert_eq!(
            switch_arg("2").unwrap_err(),
            "expected true or false (or yes/no, on/off, 1/0), not \"2\""
        );
    }

    #[test]
    fn a_token_loses_the_white_space_around_it_and_is_never_blank() {
        assert_eq!(token_arg(" t0ken\n").unwrap(), "t0ken");
        assert_eq!(
            token_arg("").unwrap_err(),
            "the token is empty; give the webhook's token"
        );
        assert_eq!(
            token_arg(" \t ").unwrap_err(),
            "the token is only white space; give the webhook's token"
        );
    }

    #[test]
    fn a_path_is_literal_and_said_plainly_when_it_is_not() {
        assert_eq!(path_arg("/").unwrap(), "/");
        assert_eq!(
            path_arg("/webhooks/kustomer").unwrap(),
            "/webhooks/kustomer"
        );
        assert_eq!(path_arg("/kustomer-1.v2_~/").unwrap(), "/kustomer-1.v2_~");
        assert_eq!(
            path_arg("kustomer").unwrap_err(),
            "a path starts with /, such as /webhooks/kustomer, not \"kustomer\""
        );
        assert_eq!(
            path_arg("").unwrap_err(),
            "a path starts with /, such as /webhooks/kustomer, not \"\""
        );
        assert_eq!(
            path_arg("/a//b").unwrap_err(),
            "\"/a//b\" has an empty segment (//)"
        );
        assert_eq!(
            path_arg("//").unwrap_err(),
            "\"//\" has an empty segment (//)"
        );
        assert_eq!(
            path_arg("/a/../b").unwrap_err(),
            "\"/a/../b\" has a \"..\" segment"
        );
        // What the router would read as a parameter or a wildcard.
        for (path, c) in [
            ("/{id}", '{'),
            ("/a/*rest", '*'),
            ("/:id", ':'),
            ("/a?b", '?'),
            ("/é", 'é'),
        ] {
            let e = path_arg(path).unwrap_err();
            assert!(e.contains(&format!("has {c:?} in it")), "{e}");
        }
    }
}
