//! The body reaches the user byte for byte, whatever it is, and the span says what it was.

use std::time::Duration;

use llm_gateway_otel::Region;
use llm_gateway_simulator::Fault;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;

use crate::support::*;

/// Splits `bytes` into chunks of irregular sizes (1 byte, odd sizes, large ones).
fn irregular_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let sizes = [1usize, 7, 8191, 3, 65_536, 100_003, 17];
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let end = (at + sizes[i % sizes.len()]).min(bytes.len());
        out.push(bytes[at..end].to_vec());
        at = end;
        i += 1;
    }
    out
}

/// One call to a raw server that answers `head` + `body`; returns what the user read and the span.
async fn raw_call(
    head: &str,
    body: &[u8],
    pause: Duration,
    ending: Ending,
) -> (Result<Vec<u8>, reqwest::Error>, SpanData) {
    let capture = Capture::start();
    let addr = raw_server(head, irregular_chunks(body), pause, ending).await;
    let client = client_for(&addr.to_string(), Region::US);
    let response = post_chat(&client, addr).await;
    let read = response.bytes().await.map(|b| b.to_vec());
    (read, capture.call())
}

const JSON_200: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json";

#[tokio::test]
async fn a_5_mib_body_arrives_unchanged_and_fields_after_it_are_picked() {
    let content = "abcdefghijklmnopqrstuvwxyz".repeat(5 * 1024 * 1024 / 26);
    let body = format!(
        r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}],"request_id":"7f3c9a10-1b2c-4d5e-8f90-a1b2c3d4e5f6","model":"gpt-4o-2024-08-06","usage":{{"prompt_tokens":12,"completion_tokens":1310720,"total_tokens":1310732}}}}"#
    );
    assert!(body.len() > 5 * 1000 * 1000);
    let (read, span) = raw_call(JSON_200, body.as_bytes(), Duration::ZERO, Ending::Close).await;
    let read = read.unwrap();
    assert!(
        read == body.as_bytes(),
        "byte for byte ({} vs {} bytes)",
        read.len(),
        body.len()
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id").as_deref(),
        Some("7f3c9a10-1b2c-4d5e-8f90-a1b2c3d4e5f6")
    );
    assert_eq!(
        attr_str(&span, "gen_ai.response.model").as_deref(),
        Some("gpt-4o-2024-08-06")
    );
    assert_eq!(
        attr_i64(&span, "gen_ai.usage.output_tokens"),
        Some(1_310_720)
    );
    assert_eq!(
        attr_i64(&span, "llm_gateway.response.body_size"),
        Some(body.len() as i64)
    );
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn the_simulators_big_answer_arrives_whole() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::Big {
        content_bytes: 5 * 1024 * 1024,
    });
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        json["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        5 * 1024 * 1024
    );
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        json["request_id"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn non_utf8_garbage_on_200_is_delivered_and_recorded_as_malformed() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 0x80) as u8).collect();
    let (read, span) = raw_call(JSON_200, &garbage, Duration::ZERO, Ending::Close).await;
    assert_eq!(read.unwrap(), garbage);
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("malformed_response")
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.response.json").as_deref(),
        Some("malformed")
    );
    assert!(matches!(span.status, Status::Error { .. }));
}

#[tokio::test]
async fn truncated_json_on_200_is_malformed_response() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::TruncatedJson);
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert!(
        response.json::<serde_json::Value>().await.is_err(),
        "the user cannot parse it either"
    );
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("malformed_response")
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.response.json").as_deref(),
        Some("truncated")
    );
}

#[tokio::test]
async fn a_body_cut_by_the_server_is_body_interrupted_and_keeps_what_arrived() {
    let body = br#"{"request_id":"4b1d2c3e-0000-4000-8000-000000000001","choices":[{"index":0,"message":{"content":"Par"#;
    let (read, span) = raw_call(JSON_200, body, Duration::from_millis(5), Ending::Abort).await;
    assert!(read.is_err(), "the user sees the cut");
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("body_interrupted")
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id").as_deref(),
        Some("4b1d2c3e-0000-4000-8000-000000000001")
    );
}

#[tokio::test]
async fn a_stalling_server_delays_but_does_not_change_the_body() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::Stall {
        after_bytes: 40,
        delay_ms: 150,
    });
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = response.json().await.unwrap();
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        json["request_id"].as_str().map(String::from)
    );
    let lasted = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        lasted >= Duration::from_millis(140),
        "the span covers the stall: {lasted:?}"
    );
}

#[tokio::test]
async fn a_body_never_read_ends_the_span_when_dropped() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::Big {
        content_bytes: 2 * 1024 * 1024,
    });
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert!(
        capture.calls().is_empty(),
        "the span is open while the body is unread"
    );
    drop(response);
    let span = capture.call();
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.read_to_end"),
        Some(false)
    );
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn a_20_mib_body_arrives_unchanged() {
    let content = "0123456789".repeat(2 * 1024 * 1024);
    let body = format!(
        r#"{{"request_id":"0e0e0e0e-2020-4020-8020-202020202020","choices":[{{"index":0,"message":{{"content":"{content}"}},"finish_reason":"length"}}],"usage":{{"input_tokens":1,"output_tokens":2}}}}"#
    );
    let (read, span) = raw_call(JSON_200, body.as_bytes(), Duration::ZERO, Ending::Close).await;
    assert!(read.unwrap() == body.as_bytes(), "byte for byte");
    assert_eq!(
        attr_i64(&span, "llm_gateway.response.body_size"),
        Some(body.len() as i64)
    );
    assert_eq!(attr_i64(&span, "gen_ai.usage.output_tokens"), Some(2));
}

#[tokio::test]
async fn an_html_502_and_an_empty_200_arrive_as_sent() {
    let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center></body>\r\n</html>\r\n";
    let (read, span) = raw_call(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html",
        html,
        Duration::ZERO,
        Ending::Close,
    )
    .await;
    assert_eq!(read.unwrap(), html);
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("502"));
    assert_eq!(
        attr_str(&span, "llm_gateway.error.body")
            .unwrap()
            .as_bytes(),
        html
    );

    let (read, span) = raw_call(JSON_200, b"", Duration::ZERO, Ending::Close).await;
    assert!(read.unwrap().is_empty());
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("malformed_response")
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.response.json").as_deref(),
        Some("truncated")
    );
}

#[tokio::test]
async fn a_stream_closed_mid_event_delivers_every_byte_sent_then_the_error() {
    let sent = b"data: {\"id\":\"c1\",\"request_id\":\"5e5e5e5e-0000-4000-8000-000000000005\",\"choices\":[{\"delta\":{\"content\":\"Pa\"}}]}\n\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"cont";
    let (read, span) = raw_call(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream",
        sent,
        Duration::from_millis(2),
        Ending::Abort,
    )
    .await;
    assert!(read.is_err(), "the cut reaches the user");
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("stream_interrupted")
    );
    assert_eq!(
        attr_i64(&span, "llm_gateway.response.body_size"),
        Some(sent.len() as i64),
        "every byte sent passed through"
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id").as_deref(),
        Some("5e5e5e5e-0000-4000-8000-000000000005")
    );
}
