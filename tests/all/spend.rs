//! Beyond status codes, over real HTTP against the simulator: what each call cost (priced
//! from the account's rate table, cached input at its own rate, also in streams), answers
//! without usage, a stream's time per output chunk, every 5xx the gateway sent even when a
//! retry cleared it, and the cap on the model names the metrics carry.

use std::collections::BTreeSet;
use std::time::Duration;

use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{GatewayMiddleware, Prices, Rates, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use reqwest_middleware::ClientWithMiddleware;

use crate::metrics::points;
use crate::support::*;

/// The account's rates in this file's tests (USD per 1M tokens).
fn prices() -> Prices {
    Prices::new()
        .model("claude-sonnet-4-6", Rates::new(3.0, 15.0).cache_read(0.3))
        .model("gpt-4o-mini", Rates::new(0.15, 0.6).cache_read(0.075))
        .model("claude-haiku-4-5", Rates::new(1.0, 5.0))
        .model("gemini-2.5-flash", Rates::new(0.3, 2.5))
}

/// Spans, metrics and a client on a US simulator, with `b`'s settings.
struct Bench {
    capture: Capture,
    exporter: InMemoryMetricExporter,
    provider: SdkMeterProvider,
    sim: Simulator,
    client: ClientWithMiddleware,
}

impl Bench {
    async fn start(b: llm_gateway_otel::GatewayMiddlewareBuilder) -> Bench {
        let capture = Capture::start();
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_periodic_exporter(exporter.clone())
            .build();
        let sim = Simulator::start().await.unwrap();
        let client = client(
            b.traced()
                .gateway_host(sim.addr().to_string(), Region::US)
                .meter(provider.meter("test"))
                .build()
                .unwrap(),
        );
        Bench {
            capture,
            exporter,
            provider,
            sim,
            client,
        }
    }

    /// Sends `body` with `headers` and reads the answer to its end.
    async fn send(&self, body: serde_json::Value, headers: &[(&str, &str)]) -> u16 {
        let mut rb = self.client.post(self.sim.chat_url()).json(&body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let response = rb.send().await.unwrap();
        let status = response.status().as_u16();
        response.bytes().await.unwrap();
        status
    }

    fn metrics(&self) -> Vec<opentelemetry_sdk::metrics::data::ResourceMetrics> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_metrics().unwrap()
    }

    /// The call span of `model`.
    fn span_of(&self, model: &str) -> opentelemetry_sdk::trace::SpanData {
        let calls: Vec<_> = self
            .capture
            .calls()
            .into_iter()
            .filter(|s| attr_str(s, GEN_AI_REQUEST_MODEL).as_deref() == Some(model))
            .collect();
        assert_eq!(calls.len(), 1, "one call of {model}");
        calls.into_iter().next().unwrap()
    }
}

fn streamed(model: &str) -> serde_json::Value {
    let mut body = chat(model);
    body["stream"] = serde_json::json!(true);
    body
}

fn near(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < 1e-12,
        "{what}: {got} USD, expected {want} USD"
    );
}

#[tokio::test]
async fn each_call_costs_what_the_rate_table_says_cached_input_at_its_rate_also_streamed() {
    let bench = Bench::start(GatewayMiddleware::builder().prices(prices())).await;
    // The simulator counts 6 input tokens ("What is the capital of France?"), of which the
    // header says 4 came from the prompt cache, and answers 6 output tokens (5 in a stream
    // of 5 chunks).
    let cached = [("x-simulator-cached-tokens", "4")];
    assert_eq!(bench.send(chat("claude-sonnet-4-6"), &cached).await, 200);
    assert_eq!(bench.send(streamed("gpt-4o-mini"), &cached).await, 200);
    let mut fallback = chat("gemini-2.5-flash");
    fallback["fallbacks"] = serde_json::json!([{"model": "claude-haiku-4-5"}]);
    assert_eq!(
        bench
            .send(fallback, &[("x-simulator-fault", "fallback")])
            .await,
        200
    );
    assert_eq!(bench.send(chat("gpt-4.1"), &[]).await, 200);

    // (2 × 3.00 + 4 × 0.30 + 6 × 15.00) / 1M = 0.0000972 USD.
    let sonnet = bench.span_of("claude-sonnet-4-6");
    near(
        attr_f64(&sonnet, LLM_GATEWAY_USAGE_COST_USD).unwrap(),
        97.2e-6,
        "sonnet",
    );
    assert_eq!(
        attr_i64(&sonnet, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        Some(4)
    );
    // The stream's usage chunk carries the cached tokens: (2 × 0.15 + 4 × 0.075 + 5 × 0.60) / 1M.
    let mini = bench.span_of("gpt-4o-mini");
    near(
        attr_f64(&mini, LLM_GATEWAY_USAGE_COST_USD).unwrap(),
        3.6e-6,
        "streamed mini",
    );
    assert_eq!(
        attr_i64(&mini, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        Some(4)
    );
    // Priced at the model that served the call: haiku (6 × 1.00 + 6 × 5.00) / 1M, not gemini.
    let fell_back = bench.span_of("gemini-2.5-flash");
    assert_eq!(
        attr_str(&fell_back, GEN_AI_RESPONSE_MODEL).as_deref(),
        Some("claude-haiku-4-5")
    );
    near(
        attr_f64(&fell_back, LLM_GATEWAY_USAGE_COST_USD).unwrap(),
        36e-6,
        "fallback",
    );
    // No price for gpt-4.1: no cost at all, never a 0.
    let unpriced = bench.span_of("gpt-4.1");
    assert_eq!(attr(&unpriced, LLM_GATEWAY_USAGE_COST_USD), None);
    assert_eq!(
        attr_str(&unpriced, LLM_GATEWAY_USAGE_SOURCE).as_deref(),
        Some(USAGE_SOURCE_REPORTED)
    );

    // The counter: USD by model, region and token type.
    let exported = bench.metrics();
    let cost = points(&exported, METRIC_COST);
    let usd = |model: &str, kind: &str| -> f64 {
        cost.iter()
            .filter(|p| p.has(GEN_AI_REQUEST_MODEL, model) && p.has(GEN_AI_TOKEN_TYPE, kind))
            .inspect(|p| assert!(p.has(LLM_GATEWAY_REGION, "us")))
            .map(|p| p.sum)
            .sum()
    };
    near(usd("claude-sonnet-4-6", "input"), 6e-6, "sonnet input");
    near(
        usd("claude-sonnet-4-6", "cache_read"),
        1.2e-6,
        "sonnet cache reads",
    );
    near(usd("claude-sonnet-4-6", "output"), 90e-6, "sonnet output");
    near(usd("gpt-4o-mini", "cache_read"), 0.3e-6, "mini cache reads");
    near(usd("gpt-4o-mini", "output"), 3e-6, "mini output");
    assert!(cost
        .iter()
        .any(|p| p.has(GEN_AI_REQUEST_MODEL, "gemini-2.5-flash")
            && p.has(GEN_AI_RESPONSE_MODEL, "claude-haiku-4-5")));
    assert!(!cost.iter().any(|p| p.has(GEN_AI_REQUEST_MODEL, "gpt-4.1")));
    let total: f64 = cost.iter().map(|p| p.sum).sum();
    near(total, 97.2e-6 + 3.6e-6 + 36e-6, "total spend");
}

#[tokio::test]
async fn an_answer_without_usage_is_counted_and_has_no_tokens_and_no_cost() {
    let bench = Bench::start(GatewayMiddleware::builder().prices(prices())).await;
    let no_usage = [("x-simulator-fault", "no-usage")];
    assert_eq!(bench.send(streamed("gpt-4o-mini"), &no_usage).await, 200);
    assert_eq!(bench.send(chat("claude-sonnet-4-6"), &no_usage).await, 200);
    assert_eq!(bench.send(chat("claude-haiku-4-5"), &[]).await, 200);

    for model in ["gpt-4o-mini", "claude-sonnet-4-6"] {
        let span = bench.span_of(model);
        assert_eq!(
            attr_str(&span, LLM_GATEWAY_USAGE_SOURCE).as_deref(),
            Some(USAGE_SOURCE_MISSING),
            "{model}"
        );
        assert_eq!(attr(&span, GEN_AI_USAGE_OUTPUT_TOKENS), None);
        assert_eq!(attr(&span, LLM_GATEWAY_USAGE_COST_USD), None, "{model}");
        assert_eq!(attr(&span, ERROR_TYPE), None, "an answer, not a failure");
    }
    let haiku = bench.span_of("claude-haiku-4-5");
    assert_eq!(
        attr_str(&haiku, LLM_GATEWAY_USAGE_SOURCE).as_deref(),
        Some(USAGE_SOURCE_REPORTED)
    );

    let exported = bench.metrics();
    let missing = points(&exported, METRIC_USAGE_MISSING);
    let count = |model: &str, streamed: &str| -> f64 {
        missing
            .iter()
            .filter(|p| {
                p.has(GEN_AI_REQUEST_MODEL, model) && p.has(LLM_GATEWAY_RESPONSE_STREAMED, streamed)
            })
            .map(|p| p.sum)
            .sum()
    };
    assert_eq!(count("gpt-4o-mini", "true"), 1.0);
    assert_eq!(count("claude-sonnet-4-6", "false"), 1.0);
    assert_eq!(missing.iter().map(|p| p.sum).sum::<f64>(), 2.0);
    // Tokens of the answers without usage are not made up.
    let tokens = points(&exported, METRIC_TOKEN_USAGE);
    assert!(!tokens
        .iter()
        .any(|p| p.has(GEN_AI_REQUEST_MODEL, "gpt-4o-mini")));
}

#[tokio::test]
async fn a_stream_records_its_time_per_output_chunk() {
    let bench = Bench::start(GatewayMiddleware::builder()).await;
    // 5 content chunks and the usage chunk, 30 ms apart.
    let headers = [
        ("x-simulator-chunks", "5"),
        ("x-simulator-chunk-delay-ms", "30"),
    ];
    assert_eq!(bench.send(streamed("gpt-4o-mini"), &headers).await, 200);
    assert_eq!(bench.send(chat("claude-sonnet-4-6"), &[]).await, 200);
    let exported = bench.metrics();
    let tpoc = points(&exported, METRIC_TIME_PER_OUTPUT_CHUNK);
    assert_eq!(tpoc.len(), 1, "streams only");
    assert!(tpoc[0].has(GEN_AI_REQUEST_MODEL, "gpt-4o-mini"));
    assert_eq!(tpoc[0].count, 1.0);
    let per_chunk = tpoc[0].sum;
    assert!(
        (0.025..0.2).contains(&per_chunk),
        "(end − first chunk) ÷ (6 − 1) with 30 ms between chunks: {per_chunk} s"
    );
}

#[tokio::test]
async fn a_5xx_that_a_retry_cleared_is_still_counted_per_attempt() {
    let bench = Bench::start(
        GatewayMiddleware::builder()
            .retry(Retry::default().backoff(Duration::from_millis(1), Duration::from_millis(5))),
    )
    .await;
    bench
        .sim
        .inject_for_model("claude-opus-4-1", Fault::Status(503));
    assert_eq!(bench.send(chat("claude-opus-4-1"), &[]).await, 200);
    let exported = bench.metrics();
    let attempts = points(&exported, METRIC_HTTP_CLIENT_DURATION);
    let by_status = |status: &str| -> f64 {
        attempts
            .iter()
            .filter(|p| p.has(HTTP_RESPONSE_STATUS_CODE, status))
            .map(|p| p.count)
            .sum()
    };
    assert_eq!(by_status("503"), 1.0, "the 503 the gateway sent");
    assert_eq!(by_status("200"), 1.0);
    let calls = points(&exported, METRIC_OPERATION_DURATION);
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].has(HTTP_RESPONSE_STATUS_CODE, "200"),
        "the call succeeded"
    );
}

/// The distinct `gen_ai.request.model` values of `name`'s points, and the count of the
/// points labelled `model`.
fn model_labels(
    exported: &[opentelemetry_sdk::metrics::data::ResourceMetrics],
    name: &str,
) -> BTreeSet<String> {
    points(exported, name)
        .iter()
        .flat_map(|p| p.attrs.iter())
        .filter(|kv| kv.key.as_str() == GEN_AI_REQUEST_MODEL)
        .map(|kv| kv.value.as_str().into_owned())
        .collect()
}

fn calls_of(
    exported: &[opentelemetry_sdk::metrics::data::ResourceMetrics],
    name: &str,
    model: &str,
) -> f64 {
    points(exported, name)
        .iter()
        .filter(|p| p.has(GEN_AI_REQUEST_MODEL, model))
        .map(|p| p.count)
        .sum()
}

#[tokio::test]
async fn three_hundred_junk_model_names_neither_flood_the_metrics_nor_keep_real_models_out() {
    let bench = Bench::start(
        GatewayMiddleware::builder()
            .retry(Retry::disabled())
            .prices(prices()),
    )
    .await;
    assert_eq!(bench.send(chat("claude-sonnet-4-6"), &[]).await, 200);
    let junk: Vec<String> = (0..300).map(|i| format!("junk-model-{i:03}")).collect();
    let sends = junk.iter().map(|m| bench.send(chat(m), &[]));
    for status in futures_util::future::join_all(sends).await {
        assert!((400..500).contains(&status), "{status}");
    }
    // Real models after the junk: labelled by their names (from the first answer on).
    let real = ["gemini-2.5-flash", "gpt-4o-mini", "claude-haiku-4-5"];
    for _ in 0..2 {
        for model in real {
            assert_eq!(bench.send(chat(model), &[]).await, 200);
        }
    }
    let exported = bench.metrics();
    // Names never answered with a 2xx hold at most half of the 100 slots: sonnet, 50 junk
    // names, the three real ones and `_other`.
    for name in [METRIC_OPERATION_DURATION, METRIC_HTTP_CLIENT_DURATION] {
        let models = model_labels(&exported, name);
        assert_eq!(models.len(), 55, "{name}: {models:?}");
        assert!(models.contains(OTHER_MODEL) && models.contains("claude-sonnet-4-6"));
        let series = points(&exported, name).len();
        assert!(series <= 2 * 101, "{name}: {series} series");
    }
    assert_eq!(
        calls_of(&exported, METRIC_OPERATION_DURATION, OTHER_MODEL),
        250.0,
        "every junk call past the cap is counted as _other"
    );
    for model in real {
        assert_eq!(
            calls_of(&exported, METRIC_OPERATION_DURATION, model),
            2.0,
            "{model}: both calls under its name"
        );
        assert!(
            points(&exported, METRIC_COST)
                .iter()
                .any(|p| p.has(GEN_AI_REQUEST_MODEL, model) && p.has(GEN_AI_RESPONSE_MODEL, model)),
            "{model}: its spend under its name"
        );
    }
    // Only the first attempt of each real model, sent while the unproven slots were full,
    // went to `_other`.
    assert_eq!(
        calls_of(&exported, METRIC_HTTP_CLIENT_DURATION, OTHER_MODEL),
        253.0
    );
    // Every span keeps its real name.
    let names: BTreeSet<String> = bench
        .capture
        .calls()
        .iter()
        .filter_map(|s| attr_str(s, GEN_AI_REQUEST_MODEL))
        .collect();
    assert_eq!(names.len(), 304);
    assert!(!names.contains(OTHER_MODEL));
}

#[tokio::test]
async fn models_that_answer_fill_every_slot_and_the_cap_is_bounded() {
    let bench = Bench::start(GatewayMiddleware::builder().max_model_labels(4)).await;
    for model in [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4o-mini",
        "gpt-5",
        "gemini-2.5-pro",
    ] {
        assert_eq!(bench.send(chat(model), &[]).await, 200);
    }
    let exported = bench.metrics();
    assert_eq!(
        model_labels(&exported, METRIC_OPERATION_DURATION),
        BTreeSet::from(
            ["gpt-4o", "gpt-4.1", "gpt-4o-mini", "gpt-5", OTHER_MODEL].map(str::to_owned)
        )
    );
    let err = GatewayMiddleware::builder()
        .max_model_labels(1_000_000)
        .build()
        .err()
        .expect("too many labels")
        .to_string();
    assert!(err.contains("max_model_labels"), "{err}");
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let bench = Bench::start(
        GatewayMiddleware::builder()
            .retry(Retry::disabled())
            .max_model_labels(2),
    )
    .await;
    for model in ["gpt-4o", "gpt-4.1", "gpt-4o-mini", "gpt-5"] {
        assert_eq!(bench.send(chat(model), &[]).await, 200);
    }
    let exported = bench.metrics();
    let models: BTreeSet<String> = points(&exported, METRIC_OPERATION_DURATION)
        .iter()
        .flat_map(|p| p.attrs.iter())
        .filter(|kv| {
            kv.key.as_str() == GEN_AI_REQUEST_MODEL || kv.key.as_str() == GEN_AI_RESPONSE_MODEL
        })
        .map(|kv| kv.value.as_str().into_owned())
        .collect();
    assert_eq!(
        models,
        BTreeSet::from(["gpt-4o".into(), "gpt-4.1".into(), OTHER_MODEL.into()])
    );
}

#[test]
fn a_bad_rate_table_fails_the_build_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("llm-gateway-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (text, says) in [
        ("{not json", "rate table"),
        (
            r#"{"models": {"m": {"input_per_million": -3, "output_per_million": 15}}}"#,
            "m.input_per_million is -3",
        ),
        (
            r#"{"models": {"m": {"input_per_million": 3, "output_per_million": 15, "cached_per_million": 1}}}"#,
            "unknown field `cached_per_million`",
        ),
    ] {
        let path = dir.join("prices.json");
        std::fs::write(&path, text).unwrap();
        let err = Prices::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("prices.json"), "{err}");
    }
    let err = GatewayMiddleware::builder()
        .prices(Prices::new().model("m", Rates::new(1.0, f64::INFINITY)))
        .build()
        .err()
        .expect("an infinite price is refused")
        .to_string();
    assert!(err.contains("m.output_per_million"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `LLM_GATEWAY_PRICES` is read at build: a good file prices calls, a bad one fails the
/// build (and `default()` panics saying why). In a child process: the variable is global.
#[test]
fn the_rate_table_file_named_by_the_environment_is_read_at_build() {
    run_child("spend", "prices_env");
}

#[tokio::test]
async fn child_prices_env() {
    if !is_child("prices_env") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("llm-gateway-prices-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"models": {"m": {"input_per_million": 1}}}"#).unwrap();
    std::env::set_var("LLM_GATEWAY_PRICES", &bad);
    let err = GatewayMiddleware::builder()
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("LLM_GATEWAY_PRICES") && err.contains("output_per_million"),
        "{err}"
    );
    let Err(panic) = std::panic::catch_unwind(GatewayMiddleware::default) else {
        panic!("default() with a bad rate table")
    };
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("LLM_GATEWAY_PRICES"), "{text}");

    let good = dir.join("good.json");
    std::fs::write(
        &good,
        r#"{"models": {"claude-sonnet-4-6": {"input_per_million": 3.0, "output_per_million": 15.0}}}"#,
    )
    .unwrap();
    std::env::set_var("LLM_GATEWAY_PRICES", &good);
    let bench = Bench::start(GatewayMiddleware::builder()).await;
    assert_eq!(bench.send(chat("claude-sonnet-4-6"), &[]).await, 200);
    let span = bench.span_of("claude-sonnet-4-6");
    near(
        attr_f64(&span, LLM_GATEWAY_USAGE_COST_USD).unwrap(),
        108e-6,
        "(6 × 3 + 6 × 15) / 1M",
    );
    std::fs::remove_dir_all(&dir).ok();
}
