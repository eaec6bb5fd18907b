//! Streamed (SSE) answers: facts taken from the chunks as they pass, and broken streams.

use futures_util::StreamExt;
use llm_gateway_simulator::Fault;
use opentelemetry::trace::Status;

use crate::support::*;

fn streamed(model: &str) -> serde_json::Value {
    let mut body = chat(model);
    body["stream"] = serde_json::json!(true);
    body
}

/// Reads the body chunk by chunk, as a streaming user would.
async fn read_stream(response: reqwest::Response) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => bytes.extend_from_slice(&c),
            Err(e) => return (bytes, Some(e)),
        }
    }
    (bytes, None)
}

/// The `data:` payloads of an SSE text.
fn data_events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_stream_is_observed_chunk_by_chunk() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let response = client
        .post(sim.chat_url())
        .header("x-simulator-chunks", "7")
        .json(&streamed("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let (bytes, err) = read_stream(response).await;
    assert!(err.is_none());
    let text = String::from_utf8(bytes).unwrap();
    let events = data_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let usage_chunk: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    let first_chunk: serde_json::Value = serde_json::from_str(&events[0]).unwrap();

    let span = capture.call();
    assert_eq!(span.name, "chat gpt-4o-mini");
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr_bool(&span, "gen_ai.request.stream"), Some(true));
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.streamed"),
        Some(true)
    );
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.stream_done"),
        Some(true)
    );
    assert_eq!(
        attr_i64(&span, "llm_gateway.response.stream_events"),
        Some(events.len() as i64 - 1)
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        first_chunk["request_id"].as_str().map(String::from)
    );
    assert_eq!(
        attr_str(&span, "gen_ai.response.model").as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        attr_i64(&span, "gen_ai.usage.input_tokens"),
        usage_chunk["usage"]["prompt_tokens"].as_i64()
    );
    assert_eq!(
        attr_i64(&span, "gen_ai.usage.output_tokens"),
        usage_chunk["usage"]["completion_tokens"].as_i64()
    );
    let ttfc = attr_f64(&span, "llm_gateway.response.time_to_first_chunk").expect("ttfc");
    let total = span
        .end_time
        .duration_since(span.start_time)
        .unwrap()
        .as_secs_f64();
    assert!(ttfc > 0.0 && ttfc <= total, "ttfc {ttfc} total {total}");
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test]
async fn time_to_first_chunk_is_earlier_than_the_end_of_a_slow_stream() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let response = client
        .post(sim.chat_url())
        .header("x-simulator-chunks", "5")
        .header("x-simulator-chunk-delay-ms", "40")
        .json(&streamed("gpt-4o"))
        .send()
        .await
        .unwrap();
    let (_, err) = read_stream(response).await;
    assert!(err.is_none());
    let span = capture.call();
    let ttfc = attr_f64(&span, "llm_gateway.response.time_to_first_chunk").unwrap();
    let total = span
        .end_time
        .duration_since(span.start_time)
        .unwrap()
        .as_secs_f64();
    assert!(
        total >= 0.15,
        "the span lasts until the end of the stream: {total}"
    );
    assert!(
        ttfc < total - 0.1,
        "first chunk {ttfc} s, stream end {total} s"
    );
}

#[tokio::test]
async fn stream_requested_but_answered_as_json_is_recorded_not_an_error() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let response = client
        .post(sim.chat_url())
        .json(&streamed("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = response.json().await.unwrap();
    let span = capture.call();
    assert_eq!(attr_bool(&span, "gen_ai.request.stream"), Some(true));
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.streamed"),
        Some(false)
    );
    assert_eq!(attr(&span, "error.type"), None);
    assert_eq!(
        attr(&span, "llm_gateway.response.time_to_first_chunk"),
        None
    );
    assert_eq!(
        attr_str(&span, "llm_gateway.request_id"),
        json["request_id"].as_str().map(String::from)
    );
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_stream_interrupted_and_the_user_sees_the_error() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::BrokenStream { after_chunks: 2 });
    let response = client
        .post(sim.chat_url())
        .json(&streamed("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (bytes, err) = read_stream(response).await;
    assert!(err.is_some(), "the reader sees the broken connection");
    assert_eq!(data_events(&String::from_utf8_lossy(&bytes)).len(), 2);
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("stream_interrupted")
    );
    assert!(matches!(span.status, Status::Error { .. }));
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.stream_done"),
        Some(false)
    );
    assert!(
        attr_str(&span, "llm_gateway.request_id").is_some(),
        "facts before the break are kept"
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_stream_interrupted() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    sim.inject(Fault::NoDone);
    let response = client
        .post(sim.chat_url())
        .json(&streamed("gpt-4o"))
        .send()
        .await
        .unwrap();
    let (bytes, err) = read_stream(response).await;
    assert!(err.is_none(), "the connection closed cleanly");
    assert!(!String::from_utf8_lossy(&bytes).contains("[DONE]"));
    let span = capture.call();
    assert_eq!(
        attr_str(&span, "error.type").as_deref(),
        Some("stream_interrupted")
    );
    assert!(
        attr_i64(&span, "gen_ai.usage.output_tokens").is_some(),
        "usage chunk still read"
    );
}

#[tokio::test]
async fn a_stream_dropped_by_the_user_ends_the_span_as_not_read_to_end() {
    let capture = Capture::start();
    let (sim, client) = simulator().await;
    let response = client
        .post(sim.chat_url())
        .header("x-simulator-chunks", "50")
        .header("x-simulator-chunk-delay-ms", "20")
        .json(&streamed("gpt-4o"))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let span = capture.call();
    assert_eq!(
        attr_bool(&span, "llm_gateway.response.read_to_end"),
        Some(false)
    );
    assert_eq!(
        attr(&span, "error.type"),
        None,
        "stopping early is the user's choice"
    );
}
