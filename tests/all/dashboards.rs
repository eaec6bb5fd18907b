//! The dashboard and the alert rules against what the crate really emits (no Prometheus
//! needed): every metric and label a query uses must be one the instruments produce after a
//! real mix of calls, named as an OTLP collector with Prometheus naming names it; and the
//! dashboard keeps the promises its users rely on (datasource variable, model and region
//! filters on every query, rates over `$__rate_interval`, no `job`).
//! The e2e test (`e2e.rs`) then runs the same queries against a real Prometheus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{GatewayMiddleware, Prices, Rates, Region};
use llm_gateway_simulator::{Fault, Simulator};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};

use crate::promql::*;
use crate::support::{chat, client};

/// The generator of the dashboard and the alert rules.
const GENERATOR: &str = "dashboards/generate.py";
/// The one rule that is a total (all models and regions) rather than per model and region.
const SPEND_RULE: &str = "LlmGatewaySpendOverBudget";

/// One Prometheus metric family as the OTLP → Prometheus translation names it.
#[derive(Debug)]
pub struct Family {
    /// The OTel instrument it comes from.
    pub otel: String,
    /// Label names its series can carry.
    pub labels: BTreeSet<String>,
    /// Cumulative (histogram part or counter): only meaningful under `rate()`.
    pub cumulative: bool,
}

/// Prometheus naming of an OTLP metric (the OpenTelemetry → Prometheus compatibility rules
/// that vmagent's `-opentelemetry.usePrometheusNaming` and the collector's exporters apply):
/// dots become underscores, the unit becomes a suffix (`s` → `_seconds`; annotations in
/// braces such as `{token}` are dropped), monotonic sums get `_total`, histograms are split
/// into `_bucket`, `_sum` and `_count`.
fn prometheus_base(name: &str, unit: &str) -> String {
    let base = name.replace(['.', '-', '/'], "_");
    let unit = unit.trim();
    let suffix = match unit {
        "" => "",
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        u if u.starts_with('{') && u.ends_with('}') => "",
        other => panic!("unit {other:?} of {name}: extend prometheus_base"),
    };
    if suffix.is_empty() || base.ends_with(suffix) {
        base
    } else {
        format!("{base}_{suffix}")
    }
}

/// Sends a mix that exercises every instrument, and returns the families it produced.
pub async fn emitted_families() -> BTreeMap<String, Family> {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.clone())
        .build();
    let sim = Simulator::start().await.unwrap();
    let middleware = GatewayMiddleware::builder()
        .gateway_host(sim.addr().to_string(), Region::US)
        .meter(provider.meter("dashboards-test"))
        .prices(Prices::new().model("claude-sonnet-4-6", Rates::new(3.0, 15.0).cache_read(0.3)))
        .retry(
            Retry::default()
                .backoff(Duration::from_millis(1), Duration::from_millis(5))
                .no_budget(),
        )
        .build()
        .unwrap();
    let client = client(middleware);
    let send = |body: serde_json::Value, fault: Option<&'static str>| {
        let mut rb = client.post(sim.chat_url()).json(&body);
        if let Some(f) = fault {
            rb = rb.header("x-simulator-fault", f);
        }
        async move {
            let response = rb.send().await.unwrap();
            response.bytes().await.unwrap();
        }
    };
    send(chat("claude-sonnet-4-6"), None).await;
    send(chat("claude-sonnet-4-6"), Some("429:0")).await;
    send(chat("claude-sonnet-4-6"), Some("503")).await;
    let mut stream = chat("gpt-4o-mini");
    stream["stream"] = serde_json::json!(true);
    send(stream, None).await;
    let mut fallback = chat("claude-sonnet-4-6");
    fallback["fallbacks"] = serde_json::json!([{"model": "claude-haiku-4-5"}]);
    send(fallback, Some("fallback")).await;
    // A 2xx answer without usage: tokens and cost unknown, counted.
    send(chat("claude-sonnet-4-6"), Some("no-usage")).await;
    // A 429 answered once (queued fault): retried once.
    sim.inject_for_model("gpt-4o", Fault::RateLimited { retry_after_s: 0 });
    send(chat("gpt-4o"), None).await;

    provider.force_flush().unwrap();
    let mut families = BTreeMap::new();
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                let mut labels = BTreeSet::new();
                let mut collect = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                    for kv in it {
                        labels.insert(kv.key.as_str().replace('.', "_"));
                    }
                };
                // (kind, cumulative): "histogram" | "counter" | "gauge" | "updown"
                let kind = match m.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        h.data_points().for_each(|p| collect(&mut p.attributes()));
                        "histogram"
                    }
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                        h.data_points().for_each(|p| collect(&mut p.attributes()));
                        "histogram"
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        s.data_points().for_each(|p| collect(&mut p.attributes()));
                        if s.is_monotonic() {
                            "counter"
                        } else {
                            "updown"
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Sum(s)) => {
                        s.data_points().for_each(|p| collect(&mut p.attributes()));
                        if s.is_monotonic() {
                            "counter"
                        } else {
                            "updown"
                        }
                    }
                    AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                        g.data_points().for_each(|p| collect(&mut p.attributes()));
                        "gauge"
                    }
                    AggregatedMetrics::F64(MetricData::Gauge(g)) => {
                        g.data_points().for_each(|p| collect(&mut p.attributes()));
                        "gauge"
                    }
                    other => panic!("{}: unexpected data {other:?}", m.name()),
                };
                let base = prometheus_base(m.name(), m.unit());
                let mut add = |name: String, extra: Option<&str>, cumulative: bool| {
                    let mut l = labels.clone();
                    l.extend(extra.map(str::to_owned));
                    families.insert(
                        name,
                        Family {
                            otel: m.name().to_owned(),
                            labels: l,
                            cumulative,
                        },
                    );
                };
                match kind {
                    "histogram" => {
                        add(format!("{base}_bucket"), Some("le"), true);
                        add(format!("{base}_sum"), None, true);
                        add(format!("{base}_count"), None, true);
                    }
                    "counter" => add(format!("{base}_total"), None, true),
                    _ => add(base, None, false),
                }
            }
        }
    }
    families
}

#[tokio::test]
async fn every_metric_and_label_the_dashboard_and_alerts_query_is_emitted() {
    let families = emitted_families().await;
    let emitted: BTreeSet<&str> = families.values().map(|f| f.otel.as_str()).collect();
    for name in METRIC_NAMES {
        assert!(
            emitted.contains(name),
            "{name} is one of the crate's metrics but the mix of calls did not produce it; \
             emitted: {emitted:?}"
        );
    }

    let dashboard = dashboard();
    let mut queries: Vec<(String, String)> = panel_queries(&dashboard)
        .into_iter()
        .map(|q| (format!("panel {:?} {}", q.panel, q.ref_id), q.expr))
        .collect();
    for (name, q) in variable_queries(&dashboard) {
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .unwrap_or_else(|| panic!("variable {name}: not label_values(metric, label): {q}"));
        queries.push((format!("variable ${name} (metric)"), inner.0.to_owned()));
        queries.push((
            format!("variable ${name} (label)"),
            format!("x by ({}) (y)", inner.1.trim()),
        ));
    }
    for rule in alert_rules() {
        queries.push((format!("alert {}", rule.name), rule.expr));
    }
    assert!(queries.len() > 20, "{} queries", queries.len());

    let mut used = BTreeSet::new();
    for (what, expr) in &queries {
        let r = refs(expr);
        let mut labels_in_scope: BTreeSet<&str> = BTreeSet::from(["le"]);
        for sel in &r.selectors {
            if sel.metric == "x" || sel.metric == "y" {
                continue; // the stand-ins of a variable's label check
            }
            let family = families.get(&sel.metric).unwrap_or_else(|| {
                panic!(
                    "{what} queries {:?}, which the crate does not emit; emitted: {:?}",
                    sel.metric,
                    families.keys().collect::<Vec<_>>()
                )
            });
            used.insert(sel.metric.clone());
            for l in &sel.labels {
                assert!(
                    family.labels.contains(l),
                    "{what}: {} has no label {l:?} (it has {:?})",
                    sel.metric,
                    family.labels
                );
            }
            labels_in_scope.extend(family.labels.iter().map(String::as_str));
        }
        for l in &r.grouping {
            if what.starts_with("variable") {
                let all: BTreeSet<&str> = families
                    .values()
                    .flat_map(|f| f.labels.iter().map(String::as_str))
                    .collect();
                assert!(
                    all.contains(l.as_str()),
                    "{what}: no metric has label {l:?}"
                );
            } else {
                assert!(
                    labels_in_scope.contains(l.as_str()),
                    "{what}: groups by {l:?}, which none of its metrics has"
                );
            }
        }
    }
    // Every instrument is on the dashboard somewhere.
    let shown: BTreeSet<&str> = used
        .iter()
        .filter_map(|m| families.get(m))
        .map(|f| f.otel.as_str())
        .collect();
    for name in METRIC_NAMES {
        assert!(
            shown.contains(name),
            "{name} is emitted but no query shows it"
        );
    }
}

#[tokio::test]
async fn every_panel_is_filterable_rate_based_and_datasource_agnostic() {
    let families = emitted_families().await;
    let dashboard = dashboard();
    let text = std::fs::read_to_string(repo_file(DASHBOARD)).unwrap();
    assert!(
        !text.contains("\"job\"") && !text.contains("job=") && !text.contains("instance="),
        "the OTLP path has no job/instance labels"
    );
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 41);

    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["model", "region"] {
        let v = var(name);
        assert_eq!(v["type"], "query");
        assert_eq!(v["multi"], true, "${name} is multi-value");
        assert_eq!(v["includeAll"], true, "${name} has All");
        assert_eq!(v["allValue"], ".*", "${name}'s All is a regex");
        assert_eq!(v["datasource"]["uid"], "${datasource}");
    }

    // Every datasource reference is the variable (or Grafana's built-in annotations).
    fn datasources<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, x) in map {
                    if k == "datasource" {
                        out.push(x);
                    }
                    datasources(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| datasources(x, out)),
            _ => {}
        }
    }
    let mut refs_found = Vec::new();
    datasources(&dashboard["panels"], &mut refs_found);
    datasources(&dashboard["templating"], &mut refs_found);
    assert!(!refs_found.is_empty());
    for ds in refs_found {
        if ds.is_string() {
            continue; // the datasource variable's own `query`-less fields
        }
        assert_eq!(ds["uid"], "${datasource}", "hard-coded datasource {ds}");
        assert_eq!(ds["type"], "prometheus");
    }

    let mut ids = BTreeSet::new();
    for p in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        let g = &p["gridPos"];
        assert!(g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24);
    }

    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 20, "{} panel queries", queries.len());
    for q in &queries {
        let r = refs(&q.expr);
        assert!(!r.selectors.is_empty(), "{}: no metric", q.panel);
        for sel in &r.selectors {
            let end = sel
                .brace
                .map(|b| b + q.expr[b..].find('}').unwrap() + 1)
                .unwrap_or(sel.name_end);
            let matchers = &q.expr[sel.name_end..end];
            assert!(
                matchers.contains(r#"gen_ai_request_model=~"$model""#)
                    && matchers.contains(r#"llm_gateway_region=~"$region""#),
                "{}: {} is not filtered by $model and $region",
                q.panel,
                sel.metric
            );
            let cumulative = families.get(&sel.metric).is_some_and(|f| f.cumulative);
            let after = q.expr[end..].trim_start();
            if cumulative {
                assert!(
                    after.starts_with("[$__rate_interval]"),
                    "{}: {} (a cumulative series) is not under rate(...[$__rate_interval])",
                    q.panel,
                    sel.metric
                );
            }
        }
        if q.expr.contains('[') {
            assert!(
                q.expr.matches('[').count() == q.expr.matches("[$__rate_interval]").count(),
                "{}: a range other than $__rate_interval",
                q.panel
            );
        }
    }
    let titles: Vec<&str> = queries.iter().map(|q| q.panel.as_str()).collect();
    for wanted in [
        "Request rate",
        "Error share",
        "429 rate",
        "429 share",
        "5xx per attempt",
        "5xx rate of calls (after retries)",
        "4xx other than 429",
        "Latency",
        "Time to first chunk",
        "Tokens",
        "Fallbacks",
        "Retries by reason",
        "Retry amplification",
        "Quota headroom",
        "reset",
        "Total spend",
        "Spend per model",
        "Spend by token type",
        "Time per output chunk",
        "Answers without usage",
        "Share of 2xx calls without usage",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel about {wanted:?}: {titles:?}"
        );
    }
}

#[test]
fn every_alert_is_a_query_and_a_threshold_with_runbook_annotations() {
    let rules = alert_rules();
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "LlmGatewayHigh429Share",
            "LlmGatewayHigh5xxShare",
            "LlmGatewayHigh5xxAttemptShare",
            "LlmGatewayRateLimitNearlyExhausted",
            "LlmGatewayRetryAmplification",
            SPEND_RULE,
        ]
    );
    for r in &rules {
        let (query, _, _) = split_threshold(&r.expr);
        let grouping = refs(&query).grouping;
        if r.name == SPEND_RULE {
            // The budget is for the total spend, over all models and regions.
            assert!(grouping.is_empty(), "{}: grouped by {grouping:?}", r.name);
            continue;
        }
        assert!(
            grouping.contains(&"gen_ai_request_model".to_owned())
                && grouping.contains(&"llm_gateway_region".to_owned()),
            "{}: not per model and region",
            r.name
        );
    }
    let text = std::fs::read_to_string(repo_file(ALERTS)).unwrap();
    assert_eq!(text.matches("for: ").count(), rules.len());
    assert_eq!(text.matches("summary: ").count(), rules.len());
    assert_eq!(text.matches("description: ").count(), rules.len());
    for r in &rules {
        for sel in refs(&r.expr).selectors {
            assert!(
                !sel.labels.iter().any(|l| l == "job" || l == "instance"),
                "{}: the OTLP path has no job/instance",
                r.name
            );
        }
        let grouping = refs(&r.expr).grouping;
        assert!(
            !grouping.iter().any(|l| l == "job" || l == "instance"),
            "{}: groups by job/instance",
            r.name
        );
    }
}

/// The 5xx panels and rules say which view they show: per attempt (every 5xx the gateway
/// sent, retried or not) or per call (after retries), side by side as the 429 panels are.
#[test]
fn the_5xx_panels_and_rules_say_which_view_they_show() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let panel = |prefix: &str| {
        let found: Vec<&serde_json::Value> = panels
            .iter()
            .filter(|p| p["title"].as_str().unwrap_or("").starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "panels titled {prefix:?}...");
        found[0]
    };
    let metrics = |p: &serde_json::Value| -> BTreeSet<String> {
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| refs(t["expr"].as_str().unwrap()).selectors)
            .map(|s| s.metric)
            .collect()
    };
    let attempt = panel("5xx per attempt");
    let call = panel("5xx rate of calls (after retries)");
    assert_eq!(
        metrics(attempt),
        BTreeSet::from(["http_client_request_duration_seconds_count".to_owned()])
    );
    assert_eq!(
        metrics(call),
        BTreeSet::from(["gen_ai_client_operation_duration_seconds_count".to_owned()])
    );
    let description = |p: &serde_json::Value| p["description"].as_str().unwrap().to_lowercase();
    assert!(description(attempt).starts_with("per attempt"));
    assert!(description(attempt).contains("rescued"));
    assert!(description(call).starts_with("per call, after retries"));
    assert_eq!(
        attempt["gridPos"]["y"], call["gridPos"]["y"],
        "the two 5xx views side by side"
    );

    let text = std::fs::read_to_string(repo_file(ALERTS)).unwrap();
    let block = |name: &str| {
        text.split("- alert: ")
            .find(|b| b.starts_with(&format!("{name}\n")))
            .unwrap_or_else(|| panic!("no rule {name}"))
            .to_lowercase()
    };
    let per_call = block("LlmGatewayHigh5xxShare");
    assert!(per_call.contains("per call, after retries"), "{per_call}");
    let per_attempt = block("LlmGatewayHigh5xxAttemptShare");
    assert!(
        per_attempt.contains("per attempt")
            && per_attempt.contains("including those a retry rescued"),
        "{per_attempt}"
    );
}

/// The spend rule's budget is set in one place, the generator's constant, and its description
/// leads to the per-model spend panel and to how the budget is changed.
#[test]
fn the_spend_alert_watches_the_budget_set_in_the_generator() {
    let generator = std::fs::read_to_string(repo_file(GENERATOR)).unwrap();
    let budget: f64 = generator
        .lines()
        .find_map(|l| l.strip_prefix("SPEND_BUDGET_USD_PER_HOUR = "))
        .expect("SPEND_BUDGET_USD_PER_HOUR in the generator")
        .trim()
        .parse()
        .expect("the budget is a number");
    let rules = alert_rules();
    let spend = rules.iter().find(|r| r.name == SPEND_RULE).unwrap();
    let (query, op, threshold) = split_threshold(&spend.expr);
    assert_eq!((op.as_str(), threshold), (">", budget), "{}", spend.expr);
    assert_eq!(
        refs(&query)
            .selectors
            .iter()
            .map(|s| s.metric.as_str())
            .collect::<Vec<_>>(),
        ["llm_gateway_client_cost_usd_total"]
    );
    assert!(query.ends_with("* 3600"), "USD per hour: {query}");

    let text = std::fs::read_to_string(repo_file(ALERTS)).unwrap();
    let block = text
        .split("- alert: ")
        .find(|b| b.starts_with(&format!("{SPEND_RULE}\n")))
        .unwrap();
    for wanted in [
        "Spend per model (USD/h)",
        "SPEND_BUDGET_USD_PER_HOUR",
        "--spend-budget-usd-per-hour",
    ] {
        assert!(
            block.contains(wanted),
            "{SPEND_RULE} does not mention {wanted:?}"
        );
    }
    let dashboard = dashboard();
    assert!(
        panel_queries(&dashboard)
            .iter()
            .any(|q| q.panel == "Spend per model (USD/h)"),
        "the panel the spend rule names"
    );
}

fn generate(dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    std::process::Command::new("python3")
        .arg(dir.join("generate.py"))
        .args(args)
        .output()
}

#[test]
fn the_dashboard_json_and_the_alert_rules_are_what_the_generator_writes() {
    let dashboards = repo_file("dashboards");
    let Ok(out) = generate(&dashboards, &["--check"]) else {
        eprintln!("python3 not found: generator check skipped");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `--check` covers the alert rules too: a copy of the generator next to a hand-edited
    // threshold fails it.
    let dir =
        std::env::temp_dir().join(format!("llm-gateway-otel-generate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["generate.py", "llm-gateway-overview.json", "alerts.yml"] {
        std::fs::copy(dashboards.join(f), dir.join(f)).unwrap();
    }
    let alerts = dir.join("alerts.yml");
    let committed = std::fs::read_to_string(&alerts).unwrap();
    let edited = committed.replacen("> 1.5", "> 2", 1);
    assert_ne!(edited, committed);
    std::fs::write(&alerts, edited).unwrap();
    let out = generate(&dir, &["--check"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("alerts.yml"),
        "--check missed a hand-edited alerts.yml: {stderr}"
    );

    // The budget flag changes the spend rule's threshold and nothing else.
    let out = generate(&dir, &["--spend-budget-usd-per-hour", "25"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&alerts).unwrap();
    let rules = alert_rules_in(&text);
    let before = alert_rules();
    assert_eq!(rules.len(), before.len());
    for (r, b) in rules.iter().zip(&before) {
        assert_eq!(r.name, b.name);
        if r.name == SPEND_RULE {
            let (query, op, threshold) = split_threshold(&r.expr);
            let (query_before, op_before, _) = split_threshold(&b.expr);
            assert_eq!((query, op, threshold), (query_before, op_before, 25.0));
        } else {
            assert_eq!(r.expr, b.expr, "{}", r.name);
        }
    }
    assert!(text.contains("budget of 25 USD"), "{text}");
    assert_eq!(
        std::fs::read_to_string(dir.join("llm-gateway-overview.json")).unwrap(),
        std::fs::read_to_string(repo_file(DASHBOARD)).unwrap()
    );
    let out = generate(&dir, &["--spend-budget-usd-per-hour", "-1"]).unwrap();
    assert!(!out.status.success(), "a negative budget is refused");
    std::fs::remove_dir_all(&dir).unwrap();
}
