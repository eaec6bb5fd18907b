//! A dead, black-holing or restarting OTLP collector never fails or stalls a gateway call,
//! and shutting the exporter down stays within its timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_gateway_otel::export::{Init, TelemetryGuard};
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::Simulator;
use opentelemetry::trace::TracerProvider as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{chat, client};

/// Accepts connections and never answers; aborting the task closes everything.
async fn blackhole(addr: Option<SocketAddr>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// Sends `calls` gateway calls, 32 at a time, through a middleware whose spans and metrics
/// are exported to `endpoint`; `during` runs alongside. Returns how many calls succeeded
/// and how long the exporters took to shut down.
async fn calls_with_collector_at(
    endpoint: String,
    calls: usize,
    during: impl std::future::Future<Output = ()>,
) -> (usize, Duration) {
    let init = Init::from_env()
        .otlp_endpoint(endpoint)
        .otlp_timeout(Duration::from_millis(300));
    let meters = init.build_meter_provider().unwrap().expect("OTLP metrics");
    let traces = init.build_provider().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(traces.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let sim = Simulator::builder()
        .rate_limit_per_minute(u32::MAX)
        .start()
        .await
        .unwrap();
    let middleware = GatewayMiddleware::builder()
        .tracer_provider(&traces)
        .gateway_host(sim.addr().to_string(), Region::US)
        .meter(opentelemetry::metrics::MeterProvider::meter(
            &meters, "test",
        ))
        .build()
        .unwrap();
    let client = client(middleware);
    let send = futures_util::stream::iter(0..calls)
        .map(|_| {
            let client = client.clone();
            let url = sim.chat_url();
            async move {
                let response = client.post(url).json(&chat("gpt-4o")).send().await.ok()?;
                (response.status() == 200).then_some(())?;
                response.bytes().await.ok().map(|_| ())
            }
        })
        .buffer_unordered(32)
        .filter_map(|ok| async move { ok })
        .count();
    let (succeeded, ()) = tokio::join!(send, during);

    let guard = TelemetryGuard::new(Some(traces), Some(meters));
    let started = Instant::now();
    // Whether it flushed is up to the collector; that it returns in time is up to us.
    let _ = guard.shutdown(Duration::from_secs(2));
    (succeeded, started.elapsed())
}

#[tokio::test]
async fn a_refusing_collector_costs_no_call() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (ok, shutdown) = calls_with_collector_at(format!("http://{port}"), 2000, async {}).await;
    assert_eq!(ok, 2000);
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
}

#[tokio::test]
async fn a_black_hole_collector_costs_no_call() {
    let (addr, _hole) = blackhole(None).await;
    let (ok, shutdown) = calls_with_collector_at(format!("http://{addr}"), 2000, async {}).await;
    assert_eq!(ok, 2000);
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
}

#[tokio::test]
async fn a_collector_restarting_mid_run_costs_no_call() {
    let (addr, hole) = blackhole(None).await;
    let restart = async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        hole.abort();
        let _ = hole.await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, again) = blackhole(Some(addr)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        again.abort();
    };
    let (ok, shutdown) = calls_with_collector_at(format!("http://{addr}"), 2000, restart).await;
    assert_eq!(ok, 2000);
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
}

#[test]
fn a_bad_endpoint_is_an_error_at_setup_not_a_panic_later() {
    let init = Init::from_env().otlp_endpoint("not a url at all");
    let err = init.build_provider().expect_err("an error").to_string();
    assert!(err.contains("OTLP"), "{err}");
    let init = Init::from_env().otlp_endpoint("not a url at all");
    let err = init
        .build_meter_provider()
        .expect_err("an error")
        .to_string();
    assert!(err.contains("OTLP"), "{err}");
    // A good endpoint builds without a runtime (export threads bring their own).
    assert!(Init::from_env()
        .otlp_endpoint("http://127.0.0.1:4317")
        .build_provider()
        .is_ok());
}

/// `flush()` and `shutdown()` of the guard `init` returns keep their deadline (1 s here; the
/// OTLP export timeout is left at its 10 s) with a collector that accepts connections and
/// never answers, and say that export failed.
#[test]
fn flush_and_shutdown_keep_their_deadline_with_a_black_hole_collector() {
    let output = crate::support::run_child("collector", "black_hole_flush");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("flush: Err(timed out)"), "{stdout}");
    assert!(stdout.contains("shutdown: Err(timed out)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_black_hole_flush() {
    if !crate::support::is_child("black_hole_flush") {
        return;
    }
    let (addr, _hole) = blackhole(None).await;
    let deadline = Duration::from_secs(1);
    let guard = Init::from_env()
        .otlp_endpoint(format!("http://{addr}"))
        .export_deadline(deadline)
        .install()
        .expect("init");
    let (succeeded, ()) = some_calls(20).await;
    assert_eq!(succeeded, 20);

    let started = Instant::now();
    let flushed = guard.flush();
    let took = started.elapsed();
    assert!(
        flushed.as_ref().is_err_and(|e| e.timed_out()),
        "{flushed:?}"
    );
    assert!(
        took < deadline + Duration::from_millis(500),
        "flush took {took:?}"
    );
    println!("flush: Err(timed out) in {took:?}");

    let started = Instant::now();
    let shut = guard.shutdown(deadline);
    let took = started.elapsed();
    assert!(shut.as_ref().is_err_and(|e| e.timed_out()), "{shut:?}");
    assert!(
        took < deadline + Duration::from_millis(500),
        "shutdown took {took:?}"
    );
    println!("shutdown: Err(timed out) in {took:?}");
}

/// A collector that refuses connections: the flush says the exports failed (not a timeout).
#[test]
fn a_refusing_collector_makes_flush_say_export_failed() {
    let output = crate::support::run_child("collector", "refused_flush");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("flush: Err(failed)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_refused_flush() {
    if !crate::support::is_child("refused_flush") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let guard = Init::from_env()
        .otlp_endpoint(format!("http://{port}"))
        .install()
        .expect("init");
    let (succeeded, ()) = some_calls(20).await;
    assert_eq!(succeeded, 20);
    let flushed = guard.flush();
    let err = flushed.expect_err("the collector refused every export");
    assert!(!err.timed_out(), "{err}");
    assert!(err.to_string().contains("export"), "{err}");
    println!("flush: Err(failed): {err}");
    drop(guard);
}

/// `calls` gateway calls through the default middleware (global providers), all read.
async fn some_calls(calls: usize) -> (usize, ()) {
    let sim = Simulator::builder()
        .rate_limit_per_minute(u32::MAX)
        .start()
        .await
        .unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(sim.addr().to_string(), Region::US)
            .build()
            .unwrap(),
    );
    let mut ok = 0;
    for _ in 0..calls {
        let response = client
            .post(sim.chat_url())
            .json(&chat("gpt-4o"))
            .send()
            .await;
        if let Ok(response) = response {
            if response.status() == 200 && response.bytes().await.is_ok() {
                ok += 1;
            }
        }
    }
    (ok, ())
}
