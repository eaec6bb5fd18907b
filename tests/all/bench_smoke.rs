//! A small run of the overhead benchmark's workloads (`benches/overhead`), so that the
//! benchmark cannot rot: every variant, every workload, at concurrency 1 and 16, against the
//! same local server and OTLP sink the benchmark uses. No timing is asserted; every call
//! must succeed with its body whole, bodies must arrive byte for byte through every variant,
//! and every span produced must reach the sink over OTLP/gRPC.

#[path = "../../benches/overhead/workload.rs"]
mod workload;

use std::sync::Arc;

use workload::{Kind, Telemetry, Variant, KINDS, WORKLOADS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_and_workload_runs_and_exports() {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (server_addr, sink_addr) = (server.local_addr().unwrap(), sink.local_addr().unwrap());
    let stats = Arc::new(workload::SinkStats::default());
    tokio::spawn(workload::serve_gateway(server));
    tokio::spawn(workload::serve_sink(sink, Arc::clone(&stats)));

    let telemetry = Telemetry::to_sink(sink_addr);
    let mut expected_spans = 0;
    for kind in KINDS {
        let variant = Arc::new(Variant::new(kind, server_addr, &telemetry));
        for workload in WORKLOADS {
            // The bytes arrive unchanged through every variant.
            let url = workload::url(server_addr, workload);
            let body = workload::request_body(workload);
            let received = variant
                .call_bytes(&url, workload, &body)
                .with_subscriber(telemetry.dispatch.clone())
                .await
                .unwrap();
            assert!(
                received == workload.body(),
                "{} {}: body changed",
                kind.name(),
                workload.name()
            );
            expected_spans += kind.spans_per_call();
            for (concurrency, calls) in [(1, 40), (16, 160)] {
                let timings = workload::run(
                    Arc::clone(&variant),
                    server_addr,
                    workload,
                    concurrency,
                    calls,
                    None,
                    Some(telemetry.dispatch.clone()),
                )
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", kind.name(), workload.name()));
                assert_eq!(timings.len(), calls);
                if workload.streamed() {
                    assert!(timings.iter().all(|t| t.first_chunk.is_some()));
                }
                expected_spans += kind.spans_per_call() * calls as u64;
            }
        }
    }
    let provider = telemetry.tracer_provider.clone();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stats.spans(),
        expected_spans,
        "every span produced reaches the OTLP sink"
    );
    assert!(expected_spans > 0);
    let _ = Kind::Bare;
}

use tracing::instrument::WithSubscriber;
