//! The doctor: what works, what doesn't, and the fix.
//!
//! ```text
//! cargo run --example doctor
//! ```
//!
//! With `ASSEMBLYAI_API_KEY` set (and optionally `LLM_GATEWAY_REGION=eu`) it checks the real
//! gateway: the key's form, the region's model list (`GET /v1/models`), a one-token call per
//! model in `DOCTOR_MODELS` (comma-separated; default two models the region serves) and a
//! streamed call, printing each result with its diagnosis and fix. It exits non-zero when a
//! check failed. The key is never printed.
//!
//! Without a key it starts the gateway simulator and walks through every failure class the
//! troubleshooting page knows, showing the cause and fix the middleware gives each, then one
//! support report as it would be pasted into an email.

use std::time::Duration;

use llm_gateway_otel::PreflightMode;
use llm_gateway_otel::{GatewayMiddleware, Region, ReportSlot, SupportReport};
use llm_gateway_otel::{EU_HOST, US_HOST};
use llm_gateway_simulator::{Fault, Region as SimRegion, Simulator};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let healthy = match std::env::var("ASSEMBLYAI_API_KEY") {
        Ok(key) if !key.trim().is_empty() => real_gateway(key).await?,
        _ => simulated().await?,
    };
    if !healthy {
        std::process::exit(1);
    }
    Ok(())
}

// ---- the real gateway -------------------------------------------------------------------

async fn real_gateway(raw_key: String) -> Result<bool, Error> {
    let eu = std::env::var("LLM_GATEWAY_REGION").is_ok_and(|r| r.trim().eq_ignore_ascii_case("eu"));
    let (host, region) = if eu { (EU_HOST, "eu") } else { (US_HOST, "us") };
    let base = format!("https://{host}");
    println!("LLM Gateway doctor: region {region} ({host})\n");
    let mut healthy = true;

    // 1. The key's form (never its value).
    let trimmed = raw_key.trim();
    let key = match trimmed.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
            warn(
                "key form",
                "ASSEMBLYAI_API_KEY starts with `Bearer `",
                "Pass the raw key in the Authorization header, not prefixed with Bearer; \
                 the doctor strips it.",
            );
            rest.trim()
        }
        _ => {
            ok(
                "key form",
                &format!("{} characters, sent raw in `Authorization`", trimmed.len()),
            );
            trimmed
        }
    };
    if key != raw_key {
        println!("    note: the variable has surrounding whitespace or a prefix; it was trimmed");
    }

    // 2. The region's model list.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let listed = match plain.get(format!("{base}/v1/models")).send().await {
        Ok(r) if r.status().is_success() => {
            let body: Value = serde_json::from_slice(&r.bytes().await?).unwrap_or(Value::Null);
            let ids: Vec<String> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            ok(
                "model list",
                &format!("{} models served in {region}", ids.len()),
            );
            Some(ids)
        }
        Ok(r) => {
            healthy = false;
            fail(
                "model list",
                &format!("GET /v1/models answered {}", r.status()),
                None,
            );
            None
        }
        Err(e) => {
            healthy = false;
            fail(
                "model list",
                &format!("GET /v1/models failed: {e}: {}", causes(&e)),
                Some(transport_hint(&e)),
            );
            None
        }
    };

    // 3. One-token calls.
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
    )
    .with(
        GatewayMiddleware::builder()
            .lookup_region_models(true)
            .build()?,
    )
    .build();
    let url = format!("{base}/v1/chat/completions");
    let models: Vec<String> = std::env::var("DOCTOR_MODELS")
        .ok()
        .map(|m| {
            m.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .filter(|m: &Vec<String>| !m.is_empty())
        .unwrap_or_else(|| {
            if eu {
                vec!["claude-haiku-4-5".into(), "gemini-2.5-flash".into()]
            } else {
                vec!["claude-haiku-4-5".into(), "gpt-4o-mini".into()]
            }
        });
    for model in &models {
        if let Some(ids) = &listed {
            if !ids.iter().any(|id| id == model) {
                println!("    note: {model} is not in the {region} model list; calling it anyway");
            }
        }
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": "Reply with OK."}],
            "max_tokens": 1,
        });
        let (report, error) = call(&client, &url, Some(key), &[], body).await;
        healthy &= show(&format!("call {model}"), &report, error.as_deref());
    }

    // 4. A streamed call.
    let stream_model = models
        .iter()
        .find(|m| m.starts_with("gpt-")) // streaming is OpenAI-only
        .cloned()
        .unwrap_or_else(|| "gpt-4o-mini".to_owned());
    if eu {
        println!(
            "  -  stream: skipped (streaming is OpenAI-only, and OpenAI models are served in the US region only)"
        );
    } else {
        let body = json!({
            "model": stream_model,
            "messages": [{"role": "user", "content": "Reply with OK."}],
            "max_tokens": 5,
            "stream": true,
        });
        let (report, error) = call(&client, &url, Some(key), &[], body).await;
        healthy &= show(&format!("stream {stream_model}"), &report, error.as_deref());
    }

    println!(
        "\n{}",
        if healthy {
            "Everything checked works."
        } else {
            "Some checks failed: see the fixes above. For support, the report of a failing call \
             (SupportReportExt::support_report) has everything they ask for."
        }
    );
    Ok(healthy)
}

/// The error's causes, innermost last (reqwest's own message names only the URL).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out.join(": ")
}

fn transport_hint(e: &reqwest::Error) -> &'static str {
    let text = causes(e).to_ascii_lowercase();
    if text.contains("scheme") || text.contains("tls") || text.contains("https") {
        "This reqwest was built without TLS: enable a TLS feature (e.g. reqwest's `rustls`) in \
         the program that calls the gateway."
    } else if e.is_timeout() {
        "No answer in time: check the network and proxy."
    } else {
        "Could not connect: check DNS, proxy and network (US llm-gateway.assemblyai.com, EU \
         llm-gateway.eu.assemblyai.com)."
    }
}

// ---- the simulator ----------------------------------------------------------------------

/// One failure class to show.
struct Case {
    label: &'static str,
    url: String,
    key: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Value,
    client: usize,
}

async fn simulated() -> Result<bool, Error> {
    const KEY: &str = "demo0key0for0the0doctor000000001";
    const US_KEY: &str = "us00key0not0valid0in0the0eu00002";
    let us = Simulator::builder().api_key(KEY).start().await?;
    let eu = Simulator::builder()
        .region(SimRegion::Eu)
        .api_key(KEY)
        .start()
        .await?;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    println!(
        "No ASSEMBLYAI_API_KEY: showing each failure class against the gateway simulator \
         (US {} / EU {}).\nSet ASSEMBLYAI_API_KEY (and LLM_GATEWAY_REGION) to check the real gateway.\n",
        us.base_url(),
        eu.base_url()
    );
    let middleware = |mode| {
        GatewayMiddleware::builder()
            .gateway_host(us.addr().to_string(), Region::US)
            .gateway_host(eu.addr().to_string(), Region::EU)
            .gateway_host(closed.to_string(), Region::US)
            .lookup_region_models(true)
            .preflight(mode)
            .build()
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let clients = [
        ClientBuilder::new(http.clone())
            .with(middleware(PreflightMode::Warn)?)
            .build(),
        ClientBuilder::new(http)
            .with(middleware(PreflightMode::FailFast)?)
            .build(),
    ];
    us.inject_for_model("claude-haiku-4-5", Fault::RateLimited { retry_after_s: 12 });
    us.inject_for_model("gemini-2.5-pro", Fault::Status(503));
    us.inject_for_model("gemini-2.5-flash", Fault::Html(502));
    us.inject_for_model("claude-opus-4-1", Fault::JsonRepairFailed);
    us.inject_for_model("gpt-4o", Fault::BrokenStream { after_chunks: 2 });
    us.inject_for_model("gpt-4.1", Fault::Slow { delay_ms: 3000 });
    us.inject_for_model("gpt-5", Fault::TruncatedJson);

    let chat = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let with = |mut body: Value, k: &str, v: Value| {
        body[k] = v;
        body
    };
    let case = |label, url: &String, key, body| Case {
        label,
        url: url.clone(),
        key,
        headers: Vec::new(),
        body,
        client: 0,
    };
    let (us_url, eu_url) = (us.chat_url(), eu.chat_url());
    let cases = vec![
        case("a good call", &us_url, Some(KEY), chat("claude-sonnet-4-6")),
        case("no key", &us_url, None, chat("claude-sonnet-4-6")),
        Case {
            headers: vec![("Authorisation", KEY.to_owned())],
            ..case(
                "header misspelled",
                &us_url,
                None,
                chat("claude-sonnet-4-6"),
            )
        },
        case(
            "key in the URL",
            &format!("{us_url}?api_key={KEY}"),
            None,
            chat("claude-sonnet-4-6"),
        ),
        Case {
            headers: vec![("authorization", format!("Bearer {KEY}"))],
            ..case("Bearer prefix", &us_url, None, chat("claude-sonnet-4-6"))
        },
        case(
            "wrong key",
            &us_url,
            Some("not0the0key0at0all00000000000003"),
            chat("claude-sonnet-4-6"),
        ),
        case(
            "US key on the EU host",
            &eu_url,
            Some(US_KEY),
            chat("claude-sonnet-4-6"),
        ),
        case(
            "no model",
            &us_url,
            Some(KEY),
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
        ),
        case(
            "messages as a string",
            &us_url,
            Some(KEY),
            with(chat("claude-sonnet-4-6"), "messages", json!("Hi")),
        ),
        case(
            "neither messages nor prompt",
            &us_url,
            Some(KEY),
            json!({"model": "claude-sonnet-4-6"}),
        ),
        case(
            "max_tokens out of range",
            &us_url,
            Some(KEY),
            with(chat("claude-sonnet-4-6"), "max_tokens", json!(1_000_000)),
        ),
        case(
            "another field",
            &us_url,
            Some(KEY),
            json!(["not", "an", "object"]),
        ),
        case(
            "misspelled model",
            &us_url,
            Some(KEY),
            chat("claude-sonet-4-6"),
        ),
        case("OpenAI model in the EU", &eu_url, Some(KEY), chat("gpt-4o")),
        case("rate limited", &us_url, Some(KEY), chat("claude-haiku-4-5")),
        case("upstream 503", &us_url, Some(KEY), chat("gemini-2.5-pro")),
        case(
            "load balancer 502",
            &us_url,
            Some(KEY),
            chat("gemini-2.5-flash"),
        ),
        case(
            "json-repair failed",
            &us_url,
            Some(KEY),
            with(
                chat("claude-opus-4-1"),
                "post_processing_steps",
                json!([{"type": "json-repair"}]),
            ),
        ),
        case(
            "stream: true ignored",
            &us_url,
            Some(KEY),
            with(chat("claude-sonnet-4-6"), "stream", json!(true)),
        ),
        case(
            "stream broken mid-way",
            &us_url,
            Some(KEY),
            with(chat("gpt-4o"), "stream", json!(true)),
        ),
        case("truncated answer", &us_url, Some(KEY), chat("gpt-5")),
        case("timeout", &us_url, Some(KEY), chat("gpt-4.1")),
        case(
            "nothing listening",
            &format!("http://{closed}/v1/chat/completions"),
            Some(KEY),
            chat("claude-sonnet-4-6"),
        ),
        Case {
            client: 1,
            ..case(
                "fail-fast pre-flight",
                &us_url,
                Some(KEY),
                with(chat("claude-sonnet-4-6"), "messages", json!("Hi")),
            )
        },
    ];
    let mut example = None;
    for c in cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (report, error) = call(&clients[c.client], &c.url, c.key, &headers, c.body).await;
        show(c.label, &report, error.as_deref());
        if c.label == "rate limited" {
            example = report;
        }
    }
    if let Some(report) = example {
        println!("\nThe support report of the rate-limited call, as text for an email:\n");
        println!("{}", report.to_text());
    }
    Ok(true)
}

// ---- shared -----------------------------------------------------------------------------

/// Sends one call, reads its body to the end, and returns its support report (or `None` when
/// the middleware did not see it) and the error the call returned, if any.
async fn call(
    client: &ClientWithMiddleware,
    url: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> (Option<SupportReport>, Option<String>) {
    let slot = ReportSlot::new();
    let mut request = client.post(url).json(&body).with_extension(slot.clone());
    if let Some(key) = key {
        request = request.header("authorization", key);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let error = match request.send().await {
        // Read to the end (a stream too), so that the report is complete.
        Ok(response) => response
            .bytes()
            .await
            .err()
            .map(|e| format!("{e}: {}", causes(&e))),
        Err(e) => Some(format!("{e}: {}", causes(&e))),
    };
    (slot.report(), error)
}

/// Prints one result; `true` when the call worked.
fn show(label: &str, report: &Option<SupportReport>, error: Option<&str>) -> bool {
    let Some(r) = report else {
        fail(label, "the middleware did not see this call", None);
        return false;
    };
    let status = r
        .status
        .map_or_else(|| "no response".to_owned(), |s| format!("HTTP {s}"));
    let worked = r.outcome == "ok";
    let summary = match (&r.cause, &r.request_id) {
        (Some(c), _) => format!("{status}, {c}"),
        (None, Some(id)) => format!("{status}, request_id {id}"),
        (None, None) => status,
    };
    if worked {
        ok(label, &summary);
    } else {
        fail(label, &summary, None);
    }
    if let Some(e) = error {
        println!("    error: {e}");
    }
    for p in &r.preflight {
        println!("    pre-flight {}: {} ({})", p.severity, p.detail, p.cause);
    }
    if let Some(d) = &r.detail {
        println!("    detail: {d}");
    }
    if let Some(f) = &r.fix {
        println!("    fix: {f}");
    }
    worked
}

fn ok(label: &str, what: &str) {
    println!("  ✓  {label:<28} {what}");
}

fn warn(label: &str, what: &str, fix: &str) {
    println!("  !  {label:<28} {what}\n    fix: {fix}");
}

fn fail(label: &str, what: &str, fix: Option<&str>) {
    println!("  ✗  {label:<28} {what}");
    if let Some(fix) = fix {
        println!("    fix: {fix}");
    }
}
