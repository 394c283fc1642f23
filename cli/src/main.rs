//! `kustomer-webhooks`: the toolkit's command line.
//!
//! - `infer`: sample payloads → JSON Schemas (`schema/schemas/`);
//! - `generate`: schemas → Rust models (`runtime/src/models/`);
//! - `regenerate`: both, in one go;
//! - `check`: are the committed schemas and models what the samples give?
//! - `parse`: payloads → typed events, with their drift;
//! - `serve`, `send`, `demo`: the receiver on the network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use out::out;

mod generate;
mod infer;
mod log;
mod out;
mod parse;
mod regenerate;
mod reload;
mod secrets;
mod serve;

/// Typed Kustomer outbound webhooks: infer schemas from sample payloads,
/// generate Rust models from them, parse payloads with those models, and
/// receive, send and demonstrate signed deliveries.
#[derive(Parser)]
#[command(name = "kustomer-webhooks", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run, then taken apart: its size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Infer one JSON Schema per resource from sample event payloads.
    ///
    /// Each PATH is a sample file (one JSON object, or several one after the
    /// other / JSON Lines) or a directory of `.json`/`.jsonl`/`.ndjson` files. Samples of
    /// the same resource (`data.type`) merge into one schema, written as
    /// `<resource>.json` into the output directory.
    Infer {
        /// Sample files or directories [default: schema/samples]
        paths: Vec<PathBuf>,
        /// Where to write the schemas
        #[arg(long, default_value = infer::SCHEMAS)]
        out: PathBuf,
        /// Write nothing; exit 1 if the files in --out differ from what
        /// inference produces
        #[arg(long)]
        check: bool,
        /// Leave out the `x-kustomer-samples` evidence counts
        #[arg(long)]
        no_evidence: bool,
        /// Leave out, with a warning each, the samples that cannot be used
        /// (invalid JSON, not an event envelope, a `data.type` that cannot
        /// name a resource), and infer from the others; without it, each
        /// is named and nothing is written
        #[arg(long)]
        skip_unusable: bool,
    },
    /// Generate the Rust models from the schemas.
    Generate {
        /// The schemas to generate from
        #[arg(long, default_value = infer::SCHEMAS)]
        schemas: PathBuf,
        /// Where to write the models module
        #[arg(long, default_value = generate::MODELS)]
        out: PathBuf,
        /// Write nothing; exit 1 if the files in --out differ from what
        /// generation produces
        #[arg(long)]
        check: bool,
    },
    /// Infer the schemas from the samples, then generate the models.
    ///
    /// Without arguments: this repository's samples, schemas and bundled
    /// models. With --samples and --out: a models module for your own crate,
    /// inferred from your payloads (merged with Kustomer's published samples
    /// unless --no-seed). Before writing, prints what changes against the
    /// models already in --out: new fields, fields whose type changed,
    /// fields that disappeared.
    Regenerate {
        /// Sample files or directories (repeatable), merged with Kustomer's
        /// published samples unless --no-seed [default: this repository's
        /// schema/samples, which holds the published samples, alone]
        #[arg(long = "samples", value_name = "PATH")]
        samples: Vec<PathBuf>,
        /// Infer from --samples alone, without Kustomer's published samples
        #[arg(long, requires = "samples")]
        no_seed: bool,
        /// Where to write the schemas [default: schema/schemas, or none
        /// with --samples]
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
        /// Where to write the models module [default: runtime/src/models]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print the change summary only; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Leave out, with a warning each, the samples that cannot be used
        /// (invalid JSON, not an event envelope, a `data.type` that cannot
        /// name a resource), and infer from the others; without it, each
        /// is named and nothing is written
        #[arg(long)]
        skip_unusable: bool,
    },
    /// Exit 1, with a summary, when the committed schemas or models are not
    /// what the samples give (run `regenerate` with the same arguments to
    /// update them).
    Check {
        /// Sample files or directories (repeatable), merged with Kustomer's
        /// published samples unless --no-seed [default: this repository's
        /// schema/samples, which holds the published samples, alone]
        #[arg(long = "samples", value_name = "PATH")]
        samples: Vec<PathBuf>,
        /// Infer from --samples alone, without Kustomer's published samples
        #[arg(long, requires = "samples")]
        no_seed: bool,
        /// The committed schemas [default: schema/schemas, or none with
        /// --samples]
        #[arg(long, value_name = "DIR")]
        schemas: Option<PathBuf>,
        /// The committed models module [default: runtime/src/models]
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
        /// Leave out, with a warning each, the samples that cannot be used
        /// (invalid JSON, not an event envelope, a `data.type` that cannot
        /// name a resource), and infer from the others; without it, each
        /// is named and nothing is written
        #[arg(long)]
        skip_unusable: bool,
    },
    /// Parse event payloads with the generated models: the event, its
    /// resource, whether it was typed, and any drift from the models.
    Parse {
        /// Payload files (a JSON event envelope, or several one after
        /// another: JSON Lines), or directories of `.json`, `.jsonl` and `.ndjson`
        /// payload files
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON line per payload:
        /// {"file", "event", "known", "typed", "drift", "lossless"}, or
        /// {"file", "error"} for one that cannot be parsed ("line" after
        /// "file" for one of several payloads in a file)
        #[arg(long, conflicts_with = "emit")]
        json: bool,
        /// Print each parsed event re-serialised as JSON
        #[arg(long)]
        emit: bool,
    },
    /// Receive webhooks at `POST /` (or `--path`), printing one JSON line per dispatched
    /// event: {"event", "id", "resource_id", "typed", "drift"}.
    #[command(group(
        clap::ArgGroup::new("token_source")
            .args(["tokens", "token_files"])
            .required(true)
            .multiple(true)
    ))]
    Serve {
        /// The address to listen on, HOST:PORT (an IP address, or a name
        /// such as localhost, resolved once at start; port 0: any free one)
        #[arg(
            long,
            value_name = "HOST:PORT",
            default_value = "127.0.0.1:8080",
            value_parser = serve::receiver_addr_arg,
            env = "KUSTOMER_WEBHOOKS_ADDR"
        )]
        addr: std::net::SocketAddr,
        /// The path deliveries are posted to (the path of the webhook's URL
        /// in the app definition, such as /webhooks/kustomer, where a proxy
        /// routes by path without rewriting it); other paths answer 404, with
        /// a JSON body naming this one, counted as rejected
        #[arg(
            long,
            value_name = "PATH",
            default_value = "/",
            value_parser = serve::path_arg,
            env = "KUSTOMER_WEBHOOKS_PATH"
        )]
        path: String,
        /// The webhook's token (signatures are checked with it); repeat it
        /// while rotating tokens, to accept deliveries signed with any of them
        #[arg(
            long = "token",
            value_name = "TOKEN",
            env = "KUSTOMER_WEBHOOK_TOKEN",
            hide_env_values = true,
            value_parser = serve::token_arg
        )]
        tokens: Vec<String>,
        /// A file of tokens, one per line (blank lines skipped, white space
        /// around each dropped), so that they are not on the command line,
        /// where other users of the machine can read them (repeatable; adds
        /// to --token)
        #[arg(
            long = "token-file",
            value_name = "FILE",
            env = "KUSTOMER_WEBHOOK_TOKEN_FILE"
        )]
        token_files: Vec<PathBuf>,
        /// A custom header deliveries must carry, as NAME=VALUE (repeatable;
        /// the same name twice accepts either value, while rotating it).
        /// Its value shows in the process list: for a secret, --header-file
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// A file of custom headers deliveries must carry, one NAME=VALUE per
        /// line (repeatable; adds to --header)
        #[arg(
            long = "header-file",
            value_name = "FILE",
            env = "KUSTOMER_WEBHOOK_HEADER_FILE"
        )]
        header_files: Vec<PathBuf>,
        /// How often to read the token and header files (and --tls-cert,
        /// --tls-key) again, in seconds (0: never by the clock). They are
        /// also read again on SIGHUP. A change is taken up at once, without a
        /// restart; a file that cannot be read or used, or holds nothing,
        /// leaves what was read before in place
        #[arg(long, value_name = "SECONDS", default_value = "10")]
        reload_every: u64,
        /// How the log on stderr is written: `text`, or `json` (one object
        /// per line: timestamp, level, target, message, the line's fields
        /// and the delivery's span)
        #[arg(
            long,
            value_name = "FORMAT",
            env = "KUSTOMER_WEBHOOKS_LOG_FORMAT",
            default_value = "text"
        )]
        log_format: log::Format,
        /// The least severe log lines written: `error`, `warn`, `info` (the
        /// default: also rejections and 409s), `debug` (also failed TLS
        /// handshakes and Redis reconnections) or `trace`; serve's own
        /// notes (where it listens, its stop's summary) are always written
        #[arg(
            long,
            value_name = "LEVEL",
            env = "KUSTOMER_WEBHOOKS_LOG_LEVEL",
            default_value = "info"
        )]
        log_level: log::LogLevel,
        /// Save deliveries into this directory, one `<event id>.json` each
        /// (owner-only; payloads hold personal data), to regenerate the
        /// models from later
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        /// Which deliveries --capture saves: `all`, or `unexpected` (drift,
        /// or an event without a generated type; a new key is not drift:
        /// capture `all` to pick new attributes up)
        #[arg(
            long,
            value_name = "FILTER",
            default_value = "all",
            requires = "capture"
        )]
        capture_filter: kustomer_webhooks::capture::Filter,
        /// Acknowledge an update whose `data.attributes.rev` is not newer
        /// than the last one handled for its resource as `stale`, without
        /// dispatching (printing) it: Kustomer does not keep events in order.
        /// An update without a `rev` (users, teams) is ordered by its
        /// `updatedAt`, stale when older.
        /// Without --redis, the revisions are kept in the process (forgotten
        /// at a restart); with --redis, in Redis beside the event ids, so
        /// that `serve`s sharing it share them too
        #[arg(
            long,
            env = "KUSTOMER_WEBHOOKS_ORDERING",
            value_parser = serve::switch_arg
        )]
        ordering: bool,
        /// With --ordering and no --redis: remember the revisions of at most
        /// this many resources (default 1,000,000, about 0.45 GB), the least
        /// recently updated forgotten first (an older update of a forgotten
        /// resource is handled). Keep it above how many resources are updated
        /// in Kustomer's hour of retries
        // Needs --ordering, and no --redis: checked by `check_serve_needs`.
        #[arg(
            long,
            value_name = "N",
            env = "KUSTOMER_WEBHOOKS_ORDERING_MAX_RESOURCES",
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        ordering_max_resources: Option<u64>,
        /// Do not dispatch an event created more than this many seconds ago
        /// (its `createdAt`): a possible replay of a recorded delivery,
        /// whose signature, with no time in it, verifies forever. It is
        /// acknowledged (200 `too old`) and logged with its id, never kept
        /// as a dead letter; what `send` posts is handled whatever its age.
        /// Keep it above Kustomer's hour of retries and at most the event
        /// ids' retention (75 minutes: 4500). From 60 to 604800 (a week);
        /// 0, or not given, for none
        #[arg(
            long,
            value_name = "SECONDS",
            value_parser = serve::age_arg,
            env = "KUSTOMER_WEBHOOKS_MAX_EVENT_AGE"
        )]
        max_event_age: Option<std::time::Duration>,
        /// Seconds a delivery's line may wait for stdout to take it (a
        /// reader that does not keep up); past it, the delivery is answered
        /// 503, not marked done, and Kustomer sends it again
        #[arg(
            long,
            value_name = "SECONDS",
            default_value = "10",
            value_parser = serve::timeout_arg,
            env = "KUSTOMER_WEBHOOKS_HANDLER_TIMEOUT"
        )]
        handler_timeout: std::time::Duration,
        /// The largest body taken, in bytes (at most 64 MiB); a larger one
        /// is answered 413
        #[arg(
            long,
            value_name = "BYTES",
            default_value = "1048576",
            value_parser = serve::max_body_arg,
            env = "KUSTOMER_WEBHOOKS_MAX_BODY"
        )]
        max_body: u32,
        /// Seconds a body may take to arrive once its head has (a client
        /// that stalls mid-way); past it, the delivery is answered 408
        #[arg(
            long,
            value_name = "SECONDS",
            default_value = "10",
            value_parser = serve::timeout_arg,
            env = "KUSTOMER_WEBHOOKS_BODY_TIMEOUT"
        )]
        body_timeout: std::time::Duration,
        /// Seconds a connection may take to send a whole request head
        /// (method, path, headers) after it opens or after its last answer
        /// (with --tls-cert, its TLS handshake has as long again, before);
        /// past it, it is closed, so that a client idling or sending slowly
        /// holds no connection for longer (a stop closes such a connection
        /// after --stop-grace; one closed to make room at
        /// --max-connections, at once)
        #[arg(
            long,
            value_name = "SECONDS",
            default_value = "30",
            value_parser = serve::timeout_arg,
            env = "KUSTOMER_WEBHOOKS_HEAD_TIMEOUT"
        )]
        head_timeout: std::time::Duration,
        /// Seconds a stop (SIGTERM, Ctrl-C) gives a connection that is
        /// sending a request head: a delivery whose head arrives in that
        /// time is still handled. Deliveries whose head had arrived are
        /// finished however long they take; idle connections are closed at
        /// once (0 to 3600)
        #[arg(
            long,
            value_name = "SECONDS",
            default_value = "1",
            value_parser = clap::value_parser!(u16).range(0..=3600),
            env = "KUSTOMER_WEBHOOKS_STOP_GRACE"
        )]
        stop_grace: u16,
        /// Seconds to go on taking deliveries after a stop signal (SIGTERM,
        /// Ctrl-C), while /readyz answers 503, before the graceful stop
        /// begins: time for a load balancer to send new deliveries elsewhere
        /// (a second signal stops at once; 0 to 3600)
        #[arg(
            long,
            value_name = "SECONDS",
            default_value = "0",
            value_parser = clap::value_parser!(u16).range(0..=3600),
            env = "KUSTOMER_WEBHOOKS_STOP_DELAY"
        )]
        stop_delay: u16,
        /// Serve at most this many connections at once (each may hold a body
        /// of up to --max-body bytes and a head of up to 64 KiB, or about
        /// 128 KiB arriving at once, before its signature is checked: at
        /// most N × (--max-body + 128 KiB) of memory
        /// from clients that have no token); at the limit, the oldest with no
        /// request in progress for a second, or with only refused requests
        /// answered on it (or, failing those, one of them whose body has
        /// been arriving for a second), is closed to make room, and while
        /// there is none, more wait until one closes
        #[arg(
            long,
            value_name = "N",
            default_value = "1024",
            value_parser = clap::value_parser!(u32).range(1..),
            env = "KUSTOMER_WEBHOOKS_MAX_CONNECTIONS"
        )]
        max_connections: u32,
        /// Serve HTTPS with this certificate chain (PEM, the server's
        /// certificate first, then the intermediates), with --tls-key; read
        /// again on SIGHUP and every --reload-every seconds, so that a
        /// renewed certificate is taken up without a restart
        #[arg(
            long,
            value_name = "FILE",
            requires = "tls_key",
            env = "KUSTOMER_WEBHOOKS_TLS_CERT"
        )]
        tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --tls-cert
        #[arg(
            long,
            value_name = "FILE",
            requires = "tls_cert",
            env = "KUSTOMER_WEBHOOKS_TLS_KEY"
        )]
        tls_key: Option<PathBuf>,
        /// Also listen on this address for GET /metrics (Prometheus's text
        /// format: deliveries by outcome and, with --redis, whether Redis
        /// answers), /healthz and /readyz (503 once stopping, and while Redis
        /// does not answer unless --redis-fail-open); keep it off the public
        /// network
        #[arg(
            long,
            value_name = "HOST:PORT",
            env = "KUSTOMER_WEBHOOKS_METRICS_ADDR",
            value_parser = serve::addr_arg
        )]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Keep each delivery answered with a 5xx (its line could not be
        /// written; Redis failed) in this directory, as `<event id>.json`,
        /// until a later delivery of it is handled, so that none is lost when
        /// the failure outlasts Kustomer's hour of retries; replay them with
        /// `send` (owner-only; payloads hold personal data)
        #[arg(long, value_name = "DIR", env = "KUSTOMER_WEBHOOKS_DEAD_LETTERS")]
        dead_letters: Option<PathBuf>,
        /// Keep at most this many events in --dead-letters (by default, as
        /// many as the disk holds); past it, deliveries of other events that
        /// fail are only logged (Kustomer still retries them)
        #[arg(
            long,
            value_name = "N",
            env = "KUSTOMER_WEBHOOKS_DEAD_LETTERS_MAX",
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        dead_letters_max: Option<u32>,
        /// Claim event ids in the Redis at this URL (redis://host:port/db,
        /// or rediss://… over TLS) instead of in the process, so that several
        /// `serve`s behind one address share de-duplication; with
        /// --redis-cluster, a node of the cluster, with --redis-sentinel, a
        /// Sentinel (repeat for more; KUSTOMER_WEBHOOKS_REDIS_URL holds them
        /// separated by spaces)
        #[arg(
            long,
            value_name = "URL",
            env = "KUSTOMER_WEBHOOKS_REDIS_URL",
            hide_env_values = true
        )]
        redis: Vec<String>,
        /// The --redis URLs are nodes of a Redis Cluster
        // Needs --redis: checked by `check_serve_needs`, not `requires`.
        #[arg(
            long,
            env = "KUSTOMER_WEBHOOKS_REDIS_CLUSTER",
            value_parser = serve::switch_arg
        )]
        redis_cluster: bool,
        /// The --redis URLs are Redis Sentinels: claim event ids on the
        /// primary they name for this service, and follow them through a
        /// failover (the URLs' user, password and scheme are used for the
        /// primary too, their /db for the primary only)
        #[arg(long, value_name = "NAME", env = "KUSTOMER_WEBHOOKS_REDIS_SENTINEL")]
        redis_sentinel: Option<String>,
        /// While Redis cannot be reached, claim event ids in this process
        /// and handle the deliveries, rather than answer 503 until it is
        /// back (a retry that reaches another `serve` meanwhile is handled
        /// again); once it answers, it learns what was handled meanwhile.
        /// It also starts while Redis (or every node or Sentinel) is down,
        /// and connects once it is up; a Redis that refuses the settings (a
        /// wrong password) still stops it at start
        // Needs --redis: checked by `check_serve_needs`, not `requires`.
        #[arg(
            long,
            env = "KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN",
            value_parser = serve::switch_arg
        )]
        redis_fail_open: bool,
        /// The prefix of the Redis keys [default: kustomer-webhooks:event:]: another for each service sharing one Redis whose events are not this one's
        #[arg(
            long,
            value_name = "PREFIX",
            env = "KUSTOMER_WEBHOOKS_REDIS_PREFIX",
            value_parser = serve::prefix_arg
        )]
        redis_prefix: Option<String>,
        /// For a rediss:// URL (Redis over TLS): trust the authority in this
        /// PEM file instead of the system's root certificates
        #[arg(long, value_name = "FILE", env = "KUSTOMER_WEBHOOKS_REDIS_CA_CERT")]
        redis_ca_cert: Option<PathBuf>,
        /// For a rediss:// URL whose server asks for a client certificate:
        /// this certificate (PEM), with --redis-client-key
        // Needs --redis-client-key: checked by `check_serve_needs`.
        #[arg(long, value_name = "FILE", env = "KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT")]
        redis_client_cert: Option<PathBuf>,
        /// The private key (PEM) of --redis-client-cert
        // Needs --redis-client-cert: checked by `check_serve_needs`.
        #[arg(long, value_name = "FILE", env = "KUSTOMER_WEBHOOKS_REDIS_CLIENT_KEY")]
        redis_client_key: Option<PathBuf>,
        /// Options set by their environment variables alone without what
        /// they need, left out: one warning each (`check_serve_needs`).
        #[arg(skip)]
        ignored: Vec<String>,
    },
    /// Sign and POST payloads the way Kustomer does, printing each status
    /// (http:// or https:// URLs).
    #[command(group(
        clap::ArgGroup::new("token_source")
            .args(["token", "token_file"])
            .required(true)
            .multiple(true)
    ))]
    Send {
        /// Where to post (http:// or https://)
        #[arg(long, value_parser = serve::url_arg)]
        url: String,
        /// The webhook's token to sign with
        #[arg(
            long,
            env = "KUSTOMER_WEBHOOK_TOKEN",
            hide_env_values = true,
            value_parser = serve::token_arg
        )]
        token: Option<String>,
        /// A file holding the token to sign with (white space around it
        /// dropped), so that it is not on the command line
        #[arg(long, value_name = "FILE", env = "KUSTOMER_WEBHOOK_TOKEN_FILE")]
        token_file: Option<PathBuf>,
        /// A custom header to add, as NAME=VALUE (repeatable). Its value
        /// shows in the process list: for a secret, --header-file
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// A file of custom headers to add, one NAME=VALUE per line
        /// (repeatable; adds to --header)
        #[arg(
            long = "header-file",
            value_name = "FILE",
            env = "KUSTOMER_WEBHOOK_HEADER_FILE"
        )]
        header_files: Vec<PathBuf>,
        /// A PEM file of certificate authorities to trust for an https://
        /// URL besides the system's (repeatable)
        #[arg(long = "ca-cert", value_name = "FILE")]
        ca_certs: Vec<PathBuf>,
        /// Seconds one delivery may take before it counts as failed
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = serve::timeout_arg)]
        timeout: std::time::Duration,
        /// Remove each file once the receiver acknowledged it (a 2xx other
        /// than `too old`, an event a receiver left for its age): for
        /// dead letters replayed to a receiver other than the one that kept
        /// them (which removes its own as it handles them)
        #[arg(long)]
        remove_delivered: bool,
        /// Payload files (several payloads in one, JSON Lines, are posted
        /// one by one), or directories of `.json`, `.jsonl` and `.ndjson` payload files
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Start a receiver on a loopback port and deliver the ten samples, a
    /// duplicate, a reordered update, a drifted update, an event without a
    /// model, an update while its store is down (kept as a dead letter, then
    /// replayed), a tampered body under its original signature and a
    /// malformed body to it.
    Demo,
    /// Work with a Kustomer app definition.
    #[command(subcommand)]
    AppDefinition(AppDefinitionCommand),
}

#[derive(Subcommand)]
enum AppDefinitionCommand {
    /// List every problem of an app definition's outbound webhooks (and its
    /// `app`, `version`, `title`) with its JSON path; exit 1 on any error.
    Validate {
        /// The app definition (JSON, UTF-8), or `-` for stdin
        file: PathBuf,
    },
}

/// The variables `serve` and `send` take a webhook's token and header file
/// from, each beside the spelling of the other variables' prefix
/// (`KUSTOMER_WEBHOOKS_`), which they do not read, and the options that,
/// given on the command line, make the variable not matter: its own
/// (`serve` adds a token file's tokens to `--token`'s, and header files'
/// headers to `--header`'s), and for `send`, which takes one token, the
/// other token option too.
const WEBHOOK_VARIABLES: [(&str, &str, &str); 3] = [
    ("KUSTOMER_WEBHOOK_TOKEN", "KUSTOMER_WEBHOOKS_TOKEN", "token"),
    (
        "KUSTOMER_WEBHOOK_TOKEN_FILE",
        "KUSTOMER_WEBHOOKS_TOKEN_FILE",
        "token-file",
    ),
    (
        "KUSTOMER_WEBHOOK_HEADER_FILE",
        "KUSTOMER_WEBHOOKS_HEADER_FILE",
        "header-file",
    ),
];

/// For `serve` and `send` (not asked for help): a token or header-file
/// variable spelled with the other variables' prefix, which nothing reads (a
/// header file left unread would turn its check off), unless the variable
/// read is set to the same or the command line gives what it would have.
fn misspelled_variable(command: Option<&str>) -> Option<String> {
    if !matches!(command, Some("serve" | "send")) {
        return None;
    }
    let asks_for_help = std::env::args_os()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h");
    if asks_for_help {
        return None;
    }
    WEBHOOK_VARIABLES
        .iter()
        .find_map(|(read, misspelled, option)| {
            let value = std::env::var_os(misspelled)?;
            let given = given_on_the_command_line(option)
                || (command == Some("send")
                    && option.starts_with("token")
                    && (given_on_the_command_line("token")
                        || given_on_the_command_line("token-file")));
            if std::env::var_os(read).is_some_and(|read| read == value) || given {
                return None;
            }
            Some(format!(
                "{misspelled} is set, but the variable read is {read} (WEBHOOK, one webhook's): \
                 rename it (the other settings' variables start with KUSTOMER_WEBHOOKS_)"
            ))
        })
}

fn main() -> ExitCode {
    // The command: the first argument that is not an option (none takes a
    // value before it).
    let command = std::env::args_os()
        .skip(1)
        .find(|arg| !arg.to_str().is_some_and(|arg| arg.starts_with('-')))
        .and_then(|arg| arg.into_string().ok());
    if let Some(message) = misspelled_variable(command.as_deref()) {
        let mut cli = Cli::command();
        cli.build();
        let error = match cli.find_subcommand_mut(command.as_deref().unwrap_or_default()) {
            Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
            None => cli.error(clap::error::ErrorKind::ArgumentConflict, message),
        };
        exit_with(error);
    }
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| exit_naming_the_variable(e));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_with(e));
    let mut cli = cli;
    if let Err(e) = check_serve_needs(&mut cli.command, &matches) {
        exit_with(e);
    }
    let code = match run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            out::error_line(&report(&e));
            ExitCode::FAILURE
        }
    };
    // `serve`'s last log lines, when stderr is read.
    log::flush(std::time::Duration::from_secs(2));
    code
}

/// Exits with clap's error; when the value it refuses came from an
/// environment variable (`KUSTOMER_WEBHOOKS_DEAD_LETTERS=` set empty, say),
/// also names the variable, as clap names only the option.
fn exit_naming_the_variable(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue};
    let from_env = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .split_whitespace()
            .next()
            .and_then(|flag| flag.strip_prefix("--"))
            .filter(|long| !given_on_the_command_line(long))
            .and_then(|long| Some((long.to_owned(), variable_of(long)?))),
        _ => None,
    };
    match from_env {
        Some((long, variable)) if e.use_stderr() => {
            let note = format!(
                "note: --{long} was not given: its value is {variable}'s, set in the \
                 environment; fix or unset it"
            );
            if wants_json_log() {
                let error = format!("{}\n{note}", e.render().to_string().trim_end());
                exit_in_json(&error, e.exit_code());
            }
            let _ = e.print();
            let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{note}\n"));
            std::process::exit(e.exit_code());
        }
        _ => exit_with(e),
    }
}

/// Exits with clap's error: on stderr as clap writes it, or, for a `serve`
/// asked to log JSON lines, as one (help and the version go to stdout as
/// they are).
fn exit_with(e: clap::Error) -> ! {
    if e.use_stderr() && wants_json_log() {
        exit_in_json(e.render().to_string().trim_end(), e.exit_code());
    }
    e.exit()
}

/// Writes `error` (clap's, `error: …` and its usage) as one JSON line at
/// level ERROR, and exits with `code`.
fn exit_in_json(error: &str, code: i32) -> ! {
    let message = error.strip_prefix("error: ").unwrap_or(error);
    let line = log::note_json(tracing::Level::ERROR, message);
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{line}\n"));
    std::process::exit(code);
}

/// Whether the command line, or the environment, asks for JSON log lines
/// (`--log-format json`, `KUSTOMER_WEBHOOKS_LOG_FORMAT=json`), read before
/// the options are, for an error in them.
fn wants_json_log() -> bool {
    let mut json = std::env::var("KUSTOMER_WEBHOOKS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let mut args = std::env::args_os()
        .skip(1)
        .filter_map(|a| a.into_string().ok());
    while let Some(arg) = args.next() {
        if arg == "--log-format" {
            json = args.next().is_some_and(|v| v == "json");
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            json = value == "json";
        }
    }
    json
}

/// Whether `--long` (or `--long=…`) is among the command line's arguments.
fn given_on_the_command_line(long: &str) -> bool {
    std::env::args_os().skip(1).any(|arg| {
        arg.to_str().is_some_and(|arg| {
            arg.strip_prefix("--")
                .and_then(|rest| rest.strip_prefix(long))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
    })
}

/// The environment variable, set now, that option `--long` of any command
/// takes its value from.
fn variable_of(long: &str) -> Option<String> {
    let cli = Cli::command();
    let commands = std::iter::once(&cli).chain(cli.get_subcommands());
    commands
        .flat_map(|command| command.get_arguments())
        .filter(|arg| arg.get_long() == Some(long))
        .filter_map(|arg| arg.get_env())
        .find(|variable| std::env::var_os(variable).is_some())
        .map(|variable| variable.to_string_lossy().into_owned())
}

/// `serve`'s options that need another (the Redis ones `--redis`,
/// `--dead-letters-max` `--dead-letters`), checked here rather than by
/// clap's `requires`: given on the command line without the other, each is
/// an error; set by its environment variable alone (a deployment's shared
/// settings, the other turned on where it is wanted), it is left out, with
/// a warning once `serve` logs ([`Command::Serve`]'s `ignored`). A switch
/// its variable sets to false (`KUSTOMER_WEBHOOKS_REDIS_CLUSTER=0`) is not
/// on at all.
fn check_serve_needs(command: &mut Command, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    let Command::Serve {
        redis,
        redis_cluster,
        redis_sentinel,
        redis_fail_open,
        redis_prefix,
        redis_ca_cert,
        redis_client_cert,
        redis_client_key,
        dead_letters,
        dead_letters_max,
        ordering,
        ordering_max_resources,
        ignored,
        ..
    } = command
    else {
        return Ok(());
    };
    let Some(serve_matches) = matches.subcommand_matches("serve") else {
        return Ok(());
    };
    let error = |kind, message: String| {
        let mut cli = Cli::command();
        // Built, the subcommand's usage line names the program too.
        cli.build();
        let serve = cli
            .find_subcommand_mut("serve")
            .expect("serve is a command");
        Err(serve.error(kind, message))
    };
    // Each option present without what it needs: its id, flag, variable.
    let no_redis = redis.is_empty();
    let mut lacking: Vec<(&str, &str, &str, &str)> = Vec::new();
    for (on, id, flag, variable) in [
        (
            *redis_cluster,
            "redis_cluster",
            "--redis-cluster",
            "KUSTOMER_WEBHOOKS_REDIS_CLUSTER",
        ),
        (
            redis_sentinel.is_some(),
            "redis_sentinel",
            "--redis-sentinel",
            "KUSTOMER_WEBHOOKS_REDIS_SENTINEL",
        ),
        (
            *redis_fail_open,
            "redis_fail_open",
            "--redis-fail-open",
            "KUSTOMER_WEBHOOKS_REDIS_FAIL_OPEN",
        ),
        (
            redis_prefix.is_some(),
            "redis_prefix",
            "--redis-prefix",
            "KUSTOMER_WEBHOOKS_REDIS_PREFIX",
        ),
        (
            redis_ca_cert.is_some(),
            "redis_ca_cert",
            "--redis-ca-cert",
            "KUSTOMER_WEBHOOKS_REDIS_CA_CERT",
        ),
        (
            redis_client_cert.is_some(),
            "redis_client_cert",
            "--redis-client-cert",
            "KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT",
        ),
        (
            redis_client_key.is_some(),
            "redis_client_key",
            "--redis-client-key",
            "KUSTOMER_WEBHOOKS_REDIS_CLIENT_KEY",
        ),
    ] {
        if on && no_redis {
            lacking.push((
                id,
                flag,
                variable,
                "--redis <URL> (or KUSTOMER_WEBHOOKS_REDIS_URL): the Redis to use",
            ));
        }
    }
    // The client certificate and its key go together.
    for (on, other, id, flag, variable, needs) in [
        (
            redis_client_cert.is_some(),
            redis_client_key.is_some(),
            "redis_client_cert",
            "--redis-client-cert",
            "KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT",
            "--redis-client-key <FILE> (or KUSTOMER_WEBHOOKS_REDIS_CLIENT_KEY): its private key",
        ),
        (
            redis_client_key.is_some(),
            redis_client_cert.is_some(),
            "redis_client_key",
            "--redis-client-key",
            "KUSTOMER_WEBHOOKS_REDIS_CLIENT_KEY",
            "--redis-client-cert <FILE> (or KUSTOMER_WEBHOOKS_REDIS_CLIENT_CERT): its certificate",
        ),
    ] {
        if on && !other && !lacking.iter().any(|(i, ..)| *i == id) {
            lacking.push((id, flag, variable, needs));
        }
    }
    if dead_letters_max.is_some() && dead_letters.is_none() {
        lacking.push((
            "dead_letters_max",
            "--dead-letters-max",
            "KUSTOMER_WEBHOOKS_DEAD_LETTERS_MAX",
            "--dead-letters <DIR> (or KUSTOMER_WEBHOOKS_DEAD_LETTERS): the directory it caps",
        ));
    }
    if ordering_max_resources.is_some() && !*ordering {
        lacking.push((
            "ordering_max_resources",
            "--ordering-max-resources",
            "KUSTOMER_WEBHOOKS_ORDERING_MAX_RESOURCES",
            "--ordering (or KUSTOMER_WEBHOOKS_ORDERING): the guard it sizes",
        ));
    } else if ordering_max_resources.is_some() && !no_redis {
        // The revisions are in Redis: nothing in the process to size.
        let from_env = serve_matches.value_source("ordering_max_resources")
            == Some(clap::parser::ValueSource::EnvVariable);
        if !from_env {
            return error(
                clap::error::ErrorKind::ArgumentConflict,
                "--ordering-max-resources cannot be used with --redis: it sizes the ordering \
                 guard kept in the process, and with --redis the revisions are kept in Redis"
                    .to_owned(),
            );
        }
        ignored.push(
            "KUSTOMER_WEBHOOKS_ORDERING_MAX_RESOURCES is set, but serve keeps the revisions in \
             Redis (--redis): left out"
                .to_owned(),
        );
        *ordering_max_resources = None;
    }
    for (id, flag, variable, needs) in lacking {
        let from_env =
            serve_matches.value_source(id) == Some(clap::parser::ValueSource::EnvVariable);
        if !from_env {
            return error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{flag} needs {needs}"),
            );
        }
        ignored.push(format!(
            "{variable} is set, but serve has no {}: left out",
            needs.split(" (").next().unwrap_or(needs)
        ));
        match id {
            "redis_cluster" => *redis_cluster = false,
            "redis_sentinel" => *redis_sentinel = None,
            "redis_fail_open" => *redis_fail_open = false,
            "redis_prefix" => *redis_prefix = None,
            "redis_ca_cert" => *redis_ca_cert = None,
            "redis_client_cert" => *redis_client_cert = None,
            "redis_client_key" => *redis_client_key = None,
            "dead_letters_max" => *dead_letters_max = None,
            "ordering_max_resources" => *ordering_max_resources = None,
            _ => {}
        }
    }
    if *redis_cluster && redis_sentinel.is_some() {
        return error(
            clap::error::ErrorKind::ArgumentConflict,
            "--redis-sentinel cannot be used with --redis-cluster: the URLs are Sentinels or \
             nodes of a cluster, not both"
                .to_owned(),
        );
    }
    Ok(())
}

/// The error and its causes, `: `-separated, each said once: an error whose
/// message already ends with its source's (as I/O errors here do) does not
/// repeat it.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.is_empty() {
            out = s;
        } else if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
    }
    out
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Runs `work` on a runtime of its own, then lets the runtime go without
/// waiting more than [`BLOCKING_AT_EXIT`] for work still on its blocking
/// pool: a capture or dead letter written to a disk that stalls would
/// otherwise hold the process, past its stop, until the disk came back.
fn run_to_end<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let runtime = runtime()?;
    let done = runtime.block_on(work);
    runtime.shutdown_timeout(BLOCKING_AT_EXIT);
    done
}

/// How long a command waits at its end for file work still under way.
const BLOCKING_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(5);

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<ExitCode> {
    if matches!(
        cli.command,
        Command::Infer { .. }
            | Command::Generate { .. }
            | Command::Regenerate { .. }
            | Command::Check { .. }
    ) {
        // Their work is files and an exit status: a reader of their lines
        // that goes away (`regenerate | head -1`) must not leave schemas
        // written and models not, nor make a stale `check` exit 0.
        out::go_on_without_stdout();
    }
    match cli.command {
        Command::Infer {
            paths,
            out,
            check,
            no_evidence,
            skip_unusable,
        } => {
            if given_by_default(matches, "infer", "out") {
                repository_default(&out, "--out")?;
            }
            let settings = kustomer_schema::Settings::default().with_evidence(!no_evidence);
            let inferrer = infer::run(
                &paths,
                settings,
                skip_unusable,
                "pass sample files or directories",
            )?;
            if check {
                return Ok(infer::check(&inferrer, &out));
            }
            infer::write(&inferrer, &out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            schemas,
            out,
            check,
        } => {
            if given_by_default(matches, "generate", "out") {
                repository_default(&out, "--out")?;
            }
            if given_by_default(matches, "generate", "schemas") {
                repository_default(&schemas, "--schemas")?;
            }
            let dir = schemas;
            let schemas = kustomer_codegen::read_schemas(&dir)?;
            if schemas.is_empty() {
                // Generating from none would remove every model.
                anyhow::bail!(
                    "no schemas (`.json` files with `x-kustomer-resource`) in {}",
                    dir.display()
                );
            }
            let dirs = generate::Dirs {
                schemas: &dir,
                out: &out,
            };
            if check {
                return generate::check(&schemas, &dirs);
            }
            generate::write(&schemas, &dirs)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Regenerate {
            samples,
            no_seed,
            schemas,
            out,
            dry_run,
            skip_unusable,
        } => {
            if out.is_none() {
                repository_default(Path::new(generate::MODELS), "--out")?;
            }
            regenerate::regenerate(
                &regenerate::Pipeline {
                    samples,
                    no_seed,
                    out,
                    schemas,
                    skip_unusable,
                },
                dry_run,
            )
        }
        Command::Check {
            samples,
            no_seed,
            schemas,
            models,
            skip_unusable,
        } => {
            if models.is_none() {
                repository_default(Path::new(generate::MODELS), "--models")?;
            }
            regenerate::check(&regenerate::Pipeline {
                samples,
                no_seed,
                out: models,
                schemas,
                skip_unusable,
            })
        }
        Command::Parse { files, json, emit } => Ok(parse::run(&files, json, emit)),
        Command::Serve {
            addr,
            path,
            tokens,
            token_files,
            reload_every,
            log_format,
            log_level,
            headers,
            header_files,
            capture,
            capture_filter,
            ordering,
            ordering_max_resources,
            max_event_age,
            handler_timeout,
            max_body,
            body_timeout,
            head_timeout,
            stop_grace,
            stop_delay,
            max_connections,
            tls_cert,
            tls_key,
            metrics_addr,
            dead_letters,
            dead_letters_max,
            redis,
            redis_cluster,
            redis_sentinel,
            redis_fail_open,
            redis_prefix,
            redis_ca_cert,
            redis_client_cert,
            redis_client_key,
            ignored,
        } => {
            let sources = secrets::Sources {
                tokens,
                token_files,
                headers,
                header_files,
            };
            let options = serve::ServeOptions {
                ignored,
                path,
                capture: capture.map(|dir| {
                    kustomer_webhooks::capture::Capture::new(dir).filter(capture_filter)
                }),
                ordering,
                ordering_max_resources,
                max_event_age,
                handler_timeout,
                max_body: max_body as usize,
                body_timeout,
                server: kustomer_webhooks::axum::Server::new()
                    .with_head_timeout(head_timeout)
                    .with_stop_grace(std::time::Duration::from_secs(stop_grace.into()))
                    .with_max_connections(max_connections as usize),
                tls: tls_cert.zip(tls_key),
                metrics: metrics_addr,
                dead_letters: dead_letters.map(|dir| (dir, dead_letters_max.map(|n| n as usize))),
                log_format,
                log_level,
                reload_every: (reload_every > 0)
                    .then(|| std::time::Duration::from_secs(reload_every)),
                stop_delay: std::time::Duration::from_secs(stop_delay.into()),
                redis: (!redis.is_empty()).then(|| serve::RedisOptions {
                    // Several URLs in one value (as the environment variable
                    // holds them) are separated by white space, which no URL
                    // holds.
                    urls: redis
                        .iter()
                        .flat_map(|urls| urls.split_ascii_whitespace())
                        .map(str::to_owned)
                        .collect(),
                    topology: match redis_sentinel {
                        Some(service) => serve::Topology::Sentinel(service),
                        None if redis_cluster => serve::Topology::Cluster,
                        None => serve::Topology::Single,
                    },
                    prefix: redis_prefix,
                    fail_open: redis_fail_open,
                    ca_cert: redis_ca_cert,
                    client_identity: redis_client_cert.zip(redis_client_key),
                }),
            };
            run_to_end(serve::serve(addr, sources, options))
        }
        Command::Send {
            url,
            token,
            token_file,
            headers,
            header_files,
            ca_certs,
            timeout,
            remove_delivered,
            paths,
        } => {
            let sources = matches.subcommand_matches("send").map(|m| {
                let from_line =
                    |id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
                (from_line("token"), from_line("token_file"))
            });
            let token = secrets::send_token(token, token_file, sources.unwrap_or_default())?;
            let headers = secrets::headers(&headers, &header_files)?;
            // Sent twice, a header's values reach a receiver as two lines,
            // of which it judges one: never what was meant.
            for (i, (name, _)) in headers.iter().enumerate() {
                if headers[..i]
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    anyhow::bail!(
                        "the header {} is given twice (--header or --header-file): a receiver \
                         takes one of its values, so give it once",
                        out::printable(name)
                    );
                }
            }
            let options = serve::SendOptions {
                timeout,
                ca_certs,
                remove_delivered,
            };
            run_to_end(serve::send(&url, &token, &headers, &paths, &options))
        }
        Command::Demo => run_to_end(serve::demo()),
        Command::AppDefinition(AppDefinitionCommand::Validate { file }) => {
            let text = read_definition(&file)?;
            let problems = kustomer_webhooks::app::AppDefinition::validate_json(&text);
            if problems.iter().any(|p| p.is_error()) {
                // Known before the lines: a reader that stops early does not
                // make it a success.
                out::failed();
            }
            // A key of the file's own may hold a line break or an escape
            // sequence: shown escaped, so that it cannot forge a line.
            let shown = out::printable(&file.display().to_string()).into_owned();
            for p in &problems {
                out!("{shown}: {}", out::printable(&p.to_string()));
            }
            let errors = problems.iter().filter(|p| p.is_error()).count();
            if errors == 0 {
                out!("{shown}: valid ({} warning(s))", problems.len());
                Ok(ExitCode::SUCCESS)
            } else {
                out!("{shown}: {errors} error(s)");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Whether `subcommand`'s option `id` has its default value, not one given.
fn given_by_default(matches: &clap::ArgMatches, subcommand: &str, id: &str) -> bool {
    matches
        .subcommand_matches(subcommand)
        .is_some_and(|m| m.value_source(id) == Some(clap::parser::ValueSource::DefaultValue))
}

/// A directory that an option defaults to, which is this repository's own
/// (`runtime/src/models`): an error where it does not exist, as in a crate
/// of one's own, rather than made there.
fn repository_default(dir: &Path, flag: &str) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let such_as = if dir == Path::new(infer::SCHEMAS) {
        "a directory for the schemas, such as schemas"
    } else {
        "the models module of your crate, such as src/kustomer"
    };
    anyhow::bail!(
        "no {flag} given, and its default, {}, is this repository's own and is not here: pass \
         {flag} DIR ({such_as})",
        dir.display()
    )
}

/// The largest app definition `app-definition validate` reads: far past
/// any real one (a few kilobytes), short of what would take the machine's
/// memory (`/dev/zero`).
const MAX_APP_DEFINITION: u64 = 16 << 20;

/// An app definition's text: the file, or stdin for `-`; one that is not
/// UTF-8 is an error that says where, or that it is UTF-16; one over
/// [`MAX_APP_DEFINITION`] is an error too.
fn read_definition(file: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let shown = file.display();
    let mut bytes = Vec::new();
    // One byte past the most read, to tell a file that is larger.
    let most = MAX_APP_DEFINITION + 1;
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(most)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("{shown} (stdin): {e}"))?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(most).read_to_end(&mut bytes))
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    }
    if bytes.len() as u64 > MAX_APP_DEFINITION {
        anyhow::bail!(
            "{shown}: larger than {} MiB, which no app definition is",
            MAX_APP_DEFINITION >> 20
        );
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        anyhow::bail!(
            "{shown}: the file is UTF-16 (it starts with its byte order mark); save it as UTF-8"
        );
    }
    // JSON starts with an ASCII character: in UTF-16, one of its first two
    // bytes is then 0 and the other not.
    if let [a, b, ..] = bytes[..]
        && (a == 0) != (b == 0)
    {
        anyhow::bail!(
            "{shown}: the file looks like UTF-16 (every other byte 0, no byte order mark); save \
             it as UTF-8"
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: not UTF-8: the byte at offset {} cannot start or continue a character \
             (save the file as UTF-8)",
            e.utf8_error().valid_up_to()
        )
    })
}
