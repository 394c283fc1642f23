//! [`RedisStore`]: the idempotency store shared by every replica of a
//! service, in Redis (or Valkey).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::{
    Begin, DEFAULT_IN_PROGRESS_TIMEOUT, DEFAULT_RETENTION, IdempotencyStore, RevisionStore,
    SharedTurn, StoreError, StoreFuture,
};

/// The prefix of every key a [`RedisStore`] writes by default; the event id
/// follows it. The same for every service: services that share a Redis
/// each need a prefix of their own ([`RedisStore::with_prefix`]).
pub const DEFAULT_REDIS_PREFIX: &str = "kustomer-webhooks:event:";

/// What a key holds while its event is being handled.
const IN_PROGRESS: &str = "in-progress";
/// What a key holds once its event was handled.
const DONE: &str = "done";

/// Claims the key unless it is set; answers what it held (nil when the claim
/// is now the caller's). One script, so the read and the write are atomic.
const BEGIN: &str = r"
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Deletes the key only while it holds a claim: an id already done stays
/// done.
const ABANDON: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Sets the key to the revision unless it holds a higher or equal one. One
/// script, so that of two concurrent records the higher stays. Revisions
/// are compared as decimal text (sign, then length, then digits), not as
/// Lua numbers, which are floating point and lose whole numbers past 2^53;
/// both are written by Rust's `i64` formatting, with no leading zeros.
const RECORD_REVISION: &str = r"
local last = redis.call('GET', KEYS[1])
local rev = ARGV[1]
local function at_least(a, b)
  local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if na ~= nb then return nb end
  if na then a, b = b:sub(2), a:sub(2) end
  if #a ~= #b then return #a > #b end
  return a >= b
end
if last and last:match('^%-?%d+$') and at_least(last, rev) then return 0 end
redis.call('SET', KEYS[1], rev, 'PX', ARGV[2])
return 1
";

/// What follows a resource id in the key of its last revision.
const REVISION_SUFFIX: &str = ":rev";

/// What follows the prefix in the key [`RedisStore::ping`] writes. No
/// event's key has a `:` after the prefix, and a revision's ends with
/// [`REVISION_SUFFIX`], a turn's with [`TURN_SUFFIX`].
const PROBE_SUFFIX: &str = ":probe";

/// A write, as a claim is (a script that sets a key), so that a Redis that
/// answers but refuses writes (a user without the right to run scripts or
/// to write, memory full, a replica) fails the probe as it fails claims.
const PROBE: &str = r"
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
";

/// How long the probe's key lives.
const PROBE_MILLIS: u64 = 10_000;

/// A claim (or a resource's turn) sent whose answer is not in yet: given up
/// ([`RedisStore::give_up_uncertain`]) if dropped still holding it.
struct Uncertain<'a> {
    store: &'a RedisStore,
    /// The claim's key and value, while its answer is not in.
    claim: Option<(&'a str, &'a str)>,
}

impl Drop for Uncertain<'_> {
    fn drop(&mut self) {
        if let Some((key, value)) = self.claim.take() {
            self.store
                .give_up_uncertain(key.to_owned(), value.to_owned());
        }
    }
}

/// The claims a store (and its clones) holds: the event's key → what the
/// key holds for each claim of it this process made, oldest first, and when
/// each was made. (Two claims of one id in one process: the first's key
/// expired while its handler ran, and a retry came.)
type Claims = std::collections::HashMap<String, Vec<(String, std::time::Instant)>>;

/// Past this many claims held, those older than the in-progress timeout
/// (their keys expired in Redis; a store whose settling never came, as
/// [`FailOpen`](crate::dedupe::FailOpen) skips a store it takes to be
/// down) are let go when the next is made.
const CLAIMS_KEPT: usize = 4096;

/// A claim's value: [`IN_PROGRESS`], `:`, and a token of its own, so that
/// giving it up never deletes another claim of the same id (one made after
/// this one's key expired, or by a replica after an uncertain claim was
/// given up).
fn claim_value() -> String {
    format!("{IN_PROGRESS}:{:016x}", token())
}

/// A token no other claim or turn has: a counter, the time and the process
/// id, hashed with a key of the process's own.
fn token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// When a claim or a turn that Redis was out of reach to take back is tried
/// again (milliseconds after the try before): for about two minutes.
const GIVE_BACK_LATER: &[u64] = &[100, 400, 1_500, 6_000, 15_000, 30_000, 60_000];

/// What follows a resource id in the key of its turn across replicas
/// ([`RevisionStore::take_turn`]).
const TURN_SUFFIX: &str = ":turn";

/// Whether a key's value is a claim: [`IN_PROGRESS`], alone (as earlier
/// versions write it) or with a token.
fn is_claim(held: &str) -> bool {
    held.strip_prefix(IN_PROGRESS)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// An [`IdempotencyStore`] in Redis, which every replica of a service
/// reaches: a retry that lands on another replica than the first delivery is
/// still recognised. Needs the `redis` feature.
///
/// Each event id is one key, `<prefix><id>` ([`DEFAULT_REDIS_PREFIX`] by
/// default; an id with a `:` in it, or starting with `~`, is written
/// `<prefix>~<its hex>`, so that no id's key is another's or a revision's),
/// holding `in-progress:<a token of the claim's own>` while a delivery
/// handles it (it expires after the in-progress timeout, so a replica that
/// died mid-handler does not block the event for ever) and `done` for the
/// retention time once it was handled. Giving a claim up deletes the key
/// only while it holds that claim's token, so it never deletes a claim
/// another delivery made since; a claim whose answer does not come in time
/// (or whose call is dropped before it does), and which Redis may still
/// make, is given up in the background once Redis answers. (A replica of
/// an earlier version reads such a claim as a value it does not know, and
/// answers that delivery 503 rather than 409: during a rolling upgrade, a
/// retry racing its first delivery may get either, and Kustomer retries
/// both.) [`ping`](RedisStore::ping) also writes a key of its own,
/// `<prefix>:probe`. [`begin`](IdempotencyStore::begin) and
/// [`abandon`](IdempotencyStore::abandon) are short Lua scripts, so each is
/// atomic; [`complete`](IdempotencyStore::complete) is one `SET`. Any Redis
/// from 2.6 works, and Valkey, as one server (or a primary behind one
/// address), over TCP or, with the `redis-tls` feature, over TLS
/// (`rediss://`, as managed Redis services such as ElastiCache with
/// in-transit encryption require; [`connect_tls`](RedisStore::connect_tls)
/// for a private authority or a client certificate). With the
/// `redis-cluster` feature it also lives in a Redis Cluster
/// ([`connect_cluster`](RedisStore::connect_cluster)): each id's key, and
/// so each claim, on the node that holds its slot. With the
/// `redis-sentinel` feature it lives on the primary that Redis Sentinels
/// name ([`connect_sentinel`](RedisStore::connect_sentinel)), and follows
/// them through a failover.
///
/// The connection is redis's `ConnectionManager`: one multiplexed connection
/// shared by every delivery, reconnected when it drops (one attempt per
/// call, of at most a second, so that a Redis that is down is answered at
/// once). A command that surely never went out (no connection, or one that
/// Redis closed while it was idle, as a restart does) is sent once more on
/// the new connection, so the first call after a restart is answered. A
/// call that fails
/// (the server is down, silent for longer than the manager's 500 ms
/// response timeout, or busy for now: `LOADING` its data after a restart,
/// `CLUSTERDOWN`, `MASTERDOWN`, `TRYAGAIN`) is a
/// [`StoreError::Unavailable`], which the receiver
/// answers with 503 without running the handler, so that Kustomer retries
/// the delivery; once Redis is back, the retry is handled. The ids live in
/// Redis's memory: a Redis that restarts without persistence (RDB or AOF)
/// forgets them, and a retry of an event handled before the restart runs
/// its handler again.
///
/// After a failover, a managed Redis's address (a DNS name) leads to the
/// promoted replica, while an open connection may still lead to the demoted
/// primary, which refuses every write with `READONLY` without closing the
/// connection. A store made by [`connect`](RedisStore::connect) or
/// [`connect_tls`](RedisStore::connect_tls) then connects anew (once for
/// all the deliveries that met the refusal, and at most once a second while
/// the address still leads to a replica, whose refusals fail the claims)
/// and makes the claim on the new primary, logging a warning. What the old primary had not yet replicated
/// when it was demoted is lost, as with any Redis failover.
///
/// It is also a [`RevisionStore`], for
/// [`Receiver::with_ordering`](crate::receiver::Receiver::with_ordering):
/// the last revision handled of each resource is one key,
/// `<prefix><resource id>:rev` (the resource id written as an event id
/// is), holding the revision for the retention
/// time, so that every replica tells a stale update apart (a resource
/// without a `rev` is ordered by its `updatedAt`, under the resource id
/// `<data.id>@updatedAt`: see [`RevisionStore`]); and a
/// resource's turn among the replicas is another,
/// `<prefix><resource id>:turn`, set only if absent to a token of the
/// holder's own, for at most four of the handler's time limits (plus the
/// wait for a handler slot and 5 s), and
/// deleted by a script only while it still holds that token.
///
/// ```no_run
/// use std::time::Duration;
/// use kustomer_webhooks::dedupe::RedisStore;
/// use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://redis.internal:6379/0")
///     .await?
///     .with_prefix("billing-service:kustomer:");   // one prefix per service
/// let dispatcher = Dispatcher::builder().registered().build()?;
/// let receiver = Receiver::new(dispatcher, Verifier::new("token")).with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    retention: Duration,
    in_progress_timeout: Duration,
    begin: Script,
    abandon: Script,
    record_revision: Script,
    probe: Script,
    /// The claims this process holds, by event id: what each one's key
    /// holds (`in-progress:<token>`), so that giving one up deletes it only
    /// while it is this claim, and when it was made.
    claims: std::sync::Arc<std::sync::Mutex<Claims>>,
}

/// What a [`RedisStore`] talks through: one server's connection manager, or
/// a cluster's connection (which routes each key to the node holding its
/// slot).
#[derive(Clone)]
enum Connection {
    Single(Single),
    #[cfg(feature = "redis-cluster")]
    Cluster(Cluster),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(single) => Box::pin(single.command(cmd)),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(cluster) => {
                Box::pin(async move { cluster.connection().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(single) => Box::pin(async move {
                let (_, mut connection) = single.connection().await?;
                connection
                    .send_packed_commands(pipeline, offset, count)
                    .await
            }),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(cluster) => Box::pin(async move {
                cluster
                    .connection()
                    .await?
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(single) => single.current().1.map_or(0, |c| c.get_db()),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => 0,
        }
    }
}

/// The error of a call made while a store made before its Redis answered
/// has no connection yet, and does not try again so soon.
fn not_connected(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("not connected to {what} yet: the last attempt, under a second ago, failed"),
    ))
}

/// One server's connection, shared by every clone of a store, and replaced
/// by a fresh one when the server it leads to answers that it is a replica
/// (`READONLY`): after a failover, the address (a DNS name) leads to the new
/// primary, while the open connection still leads to the demoted one. A
/// store that follows Sentinels also asks them for the primary when its
/// connection fails, and, when made before they answered, on its first call.
#[derive(Clone)]
struct Single(Arc<SingleShared>);

struct SingleShared {
    /// The connection (none yet, for a store made before the Sentinels
    /// answered), and how many times it was replaced.
    current: RwLock<(u64, Option<ConnectionManager>)>,
    /// Whether the primary is found by Sentinels, so that a connection that
    /// fails, too, sends the store to them.
    follows_sentinels: bool,
    /// When the connection first took no answer in time since it last
    /// answered, in milliseconds of `receiver::since_start` (plus one);
    /// 0 while it answers.
    silent_since: AtomicU64,
    /// Held while connecting anew, so that the deliveries that met the
    /// demoted server at once make one connection between them.
    replacing: tokio::sync::Mutex<Replacing>,
}

/// How long a connection takes no answer in time before the store connects
/// anew: longer than a server slow for a moment (a pause, a long script),
/// far shorter than the system's own give-up on a connection whose other
/// end went silent (a quarter of an hour).
const SILENT_FOR: Duration = Duration::from_secs(5);

/// How a store connects anew, and when it last did.
struct Replacing {
    at: Option<std::time::Instant>,
    how: Reconnect,
}

/// Where a store's new connection leads.
enum Reconnect {
    /// Nowhere: the connection was made elsewhere.
    Never,
    /// To the same address, which may lead to another server by now.
    Address(Box<redis::Client>),
    /// To the primary the Sentinels name now, unless it is the one the
    /// connection leads to (its address, where known).
    #[cfg(feature = "redis-sentinel")]
    Sentinels {
        sentinels: Box<redis::sentinel::SentinelClient>,
        primary: Option<String>,
    },
}

/// Whether `e` is the refusal of the connection's own setup (the password,
/// the database, the protocol), which the client keeps answering every
/// command with, never connecting again by itself, whatever the server
/// takes by now: the store connects anew (the command was never sent).
fn setup_refused(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::RESP3NotSupported
    ) || (e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
        && e.to_string().contains("refused to switch database"))
}

/// Why a store's connection is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// There is none yet (a store made before the Sentinels answered).
    None,
    /// The server answered that it is a replica (`READONLY`).
    Replica,
    /// The server could not be reached (the Sentinels are asked anew).
    OutOfReach,
    /// The server refused the connection's setup ([`setup_refused`]).
    Refused,
    /// The connection took no answer in time: a connection whose other end
    /// went silent (a host gone, a flow a firewall dropped) is never found
    /// closed, and a new one may reach the server.
    Silent,
}

/// Whether `e` says the server is out of reach (down, silent, or the
/// connection lost), rather than that it refused the command.
fn out_of_reach(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// How the store's connections are managed: one attempt to connect per
/// call, of at most a second, and a response within 500 ms. A Redis that is
/// down is then answered at once (503, or `FailOpen` claims in memory),
/// rather than after the client's own retries, several seconds spread out,
/// which hold the delivery (and its connection) while Kustomer waits.
fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_millis(500)))
}

/// Whether `e` says a command could not be written at all, so that sending
/// it again cannot make it twice: there was no connection (refused: the
/// manager answers so from its last attempt to connect, however old, and
/// tries anew for the next call), or it had been closed by the other end (a
/// broken pipe).
fn unsent(e: &RedisError) -> bool {
    if e.is_connection_refusal() {
        return true;
    }
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let Some(source) = std::error::Error::source(e) else {
        return false;
    };
    // The I/O error, kept by the client as it is or behind an `Arc`.
    let io = source.downcast_ref::<std::io::Error>().or_else(|| {
        source
            .downcast_ref::<Shared>()
            .and_then(|shared| shared.downcast_ref::<std::io::Error>())
    });
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

impl Single {
    /// Over `connection`, or, with none, connecting on the first call.
    fn new(connection: Option<ConnectionManager>, how: Reconnect) -> Single {
        #[cfg(feature = "redis-sentinel")]
        let follows_sentinels = matches!(how, Reconnect::Sentinels { .. });
        #[cfg(not(feature = "redis-sentinel"))]
        let follows_sentinels = false;
        Single(Arc::new(SingleShared {
            current: RwLock::new((0, connection)),
            follows_sentinels,
            silent_since: AtomicU64::new(0),
            replacing: tokio::sync::Mutex::new(Replacing { at: None, how }),
        }))
    }

    /// The connection and its generation.
    fn current(&self) -> (u64, Option<ConnectionManager>) {
        let current = self.0.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// The connection and its generation, made now where there is none yet
    /// (a store made before the Sentinels answered); an error where making
    /// it fails, or failed less than a second ago.
    async fn connection(&self) -> redis::RedisResult<(u64, ConnectionManager)> {
        match self.current() {
            (generation, Some(connection)) => Ok((generation, connection)),
            (generation, None) => self
                .replace(generation, Why::None)
                .await?
                .ok_or_else(|| not_connected("the primary the Sentinels name")),
        }
    }

    /// `cmd` on the current connection; where the server answers that it is
    /// a replica, once more on a new connection. (`READONLY` refuses a write
    /// before it is made, so the retry cannot write twice.) Where the store
    /// follows Sentinels and the primary is out of reach, the next command
    /// goes to the primary they name now; this one is not made again (it
    /// may have been made before the connection failed), and its error
    /// stands: the receiver answers 503, and Kustomer's retry reaches the
    /// new primary.
    async fn command(&self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        let (generation, mut connection) = self.connection().await?;
        let mut answer = connection.send_packed_command(cmd).await;
        if answer.as_ref().is_err_and(unsent) {
            // The connection had died while idle (Redis restarted), or the
            // answer is an old attempt's refusal: the command never went
            // out, and the manager connects anew; sent once more, it gets
            // the answer of the server as it is now.
            answer = connection.send_packed_command(cmd).await;
        }
        let read_only = match &answer {
            // The server's refusal arrives as a value, or as an error.
            Ok(redis::Value::ServerError(e)) => e.kind() == Some(ServerErrorKind::ReadOnly),
            Err(e) => e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly),
            Ok(_) => false,
        };
        if read_only {
            return match self.replace(generation, Why::Replica).await? {
                Some((_, mut connection)) => connection.send_packed_command(cmd).await,
                None => answer,
            };
        }
        // A refused setup: a new connection (at most one a second), and the
        // command, never sent, sent on it.
        if answer.as_ref().is_err_and(setup_refused) {
            return match self.replace(generation, Why::Refused).await {
                Ok(Some((_, mut connection))) => connection.send_packed_command(cmd).await,
                Ok(None) => answer,
                Err(e) => Err(e),
            };
        }
        // No answer in time for `SILENT_FOR` (a server slow for a moment
        // keeps its connection): the next commands go on a new connection,
        // made in the background so that this delivery's answer does not
        // wait for it (this command is not sent again: it may have been
        // made).
        let silent_since = &self.0.silent_since;
        if answer.as_ref().is_err_and(RedisError::is_timeout) {
            let now = crate::receiver::since_start().as_millis() as u64 + 1;
            let since = match silent_since.compare_exchange(0, now, Relaxed, Relaxed) {
                Ok(_) => now,
                Err(since) => since,
            };
            // (Another command may have marked it a moment after this one
            // read the clock.)
            if now.saturating_sub(since) >= SILENT_FOR.as_millis() as u64 {
                let single = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = single.replace(generation, Why::Silent).await {
                        tracing::debug!("connecting anew to Redis after it did not answer: {e}");
                    }
                });
                return answer;
            }
        } else if silent_since.load(Relaxed) != 0 {
            silent_since.store(0, Relaxed);
        }
        // Before that, a store that follows Sentinels asks them at once.
        if self.0.follows_sentinels
            && answer.as_ref().is_err_and(out_of_reach)
            && let Err(e) = self.replace(generation, Why::OutOfReach).await
        {
            tracing::debug!("the Sentinels named no primary that answers yet: {e}");
        }
        answer
    }

    /// A new connection in place of generation `generation`'s (or the one
    /// that already replaced it), and its generation; `None` where the
    /// store cannot connect anew, or tried less than a second ago (the
    /// address still leads to a replica: the failover is not over, and a
    /// connection per delivery would not end it sooner).
    async fn replace(
        &self,
        generation: u64,
        why: Why,
    ) -> redis::RedisResult<Option<(u64, ConnectionManager)>> {
        let mut replacing = self.0.replacing.lock().await;
        if let (now, Some(connection)) = self.current()
            && now != generation
        {
            return Ok(Some((now, connection)));
        }
        if replacing
            .at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return Ok(None);
        }
        replacing.at = Some(std::time::Instant::now());
        let first = self.current().1.is_none();
        #[cfg(feature = "redis-sentinel")]
        let mut named = None;
        let client = match &mut replacing.how {
            Reconnect::Never => return Ok(None),
            Reconnect::Address(client) => (**client).clone(),
            #[cfg(feature = "redis-sentinel")]
            Reconnect::Sentinels {
                sentinels,
                primary: known,
            } => {
                let client = primary(sentinels).await?;
                let address = client.get_connection_info().addr().to_string();
                if !first
                    && matches!(why, Why::Replica | Why::OutOfReach)
                    && known.as_deref() == Some(address.as_str())
                {
                    // They still name the server the connection leads to
                    // (slow for a moment, restarted, or a failover not
                    // over): the connection stays, and reconnects on its
                    // own where it dropped.
                    return Ok(None);
                }
                named = Some(address);
                client
            }
        };
        let connection = ConnectionManager::new_with_config(client, manager_config()).await?;
        #[cfg(feature = "redis-sentinel")]
        if let (Reconnect::Sentinels { primary, .. }, Some(named)) = (&mut replacing.how, named) {
            *primary = Some(named);
        }
        *self.0.current.write().unwrap_or_else(|e| e.into_inner()) =
            (generation + 1, Some(connection.clone()));
        self.0.silent_since.store(0, Relaxed);
        match why {
            _ if first => tracing::info!("connected to the Redis primary the Sentinels name"),
            Why::Refused => tracing::warn!(
                "Redis had refused the connection's setup (its password or database): connected anew"
            ),
            Why::Silent => tracing::warn!(
                "Redis took no answer in time on the store's connection: connected anew"
            ),
            _ if self.0.follows_sentinels => tracing::warn!(
                "the Redis primary refused a write or could not be reached: connected anew \
                 to the primary the Sentinels name"
            ),
            _ => tracing::warn!(
                "the Redis server answered that it is a replica (a failover?): connected anew"
            ),
        }
        Ok(Some((generation + 1, connection)))
    }
}

/// A cluster's connection, shared by every clone of a store; for a store
/// made before its cluster answered, made on the first call that reaches
/// it.
#[cfg(feature = "redis-cluster")]
#[derive(Clone)]
struct Cluster(Arc<ClusterShared>);

#[cfg(feature = "redis-cluster")]
struct ClusterShared {
    connection: std::sync::OnceLock<redis::cluster_async::ClusterConnection>,
    /// How to connect (none for a connection made elsewhere), and when the
    /// last attempt failed; held while connecting, so that the calls made
    /// meanwhile wait for that attempt rather than make their own.
    connecting: tokio::sync::Mutex<(
        Option<redis::cluster::ClusterClient>,
        Option<std::time::Instant>,
    )>,
}

#[cfg(feature = "redis-cluster")]
impl Cluster {
    fn connected(connection: redis::cluster_async::ClusterConnection) -> Cluster {
        Cluster(Arc::new(ClusterShared {
            connection: std::sync::OnceLock::from(connection),
            connecting: tokio::sync::Mutex::new((None, None)),
        }))
    }

    fn lazy(client: redis::cluster::ClusterClient) -> Cluster {
        Cluster(Arc::new(ClusterShared {
            connection: std::sync::OnceLock::new(),
            connecting: tokio::sync::Mutex::new((Some(client), None)),
        }))
    }

    /// The connection, made now where there is none yet; an error where
    /// making it fails (one attempt at a time: a call that waited for an
    /// attempt that failed fails with it).
    async fn connection(&self) -> redis::RedisResult<redis::cluster_async::ClusterConnection> {
        if let Some(connection) = self.0.connection.get() {
            return Ok(connection.clone());
        }
        let asked = std::time::Instant::now();
        let mut connecting = self.0.connecting.lock().await;
        if let Some(connection) = self.0.connection.get() {
            return Ok(connection.clone());
        }
        let (client, failed) = &mut *connecting;
        if failed.is_some_and(|failed| failed >= asked) {
            return Err(not_connected("the Redis Cluster"));
        }
        let Some(client) = client else {
            return Err(not_connected("the Redis Cluster"));
        };
        match client.get_async_connection().await {
            Ok(connection) => {
                tracing::info!("connected to the Redis Cluster");
                Ok(self.0.connection.get_or_init(|| connection).clone())
            }
            Err(e) => {
                *failed = Some(std::time::Instant::now());
                Err(e)
            }
        }
    }
}

/// How long asking the Sentinels for the primary (and the primary for its
/// role) may take.
#[cfg(feature = "redis-sentinel")]
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(2);

/// A client for the primary `sentinels` name now (each Sentinel asked in
/// turn until one names a primary that answers as one).
#[cfg(feature = "redis-sentinel")]
async fn primary(
    sentinels: &mut redis::sentinel::SentinelClient,
) -> redis::RedisResult<redis::Client> {
    match tokio::time::timeout(SENTINEL_TIMEOUT, sentinels.async_get_client()).await {
        Ok(client) => client,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the Sentinels named no primary within 2 s",
        ))),
    }
}

impl fmt::Debug for RedisStore {
    /// The prefix and times; not the connection, whose address may hold a
    /// password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("in_progress_timeout", &self.in_progress_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url`, with the default retention (75
    /// minutes), in-progress timeout (5 minutes) and prefix
    /// ([`DEFAULT_REDIS_PREFIX`], the same for every service: services
    /// sharing a Redis each need their own, [`with_prefix`], or one takes
    /// the other's events for duplicates and never handles them).
    ///
    /// `url` is `redis://[user:password@]host[:port][/db]`, or, with the
    /// `redis-tls` feature, `rediss://…`: Redis over TLS, the server's
    /// certificate checked against the system's root certificates (for a
    /// private authority or a client certificate, [`connect_tls`]).
    ///
    /// A URL that cannot be used is a [`StoreError::Failed`]; a server that
    /// cannot be reached, or whose certificate is not trusted, is a
    /// [`StoreError::Unavailable`], after one attempt of at most a second
    /// (for a service that may start before its Redis does, `connect_lazy`,
    /// with [`FailOpen`](crate::dedupe::FailOpen) if it must serve while
    /// Redis is down). The error never repeats the URL (it may hold a
    /// password).
    ///
    /// [`connect_tls`]: RedisStore::connect_tls
    /// [`with_prefix`]: RedisStore::with_prefix
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        ready_for([url])?;
        let client = redis::Client::open(url).map_err(store_error)?;
        RedisStore::single(client).await
    }

    /// Connects to the Redis over TLS at `url` (`rediss://…`), with
    /// `certificates`: the authority that issued the server's certificate,
    /// when it is not among the system's roots, and the client's certificate
    /// and key, when the server asks for one (`tls-auth-clients yes`), all
    /// in PEM. Needs the `redis-tls` feature. Otherwise as [`connect`].
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::RedisStore;
    /// use kustomer_webhooks::redis::{ClientTlsConfig, TlsCertificates};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let certificates = TlsCertificates {
    ///     root_cert: Some(std::fs::read("/etc/redis-tls/ca.pem")?),
    ///     // or None, when the server does not ask for a client certificate
    ///     client_tls: Some(ClientTlsConfig {
    ///         client_cert: std::fs::read("/etc/redis-tls/client.pem")?,
    ///         client_key: std::fs::read("/etc/redis-tls/client.key")?,
    ///     }),
    /// };
    /// let store = RedisStore::connect_tls("rediss://redis.internal:6380/0", certificates).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// rustls does the TLS, with the process's default crypto provider;
    /// where the process has not chosen one, connecting installs
    /// aws-lc-rs's as the default. A certificate or key that cannot be read
    /// from its PEM, or a URL that is not `rediss://`, is a
    /// [`StoreError::Failed`].
    ///
    /// [`connect`]: RedisStore::connect
    #[cfg(feature = "redis-tls")]
    pub async fn connect_tls(
        url: &str,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::single(tls_client("connect_tls", url, certificates)?).await
    }

    /// A store for the Redis at `url` (as [`connect`] takes it) that
    /// connects on its first call rather than now: it is made even while
    /// that Redis is out of reach. Each call made while Redis cannot be
    /// reached fails with [`StoreError::Unavailable`] (after one attempt to
    /// connect, of at most a second), and the next one tries again; there
    /// is no retry loop, which suits a store wrapped in
    /// [`FailOpen`](crate::dedupe::FailOpen), so that a service (re)started
    /// during a Redis outage serves from the start. Call it within a Tokio
    /// runtime: elsewhere it is a [`StoreError::Failed`]. A URL that cannot
    /// be used is a [`StoreError::Failed`] at once.
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::{FailOpen, RedisStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FailOpen::new(RedisStore::connect_lazy("redis://redis.internal:6379/0")?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`connect`]: RedisStore::connect
    pub fn connect_lazy(url: &str) -> Result<RedisStore, StoreError> {
        ready_for([url])?;
        let client = redis::Client::open(url).map_err(store_error)?;
        RedisStore::single_lazy(client)
    }

    /// [`connect_lazy`](RedisStore::connect_lazy) over TLS, with
    /// `certificates` as [`connect_tls`](RedisStore::connect_tls) takes
    /// them. Needs the `redis-tls` feature.
    #[cfg(feature = "redis-tls")]
    pub fn connect_lazy_tls(
        url: &str,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::single_lazy(tls_client("connect_lazy_tls", url, certificates)?)
    }

    /// A store on the server `client` reaches, connected on its first call.
    fn single_lazy(client: redis::Client) -> Result<RedisStore, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::failed(
                "RedisStore::connect_lazy needs a Tokio runtime: call it within one",
            ));
        }
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())
            .map_err(store_error)?;
        Ok(RedisStore::over(Connection::Single(Single::new(
            Some(connection),
            Reconnect::Address(Box::new(client)),
        ))))
    }

    /// A store over a connection made elsewhere (to choose the manager's
    /// timeouts and reconnection), with the default retention, in-progress
    /// timeout and prefix. The [`redis`](https://docs.rs/redis) crate is re-exported
    /// (`kustomer_webhooks::redis`),
    /// so the connection is made with the version the store takes:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use kustomer_webhooks::dedupe::RedisStore;
    /// use kustomer_webhooks::redis::{Client, aio::ConnectionManager, aio::ConnectionManagerConfig};
    ///
    /// # async fn run() -> Result<(), kustomer_webhooks::redis::RedisError> {
    /// let config = ConnectionManagerConfig::new()
    ///     .set_response_timeout(Some(Duration::from_secs(1)))
    ///     .set_number_of_retries(2);
    /// let client = Client::open("redis://redis.internal:6379/0")?;
    /// let store = RedisStore::from_connection(ConnectionManager::new_with_config(client, config).await?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Unlike a store made by [`connect`](RedisStore::connect), a store
    /// over a connection made elsewhere cannot connect anew, so after a
    /// failover that leaves its connection open to the demoted server (see
    /// [`RedisStore`]), its claims fail until that connection drops.
    pub fn from_connection(connection: ConnectionManager) -> RedisStore {
        RedisStore::over(Connection::Single(Single::new(
            Some(connection),
            Reconnect::Never,
        )))
    }

    /// A store on the server `client` reaches, which connects anew after a
    /// failover.
    async fn single(client: redis::Client) -> Result<RedisStore, StoreError> {
        let connection = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(|e| {
                let tls = matches!(
                    client.get_connection_info().addr(),
                    redis::ConnectionAddr::TcpTls { .. }
                );
                if tls && e.is_timeout() {
                    StoreError::unavailable(format!("{e}{NO_TLS_HINT}"))
                } else {
                    store_error(e)
                }
            })?;
        Ok(RedisStore::over(Connection::Single(Single::new(
            Some(connection),
            Reconnect::Address(Box::new(client)),
        ))))
    }

    fn over(connection: Connection) -> RedisStore {
        RedisStore {
            connection,
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            retention: DEFAULT_RETENTION,
            in_progress_timeout: DEFAULT_IN_PROGRESS_TIMEOUT,
            begin: Script::new(BEGIN),
            abandon: Script::new(ABANDON),
            record_revision: Script::new(RECORD_REVISION),
            probe: Script::new(PROBE),
            claims: Default::default(),
        }
    }

    /// Connects to the Redis Cluster that `nodes` belong to (`redis://…`
    /// URLs of one or more of its nodes: the others are found from them;
    /// `rediss://…` with the `redis-tls` feature), with the default
    /// retention, in-progress timeout and prefix. Needs the `redis-cluster`
    /// feature.
    ///
    /// Each event id is one key, so each claim goes to the node that holds
    /// the key's slot, and the scripts run there; nothing spans slots. The
    /// connection follows the cluster as slots move and nodes fail over
    /// (redis's `ClusterConnection`), with a 1 s connection timeout, a
    /// 500 ms response timeout and up to 3 retries per call; for other
    /// settings, build the connection with the re-exported
    /// [`redis::cluster::ClusterClient`] and pass it to
    /// [`from_cluster_connection`](RedisStore::from_cluster_connection).
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::RedisStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::connect_cluster([
    ///     "redis://redis-0.internal:6379/",
    ///     "redis://redis-1.internal:6379/",
    /// ])
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// No nodes, URLs that cannot be used, or nodes with different
    /// passwords are a [`StoreError::Failed`]; no node that answers is a
    /// [`StoreError::Unavailable`]. The error never repeats a URL.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster<I>(nodes: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisStore::cluster(cluster_client(nodes)?).await
    }

    /// Connects to the Redis Cluster that `nodes` belong to over TLS
    /// (`rediss://…` URLs) with `certificates`, as
    /// [`connect_tls`](RedisStore::connect_tls) takes them. Needs the
    /// `redis-cluster` and `redis-tls` features. Otherwise as
    /// [`connect_cluster`](RedisStore::connect_cluster).
    #[cfg(all(feature = "redis-cluster", feature = "redis-tls"))]
    pub async fn connect_cluster_tls<I>(
        nodes: I,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = cluster_client_tls("connect_cluster_tls", nodes, certificates)?;
        RedisStore::cluster(client).await
    }

    /// A store that connects to the Redis Cluster that `nodes` belong to on
    /// its first call rather than now, as
    /// [`connect_lazy`](RedisStore::connect_lazy) does for one server: it is
    /// made even while no node can be reached. Each call made before the
    /// cluster answered tries to connect (one attempt at a time: the calls
    /// that waited for an attempt that failed fail with it) and fails with
    /// [`StoreError::Unavailable`] while none of `nodes` answers; once
    /// connected, the store is as [`connect_cluster`] makes it. Needs the
    /// `redis-cluster` feature. Nodes or URLs that cannot be used are a
    /// [`StoreError::Failed`] at once.
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::{FailOpen, RedisStore};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FailOpen::new(RedisStore::connect_cluster_lazy([
    ///     "redis://redis-0.internal:6379/",
    ///     "redis://redis-1.internal:6379/",
    /// ])?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`connect_cluster`]: RedisStore::connect_cluster
    #[cfg(feature = "redis-cluster")]
    pub fn connect_cluster_lazy<I>(nodes: I) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = cluster_client(nodes)?;
        Ok(RedisStore::over(Connection::Cluster(Cluster::lazy(client))))
    }

    /// [`connect_cluster_lazy`](RedisStore::connect_cluster_lazy) over TLS,
    /// with `certificates` as [`connect_tls`](RedisStore::connect_tls)
    /// takes them. Needs the `redis-cluster` and `redis-tls` features.
    #[cfg(all(feature = "redis-cluster", feature = "redis-tls"))]
    pub fn connect_cluster_lazy_tls<I>(
        nodes: I,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = cluster_client_tls("connect_cluster_lazy_tls", nodes, certificates)?;
        Ok(RedisStore::over(Connection::Cluster(Cluster::lazy(client))))
    }

    #[cfg(feature = "redis-cluster")]
    async fn cluster(client: redis::cluster::ClusterClient) -> Result<RedisStore, StoreError> {
        let connection = client.get_async_connection().await.map_err(store_error)?;
        Ok(RedisStore::from_cluster_connection(connection))
    }

    /// A store over a cluster connection made elsewhere, with the default
    /// retention, in-progress timeout and prefix. Needs the `redis-cluster`
    /// feature.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use kustomer_webhooks::dedupe::RedisStore;
    /// use kustomer_webhooks::redis::cluster::ClusterClient;
    ///
    /// # async fn run() -> Result<(), kustomer_webhooks::redis::RedisError> {
    /// let client = ClusterClient::builder(["redis://redis-0.internal:6379/"])
    ///     .response_timeout(Duration::from_secs(1))
    ///     .retries(5)
    ///     .build()?;
    /// let store = RedisStore::from_cluster_connection(client.get_async_connection().await?);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-cluster")]
    pub fn from_cluster_connection(
        connection: redis::cluster_async::ClusterConnection,
    ) -> RedisStore {
        RedisStore::over(Connection::Cluster(Cluster::connected(connection)))
    }

    /// Connects to the primary that Redis Sentinels name for `service`
    /// (`sentinels`: `redis://…` URLs of one or more Sentinels, as
    /// `SENTINEL MASTER <service>` asks them; `rediss://…` with the
    /// `redis-tls` feature), with the default retention, in-progress timeout
    /// and prefix. Needs the `redis-sentinel` feature.
    ///
    /// The user and password of the URLs are used for the Sentinels and the
    /// primary alike, their database (`/db`) for the primary only, and their
    /// scheme for both (`rediss://`: TLS to the Sentinels and to the
    /// primary); the URLs must agree on all three. For other settings (a
    /// primary with a password of its own), build a
    /// [`SentinelClient`](redis::sentinel::SentinelClient) and pass it to
    /// [`from_sentinel_client`](RedisStore::from_sentinel_client).
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::RedisStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::connect_sentinel(
    ///     [
    ///         "redis://:secret@sentinel-0.internal:26379/0",
    ///         "redis://:secret@sentinel-1.internal:26379/0",
    ///         "redis://:secret@sentinel-2.internal:26379/0",
    ///     ],
    ///     "webhooks",
    /// )
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The store follows the Sentinels through a failover. When the primary
    /// cannot be reached (a call fails or times out), or answers that it is
    /// a replica now (`READONLY`), the store asks the Sentinels again (at
    /// most once a second, and for at most 2 s) and connects to the primary
    /// they name, once it answers as one; where they still name the server
    /// the connection leads to (slow for a moment, restarted, or a failover
    /// not over yet), the connection stays, and reconnects by itself where it
    /// dropped. The call that met a primary out of
    /// reach fails (`Unavailable`: it may have been made before the
    /// connection failed, so it is not made again); one refused with
    /// `READONLY` is made again on the new primary.
    ///
    /// No Sentinel, an empty `service`, URLs that cannot be used or that
    /// disagree are a [`StoreError::Failed`]; no Sentinel that answers, or
    /// none that names a primary for `service` that is up (the name is
    /// wrong, or a failover is under way), a [`StoreError::Unavailable`]. The
    /// error never repeats a URL.
    #[cfg(feature = "redis-sentinel")]
    pub async fn connect_sentinel<I>(sentinels: I, service: &str) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = sentinel_client(sentinels, service)?;
        RedisStore::sentinel(client, Some(service)).await
    }

    /// Connects to the primary that Redis Sentinels name for `service`, over
    /// TLS (`rediss://…` URLs of the Sentinels; the primary is reached over
    /// TLS too), with `certificates` for both, as
    /// [`connect_tls`](RedisStore::connect_tls) takes them. Needs the
    /// `redis-sentinel` and `redis-tls` features. Otherwise as
    /// [`connect_sentinel`](RedisStore::connect_sentinel).
    #[cfg(all(feature = "redis-sentinel", feature = "redis-tls"))]
    pub async fn connect_sentinel_tls<I>(
        sentinels: I,
        service: &str,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = sentinel_client_tls("connect_sentinel_tls", sentinels, service, certificates)?;
        RedisStore::sentinel(client, Some(service)).await
    }

    /// A store on the primary that a Sentinel client made elsewhere names
    /// (built with [`SentinelServerType::Master`](redis::sentinel::SentinelServerType::Master):
    /// a replica refuses the store's writes), which it follows through a
    /// failover as [`connect_sentinel`](RedisStore::connect_sentinel) says,
    /// with the default retention, in-progress timeout and prefix. Needs the
    /// `redis-sentinel` feature. Where the primary has a password of its own:
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::RedisStore;
    /// use kustomer_webhooks::redis::ConnectionAddr;
    /// use kustomer_webhooks::redis::sentinel::{SentinelClientBuilder, SentinelServerType};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let sentinels = [ConnectionAddr::Tcp("sentinel-0.internal".into(), 26379)];
    /// let client = SentinelClientBuilder::new(sentinels, "webhooks", SentinelServerType::Master)?
    ///     .set_client_to_sentinel_password("sentinel-secret")
    ///     .set_client_to_redis_password("primary-secret")
    ///     .set_client_to_redis_db(1)
    ///     .build()?;
    /// let store = RedisStore::from_sentinel_client(client).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-sentinel")]
    pub async fn from_sentinel_client(
        client: redis::sentinel::SentinelClient,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::sentinel(client, None).await
    }

    /// A store that connects to the primary the Sentinels name for
    /// `service` on its first call rather than now, as
    /// [`connect_lazy`](RedisStore::connect_lazy) does for one server: it is
    /// made even while no Sentinel (or no primary) can be reached. Each call
    /// made before a primary answered asks the Sentinels (at most once a
    /// second, for at most 2 s; the calls in between fail at once) and fails
    /// with [`StoreError::Unavailable`] while they name no primary that
    /// answers; once connected, the store is as [`connect_sentinel`] makes
    /// it. Needs the `redis-sentinel` feature. No Sentinel, an empty
    /// `service`, URLs that cannot be used or that disagree are a
    /// [`StoreError::Failed`] at once.
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::{FailOpen, RedisStore};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = FailOpen::new(RedisStore::connect_sentinel_lazy(
    ///     ["redis://sentinel-0.internal:26379/", "redis://sentinel-1.internal:26379/"],
    ///     "webhooks",
    /// )?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`connect_sentinel`]: RedisStore::connect_sentinel
    #[cfg(feature = "redis-sentinel")]
    pub fn connect_sentinel_lazy<I>(sentinels: I, service: &str) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = sentinel_client(sentinels, service)?;
        Ok(RedisStore::sentinel_lazy(client))
    }

    /// [`connect_sentinel_lazy`](RedisStore::connect_sentinel_lazy) over
    /// TLS, with `certificates` for the Sentinels and the primary, as
    /// [`connect_sentinel_tls`](RedisStore::connect_sentinel_tls) takes
    /// them. Needs the `redis-sentinel` and `redis-tls` features.
    #[cfg(all(feature = "redis-sentinel", feature = "redis-tls"))]
    pub fn connect_sentinel_lazy_tls<I>(
        sentinels: I,
        service: &str,
        certificates: redis::TlsCertificates,
    ) -> Result<RedisStore, StoreError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let client = sentinel_client_tls(
            "connect_sentinel_lazy_tls",
            sentinels,
            service,
            certificates,
        )?;
        Ok(RedisStore::sentinel_lazy(client))
    }

    /// [`from_sentinel_client`](RedisStore::from_sentinel_client), made
    /// without connecting: the first call asks the Sentinels, as
    /// [`connect_sentinel_lazy`](RedisStore::connect_sentinel_lazy) says.
    /// Needs the `redis-sentinel` feature.
    #[cfg(feature = "redis-sentinel")]
    pub fn from_sentinel_client_lazy(client: redis::sentinel::SentinelClient) -> RedisStore {
        RedisStore::sentinel_lazy(client)
    }

    /// A store on the primary `client` names, connected on its first call.
    #[cfg(feature = "redis-sentinel")]
    fn sentinel_lazy(client: redis::sentinel::SentinelClient) -> RedisStore {
        RedisStore::over(Connection::Single(Single::new(
            None,
            Reconnect::Sentinels {
                sentinels: Box::new(client),
                primary: None,
            },
        )))
    }

    /// A store on the primary `client` names (for `service`, when known, to
    /// name it in an error).
    #[cfg(feature = "redis-sentinel")]
    async fn sentinel(
        mut client: redis::sentinel::SentinelClient,
        service: Option<&str>,
    ) -> Result<RedisStore, StoreError> {
        let primary = primary(&mut client)
            .await
            .map_err(|e| match (e.kind(), service) {
                (ErrorKind::MasterNameNotFoundBySentinel, Some(service)) => {
                    StoreError::unavailable(format!(
                        "no Sentinel names a primary for {service:?} that is up (is the name \
                         right? is a failover under way?)"
                    ))
                }
                _ => store_error(e),
            })?;
        let address = primary.get_connection_info().addr().to_string();
        let connection = ConnectionManager::new_with_config(primary, manager_config())
            .await
            .map_err(store_error)?;
        Ok(RedisStore::over(Connection::Single(Single::new(
            Some(connection),
            Reconnect::Sentinels {
                sentinels: Box::new(client),
                primary: Some(address),
            },
        ))))
    }

    /// The prefix of every key (default [`DEFAULT_REDIS_PREFIX`]): give
    /// each service that shares a Redis its own, so that two services
    /// subscribed to the same events each handle them.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a handled id is remembered (default
    /// [`DEFAULT_RETENTION`], longer than Kustomer's retry window).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a claim lasts when it is neither completed nor abandoned
    /// (default [`DEFAULT_IN_PROGRESS_TIMEOUT`]). Keep it above the time the
    /// slowest handler takes.
    pub fn with_in_progress_timeout(mut self, timeout: Duration) -> Self {
        self.in_progress_timeout = timeout;
        self
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long a handled id is remembered.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// How long an unfinished claim lasts.
    pub fn in_progress_timeout(&self) -> Duration {
        self.in_progress_timeout
    }

    /// Asks Redis whether it answers the store: `PING`, over the store's
    /// connection (a store made lazily tries to connect first; in a
    /// cluster, every primary is asked), then a write as a claim makes one
    /// (a script setting `<prefix>:probe` for ten seconds; in a cluster, on
    /// the node holding that key's slot only). `Ok` when both are
    /// answered, [`StoreError::Unavailable`] while Redis cannot be reached
    /// (or is busy, as [`IdempotencyStore::begin`] would find it), and
    /// [`StoreError::Failed`] when it refuses the store: a wrong password or
    /// user, or a write refused (a user who may not write or run scripts,
    /// its memory full, a replica), as every claim would be. For a
    /// readiness probe, or to find at start-up what a store made lazily
    /// would otherwise find only at its first delivery.
    ///
    /// ```no_run
    /// use kustomer_webhooks::dedupe::{RedisStore, StoreError};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = RedisStore::connect_lazy("redis://:secret@redis.internal:6379/0")?;
    /// match store.ping().await {
    ///     Ok(()) | Err(StoreError::Unavailable(_)) => {} // right, or down for now
    ///     Err(refused) => return Err(refused.into()),    // wrong settings: say so now
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        let mut key = self.prefix.clone();
        key.push_str(PROBE_SUFFIX);
        self.probe
            .key(key)
            .arg(PROBE_MILLIS)
            .invoke_async::<i64>(&mut self.connection.clone())
            .await
            .map(drop)
            .map_err(|e| match store_error(e) {
                StoreError::Failed(why) => StoreError::failed(format!(
                    "Redis answers but refuses a write, as it would refuse every claim (a \
                         user without the right to write or run scripts, memory full, or a \
                         replica): {why}"
                )),
                unavailable => unavailable,
            })
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers the claim of `key` holding `value`, letting go of claims
    /// past their timeout when there are many.
    fn hold(&self, key: String, value: String) {
        let mut claims = self.claims();
        if claims.len() >= CLAIMS_KEPT {
            let timeout = self.in_progress_timeout;
            claims.retain(|_, held| {
                held.retain(|(_, at)| at.elapsed() < timeout);
                !held.is_empty()
            });
        }
        claims
            .entry(key)
            .or_default()
            .push((value, std::time::Instant::now()));
    }

    /// The oldest claim of `key` this process holds, let go of: what its
    /// key holds, to give it up by.
    fn release(&self, key: &str) -> Option<String> {
        let mut claims = self.claims();
        let held = claims.get_mut(key)?;
        let (value, _) = held.remove(0);
        if held.is_empty() {
            claims.remove(key);
        }
        Some(value)
    }

    /// The key of an event id or resource id: `<prefix><id>`, or, for an
    /// id with a `:` in it or starting with `~`, `<prefix>~<the id in
    /// hex>`, so that no id's key is another's, a revision's
    /// (`…:rev`) or the probe's.
    fn key(&self, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 2 * id.len() + 1);
        key.push_str(&self.prefix);
        if id.contains(':') || id.starts_with('~') {
            key.push('~');
            key.push_str(&hex::encode(id));
        } else {
            key.push_str(id);
        }
        key
    }

    /// Gives up a claim that may or may not have been made (its `begin`
    /// failed after it was sent: no answer in time), so that it does not
    /// hold the event for the in-progress timeout: tried until Redis
    /// answers, for about two minutes ([`GIVE_BACK_LATER`]), in a task of
    /// its own. A Redis that stalls (a long command, a save, a failover)
    /// runs the claim once it is back; giving up sooner would leave that
    /// claim holding the event, and Kustomer's retries answered 409, for
    /// the claim's five minutes.
    fn give_up_uncertain(&self, key: String, value: String) {
        self.delete_later(key, value, GIVE_BACK_LATER);
    }

    /// Deletes `key` if it still holds `value`, in a task of its own, tried
    /// after each of `waits` (milliseconds) until Redis answers: a claim or
    /// a turn that could not be given back because Redis was out of reach
    /// is given back once it answers again, rather than holding its event
    /// or resource until it expires.
    fn delete_later(&self, key: String, value: String, waits: &'static [u64]) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.clone();
        runtime.spawn(async move {
            for &wait in waits {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let tried = store
                    .abandon
                    .key(&key)
                    .arg(&value)
                    .invoke_async::<i64>(&mut store.connection.clone())
                    .await;
                if tried.is_ok() {
                    return;
                }
            }
        });
    }
}

/// A client for the cluster `nodes` belong to, with the store's timeouts
/// and retries.
#[cfg(feature = "redis-cluster")]
fn cluster_client<I>(nodes: I) -> Result<redis::cluster::ClusterClient, StoreError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let nodes = owned(nodes);
    ready_for(&nodes)?;
    with_cluster_settings(redis::cluster::ClusterClient::builder(nodes))
}

/// [`cluster_client`] over TLS with `certificates` (`constructor` names the
/// caller in an error).
#[cfg(all(feature = "redis-cluster", feature = "redis-tls"))]
fn cluster_client_tls<I>(
    constructor: &str,
    nodes: I,
    certificates: redis::TlsCertificates,
) -> Result<redis::cluster::ClusterClient, StoreError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let nodes = owned(nodes);
    ready_for_tls(constructor, &nodes, &certificates)?;
    with_cluster_settings(redis::cluster::ClusterClient::builder(nodes).certs(certificates))
}

/// `builder`'s client, with the store's timeouts and retries.
#[cfg(feature = "redis-cluster")]
fn with_cluster_settings(
    builder: redis::cluster::ClusterClientBuilder,
) -> Result<redis::cluster::ClusterClient, StoreError> {
    builder
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_millis(500))
        .retries(3)
        .build()
        .map_err(store_error)
}

/// The URLs as owned strings.
#[cfg(any(feature = "redis-cluster", feature = "redis-sentinel"))]
fn owned<I>(urls: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    urls.into_iter()
        .map(|url| url.as_ref().to_owned())
        .collect()
}

/// What a time-out reaching a Redis over TLS adds: a Redis without TLS
/// reads the handshake as the start of a command and waits for the rest, so
/// a `rediss://` URL to one only ever times out.
const NO_TLS_HINT: &str = " (over TLS, as rediss:// asks: a Redis that does not speak TLS never \
                           answers the handshake; if this one does not, its URL is redis://)";

/// `NO_TLS_HINT` when one of `urls` asks for TLS and `error` (a store's
/// error, as text) is a time-out that does not say it already: for the
/// stores that are not one server's (a cluster's, one failing open), whose
/// errors come without their URL.
pub fn no_tls_hint(urls: &[String], error: &str) -> Option<&'static str> {
    let tls = urls.iter().any(|url| is_tls_url(url));
    (tls && error.contains("timed out") && !error.contains(NO_TLS_HINT)).then_some(NO_TLS_HINT)
}

/// Whether `url` asks for Redis over TLS.
fn is_tls_url(url: &str) -> bool {
    matches!(scheme(url), Some(s) if s.eq_ignore_ascii_case("rediss") || s.eq_ignore_ascii_case("valkeys"))
}

/// The schemes of the URLs the Redis client takes.
const REDIS_SCHEMES: [&str; 7] = [
    "redis",
    "rediss",
    "redis+unix",
    "unix",
    "valkey",
    "valkeys",
    "valkey+unix",
];

/// A URL's scheme: what comes before its `://` (`None` without one).
fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// `url` is one the Redis client takes, by its scheme: the client's own
/// error for another ("Redis URL did not parse") does not say what is
/// wrong. The error names the scheme only, never the URL (it may hold a
/// password).
fn check_scheme(url: &str) -> Result<(), StoreError> {
    match scheme(url) {
        Some(s) if REDIS_SCHEMES.iter().any(|r| r.eq_ignore_ascii_case(s)) => {
            if s.to_ascii_lowercase().contains("unix") {
                Ok(())
            } else {
                check_host(url)
            }
        }
        Some(s)
            if s.len() <= 16
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Err(StoreError::failed(format!(
                "a Redis URL starts with redis:// (rediss:// over TLS, redis+unix:// for a \
                 socket), not {s}://"
            )))
        }
        _ => match url.split_once(':') {
            // `redis:/host`, `redis:host`: a known scheme without its
            // slashes.
            Some((s, _)) if REDIS_SCHEMES.iter().any(|r| r.eq_ignore_ascii_case(s)) => {
                let example = if s.to_ascii_lowercase().contains("unix") {
                    "/path/to/redis.sock"
                } else {
                    "host:port/db"
                };
                Err(StoreError::failed(format!(
                    "a Redis URL starts with {s}:// and this one has {s}: without the two \
                     slashes after it ({s}://{example})"
                )))
            }
            _ => Err(StoreError::failed(
                "a Redis URL starts with redis:// (rediss:// over TLS, redis+unix:// for a \
                 socket): this one has no scheme",
            )),
        },
    }
}

/// A `redis://` (or `rediss://`, `valkey://`…) URL's host and port parse:
/// the client's own error ("Redis URL did not parse") does not say which
/// part is wrong. Like [`check_scheme`], the error never shows the URL.
fn check_host(url: &str) -> Result<(), StoreError> {
    // A password's `/`, `?` or `#` ends the part the host is read from.
    const ENCODE: &str = "a password holding /, ?, # or @ must be percent-encoded: / as %2F, \
                          ? as %3F, # as %23, @ as %40";
    let Err(e) = url::Url::parse(url) else {
        return Ok(());
    };
    // `redis://::1:6379`: an IPv6 address outside brackets (not a user and
    // password, which an `@` anywhere after them shows, even past a `/` the
    // password holds).
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let bare_ipv6 =
        !rest.contains('@') && !authority.contains('[') && authority.matches(':').count() >= 2;
    let what = match e {
        url::ParseError::InvalidPort | url::ParseError::EmptyHost if bare_ipv6 => {
            "an IPv6 address goes in brackets: redis://[::1]:6379/0".to_owned()
        }
        url::ParseError::InvalidPort => format!(
            "its port is not a number from 0 to 65535 ({ENCODE}; an IPv6 address goes in \
             brackets: redis://[::1]:6379/0)"
        ),
        url::ParseError::EmptyHost => {
            format!("it names no host (redis://host:port/db; {ENCODE})")
        }
        url::ParseError::InvalidIpv6Address => {
            "its IPv6 address does not parse (it goes in brackets: redis://[::1]:6379/0)".to_owned()
        }
        url::ParseError::InvalidIpv4Address => "its IPv4 address does not parse".to_owned(),
        url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError => {
            format!("its host name has a character a host name cannot have ({ENCODE})")
        }
        other => other.to_string(),
    };
    Err(StoreError::failed(format!(
        "the Redis URL does not parse: {what}"
    )))
}

/// Ready to connect to `urls`: where one is `rediss://`, TLS is built in
/// (the `redis-tls` feature; an error naming it otherwise) and rustls has
/// its crypto provider.
fn ready_for<I>(urls: I) -> Result<(), StoreError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut tls = false;
    for url in urls {
        check_scheme(url.as_ref())?;
        tls |= is_tls_url(url.as_ref());
    }
    if tls {
        #[cfg(feature = "redis-tls")]
        install_crypto_provider();
        #[cfg(not(feature = "redis-tls"))]
        return Err(StoreError::failed(
            "a rediss:// URL (Redis over TLS) needs the `redis-tls` feature of \
             kustomer-webhooks",
        ));
    }
    Ok(())
}

/// The Sentinel client for `sentinels` and `service`, as
/// [`sentinel_builder`] sets it up.
#[cfg(feature = "redis-sentinel")]
fn sentinel_client<I>(
    sentinels: I,
    service: &str,
) -> Result<redis::sentinel::SentinelClient, StoreError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let urls = owned(sentinels);
    ready_for(&urls)?;
    sentinel_builder(&urls, service)?
        .build()
        .map_err(store_error)
}

/// [`sentinel_client`] over TLS with `certificates`, for the Sentinels and
/// the primary (`constructor` names the caller in an error).
#[cfg(all(feature = "redis-sentinel", feature = "redis-tls"))]
fn sentinel_client_tls<I>(
    constructor: &str,
    sentinels: I,
    service: &str,
    certificates: redis::TlsCertificates,
) -> Result<redis::sentinel::SentinelClient, StoreError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let urls = owned(sentinels);
    ready_for_tls(constructor, &urls, &certificates)?;
    sentinel_builder(&urls, service)?
        .set_client_to_sentinel_certificates(certificates.clone())
        .set_client_to_redis_certificates(certificates)
        .build()
        .map_err(store_error)
}

/// A builder of the Sentinel client for `urls` (the Sentinels') and
/// `service`: their user and password for the Sentinels and the primary,
/// their database for the primary, their scheme for both.
#[cfg(feature = "redis-sentinel")]
fn sentinel_builder(
    urls: &[String],
    service: &str,
) -> Result<redis::sentinel::SentinelClientBuilder, StoreError> {
    use redis::IntoConnectionInfo;
    use redis::sentinel::{SentinelClientBuilder, SentinelServerType};

    if urls.is_empty() {
        return Err(StoreError::failed("no Sentinel URL was given"));
    }
    if service.is_empty() {
        return Err(StoreError::failed(
            "the service name is empty: give the name the Sentinels monitor the primary by",
        ));
    }
    let infos = urls
        .iter()
        .map(|url| url.as_str().into_connection_info().map_err(store_error))
        .collect::<Result<Vec<_>, _>>()?;
    let first = infos[0].redis_settings();
    let tls = is_tls_url(&urls[0]);
    let agree = infos.iter().zip(urls).all(|(info, url)| {
        let settings = info.redis_settings();
        settings.username() == first.username()
            && settings.password() == first.password()
            && settings.db() == first.db()
            && is_tls_url(url) == tls
    });
    if !agree {
        return Err(StoreError::failed(
            "the Sentinel URLs differ in scheme, user, password or database: give them all \
             the same (for a primary with settings of its own, build a SentinelClient and use \
             RedisStore::from_sentinel_client)",
        ));
    }
    // A Sentinel has no databases: the URL's is the primary's.
    let mut builder = SentinelClientBuilder::new(
        infos.iter().map(|info| info.addr().clone()),
        service,
        SentinelServerType::Master,
    )
    .map_err(store_error)?
    .set_client_to_redis_db(first.db());
    if let Some(user) = first.username() {
        builder = builder
            .set_client_to_sentinel_username(user)
            .set_client_to_redis_username(user);
    }
    if let Some(password) = first.password() {
        builder = builder
            .set_client_to_sentinel_password(password)
            .set_client_to_redis_password(password);
    }
    #[cfg(feature = "redis-tls")]
    if tls {
        builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
    }
    Ok(builder)
}

/// Ready to connect over TLS to `urls` with `certificates`: every URL is
/// `rediss://` (`constructor` names the caller in the error otherwise), the
/// certificates can be used, and rustls has its crypto provider.
#[cfg(feature = "redis-tls")]
fn ready_for_tls(
    constructor: &str,
    urls: &[impl AsRef<str>],
    certificates: &redis::TlsCertificates,
) -> Result<(), StoreError> {
    if !urls.iter().all(|url| is_tls_url(url.as_ref())) {
        return Err(StoreError::failed(format!(
            "{constructor} takes rediss:// URLs (Redis over TLS)"
        )));
    }
    check_certificates(certificates)?;
    install_crypto_provider();
    Ok(())
}

/// A client for the Redis over TLS at `url`, as [`ready_for_tls`] checks.
#[cfg(feature = "redis-tls")]
fn tls_client(
    constructor: &str,
    url: &str,
    certificates: redis::TlsCertificates,
) -> Result<redis::Client, StoreError> {
    ready_for_tls(constructor, &[url], &certificates)?;
    redis::Client::build_with_tls(url, certificates).map_err(store_error)
}

/// Each PEM of `certificates` holds what it should: at least one
/// certificate in `root_cert` and `client_cert`, a private key in
/// `client_key`. (redis would take a root PEM with no certificate in it as an
/// empty set of roots, which refuses every server, and report a key it
/// cannot read as an I/O error.)
#[cfg(feature = "redis-tls")]
fn check_certificates(certificates: &redis::TlsCertificates) -> Result<(), StoreError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certificates_in = |pem: &[u8], what: &str| {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::failed(format!("{what}: {e}")))?;
        if certificates.is_empty() {
            return Err(StoreError::failed(format!(
                "{what} holds no certificate (no -----BEGIN CERTIFICATE----- block)"
            )));
        }
        Ok(certificates)
    };
    if let Some(roots) = &certificates.root_cert {
        certificates_in(roots, "root_cert")?;
    }
    if let Some(client) = &certificates.client_tls {
        let chain = certificates_in(&client.client_cert, "client_cert")?;
        // The key's bytes are never part of a message.
        let key = PrivateKeyDer::from_pem_slice(&client.client_key).map_err(|e| {
            StoreError::failed(format!(
                "client_key holds no private key that can be read: {e}"
            ))
        })?;
        // A key that rustls cannot sign with, or that is not the
        // certificate's, is found here rather than at each connection.
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(StoreError::failed)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            StoreError::failed(format!("client_key cannot be used with client_cert: {e}"))
        })?;
    }
    Ok(())
}

/// rustls needs a crypto provider for the process; where none was chosen
/// (nor can be told from rustls's features, as when more than one is
/// built in), aws-lc-rs's becomes the default, so that connecting never
/// panics for want of one.
#[cfg(feature = "redis-tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first; either is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The longest time a key is kept for ([`FOREVER`](super::FOREVER)).
/// Redis refuses a `PX` that, added to its clock, would not fit in 63
/// bits, so `Duration::MAX` (no end, as `MemoryStore` reads it) must not
/// be sent as it is.
const LONGEST_MILLIS: u64 = super::FOREVER.as_secs() * 1000;

/// A duration as Redis's `PX` takes it: whole milliseconds, at least one
/// (`PX 0` is an error), at most [`LONGEST_MILLIS`].
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(LONGEST_MILLIS)
        .clamp(1, LONGEST_MILLIS)
}

/// A Redis error as a store error: the server out of reach (or silent), or
/// busy for now (loading its data, a cluster without all its slots, no
/// primary named yet), is `Unavailable`; anything else (a refused command, a
/// wrong password, a URL that cannot be used) `Failed`.
fn store_error(e: RedisError) -> StoreError {
    if e.redirect_node().is_some() {
        return StoreError::failed(format!(
            "the Redis is a cluster (it redirected a key to another node): connect with \
             RedisStore::connect_cluster (serve --redis-cluster); {e}"
        ));
    }
    if e.kind() == ErrorKind::MasterNameNotFoundBySentinel {
        // The name may be wrong, or a failover under way: asked again
        // later, the Sentinels may name a primary.
        return StoreError::unavailable(format!(
            "no Sentinel names a primary that is up for the service (is the name right? is a \
             failover under way?): {e}"
        ));
    }
    // Busy for now: a cluster without all its slots, a replica without its
    // primary, a server loading its data set. Asked again later, it answers.
    let busy = matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::ClusterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
        )
    );
    if out_of_reach(&e) || busy {
        StoreError::unavailable(e)
    } else {
        StoreError::failed(e)
    }
}

impl IdempotencyStore for RedisStore {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            let key = self.key(id);
            let value = claim_value();
            // A claim sent may be made though its answer never comes (in
            // time), or though this future is dropped before it does: then
            // no one would settle it, and it would hold the event for the
            // in-progress timeout. Until the answer is in, it is given up
            // if this ends otherwise.
            let mut uncertain = Uncertain {
                store: self,
                claim: Some((&key, &value)),
            };
            let answer = self
                .begin
                .key(&key)
                .arg(&value)
                .arg(millis(self.in_progress_timeout))
                .invoke_async::<Option<String>>(&mut self.connection.clone())
                .await;
            let held = match answer {
                Ok(held) => {
                    uncertain.claim = None;
                    drop(uncertain);
                    held
                }
                Err(e) => {
                    // Surely never made: nothing to give up.
                    if !(e.is_timeout() || e.is_connection_dropped()) {
                        uncertain.claim = None;
                    }
                    return Err(store_error(e));
                }
            };
            match held.as_deref() {
                None => {
                    self.hold(key, value);
                    Ok(Begin::New)
                }
                Some(DONE) => Ok(Begin::Done),
                Some(held) if is_claim(held) => Ok(Begin::InProgress),
                Some(other) => Err(StoreError::failed(format!(
                    "the key {key} holds {other:?}, neither {IN_PROGRESS:?} nor {DONE:?}: \
                     does another program write keys under the prefix {:?}?",
                    self.prefix
                ))),
            }
        })
    }

    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key(id);
            self.release(&key);
            redis::cmd("SET")
                .arg(key)
                .arg(DONE)
                .arg("PX")
                .arg(millis(self.retention))
                .query_async::<()>(&mut self.connection.clone())
                .await
                .map_err(store_error)
        })
    }

    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // This process's claim (its oldest, when it holds two), or else
            // one written as earlier versions write theirs.
            let key = self.key(id);
            let own = self.release(&key);
            let value = own.clone().unwrap_or_else(|| IN_PROGRESS.to_owned());
            let given = self
                .abandon
                .key(&key)
                .arg(&value)
                .invoke_async::<i64>(&mut self.connection.clone())
                .await
                .map(drop)
                .map_err(store_error);
            // Out of reach: this process's own claim is given up once Redis
            // answers, so that the retry need not wait for its timeout.
            if let (Err(StoreError::Unavailable(_)), Some(own)) = (&given, own) {
                self.delete_later(key, own, GIVE_BACK_LATER);
            }
            given
        })
    }
}

impl RevisionStore for RedisStore {
    fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let key = self.key(resource_id) + REVISION_SUFFIX;
            let held: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            held.map(|held| {
                held.parse::<i64>().map_err(|_| {
                    StoreError::failed(format!(
                        "the key {key} holds {held:?}, not a revision: does another program \
                         write keys under the prefix {:?}?",
                        self.prefix
                    ))
                })
            })
            .transpose()
        })
    }

    fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.record_revision
                .key(self.key(resource_id) + REVISION_SUFFIX)
                .arg(rev)
                .arg(millis(self.retention))
                .invoke_async::<i64>(&mut self.connection.clone())
                .await
                .map(drop)
                .map_err(store_error)
        })
    }

    /// One key per resource, `<prefix><id>:turn`, set only if absent
    /// (`SET NX PX`) to a token of the taker's own, for `hold`.
    fn take_turn<'a>(
        &'a self,
        resource_id: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, SharedTurn> {
        Box::pin(async move {
            let key = self.key(resource_id) + TURN_SUFFIX;
            let token = format!("turn:{:016x}", token());
            // Sent, the turn may be taken whether or not its answer comes
            // back: until it does, it is given back if this ends otherwise
            // (a time limit, a client gone), as an uncertain claim is.
            let mut uncertain = Uncertain {
                store: self,
                claim: Some((&key, &token)),
            };
            let answer = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(millis(hold))
                .query_async::<Option<String>>(&mut self.connection.clone())
                .await;
            let set = match answer {
                Ok(set) => {
                    uncertain.claim = None;
                    set
                }
                Err(e) => {
                    // Surely never set: nothing to give back.
                    if !(e.is_timeout() || e.is_connection_dropped()) {
                        uncertain.claim = None;
                    }
                    return Err(store_error(e));
                }
            };
            drop(uncertain);
            Ok(match set {
                Some(_) => SharedTurn::Taken(token),
                None => SharedTurn::Busy,
            })
        })
    }

    fn shares_turns(&self) -> bool {
        true
    }

    /// Deletes the turn's key if it still holds `token` (one script).
    /// Out of reach, tried again once Redis answers (until well past the
    /// turn's hold), so that the resource does not wait for the hold to end.
    fn give_turn<'a>(&'a self, resource_id: &'a str, token: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key(resource_id) + TURN_SUFFIX;
            let given = self
                .abandon
                .key(&key)
                .arg(token)
                .invoke_async::<i64>(&mut self.connection.clone())
                .await
                .map(drop)
                .map_err(store_error);
            if let Err(StoreError::Unavailable(_)) = &given {
                self.delete_later(key, token.to_owned(), GIVE_BACK_LATER);
            }
            given
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims never settled (their keys expired in Redis) do not pile up.
    #[tokio::test]
    async fn claims_past_their_timeout_are_let_go_when_many_are_held() {
        let store = RedisStore::connect_lazy("redis://127.0.0.1:9/")
            .unwrap()
            .with_in_progress_timeout(Duration::from_millis(20));
        for i in 0..CLAIMS_KEPT {
            store.hold(i.to_string(), claim_value());
        }
        assert_eq!(store.claims().len(), CLAIMS_KEPT);
        // Clones share them.
        assert_eq!(store.clone().claims().len(), CLAIMS_KEPT);
        tokio::time::sleep(Duration::from_millis(40)).await;
        store.hold("fresh".into(), claim_value());
        assert_eq!(store.claims().len(), 1);
        assert!(store.claims().contains_key("fresh"));
    }

    /// Two claims of one key in one process (the first's key expired while
    /// its handler ran, and a retry came): each settling lets go of the
    /// oldest, so the first to settle, the first claim, never gives up
    /// the second's.
    #[tokio::test]
    async fn two_claims_of_one_key_are_let_go_oldest_first() {
        let store = RedisStore::connect_lazy("redis://127.0.0.1:9/").unwrap();
        let (first, second) = (claim_value(), claim_value());
        store.hold("k".into(), first.clone());
        store.hold("k".into(), second.clone());
        assert_eq!(store.release("k"), Some(first));
        assert_eq!(store.release("k"), Some(second));
        assert_eq!(store.release("k"), None);
        assert!(store.claims().is_empty());
    }

    #[test]
    fn claim_values_are_claims_of_their_own() {
        let (a, b) = (claim_value(), claim_value());
        assert_ne!(a, b);
        assert!(is_claim(&a) && is_claim(IN_PROGRESS));
        assert!(!is_claim(DONE) && !is_claim("in-progressive") && !is_claim("4"));
    }

    #[test]
    fn a_url_of_another_scheme_is_refused_by_its_scheme() {
        for url in [
            "redis://h:6379/0",
            "REDISS://:pw@h/",
            "redis+unix:///tmp/r.sock",
            "unix:///tmp/r.sock",
            "valkeys://h/",
        ] {
            assert!(check_scheme(url).is_ok(), "{url}");
        }
        assert!(is_tls_url("rediss://h/") && is_tls_url("ValKeyS://h/"));
        assert!(!is_tls_url("redis://h/") && !is_tls_url("rediss:/h"));
        let refused = |url: &str| check_scheme(url).unwrap_err().to_string();
        assert!(
            refused("redis:/:s3cret@localhost").ends_with(
                "this one has redis: without the two slashes after it (redis://host:port/db)"
            ),
            "{}",
            refused("redis:/localhost")
        );
        assert!(!refused("redis:/:s3cret@localhost").contains("s3cret"));
        assert!(
            refused("unix:/run/redis.sock").ends_with("(unix:///path/to/redis.sock)"),
            "{}",
            refused("unix:/run/redis.sock")
        );
        assert_eq!(
            refused("http://user:s3cret@h/"),
            "the idempotency store failed: a Redis URL starts with redis:// (rediss:// over \
             TLS, redis+unix:// for a socket), not http://"
        );
        for (url, said) in [
            ("redis://:pa/ss@h:6379/0", "it names no host"),
            ("redis://:pa#ss@h:6379/0", "percent-encoded"),
            ("redis://u:p:x/y@h:6379/0", "percent-encoded"),
            ("redis://h:70000/0", "its port is not a number"),
            ("redis://h:port/0", "its port is not a number"),
            ("redis://:s3cret@/0", "it names no host"),
            ("redis://::1:6379/0", "an IPv6 address goes in brackets"),
            ("redis://fe80::1/0", "an IPv6 address goes in brackets"),
            ("redis://[::1/0", "its IPv6 address does not parse"),
            ("rediss://h st:6379", "its host name has a character"),
        ] {
            let refused = refused(url);
            assert!(
                refused.starts_with("the idempotency store failed: the Redis URL does not parse: ")
                    && refused.contains(said),
                "{url}: {refused}"
            );
            assert!(
                !refused.contains("s3cret") && !refused.contains("ss@"),
                "{refused}"
            );
        }
        for url in ["redis://[::1]:6379/0", "redis://h", "redis://u:p%2Fw@h:1/2"] {
            assert!(check_scheme(url).is_ok(), "{url}");
        }
        for url in ["h:6379", "localhost", "s3cret@h://x"] {
            let said = refused(url);
            assert!(said.ends_with("this one has no scheme"), "{url}: {said}");
            assert!(!said.contains("s3cret"), "{said}");
        }
    }

    #[test]
    fn durations_become_whole_milliseconds_of_at_least_one() {
        assert_eq!(millis(Duration::from_secs(75 * 60)), 4_500_000);
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::MAX), LONGEST_MILLIS);
        assert_eq!(millis(Duration::from_secs(u64::MAX / 1000)), LONGEST_MILLIS);
    }

    /// Built without `redis-tls` (`cargo test -p kustomer-webhooks
    /// --features redis-cluster --lib`, as CI does), a `rediss://` URL is
    /// refused with the feature it needs, before any connection is tried.
    #[cfg(not(feature = "redis-tls"))]
    #[tokio::test]
    async fn without_redis_tls_a_rediss_url_names_the_feature() {
        let err = RedisStore::connect("rediss://:s3cret@127.0.0.1:9/")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("the `redis-tls` feature"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        let err = RedisStore::connect_lazy("rediss://127.0.0.1:9/").unwrap_err();
        assert!(err.to_string().contains("the `redis-tls` feature"), "{err}");

        #[cfg(feature = "redis-cluster")]
        {
            let err = RedisStore::connect_cluster(["rediss://:s3cret@127.0.0.1:9/"])
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
            assert!(err.to_string().contains("the `redis-tls` feature"), "{err}");
            let err = RedisStore::connect_cluster_lazy(["rediss://127.0.0.1:9/"]).unwrap_err();
            assert!(err.to_string().contains("the `redis-tls` feature"), "{err}");
        }
        #[cfg(feature = "redis-sentinel")]
        {
            let err = RedisStore::connect_sentinel(["rediss://:s3cret@127.0.0.1:9/"], "webhooks")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
            assert!(err.to_string().contains("the `redis-tls` feature"), "{err}");
            let err = RedisStore::connect_sentinel_lazy(["rediss://127.0.0.1:9/"], "webhooks")
                .unwrap_err();
            assert!(err.to_string().contains("the `redis-tls` feature"), "{err}");
        }
    }

    #[test]
    fn a_busy_or_unreachable_redis_is_unavailable_and_a_refusal_failed() {
        let kind = |e: RedisError| match store_error(e) {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Failed(_) => "failed",
        };
        for busy in [
            ServerErrorKind::BusyLoading,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
        ] {
            let e = RedisError::from((ErrorKind::Server(busy), "busy"));
            assert_eq!(kind(e), "unavailable", "{busy:?}");
        }
        let e = RedisError::from((ErrorKind::MasterNameNotFoundBySentinel, "none"));
        assert_eq!(kind(e), "unavailable");
        assert_eq!(kind(not_connected("the Redis Cluster")), "unavailable");
        let e = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(kind(e), "unavailable");
        for refused in [
            ErrorKind::AuthenticationFailed,
            ErrorKind::Server(ServerErrorKind::NoPerm),
            ErrorKind::Server(ServerErrorKind::ResponseError),
            ErrorKind::InvalidClientConfig,
        ] {
            let e = RedisError::from((refused, "refused"));
            assert_eq!(kind(e), "failed", "{refused:?}");
        }
    }

    #[test]
    fn tls_urls_are_told_by_their_scheme_in_any_case() {
        assert!(is_tls_url("rediss://host:6380/0"));
        assert!(is_tls_url("REDISS://host"));
        assert!(!is_tls_url("redis://host:6379/"));
        assert!(!is_tls_url("rediss:/host"));
        assert!(!is_tls_url("unix:///run/redis.sock"));
        assert!(!is_tls_url("rédiss://"));
        assert!(!is_tls_url(""));
    }
}
