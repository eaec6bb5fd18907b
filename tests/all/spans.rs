//! A successful JSON call: every attribute of the logical span and its attempt span.

use llm_gateway_otel::{AttemptSpans, GatewayMiddleware, Region};
use llm_gateway_simulator::{Region as SimRegion, Simulator};
use opentelemetry::trace::Status;
use opentelemetry::{Array, Value};

use crate::support::*;

#[tokio::test]
async fn json_success_span_has_every_attribute() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let mut body = chat("claude-sonnet-4-6");
    body["temperature"] = serde_json::json!(0.2);
    let sent_at = std::time::SystemTime::now();
    let response = client
        .post(sim.chat_url())
        .header("authorization", "sim-key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.url().as_str(),
        sim.chat_url(),
        "url() survives the body wrapper"
    );
    let headers = response.headers().clone();
    let json: serde_json::Value = response.json().await.unwrap();

    let span = capture.call();
    assert_eq!(span.name, "chat claude-sonnet-4-6");
    assert_client_kind(&span);
    assert_eq!(span.status, Status::Unset);
    assert!(span.start_time >= sent_at - std::time::Duration::from_millis(5));
    assert!(span.end_time >= span.start_time);
    assert_eq!(
        attr_str(&span, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    assert_eq!(
        attr_str(&span, "gen_ai.provider.name").as_deref(),
        Some("assemblyai.llm_gateway")
    );
    assert_eq!(
        attr_str(&span, "gen_ai.request.model").as_deref(),
        Some("claude-sonnet-4-6")
    );
    assert_eq!(
        attr_str(&span, "gen_ai.response.model"),
        json["model"].as_str().map(String::from)
    );
    let request_id = json["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        Some(request_id.clone())
    );
    assert_eq!(attr_str(&span, "gen_ai.response.id"), Some(request_id));
    assert_eq!(attr_i64(&span, "gen_ai.request.max_tokens"), Some(1000));
    assert_eq!(attr_f64(&span, "gen_ai.request.temperature"), Some(0.2));
    assert_eq!(attr_bool(&span, "gen_ai.request.stream"), Some(false));
    assert_eq!(
        attr_i64(&span, "gen_ai.usage.input_tokens"),
        json["usage"]["input_tokens"].as_i64()
    );
    assert_eq!(
        attr_i64(&span, "gen_ai.usage.output_tokens"),
        json["usage"]["output_tokens"].as_i64()
    );
    assert_eq!(
        attr(&span, "gen_ai.response.finish_reasons"),
        Some(Value::Array(Array::String(vec!["end_turn".into()])))
    );
    assert_eq!(attr_str(&span, "llm_gateway.region").as_deref(), Some("us"));
    assert_eq!(
        attr_str(&span, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        attr_i64(&span, "server.port"),
        Some(i64::from(sim.addr().port()))
    );
    assert_eq!(attr_i64(&span, "http.response.status_code"), Some(200));
    assert_eq!(
        attr_i64(&span, "http.request.resend_count"),
        None,
        "the HTTP conventions ask for it only on a request that was re-sent"
    );
    let header = |n: &str| {
        headers
            .get(n)
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(
        attr_i64(&span, "llm_gateway.rate_limit.limit"),
        Some(header("x-ratelimit-limit"))
    );
    assert_eq!(
        attr_i64(&span, "llm_gateway.rate_limit.remaining"),
        Some(header("x-ratelimit-remaining"))
    );
    assert_eq!(
        attr_f64(&span, "llm_gateway.rate_limit.reset_s"),
        Some(header("x-ratelimit-reset") as f64)
    );
    // Default-valued extras are not written: not streamed (none asked for), read to the
    // end, complete JSON.
    assert_eq!(attr(&span, "llm_gateway.response.streamed"), None);
    assert_eq!(attr(&span, "llm_gateway.response.read_to_end"), None);
    assert_eq!(attr(&span, "llm_gateway.response.json"), None);
    assert_eq!(attr(&span, "llm_gateway.cancelled"), None);
    assert_eq!(attr(&span, "error.type"), None);
    assert_eq!(attr(&span, "llm_gateway.error.body"), None);

    assert!(
        capture.attempts_of(&span).is_empty(),
        "one attempt: one span, the call's"
    );
}

/// With `AttemptSpans::Always`, a single attempt gets its `POST` span too, holding what the
/// call's span does not (method, URL, resend count), and not what it does (server address).
#[tokio::test]
async fn attempt_spans_always_records_the_single_attempt() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = client(
        GatewayMiddleware::builder()
            .traced()
            .gateway_host(sim.addr().to_string(), Region::US)
            .attempt_spans(AttemptSpans::Always)
            .build()
            .unwrap(),
    );
    send_read(&client, &sim.chat_url(), &chat("gpt-4o")).await;
    let span = capture.call();
    let attempts = capture.attempts_of(&span);
    assert_eq!(attempts.len(), 1, "one attempt span under the call span");
    let attempt = &attempts[0];
    assert_eq!(attr(attempt, "server.address"), None, "on the call span");
    assert_eq!(attempt.name, "POST");
    assert_client_kind(attempt);
    assert_eq!(
        attempt.span_context.trace_id(),
        span.span_context.trace_id()
    );
    assert_eq!(
        attr_str(attempt, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(attr_str(attempt, "url.full"), Some(sim.chat_url()));
    assert_eq!(attr_i64(attempt, "http.response.status_code"), Some(200));
    assert_eq!(
        attr_i64(attempt, "http.request.resend_count"),
        None,
        "the first attempt is no re-send"
    );
}

/// A body with both the provider's completion id and the gateway's request id: each goes to
/// its own attribute (`gen_ai.response.id` is the completion's id, as the GenAI conventions
/// define it); neither is lost or written twice.
#[tokio::test]
async fn completion_id_and_request_id_each_have_their_attribute() {
    let capture = Capture::start();
    let body = br#"{"id":"chatcmpl-abc123","request_id":"req-42","model":"gpt-4o","choices":[]}"#;
    let addr = json_server(body, Ending::Close).await;
    let client = client_for(&addr.to_string(), Region::US);
    let url = format!("http://{addr}/v1/chat/completions");
    assert_eq!(send_read(&client, &url, &chat("gpt-4o")).await, 200);
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "gen_ai.response.id").as_deref(),
        Some("chatcmpl-abc123")
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id").as_deref(),
        Some("req-42")
    );
}

#[tokio::test]
async fn usage_is_read_in_every_spelling() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    for model in ["gpt-4o", "gemini-2.5-flash"] {
        let json: serde_json::Value = client
            .post(sim.chat_url())
            .json(&chat(model))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let usage = &json["usage"];
        let span = capture
            .calls()
            .into_iter()
            .find(|s| attr_str(s, "gen_ai.request.model").as_deref() == Some(model))
            .unwrap();
        let input = usage["input_tokens"]
            .as_i64()
            .or(usage["prompt_tokens"].as_i64());
        let output = usage["output_tokens"]
            .as_i64()
            .or(usage["completion_tokens"].as_i64());
        assert!(input.is_some() && output.is_some(), "{usage}");
        assert_eq!(
            attr_i64(&span, "gen_ai.usage.input_tokens"),
            input,
            "{model}"
        );
        assert_eq!(
            attr_i64(&span, "gen_ai.usage.output_tokens"),
            output,
            "{model}"
        );
        if let Some(cached) = usage["prompt_tokens_details"]["cached_tokens"].as_i64() {
            assert_eq!(
                attr_i64(&span, "gen_ai.usage.cache_read.input_tokens"),
                Some(cached)
            );
        }
    }
    assert_eq!(capture.calls().len(), 2);
}

#[tokio::test]
async fn region_comes_from_configuration_for_a_simulated_eu_host() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .region(SimRegion::Eu)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim.addr().to_string(), Region::EU);
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "OpenAI models are US-only");
    let span = capture.call();
    assert_eq!(attr_str(&span, "llm_gateway.region").as_deref(), Some("eu"));
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("404"));
    let message = attr_str(&span, "llm_gateway.error.message").unwrap();
    assert!(
        message.contains("gpt-4o") && message.contains("eu"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_hosts_are_region_unknown_unless_configured() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let any_host = llm_gateway_otel::GatewayMiddleware::builder()
        .traced()
        .matcher(|r: &reqwest::Request| r.url().path() == "/v1/chat/completions")
        .build()
        .unwrap();
    let client = client(any_host);
    client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        attr_str(&capture.call(), "llm_gateway.region").as_deref(),
        Some("unknown")
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_span() {
    let capture = Capture::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client_for(&addr.to_string(), Region::US);
    let err = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    let span = capture.call();
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("connect"));
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    let attempt = &capture.attempts_of(&span)[0];
    assert_eq!(attr_str(attempt, "error.type").as_deref(), Some("connect"));
}

#[tokio::test]
async fn a_request_body_that_is_not_json_is_sent_and_not_described() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let response = client
        .post(sim.chat_url())
        .body("not json {")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let span = capture.call();
    assert_eq!(span.name, "chat");
    assert_eq!(attr(&span, "gen_ai.request.model"), None);
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("400"));
    assert_eq!(sim.received().last().unwrap().body.as_ref(), b"not json {");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_to_several_models_keep_their_spans_apart() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .rate_limit_per_minute(1000)
        .start()
        .await
        .unwrap();
    let client = client_for(&sim.addr().to_string(), Region::US);
    let models = ["gpt-4o", "claude-sonnet-4-6", "gemini-2.5-flash"];
    let calls = (0..60).map(|i| {
        let client = client.clone();
        let url = sim.chat_url();
        let model = models[i % 3];
        let fault = if i % 5 == 0 { "503" } else { "none" };
        async move {
            let r = client
                .post(url)
                .header("x-simulator-fault", fault)
                .json(&chat(model))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (model, status, body["request_id"].as_str().map(String::from))
        }
    });
    // Joined on this task, so the spans are made under this thread's capture; the I/O runs
    // on both runtime threads.
    let results = futures_util::future::join_all(calls).await;
    let spans = capture.calls();
    assert_eq!(spans.len(), 60);
    for (model, status, request_id) in results {
        if let Some(id) = request_id {
            let span = spans
                .iter()
                .find(|s| attr_str(s, "llm_gateway.request_id").as_deref() == Some(id.as_str()))
                .expect("a span per request_id");
            assert_eq!(
                attr_str(span, "gen_ai.request.model").as_deref(),
                Some(model)
            );
            assert_eq!(
                attr_i64(span, "http.response.status_code"),
                Some(i64::from(status))
            );
        } else {
            assert_eq!(status, 503);
        }
    }
    let failed = spans
        .iter()
        .filter(|s| attr_str(s, "error.type").as_deref() == Some("503"))
        .count();
    assert_eq!(failed, 12);
}

/// A call made inside the application's own span is that span's child, whether the
/// application uses `tracing` (bridged by `tracing-opentelemetry`) or the OpenTelemetry API,
/// in the same trace (a single attempt has no span of its own).
#[tokio::test]
async fn a_call_inside_an_application_span_is_its_child() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
    use tracing::Instrument as _;

    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let send = || async {
        send_read(&client, &sim.chat_url(), &chat("gpt-4o")).await;
    };

    // A `tracing` span of the application.
    send()
        .instrument(tracing::info_span!("handle_request"))
        .await;
    // An OpenTelemetry span of the application.
    let tracer = capture.provider().tracer("app");
    let outer = tracer.start("app_operation");
    let cx = opentelemetry::Context::current_with_span(outer);
    send().with_context(cx.clone()).await;
    cx.span().end();

    let spans = capture.spans();
    let calls = capture.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for (call, parent_name) in calls.iter().zip(["handle_request", "app_operation"]) {
        let parent = spans
            .iter()
            .find(|s| s.name == parent_name)
            .unwrap_or_else(|| panic!("no {parent_name} span in {spans:#?}"));
        assert_eq!(
            call.parent_span_id,
            parent.span_context.span_id(),
            "{parent_name}"
        );
        assert_eq!(call.span_context.trace_id(), parent.span_context.trace_id());
        assert!(
            capture.attempts_of(call).is_empty(),
            "one attempt: no attempt span"
        );
    }
    // Outside any span, a call starts its own trace.
    send().await;
    let roots: Vec<_> = capture
        .calls()
        .into_iter()
        .filter(|c| c.parent_span_id == opentelemetry::trace::SpanId::INVALID)
        .collect();
    assert_eq!(roots.len(), 1);
}
