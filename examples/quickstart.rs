//! The quickstart: a short mix of gateway calls, each recorded as a span, and a table of
//! what was recorded.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Without `ASSEMBLYAI_API_KEY` it starts the embedded gateway simulator (no key, no network)
//! and shows a success, a stream, a 429 whose Retry-After is too long to wait for, a 503 that
//! a retry clears, a model not served in the EU, and a 401.
//! With `ASSEMBLYAI_API_KEY` set (and optionally `LLM_GATEWAY_REGION=eu`) it calls the real
//! gateway instead. Spans go to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, otherwise
//! they are printed readably to stdout. With `LLM_GATEWAY_PRICES` naming a rate table (try
//! `LLM_GATEWAY_PRICES=examples/prices.json`), the table shows what each call cost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use llm_gateway_otel::export::{rfc3339_utc, Init, DEFAULT_EXPORT_DEADLINE};
use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::{Fault, Region as SimRegion, Simulator};
use opentelemetry::Value;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SimpleSpanProcessor, SpanData, SpanExporter};
use reqwest_middleware::ClientWithMiddleware;
use serde_json::json;

/// The calls to send, the client to send them with, and the simulators serving them (kept
/// alive for the whole run).
struct Plan {
    calls: Vec<Call>,
    client: ClientWithMiddleware,
    _simulators: Vec<Simulator>,
}

type Error = Box<dyn std::error::Error>;

/// One call of the mix.
struct Call {
    label: &'static str,
    url: String,
    key: Option<String>,
    body: serde_json::Value,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let collected = Collected::default();
    let to_otlp = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let init = Init::from_env()
        .service_name("llm-gateway-otel-quickstart")
        .with_span_processor(SimpleSpanProcessor::new(collected.clone()));
    let guard = if to_otlp { init } else { init.console() }.install()?;

    let plan = match std::env::var("ASSEMBLYAI_API_KEY") {
        Ok(key) if !key.trim().is_empty() => real_gateway(key.trim().to_owned())?,
        _ => simulated().await?,
    };
    let sent = plan.calls.len();
    for call in plan.calls {
        send(&plan.client, call).await;
    }

    print_table(&collected.spans(), sent);
    // Bounded: a collector that does not answer costs at most the deadline (3 s), and says so.
    match guard.shutdown(DEFAULT_EXPORT_DEADLINE) {
        Ok(()) if to_otlp => {
            println!("\nSpans, metrics and call logs were exported over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT).")
        }
        Ok(()) => {}
        Err(e) => println!("\nNOT EXPORTED: {e}"),
    }
    Ok(())
}

async fn simulated() -> Result<Plan, Error> {
    let us = Simulator::builder().api_key("demo-key").start().await?;
    let eu = Simulator::builder().region(SimRegion::Eu).start().await?;
    println!(
        "Gateway simulator: US {} / EU {} (set ASSEMBLYAI_API_KEY to call the real gateway)\n",
        us.base_url(),
        eu.base_url()
    );
    let middleware = GatewayMiddleware::builder()
        .gateway_host(us.addr().to_string(), Region::US)
        .gateway_host(eu.addr().to_string(), Region::EU)
        .retry(Retry::default().max_wait(Duration::from_secs(5)))
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build();
    us.inject_for_model("claude-haiku-4-5", Fault::RateLimited { retry_after_s: 12 });
    us.inject_for_model("gemini-2.5-pro", Fault::Status(503));
    let key = Some("demo-key".to_owned());
    let calls = vec![
        Call {
            label: "success",
            url: us.chat_url(),
            key: key.clone(),
            body: chat("claude-sonnet-4-6", false),
        },
        Call {
            label: "streamed",
            url: us.chat_url(),
            key: key.clone(),
            body: chat("gpt-4o-mini", true),
        },
        Call {
            label: "rate limited",
            url: us.chat_url(),
            key: key.clone(),
            body: chat("claude-haiku-4-5", false),
        },
        Call {
            label: "upstream 503",
            url: us.chat_url(),
            key: key.clone(),
            body: chat("gemini-2.5-pro", false),
        },
        Call {
            label: "model not in region",
            url: eu.chat_url(),
            key: key.clone(),
            body: chat("gpt-4o", false),
        },
        Call {
            label: "wrong key",
            url: us.chat_url(),
            key: Some("not-the-key".into()),
            body: chat("claude-sonnet-4-6", false),
        },
    ];
    Ok(Plan {
        calls,
        client,
        _simulators: vec![us, eu],
    })
}

fn real_gateway(key: String) -> Result<Plan, Error> {
    let eu = std::env::var("LLM_GATEWAY_REGION").is_ok_and(|r| r.eq_ignore_ascii_case("eu"));
    let host = if eu {
        llm_gateway_otel::EU_HOST
    } else {
        llm_gateway_otel::US_HOST
    };
    let url = format!("https://{host}/v1/chat/completions");
    println!("Calling the real gateway at {host}\n");
    let middleware = GatewayMiddleware::builder()
        .retry(Retry::default().max_wait(Duration::from_secs(5)))
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build();
    let k = Some(key);
    let mut calls = vec![
        Call {
            label: "success",
            url: url.clone(),
            key: k.clone(),
            body: chat("claude-sonnet-4-6", false),
        },
        Call {
            label: "unknown model",
            url: url.clone(),
            key: k.clone(),
            body: chat("no-such-model", false),
        },
        Call {
            label: "wrong key",
            url: url.clone(),
            key: Some("not-a-valid-key".into()),
            body: chat("claude-sonnet-4-6", false),
        },
    ];
    if eu {
        calls.push(Call {
            label: "model not in region",
            url,
            key: k,
            body: chat("gpt-4o-mini", false),
        });
    } else {
        calls.push(Call {
            label: "streamed",
            url,
            key: k,
            body: chat("gpt-4o-mini", true),
        });
    }
    Ok(Plan {
        calls,
        client,
        _simulators: Vec::new(),
    })
}

fn chat(model: &str, stream: bool) -> serde_json::Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the capital of France? One word."}],
        "max_tokens": 16,
        "stream": stream,
    })
}

async fn send(client: &ClientWithMiddleware, call: Call) {
    let mut request = client.post(&call.url).json(&call.body);
    if let Some(key) = &call.key {
        request = request.header("authorization", key);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Read the body the way a user would (streamed bodies chunk by chunk); the span
            // ends when the body has been read.
            let mut bytes = 0;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => bytes += c.len(),
                    Err(e) => {
                        eprintln!("{}: body failed: {e}", call.label);
                        break;
                    }
                }
            }
            eprintln!("{:<20} -> {status} ({bytes} bytes)", call.label);
        }
        Err(e) => eprintln!("{:<20} -> failed: {e}", call.label),
    }
}

/// The calls' spans as a table (`sent` calls were made: with a sampler, fewer have a span).
fn print_table(spans: &[SpanData], sent: usize) {
    let calls: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.attributes
                .iter()
                .any(|kv| kv.key.as_str() == GEN_AI_OPERATION_NAME)
        })
        .collect();
    // The cost column, when a rate table was given (the middleware read LLM_GATEWAY_PRICES).
    let priced = std::env::var_os("LLM_GATEWAY_PRICES").is_some_and(|v| !v.is_empty());
    if calls.len() < sent {
        println!(
            "\nWhat was recorded ({} of {sent} calls; the others' spans were sampled out, \
             their metrics and log lines were not):",
            calls.len()
        );
    } else {
        println!("\nWhat was recorded ({} calls):", calls.len());
    }
    let cost_head = if priced {
        format!("{:<12} ", "cost (USD)")
    } else {
        String::new()
    };
    println!(
        "{:<38} {:<18} {:<7} {:<24} {:<6} {:<8} {cost_head}error",
        "request_id", "model", "region", "timestamp (UTC)", "status", "attempts"
    );
    let mut total = 0.0;
    for s in calls {
        let get = |k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| match &kv.value {
                    Value::String(v) => v.to_string(),
                    other => other.to_string(),
                })
        };
        let cause = get(LLM_GATEWAY_ERROR_CAUSE).map_or(String::new(), |c| format!(" {c}"));
        let mut error = match (get(ERROR_TYPE), get(LLM_GATEWAY_ERROR_MESSAGE)) {
            (Some(t), Some(m)) => format!("{t}{cause}: {}", shorten(&m, 50)),
            (Some(t), None) => format!("{t}{cause}"),
            _ => "-".into(),
        };
        if let Some(stop) = get(LLM_GATEWAY_RETRY_STOP_REASON) {
            error.push_str(&format!(" (not retried: {stop})"));
        }
        let cost = get(LLM_GATEWAY_USAGE_COST_USD).and_then(|c| c.parse::<f64>().ok());
        total += cost.unwrap_or(0.0);
        let cost = match cost {
            _ if !priced => String::new(),
            Some(usd) => format!("{usd:<12.8} "),
            None => format!("{:<12} ", "-"),
        };
        println!(
            "{:<38} {:<18} {:<7} {:<24} {:<6} {:<8} {cost}{}",
            get(LLM_GATEWAY_REQUEST_ID).unwrap_or_else(|| "-".into()),
            get(GEN_AI_REQUEST_MODEL).unwrap_or_else(|| "-".into()),
            get(LLM_GATEWAY_REGION).unwrap_or_else(|| "-".into()),
            rfc3339_utc(s.start_time),
            get(HTTP_RESPONSE_STATUS_CODE).unwrap_or_else(|| "-".into()),
            attempts(get(HTTP_REQUEST_RESEND_COUNT), get(ERROR_TYPE).as_deref()),
            error,
        );
    }
    if priced {
        println!(
            "Spent {total:.8} USD (a call shows `-` when its model has no price or no usage)."
        );
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Keeps every finished span so the table can be printed at the end.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl Collected {
    fn spans(&self) -> Vec<SpanData> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if let Ok(mut v) = self.0.lock() {
            v.extend(batch);
        }
        Ok(())
    }
}

/// Attempts made: the re-sends plus the first (a call's span has `http.request.resend_count`
/// only when it was re-sent), none for a call the pre-flight check stopped.
fn attempts(resend_count: Option<String>, error_type: Option<&str>) -> String {
    match resend_count.and_then(|n| n.parse::<u32>().ok()) {
        Some(n) => (n + 1).to_string(),
        None if error_type == Some(ERROR_TYPE_PREFLIGHT) => "0".into(),
        None => "1".into(),
    }
}
