//! End to end, on the real thing: the crate's instruments export over OTLP gRPC to a real
//! collector (rotel) → vmagent → a real Prometheus 2.42 (`scripts/pipeline.sh start`); then
//! every query of every dashboard panel, every template variable and every alert rule runs
//! against that Prometheus and must return data, with the values the scripted traffic makes
//! known. Also `promtool check/test rules` and the dashboard's check against Grafana's schema.
//!
//! Runs only with `LLM_GATEWAY_E2E=1` (`.ci/run` sets it); then an unreachable pipeline fails.
//! Endpoints: `LLM_GATEWAY_OTLP_GRPC_ADDR` (127.0.0.1:4317), `LLM_GATEWAY_PROMETHEUS_ADDR`
//! (127.0.0.1:9090), as for the script.
//!
//! Every series this run writes carries `service_instance_id=<run id>` (a resource
//! attribute), and every query is run with that matcher added to each selector, so data from
//! earlier runs in the same Prometheus can neither hide a missing series nor skew a value.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{GatewayMiddleware, Prices, Rates, Region};
use llm_gateway_simulator::{Fault, Region as SimRegion, Simulator};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;
use reqwest_middleware::ClientWithMiddleware;
use serde_json::json;

use crate::promql::*;
use crate::support::{chat, client};

const TICK: Duration = Duration::from_millis(250);
const TICKS: usize = 32;
const EU_LIMIT: u32 = 20;
const RUN_LABEL: &str = "service_instance_id";

pub(crate) fn addr(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// One series of an instant-query result.
#[derive(Debug, Clone)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
    fn model_region(&self) -> (String, String) {
        (
            self.label("gen_ai_request_model").to_owned(),
            self.label("llm_gateway_region").to_owned(),
        )
    }
}

struct Prometheus {
    http: reqwest::Client,
    base: String,
    run: String,
    /// Evaluation time of every query (unix seconds), once the data is in: all panels are
    /// then read at one instant, as Grafana does for one refresh.
    at: Option<f64>,
}

impl Prometheus {
    /// Runs `expr` (with this run's matcher added) as an instant query.
    async fn query(&self, expr: &str) -> Vec<Sample> {
        let scoped = with_matcher(expr, RUN_LABEL, &self.run);
        let mut params = vec![("query", scoped.clone())];
        if let Some(at) = self.at {
            params.push(("time", format!("{at:.3}")));
        }
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.base), &params)
            .unwrap();
        let response = self.http.get(url).send().await.unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            status.is_success() && body["status"] == "success",
            "Prometheus rejected {scoped}: {body}"
        );
        assert_eq!(body["data"]["resultType"], "vector", "{scoped}");
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Sample {
                labels: r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect(),
                value: r["value"][1].as_str().unwrap().parse().unwrap(),
            })
            .collect()
    }

    /// Values of `label` over the series `selector` matches (what Grafana's `label_values`
    /// does through `/api/v1/series`).
    async fn label_values(&self, selector: &str, label: &str) -> BTreeSet<String> {
        let scoped = with_matcher(selector, RUN_LABEL, &self.run);
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/series", self.base),
            &[("match[]", scoped.as_str())],
        )
        .unwrap();
        let body: serde_json::Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{scoped}: {body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s[label].as_str().map(str::to_owned))
            .collect()
    }

    async fn scalar(&self, expr: &str) -> Option<f64> {
        self.query(expr).await.first().map(|s| s.value)
    }
}

/// Grafana's interpolation of the dashboard's variables, as its Prometheus data source does
/// it: `$__rate_interval`, and `$model` / `$region` inside regex matchers.
fn interpolate(expr: &str, rate_interval: &str, model: &str, region: &str) -> String {
    expr.replace("$__rate_interval", rate_interval)
        .replace("${model}", model)
        .replace("$model", model)
        .replace("${region}", region)
        .replace("$region", region)
}

/// What the scripted traffic sent, for the values the queries must show.
#[derive(Default, Debug)]
struct Sent {
    calls: u64,
    attempts: u64,
    retries: u64,
}

impl Sent {
    fn add(&mut self, calls: u64, retried: u64) {
        self.calls += calls;
        self.attempts += calls + retried;
        self.retries += retried;
    }
}

/// Waits until the latest samples of the cumulative counts equal what was sent (an exact
/// check of the whole path: nothing lost, nothing counted twice); returns the timestamp
/// (unix s) of the sample that showed it.
async fn wait_for_totals(prom: &Prometheus, sent: &Sent, what: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let want = (
        Some(sent.calls as f64),
        Some(sent.attempts as f64),
        Some(sent.retries as f64),
    );
    loop {
        let now = (
            prom.scalar("sum(gen_ai_client_operation_duration_seconds_count)")
                .await,
            prom.scalar("sum(http_client_request_duration_seconds_count)")
                .await,
            prom.scalar("sum(llm_gateway_client_retries_total)").await,
        );
        if now == want {
            return prom
                .scalar("max(timestamp(gen_ai_client_operation_duration_seconds_count))")
                .await
                .expect("a timestamp");
        }
        assert!(
            Instant::now() < deadline,
            "{what}: Prometheus holds (calls, attempts, retries) = {now:?}, sent {want:?}; is the \
             collector → vmagent → Prometheus chain running? (scripts/pipeline.sh status)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends one chat call and reads the body to its end (the call's metrics are recorded then).
async fn call(
    client: &ClientWithMiddleware,
    url: &str,
    body: serde_json::Value,
    fault: Option<&str>,
) -> u16 {
    let mut rb = client.post(url).json(&body);
    if let Some(f) = fault {
        rb = rb.header("x-simulator-fault", f);
    }
    let response = rb.send().await.expect("the simulator answers");
    let status = response.status().as_u16();
    response.bytes().await.expect("the body arrives");
    status
}

/// The rate table of the run (USD per 1M tokens; list prices of the day, so the rendered
/// dashboard shows believable spend). gpt-5 has no price (its answers carry no usage anyway).
fn prices() -> Prices {
    Prices::new()
        .model("gpt-4o", Rates::new(2.5, 10.0))
        .model("gpt-4o-mini", Rates::new(0.15, 0.6))
        .model("gpt-4.1", Rates::new(2.0, 8.0))
        .model("claude-sonnet-4-6", Rates::new(3.0, 15.0))
        .model("claude-opus-4-1", Rates::new(15.0, 75.0))
        .model("claude-haiku-4-5", Rates::new(1.0, 5.0))
        .model("gemini-2.5-flash", Rates::new(0.3, 2.5))
}

pub(crate) fn pipeline_dir() -> Option<std::path::PathBuf> {
    let out = Command::new("bash")
        .arg(repo_file("scripts/pipeline.sh"))
        .arg("dir")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().into())
}

fn promtool() -> String {
    if let Some(dir) = pipeline_dir() {
        let p = dir.join("prometheus/usr/bin/promtool");
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    "promtool".to_owned()
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run ({e}); run scripts/pipeline.sh install"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_returns_data_from_a_real_pipeline() {
    if std::env::var("LLM_GATEWAY_E2E").as_deref() != Ok("1") {
        eprintln!(
            "e2e skipped: set LLM_GATEWAY_E2E=1 after `scripts/pipeline.sh install && scripts/pipeline.sh start`"
        );
        return;
    }
    let started = Instant::now();

    // ---- static checks with the real tools --------------------------------------------
    let promtool = promtool();
    run_ok(
        Command::new(&promtool)
            .args(["check", "rules"])
            .arg(repo_file(ALERTS)),
        "promtool check rules",
    );
    let unit = run_ok(
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(repo_file("dashboards/alerts.test.yml")),
        "promtool test rules",
    );
    assert!(unit.contains("SUCCESS"), "{unit}");
    run_ok(
        Command::new("bash")
            .arg(repo_file("scripts/pipeline.sh"))
            .arg("validate-dashboards"),
        "dashboard JSON against @grafana/schema",
    );

    // ---- the pipeline must be there ----------------------------------------------------
    let prom_addr = addr("LLM_GATEWAY_PROMETHEUS_ADDR", "127.0.0.1:9090");
    let otlp_addr = addr("LLM_GATEWAY_OTLP_GRPC_ADDR", "127.0.0.1:4317");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ready = http
        .get(format!("http://{prom_addr}/-/ready"))
        .send()
        .await
        .map(|r| r.status().is_success());
    assert!(
        matches!(ready, Ok(true)),
        "Prometheus is not ready at {prom_addr} ({ready:?}): run scripts/pipeline.sh start"
    );
    tokio::net::TcpStream::connect(&otlp_addr)
        .await
        .unwrap_or_else(|e| {
            panic!("no OTLP receiver at {otlp_addr} ({e}): run scripts/pipeline.sh start")
        });

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let run = format!("e2e-{}-{nanos}", std::process::id());
    let mut prom = Prometheus {
        http,
        base: format!("http://{prom_addr}"),
        run: run.clone(),
        at: None,
    };

    // ---- the crate's instruments, exported over OTLP gRPC every second ----------------
    // (The SDK directly rather than `export::Init`, which reads the endpoint and interval from
    // process-wide OTEL_* variables that the other tests of this binary must not see.)
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{otlp_addr}"))
        .build()
        .unwrap();
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("llm-gateway-otel-e2e")
                .with_attribute(KeyValue::new("service.instance.id", run.clone()))
                .build(),
        )
        .with_reader(
            PeriodicReader::builder(exporter)
                .with_interval(Duration::from_secs(1))
                .build(),
        )
        .build();

    let us = Arc::new(
        Simulator::builder()
            .region(SimRegion::Us)
            .rate_limit_per_minute(100_000)
            .start()
            .await
            .unwrap(),
    );
    let eu = Arc::new(
        Simulator::builder()
            .region(SimRegion::Eu)
            .rate_limit_per_minute(EU_LIMIT)
            .start()
            .await
            .unwrap(),
    );
    let middleware = GatewayMiddleware::builder()
        .gateway_host(us.addr().to_string(), Region::US)
        .gateway_host(eu.addr().to_string(), Region::EU)
        .meter(provider.meter("llm_gateway_otel"))
        .prices(prices())
        .retry(
            Retry::default()
                .max_attempts(2)
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .no_budget(),
        )
        .build()
        .unwrap();
    let client = client(middleware);

    let us_url = us.chat_url();
    let eu_url = eu.chat_url();
    let mut sent = Sent::default();

    // ---- warm-up: one call of every kind, then wait until Prometheus has it --------------
    // A counter series' first sample is its baseline: `rate()` never counts the increments
    // before it. Creating every series before the measured traffic makes the shares below
    // exact instead of "minus one call per series".
    {
        let mut stream = chat("gpt-4o-mini");
        stream["stream"] = json!(true);
        let mut fallback = chat("gemini-2.5-flash");
        fallback["fallbacks"] = json!([{"model": "claude-haiku-4-5"}]);
        let mut no_usage = chat("gpt-5");
        no_usage["stream"] = json!(true);
        let warm: Vec<(&str, serde_json::Value, Option<&str>, u16, u64)> = vec![
            (&us_url, no_usage, Some("no-usage"), 200, 0),
            (&us_url, chat("gpt-4o"), None, 200, 0),
            (&us_url, chat("gpt-4o"), Some("429"), 429, 1),
            (&us_url, chat("claude-sonnet-4-6"), None, 200, 0),
            (&us_url, chat("claude-sonnet-4-6"), Some("429"), 429, 1),
            (&us_url, chat("gpt-4.1"), None, 200, 0),
            (&us_url, chat("gpt-4.1"), Some("500"), 500, 1),
            (&us_url, chat("gpt-4.1"), Some("503"), 503, 1),
            (&us_url, stream, None, 200, 0),
            (&us_url, chat("gemini-2.5-flash"), None, 200, 0),
            (&us_url, fallback, Some("fallback"), 200, 0),
            (&eu_url, chat("claude-haiku-4-5"), None, 200, 0),
            (&eu_url, chat("claude-sonnet-4-6"), None, 200, 0),
            (&eu_url, chat("gpt-4o"), None, 404, 0),
        ];
        let mut set = tokio::task::JoinSet::new();
        for (url, body, fault, want, retried) in warm {
            sent.add(1, retried);
            let (client, url, fault) = (client.clone(), url.to_owned(), fault.map(str::to_owned));
            set.spawn(async move {
                let status = call(&client, &url, body, fault.as_deref()).await;
                assert_eq!(status, want, "warm-up {fault:?}");
            });
        }
        us.inject_for_model("claude-opus-4-1", Fault::Status(503));
        assert_eq!(
            call(&client, &us_url, chat("claude-opus-4-1"), None).await,
            200
        );
        sent.add(1, 1);
        while let Some(done) = set.join_next().await {
            done.expect("a warm-up call failed");
        }
    }
    // The first sample holding the whole warm-up is where the measured traffic's rates start.
    let baseline_at = wait_for_totals(&prom, &sent, "warm-up").await;
    let warmed = started.elapsed();

    // ---- the scripted mix: lanes of calls, one every 250 ms for 8 s ----------------------
    // US (no natural rate limiting):
    //   gpt-4o            every 4th call a 429 (Retry-After: 1): retried once, still 429 → 8 of 33 calls
    //   claude-sonnet-4-6 every 16th call a 429 → 2 of 33, under the alert's 10%
    //   (33: one success each after the lanes)
    //   gpt-4.1           every 5th call a 500 or 503: retried once with backoff, still failing
    //   gpt-4o-mini       streamed (SSE): time to first chunk
    //   gemini-2.5-flash  every 2nd call served by the fallback claude-haiku-4-5
    //   claude-opus-4-1   every call's first attempt a 503, the retry succeeds: 2 attempts per call
    //   gpt-5             every 4th tick a stream that ends without its usage chunk
    // EU (limit 20/min/model):
    //   claude-haiku-4-5  18 calls in sequence (19 with the warm-up): 1 of 20 left
    //   claude-sonnet-4-6 8 calls (9 with the warm-up): 11 of 20 left
    //   gpt-4o            16 calls, 404 (not served in the EU)
    let mut tasks = tokio::task::JoinSet::new();
    let mut plan = |calls: u64, retried: u64| sent.add(calls, retried);
    plan(TICKS as u64, (TICKS / 4) as u64); // gpt-4o
    plan(TICKS as u64, (TICKS / 16) as u64); // claude-sonnet-4-6
    plan(TICKS as u64, (TICKS as u64).div_ceil(5)); // gpt-4.1
    plan(TICKS as u64, 0); // gpt-4o-mini
    plan(TICKS as u64, 0); // gemini-2.5-flash
    plan(TICKS as u64, TICKS as u64); // claude-opus-4-1
    plan(u64::from(EU_LIMIT) - 2, 0); // claude-haiku-4-5 (eu)
    plan((TICKS / 4) as u64, 0); // claude-sonnet-4-6 (eu)
    plan((TICKS / 2) as u64, 0); // gpt-4o (eu)
    plan((TICKS / 4) as u64, 0); // gpt-5 (no usage)

    // Sequential lanes (their order matters): opus with one queued 503 per call, haiku in EU.
    {
        let (client, us, url) = (client.clone(), us.clone(), us_url.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..TICKS {
                tick.tick().await;
                us.inject_for_model("claude-opus-4-1", Fault::Status(503));
                let status = call(&client, &url, chat("claude-opus-4-1"), None).await;
                assert_eq!(status, 200, "the retry after a 503 succeeds");
            }
        });
    }
    {
        let (client, url) = (client.clone(), eu_url.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            for _ in 0..EU_LIMIT - 2 {
                tick.tick().await;
                let status = call(&client, &url, chat("claude-haiku-4-5"), None).await;
                assert_eq!(status, 200);
            }
        });
    }
    // Lanes whose calls may overlap (a retry waits 1 s): one task per call, on the tick.
    let mut tick = tokio::time::interval(TICK);
    for i in 0..TICKS {
        tick.tick().await;
        let mut spawn = |url: &str, body: serde_json::Value, fault: Option<String>, want: u16| {
            let (client, url) = (client.clone(), url.to_owned());
            tasks.spawn(async move {
                let status = call(&client, &url, body, fault.as_deref()).await;
                assert_eq!(status, want, "{fault:?}");
            });
        };
        let (f, w) = if i % 4 == 0 {
            (Some("429".to_owned()), 429)
        } else {
            (None, 200)
        };
        spawn(&us_url, chat("gpt-4o"), f, w);
        let (f, w) = if i % 16 == 0 {
            (Some("429".to_owned()), 429)
        } else {
            (None, 200)
        };
        spawn(&us_url, chat("claude-sonnet-4-6"), f, w);
        let (f, w) = match (i % 5, (i / 5) % 2) {
            (0, 0) => (Some("500".to_owned()), 500),
            (0, _) => (Some("503".to_owned()), 503),
            _ => (None, 200),
        };
        spawn(&us_url, chat("gpt-4.1"), f, w);
        let mut stream = chat("gpt-4o-mini");
        stream["stream"] = json!(true);
        spawn(&us_url, stream, None, 200);
        let mut gemini = chat("gemini-2.5-flash");
        let fault = if i % 2 == 0 {
            gemini["fallbacks"] = json!([{"model": "claude-haiku-4-5"}]);
            Some("fallback".to_owned())
        } else {
            None
        };
        spawn(&us_url, gemini, fault, 200);
        if i % 4 == 0 {
            spawn(&eu_url, chat("claude-sonnet-4-6"), None, 200);
            let mut no_usage = chat("gpt-5");
            no_usage["stream"] = json!(true);
            spawn(&us_url, no_usage, Some("no-usage".to_owned()), 200);
        }
        if i % 2 == 0 {
            spawn(&eu_url, chat("gpt-4o"), None, 404);
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a lane failed");
    }
    // A 429 says `X-RateLimit-Remaining: 0`; the latest reading of the models that had them
    // is made a success, so the headroom alert's firing set is known.
    for model in ["gpt-4o", "claude-sonnet-4-6"] {
        assert_eq!(call(&client, &us_url, chat(model), None).await, 200);
        plan(1, 0);
    }
    let traffic = started.elapsed() - warmed;

    // Export what is left, then stop exporting.
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .expect("metrics flushed to the collector");

    // ---- wait until the last export is in Prometheus ------------------------------------
    let last_at = wait_for_totals(&prom, &sent, "scripted mix").await;
    let totals = (sent.calls, sent.attempts, sent.retries);
    let landed = started.elapsed();
    // Every query at one instant, just after the last sample; `$__rate_interval` reaches
    // back to just before the warm-up's last sample, so each rate covers exactly the scripted
    // mix (Grafana sizes it from the scrape interval; any window works for the queries).
    let at = last_at + 0.5;
    prom.at = Some(at);
    let rate_interval = format!("{}ms", ((at - baseline_at + 0.5) * 1000.0).round());
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .unwrap();

    // ---- every panel query, with "All" selected -------------------------------------------
    let dashboard = dashboard();
    let panels = panel_queries(&dashboard);
    let mut results: BTreeMap<String, Vec<Vec<Sample>>> = BTreeMap::new();
    for q in &panels {
        let expr = interpolate(&q.expr, &rate_interval, ".*", ".*");
        let samples = prom.query(&expr).await;
        assert!(
            !samples.is_empty(),
            "panel {:?} {} returned no data:\n{expr}",
            q.panel,
            q.ref_id
        );
        results.entry(q.panel.clone()).or_default().push(samples);
    }
    let panel = |title: &str| -> &Vec<Vec<Sample>> {
        results
            .iter()
            .find(|(t, _)| t.starts_with(title))
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no panel {title:?}"))
    };
    let by_mr = |samples: &[Sample]| -> BTreeMap<(String, String), f64> {
        samples
            .iter()
            .map(|s| (s.model_region(), s.value))
            .collect()
    };
    let mr = |m: &str, r: &str| (m.to_owned(), r.to_owned());
    let near = |got: f64, want: f64, tol: f64, what: &str| {
        assert!(
            (got - want).abs() <= tol,
            "{what}: {got} is not {want} ± {tol}"
        );
    };
    let mut values_checked = 0;

    // The 429 share of calls per model and region is what the simulator was told to inject.
    let share429 = by_mr(&panel("429 share of calls")[0]);
    for (key, want) in [
        (mr("gpt-4o", "us"), 8.0 / 33.0),
        (mr("claude-sonnet-4-6", "us"), 2.0 / 33.0),
        (mr("gpt-4.1", "us"), 0.0),
        (mr("claude-haiku-4-5", "eu"), 0.0),
    ] {
        let got = *share429
            .get(&key)
            .unwrap_or_else(|| panic!("no 429 share for {key:?}: {share429:?}"));
        near(got, want, 0.02, &format!("429 share of {key:?}"));
        values_checked += 1;
    }
    // 429s as the gateway sent them: two attempts per rate-limited call.
    let rate429 = by_mr(&panel("429 rate")[0]);
    assert_eq!(
        rate429.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([mr("gpt-4o", "us"), mr("claude-sonnet-4-6", "us")])
    );
    values_checked += 1;
    // Error share (SLO view).
    let errors = by_mr(&panel("Error share by model")[0]);
    for (key, want) in [
        (mr("gpt-4o", "us"), 8.0 / 33.0),
        (mr("gpt-4.1", "us"), 7.0 / 32.0),
        (mr("gpt-4o", "eu"), 1.0),
        (mr("claude-opus-4-1", "us"), 0.0),
        (mr("gemini-2.5-flash", "us"), 0.0),
    ] {
        near(errors[&key], want, 0.02, &format!("error share of {key:?}"));
        values_checked += 1;
    }
    // 5xx by status code; 4xx other than 429.
    let by_status = |samples: &[Sample]| -> BTreeSet<(String, String, String)> {
        samples
            .iter()
            .map(|s| {
                let (m, r) = s.model_region();
                (m, r, s.label("http_response_status_code").to_owned())
            })
            .collect()
    };
    let fivexx = by_status(&panel("5xx rate")[0]);
    assert_eq!(
        fivexx,
        BTreeSet::from([
            ("gpt-4.1".into(), "us".into(), "500".into()),
            ("gpt-4.1".into(), "us".into(), "503".into())
        ]),
        "the opus 503s were rescued by a retry: not a failed call"
    );
    values_checked += 1;
    // Every 5xx the gateway sent, per attempt: opus's 503s, which its retries cleared, too.
    let fivexx_sent = by_status(&panel("5xx per attempt")[0]);
    assert_eq!(
        fivexx_sent,
        BTreeSet::from([
            ("gpt-4.1".into(), "us".into(), "500".into()),
            ("gpt-4.1".into(), "us".into(), "503".into()),
            ("claude-opus-4-1".into(), "us".into(), "503".into()),
        ])
    );
    let opus_503 = panel("5xx per attempt")[0]
        .iter()
        .find(|s| s.label("gen_ai_request_model") == "claude-opus-4-1")
        .map(|s| s.value)
        .unwrap();
    values_checked += 1;
    let fourxx = by_status(&panel("4xx other than 429")[0]);
    assert_eq!(
        fourxx,
        BTreeSet::from([("gpt-4o".into(), "eu".into(), "404".into())])
    );
    values_checked += 1;
    // Request rate: every lane, in both regions.
    let rates = by_mr(&panel("Request rate")[0]);
    assert_eq!(rates.len(), 10, "{rates:?}");
    let total_rate: f64 = rates.values().sum();
    let overall = panel("Calls / s")[0][0].value;
    near(
        overall,
        total_rate,
        1e-9,
        "Calls / s = sum of the per-model rates",
    );
    // Over a window longer than the run, a rate is (calls ÷ window): compare the lanes.
    let mini = rates[&mr("gpt-4o-mini", "us")];
    for (key, calls) in [
        (mr("gpt-4o", "us"), TICKS + 1),
        (mr("claude-opus-4-1", "us"), TICKS),
        (mr("claude-haiku-4-5", "eu"), EU_LIMIT as usize - 2),
        (mr("claude-sonnet-4-6", "eu"), TICKS / 4),
        (mr("gpt-4o", "eu"), TICKS / 2),
        (mr("gpt-5", "us"), TICKS / 4),
    ] {
        let want = calls as f64 / TICKS as f64;
        near(
            rates[&key] / mini,
            want,
            want * 0.1,
            &format!("{key:?} rate ÷ gpt-4o-mini's"),
        );
    }
    values_checked += 7;
    // One 503 per opus call, sent and cleared: its per-attempt 5xx rate is its call rate.
    near(
        opus_503 / rates[&mr("claude-opus-4-1", "us")],
        1.0,
        0.1,
        "opus 503s per call",
    );
    values_checked += 1;
    // Latency: percentiles ordered, per model; time to first chunk for the streamed model only.
    let latency = panel("Latency");
    let p = |i: usize| -> BTreeMap<String, f64> {
        latency[i]
            .iter()
            .map(|s| (s.label("gen_ai_request_model").to_owned(), s.value))
            .collect()
    };
    let (p50, p95, p99) = (p(0), p(1), p(2));
    assert!(p50.len() >= 6, "{p50:?}");
    for (m, v50) in &p50 {
        assert!(
            *v50 > 0.0 && *v50 <= p95[m] && p95[m] <= p99[m],
            "{m}: p50 {v50} p95 {} p99 {}",
            p95[m],
            p99[m]
        );
    }
    // Opus's successes include a retry's backoff (≥ 10 ms): slower than gpt-4o-mini's.
    assert!(p50["claude-opus-4-1"] > p50["gpt-4o"], "{p50:?}");
    values_checked += 2;
    let ttfc: BTreeSet<String> = panel("Time to first chunk")
        .iter()
        .flatten()
        .map(|s| s.label("gen_ai_request_model").to_owned())
        .collect();
    assert_eq!(
        ttfc,
        BTreeSet::from(["gpt-4o-mini".to_owned(), "gpt-5".to_owned()])
    );
    values_checked += 1;
    // Time per output chunk: the streams, each of several chunks sent at once.
    let tpoc = panel("Time per output chunk");
    let tpoc_models: BTreeSet<String> = tpoc
        .iter()
        .flatten()
        .map(|s| s.label("gen_ai_request_model").to_owned())
        .collect();
    assert_eq!(tpoc_models, ttfc);
    assert!(
        tpoc.iter()
            .flatten()
            .all(|s| s.value > 0.0 && s.value < 0.1),
        "{tpoc:?}"
    );
    values_checked += 1;
    // Answers without usage: exactly the gpt-5 streams, all of them.
    let missing = &panel("Answers without usage")[0];
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].model_region(), mr("gpt-5", "us"));
    assert_eq!(missing[0].label("llm_gateway_response_streamed"), "true");
    near(
        missing[0].value / rates[&mr("gpt-5", "us")],
        1.0,
        0.05,
        "every gpt-5 answer lacked usage",
    );
    let missing_share = by_mr(&panel("Share of 2xx calls without usage")[0]);
    near(missing_share[&mr("gpt-5", "us")], 1.0, 0.02, "gpt-5 share");
    near(
        missing_share[&mr("gpt-4o-mini", "us")],
        0.0,
        1e-9,
        "mini share",
    );
    near(
        missing_share[&mr("claude-haiku-4-5", "eu")],
        0.0,
        1e-9,
        "haiku share",
    );
    values_checked += 3;
    // Spend: per served model, from the rate table; the total is their sum.
    let spend: BTreeMap<String, f64> = panel("Spend per model")[0]
        .iter()
        .map(|s| (s.label("gen_ai_response_model").to_owned(), s.value))
        .collect();
    assert_eq!(
        spend.keys().cloned().collect::<BTreeSet<_>>(),
        [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "claude-sonnet-4-6",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "gemini-2.5-flash",
        ]
        .map(str::to_owned)
        .into(),
        "no spend for gpt-5 (no usage) or the EU 404s"
    );
    let total_spend = panel("Total spend")[0][0].value;
    near(
        total_spend,
        spend.values().sum(),
        total_spend * 1e-9,
        "total spend = sum per model",
    );
    // 32 opus calls at (6 × 15 + 6 × 75) / 1M and 32 mini streams at (6 × 0.15 + 5 × 0.6) / 1M.
    near(
        spend["claude-opus-4-1"] / spend["gpt-4o-mini"],
        540.0 / 3.9,
        540.0 / 3.9 * 0.05,
        "opus spend ÷ mini spend",
    );
    let by_type: BTreeSet<String> = panel("Spend by token type")[0]
        .iter()
        .map(|s| s.label("gen_ai_token_type").to_owned())
        .collect();
    assert_eq!(by_type, ["input", "output"].map(str::to_owned).into());
    values_checked += 4;
    // Tokens by type.
    let tokens: BTreeMap<(String, String), f64> = panel("Tokens")[0]
        .iter()
        .map(|s| {
            (
                (
                    s.label("gen_ai_request_model").to_owned(),
                    s.label("gen_ai_token_type").to_owned(),
                ),
                s.value,
            )
        })
        .collect();
    for m in [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "gemini-2.5-flash",
    ] {
        for t in ["input", "output"] {
            assert!(
                tokens
                    .get(&(m.to_owned(), t.to_owned()))
                    .is_some_and(|v| *v > 0.0),
                "no {t} tokens for {m}: {tokens:?}"
            );
        }
    }
    values_checked += 1;
    // Fallbacks: exactly the requested → served pair, at half of gemini's calls.
    let fallbacks = &panel("Fallbacks")[0];
    let pairs: BTreeSet<(String, String)> = fallbacks
        .iter()
        .map(|s| {
            (
                s.label("gen_ai_request_model").to_owned(),
                s.label("gen_ai_response_model").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        BTreeSet::from([("gemini-2.5-flash".into(), "claude-haiku-4-5".into())])
    );
    near(
        fallbacks[0].value / rates[&mr("gemini-2.5-flash", "us")],
        0.5,
        0.1,
        "fallback share of gemini's calls",
    );
    values_checked += 2;
    // Retries by reason.
    let reasons: BTreeSet<(String, String)> = panel("Retries by reason")[0]
        .iter()
        .map(|s| {
            (
                s.label("gen_ai_request_model").to_owned(),
                s.label("llm_gateway_retry_reason").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            ("gpt-4o".into(), "retry_after".into()),
            ("claude-sonnet-4-6".into(), "retry_after".into()),
            ("gpt-4.1".into(), "backoff".into()),
            ("claude-opus-4-1".into(), "backoff".into()),
        ])
    );
    values_checked += 1;
    // Retry amplification = attempts ÷ calls.
    let amp = by_mr(&panel("Retry amplification")[0]);
    near(
        amp[&mr("claude-opus-4-1", "us")],
        2.0,
        0.02,
        "opus amplification",
    );
    near(
        amp[&mr("gpt-4o", "us")],
        41.0 / 33.0,
        0.02,
        "gpt-4o amplification",
    );
    near(
        amp[&mr("gpt-4.1", "us")],
        39.0 / 32.0,
        0.02,
        "gpt-4.1 amplification",
    );
    near(
        amp[&mr("gpt-4o-mini", "us")],
        1.0,
        0.01,
        "no retries, no amplification",
    );
    near(amp[&mr("gpt-4o", "eu")], 1.0, 0.01, "a 404 is not retried");
    values_checked += 5;
    // Quota headroom: the EU haiku window is down to 1 of 20.
    let headroom = by_mr(&panel("Quota headroom")[0]);
    near(
        headroom[&mr("claude-haiku-4-5", "eu")],
        1.0 / f64::from(EU_LIMIT),
        1e-9,
        "haiku headroom in eu",
    );
    near(
        headroom[&mr("claude-sonnet-4-6", "eu")],
        11.0 / f64::from(EU_LIMIT),
        1e-9,
        "sonnet headroom in eu",
    );
    let reset = by_mr(&panel("Time to rate-limit reset")[0]);
    let haiku_reset = reset[&mr("claude-haiku-4-5", "eu")];
    assert!(
        haiku_reset > 40.0 && haiku_reset <= 60.0,
        "the 60 s window started ~{} s ago: {haiku_reset}",
        traffic.as_secs()
    );
    values_checked += 3;

    // ---- the same panels filtered by model and region -------------------------------------
    // Grafana sends a multi-value selection as a regex alternation.
    for q in &panels {
        let expr = interpolate(&q.expr, &rate_interval, "(gpt-4o|claude-haiku-4-5)", "(eu)");
        for s in prom.query(&expr).await {
            for (label, allowed) in [
                ("gen_ai_request_model", &["gpt-4o", "claude-haiku-4-5"][..]),
                ("llm_gateway_region", &["eu"][..]),
            ] {
                if let Some(v) = s.labels.get(label) {
                    assert!(
                        allowed.contains(&v.as_str()),
                        "panel {:?} filtered to {allowed:?} shows {label}={v}",
                        q.panel
                    );
                }
            }
        }
    }
    let request_rate = &panels
        .iter()
        .find(|q| q.panel.starts_with("Request rate"))
        .unwrap()
        .expr;
    let filtered = by_mr(
        &prom
            .query(&interpolate(
                request_rate,
                &rate_interval,
                "(gpt-4o|claude-haiku-4-5)",
                "(eu)",
            ))
            .await,
    );
    assert_eq!(
        filtered.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([mr("gpt-4o", "eu"), mr("claude-haiku-4-5", "eu")])
    );

    // ---- the template variables' label_values queries -----------------------------------
    let mut variable_checks = 0;
    for (name, q) in variable_queries(&dashboard) {
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .unwrap();
        let selector = interpolate(inner.0, &rate_interval, ".*", ".*");
        let values = prom.label_values(&selector, inner.1.trim()).await;
        let want: BTreeSet<String> = match name.as_str() {
            "model" => [
                "gpt-4o",
                "claude-sonnet-4-6",
                "gpt-4.1",
                "gpt-4o-mini",
                "gemini-2.5-flash",
                "claude-opus-4-1",
                "claude-haiku-4-5",
                "gpt-5",
            ]
            .map(str::to_owned)
            .into(),
            "region" => ["us", "eu"].map(str::to_owned).into(),
            other => panic!("unexpected variable {other}"),
        };
        assert_eq!(values, want, "${name}");
        variable_checks += 1;
    }

    // ---- every alert rule: its query returns data; the rule fires exactly where it should --
    let rules = alert_rules();
    let mut firing_checked = 0;
    for rule in &rules {
        let (query, op, threshold) = split_threshold(&rule.expr);
        let samples = prom.query(&query).await;
        assert!(
            !samples.is_empty(),
            "alert {}: its query returned no data:\n{query}",
            rule.name
        );
        let firing: BTreeSet<(String, String)> = prom
            .query(&rule.expr)
            .await
            .iter()
            .map(Sample::model_region)
            .collect();
        let want: BTreeSet<(String, String)> = match rule.name.as_str() {
            "LlmGatewayHigh429Share" => [mr("gpt-4o", "us")].into(),
            "LlmGatewayHigh5xxShare" => [mr("gpt-4.1", "us")].into(),
            "LlmGatewayRateLimitNearlyExhausted" => [mr("claude-haiku-4-5", "eu")].into(),
            "LlmGatewayRetryAmplification" => [mr("claude-opus-4-1", "us")].into(),
            "LlmGatewayHigh5xxAttemptShare" => {
                [mr("gpt-4.1", "us"), mr("claude-opus-4-1", "us")].into()
            }
            // A few seconds of test traffic spend far less than 10 USD: quiet. (promtool's
            // unit tests prove it fires over the budget.)
            "LlmGatewaySpendOverBudget" => BTreeSet::new(),
            other => panic!("no expectation for alert {other}"),
        };
        assert_eq!(
            firing,
            want,
            "alert {} ({op} {threshold}) fires for the wrong series; query values: {:?}",
            rule.name,
            samples
                .iter()
                .map(|s| (s.model_region(), s.value))
                .collect::<Vec<_>>()
        );
        if rule.name == "LlmGatewaySpendOverBudget" {
            let spent = samples[0].value;
            assert!(
                spent > 0.0 && spent < threshold,
                "spend in the last hour: {spent} USD"
            );
        }
        firing_checked += 1;
    }

    let elapsed = started.elapsed();
    eprintln!(
        "e2e: run {run}; sent {} calls / {} attempts / {} retries; warm-up {:.1} s, traffic {:.1} s, all in Prometheus at {:.1} s, total {:.1} s; \
         {} panel queries (+{} filtered), {} variable queries, {} alert queries (+{} firing sets), {} value checks, totals {totals:?}",
        sent.calls,
        sent.attempts,
        sent.retries,
        warmed.as_secs_f64(),
        traffic.as_secs_f64(),
        landed.as_secs_f64(),
        elapsed.as_secs_f64(),
        panels.len(),
        panels.len(),
        variable_checks,
        rules.len(),
        firing_checked,
        values_checked,
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "the e2e took {elapsed:?}"
    );
}
