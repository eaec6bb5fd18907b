//! Diagnosis over real HTTP: one test per failure class the troubleshooting page knows, each
//! asserting the cause and fix on the span, the pre-flight events, and a support report that
//! holds request_id (where the gateway sent one), model, region, timestamp, status and body,
//! and never the key.

use std::time::Duration;

use llm_gateway_otel::retry::Retry;
use llm_gateway_otel::PreflightMode;
use llm_gateway_otel::{
    Cause, GatewayMiddleware, GatewayMiddlewareBuilder, Region, ReportSlot, SupportReport,
    SupportReportExt,
};
use llm_gateway_simulator::{Fault, Region as SimRegion, Simulator};
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::{json, Value};

use crate::support::*;

/// A recognizable fake key: if it shows up in anything recorded, it leaked.
const FAKE_KEY: &str = "0ddba11fa1afe1c0ffee5eed5ca1ab1e";
const OTHER_KEY: &str = "5ca1ab1e0ddba11c0ffee5eedfa1afe1";

fn client_with(builder: GatewayMiddlewareBuilder) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(builder.traced().build().expect("config"))
        .build()
}

/// A simulator that requires [`FAKE_KEY`] and a client for it labelled `region`.
async fn keyed(region: SimRegion) -> (Simulator, ClientWithMiddleware) {
    let sim = Simulator::builder()
        .region(region)
        .api_key(FAKE_KEY)
        .start()
        .await
        .expect("simulator");
    let label = match region {
        SimRegion::Us => Region::US,
        SimRegion::Eu => Region::EU,
    };
    // One attempt per call: these tests look at how one response is diagnosed, and the
    // default retries would clear the faults the simulator injects once.
    let client = client_with(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), label)
            .retry(Retry::disabled()),
    );
    (sim, client)
}

/// Sends `request`; returns the report taken before the body is read (complete for a
/// non-2xx), the body the user then reads, and the status.
async fn send(request: reqwest_middleware::RequestBuilder) -> (SupportReport, String, u16) {
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let report = response.support_report().expect("an observed call");
    let body = response.text().await.expect("body");
    (report, body, status)
}

struct Expect<'a> {
    cause: Cause,
    status: Option<u16>,
    model: Option<&'a str>,
    region: &'a str,
    /// Text the recorded error body must hold.
    body: Option<&'a str>,
}

/// The report holds what support asks for, the cause and fix, and no secret in either
/// rendering; `body` is what the user read (its request_id, if any, must be the report's).
fn check_report(r: &SupportReport, e: &Expect<'_>, body: &str) {
    assert_eq!(r.cause.as_deref(), Some(e.cause.as_str()), "{r:#?}");
    assert_eq!(r.fix.as_deref(), Some(e.cause.fix()));
    assert_eq!(r.status, e.status);
    assert_eq!(r.model_requested.as_deref(), e.model);
    assert_eq!(r.region, e.region);
    let ts = r.timestamp.as_bytes();
    assert!(
        ts.len() == 24 && ts[4] == b'-' && ts[10] == b'T' && ts[23] == b'Z',
        "RFC 3339 UTC: {}",
        r.timestamp
    );
    let sent_id = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["request_id"].as_str().map(str::to_owned));
    assert_eq!(
        r.request_id, sent_id,
        "the request_id the gateway sent, if any"
    );
    if let Some(text) = e.body {
        let recorded = r.error_body.as_deref().unwrap_or_default();
        assert!(recorded.contains(text), "{recorded}");
        assert_eq!(recorded, body, "the full (small) error body");
    }
    let json = r.to_json();
    let text = r.to_text();
    assert!(text.starts_with("Subject: LLM Gateway request "), "{text}");
    for (k, v) in [
        ("region", Some(r.region.as_str())),
        ("timestamp", Some(r.timestamp.as_str())),
        ("request_id", r.request_id.as_deref()),
        ("model_requested", r.model_requested.as_deref()),
        ("cause", r.cause.as_deref()),
        ("fix", r.fix.as_deref()),
    ] {
        assert_eq!(json[k].as_str(), v, "{k} in the JSON");
        if let Some(v) = v {
            assert!(text.contains(v), "{k} = {v} in the text:\n{text}");
        }
    }
    if let Some(s) = r.status {
        assert_eq!(json["status"], s);
        assert!(text.contains(&format!("status:         {s}")), "{text}");
    }
    assert_no_secret(&json.to_string());
    assert_no_secret(&text);
    assert_no_secret(&format!("{r:?}"));
}

fn assert_no_secret(text: &str) {
    for secret in [FAKE_KEY, OTHER_KEY] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

/// The call's span carries the cause and fix, and no secret anywhere in the trace.
fn check_span(capture: &Capture, cause: Cause) -> SpanData {
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "llm_gateway.error.cause").as_deref(),
        Some(cause.as_str())
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.error.fix").as_deref(),
        Some(cause.fix())
    );
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_no_secret(&everything_recorded(&capture.spans()));
    span
}

/// The `llm_gateway.preflight` events of a span: (cause, severity, field).
fn preflight_events(span: &SpanData) -> Vec<(String, String, String)> {
    span.events
        .iter()
        .filter(|e| e.name == "llm_gateway.preflight")
        .map(|e| {
            let get = |k: &str| {
                e.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.as_str().into_owned())
                    .unwrap_or_default()
            };
            assert!(!get("llm_gateway.preflight.fix").is_empty());
            (
                get("llm_gateway.preflight.cause"),
                get("llm_gateway.preflight.severity"),
                get("llm_gateway.preflight.field"),
            )
        })
        .collect()
}

fn event(cause: Cause, severity: &str, field: &str) -> (String, String, String) {
    (cause.as_str().into(), severity.into(), field.into())
}

// ---- 401 / 403 --------------------------------------------------------------------------

#[tokio::test]
async fn auth_missing_key() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, status) =
        send(client.post(sim.chat_url()).json(&chat("claude-sonnet-4-6"))).await;
    assert_eq!(status, 401);
    check_report(
        &report,
        &Expect {
            cause: Cause::AuthMissingKey,
            status: Some(401),
            model: Some("claude-sonnet-4-6"),
            region: "us",
            body: Some("Authentication error"),
        },
        &body,
    );
    assert!(report.request_id.is_some(), "the auth shape carries one");
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("not as a query parameter and not prefixed with Bearer"));
    let span = check_span(&capture, Cause::AuthMissingKey);
    assert_eq!(
        preflight_events(&span),
        [event(Cause::AuthMissingKey, "reject", "Authorization")]
    );
    assert_eq!(report.preflight.len(), 1);
}

#[tokio::test]
async fn auth_header_misspelled() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("Authorisation", FAKE_KEY)
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(status, 401);
    check_report(
        &report,
        &Expect {
            cause: Cause::AuthHeaderMisspelled,
            status: Some(401),
            model: Some("claude-sonnet-4-6"),
            region: "us",
            body: Some("Authentication error"),
        },
        &body,
    );
    assert!(report
        .detail
        .as_deref()
        .unwrap()
        .contains("`authorisation`"));
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("misspelled (e.g. Authorisation)"));
    let span = check_span(&capture, Cause::AuthHeaderMisspelled);
    assert_eq!(
        preflight_events(&span),
        [event(
            Cause::AuthHeaderMisspelled,
            "reject",
            "Authorization"
        )]
    );
}

#[tokio::test]
async fn auth_key_in_query() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, status) = send(
        client
            .post(format!("{}?api_key={FAKE_KEY}", sim.chat_url()))
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(status, 401);
    check_report(
        &report,
        &Expect {
            cause: Cause::AuthKeyInQuery,
            status: Some(401),
            model: Some("claude-sonnet-4-6"),
            region: "us",
            body: Some("Authentication error"),
        },
        &body,
    );
    assert!(report.detail.as_deref().unwrap().contains("`api_key`"));
    let span = check_span(&capture, Cause::AuthKeyInQuery);
    assert_eq!(
        preflight_events(&span),
        [event(Cause::AuthKeyInQuery, "reject", "url")]
    );
}

#[tokio::test]
async fn auth_bearer_prefix_is_a_warning_not_a_cause() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", format!("Bearer {FAKE_KEY}"))
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(status, 200, "Bearer is accepted in practice");
    let span = capture.call();
    assert_eq!(attr(&span, "llm_gateway.error.cause"), None);
    assert_eq!(
        preflight_events(&span),
        [event(Cause::AuthBearerPrefix, "warning", "Authorization")]
    );
    assert_eq!(report.preflight[0].cause, "auth_bearer_prefix");
    assert_eq!(report.cause, None);
    assert!(!body.is_empty());
    assert_no_secret(&report.to_text());
    assert_no_secret(&everything_recorded(&capture.spans()));
}

#[tokio::test]
async fn auth_invalid_key() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", OTHER_KEY)
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(status, 401);
    check_report(
        &report,
        &Expect {
            cause: Cause::AuthInvalidKey,
            status: Some(401),
            model: Some("claude-sonnet-4-6"),
            region: "us",
            body: Some("Invalid or missing API key"),
        },
        &body,
    );
    assert!(report.fix.as_deref().unwrap().contains("API Keys page"));
    let span = check_span(&capture, Cause::AuthInvalidKey);
    assert!(preflight_events(&span).is_empty());
}

#[tokio::test]
async fn auth_wrong_region_key() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Eu).await;
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", OTHER_KEY)
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(status, 401);
    check_report(
        &report,
        &Expect {
            cause: Cause::AuthWrongRegionKey,
            status: Some(401),
            model: Some("claude-sonnet-4-6"),
            region: "eu",
            body: Some("Invalid or missing API key"),
        },
        &body,
    );
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("generated for the EU region"));
    check_span(&capture, Cause::AuthWrongRegionKey);
}

// ---- 400 ------------------------------------------------------------------------------

async fn bad_request(body: Value, cause: Cause, said: &str, preflight: Option<&str>) {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let model = body["model"].as_str().map(str::to_owned);
    let (report, text, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&body),
    )
    .await;
    assert_eq!(status, 400);
    check_report(
        &report,
        &Expect {
            cause,
            status: Some(400),
            model: model.as_deref(),
            region: "us",
            body: Some(said),
        },
        &text,
    );
    assert!(
        report.detail.as_deref().unwrap().contains(said),
        "the gateway's message is echoed: {:?}",
        report.detail
    );
    let span = check_span(&capture, cause);
    assert_eq!(
        attr_str(&span, "llm_gateway.error.detail").map(|d| d.contains(said)),
        Some(true)
    );
    let events = preflight_events(&span);
    match preflight {
        Some(field) => assert_eq!(events, [event(cause, "reject", field)]),
        None => assert!(events.is_empty(), "{events:?}"),
    }
    assert_eq!(
        report.payload.as_ref(),
        Some(&body),
        "the reproducing payload"
    );
}

#[tokio::test]
async fn bad_request_missing_model() {
    bad_request(
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
        Cause::BadRequestMissingModel,
        "missing required field 'model'",
        Some("model"),
    )
    .await;
}

#[tokio::test]
async fn bad_request_missing_messages() {
    bad_request(
        json!({"model": "claude-sonnet-4-6", "max_tokens": 10}),
        Cause::BadRequestMissingMessages,
        "either 'messages' or 'prompt' is required",
        Some("messages"),
    )
    .await;
}

#[tokio::test]
async fn bad_request_messages_not_array() {
    bad_request(
        json!({"model": "claude-sonnet-4-6", "messages": "What is the capital of France?"}),
        Cause::BadRequestMessagesNotArray,
        "'messages' must be an array",
        Some("messages"),
    )
    .await;
}

#[tokio::test]
async fn bad_request_max_tokens() {
    bad_request(
        json!({"model": "claude-sonnet-4-6", "messages": [], "max_tokens": 500000}),
        Cause::BadRequestMaxTokens,
        "'max_tokens' must be an integer between 1 and 200000",
        None,
    )
    .await;
}

#[tokio::test]
async fn bad_request_other_echoes_the_gateway() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, text, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .header("content-type", "application/json")
            .body(format!("model=claude&key={FAKE_KEY}")),
    )
    .await;
    assert_eq!(status, 400);
    check_report(
        &report,
        &Expect {
            cause: Cause::BadRequestOther,
            status: Some(400),
            model: None,
            region: "us",
            body: Some("body is not valid JSON"),
        },
        &text,
    );
    assert!(report
        .detail
        .as_deref()
        .unwrap()
        .contains("body is not valid JSON"));
    assert_eq!(
        report.payload,
        Some(Value::String("model=claude&key=[REDACTED]".into())),
        "a non-JSON body is kept as redacted text"
    );
    check_span(&capture, Cause::BadRequestOther);
}

// ---- 404 ------------------------------------------------------------------------------

#[tokio::test]
async fn model_not_found_with_a_did_you_mean_from_one_cached_model_list() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client_with(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .lookup_region_models(true),
    );
    for _ in 0..2 {
        let (report, body, status) = send(
            client
                .post(sim.chat_url())
                .header("authorization", FAKE_KEY)
                .json(&chat("claude-sonet-4-6")),
        )
        .await;
        assert_eq!(status, 404);
        check_report(
            &report,
            &Expect {
                cause: Cause::ModelNotFound,
                status: Some(404),
                model: Some("claude-sonet-4-6"),
                region: "us",
                body: Some("not found"),
            },
            &body,
        );
        assert!(
            report
                .detail
                .as_deref()
                .unwrap()
                .contains("did you mean claude-sonnet-4-6?"),
            "{:?}",
            report.detail
        );
    }
    let lookups = sim
        .received()
        .iter()
        .filter(|r| r.path == "/v1/models")
        .count();
    assert_eq!(lookups, 1, "one cached lookup per host");
    let calls = capture.calls();
    assert_eq!(calls.len(), 2, "the lookup is not observed as a call");
    for span in &calls {
        assert_eq!(
            attr_str(span, "llm_gateway.error.cause").as_deref(),
            Some("model_not_found")
        );
    }
}

#[tokio::test]
async fn model_not_found_without_a_lookup() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let (report, body, _) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&chat("gpt-9-nonexistent")),
    )
    .await;
    check_report(
        &report,
        &Expect {
            cause: Cause::ModelNotFound,
            status: Some(404),
            model: Some("gpt-9-nonexistent"),
            region: "us",
            body: Some("gpt-9-nonexistent"),
        },
        &body,
    );
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("misspelled or has been deprecated"));
    check_span(&capture, Cause::ModelNotFound);
    assert!(
        sim.received().iter().all(|r| r.path != "/v1/models"),
        "opt-in only"
    );
}

#[tokio::test]
async fn model_not_in_region_openai_in_the_eu() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Eu).await;
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&chat("gpt-4o")),
    )
    .await;
    assert_eq!(status, 404);
    check_report(
        &report,
        &Expect {
            cause: Cause::ModelNotInRegion,
            status: Some(404),
            model: Some("gpt-4o"),
            region: "eu",
            body: Some("not available in region eu"),
        },
        &body,
    );
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("OpenAI models are only available in the US region"));
    let span = check_span(&capture, Cause::ModelNotInRegion);
    assert_eq!(
        preflight_events(&span),
        [event(Cause::ModelNotInRegion, "reject", "model")]
    );
}

#[tokio::test]
async fn model_not_in_region_from_the_region_model_list() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .region(SimRegion::Eu)
        .start()
        .await
        .unwrap();
    let client = client_with(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::EU)
            .lookup_region_models(true),
    );
    // A Claude model the EU list does not have, spelled like nothing on it. The simulator
    // says "not found", the list says "not here".
    let (report, body, _) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&chat("claude-instant-1-2")),
    )
    .await;
    check_report(
        &report,
        &Expect {
            cause: Cause::ModelNotInRegion,
            status: Some(404),
            model: Some("claude-instant-1-2"),
            region: "eu",
            body: Some("not found"),
        },
        &body,
    );
    assert!(report
        .detail
        .as_deref()
        .unwrap()
        .contains("/v1/models list"));
    check_span(&capture, Cause::ModelNotInRegion);
}

// ---- 429 / 5xx ------------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_with_limit_remaining_and_reset() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::RateLimited { retry_after_s: 7 });
    let (report, body, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&chat("claude-haiku-4-5")),
    )
    .await;
    assert_eq!(status, 429);
    check_report(
        &report,
        &Expect {
            cause: Cause::RateLimited,
            status: Some(429),
            model: Some("claude-haiku-4-5"),
            region: "us",
            body: Some("Rate limit exceeded"),
        },
        &body,
    );
    assert_eq!(
        report.detail.as_deref(),
        Some("limit 30/window, remaining 0, window resets in 7 s, Retry-After 7 s")
    );
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("exponential backoff and jitter"));
    check_span(&capture, Cause::RateLimited);
}

#[tokio::test]
async fn upstream_transient_5xx_json_and_html() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::Status(503));
    sim.inject(Fault::Html(502));
    for (status, said) in [(503, "Service Unavailable"), (502, "awselb")] {
        let (report, body, got) = send(
            client
                .post(sim.chat_url())
                .header("authorization", FAKE_KEY)
                .json(&chat("gemini-2.5-pro")),
        )
        .await;
        assert_eq!(got, status);
        check_report(
            &report,
            &Expect {
                cause: Cause::UpstreamTransient,
                status: Some(status),
                model: Some("gemini-2.5-pro"),
                region: "us",
                body: Some(said),
            },
            &body,
        );
        if status == 502 {
            assert!(report.detail.as_deref().unwrap().contains("load balancer"));
        }
    }
    let calls = capture.calls();
    assert_eq!(calls.len(), 2);
    for span in &calls {
        assert_eq!(
            attr_str(span, "llm_gateway.error.cause").as_deref(),
            Some("upstream_transient")
        );
    }
}

#[tokio::test]
async fn post_processing_failed_after_json_repair() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::JsonRepairFailed);
    let mut body = chat("claude-sonnet-4-6");
    body["post_processing_steps"] = json!([{"type": "json-repair"}]);
    let (report, text, status) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&body),
    )
    .await;
    assert_eq!(status, 500);
    check_report(
        &report,
        &Expect {
            cause: Cause::PostProcessingFailed,
            status: Some(500),
            model: Some("claude-sonnet-4-6"),
            region: "us",
            body: Some("json-repair"),
        },
        &text,
    );
    assert!(report
        .fix
        .as_deref()
        .unwrap()
        .contains("Structured outputs with a JSON schema"));
    check_span(&capture, Cause::PostProcessingFailed);

    // Any 500 for a json-repair request is the repair step's; the same 500 without it is not.
    sim.inject(Fault::Status(500));
    let (report, _, _) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&body),
    )
    .await;
    assert_eq!(report.cause.as_deref(), Some("post_processing_failed"));
    sim.inject(Fault::Status(500));
    let (report, _, _) = send(
        client
            .post(sim.chat_url())
            .header("authorization", FAKE_KEY)
            .json(&chat("claude-sonnet-4-6")),
    )
    .await;
    assert_eq!(report.cause.as_deref(), Some("upstream_transient"));
}

// ---- streams and bodies ---------------------------------------------------------------

#[tokio::test]
async fn stream_ignored_is_a_notice_not_an_error() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let mut body = chat("claude-sonnet-4-6");
    body["stream"] = json!(true);
    let response = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    let before = handle.report();
    assert_eq!(before.outcome, "in_progress");
    assert_eq!(before.request_id, None, "a 2xx body has not been read yet");
    let text = response.text().await.unwrap();
    let report = handle.report();
    assert_eq!(report.outcome, "ok");
    assert_eq!(report.cause.as_deref(), Some("stream_ignored"));
    assert_eq!(report.fix.as_deref(), Some(Cause::StreamIgnored.fix()));
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report.request_id.as_deref(), sent["request_id"].as_str());
    assert_eq!(report.model_served.as_deref(), Some("claude-sonnet-4-6"));

    let span = capture.call();
    assert_eq!(span.status, Status::Unset, "not an error");
    assert_eq!(attr(&span, "llm_gateway.error.cause"), None);
    let notice = span
        .events
        .iter()
        .find(|e| e.name == "llm_gateway.notice")
        .expect("a notice event");
    assert!(notice
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "llm_gateway.notice.cause"
            && kv.value.as_str() == "stream_ignored"));
    assert!(notice
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "llm_gateway.notice.fix"
            && kv
                .value
                .as_str()
                .contains("supported on OpenAI models only")));
    assert_eq!(
        preflight_events(&span),
        [event(Cause::StreamIgnored, "warning", "stream")]
    );
}

#[tokio::test]
async fn stream_interrupted_mid_way() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::BrokenStream { after_chunks: 2 });
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let response = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    let read = response.bytes().await;
    assert!(read.is_err(), "the stream broke");
    let report = handle.report();
    assert_eq!(report.cause.as_deref(), Some("stream_interrupted"));
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.status, Some(200));
    assert!(
        report.request_id.is_some(),
        "taken from the chunks that arrived"
    );
    assert_no_secret(&report.to_text());
    check_span(&capture, Cause::StreamInterrupted);
}

#[tokio::test]
async fn stream_without_done_is_interrupted_too() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::NoDone);
    let mut body = chat("gpt-4o-mini");
    body["stream"] = json!(true);
    let response = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    response.bytes().await.unwrap();
    let report = handle.report();
    assert_eq!(report.cause.as_deref(), Some("stream_interrupted"));
    assert!(report.detail.as_deref().unwrap().contains("[DONE]"));
    check_span(&capture, Cause::StreamInterrupted);
}

#[tokio::test]
async fn malformed_response_truncated_json() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::TruncatedJson);
    let response = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    response.bytes().await.unwrap();
    let report = handle.report();
    assert_eq!(report.cause.as_deref(), Some("malformed_response"));
    assert_eq!(report.status, Some(200));
    check_span(&capture, Cause::MalformedResponse);
}

// ---- no response ----------------------------------------------------------------------

#[tokio::test]
async fn timeout_fills_the_report_slot() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(sim.addr().to_string(), Region::US)
        .retry(Retry::disabled())
        .build()
        .unwrap();
    let client = ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    )
    .with(middleware)
    .build();
    sim.inject(Fault::Slow { delay_ms: 3000 });
    let slot = ReportSlot::new();
    let result = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&chat("claude-sonnet-4-6"))
        .with_extension(slot.clone())
        .send()
        .await;
    assert!(result.is_err());
    let report = slot.report().expect("the middleware filled the slot");
    assert_eq!(report.cause.as_deref(), Some("timeout"));
    assert_eq!(report.status, None);
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].error_type.as_deref(), Some("timeout"));
    assert_eq!(report.model_requested.as_deref(), Some("claude-sonnet-4-6"));
    assert!(report.payload.is_some());
    assert_no_secret(&report.to_text());
    assert_no_secret(&report.to_json().to_string());
    check_span(&capture, Cause::Timeout);
}

#[tokio::test]
async fn connect_fills_the_report_slot() {
    let capture = Capture::start();
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }; // closed: nothing listens there now
    let client = client_for(&addr.to_string(), Region::US);
    let slot = ReportSlot::new();
    let result = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("authorization", FAKE_KEY)
        .json(&chat("claude-sonnet-4-6"))
        .with_extension(slot.clone())
        .send()
        .await;
    assert!(result.is_err());
    let report = slot.report().unwrap();
    assert_eq!(report.cause.as_deref(), Some("connect"));
    assert_eq!(report.error_type.as_deref(), Some("connect"));
    assert_eq!(report.endpoint, addr.to_string());
    assert_no_secret(&report.to_text());
    check_span(&capture, Cause::Connect);
}

// ---- fail-fast pre-flight -------------------------------------------------------------

#[tokio::test]
async fn fail_fast_preflight_sends_nothing_and_names_the_field() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client_with(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .preflight(PreflightMode::FailFast),
    );
    let slot = ReportSlot::new();
    let body = json!({"model": "claude-sonnet-4-6", "messages": format!("my key is {FAKE_KEY}")});
    let err = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&body)
        .with_extension(slot.clone())
        .send()
        .await
        .expect_err("not sent");
    assert_eq!(sim.request_count(), 0, "nothing was sent");
    let message = err.to_string();
    assert!(message.contains("`messages`"), "{message}");
    assert!(message.contains("send `messages` as an array"), "{message}");
    assert!(message.contains("request not sent"), "{message}");
    assert!(matches!(err, reqwest_middleware::Error::Middleware(_)));
    assert_no_secret(&format!("{err:?} {message}"));

    let report = err.support_report().expect("carried by the error");
    assert_eq!(report.outcome, "not_sent");
    assert_eq!(
        report.cause.as_deref(),
        Some("bad_request_messages_not_array")
    );
    assert_eq!(report.status, None);
    assert!(report.attempts.is_empty());
    assert_eq!(
        report.payload.as_ref().unwrap()["messages"],
        "my key is [REDACTED]",
        "key-like strings are redacted from the payload"
    );
    assert_eq!(slot.report().as_ref(), Some(&report));
    assert_no_secret(&report.to_text());
    assert_no_secret(&report.to_json().to_string());

    let span = capture.call();
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("preflight"));
    assert_eq!(
        attr_str(&span, "llm_gateway.error.cause").as_deref(),
        Some("bad_request_messages_not_array")
    );
    assert_eq!(
        preflight_events(&span),
        [event(
            Cause::BadRequestMessagesNotArray,
            "reject",
            "messages"
        )]
    );
    assert!(capture.attempts_of(&span).is_empty(), "no attempt");

    // Warnings alone do not stop a call.
    let ok = client
        .post(sim.chat_url())
        .header("authorization", format!("Bearer {FAKE_KEY}"))
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn preflight_off_records_nothing() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client_with(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .preflight(PreflightMode::Off),
    );
    let r = client
        .post(sim.chat_url())
        .json(&json!({"model": "claude-sonnet-4-6", "messages": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let span = capture.call();
    assert!(preflight_events(&span).is_empty());
    assert_eq!(
        attr_str(&span, "llm_gateway.error.cause").as_deref(),
        Some("bad_request_messages_not_array"),
        "the diagnosis still runs"
    );
}

// ---- secrets --------------------------------------------------------------------------

#[tokio::test]
async fn an_echoed_key_never_reaches_the_report() {
    let capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    sim.inject(Fault::EchoKey(401));
    let (report, body, _) = send(
        client
            .post(sim.chat_url())
            .header("authorization", format!("Bearer {FAKE_KEY}"))
            .json(&json!({
                "model": "claude-sonnet-4-6",
                "messages": [{"role": "user", "content": format!("the key {FAKE_KEY} again")}],
            })),
    )
    .await;
    assert!(
        body.contains(FAKE_KEY),
        "the hostile gateway echoed it to the user"
    );
    assert!(report.error_body.as_deref().unwrap().contains("[REDACTED]"));
    assert_eq!(report.cause.as_deref(), Some("auth_invalid_key"));
    assert_no_secret(&report.to_text());
    assert_no_secret(&report.to_json().to_string());
    assert_no_secret(&format!("{report:?}"));
    assert_no_secret(&everything_recorded(&capture.spans()));
}

#[tokio::test]
async fn a_success_has_a_complete_report_once_the_body_is_read() {
    let _capture = Capture::start();
    let (sim, client) = keyed(SimRegion::Us).await;
    let response = client
        .post(sim.chat_url())
        .header("authorization", FAKE_KEY)
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    let handle = response.support_report_handle().unwrap();
    let body: Value = response.json().await.unwrap();
    let report = handle.report();
    assert_eq!(report.outcome, "ok");
    assert_eq!(report.cause, None);
    assert_eq!(report.status, Some(200));
    assert_eq!(report.request_id.as_deref(), body["request_id"].as_str());
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].status, Some(200));
    assert!(report
        .to_text()
        .contains(body["request_id"].as_str().unwrap()));
}
