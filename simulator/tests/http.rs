//! The simulator over real HTTP.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_gateway_simulator::{Fault, Region, Simulator};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn chat_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    })
}

async fn post_raw(sim: &Simulator, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(sim.chat_url())
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request sent")
}

async fn post(sim: &Simulator, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    post_raw(sim, &body.to_string(), headers).await
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn json_of(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("JSON body")
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// Splits an SSE body into its `data:` payloads.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|ev| ev.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn success_shape_per_provider() {
    let sim = Simulator::start().await.unwrap();
    let cases = [
        (
            "gpt-4o",
            "stop",
            &["prompt_tokens", "completion_tokens"][..],
        ),
        (
            "claude-sonnet-4-6",
            "end_turn",
            &["input_tokens", "output_tokens"][..],
        ),
        (
            "gemini-2.5-flash",
            "STOP",
            &["input_tokens", "output_tokens"][..],
        ),
    ];
    for (model, finish, keys) in cases {
        let resp = post(&sim, &chat_body(model), &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-type"), Some("application/json"));
        assert_eq!(header(&resp, "x-ratelimit-limit"), Some("30"));
        assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("29"));
        assert_eq!(header(&resp, "x-ratelimit-reset"), Some("60"));
        assert_eq!(header(&resp, "x-ratelimit-model"), Some(model));
        assert_eq!(header(&resp, "x-ratelimit-service"), Some("llm-gateway"));
        assert!(header(&resp, "x-request-id").is_none());
        let v = json_of(resp).await;
        assert!(is_uuid(v["request_id"].as_str().unwrap()), "{v}");
        assert_eq!(v["model"], model);
        assert_eq!(v["choices"][0]["index"], 0);
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Paris is the capital of France."
        );
        assert_eq!(v["choices"][0]["finish_reason"], finish);
        assert_eq!(v["usage"][keys[0]], 6);
        assert_eq!(v["usage"][keys[1]], 6);
        assert_eq!(v["usage"]["total_tokens"], 12);
        assert_eq!(v["request"], json!({"model": model, "max_tokens": 1000}));
        assert!(v["response_time"].as_u64().unwrap() > 0);
        assert_eq!(v["llm_status_code"], 200);
        match model {
            "gpt-4o" => assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0),
            "claude-sonnet-4-6" => {
                assert_eq!(v["usage"]["cache_creation"]["ephemeral_5m_input_tokens"], 0);
                assert_eq!(v["usage"]["cache_creation"]["ephemeral_1h_input_tokens"], 0);
            }
            _ => assert!(v["usage"].get("cache_creation").is_none()),
        }
    }
    // prompt instead of messages, and max_tokens cutting the answer
    let v = json_of(
        post(
            &sim,
            &json!({"model": "claude-haiku-4-5", "prompt": "one two three", "max_tokens": 2}),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(v["choices"][0]["message"]["content"], "Paris is");
    assert_eq!(v["choices"][0]["finish_reason"], "max_tokens");
    assert_eq!(v["usage"]["input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 2);
    assert_eq!(v["request"]["max_tokens"], 2);
    assert_eq!(sim.request_count(), 4);
}

#[tokio::test]
async fn sse_stream_ends_with_done_and_claude_ignores_stream() {
    let sim = Simulator::start().await.unwrap();
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let resp = post(&sim, &body, &[("x-simulator-chunks", "3")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&resp, "x-ratelimit-model"), Some("gpt-4o-mini"));
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.len(), 5, "{text}");
    let chunks: Vec<Value> = data[..3]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "Paris is the ");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["model"], "gpt-4o-mini");
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(is_uuid(chunks[0]["request_id"].as_str().unwrap()));
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    let usage: Value = serde_json::from_str(&data[3]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9,
               "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert_eq!(data[4], "[DONE]");

    // chunk delay is honoured
    let start = Instant::now();
    let resp = post(
        &sim,
        &body,
        &[
            ("x-simulator-chunks", "4"),
            ("x-simulator-chunk-delay-ms", "20"),
        ],
    )
    .await;
    assert_eq!(sse_data(&resp.text().await.unwrap()).len(), 6);
    assert!(start.elapsed() >= Duration::from_millis(60));

    let mut body = chat_body("claude-opus-4-1");
    body["stream"] = json!(true);
    let resp = post(&sim, &body, &[]).await;
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let v = json_of(resp).await;
    assert_eq!(v["choices"][0]["finish_reason"], "end_turn");
}

#[tokio::test]
async fn status_and_rate_limit_faults() {
    let sim = Simulator::start().await.unwrap();
    sim.inject(Fault::Status(503));
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let v = json_of(resp).await;
    assert_eq!(v["error"]["code"], 503);
    assert!(v["error"]["message"].is_string());

    let resp = post(&sim, &chat_body("gpt-4o"), &[("x-simulator-fault", "429")]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), Some("1"));
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(json_of(resp).await["error"]["code"], 429);

    sim.inject(Fault::RateLimited { retry_after_s: 7 });
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), Some("7"));
    assert_eq!(header(&resp, "x-ratelimit-reset"), Some("7"));
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&resp, "x-ratelimit-model"), Some("gpt-4o"));
    let v = json_of(resp).await;
    assert_eq!(
        v["error"]["message"],
        "Rate limit exceeded for model gpt-4o"
    );

    let resp = post(
        &sim,
        &chat_body("gpt-4o"),
        &[("x-simulator-fault", "429-date:30")],
    )
    .await;
    assert_eq!(resp.status(), 429);
    let date = header(&resp, "retry-after").unwrap().to_string();
    assert_eq!(date.len(), 29, "{date}");
    assert!(
        date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{date}"
    );
    assert_eq!(header(&resp, "x-ratelimit-reset"), Some("30"));
    // None of these counted against the model's real window.
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("29"));
}

#[tokio::test]
async fn body_shape_faults() {
    let sim = Simulator::start().await.unwrap();
    let b = chat_body("claude-sonnet-4-6");

    let resp = post(&sim, &b, &[("x-simulator-fault", "flat:400")]).await;
    assert_eq!(resp.status(), 400);
    let v = json_of(resp).await;
    assert!(is_uuid(v["request_id"].as_str().unwrap()));
    assert_eq!(v["code"], "invalid_request");
    assert!(v["message"].is_string());
    assert_eq!(v["metadata"]["errors"][0]["field"], "messages");

    let resp = post(&sim, &b, &[("x-simulator-fault", "auth")]).await;
    assert_eq!(resp.status(), 401);
    let v = json_of(resp).await;
    assert_eq!(
        v["error"],
        "Authentication error, API token missing/invalid"
    );
    assert_eq!(v["status"], "error");
    assert!(is_uuid(v["request_id"].as_str().unwrap()));

    let resp = post(&sim, &b, &[("x-simulator-fault", "html:502")]).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(header(&resp, "content-type"), Some("text/html"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("502 Bad Gateway") && !text.contains("request_id"));

    let resp = post(&sim, &b, &[("x-simulator-fault", "empty:504")]).await;
    assert_eq!(resp.status(), 504);
    assert!(resp.bytes().await.unwrap().is_empty());

    let resp = post(&sim, &b, &[("x-simulator-fault", "text:503")]).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "content-type"), Some("text/plain"));
    assert_eq!(
        resp.text().await.unwrap(),
        "upstream connect error or disconnect/reset before headers"
    );

    let resp = post(&sim, &b, &[("x-simulator-fault", "garbage:500")]).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let bytes = resp.bytes().await.unwrap();
    assert!(!bytes.is_empty() && std::str::from_utf8(&bytes).is_err());

    let resp = post(&sim, &b, &[("x-simulator-fault", "truncated")]).await;
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with(b"{") && bytes.len() > 50);
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());

    let secret = "Bearer sk-secret-\u{e9}value";
    let resp = post(
        &sim,
        &b,
        &[
            ("x-simulator-fault", "echo-key:401"),
            ("authorization", secret),
        ],
    )
    .await;
    assert_eq!(resp.status(), 401);
    let v = json_of(resp).await;
    assert_eq!(v["error"]["code"], 401);
    assert_eq!(
        v["error"]["message"],
        format!("Invalid API key: {secret}").as_str()
    );
    // an unparseable header spec is ignored
    let resp = post(&sim, &b, &[("x-simulator-fault", "bogus:1")]).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn timing_faults() {
    let sim = Simulator::start().await.unwrap();
    let start = Instant::now();
    sim.inject(Fault::Slow { delay_ms: 120 });
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(resp.status(), 200);
    json_of(resp).await;

    sim.inject(Fault::Stall {
        after_bytes: 40,
        delay_ms: 120,
    });
    let start = Instant::now();
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    let headers_at = start.elapsed();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut body = Vec::new();
    let mut first_chunk_at = None;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
        first_chunk_at.get_or_insert(start.elapsed());
    }
    // The pause comes after the first bytes, whatever the machine's load adds around it.
    let first_chunk_at = first_chunk_at.unwrap();
    assert!(headers_at <= first_chunk_at);
    assert!(start.elapsed() - first_chunk_at >= Duration::from_millis(110));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["model"], "gpt-4o");
}

#[tokio::test]
async fn stream_faults() {
    let sim = Simulator::start().await.unwrap();
    let mut body = chat_body("gpt-4o");
    body["stream"] = json!(true);

    let resp = post(&sim, &body, &[("x-simulator-fault", "broken-stream:2")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body read must fail");
    let text = String::from_utf8(got).unwrap();
    assert_eq!(sse_data(&text).len(), 2, "{text}");
    assert!(!text.contains("[DONE]"));

    sim.inject(Fault::NoDone);
    let resp = post(&sim, &body, &[]).await;
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.len(), 6, "{text}");
    assert!(data[5].contains("\"usage\""));
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn big_fault_delivers_exact_length() {
    let sim = Simulator::start().await.unwrap();
    let n = 300_007;
    sim.inject(Fault::Big { content_bytes: n });
    let resp = post(&sim, &chat_body("gemini-2.5-pro"), &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let len: usize = header(&resp, "content-length").unwrap().parse().unwrap();
    let v = json_of(resp).await;
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.len(), n);
    assert!(content.starts_with("abcdefghijklmnopqrstuvwxyzabc"));
    assert!(content
        .bytes()
        .enumerate()
        .all(|(i, c)| c == b'a' + (i % 26) as u8));
    assert!(len > n);
    assert_eq!(v["model"], "gemini-2.5-pro");
}

#[tokio::test]
async fn fault_precedence_and_fallback_fault() {
    let sim = Simulator::start().await.unwrap();
    sim.inject(Fault::Status(500));
    sim.inject_for_model("gpt-4o", Fault::Status(502));
    // header first; queues untouched
    let resp = post(&sim, &chat_body("gpt-4o"), &[("x-simulator-fault", "503")]).await;
    assert_eq!(resp.status(), 503);
    // another model takes the global one
    let resp = post(&sim, &chat_body("gpt-4.1"), &[]).await;
    assert_eq!(resp.status(), 500);
    sim.inject(Fault::Status(504));
    // per-model before global
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 502);
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 504);
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 200);

    let mut body = chat_body("gpt-4o");
    body["fallbacks"] = json!([{"model": "claude-sonnet-4-6"}]);
    sim.inject(Fault::Fallback);
    let resp = post(&sim, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-ratelimit-model"),
        Some("claude-sonnet-4-6")
    );
    let v = json_of(resp).await;
    assert_eq!(v["model"], "claude-sonnet-4-6");
    assert_eq!(v["request"]["model"], "gpt-4o");
    assert_eq!(v["choices"][0]["finish_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].is_number());
    // without fallbacks: a normal answer
    sim.inject(Fault::Fallback);
    let v = json_of(post(&sim, &chat_body("gpt-4o"), &[]).await).await;
    assert_eq!(v["model"], "gpt-4o");
}

#[tokio::test]
async fn auth_both_shapes() {
    let sim = Simulator::builder().api_key("k-123").start().await.unwrap();
    let b = chat_body("gpt-4o");
    let resp = post(&sim, &b, &[]).await;
    assert_eq!(resp.status(), 401);
    let v = json_of(resp).await;
    assert_eq!(v["status"], "error");
    assert!(v["request_id"].is_string());

    let resp = post(&sim, &b, &[("authorization", "wrong")]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        json_of(resp).await,
        json!({"error": {"code": 401, "message": "Unauthorized - Invalid or missing API key"}})
    );

    // a key in the query string does not count
    let resp = client()
        .post(format!("{}?api_key=k-123", sim.chat_url()))
        .body(b.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    for key in ["k-123", "Bearer k-123"] {
        let resp = post(&sim, &b, &[("authorization", key)]).await;
        assert_eq!(resp.status(), 200, "{key}");
    }
    // /v1/models needs no key
    let resp = client().get(sim.models_url()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn bad_requests_and_not_found() {
    let sim = Simulator::builder()
        .region(Region::Eu)
        .start()
        .await
        .unwrap();
    let msg = |v: &Value| {
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let resp = post_raw(&sim, "{not json", &[]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        msg(&json_of(resp).await),
        "Invalid request: body is not valid JSON"
    );

    let resp = post(&sim, &json!({"messages": []}), &[]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        msg(&json_of(resp).await),
        "Invalid request: missing required field 'model'"
    );

    let resp = post(
        &sim,
        &json!({"model": "claude-sonnet-4-6", "messages": "hi"}),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v = json_of(resp).await;
    assert_eq!(v["message"], "Invalid request: 'messages' must be an array");
    assert_eq!(v["code"], "invalid_request");
    assert!(v["request_id"].is_string());

    let resp = post(&sim, &json!({"model": "claude-sonnet-4-6"}), &[]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        msg(&json_of(resp).await),
        "Invalid request: either 'messages' or 'prompt' is required"
    );

    for bad in [
        json!(0),
        json!(200_001),
        json!("ten"),
        json!(-3),
        json!(1.5),
    ] {
        let mut b = chat_body("claude-sonnet-4-6");
        b["max_tokens"] = bad;
        let resp = post(&sim, &b, &[]).await;
        assert_eq!(resp.status(), 400);
        assert!(msg(&json_of(resp).await).contains("max_tokens"));
    }

    let resp = post(&sim, &chat_body("gpt-9-turbo"), &[]).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("x-ratelimit-limit").is_none());
    assert_eq!(msg(&json_of(resp).await), "Model 'gpt-9-turbo' not found");

    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        msg(&json_of(resp).await),
        "Model 'gpt-4o' is not available in region eu"
    );

    let resp = client()
        .get(format!("{}/nope", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client().get(sim.chat_url()).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(sim.request_count(), 11);
}

#[tokio::test]
async fn rate_limit_fallback_and_window() {
    let sim = Simulator::builder()
        .rate_limit_per_minute(2)
        .start()
        .await
        .unwrap();
    for remaining in ["1", "0"] {
        let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit"), Some("2"));
        assert_eq!(header(&resp, "x-ratelimit-remaining"), Some(remaining));
    }
    let resp = post(&sim, &chat_body("gpt-4o"), &[]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), Some("-1"));
    assert_eq!(header(&resp, "x-ratelimit-model"), Some("gpt-4o"));
    assert_eq!(header(&resp, "x-ratelimit-service"), Some("llm-gateway"));
    let reset: u64 = header(&resp, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((59..=60).contains(&reset));
    assert_eq!(
        header(&resp, "retry-after"),
        Some(reset.to_string().as_str())
    );
    let v = json_of(resp).await;
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(
        v["error"]["message"],
        "Rate limit exceeded for model gpt-4o"
    );

    // over the limit, with a fallback that has room: served by the fallback
    let mut body = chat_body("gpt-4o");
    body["fallbacks"] = json!([{"model": "gemini-2.5-flash"}]);
    for _ in 0..2 {
        let resp = post(&sim, &body, &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-model"), Some("gemini-2.5-flash"));
        let v = json_of(resp).await;
        assert_eq!(v["model"], "gemini-2.5-flash");
        assert_eq!(v["request"]["model"], "gpt-4o");
    }
    // fallback exhausted too
    let resp = post(&sim, &body, &[]).await;
    assert_eq!(resp.status(), 429);

    sim.reset_rate_limits();
    assert_eq!(post(&sim, &chat_body("gpt-4o"), &[]).await.status(), 200);

    // a short window resets by itself
    let sim = Simulator::builder()
        .rate_limit_per_minute(1)
        .rate_limit_window(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    assert_eq!(post(&sim, &chat_body("gpt-5"), &[]).await.status(), 200);
    let resp = post(&sim, &chat_body("gpt-5"), &[]).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-reset"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&sim, &chat_body("gpt-5"), &[]).await.status(), 200);
}

#[tokio::test]
async fn models_per_region() {
    for (region, count) in [(Region::Us, 9), (Region::Eu, 5)] {
        let sim = Simulator::builder().region(region).start().await.unwrap();
        assert_eq!(sim.region(), region);
        let resp = client().get(sim.models_url()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let v = json_of(resp).await;
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), count);
        let has_gpt = data.iter().any(|m| m["owned_by"] == "openai");
        assert_eq!(has_gpt, region == Region::Us);
        assert!(data.iter().any(|m| m["id"] == "claude-sonnet-4-6"
            && m["owned_by"] == "anthropic"
            && m["object"] == "model"));
        assert!(data
            .iter()
            .any(|m| m["id"] == "gemini-2.5-pro" && m["owned_by"] == "google"));
    }
}

#[tokio::test]
async fn received_records_requests_and_drop_stops_server() {
    let sim = Simulator::start().await.unwrap();
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        sim.chat_url(),
        format!("{}/v1/chat/completions", sim.base_url())
    );
    let body = chat_body("gpt-4o");
    client()
        .post(format!("{}?trace=1", sim.chat_url()))
        .header("authorization", "my-key")
        .header("x-custom", "yes")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    client().get(sim.models_url()).send().await.unwrap();
    let got = sim.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v1/chat/completions");
    assert_eq!(got[0].query.as_deref(), Some("trace=1"));
    assert_eq!(got[0].header("Authorization"), Some("my-key"));
    assert!(got[0]
        .headers
        .contains(&("x-custom".to_string(), "yes".to_string())));
    assert_eq!(got[0].body, body.to_string().into_bytes());
    assert_eq!(got[1].method, "GET");
    assert_eq!(got[1].path, "/v1/models");
    assert!(got[1].body.is_empty());
    assert_eq!(sim.request_count(), 1);

    let url = sim.models_url();
    drop(sim);
    tokio::task::yield_now().await;
    let res = client().get(url).send().await;
    assert!(res.is_err());
}

#[tokio::test]
async fn hostile_inputs_get_answers() {
    let sim = Simulator::builder().api_key("k").start().await.unwrap();
    let auth = ("authorization", "k");
    let bodies = [
        json!({"model": 5, "messages": []}),
        json!([1, 2]),
        json!({"model": "gpt-4o", "messages": [1, null, {"content": 3}, {"content": [{"text": "a b"}, "c", 7]}],
               "fallbacks": "x", "max_tokens": 1e300, "stream": "yes"}),
        json!({"model": "gpt-4o", "prompt": {"x": 1}, "fallbacks": [7], "stream": true}),
        json!({"model": "gpt-4o", "messages": [], "fallbacks": [{"model": "nope"}]}),
    ];
    for b in &bodies {
        let resp = post(
            &sim,
            b,
            &[auth, ("x-simulator-chunks", "99999999999999999999")],
        )
        .await;
        assert!(resp.status().as_u16() >= 200);
        resp.bytes().await.unwrap();
    }
    for spec in [
        "big:0",
        "stall:0:10",
        "stall:100000:10",
        "broken-stream:0",
        "x:y:z:w",
    ] {
        let resp = post(
            &sim,
            &chat_body("gpt-4o"),
            &[auth, ("x-simulator-fault", spec)],
        )
        .await;
        assert!(resp.status().as_u16() >= 200, "{spec}");
        let _ = resp.bytes().await;
    }
    for f in [
        Fault::Status(42),
        Fault::Html(1),
        Fault::Empty(1000),
        Fault::RetryAfterDate {
            secs_from_now: u64::MAX,
        },
        Fault::RateLimited {
            retry_after_s: u64::MAX,
        },
    ] {
        sim.inject(f);
        let resp = post_raw(&sim, "\u{0}", &[]).await;
        assert!(resp.status().as_u16() >= 400);
        resp.bytes().await.unwrap();
    }
    let resp = client()
        .post(sim.chat_url())
        .header("x-simulator-fault", &b"\xff\xfe"[..])
        .header("authorization", &b"\xff"[..])
        .body(vec![0xffu8, 0, 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(sim.request_count(), bodies.len() + 5 + 5 + 1);
}

#[tokio::test]
async fn cached_tokens_and_answers_without_usage() {
    let sim = Simulator::start().await.unwrap();
    let cached = [("x-simulator-cached-tokens", "4")];
    // OpenAI's shape: cached tokens are part of prompt_tokens.
    let openai = json_of(post(&sim, &chat_body("gpt-4o"), &cached).await).await;
    assert_eq!(openai["usage"]["prompt_tokens"], 6);
    assert_eq!(openai["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    // Anthropic's: input_tokens is the uncached rest, the reads apart, the total all of it.
    let anthropic = json_of(post(&sim, &chat_body("claude-sonnet-4-6"), &cached).await).await;
    assert_eq!(anthropic["usage"]["input_tokens"], 2);
    assert_eq!(anthropic["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(anthropic["usage"]["total_tokens"], 12);
    // A stream's usage chunk carries them too.
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let text = post(&sim, &body, &cached).await.text().await.unwrap();
    let data = sse_data(&text);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    // More cached tokens than input: capped.
    let capped = json_of(
        post(
            &sim,
            &chat_body("gpt-4o"),
            &[("x-simulator-cached-tokens", "99")],
        )
        .await,
    )
    .await;
    assert_eq!(capped["usage"]["prompt_tokens_details"]["cached_tokens"], 6);

    // no-usage: a JSON answer without `usage`, a stream with [DONE] and no usage chunk.
    let no_usage = [("x-simulator-fault", "no-usage")];
    let answer = json_of(post(&sim, &chat_body("gpt-4o"), &no_usage).await).await;
    assert!(
        answer.get("usage").is_none() && answer["choices"][0]["message"]["content"].is_string()
    );
    let text = post(&sim, &body, &no_usage).await.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(!text.contains("\"usage\""), "{text}");
}
