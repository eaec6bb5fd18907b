//! Non-2xx answers: every error shape the gateway has been seen to send, recorded on the span
//! even when the user never reads the body.

use llm_gateway_simulator::Fault;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;

use crate::support::*;

/// Sends one chat call with `fault` injected, returns the status, the body the user read, and
/// the call's span.
async fn call_with(fault: Fault, read_body: bool) -> (u16, Vec<u8>, SpanData) {
    let capture = Capture::start();
    let (sim, client) = simulator_without_retry().await;
    sim.inject(fault);
    let response = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = if read_body {
        response.bytes().await.unwrap().to_vec()
    } else {
        drop(response);
        Vec::new()
    };
    (status, body, capture.call())
}

fn assert_failed(span: &SpanData, status: u16) {
    assert_eq!(attr_str(span, "error.type"), Some(status.to_string()));
    assert_eq!(
        attr_i64(span, "http.response.status_code"),
        Some(i64::from(status))
    );
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
}

#[tokio::test]
async fn rate_limited_429_documented_shape() {
    let (status, body, span) = call_with(Fault::RateLimited { retry_after_s: 7 }, true).await;
    assert_eq!(status, 429);
    assert_failed(&span, 429);
    let recorded = attr_str(&span, "llm_gateway.error.body").unwrap();
    assert_eq!(
        recorded.as_bytes(),
        body.as_slice(),
        "small error bodies are recorded whole"
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        attr_str(&span, "llm_gateway.error.message"),
        json["error"]["message"].as_str().map(String::from)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.error.code").as_deref(),
        Some("429")
    );
    assert_eq!(attr_f64(&span, "llm_gateway.retry_after_s"), Some(7.0));
    assert_eq!(attr_i64(&span, "llm_gateway.rate_limit.remaining"), Some(0));
    assert_eq!(attr_f64(&span, "llm_gateway.rate_limit.reset_s"), Some(7.0));
    match &span.status {
        Status::Error { description } => assert_eq!(
            description.as_ref(),
            json["error"]["message"].as_str().unwrap()
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_body_is_recorded_even_when_the_user_never_reads_it() {
    let (status, _, span) = call_with(Fault::Status(503), false).await;
    assert_eq!(status, 503);
    assert_failed(&span, 503);
    assert!(attr_str(&span, "llm_gateway.error.body")
        .unwrap()
        .contains("\"code\":503"));
    // Read to the end: only a body dropped early says so.
    assert_eq!(attr(&span, "llm_gateway.response.read_to_end"), None);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_turned_into_seconds() {
    let (status, _, span) = call_with(Fault::RetryAfterDate { secs_from_now: 30 }, true).await;
    assert_eq!(status, 429);
    let secs = attr_f64(&span, "llm_gateway.retry_after_s").unwrap();
    // An HTTP date has whole seconds: the delay is 30 s give or take one.
    assert!((28.5..=31.0).contains(&secs), "{secs}");
}

#[tokio::test]
async fn flat_error_shape() {
    let (status, body, span) = call_with(Fault::Flat(400), true).await;
    assert_eq!(status, 400);
    assert_failed(&span, 400);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        attr_str(&span, "llm_gateway.error.message"),
        json["message"].as_str().map(String::from)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        json["request_id"].as_str().map(String::from)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.error.code"),
        json["code"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn auth_error_shape_with_string_error() {
    let (status, body, span) = call_with(Fault::Auth, true).await;
    assert_eq!(status, 401);
    assert_failed(&span, 401);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        attr_str(&span, "llm_gateway.error.message"),
        json["error"].as_str().map(String::from)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        json["request_id"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn html_502_from_a_load_balancer() {
    let (status, body, span) = call_with(Fault::Html(502), true).await;
    assert_eq!(status, 502);
    assert_failed(&span, 502);
    assert!(String::from_utf8_lossy(&body).contains("<html"));
    assert_eq!(
        attr_str(&span, "llm_gateway.error.body")
            .unwrap()
            .as_bytes(),
        body.as_slice()
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.response.json").as_deref(),
        Some("malformed")
    );
    assert_eq!(attr(&span, "llm_gateway.request_id"), None);
}

#[tokio::test]
async fn empty_500() {
    let (status, body, span) = call_with(Fault::Empty(500), true).await;
    assert_eq!(status, 500);
    assert!(body.is_empty());
    assert_failed(&span, 500);
    assert_eq!(
        attr_str(&span, "llm_gateway.error.body").as_deref(),
        Some("")
    );
    assert_eq!(attr_i64(&span, "llm_gateway.response.body_size"), Some(0));
}

#[tokio::test]
async fn plain_text_and_garbage_error_bodies() {
    let (_, body, span) = call_with(Fault::PlainText(503), true).await;
    assert_failed(&span, 503);
    assert_eq!(
        attr_str(&span, "llm_gateway.error.body")
            .unwrap()
            .as_bytes(),
        body.as_slice()
    );

    let (_, body, span) = call_with(Fault::Garbage(500), true).await;
    assert_failed(&span, 500);
    assert!(
        std::str::from_utf8(&body).is_err(),
        "the simulator sends invalid UTF-8"
    );
    let recorded = attr_str(&span, "llm_gateway.error.body").unwrap();
    assert_eq!(
        recorded,
        String::from_utf8_lossy(&body),
        "recorded lossily, never dropped"
    );
}

#[tokio::test]
async fn model_not_found_404_and_400_validation_come_from_the_gateway() {
    let capture = Capture::start();
    let (sim, client) = simulator_without_retry().await;
    let r = client
        .post(sim.chat_url())
        .json(&chat("gpt-9-nonexistent"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(sim.chat_url())
        .json(&serde_json::json!({"messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let calls = capture.calls();
    assert_eq!(calls.len(), 2);
    let messages: Vec<String> = calls
        .iter()
        .map(|s| attr_str(s, "llm_gateway.error.message").unwrap())
        .collect();
    assert!(messages[0].contains("gpt-9-nonexistent"), "{messages:?}");
    assert!(messages[1].contains("model"), "{messages:?}");
    assert_eq!(calls[1].name, "chat", "no model, no model in the name");
}

#[tokio::test]
async fn error_body_is_capped_and_the_user_still_gets_all_of_it() {
    let capture = Capture::start();
    let big_error = format!(
        "{{\"error\":{{\"code\":500,\"message\":\"{}\"}}}}",
        "x".repeat(100_000)
    );
    let addr = raw_server(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json",
        big_error
            .as_bytes()
            .chunks(4096)
            .map(<[u8]>::to_vec)
            .collect(),
        std::time::Duration::ZERO,
        Ending::Close,
    )
    .await;
    let middleware = llm_gateway_otel::GatewayMiddleware::builder()
        .traced()
        .gateway_host(addr.to_string(), llm_gateway_otel::Region::US)
        .error_body_limit(1000)
        .build()
        .unwrap();
    let client = client(middleware);
    let response = post_chat(&client, addr).await;
    let body = response.bytes().await.unwrap();
    assert_eq!(body.as_ref(), big_error.as_bytes());
    let span = capture.call();
    let recorded = attr_str(&span, "llm_gateway.error.body").unwrap();
    assert!(
        recorded.starts_with(&big_error[..1000]),
        "{}",
        &recorded[..80]
    );
    assert!(recorded.len() < 1100, "capped: {} bytes", recorded.len());
    assert!(recorded.contains("truncated"), "the cut is marked");
    assert_eq!(
        attr_i64(&span, "llm_gateway.response.body_size"),
        Some(big_error.len() as i64)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.error.code").as_deref(),
        Some("500")
    );
}
