//! A local simulator of AssemblyAI's LLM Gateway.
//!
//! It serves `POST /v1/chat/completions` (JSON answers, SSE for `gpt-*` models with
//! `"stream": true`), `GET /v1/models`, the three documented error shapes, per-model rate
//! limits with their headers, and injectable [`Fault`]s, on `127.0.0.1` at a free port.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use llm_gateway_simulator::{Fault, Region, Simulator};
//!
//! let sim = Simulator::builder()
//!     .region(Region::Eu)
//!     .api_key("test-key")
//!     .rate_limit_per_minute(2)
//!     .start()
//!     .await?;
//! sim.inject(Fault::Status(503)); // the next chat request gets a 503
//! println!("POST your requests to {}", sim.chat_url());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod fault;
mod server;
mod util;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

pub use fault::Fault;

/// The gateway region the simulator pretends to be.
///
/// ```
/// use llm_gateway_simulator::Region;
/// assert_eq!(Region::Eu.as_str(), "eu");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// `llm-gateway.assemblyai.com`: every model.
    Us,
    /// `llm-gateway.eu.assemblyai.com`: Claude and Gemini models only.
    Eu,
}

impl Region {
    /// `"us"` or `"eu"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
}

/// One HTTP request the simulator received (any path), as recorded by
/// [`Simulator::received`]. Header names are lowercase; the body is capped at 1 MiB.
///
/// ```no_run
/// # async fn demo(sim: llm_gateway_simulator::Simulator) {
/// for r in sim.received() {
///     println!("{} {} ({} body bytes)", r.method, r.path, r.body.len());
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The method, e.g. `"POST"`.
    pub method: String,
    /// The path without the query, e.g. `"/v1/chat/completions"`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header in order received; names lowercase, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The body (at most its first 1 MiB).
    pub body: Bytes,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Configures and starts a [`Simulator`]; from [`Simulator::builder`].
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::time::Duration;
/// use llm_gateway_simulator::Simulator;
/// let sim = Simulator::builder()
///     .rate_limit_per_minute(5)
///     .rate_limit_window(Duration::from_millis(500))
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    region: Region,
    api_key: Option<String>,
    limit: u32,
    window: Duration,
}

impl SimulatorBuilder {
    /// The region served (default [`Region::Us`]).
    pub fn region(mut self, r: Region) -> Self {
        self.region = r;
        self
    }

    /// Require this API key in `Authorization` (raw or `Bearer <key>`). Without it any key,
    /// or none, is accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Requests per model per window before 429s (default 30).
    pub fn rate_limit_per_minute(mut self, n: u32) -> Self {
        self.limit = n;
        self
    }

    /// Length of the rate-limit window (default 60 s). It starts at a model's first request.
    pub fn rate_limit_window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }

    /// Binds `127.0.0.1:0` and serves in a background tokio task. Must be called within a
    /// tokio runtime.
    pub async fn start(self) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            region: self.region,
            api_key: self.api_key,
            limit: self.limit,
            window: self.window,
            state: Mutex::new(State::default()),
        });
        let router = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Simulator { addr, shared, task })
    }
}

/// A running simulator. Dropping it stops accepting connections.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use llm_gateway_simulator::{Fault, Simulator};
/// let sim = Simulator::start().await?;
/// sim.inject_for_model("gpt-4o", Fault::RateLimited { retry_after_s: 2 });
/// // ... POST {"model":"gpt-4o","messages":[...]} to sim.chat_url() ...
/// assert_eq!(sim.request_count(), 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// A builder with the defaults (US, no key check, 30 requests per model per 60 s).
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            region: Region::Us,
            api_key: None,
            limit: 30,
            window: Duration::from_secs(60),
        }
    }

    /// Starts a simulator with the defaults.
    pub async fn start() -> std::io::Result<Simulator> {
        Self::builder().start().await
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base_url() + "/v1/chat/completions"`.
    pub fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.base_url())
    }

    /// `base_url() + "/v1/models"`.
    pub fn models_url(&self) -> String {
        format!("{}/v1/models", self.base_url())
    }

    /// The region served.
    pub fn region(&self) -> Region {
        self.shared.region
    }

    /// Queues a fault for the next chat request (FIFO). A request's `x-simulator-fault`
    /// header and faults queued for its model take precedence.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().global.push_back(fault);
    }

    /// Queues a fault for the next chat request naming `model` (FIFO per model); it takes
    /// precedence over [`inject`](Self::inject)ed faults.
    pub fn inject_for_model(&self, model: &str, fault: Fault) {
        self.shared
            .lock()
            .per_model
            .entry(model.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Every request received (any path), oldest first; the latest 10 000 are kept.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().received.iter().cloned().collect()
    }

    /// How many `POST /v1/chat/completions` requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.lock().chat_requests
    }

    /// Forgets every model's rate-limit window.
    pub fn reset_rate_limits(&self) {
        self.shared.lock().windows.clear();
    }
}

pub(crate) const MAX_RECEIVED: usize = 10_000;
pub(crate) const MAX_RECORDED_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) region: Region,
    pub(crate) api_key: Option<String>,
    pub(crate) limit: u32,
    pub(crate) window: Duration,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) global: VecDeque<Fault>,
    pub(crate) per_model: HashMap<String, VecDeque<Fault>>,
    pub(crate) received: VecDeque<ReceivedRequest>,
    pub(crate) chat_requests: usize,
    pub(crate) windows: HashMap<String, RateWindow>,
}

#[derive(Debug)]
pub(crate) struct RateWindow {
    pub(crate) start: tokio::time::Instant,
    pub(crate) count: u64,
}
