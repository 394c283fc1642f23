//! [`Tls`]: HTTPS for [`Server`](super::Server), from a certificate chain and
//! its key in PEM files, read again without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why a certificate or its key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The certificate file holds no certificate, or one that is not PEM.
    #[error(
        "{path}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----){}",
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said, if it failed.
        detail: Option<String>,
    },
    /// The key file holds no private key in PEM (PKCS #8, PKCS #1 or SEC1).
    #[error(
        "{path}: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----, \
         -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----): {detail}"
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// The key is not the one the certificate is for (the chain's first
    /// certificate, which must be the server's own).
    #[error(
        "{key} does not go with the certificate in {cert} (the first certificate in the file \
         must be the server's own, the one the key is for): {error}"
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What the TLS library said.
        error: rustls::Error,
    },
    /// The key or the certificate is one the TLS library cannot use (a key
    /// of a kind or size it does not sign with, such as RSA under 2048 bits;
    /// a certificate it cannot read, such as X.509 version 1).
    #[error(
        "{cert} with the key in {key} cannot be used (the TLS library takes X.509 version 3 \
         certificates and RSA keys of 2048 bits or more, ECDSA P-256/P-384 and Ed25519): {error}"
    )]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What the TLS library said.
        error: rustls::Error,
    },
    /// The TLS library refused the configuration.
    #[error("setting up TLS: {0}")]
    Config(rustls::Error),
    /// On [`Tls::reload`]: the new certificate is not valid now (expired,
    /// or not yet valid), while the one in use is; clients would refuse
    /// it, so the one in use stays.
    #[error(
        "{cert}: the certificate is not valid now (valid from {} to {}): clients would refuse \
         it, so the one in use stays",
        rfc3339(validity.not_before),
        rfc3339(validity.not_after)
    )]
    NotValidNow {
        /// The certificate file.
        cert: PathBuf,
        /// When it is valid.
        validity: Validity,
    },
}

/// `2025-04-01T00:00:00Z`.
fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        TlsError::Config(error)
    }
}

/// HTTPS for a [`Server`](super::Server): Kustomer posts to `https://`
/// URLs, so a receiver with no proxy in front terminates TLS itself.
///
/// Built from a certificate chain and its private key in PEM files
/// ([`from_pem_files`](Self::from_pem_files), TLS 1.2 and 1.3 with rustls's
/// safe defaults) or from a rustls configuration of your own
/// ([`from_config`](Self::from_config)). Either way it offers HTTP/1.1 by
/// ALPN, as Kustomer posts. Certificates are renewed while a service runs:
/// [`reload`](Self::reload) reads the files again, and every handshake from
/// then on uses what they hold; clones share the certificate.
///
/// ```no_run
/// use kustomer_webhooks::axum::{Server, Tls, stop_signal};
/// # async fn run(app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
/// let tls = Tls::from_pem_files("/etc/tls/fullchain.pem", "/etc/tls/privkey.pem")?;
/// // Renewed certificates are picked up within an hour.
/// tokio::spawn({
///     let tls = tls.clone();
///     async move {
///         loop {
///             tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
///             let tls = tls.clone();
///             if let Ok(Err(e)) = tokio::task::spawn_blocking(move || tls.reload()).await {
///                 tracing::error!("keeping the certificate in use: {e}");
///             }
///         }
///     }
/// });
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
/// Server::new().with_tls(tls).serve(listener, app, stop_signal()).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    /// Set when built from files: what `reload` reads again.
    files: Option<Arc<Files>>,
}

/// The certificate files and what was last read from them; the resolver
/// every handshake asks.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Current>,
}

/// The certificate served, and when it is valid.
struct Current {
    key: Arc<CertifiedKey>,
    validity: Option<Validity>,
}

impl Files {
    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Files {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

/// When a certificate chain is valid: clients refuse it before
/// `not_before` and after `not_after`.
///
/// Over a chain (the server's certificate and its intermediates), the
/// latest `notBefore` and the earliest `notAfter` of its certificates: the
/// chain is only as valid as its least valid link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Validity {
    /// Not valid before this.
    pub not_before: SystemTime,
    /// Not valid after this: renew it before.
    pub not_after: SystemTime,
}

impl Validity {
    /// The validity of a chain of DER certificates; `None` when one of them
    /// cannot be read as X.509 (rustls would still serve it, and the client
    /// judge it).
    fn of(chain: &[CertificateDer<'_>]) -> Option<Self> {
        use x509_cert::der::Decode;

        let mut validity: Option<Validity> = None;
        for der in chain {
            let cert = x509_cert::Certificate::from_der(der).ok()?;
            let dates = cert.tbs_certificate().validity();
            let at = |time: x509_cert::time::Time| SystemTime::UNIX_EPOCH + time.to_unix_duration();
            let (not_before, not_after) = (at(dates.not_before), at(dates.not_after));
            validity = Some(match validity {
                None => Validity {
                    not_before,
                    not_after,
                },
                Some(v) => Validity {
                    not_before: v.not_before.max(not_before),
                    not_after: v.not_after.min(not_after),
                },
            });
        }
        validity
    }

    /// How long from `now` until `not_after`; `None` once it is past.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.not_after.duration_since(now).ok()
    }

    /// Whether `now` lies between `not_before` and `not_after`.
    pub fn contains(&self, now: SystemTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// What to say of a key file whose key is encrypted with a passphrase,
/// which a server starting on its own cannot be given.
fn encrypted_key(pem: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(pem);
    (text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED"))
    .then(|| {
        "the key in it is encrypted with a passphrase; write it out unencrypted (`openssl pkey \
             -in KEY -out KEY.plain`, which asks for the passphrase) and keep that file \
             owner-only"
            .to_owned()
    })
}

/// Reads the chain in `cert` and the key in `key`; checks that they go
/// together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Current, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert.to_owned(),
            detail: Some(pem_detail(e)),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
            detail: None,
        });
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_owned(),
        detail: encrypted_key(&key_pem).unwrap_or_else(|| pem_detail(e)),
    })?;
    let validity = Validity::of(&chain);
    let key = CertifiedKey::from_der(chain, private, provider).map_err(|source| match source {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
                error: source,
            }
        }
        _ => TlsError::Unusable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            error: source,
        },
    })?;
    Ok(Current {
        key: Arc::new(key),
        validity,
    })
}

/// What the PEM reader said, its markers and lines as text (its own words
/// show them as lists of bytes).
pub fn pem_detail(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    let text = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .chars()
            .take(80)
            .collect::<String>()
    };
    match e {
        Error::MissingSectionEnd { end_marker } => {
            let end = format!("-----END {}-----", text(&end_marker));
            format!("the file ends before {end:?} (cut short?)")
        }
        Error::IllegalSectionStart { line } => {
            format!(
                "a section starts with a line that is not a PEM marker: {:?}",
                text(&line)
            )
        }
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        error: source,
    })
}

/// HTTP/1.1 is what the server speaks.
const ALPN: &[u8] = b"http/1.1";

impl Tls {
    /// The certificate chain in `cert` (PEM, the server's certificate first,
    /// then the intermediates: a `fullchain.pem`) and its private key in
    /// `key` (PEM: PKCS #8, PKCS #1 or SEC1). Fails, naming the file, when
    /// either cannot be read or the key is not the certificate's.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let current = RwLock::new(load(&cert, &key, &provider)?);
        let files = Files {
            cert,
            key,
            provider: provider.clone(),
            current,
        };
        let files = Arc::new(files);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(files.clone());
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            files: Some(files),
        })
    }

    /// A rustls configuration of your own (client certificates, another
    /// crypto provider, a certificate resolver), built with the rustls this
    /// crate re-exports as [`axum::rustls`](super::rustls). Its ALPN protocols are set
    /// to HTTP/1.1 alone, the protocol the server speaks.
    pub fn from_config(mut config: rustls::ServerConfig) -> Self {
        config.alpn_protocols = vec![ALPN.to_vec()];
        Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            files: None,
        }
    }

    /// Reads the certificate and key files again; every handshake from now
    /// on uses them. `Ok(true)` when they changed, `Ok(false)` when they are
    /// what is in use (or this was built [`from_config`](Self::from_config)).
    /// On an error (a file missing, half written, a key that does not go
    /// with the certificate, or a certificate not valid now while the one
    /// in use is: [`TlsError::NotValidNow`]) the certificate in use stays.
    ///
    /// It reads files: call it from a blocking context
    /// (`tokio::task::spawn_blocking`) where the file system may be slow.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let read = load(&files.cert, &files.key, &files.provider)?;
        let mut current = match files.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.key.cert == read.key.cert {
            // The same certificate; the key goes with it, so it is the same.
            return Ok(false);
        }
        let now = SystemTime::now();
        if let Some(validity) = read.validity
            && !validity.contains(now)
            && current.validity.is_none_or(|v| v.contains(now))
        {
            return Err(TlsError::NotValidNow {
                cert: files.cert.clone(),
                validity,
            });
        }
        *current = read;
        Ok(true)
    }

    /// When the certificate served now is valid (over its chain, the
    /// least valid link: [`Validity`]), so that a service can warn before
    /// it expires: an expired certificate fails every handshake, and
    /// Kustomer's deliveries with it, without any of them reaching the
    /// receiver. `None` when built [`from_config`](Self::from_config), or
    /// when a certificate of the chain could not be read as X.509.
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// use kustomer_webhooks::axum::Tls;
    ///
    /// let tls = Tls::from_pem_files("fullchain.pem", "privkey.pem")?;
    /// if let Some(validity) = tls.validity() {
    ///     match validity.remaining(SystemTime::now()) {
    ///         None => eprintln!("the certificate has expired"),
    ///         Some(left) if left < Duration::from_secs(14 * 86_400) => {
    ///             eprintln!("the certificate expires in {} days", left.as_secs() / 86_400)
    ///         }
    ///         Some(_) => {}
    ///     }
    /// }
    /// # Ok::<(), kustomer_webhooks::axum::TlsError>(())
    /// ```
    pub fn validity(&self) -> Option<Validity> {
        self.files.as_deref()?.current().validity
    }

    /// The certificate and key files, when built from them.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        self.files
            .as_deref()
            .map(|files| (files.cert.as_path(), files.key.as_path()))
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Tls");
        if let Some((cert, key)) = self.files() {
            debug.field("cert", &cert).field("key", &key);
        }
        debug.finish_non_exhaustive()
    }
}
