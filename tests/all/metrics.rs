//! Metrics: what the instruments hold after real calls, read from an in-memory exporter.

use llm_gateway_otel::names::*;
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};

use crate::support::*;

pub(crate) struct Point {
    pub(crate) attrs: Vec<KeyValue>,
    /// Histogram count, or the counter/gauge value.
    pub(crate) count: f64,
    /// Histogram sum, or the counter/gauge value.
    pub(crate) sum: f64,
}

impl Point {
    pub(crate) fn has(&self, key: &str, value: &str) -> bool {
        self.attrs
            .iter()
            .any(|kv| kv.key.as_str() == key && kv.value.as_str() == value)
    }
}

/// The latest points of metric `name`.
pub(crate) fn points(exported: &[ResourceMetrics], name: &str) -> Vec<Point> {
    let Some(metric) = exported
        .iter()
        .rev()
        .flat_map(|rm| rm.scope_metrics())
        .flat_map(|sm| sm.metrics())
        .find(|m| m.name() == name)
    else {
        return Vec::new();
    };
    let attrs = |it: &mut dyn Iterator<Item = &KeyValue>| it.cloned().collect::<Vec<_>>();
    match metric.data() {
        AggregatedMetrics::F64(MetricData::Histogram(h)) => h
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.count() as f64,
                sum: p.sum(),
            })
            .collect(),
        AggregatedMetrics::U64(MetricData::Histogram(h)) => h
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.count() as f64,
                sum: p.sum() as f64,
            })
            .collect(),
        AggregatedMetrics::U64(MetricData::Sum(s)) => s
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.value() as f64,
                sum: p.value() as f64,
            })
            .collect(),
        AggregatedMetrics::F64(MetricData::Sum(s)) => s
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.value(),
                sum: p.value(),
            })
            .collect(),
        AggregatedMetrics::I64(MetricData::Gauge(g)) => g
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.value() as f64,
                sum: p.value() as f64,
            })
            .collect(),
        AggregatedMetrics::F64(MetricData::Gauge(g)) => g
            .data_points()
            .map(|p| Point {
                attrs: attrs(&mut p.attributes()),
                count: p.value(),
                sum: p.value(),
            })
            .collect(),
        other => panic!("{name}: unexpected data {other:?}"),
    }
}

#[tokio::test]
async fn calls_attempts_tokens_and_rate_limits_are_measured() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let sim = Simulator::start().await.unwrap();
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(sim.addr().to_string(), Region::EU)
        .meter(provider.meter("test"))
        .retry(llm_gateway_otel::retry::Retry::disabled()) // the 429 below reaches the caller
        .build()
        .unwrap();
    let client = client(middleware);

    let ok: serde_json::Value = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sim.inject(Fault::RateLimited { retry_after_s: 3 });
    let limited = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    drop(limited);
    let mut streamed = chat("gpt-4o-mini");
    streamed["stream"] = serde_json::json!(true);
    send_read(&client, &sim.chat_url(), &streamed).await;

    // The gateway falls back by itself: its rate-limit headers describe the serving model.
    let mut with_fallback = chat("claude-haiku-4-5");
    with_fallback["fallbacks"] = serde_json::json!([{"model": "gemini-2.5-flash"}]);
    sim.inject(Fault::Fallback);
    let served = client
        .post(sim.chat_url())
        .json(&with_fallback)
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["x-ratelimit-model"], "gemini-2.5-flash");
    served.bytes().await.unwrap();

    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();

    let calls = points(&exported, METRIC_OPERATION_DURATION);
    let claude_ok = calls
        .iter()
        .find(|p| {
            p.has(GEN_AI_REQUEST_MODEL, "claude-sonnet-4-6")
                && p.has(HTTP_RESPONSE_STATUS_CODE, "200")
        })
        .expect("a 200 point for claude");
    assert_eq!(claude_ok.count, 1.0);
    assert!(
        claude_ok.has(LLM_GATEWAY_REGION, "eu")
            && claude_ok.has(GEN_AI_RESPONSE_MODEL, "claude-sonnet-4-6")
    );
    assert!(
        claude_ok.has(GEN_AI_PROVIDER_NAME, PROVIDER_NAME)
            && claude_ok.has(GEN_AI_OPERATION_NAME, "chat")
    );
    let claude_429 = calls
        .iter()
        .find(|p| p.has(HTTP_RESPONSE_STATUS_CODE, "429"))
        .expect("a 429 point");
    assert!(claude_429.has(ERROR_TYPE, "429"));
    assert_eq!(calls.iter().map(|p| p.count).sum::<f64>(), 4.0);
    assert!(calls.iter().all(|p| p.sum > 0.0));

    let tokens = points(&exported, METRIC_TOKEN_USAGE);
    let input = tokens
        .iter()
        .find(|p| {
            p.has(GEN_AI_REQUEST_MODEL, "claude-sonnet-4-6") && p.has(GEN_AI_TOKEN_TYPE, "input")
        })
        .unwrap();
    assert_eq!(input.sum, ok["usage"]["input_tokens"].as_f64().unwrap());
    let output = tokens
        .iter()
        .find(|p| {
            p.has(GEN_AI_REQUEST_MODEL, "claude-sonnet-4-6") && p.has(GEN_AI_TOKEN_TYPE, "output")
        })
        .unwrap();
    assert_eq!(output.sum, ok["usage"]["output_tokens"].as_f64().unwrap());

    let ttfc = points(&exported, METRIC_TIME_TO_FIRST_CHUNK);
    assert_eq!(ttfc.len(), 1, "streamed calls only");
    assert!(ttfc[0].has(GEN_AI_REQUEST_MODEL, "gpt-4o-mini"));

    let attempts = points(&exported, METRIC_HTTP_CLIENT_DURATION);
    assert_eq!(attempts.iter().map(|p| p.count).sum::<f64>(), 4.0);
    assert!(attempts
        .iter()
        .all(|p| p.has(HTTP_REQUEST_METHOD, "POST") && p.has(SERVER_ADDRESS, "127.0.0.1")));

    let remaining = points(&exported, METRIC_RATE_LIMIT_REMAINING);
    let claude = remaining
        .iter()
        .find(|p| p.has(GEN_AI_REQUEST_MODEL, "claude-sonnet-4-6"))
        .unwrap();
    assert_eq!(
        claude.sum, 0.0,
        "the latest reading, from the 429, says none left"
    );
    assert!(
        remaining
            .iter()
            .any(|p| p.has(GEN_AI_REQUEST_MODEL, "gemini-2.5-flash")),
        "quota is reported for the model whose window it is"
    );
    assert!(!remaining
        .iter()
        .any(|p| p.has(GEN_AI_REQUEST_MODEL, "claude-haiku-4-5")));
    let limit = points(&exported, METRIC_RATE_LIMIT_LIMIT);
    assert!(
        limit.iter().all(|p| p.sum == 30.0),
        "the simulator's default limit"
    );
    assert!(!points(&exported, METRIC_RATE_LIMIT_RESET).is_empty());
}

/// A body that names the model only in its `request.model` echo: the span, the metric and
/// the report all record that echo as the serving model (they read it the same way).
#[tokio::test]
async fn the_served_model_falls_back_to_the_request_echo_everywhere() {
    use llm_gateway_otel::SupportReportExt as _;
    let capture = Capture::start();
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let body = br#"{"request_id":"req-echo","request":{"model":"echoed-model"},"choices":[]}"#;
    let addr = json_server(body, Ending::Close).await;
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(addr.to_string(), Region::US)
        .meter(provider.meter("test"))
        .build()
        .unwrap();
    let response = client(middleware)
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let report = response.support_report_handle().expect("a report handle");
    response.bytes().await.unwrap();

    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let calls = points(&exported, METRIC_OPERATION_DURATION);
    assert_eq!(calls.len(), 1);
    assert!(calls[0].has(GEN_AI_RESPONSE_MODEL, "echoed-model"));
    assert_eq!(
        attr_str(&capture.call(), GEN_AI_RESPONSE_MODEL).as_deref(),
        Some("echoed-model")
    );
    assert_eq!(
        report.report().model_served.as_deref(),
        Some("echoed-model")
    );
}

/// Calls with the same labels add up in one series, calls with other labels in theirs, and
/// with delta temporality each collection holds only what happened since the last one (the
/// middleware keeps each attribute set, and a handle bound to it, across calls).
#[tokio::test]
async fn repeated_calls_add_up_per_series_cumulative_and_delta() {
    use opentelemetry_sdk::metrics::{InMemoryMetricExporterBuilder, Temporality};
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let exporter = InMemoryMetricExporterBuilder::new()
            .with_temporality(temporality)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_periodic_exporter(exporter.clone())
            .build();
        let sim = Simulator::start().await.unwrap();
        let client = client(
            GatewayMiddleware::builder()
                .traced()
                .gateway_host(sim.addr().to_string(), Region::US)
                .meter(provider.meter("test"))
                .retry(llm_gateway_otel::retry::Retry::disabled())
                .build()
                .unwrap(),
        );
        let (client, url) = (&client, sim.chat_url());
        let url = &url;
        let call = |model: &'static str| async move { send_read(client, url, &chat(model)).await };
        let collect = || {
            exporter.reset();
            provider.force_flush().unwrap();
            exporter.get_finished_metrics().unwrap()
        };
        let count = |exported: &[ResourceMetrics], name: &str, model: &str, status: &str| {
            points(exported, name)
                .iter()
                .filter(|p| {
                    p.has(GEN_AI_REQUEST_MODEL, model) && p.has(HTTP_RESPONSE_STATUS_CODE, status)
                })
                .map(|p| p.count)
                .sum::<f64>()
        };

        for _ in 0..5 {
            assert_eq!(call("claude-sonnet-4-6").await, 200);
        }
        sim.inject(Fault::RateLimited { retry_after_s: 1 });
        assert_eq!(call("claude-sonnet-4-6").await, 429);
        assert_eq!(call("gpt-4o-mini").await, 200);
        let first = collect();
        assert_eq!(
            count(
                &first,
                METRIC_OPERATION_DURATION,
                "claude-sonnet-4-6",
                "200"
            ),
            5.0,
            "{temporality:?}"
        );
        assert_eq!(
            count(
                &first,
                METRIC_OPERATION_DURATION,
                "claude-sonnet-4-6",
                "429"
            ),
            1.0
        );
        assert_eq!(
            count(&first, METRIC_OPERATION_DURATION, "gpt-4o-mini", "200"),
            1.0
        );
        assert_eq!(
            count(
                &first,
                METRIC_HTTP_CLIENT_DURATION,
                "claude-sonnet-4-6",
                "200"
            ),
            5.0
        );
        let input_tokens = |exported: &[ResourceMetrics]| {
            points(exported, METRIC_TOKEN_USAGE)
                .iter()
                .filter(|p| {
                    p.has(GEN_AI_REQUEST_MODEL, "claude-sonnet-4-6")
                        && p.has(GEN_AI_TOKEN_TYPE, "input")
                })
                .map(|p| (p.count, p.sum))
                .collect::<Vec<_>>()
        };
        let (n, sum) = input_tokens(&first)[0];
        assert_eq!(n, 5.0, "one point per 200, none for the 429");
        let per_call = sum / 5.0;
        assert!(per_call > 0.0);

        // Nothing happened: a delta collection holds no call points at all.
        let idle = collect();
        if temporality == Temporality::Delta {
            assert!(
                points(&idle, METRIC_OPERATION_DURATION).is_empty(),
                "no stale series"
            );
            assert!(points(&idle, METRIC_TOKEN_USAGE).is_empty());
        } else {
            assert_eq!(
                count(&idle, METRIC_OPERATION_DURATION, "claude-sonnet-4-6", "200"),
                5.0
            );
        }

        for _ in 0..2 {
            assert_eq!(call("claude-sonnet-4-6").await, 200);
        }
        let later = collect();
        let expected = if temporality == Temporality::Delta {
            2.0
        } else {
            7.0
        };
        assert_eq!(
            count(
                &later,
                METRIC_OPERATION_DURATION,
                "claude-sonnet-4-6",
                "200"
            ),
            expected
        );
        assert_eq!(input_tokens(&later), vec![(expected, expected * per_call)]);
        assert_eq!(
            count(&later, METRIC_OPERATION_DURATION, "gpt-4o-mini", "200"),
            if temporality == Temporality::Delta {
                0.0
            } else {
                1.0
            }
        );
        assert!(
            points(&later, METRIC_TIME_TO_FIRST_CHUNK).is_empty(),
            "no stream, no series"
        );
    }
}

/// Sampling is how a service cuts the spans' export cost: calls whose spans the sampler
/// drops are still measured, every one of them.
#[tokio::test]
async fn calls_whose_spans_are_sampled_out_are_still_measured() {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .with_simple_exporter(spans.clone())
        .build();
    let exporter = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let sim = Simulator::start().await.unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .tracer_provider(&tracer_provider)
            .gateway_host(sim.addr().to_string(), Region::US)
            .meter(meter_provider.meter("test"))
            .retry(llm_gateway_otel::retry::Retry::disabled())
            .build()
            .unwrap(),
    );
    for fault in [None, Some(Fault::RateLimited { retry_after_s: 1 }), None] {
        if let Some(fault) = fault {
            sim.inject(fault);
        }
        send_read(&client, &sim.chat_url(), &chat("claude-sonnet-4-6")).await;
    }
    tracer_provider.force_flush().unwrap();
    assert!(
        spans.get_finished_spans().unwrap().is_empty(),
        "sampled out"
    );
    meter_provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let calls = points(&exported, METRIC_OPERATION_DURATION);
    assert_eq!(calls.iter().map(|p| p.count).sum::<f64>(), 3.0);
    assert!(calls
        .iter()
        .any(|p| p.has(HTTP_RESPONSE_STATUS_CODE, "429") && p.count == 1.0));
    let tokens = points(&exported, METRIC_TOKEN_USAGE);
    assert_eq!(
        tokens
            .iter()
            .filter(|p| p.has(GEN_AI_TOKEN_TYPE, "output"))
            .map(|p| p.count)
            .sum::<f64>(),
        2.0
    );
    assert!(!points(&exported, METRIC_RATE_LIMIT_REMAINING).is_empty());
}

/// `error.type` labels the call's duration, not its tokens: an answer whose usage arrived
/// before the connection broke counts its tokens with the calls that succeeded.
#[tokio::test]
async fn error_type_is_on_the_duration_only() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let body = br#"{"request_id":"req-1","model":"gpt-4o","usage":{"prompt_tokens":7,"completion_tokens":3},"choices":[]}"#;
    let addr = json_server(body, Ending::Abort).await;
    let client = client(
        GatewayMiddleware::builder()
            .gateway_host(addr.to_string(), Region::US)
            .meter(provider.meter("test"))
            .build()
            .unwrap(),
    );
    let response = post_chat(&client, addr).await;
    assert!(response.bytes().await.is_err(), "the body breaks off");
    provider.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let calls = points(&exported, METRIC_OPERATION_DURATION);
    assert_eq!(calls.len(), 1);
    let error_type = calls[0]
        .attrs
        .iter()
        .find(|kv| kv.key.as_str() == ERROR_TYPE)
        .map(|kv| kv.value.as_str().into_owned());
    assert!(
        error_type.is_some(),
        "the call failed: {:?}",
        calls[0].attrs
    );
    let tokens = points(&exported, METRIC_TOKEN_USAGE);
    assert_eq!(tokens.len(), 2, "input and output");
    for p in &tokens {
        assert!(
            p.attrs.iter().all(|kv| kv.key.as_str() != ERROR_TYPE),
            "{:?}",
            p.attrs
        );
    }
    assert_eq!(tokens.iter().map(|p| p.sum).sum::<f64>(), 10.0);
}
