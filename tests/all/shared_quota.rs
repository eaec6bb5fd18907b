//! Quota shared across replicas (feature `redis`), against a real `redis-server` this file
//! starts and stops (`scripts/redis.sh install` puts one in the cache; `.ci/run` does it):
//! several middleware instances, and several processes, pace one simulator window together;
//! the retry budget holds across them; Redis stopped mid-run fails no call, and sharing
//! resumes when it is back.
//!
//! Without an installed redis-server these tests say they were skipped, unless
//! `LLM_GATEWAY_E2E=1` (as in `.ci/run`): then a missing server fails them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::{BudgetConfig, Retry, SharedQuota};
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::Simulator;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use reqwest_middleware::ClientWithMiddleware;

use crate::metrics::points;
use crate::promql::repo_file;
use crate::support::*;

/// A redis-server of this test's own, on a free loopback port.
struct Redis {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one, or `None` (the test is skipped) when none is installed and the e2e run
    /// was not asked for.
    fn start() -> Option<Redis> {
        let bin = Command::new("bash")
            .arg(repo_file("scripts/redis.sh"))
            .arg("bin")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let Some(bin) = bin else {
            assert!(
                std::env::var("LLM_GATEWAY_E2E").as_deref() != Ok("1"),
                "no redis-server: run scripts/redis.sh install"
            );
            eprintln!("shared-quota test skipped: run scripts/redis.sh install");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = Redis {
            bin,
            port,
            child: None,
        };
        redis.restart();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port, empty, and waits until it answers PING.
    fn restart(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Redis Cluster of three primaries on loopback, made with `redis-cli --cluster create`.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Cluster {
    fn start(single: &Redis) -> Cluster {
        let dir = std::env::temp_dir().join(format!("llm-gateway-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = ports
            .iter()
            .map(|p| {
                Command::new(&single.bin)
                    .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
                    .args(["--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{p}.conf")])
                    .args(["--save", "", "--appendonly", "no"])
                    .current_dir(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("a cluster node starts")
            })
            .collect();
        let cluster = Cluster { nodes, ports, dir };
        for &port in &cluster.ports {
            let node = Redis {
                bin: single.bin.clone(),
                port,
                child: None,
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while !node.answers() {
                assert!(
                    Instant::now() < deadline,
                    "cluster node {port} did not answer"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let cli = single.bin.with_file_name("redis-cli");
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for p in &cluster.ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info = Command::new(&cli)
                .args(["-p", &cluster.ports[0].to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli runs");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A replica: its own client and middleware, pacing on, no retries (every 429 counts),
/// sharing through `shared` when given.
fn replica(
    sim: &Simulator,
    shared: Option<SharedQuota>,
    meter: Option<&SdkMeterProvider>,
) -> ClientWithMiddleware {
    let mut b = GatewayMiddleware::builder()
        .traced()
        .gateway_host(sim.addr().to_string(), Region::US)
        .retry(
            Retry::default()
                .pacing(true)
                .max_attempts(1)
                .max_wait(Duration::from_secs(10)),
        );
    if let Some(shared) = shared {
        b = b.shared_quota(shared);
    }
    if let Some(provider) = meter {
        b = b.meter(provider.meter("test"));
    }
    client(b.build().unwrap())
}

/// Where a call's pacing got its window (`llm_gateway.pacing.source`).
fn source(call: &opentelemetry_sdk::trace::SpanData) -> Option<String> {
    attr_str(call, LLM_GATEWAY_PACING_SOURCE)
}

/// Each test's keys apart from the others' (one Redis may serve several tests).
fn unique_prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Statuses of the calls `clients` send, each with `workers` sequential workers, for `run`.
async fn hammer(
    clients: &[ClientWithMiddleware],
    url: &str,
    workers: usize,
    run: Duration,
) -> BTreeMap<u16, usize> {
    let until = tokio::time::Instant::now() + run;
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        for _ in 0..workers {
            let (client, url) = (client.clone(), url.to_owned());
            tasks.spawn(async move {
                let mut statuses = Vec::new();
                while tokio::time::Instant::now() < until {
                    statuses.push(send_read(&client, &url, &chat("gpt-4o")).await);
                }
                statuses
            });
        }
    }
    let mut counts = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for status in done.expect("a worker") {
            *counts.entry(status).or_insert(0) += 1;
        }
    }
    counts
}

const LIMIT: u32 = 6;
const WINDOW: Duration = Duration::from_secs(2);
const RUN: Duration = Duration::from_secs(6);

/// Four replicas, three workers each, against one window of 6 calls per 2 s.
async fn four_replicas(shared: Option<SharedQuota>) -> BTreeMap<u16, usize> {
    let sim = Simulator::builder()
        .rate_limit_per_minute(LIMIT)
        .rate_limit_window(WINDOW)
        .start()
        .await
        .unwrap();
    let shared = shared.map(|s| s.key_prefix(unique_prefix()));
    let clients: Vec<_> = (0..4)
        .map(|_| replica(&sim, shared.clone(), None))
        .collect();
    // One call first: the window is known (to the store, or to the first replica alone).
    assert_eq!(
        send_read(&clients[0], &sim.chat_url(), &chat("gpt-4o")).await,
        200
    );
    hammer(&clients, &sim.chat_url(), 3, RUN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_one_window_earn_far_fewer_429s_and_keep_near_the_limit() {
    let Some(redis) = Redis::start() else { return };
    let capture = Capture::start();
    let local = four_replicas(None).await;
    let shared = four_replicas(Some(SharedQuota::new(redis.url()))).await;
    let (local_429, shared_429) = (
        local.get(&429).copied().unwrap_or(0),
        shared.get(&429).copied().unwrap_or(0),
    );
    let shared_ok = shared.get(&200).copied().unwrap_or(0);
    eprintln!("local pacing: {local:?}; shared pacing: {shared:?}");
    assert!(
        shared_429 <= 2,
        "shared pacing earned {shared_429} 429s: {shared:?}"
    );
    assert!(
        local_429 >= 10 && local_429 >= 5 * shared_429.max(1),
        "local pacing alone: {local:?}, shared: {shared:?}"
    );
    // Near the limit: 6 calls per 2 s window over 6 s is at most ~18 (+ the window the run
    // starts in); the waits for each reset cost a little.
    let most = (LIMIT as usize) * (RUN.as_secs() / WINDOW.as_secs()) as usize + LIMIT as usize;
    assert!(
        shared_ok * 10 >= most * 6,
        "shared pacing sent {shared_ok} successful calls, the limit allows about {most}"
    );
    // The spans say where pacing got its window and how long a call waited.
    let calls = capture.calls();
    let waited_shared = calls.iter().any(|s| {
        source(s).as_deref() == Some(PACING_SHARED)
            && attr_f64(s, LLM_GATEWAY_PACING_WAIT_S).is_some_and(|w| w > 0.0)
    });
    assert!(waited_shared, "a call waited for the shared window's reset");
    assert!(calls
        .iter()
        .any(|s| source(s).as_deref() == Some(PACING_LOCAL)));
}

/// The same through a Redis Cluster of three primaries: each script runs on the node that
/// holds its window's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_window_through_a_redis_cluster() {
    let Some(redis) = Redis::start() else { return };
    let cluster = Cluster::start(&redis);
    let capture = Capture::start();
    let shared = four_replicas(Some(SharedQuota::cluster(cluster.urls()))).await;
    eprintln!("shared pacing through a cluster: {shared:?}");
    assert!(shared.get(&429).copied().unwrap_or(0) <= 2, "{shared:?}");
    assert!(shared.get(&200).copied().unwrap_or(0) >= 15, "{shared:?}");
    assert!(capture
        .calls()
        .iter()
        .all(|s| source(s).as_deref() == Some(PACING_SHARED)));
    // The budget's slots (ten keys of one hash tag) through the cluster: a retried 503.
    let sim = Simulator::start().await.unwrap();
    let retrying = client(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .retry(Retry::default().backoff(Duration::from_millis(1), Duration::from_millis(2)))
            .shared_quota(SharedQuota::cluster(cluster.urls()).key_prefix(unique_prefix()))
            .build()
            .unwrap(),
    );
    sim.inject(llm_gateway_simulator::Fault::Status(503));
    assert_eq!(
        send_read(&retrying, &sim.chat_url(), &chat("gpt-4o")).await,
        200
    );
    let last = capture.calls().pop().unwrap();
    assert!(
        !last
            .events
            .iter()
            .any(|e| e.name == EVENT_SHARED_QUOTA_UNAVAILABLE),
        "{:?}",
        last.events
    );
    assert_eq!(
        capture.attempts_of(&last).len(),
        2,
        "the budget granted the retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_fails_no_call_and_sharing_resumes_when_it_is_back() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let capture = Capture::start();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let sim = Simulator::builder()
        .rate_limit_per_minute(1_000_000)
        .start()
        .await
        .unwrap();
    let (url, prefix) = (redis.url(), unique_prefix());
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let shared = SharedQuota::new(url.clone()).key_prefix(prefix.clone());
            replica(&sim, Some(shared), Some(&provider))
        })
        .collect();
    let source_of_last = || {
        let calls = capture.calls();
        source(calls.last().unwrap())
    };
    assert_eq!(
        send_read(&clients[0], &sim.chat_url(), &chat("gpt-4o")).await,
        200
    );
    assert_eq!(source_of_last().as_deref(), Some(PACING_SHARED));

    redis.stop();
    let started = Instant::now();
    let during = hammer(&clients, &sim.chat_url(), 2, Duration::from_millis(1500)).await;
    let took = started.elapsed();
    assert_eq!(
        during.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{during:?}"
    );
    assert!(
        during[&200] >= 20,
        "calls kept flowing: {during:?} in {took:?}"
    );
    assert_eq!(source_of_last().as_deref(), Some(PACING_LOCAL));
    let calls = capture.calls();
    let noted = calls
        .iter()
        .filter(|s| {
            s.events
                .iter()
                .any(|e| e.name == EVENT_SHARED_QUOTA_UNAVAILABLE)
        })
        .count();
    assert!(
        noted >= during[&200],
        "every call while Redis was away says so: {noted}"
    );
    provider.force_flush().unwrap();
    let unavailable: f64 = points(
        &exporter.get_finished_metrics().unwrap(),
        METRIC_SHARED_QUOTA_UNAVAILABLE,
    )
    .iter()
    .map(|p| p.sum)
    .sum();
    assert!(unavailable >= during[&200] as f64, "counted: {unavailable}");

    // Back: after the second the store is skipped, the calls share again.
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert_eq!(
            send_read(&clients[1], &sim.chat_url(), &chat("gpt-4o")).await,
            200
        );
        if source_of_last().as_deref() == Some(PACING_SHARED) {
            break;
        }
        assert!(Instant::now() < deadline, "sharing did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_not_there_costs_a_call_at_most_its_timeout() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    // Nothing listens on this port: refused at once; a black hole would cost the timeout.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let absent = SharedQuota::new(format!("redis://127.0.0.1:{port}"));
    let client = replica(&sim, Some(absent), None);
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(
            send_read(&client, &sim.chat_url(), &chat("gpt-4o")).await,
            200
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let calls = capture.calls();
    let event = calls[0]
        .events
        .iter()
        .find(|e| e.name == EVENT_SHARED_QUOTA_UNAVAILABLE)
        .expect("the first call says the store is away");
    assert!(event
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == LLM_GATEWAY_SHARED_QUOTA_OPERATION
            && kv.value.as_str() == "reserve"));
    assert!(calls
        .iter()
        .all(|s| source(s).as_deref() == Some(PACING_LOCAL)));
}

/// `rediss://`: the store over TLS (a redis-server with a self-signed certificate the test
/// makes with openssl; `#insecure` skips its verification, as only a test should).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_can_be_reached_over_tls() {
    let Some(redis) = Redis::start() else { return };
    let dir = std::env::temp_dir().join(format!("llm-gateway-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .current_dir(&dir)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("TLS test skipped: no openssl to make a certificate");
        return;
    }
    let port = free_port();
    let mut server = Command::new(&redis.bin)
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
        .args(["--tls-ca-cert-file", "cert.pem", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS port did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let shared = SharedQuota::new(format!("rediss://127.0.0.1:{port}/#insecure"))
        .key_prefix(unique_prefix())
        .timeout(Duration::from_millis(500));
    let client = replica(&sim, Some(shared), None);
    for _ in 0..3 {
        assert_eq!(
            send_read(&client, &sim.chat_url(), &chat("gpt-4o")).await,
            200
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let calls = capture.calls();
    assert!(
        calls
            .iter()
            .all(|s| source(s).as_deref() == Some(PACING_SHARED)),
        "{:?}",
        calls.iter().map(|s| &s.events).collect::<Vec<_>>()
    );
}

/// Three replicas whose every call fails with a 503: the shared budget lets retries add at
/// most its share of all their requests, where three local budgets let each replica retry
/// its own share plus its own floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_all_replicas_stay_within_one_budget() {
    let Some(redis) = Redis::start() else { return };
    let sim = Simulator::start().await.unwrap();
    let budget = BudgetConfig {
        ratio: 0.1,
        min_retries: 4,
        window: Duration::from_secs(30),
    };
    let retries_of = |shared: Option<String>| {
        let sim = &sim;
        async move {
            let prefix = unique_prefix();
            let clients: Vec<_> = (0..3)
                .map(|_| {
                    let mut b = GatewayMiddleware::builder()
                        .gateway_host(sim.addr().to_string(), Region::US)
                        .retry(
                            Retry::default()
                                .max_attempts(2)
                                .backoff(Duration::from_millis(1), Duration::from_millis(2))
                                .budget(budget),
                        );
                    if let Some(url) = &shared {
                        b = b
                            .shared_quota(SharedQuota::new(url.clone()).key_prefix(prefix.clone()));
                    }
                    client(b.build().unwrap())
                })
                .collect();
            let before = sim.request_count();
            let calls = 20;
            for _ in 0..calls {
                for c in &clients {
                    let status = c
                        .post(sim.chat_url())
                        .header("x-simulator-fault", "503")
                        .json(&chat("gpt-4o"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(status.status(), 503);
                    status.bytes().await.unwrap();
                }
            }
            sim.request_count() - before - 3 * calls
        }
    };
    let local = retries_of(None).await;
    let shared = retries_of(Some(redis.url())).await;
    // 60 requests: one shared budget allows 0.1 × 60 + 4 = 10 retries; three local ones
    // 3 × (0.1 × 20 + 4) = 18.
    assert!(shared <= 10, "shared budget: {shared} retries");
    assert!(
        local > shared,
        "local budgets: {local} retries, shared: {shared}"
    );
}

/// Separate processes, as replicas are: three children of this test binary pace one
/// simulator window through the store, and together earn (almost) no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_share_one_window() {
    let Some(redis) = Redis::start() else { return };
    let sim = Simulator::builder()
        .rate_limit_per_minute(LIMIT)
        .rate_limit_window(WINDOW)
        .start()
        .await
        .unwrap();
    let prefix = unique_prefix();
    // One call first, through the store: the window is known to every replica.
    let first = client(
        GatewayMiddleware::builder()
            .gateway_host(sim.addr().to_string(), Region::US)
            .retry(Retry::default().pacing(true).max_attempts(1))
            .shared_quota(SharedQuota::new(redis.url()).key_prefix(prefix.clone()))
            .build()
            .unwrap(),
    );
    assert_eq!(
        send_read(&first, &sim.chat_url(), &chat("gpt-4o")).await,
        200
    );
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "shared_quota::child_replica",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("LLM_GATEWAY_TEST_CHILD", "replica")
                .env("REPLICA_SIM", sim.addr().to_string())
                .env("REPLICA_REDIS", redis.url())
                .env("REPLICA_PREFIX", &prefix)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut totals: BTreeMap<u16, usize> = BTreeMap::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("replica statuses: ").map(|(_, counts)| counts))
            .unwrap_or_else(|| panic!("no counts in {stdout}"));
        let counts: BTreeMap<u16, usize> = serde_json::from_str(line).unwrap();
        for (status, n) in counts {
            *totals.entry(status).or_insert(0) += n;
        }
    }
    eprintln!("three processes: {totals:?}");
    assert!(totals.get(&429).copied().unwrap_or(0) <= 2, "{totals:?}");
    assert!(
        totals.get(&200).copied().unwrap_or(0) >= 2 * LIMIT as usize,
        "{totals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_replica() {
    if !is_child("replica") {
        return;
    }
    let sim_addr = std::env::var("REPLICA_SIM").unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(sim_addr.clone(), Region::US)
            .retry(
                Retry::default()
                    .pacing(true)
                    .max_attempts(1)
                    .max_wait(Duration::from_secs(10)),
            )
            .shared_quota(
                SharedQuota::new(std::env::var("REPLICA_REDIS").unwrap())
                    .key_prefix(std::env::var("REPLICA_PREFIX").unwrap()),
            )
            .build()
            .unwrap(),
    );
    let url = format!("http://{sim_addr}/v1/chat/completions");
    let counts = hammer(
        std::slice::from_ref(&client),
        &url,
        2,
        Duration::from_secs(5),
    )
    .await;
    let counts: BTreeMap<String, usize> = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    println!(
        "replica statuses: {}",
        serde_json::to_string(&counts).unwrap()
    );
}
