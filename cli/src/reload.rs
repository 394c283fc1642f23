//! `serve`'s files read again while it runs: the token and header files,
//! and the TLS certificate and key; and the certificate's dates watched.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};
use kustomer_webhooks::verify::SharedVerifier;

use crate::log::NOTE_TARGET;
use crate::out::note;
use crate::secrets::{Secrets, Sources};

/// The TLS of `serve --tls-cert`.
#[cfg(feature = "tls")]
pub use kustomer_webhooks::axum::{Tls, Validity};

/// Stands in for `axum::Tls` in a build without TLS, where none is ever made.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
#[allow(dead_code)]
pub struct Tls;

/// Stands in for `axum::Validity` in a build without TLS.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

#[cfg(not(feature = "tls"))]
impl Tls {
    fn reload(&self) -> Result<bool, std::convert::Infallible> {
        Ok(false)
    }

    pub fn files(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        None
    }

    pub fn validity(&self) -> Option<Validity> {
        None
    }
}

#[cfg(not(feature = "tls"))]
impl Validity {
    fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.not_after.duration_since(now).ok()
    }
}

/// Reads the certificate and key of `--tls-cert` and `--tls-key`.
pub fn tls(files: Option<(PathBuf, PathBuf)>) -> Result<Option<Tls>> {
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    #[cfg(feature = "tls")]
    return Tls::from_pem_files(cert, key)
        .map(Some)
        .map_err(|e| anyhow!("serving HTTPS (--tls-cert, --tls-key): {e}"));
    #[cfg(not(feature = "tls"))]
    {
        let _ = key;
        Err(anyhow!(
            "--tls-cert {}: this build speaks no TLS (built without its `tls` feature)",
            cert.display()
        ))
    }
}

/// What reloading one kind of file did, for `/metrics`, and why the last
/// reload failed, so that a reason is logged once rather than at every
/// tick.
#[derive(Default)]
struct Outcomes {
    /// Reloads that changed what is in use.
    changed: AtomicU64,
    /// Reloads that could not read or use the files.
    failed: AtomicU64,
    /// Whether the last reload failed.
    failing: AtomicBool,
}

impl Outcomes {
    fn succeeded(&self, changed: bool) {
        if changed {
            self.changed.fetch_add(1, Ordering::Relaxed);
        }
        self.failing.store(false, Ordering::Relaxed);
    }

    fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
    }

    /// The counter `{name}_total` by outcome and the gauge `{name}_failing`
    /// (`reloads` becoming `reload`), in Prometheus's text format.
    fn prometheus(&self, name: &str, what: &str, changed: &str, kept: &str) -> String {
        let failing = name.replace("reloads", "reload");
        format!(
            "# HELP {name}_total Reloads of {what}, by outcome (`changed`: {changed}; `failed`: \
             the files could not be used).\n\
             # TYPE {name}_total counter\n\
             {name}_total{{outcome=\"changed\"}} {}\n\
             {name}_total{{outcome=\"failed\"}} {}\n\
             # HELP {failing}_failing Whether the last reload of {what} failed ({kept}).\n\
             # TYPE {failing}_failing gauge\n\
             {failing}_failing {}\n",
            self.changed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            u8::from(self.failing.load(Ordering::Relaxed)),
        )
    }
}

/// What reloading the files did, for `/metrics`.
pub struct Reloads {
    /// The tokens accepted now.
    tokens: AtomicU64,
    /// The token and header files.
    secrets: Outcomes,
    /// The certificate and key, when HTTPS is served (`--tls-cert`).
    tls: Option<Outcomes>,
}

impl Reloads {
    pub fn new(tokens: usize, tls: bool) -> Self {
        Reloads {
            tokens: AtomicU64::new(tokens as u64),
            secrets: Outcomes::default(),
            tls: tls.then(Outcomes::default),
        }
    }

    /// The counts in Prometheus's text format.
    pub fn prometheus(&self) -> String {
        let mut text = format!(
            "# HELP kustomer_webhooks_tokens Tokens a delivery may be signed with.\n\
             # TYPE kustomer_webhooks_tokens gauge\n\
             kustomer_webhooks_tokens {}\n",
            self.tokens.load(Ordering::Relaxed)
        );
        text += &self.secrets.prometheus(
            "kustomer_webhooks_secret_reloads",
            "the token and header files",
            "what is accepted changed",
            "what was read before is still accepted",
        );
        if let Some(tls) = &self.tls {
            text += &tls.prometheus(
                "kustomer_webhooks_tls_reloads",
                "the TLS certificate and key",
                "another certificate is served",
                "the one read before is still served",
            );
        }
        text
    }
}

/// A reload that failed: counted, and its reason logged when it is new or
/// when a SIGHUP asked for the reload; `last` keeps the reason.
fn failed(
    outcomes: &Outcomes,
    last: &mut Option<String>,
    why: String,
    signalled: bool,
    what: &str,
) {
    outcomes.failed();
    if signalled || last.as_ref() != Some(&why) {
        tracing::error!(target: NOTE_TARGET, "{what}: {why}");
    }
    *last = Some(why);
}

/// Reads the token and header files, and the TLS certificate and key, again
/// on SIGHUP and every `every` (when set), and has the receiver accept (and
/// the server present) what they hold from then on: a token rotated by a
/// secret store, or a renewed certificate, is taken up without a restart.
/// What cannot be read or used (a missing or emptied file, a bad line, a key
/// that is not the certificate's) leaves what is in use in place, with the
/// reason logged once.
pub async fn reload(
    sources: Sources,
    mut current: Secrets,
    verifier: SharedVerifier,
    tls: Option<Tls>,
    mut hangup: Hangup,
    every: Option<Duration>,
    reloads: Arc<Reloads>,
) {
    let mut failing: Option<String> = None;
    let mut tls_failing: Option<String> = None;
    loop {
        let asked = hangup.recv();
        let tick = async {
            match every {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        let signalled = tokio::select! {
            () = asked => true,
            () = tick => false,
        };
        if sources.has_files() {
            // Files are read off the async workers: a file system that hangs
            // (a network mount) holds up a blocking thread, not deliveries.
            let reading = sources.clone();
            let read = tokio::task::spawn_blocking(move || reading.read())
                .await
                .unwrap_or_else(|e| Err(anyhow!("reading the files stopped: {e}")));
            match read {
                Ok(read) => {
                    let changed = read != current;
                    reloads.secrets.succeeded(changed);
                    let recovered = failing.take().is_some();
                    if changed {
                        verifier.replace(read.verifier());
                        reloads
                            .tokens
                            .store(read.tokens.len() as u64, Ordering::Relaxed);
                        note!(
                            "reloaded the token and header files: now accepting {}",
                            read.changes_from(&current)
                        );
                        current = read;
                    } else if recovered {
                        note!("the token and header files can be read again: nothing changed");
                    } else if signalled {
                        note!("reloaded the token and header files: nothing changed");
                    }
                }
                Err(e) => failed(
                    &reloads.secrets,
                    &mut failing,
                    format!("{e:#}"),
                    signalled,
                    "cannot reload the token and header files, still accepting what was read \
                     before",
                ),
            }
        }
        if let (Some(tls), Some(outcomes)) = (&tls, &reloads.tls) {
            let reading = tls.clone();
            let read =
                tokio::task::spawn_blocking(move || reading.reload().map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(format!("reading the files stopped: {e}")));
            match read {
                Ok(changed) => {
                    outcomes.succeeded(changed);
                    let recovered = tls_failing.take().is_some();
                    if changed {
                        if let Some((cert, _)) = tls.files() {
                            note!(
                                "reloaded the TLS certificate: serving the one in {} from now \
                                 on{}",
                                cert.display(),
                                valid_until(tls.validity())
                            );
                        }
                    } else if recovered {
                        note!("the TLS certificate and key can be read again: nothing changed");
                    } else if signalled {
                        note!("reloaded the TLS certificate: nothing changed");
                    }
                }
                Err(why) => failed(
                    outcomes,
                    &mut tls_failing,
                    why,
                    signalled,
                    "cannot reload the TLS certificate, still serving the one read before",
                ),
            }
        }
    }
}

/// Answers SIGHUP when every token and header came from the command line:
/// there is nothing to read again, and serving goes on.
pub async fn nothing_to_reload(mut hangup: Hangup) {
    loop {
        hangup.recv().await;
        note!(
            "SIGHUP: nothing to reload (tokens and headers are read again only from \
             --token-file and --header-file, a certificate from --tls-cert)"
        );
    }
}

/// SIGHUP, where there is one.
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    pub fn listen() -> Self {
        Hangup {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Resolves on the next SIGHUP; never where there is none.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// ` (valid until …)`, for a note about the certificate served (or
/// ` (expired at …)`, ` (not valid before …)`).
pub fn valid_until(validity: Option<Validity>) -> String {
    let Some(v) = validity else {
        return String::new();
    };
    match standing(v, SystemTime::now()) {
        Standing::Expired => format!(" (expired at {})", rfc3339(v.not_after)),
        Standing::NotYetValid => format!(" (not valid before {})", rfc3339(v.not_before)),
        Standing::Valid | Standing::Ending => format!(" (valid until {})", rfc3339(v.not_after)),
    }
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Where a certificate stands at a moment, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// Valid, and not close to its end.
    Valid,
    /// Before its `notBefore`: clients refuse it (a clock behind, or a
    /// certificate issued for later).
    NotYetValid,
    /// Less than [`warn_before`] left.
    Ending,
    /// Past its `notAfter`: clients refuse it.
    Expired,
}

/// How long before its end a certificate is reported as ending: 14 days,
/// or a quarter of its lifetime when that is shorter (a certificate valid
/// for six days is renewed a few days before its end, and reporting it a
/// fortnight ahead would report every one).
fn warn_before(validity: Validity) -> Duration {
    let lifetime = validity
        .not_after
        .duration_since(validity.not_before)
        .unwrap_or_default();
    (lifetime / 4).min(Duration::from_secs(14 * 86_400))
}

fn standing(validity: Validity, now: SystemTime) -> Standing {
    if now < validity.not_before {
        return Standing::NotYetValid;
    }
    match validity.remaining(now) {
        None => Standing::Expired,
        Some(left) if left < warn_before(validity) => Standing::Ending,
        Some(_) => Standing::Valid,
    }
}

/// How often [`watch_validity`] looks at the certificate's dates.
const VALIDITY_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Logs when the certificate served is not yet valid, close to its end or
/// expired: at start, and then once each time it comes to another of these
/// (checked every minute, so that a reloaded certificate is looked at
/// within one). An expired certificate fails every handshake, so that no
/// delivery reaches the receiver to show it; `/metrics` has the dates too.
pub async fn watch_validity(tls: Tls) {
    let mut last = Standing::Valid;
    loop {
        if let Some(validity) = tls.validity() {
            let now = SystemTime::now();
            let standing = standing(validity, now);
            if standing != last {
                log_standing(standing, validity, now, &tls);
            }
            last = standing;
        }
        tokio::time::sleep(VALIDITY_CHECK_EVERY).await;
    }
}

fn log_standing(standing: Standing, validity: Validity, now: SystemTime, tls: &Tls) {
    let cert = tls
        .files()
        .map(|(cert, _)| format!(" in {}", cert.display()))
        .unwrap_or_default();
    match standing {
        Standing::Valid => note!(
            "the TLS certificate{cert} is valid now, until {}",
            rfc3339(validity.not_after)
        ),
        Standing::NotYetValid => tracing::warn!(
            target: NOTE_TARGET,
            "the TLS certificate{cert} is not valid before {}: clients refuse it until then \
             (is this machine's clock right?)",
            rfc3339(validity.not_before)
        ),
        Standing::Ending => {
            let left = validity.remaining(now).unwrap_or_default();
            tracing::warn!(
                target: NOTE_TARGET,
                "the TLS certificate{cert} expires at {}, in {}: renew it (serve takes up the \
                 renewed files without a restart)",
                rfc3339(validity.not_after),
                time_left(left)
            );
        }
        Standing::Expired => tracing::error!(
            target: NOTE_TARGET,
            "the TLS certificate{cert} expired at {}: clients refuse it, so no delivery \
             arrives until it is renewed (serve takes up the renewed files without a restart)",
            rfc3339(validity.not_after)
        ),
    }
}

/// A time left, in days, hours or minutes.
fn time_left(left: Duration) -> String {
    let secs = left.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        s if s >= 2 * 86_400 => plural(s / 86_400, "day"),
        s if s >= 2 * 3_600 => plural(s / 3_600, "hour"),
        s => plural(s.div_ceil(60), "minute"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn validity(from: u64, days: u64) -> Validity {
        let not_before = SystemTime::UNIX_EPOCH + DAY * from as u32;
        Validity {
            not_before,
            not_after: not_before + DAY * days as u32,
        }
    }

    #[test]
    fn a_certificate_is_ending_a_fortnight_or_a_quarter_of_its_life_before_its_end() {
        let year = validity(100, 365);
        let at = |days: u64| year.not_before + DAY * days as u32;
        assert_eq!(standing(year, at(0) - DAY), Standing::NotYetValid);
        assert_eq!(standing(year, at(0)), Standing::Valid);
        assert_eq!(standing(year, at(350)), Standing::Valid);
        assert_eq!(
            standing(year, at(351) + Duration::from_secs(1)),
            Standing::Ending
        );
        assert_eq!(standing(year, at(365)), Standing::Ending, "its last second");
        assert_eq!(
            standing(year, at(365) + Duration::from_secs(1)),
            Standing::Expired
        );

        // Six days: ending with a day and a half left, not a fortnight.
        let short = validity(100, 6);
        let at = |hours: u64| short.not_before + Duration::from_secs(hours * 3_600);
        assert_eq!(standing(short, at(1)), Standing::Valid);
        assert_eq!(standing(short, at(108)), Standing::Valid);
        assert_eq!(standing(short, at(109)), Standing::Ending);
        assert_eq!(standing(short, at(145)), Standing::Expired);
    }

    #[test]
    fn times_left_read_as_people_say_them() {
        assert_eq!(time_left(DAY * 13 + Duration::from_secs(5)), "13 days");
        assert_eq!(time_left(DAY * 2), "2 days");
        assert_eq!(time_left(DAY + Duration::from_secs(3_600)), "25 hours");
        assert_eq!(time_left(Duration::from_secs(7_200)), "2 hours");
        assert_eq!(time_left(Duration::from_secs(7_199)), "120 minutes");
        assert_eq!(time_left(Duration::from_secs(61)), "2 minutes");
        assert_eq!(time_left(Duration::from_secs(60)), "1 minute");
        assert_eq!(time_left(Duration::ZERO), "0 minutes");
    }

    #[test]
    fn a_note_names_the_end_in_rfc_3339() {
        let past = validity(20_000, 90);
        assert_eq!(
            valid_until(Some(past)),
            " (expired at 2025-01-02T00:00:00Z)"
        );
        let now = SystemTime::now();
        let current = Validity {
            not_before: now - DAY,
            not_after: SystemTime::UNIX_EPOCH + DAY * 50_000,
        };
        assert_eq!(
            valid_until(Some(current)),
            " (valid until 2106-11-24T00:00:00Z)"
        );
        let later = Validity {
            not_before: SystemTime::UNIX_EPOCH + DAY * 50_000,
            not_after: SystemTime::UNIX_EPOCH + DAY * 50_001,
        };
        assert_eq!(
            valid_until(Some(later)),
            " (not valid before 2106-11-24T00:00:00Z)"
        );
        assert_eq!(valid_until(None), "");
    }
}
