//! Is a delivery really from Kustomer? Signature and custom-header checks.
//!
//! Kustomer signs each delivery with the lowercase hex of HMAC-SHA256 over
//! the exact request body, keyed with the webhook's token, in the
//! `X-Kustomer-Webhook-Signature` header. There is no timestamp and no
//! delivery id in the signature, so a replay verifies forever: de-duplicate
//! by event id as well (which turns a replay away only while the store
//! remembers the id: 75 minutes by default), receive over HTTPS only, and
//! check a custom header. Apps can also configure custom headers (`{name,
//! value}` in the app definition) that act as a shared secret.
//!
//! Verification here takes bytes and header values, nothing from a web
//! framework; it runs before any JSON parsing, compares in constant time,
//! and accepts several tokens at once so that a token can be rotated without
//! refusing deliveries signed with the old one (and several values of a
//! custom header, for the same reason); a [`SharedVerifier`] changes
//! them while deliveries are received, without a restart. Tokens and header
//! secrets never show in `Debug` output.
//!
//! ```
//! use kustomer_webhooks::verify::{Verifier, sign};
//!
//! let body = br#"{"name": "kustomer.team.create", "data": {"type": "team"}}"#;
//! let signature = sign(b"token-2026", body);
//!
//! let verifier = Verifier::new("token-2026").with_token("token-2025").with_header("x-app-secret", "s3cret");
//! let headers = |name: &str| match name {
//!     "x-kustomer-webhook-signature" => Some(signature.as_bytes()),
//!     "x-app-secret" => Some(&b"s3cret"[..]),
//!     _ => None,
//! };
//! verifier.verify(body, headers)?;
//! assert!(!format!("{verifier:?}").contains("token-2026"));
//! # Ok::<(), kustomer_webhooks::verify::VerifyError>(())
//! ```

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header that carries the signature (matched case-insensitively by the
/// adapters; [`Verifier::verify`] asks for it in lowercase).
pub const SIGNATURE_HEADER: &str = "x-kustomer-webhook-signature";

/// The header that names the event.
pub const EVENT_HEADER: &str = "x-kustomer-webhook-event";

/// The header `kustomer-webhooks send` adds to every delivery it posts: a
/// second signature, made now, over the time and the body
/// (`t=<seconds since the Unix epoch>,v1=<lowercase hex HMAC-SHA256 of
/// "<t>.<body>">`, [`sign_resent`]). Kustomer sends no such header. With a
/// [max event age](crate::receiver::Receiver::with_max_event_age), a
/// delivery whose resent signature is valid and at most [`RESENT_TOLERANCE`]
/// old is dispatched whatever its event's age: whoever made it holds the
/// token now, so it is no replay of a recorded delivery (a dead letter sent
/// again, say).
pub const RESENT_HEADER: &str = "x-kustomer-webhooks-resent";

/// How far a [`RESENT_HEADER`]'s time may be from the receiver's clock,
/// either way.
pub const RESENT_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// The headers a delivery's own meaning is in, which a custom header cannot
/// be (lowercase; compare case-insensitively): Kustomer's signature and event
/// name, the [`RESENT_HEADER`] that `kustomer-webhooks send` adds (a custom
/// header of that name would be sent twice, and read as a resent signature
/// that does not hold), and the body's type, encoding and framing (a
/// `content-encoding` custom header would have every delivery that carries
/// it refused as an encoded body, 415). `kustomer-webhooks serve` refuses
/// them as `--header`s, and the app-definition validator as a webhook's
/// `headers`.
pub const RESERVED_HEADERS: [&str; 7] = [
    SIGNATURE_HEADER,
    EVENT_HEADER,
    RESENT_HEADER,
    "content-type",
    "content-encoding",
    "content-length",
    "transfer-encoding",
];

/// Headers a proxy or load balancer in front of a receiver may drop,
/// consume or rewrite (lowercase; compare case-insensitively): the
/// connection's own (`connection`, `keep-alive`, `te`, `trailer`,
/// `upgrade`, `expect`, `proxy-authorization`, `proxy-authenticate`,
/// `proxy-connection`) and `host`. A custom header named as one
/// of them could reach the receiver changed or not at all, refusing every
/// delivery, so `kustomer-webhooks serve` refuses them as `--header`s, and
/// the app-definition validator as a webhook's `headers`.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
];

/// Why a delivery is refused as not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `X-Kustomer-Webhook-Signature` header.
    #[error("the X-Kustomer-Webhook-Signature header is missing")]
    MissingSignature,
    /// The signature is not 64 hexadecimal digits.
    #[error("the X-Kustomer-Webhook-Signature header is not 64 hexadecimal digits")]
    MalformedSignature,
    /// The signature does not match the body under any accepted token.
    #[error("the signature does not match the body for any accepted token")]
    BadSignature,
    /// A configured custom header is missing.
    #[error("the {name} header is missing")]
    MissingHeader {
        /// The header.
        name: String,
    },
    /// A configured custom header has another value.
    #[error("the {name} header has the wrong value")]
    BadHeader {
        /// The header.
        name: String,
    },
}

/// A secret, never printed: the SHA-256 digest of a custom header's value
/// (compared in constant time with the digest of the value a delivery
/// carries, so that neither the comparison nor its length tells anything of
/// the secret's), or an HMAC-SHA256 already keyed with a token (the key's
/// two hash blocks computed once, not per delivery).
#[derive(Clone)]
struct Secret<T>(T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Checks deliveries: their signature under any of the accepted tokens, and
/// the custom headers the app definition configures.
#[derive(Clone, Debug)]
pub struct Verifier {
    tokens: Vec<Secret<Hmac<Sha256>>>,
    /// Each custom header once, with every value it is accepted with.
    headers: Vec<(String, Vec<HeaderValue>)>,
}

/// A custom header's accepted value, as its SHA-256 digest.
type HeaderValue = Secret<[u8; 32]>;

impl Verifier {
    /// A verifier accepting deliveries signed with `token`.
    ///
    /// Give it the webhook's token as Kustomer shows it. White space around
    /// it is dropped (the newline a token read from a file or a secret
    /// usually ends with): no token Kustomer gives starts or ends with any,
    /// and [`sign`] drops it too. An empty or blank
    /// token (an unset variable read as `""`, say) is not accepted: anyone
    /// could sign with it, so it is left out, with an error logged, and no
    /// delivery verifies until a token is given.
    ///
    /// ```
    /// use kustomer_webhooks::verify::{Verifier, VerifyError, sign};
    ///
    /// let body = br#"{"name": "kustomer.team.create"}"#;
    /// let forged = sign(b"", body);
    /// let verifier = Verifier::new("");
    /// assert_eq!(verifier.token_count(), 0);
    /// assert_eq!(verifier.verify_signature(body, forged.as_bytes()), Err(VerifyError::BadSignature));
    /// ```
    pub fn new(token: impl AsRef<[u8]>) -> Self {
        Verifier::none().with_token(token)
    }

    /// A verifier with no token and no header yet, which verifies nothing.
    pub(crate) fn none() -> Self {
        Verifier {
            tokens: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Also accepts deliveries signed with `token` (while rotating tokens).
    /// An empty or blank one is left out, as [`new`](Self::new) says.
    pub fn with_token(mut self, token: impl AsRef<[u8]>) -> Self {
        let token = token.as_ref();
        if token.trim_ascii().is_empty() {
            tracing::error!(
                "an empty or blank webhook token was given to the verifier: it is left out, \
                 since anyone could sign with it (deliveries signed with it are refused)"
            );
        } else {
            self.tokens.push(Secret(keyed(token)));
        }
        self
    }

    /// Also requires the header `name` (case-insensitive) to carry `value`.
    /// Given again for the same name, the header may carry either value
    /// (while rotating its secret, as [`with_token`](Self::with_token)
    /// does for tokens).
    ///
    /// `value` is taken without the white space around it, which HTTP
    /// drops from a header's value as it arrives. An empty or blank one (an
    /// unset variable read as `""`, say) is not accepted, since anyone could
    /// send it: it is left out, with an error logged, and the header is still
    /// required, so no delivery verifies until it is given a value.
    ///
    /// ```
    /// use kustomer_webhooks::verify::{Verifier, VerifyError, sign};
    ///
    /// let body = br#"{"name": "kustomer.team.create"}"#;
    /// let signature = sign(b"t0ken", body);
    /// let header = |name: &str| match name {
    ///     "x-kustomer-webhook-signature" => Some(signature.as_bytes()),
    ///     "x-app-secret" => Some(b"".as_slice()),
    ///     _ => None,
    /// };
    /// let verifier = Verifier::new("t0ken").with_header("X-App-Secret", "");
    /// assert_eq!(
    ///     verifier.verify(body, header),
    ///     Err(VerifyError::BadHeader { name: "x-app-secret".into() })
    /// );
    /// ```
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        let name = name.as_ref().to_ascii_lowercase();
        let value = value.as_ref().trim_ascii();
        let at = match self.headers.iter().position(|(known, _)| *known == name) {
            Some(at) => at,
            None => {
                self.headers.push((name.clone(), Vec::new()));
                self.headers.len() - 1
            }
        };
        if value.is_empty() {
            tracing::error!(
                "an empty or blank value was given for the custom header {name}: it is left \
                 out, since anyone could send it (the header is still required, and no \
                 delivery verifies until it has a value)"
            );
        } else {
            self.headers[at]
                .1
                .push(Secret(Sha256::digest(value).into()));
        }
        self
    }

    /// How many tokens are accepted.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Verifies a delivery: `body` exactly as received, and `header` giving
    /// a request header's value by its lowercase name.
    ///
    /// The signature is checked first: a sender without a token learns
    /// nothing of the custom headers (which one is configured, or whether a
    /// value it guessed is right) from the error, which then always says
    /// the signature is wrong.
    pub fn verify<'h>(
        &self,
        body: &[u8],
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Result<(), VerifyError> {
        let signature = header(SIGNATURE_HEADER).ok_or(VerifyError::MissingSignature)?;
        self.verify_signature(body, signature)?;
        for (name, accepted) in &self.headers {
            let value =
                header(name).ok_or_else(|| VerifyError::MissingHeader { name: name.clone() })?;
            // Digests compared, every accepted one, so the time taken tells
            // neither which matched nor how long a secret is.
            let given: [u8; 32] = Sha256::digest(value).into();
            let ok = accepted
                .iter()
                .fold(subtle::Choice::from(0), |ok, expected| {
                    ok | given.ct_eq(&expected.0)
                });
            if !bool::from(ok) {
                return Err(VerifyError::BadHeader { name: name.clone() });
            }
        }
        Ok(())
    }

    /// Verifies only the signature (the header's value) of `body`.
    pub fn verify_signature(&self, body: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let trimmed = signature.trim_ascii();
        let Ok(given) = <&[u8; 64]>::try_from(trimmed) else {
            return Err(VerifyError::MalformedSignature);
        };
        if !given.iter().all(u8::is_ascii_hexdigit) {
            return Err(VerifyError::MalformedSignature);
        }
        // Compared as lowercase hex text: encoding is a table lookup per
        // byte, where decoding branches on every digit.
        let given = given.map(|b| b.to_ascii_lowercase());
        // Every token is tried, so the time taken does not tell which matched.
        let mut ok = subtle::Choice::from(0);
        let mut expected = [0u8; 64];
        for token in &self.tokens {
            let mut m = token.0.clone();
            m.update(body);
            // 32 bytes always fit in 64 hex digits.
            if hex::encode_to_slice(m.finalize().into_bytes(), &mut expected).is_ok() {
                ok |= expected.ct_eq(&given);
            }
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

impl Verifier {
    /// Whether `value`, a [`RESENT_HEADER`], is a signature of `body` under
    /// one of the tokens, made at most [`RESENT_TOLERANCE`] from `now`
    /// (seconds since the Unix epoch) either way. Every token is tried, and
    /// compared in constant time.
    pub fn verify_resent(&self, body: &[u8], value: &[u8], now: u64) -> bool {
        let Some((t, given)) = resent_parts(value) else {
            return false;
        };
        if t.abs_diff(now) > RESENT_TOLERANCE.as_secs() {
            return false;
        }
        let given = given.map(|b| b.to_ascii_lowercase());
        let mut ok = subtle::Choice::from(0);
        let mut expected = [0u8; 64];
        for token in &self.tokens {
            let mut m = token.0.clone();
            m.update(t.to_string().as_bytes());
            m.update(b".");
            m.update(body);
            if hex::encode_to_slice(m.finalize().into_bytes(), &mut expected).is_ok() {
                ok |= expected.ct_eq(&given);
            }
        }
        bool::from(ok)
    }
}

/// A [`RESENT_HEADER`]'s time and signature, when it has the form
/// `t=<digits>,v1=<64 hex digits>`.
fn resent_parts(value: &[u8]) -> Option<(u64, [u8; 64])> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (t, v1) = value.split_once(',')?;
    let t = t.trim().strip_prefix("t=")?;
    if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v1 = v1.trim().strip_prefix("v1=")?;
    let v1 = <[u8; 64]>::try_from(v1.as_bytes()).ok()?;
    v1.iter()
        .all(u8::is_ascii_hexdigit)
        .then(|| Some((t.parse().ok()?, v1)))
        .flatten()
}

/// The [`RESENT_HEADER`] of `body` signed with `token` at `now` (seconds
/// since the Unix epoch).
pub fn sign_resent(token: &[u8], body: &[u8], now: u64) -> String {
    let mut m = keyed(token);
    m.update(now.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("t={now},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// A [`Verifier`] that can be replaced while deliveries are received: the
/// tokens and custom headers change without a restart (say, when a secret
/// store rotates the file they are read from).
///
/// Clones share one verifier. [`replace`](Self::replace) swaps it for every
/// clone at once; a delivery being verified at that moment finishes with the
/// verifier it started with. Give one to
/// [`Receiver::with_shared_verifier`](crate::receiver::Receiver::with_shared_verifier)
/// and keep a clone to replace it later.
///
/// ```
/// use kustomer_webhooks::verify::{SharedVerifier, Verifier, VerifyError, sign};
///
/// let body = br#"{"name": "kustomer.team.create"}"#;
/// let shared = SharedVerifier::new(Verifier::new("token-2025"));
/// let by = |token: &[u8]| {
///     let signature = sign(token, body);
///     shared.verify(body, |name| {
///         (name == "x-kustomer-webhook-signature").then_some(signature.as_bytes())
///     })
/// };
/// assert_eq!(by(b"token-2025"), Ok(()));
///
/// // Rotation: the new token first, the old one while Kustomer still signs with it.
/// shared.replace(Verifier::new("token-2026").with_token("token-2025"));
/// assert_eq!(by(b"token-2026"), Ok(()));
/// assert_eq!(by(b"token-2025"), Ok(()));
///
/// // Done: the old token is refused.
/// shared.replace(Verifier::new("token-2026"));
/// assert_eq!(by(b"token-2025"), Err(VerifyError::BadSignature));
/// ```
///
/// Tokens read from a file that a secret store rotates (one per line, as
/// `kustomer-webhooks serve --token-file` reads them), read again every ten
/// seconds, off the runtime's worker threads. The file must be replaced
/// whole (a new file renamed into place, as secret stores and Kubernetes do):
/// a read cannot tell a file written halfway from a whole one, and its
/// tokens would replace the good ones. A file that cannot be read, or holds
/// no token, keeps the tokens read before.
///
/// ```no_run
/// use std::time::Duration;
/// use kustomer_webhooks::verify::{SharedVerifier, Verifier};
///
/// fn verifier_from(path: &str) -> std::io::Result<Verifier> {
///     let text = std::fs::read_to_string(path)?;
///     let mut tokens = text.lines().map(str::trim).filter(|t| !t.is_empty());
///     let first = tokens.next().ok_or_else(|| std::io::Error::other("no token"))?;
///     Ok(tokens.fold(Verifier::new(first), |v, token| v.with_token(token)))
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// const TOKENS: &str = "/run/secrets/kustomer-tokens";
/// let shared = SharedVerifier::new(verifier_from(TOKENS)?);
/// let watched = shared.clone();
/// tokio::spawn(async move {
///     loop {
///         tokio::time::sleep(Duration::from_secs(10)).await;
///         let read = tokio::task::spawn_blocking(|| verifier_from(TOKENS)).await;
///         if let Ok(Ok(verifier)) = read {
///             watched.replace(verifier);
///         }
///     }
/// });
/// // … Receiver::with_shared_verifier(dispatcher, shared)
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedVerifier(Arc<RwLock<Verifier>>);

impl SharedVerifier {
    /// Shares `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        SharedVerifier(Arc::new(RwLock::new(verifier)))
    }

    /// Verifies with the current verifier, as [`Verifier::verify`] does.
    pub fn verify<'h>(
        &self,
        body: &[u8],
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Result<(), VerifyError> {
        self.read().verify(body, header)
    }

    /// Replaces the verifier for every clone; deliveries from now on are
    /// verified with `verifier`.
    pub fn replace(&self, verifier: Verifier) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = verifier;
    }

    /// How many tokens the current verifier accepts.
    pub fn token_count(&self) -> usize {
        self.read().token_count()
    }

    /// [`Verifier::verify_resent`] with the current verifier.
    pub fn verify_resent(&self, body: &[u8], value: &[u8], now: u64) -> bool {
        self.read().verify_resent(body, value, now)
    }

    /// The current verifier, held for reading: replacing it waits until this
    /// is dropped.
    fn read(&self) -> RwLockReadGuard<'_, Verifier> {
        // Nothing panics while the lock is held for writing (an assignment),
        // so a poisoned lock still holds a whole verifier.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<Verifier> for SharedVerifier {
    fn from(verifier: Verifier) -> Self {
        SharedVerifier::new(verifier)
    }
}

/// HMAC-SHA256 keyed with `token`, without the white space around it: no
/// token Kustomer gives starts or ends with white space, so any there came
/// with the copy (the newline a secret file or `echo` leaves), and signing
/// and verifying with it would refuse every delivery.
fn keyed(token: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(token.trim_ascii())
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
}

/// Signs `body` the way Kustomer does: lowercase hex of HMAC-SHA256 keyed
/// with `token` (without the white space around it, as [`Verifier::new`]
/// takes it).
pub fn sign(token: &[u8], body: &[u8]) -> String {
    let mut m = keyed(token);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resent_signature_verifies_under_any_token_within_the_tolerance() {
        let body = br#"{"id":"1"}"#;
        let verifier = Verifier::new("new").with_token("old");
        let now = 1_800_000_000;
        for token in [&b"new"[..], b"old"] {
            let value = sign_resent(token, body, now);
            assert!(value.starts_with("t=1800000000,v1="), "{value}");
            assert!(verifier.verify_resent(body, value.as_bytes(), now));
            assert!(verifier.verify_resent(body, value.as_bytes(), now + 300));
            assert!(verifier.verify_resent(body, value.as_bytes(), now - 300));
            assert!(
                !verifier.verify_resent(body, value.as_bytes(), now + 301),
                "too late"
            );
            assert!(
                !verifier.verify_resent(body, value.as_bytes(), now - 301),
                "too early"
            );
            assert!(
                !verifier.verify_resent(b"{}", value.as_bytes(), now),
                "another body"
            );
            let (_, hex) = value.split_once("v1=").unwrap();
            let upper = format!("t={now},v1={}", hex.to_ascii_uppercase());
            assert!(
                verifier.verify_resent(body, upper.as_bytes(), now),
                "hex in capitals"
            );
        }
        let forged = sign_resent(b"another", body, now);
        assert!(!verifier.verify_resent(body, forged.as_bytes(), now));
        // Shared, the current verifier's tokens count.
        let shared = SharedVerifier::new(verifier.clone());
        let by_old = sign_resent(b"old", body, now);
        assert!(shared.verify_resent(body, by_old.as_bytes(), now));
        shared.replace(Verifier::new("new"));
        assert!(!shared.verify_resent(body, by_old.as_bytes(), now));
        // The time is signed: moved, the signature no longer holds.
        let moved = sign_resent(b"new", body, now).replace("t=1800000000", "t=1800000001");
        assert!(!verifier.verify_resent(body, moved.as_bytes(), now));
        for bad in [
            &b""[..],
            b"t=,v1=00",
            b"v1=00,t=1",
            b"t=1800000000",
            b"t=-5,v1=0000000000000000000000000000000000000000000000000000000000000000",
            b"t=99999999999999999999,v1=0000000000000000000000000000000000000000000000000000000000000000",
            b"t=1800000000,v1=zz00000000000000000000000000000000000000000000000000000000000000",
            b"\xff\xfe",
        ] {
            assert!(!verifier.verify_resent(body, bad, now), "{bad:?}");
        }
    }

    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn check(
        v: &Verifier,
        body: &[u8],
        sig: Option<&str>,
        secret: Option<&str>,
    ) -> Result<(), VerifyError> {
        v.verify(body, |name| match name {
            SIGNATURE_HEADER => sig.map(str::as_bytes),
            "x-secret" => secret.map(str::as_bytes),
            _ => None,
        })
    }

    #[test]
    fn signatures() {
        let body = b"{\"name\":\"kustomer.team.create\"}";
        let v = Verifier::new("new").with_token("old");
        assert_eq!(check(&v, body, Some(&sign(b"new", body)), None), Ok(()));
        assert_eq!(check(&v, body, Some(&sign(b"old", body)), None), Ok(()));
        assert_eq!(
            check(&v, body, Some(&sign(b"new", body).to_uppercase()), None),
            Ok(())
        );
        assert_eq!(
            check(&v, body, Some(&sign(b"other", body)), None),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            check(
                &v,
                b"{\"name\":\"kustomer.team.create\" }",
                Some(&sign(b"new", body)),
                None
            ),
            Err(VerifyError::BadSignature),
            "one byte more in the body"
        );
        assert_eq!(
            check(&v, body, None, None),
            Err(VerifyError::MissingSignature)
        );
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &sign(b"new", body)[..63],
            "sha256=00",
        ] {
            assert_eq!(
                check(&v, body, Some(bad), None),
                Err(VerifyError::MalformedSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn custom_headers() {
        let body = b"{}";
        let sig = sign(b"t", body);
        let v = Verifier::new("t").with_header("X-Secret", "s3cret");
        assert_eq!(check(&v, body, Some(&sig), Some("s3cret")), Ok(()));
        assert_eq!(
            check(&v, body, Some(&sig), Some("s3cre")),
            Err(VerifyError::BadHeader {
                name: "x-secret".into()
            })
        );
        assert_eq!(
            check(&v, body, Some(&sig), None),
            Err(VerifyError::MissingHeader {
                name: "x-secret".into()
            })
        );
    }

    #[test]
    fn a_custom_header_given_twice_takes_either_value() {
        let body = b"{}";
        let sig = sign(b"t", body);
        let v = Verifier::new("t")
            .with_header("X-Secret", "old")
            .with_header("x-secret", "new")
            .with_header("x-other", "o");
        let check_both = |secret: &str, other: Option<&str>| {
            v.verify(body, |n| match n {
                SIGNATURE_HEADER => Some(sig.as_bytes()),
                "x-secret" => Some(secret.as_bytes()),
                "x-other" => other.map(str::as_bytes),
                _ => None,
            })
        };
        assert_eq!(check_both("old", Some("o")), Ok(()));
        assert_eq!(check_both("new", Some("o")), Ok(()));
        assert_eq!(
            check_both("older", Some("o")),
            Err(VerifyError::BadHeader {
                name: "x-secret".into()
            })
        );
        // Still every configured header is required.
        assert_eq!(
            check_both("new", None),
            Err(VerifyError::MissingHeader {
                name: "x-other".into()
            })
        );
    }

    /// A value that is longer, shorter, or the secret with more after it,
    /// is refused like any other; the empty value too.
    #[test]
    fn a_custom_header_matches_its_value_exactly_whatever_its_length() {
        let body = b"{}";
        let sig = sign(b"t", body);
        let v = Verifier::new("t").with_header("x-secret", "s3cret");
        for bad in [
            "",
            "s",
            "s3cret ",
            "s3cret\0",
            "s3cretXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "S3CRET",
        ] {
            assert_eq!(
                check(&v, body, Some(&sig), Some(bad)),
                Err(VerifyError::BadHeader {
                    name: "x-secret".into()
                }),
                "{bad:?}"
            );
        }
    }

    /// Without a valid signature, the error is the signature's, whatever
    /// the custom header: a sender without the token learns nothing of it.
    #[test]
    fn the_signature_is_checked_before_the_custom_headers() {
        let body = b"{}";
        let v = Verifier::new("t").with_header("x-secret", "s3cret");
        let forged = sign(b"guess", body);
        for secret in [Some("s3cret"), Some("wrong"), None] {
            assert_eq!(
                check(&v, body, Some(&forged), secret),
                Err(VerifyError::BadSignature),
                "{secret:?}"
            );
            assert_eq!(
                check(&v, body, None, secret),
                Err(VerifyError::MissingSignature),
                "{secret:?}"
            );
        }
    }

    #[test]
    fn an_empty_token_is_left_out_and_verifies_nothing() {
        let body = b"{}";
        let forged = sign(b"", body);
        let v = Verifier::new("");
        assert_eq!(v.token_count(), 0);
        assert_eq!(
            check(&v, body, Some(&forged), None),
            Err(VerifyError::BadSignature)
        );
        // Beside a real token, only the real one counts.
        let v = Verifier::new("t").with_token("");
        assert_eq!(v.token_count(), 1);
        assert_eq!(
            check(&v, body, Some(&forged), None),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(check(&v, body, Some(&sign(b"t", body)), None), Ok(()));
        // A blank one too.
        let v = Verifier::new(" \t\r\n");
        assert_eq!(v.token_count(), 0);
        assert_eq!(
            check(&v, body, Some(&sign(b" \t\r\n", body)), None),
            Err(VerifyError::BadSignature)
        );
    }

    /// A token read from a file or a secret often ends with a newline: it
    /// is dropped (with any white space around the token) when verifying
    /// and when signing, so the delivery Kustomer signed with the token
    /// itself verifies.
    #[test]
    fn white_space_around_a_token_is_dropped() {
        let body = br#"{"name":"kustomer.team.create"}"#;
        let kustomer = sign(b"t0ken", body);
        for read in ["t0ken\n", "t0ken\r\n", "  t0ken\t", "t0ken"] {
            let v = Verifier::new(read);
            assert_eq!(check(&v, body, Some(&kustomer), None), Ok(()), "{read:?}");
            let v = Verifier::new("other").with_token(read);
            assert_eq!(check(&v, body, Some(&kustomer), None), Ok(()), "{read:?}");
            assert_eq!(sign(read.as_bytes(), body), kustomer, "{read:?}");
        }
        // White space inside a token is the token's own.
        let v = Verifier::new("t0 ken");
        assert_eq!(
            check(&v, body, Some(&kustomer), None),
            Err(VerifyError::BadSignature)
        );
    }

    /// An empty or blank header value is left out, and the header stays
    /// required: nothing verifies until it has a value. A value's white
    /// space around it is dropped, as HTTP drops it from what arrives.
    #[test]
    fn a_blank_custom_header_value_is_left_out_and_the_header_still_required() {
        let body = b"{}";
        let sig = sign(b"t", body);
        for blank in ["", "  ", "\t"] {
            let v = Verifier::new("t").with_header("x-secret", blank);
            for given in [Some(""), Some(blank), Some("s3cret")] {
                assert_eq!(
                    check(&v, body, Some(&sig), given),
                    Err(VerifyError::BadHeader {
                        name: "x-secret".into()
                    }),
                    "{blank:?} {given:?}"
                );
            }
            assert_eq!(
                check(&v, body, Some(&sig), None),
                Err(VerifyError::MissingHeader {
                    name: "x-secret".into()
                })
            );
            // Given a value later, the header takes it.
            let v = v.with_header("X-Secret", "s3cret");
            assert_eq!(check(&v, body, Some(&sig), Some("s3cret")), Ok(()));
        }
        let v = Verifier::new("t").with_header("x-secret", " s3cret\t");
        assert_eq!(check(&v, body, Some(&sig), Some("s3cret")), Ok(()));
    }

    #[test]
    fn secrets_never_show() {
        let v = Verifier::new("token-abc")
            .with_token("token-def")
            .with_header("x-secret", "value-ghi");
        let shared = SharedVerifier::new(v.clone());
        let debug = format!("{v:?} {:#?} {shared:?}", v);
        for secret in ["token-abc", "token-def", "value-ghi"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("x-secret"),
            "the header's name is not a secret: {debug}"
        );
    }

    #[test]
    fn a_shared_verifier_is_replaced_for_every_clone() {
        let body = b"{}";
        let a = SharedVerifier::new(Verifier::new("one"));
        let b = a.clone();
        let with = |v: &SharedVerifier, token: &[u8]| {
            let sig = sign(token, body);
            v.verify(body, |n| (n == SIGNATURE_HEADER).then_some(sig.as_bytes()))
        };
        assert_eq!(with(&b, b"one"), Ok(()));
        a.replace(Verifier::new("two"));
        assert_eq!(with(&b, b"one"), Err(VerifyError::BadSignature));
        assert_eq!(with(&b, b"two"), Ok(()));
        assert_eq!(b.token_count(), 1);
    }
}
