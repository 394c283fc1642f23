//! Shared helpers for the cross-crate test suites and benchmarks.
//!
//! - [`mutate`]: a deterministic generator of drifted copies of the ten
//!   seed samples, for property tests and benchmarks of inference;
//! - [`alloc_counter`]: a counting global allocator, so a test or benchmark
//!   binary can measure the peak heap of what it runs;
//! - [`call_counter`]: a global allocator counting allocating calls on
//!   demand, for allocations per operation in benchmarks;
//! - [`compact_json`]: sample text as the compact bodies Kustomer sends;
//! - [`median`]: the middle of a benchmark's rounds;
//! - [`load`]: the receiver benchmark's deliveries, servers and client;
//! - [`redis_server`]: a `redis-server` of a test's own, over TCP or TLS;
//! - [`TLS_DIR`]: the test certificates.
#![deny(missing_docs)]

pub mod alloc_counter;
pub mod call_counter;
pub mod load;
pub mod mutate;
pub mod redis_server;

/// The test certificates, in PEM: `ca.pem`, the authority that issued
/// `server.pem` (key `server.key`, for `localhost` and `127.0.0.1`);
/// `other-ca.pem`, an authority that issued nothing here; `client-ca.pem`,
/// the authority that issued `client.pem` (key `client.key`);
/// `authorities.pem`, `ca.pem` and `client-ca.pem` together (what the nodes
/// of a Redis Cluster over TLS trust, since each is also the others'
/// client). All valid until 2126, but for `expired.pem`: self-signed with
/// `server.key`, for `localhost` and `127.0.0.1`, valid from 2025-01-01 to
/// 2025-04-01 (made with `openssl ca -selfsign -startdate … -enddate …`);
/// and `rsa1024.pem`, self-signed for `localhost` and `127.0.0.1` with the
/// 1024-bit RSA key `rsa1024.key`, which the TLS library does not sign with
/// (`openssl req -x509 -newkey rsa:1024 …`).
pub const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tls");

/// How many bytes a client at `client` sent over loopback TCP that the
/// server listening at `server` has not read yet: its end's receive queue,
/// in Linux's `/proc/net/tcp`. `None` where there is no such table, or no
/// such connection in it. A server that is stopping closes at once a
/// connection it has read nothing from (an idle one, to it), so a test of
/// what a stop does with a half-sent request waits for this to be zero.
pub fn unread_by_server(server: std::net::SocketAddr, client: std::net::SocketAddr) -> Option<u64> {
    let hex = |addr: std::net::SocketAddr| match addr {
        std::net::SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        )),
        std::net::SocketAddr::V6(_) => None,
    };
    let (server, client) = (hex(server)?, hex(client)?);
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let line = table.lines().find(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(server.as_str()) && fields.next() == Some(client.as_str())
    })?;
    let queues = line.split_whitespace().nth(4)?;
    u64::from_str_radix(queues.split(':').nth(1)?, 16).ok()
}

/// JSON text without its insignificant whitespace, keys and values exactly
/// as written (unlike a parse and re-serialisation, which may reorder keys
/// or rewrite numbers): the compact bodies the benchmarks parse.
pub fn compact_json(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

/// The middle value of `xs` (the upper one of the two middles for an even
/// count): what the benchmarks report of their interleaved rounds.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The messages of the warnings (and errors) logged while `f` runs, on
/// this thread.
pub fn warnings(f: impl FnOnce()) -> Vec<String> {
    use tracing::field::{Field, Visit};

    #[derive(Default)]
    struct Warnings(std::sync::Mutex<Vec<String>>);
    struct Message(String);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    impl tracing::Subscriber for Warnings {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            *metadata.level() <= tracing::Level::WARN
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let warnings = std::sync::Arc::new(Warnings::default());
    tracing::subscriber::with_default(std::sync::Arc::clone(&warnings), f);
    warnings.0.lock().unwrap().clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_json_keeps_strings_and_drops_the_rest() {
        let text = "{ \"a\" : [1, 2],\n \"b\": \"x y \\\" z\" }";
        assert_eq!(super::compact_json(text), br#"{"a":[1,2],"b":"x y \" z"}"#);
    }
}
