//! Pacing windows and the retry budget shared by every replica through Redis (feature
//! `redis`). Each operation is one atomic Lua script or one pipeline, never a read then a
//! write; timestamps come from Redis's own clock, so replicas' clocks do not matter. Keys
//! carry one hash tag per model and region (and one for the budget), so a Redis Cluster
//! works, and expire with their window.
//!
//! Redis down, slow or misconfigured never fails or stalls a call: every operation has a
//! short timeout; after a failure the store is skipped for a second (the caller uses its
//! local state meanwhile) while the connection manager reconnects by itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::metrics::Counter;
use opentelemetry::KeyValue;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use super::budget::{BudgetConfig, SLOTS};
use super::pacing::{reset_of, Slot, NEW_WINDOW_AFTER, PROVISIONAL_POLL, PROVISIONAL_WINDOW};
use crate::error::ConfigError;
use crate::names::LLM_GATEWAY_SHARED_QUOTA_OPERATION;
use crate::ratelimit::RateLimit;

/// Default timeout of one Redis operation.
pub const DEFAULT_SHARED_TIMEOUT: Duration = Duration::from_millis(50);

/// How long the store is skipped after a failure.
const BACKOFF: Duration = Duration::from_secs(1);

/// First attempts are added to the shared budget in batches, this often at most.
const BUDGET_FLUSH: Duration = Duration::from_millis(100);

/// How long a window's key outlives its reset (its limit starts the next window).
const LINGER: Duration = Duration::from_secs(60);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where pacing windows and the retry budget are shared across replicas: a Redis (or Valkey)
/// server. Off unless given to
/// [`GatewayMiddlewareBuilder::shared_quota`](crate::GatewayMiddlewareBuilder::shared_quota).
///
/// ```
/// use llm_gateway_otel::retry::{Retry, SharedQuota};
/// use llm_gateway_otel::GatewayMiddleware;
/// let middleware = GatewayMiddleware::builder()
///     .retry(Retry::default().pacing(true))
///     .shared_quota(SharedQuota::new("redis://127.0.0.1:6379").key_prefix("checkout"))
///     .build()
///     .unwrap();
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SharedQuota {
    /// One URL for a single node; the seed nodes of a Redis Cluster.
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    timeout: Duration,
}

impl SharedQuota {
    /// The store at `url` (`redis://host:port/db`, `rediss://` for TLS, with
    /// `user:password@` when needed).
    pub fn new(url: impl Into<String>) -> SharedQuota {
        SharedQuota {
            urls: vec![url.into()],
            cluster: false,
            prefix: "llm_gateway".to_owned(),
            timeout: DEFAULT_SHARED_TIMEOUT,
        }
    }

    /// A Redis (or Valkey) Cluster, found from some of its nodes' URLs: each operation goes to
    /// the node that holds its keys' slot (every key of one operation carries the same hash
    /// tag), and the client follows the cluster when slots move.
    ///
    /// ```
    /// use llm_gateway_otel::retry::SharedQuota;
    /// let shared = SharedQuota::cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
    /// ```
    pub fn cluster<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> SharedQuota {
        SharedQuota {
            urls: nodes.into_iter().map(Into::into).collect(),
            cluster: true,
            ..SharedQuota::new(String::new())
        }
    }

    /// The prefix of every key (default `llm_gateway`): replicas that share a prefix share
    /// windows and budget; give each account (API key) its own.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> SharedQuota {
        self.prefix = prefix.into();
        self
    }

    /// The longest a call waits on Redis for one operation before it uses its local state
    /// (default 50 ms).
    pub fn timeout(mut self, timeout: Duration) -> SharedQuota {
        self.timeout = timeout;
        self
    }
}

/// The URL's password is not printed.
impl std::fmt::Debug for SharedQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redacted_url(u)).collect();
        f.debug_struct("SharedQuota")
            .field("urls", &urls)
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the shared state could not be used (the call then used its local state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable {
    /// `reserve`, `observe`, `budget`.
    pub(crate) operation: &'static str,
    /// `skipped` (a recent failure), `timeout`, or Redis's error.
    pub(crate) reason: String,
}

/// A client of one node or of a cluster.
// One per middleware: its size does not matter, and the two clients' sizes change between
// versions of the redis crate.
#[allow(clippy::large_enum_variant)]
enum Client {
    Node(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A connection to one node (reconnected by its manager) or to a cluster (routed by slot).
#[derive(Clone)]
enum Connection {
    Node(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The connection and the scripts; shared by every call of a middleware.
pub(crate) struct SharedStore {
    client: Client,
    connection: tokio::sync::OnceCell<Connection>,
    prefix: String,
    timeout: Duration,
    skip_until: Mutex<Option<Instant>>,
    unavailable: Counter<u64>,
    /// The last operation failed (for one log line per outage).
    away: AtomicBool,
    /// First attempts not yet added to the shared budget, and when they last were.
    pending_requests: AtomicU64,
    last_flush: Mutex<Instant>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Reserves a slot: `{1, left}` (go; left is -1 when nothing is known), or `{0, ms}` (the
/// window is used up; it resets in ms). After a reset, a window with a known limit starts
/// again, provisionally (ARGV: its guessed length, how long a key outlives its window, and
/// how soon a call finding a provisional window used up looks again).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local w = redis.call('HMGET', KEYS[1], 'remaining', 'reset_at', 'limit', 'prov')
local remaining, reset_at, limit, prov = tonumber(w[1]), tonumber(w[2]), tonumber(w[3]), tonumber(w[4])
if not remaining or not reset_at then return {1, -1} end
if reset_at <= now then
  if not limit then return {1, -1} end
  local until_ms = now + tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 'remaining', limit - 1, 'reset_at', until_ms, 'prov', 1)
  redis.call('PEXPIREAT', KEYS[1], until_ms + tonumber(ARGV[2]))
  return {1, limit - 1}
end
if remaining > 0 then
  redis.call('HINCRBY', KEYS[1], 'remaining', -1)
  return {1, remaining - 1}
end
if prov == 1 then return {0, math.min(reset_at - now, tonumber(ARGV[3]))} end
return {0, reset_at - now}
";

/// Learns from a response: ARGV remaining, reset (ms from now), new-window tolerance (ms),
/// limit (-1: not sent), how long the key outlives its window (ms). A new window replaces the
/// old; within one, the lower count left is kept; a provisional window takes the response's
/// reset.
const OBSERVE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local remaining = tonumber(ARGV[1])
local reset_at = now + tonumber(ARGV[2])
local w = redis.call('HMGET', KEYS[1], 'remaining', 'reset_at', 'prov')
local old_remaining, old_reset, prov = tonumber(w[1]), tonumber(w[2]), tonumber(w[3])
if old_reset and old_reset > now then
  if prov == 1 then
    if old_remaining and old_remaining < remaining then remaining = old_remaining end
  elseif reset_at <= old_reset + tonumber(ARGV[3]) then
    reset_at = old_reset
    if old_remaining and old_remaining < remaining then remaining = old_remaining end
  end
end
redis.call('HSET', KEYS[1], 'remaining', remaining, 'reset_at', reset_at, 'prov', 0)
if tonumber(ARGV[4]) >= 0 then redis.call('HSET', KEYS[1], 'limit', ARGV[4]) end
redis.call('PEXPIREAT', KEYS[1], reset_at + tonumber(ARGV[5]))
return remaining
";

/// Takes a retry from the budget: KEYS the window's slots, the current one last; ARGV ratio,
/// floor, expiry (ms). 1 when granted.
const TRY_RETRY: &str = r"
local requests, retries = 0, 0
for i = 1, #KEYS do
  local s = redis.call('HMGET', KEYS[i], 'requests', 'retries')
  requests = requests + (tonumber(s[1]) or 0)
  retries = retries + (tonumber(s[2]) or 0)
end
if retries + 1 > tonumber(ARGV[1]) * requests + tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[#KEYS], 'retries', 1)
redis.call('PEXPIRE', KEYS[#KEYS], ARGV[3])
return 1
";

/// Adds ARGV[1] first attempts to a budget slot that expires in ARGV[2] ms.
const ADD_REQUESTS: &str = r"
local n = redis.call('HINCRBY', KEYS[1], 'requests', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
";

static ADD_REQUESTS_SCRIPT: OnceLock<redis::Script> = OnceLock::new();

fn script(code: &'static str, cell: &'static OnceLock<redis::Script>) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(code))
}

static RESERVE_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
static OBSERVE_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
static TRY_RETRY_SCRIPT: OnceLock<redis::Script> = OnceLock::new();

/// A hash tag cannot hold braces: they are replaced.
fn tag(text: &str) -> String {
    text.replace(['{', '}'], "_")
}

impl SharedStore {
    /// Checks `config` (the URL is parsed; nothing is connected until the first call).
    pub(crate) fn new(
        config: &SharedQuota,
        unavailable: Counter<u64>,
    ) -> Result<SharedStore, ConfigError> {
        let named = || {
            let urls: Vec<String> = config.urls.iter().map(|u| redacted_url(u)).collect();
            urls.join(", ")
        };
        let client = if config.cluster {
            redis::cluster::ClusterClient::builder(config.urls.iter().map(String::as_str))
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .retries(1)
                .build()
                .map(Client::Cluster)
        } else {
            redis::Client::open(config.urls.first().map_or("", String::as_str)).map(Client::Node)
        }
        .map_err(|e| ConfigError::new(format!("shared_quota: {}: {e}", named())))?;
        if config.timeout.is_zero() {
            return Err(ConfigError::new(
                "shared_quota: the timeout is 0".to_owned(),
            ));
        }
        Ok(SharedStore {
            client,
            connection: tokio::sync::OnceCell::new(),
            prefix: config.prefix.clone(),
            timeout: config.timeout,
            skip_until: Mutex::new(None),
            unavailable,
            away: AtomicBool::new(false),
            pending_requests: AtomicU64::new(0),
            last_flush: Mutex::new(Instant::now()),
        })
    }

    /// The prefix is inside the hash tag: in a cluster, the windows of different accounts
    /// (prefixes) spread over the nodes as those of different models do.
    fn window_key(&self, region: &str, model: &str) -> String {
        format!(
            "{{{}:{}:{}}}:window",
            tag(&self.prefix),
            tag(region),
            tag(model)
        )
    }

    fn budget_key(&self, epoch: u64) -> String {
        format!("{{{}:budget}}:{epoch}", tag(&self.prefix))
    }

    /// The connection, made on first use inside the runtime: for one node a manager that
    /// connects lazily and reconnects by itself; for a cluster a connection that routes by
    /// slot (a failed first connection is tried again on a later call).
    async fn connection(&self) -> Result<Connection, String> {
        let connect = || async {
            match &self.client {
                Client::Node(client) => {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout))
                        .set_number_of_retries(0)
                        .set_max_delay(BACKOFF);
                    ConnectionManager::new_lazy_with_config(client.clone(), config)
                        .map(Connection::Node)
                        .map_err(|e| e.to_string())
                }
                Client::Cluster(client) => client
                    .get_async_connection()
                    .await
                    .map(Connection::Cluster)
                    .map_err(|e| e.to_string()),
            }
        };
        self.connection.get_or_try_init(connect).await.cloned()
    }

    /// Runs `op` against Redis within the timeout, unless a recent failure says to skip it;
    /// a failure is counted and skips the store for a second.
    async fn run<T, F>(
        &self,
        operation: &'static str,
        op: impl FnOnce(Connection) -> F,
    ) -> Result<T, Unavailable>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let fail = |reason: String| {
            self.unavailable.add(
                1,
                &[KeyValue::new(LLM_GATEWAY_SHARED_QUOTA_OPERATION, operation)],
            );
            Unavailable { operation, reason }
        };
        {
            let skip = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
            if skip.is_some_and(|until| Instant::now() < until) {
                return Err(fail("skipped after a recent failure".to_owned()));
            }
        }
        let attempt = async {
            let connection = self.connection().await?;
            op(connection).await.map_err(|e| e.to_string())
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => {
                self.answered();
                return Ok(value);
            }
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {:?}", self.timeout),
        };
        self.failed(&outcome);
        Err(fail(outcome))
    }

    /// Redis answered: if it had been away, the log says it is back.
    fn answered(&self) {
        if self.away.swap(false, Ordering::Relaxed) {
            tracing::info!(
                target: crate::names::TRACING_TARGET,
                "shared quota store answers again: pacing windows and the retry budget are shared again"
            );
        }
    }

    /// An operation failed: the store is skipped for a second; the log says so once per
    /// outage (the span of each call says so every time).
    fn failed(&self, reason: &str) {
        *self.skip_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + BACKOFF);
        if !self.away.swap(true, Ordering::Relaxed) {
            let hint = if reason.contains("Moved") || reason.contains("MOVED") {
                " (this is a Redis Cluster: use SharedQuota::cluster)"
            } else {
                ""
            };
            tracing::warn!(
                target: crate::names::TRACING_TARGET,
                "shared quota store unavailable ({reason}){hint}: calls use this process's pacing windows and retry budget until it answers"
            );
        }
    }

    /// Reserves a slot of `model`'s window in `region`.
    pub(crate) async fn reserve(&self, region: &str, model: &str) -> Result<Slot, Unavailable> {
        let key = self.window_key(region, model);
        let (go, value): (i64, i64) = self
            .run("reserve", |mut c| async move {
                script(RESERVE, &RESERVE_SCRIPT)
                    .key(key)
                    .arg(ms(PROVISIONAL_WINDOW))
                    .arg(ms(LINGER))
                    .arg(ms(PROVISIONAL_POLL))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(if go == 1 {
            Slot::Go
        } else {
            Slot::Wait(Duration::from_millis(u64::try_from(value).unwrap_or(0)))
        })
    }

    /// Shares what a response said of `model`'s window in `region`.
    pub(crate) async fn observe(
        &self,
        region: &str,
        model: &str,
        rate: &RateLimit,
    ) -> Result<(), Unavailable> {
        let (Some(remaining), Some(reset)) = (rate.remaining, reset_of(rate)) else {
            return Ok(());
        };
        let key = self.window_key(region, model);
        let limit = rate.limit.filter(|l| *l >= 0).unwrap_or(-1);
        self.run("observe", |mut c| async move {
            script(OBSERVE, &OBSERVE_SCRIPT)
                .key(key)
                .arg(remaining)
                .arg(ms(reset))
                .arg(ms(NEW_WINDOW_AFTER))
                .arg(limit)
                .arg(ms(LINGER))
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
        .await
    }

    /// The budget's slot of now, on the wall clock of this replica.
    fn epoch(config: &BudgetConfig) -> u64 {
        let slot = (config.window / SLOTS as u32).max(Duration::from_millis(1));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (now.as_nanos() / slot.as_nanos()) as u64
    }

    /// Counts a first attempt in the shared budget. The counts are sent in batches, at most
    /// every [`BUDGET_FLUSH`] (one Redis operation then, not one per call); returns the
    /// batch to send now, if it is time.
    pub(crate) fn count_request(&self) -> Option<u64> {
        self.pending_requests.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_flush.try_lock().ok()?;
        let now = Instant::now();
        if now.duration_since(*last) < BUDGET_FLUSH {
            return None;
        }
        *last = now;
        Some(self.pending_requests.swap(0, Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// Adds `requests` first attempts to the shared budget.
    pub(crate) async fn record_requests(
        &self,
        config: &BudgetConfig,
        requests: u64,
    ) -> Result<(), Unavailable> {
        let epoch = Self::epoch(config);
        let key = self.budget_key(epoch);
        let expiry = ms(config.window * 2);
        self.run("budget", |mut c| async move {
            script(ADD_REQUESTS, &ADD_REQUESTS_SCRIPT)
                .key(key)
                .arg(requests)
                .arg(expiry)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Takes a retry from the shared budget; `false` when the replicas together spent it.
    pub(crate) async fn try_retry(&self, config: &BudgetConfig) -> Result<bool, Unavailable> {
        let epoch = Self::epoch(config);
        let keys: Vec<String> = (0..SLOTS as u64)
            .rev()
            .map(|back| self.budget_key(epoch.saturating_sub(back)))
            .collect();
        let expiry = ms(config.window * 2);
        let (ratio, floor) = (config.ratio, config.min_retries);
        let granted: i64 = self
            .run("budget", |mut c| async move {
                let mut invocation = script(TRY_RETRY, &TRY_RETRY_SCRIPT).prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                invocation
                    .arg(ratio)
                    .arg(floor)
                    .arg(expiry)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(granted == 1)
    }
}

/// `url` without its password, for messages.
/// The credentials are what lies between `://` and the last `@` before the path (a password
/// may hold `@` and `:`); the user name is kept.
fn redacted_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = credentials.split_once(':').map_or("", |(user, _)| user);
    let sep = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{sep}{user}:[REDACTED]@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_one_hash_tag_per_window_and_one_for_the_budget() {
        let meter = opentelemetry::global::meter("test");
        let store = SharedStore::new(
            &SharedQuota::new("redis://127.0.0.1:1").key_prefix("svc"),
            meter.u64_counter("x").build(),
        )
        .unwrap();
        assert_eq!(
            store.window_key("eu", "claude-haiku-4-5"),
            "{svc:eu:claude-haiku-4-5}:window"
        );
        assert_eq!(store.window_key("us", "a{b}c"), "{svc:us:a_b_c}:window");
        assert_eq!(store.budget_key(7), "{svc:budget}:7");
    }

    #[test]
    fn a_bad_url_is_a_build_error_without_the_password() {
        let meter = opentelemetry::global::meter("test");
        let err = SharedStore::new(
            &SharedQuota::new("mysql://user:hunter2@db:3306"),
            meter.u64_counter("x").build(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("shared_quota") && !err.contains("hunter2"),
            "{err}"
        );
        for url in [
            "redis://:hunter2@cache:6379",
            "redis://default:p@ss:hunter2@cache:6379/0",
            "rediss://user:hunter2@cache:6380/#insecure",
        ] {
            let debug = format!("{:?}", SharedQuota::new(url));
            assert!(
                !debug.contains("hunter2")
                    && !debug.contains("p@ss")
                    && debug.contains("@cache:63"),
                "{debug}"
            );
        }
        assert_eq!(redacted_url("redis://cache:6379"), "redis://cache:6379");
    }
}
