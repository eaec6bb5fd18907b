//! Retry, backoff, rate-limit hints, budget and fallback models, against the simulator over
//! real HTTP. Time is tokio's paused clock: waits of seconds pass at once, and what was
//! waited is read from the span's events.

use std::time::Duration;

use llm_gateway_otel::names::*;
use llm_gateway_otel::retry::{BudgetConfig, FallbackMode, Retry};
use llm_gateway_otel::{GatewayMiddleware, Region};
use llm_gateway_simulator::{Fault, Region as SimRegion, Simulator};
use opentelemetry_sdk::trace::SpanData;
use reqwest_middleware::ClientWithMiddleware;

use crate::support::*;

fn retrying(sim: &Simulator, region: Region, retry: Retry) -> ClientWithMiddleware {
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(sim.addr().to_string(), region)
        .retry(retry)
        .build()
        .unwrap();
    client(middleware)
}

/// (reason, delay in seconds) of every wait event of a call span.
fn waits(span: &SpanData) -> Vec<(String, f64)> {
    span.events
        .iter()
        .filter(|e| e.name == EVENT_RETRY_WAIT)
        .map(|e| {
            let get = |k: &str| {
                e.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.clone())
            };
            let reason = get(LLM_GATEWAY_RETRY_REASON).unwrap().as_str().into_owned();
            let delay = match get(LLM_GATEWAY_RETRY_DELAY_S).unwrap() {
                opentelemetry::Value::F64(v) => v,
                other => panic!("{other:?}"),
            };
            (reason, delay)
        })
        .collect()
}

fn models_sent(sim: &Simulator) -> Vec<String> {
    sim.received()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["model"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_exactly() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::RateLimited { retry_after_s: 7 });
    let started = tokio::time::Instant::now();
    let response = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "it really waited (on the paused clock)"
    );
    assert_eq!(sim.request_count(), 2);
    let span = capture.call();
    assert_eq!(waits(&span), vec![("retry_after".to_owned(), 7.0)]);
    assert_eq!(attr_i64(&span, HTTP_REQUEST_RESEND_COUNT), Some(1));
    assert_eq!(attr_i64(&span, HTTP_RESPONSE_STATUS_CODE), Some(200));
    assert_eq!(attr(&span, ERROR_TYPE), None);
    let attempts = capture.attempts_of(&span);
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| attr_i64(a, HTTP_RESPONSE_STATUS_CODE))
        .collect();
    assert_eq!(statuses, vec![Some(429), Some(200)]);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_reset_is_used_when_there_is_no_retry_after() {
    let capture = Capture::start();
    let addr = raw_server(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nx-ratelimit-limit: 30\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 4",
        vec![br#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#.to_vec()],
        Duration::ZERO,
        Ending::Close,
    )
    .await;
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(addr.to_string(), Region::US)
        .retry(Retry::default().max_attempts(2))
        .build()
        .unwrap();
    let client = client(middleware);
    let response = post_chat(&client, addr).await;
    assert_eq!(response.status(), 429);
    drop(response);
    let span = capture.call();
    assert_eq!(waits(&span), vec![("rate_limit_reset".to_owned(), 4.0)]);
    assert_eq!(
        attr_str(&span, LLM_GATEWAY_RETRY_STOP_REASON).as_deref(),
        Some("max_attempts")
    );
    assert_eq!(capture.attempts_of(&span).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::RetryAfterDate { secs_from_now: 5 });
    let response = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let w = waits(&capture.call());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, "retry_after");
    // An HTTP date has whole seconds.
    assert!((4.0..=6.0).contains(&w[0].1), "{w:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_max_wait_fails_fast() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(
        &sim,
        Region::US,
        Retry::default().max_wait(Duration::from_secs(30)),
    );
    sim.inject(Fault::RateLimited { retry_after_s: 120 });
    let started = tokio::time::Instant::now();
    let response = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no sleeping for two minutes"
    );
    drop(response);
    assert_eq!(sim.request_count(), 1);
    let span = capture.call();
    assert_eq!(
        attr_str(&span, LLM_GATEWAY_RETRY_STOP_REASON).as_deref(),
        Some("hint_exceeds_max_wait")
    );
    assert_eq!(
        attr_f64(&span, LLM_GATEWAY_RETRY_AFTER_S),
        Some(120.0),
        "the hint is recorded"
    );
    assert_eq!(attr_str(&span, ERROR_TYPE).as_deref(), Some("429"));
}

#[tokio::test(start_paused = true)]
async fn two_503s_then_200_give_three_attempt_spans_under_one_call() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::Status(503));
    sim.inject(Fault::Status(503));
    let json: serde_json::Value = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let span = capture.call();
    assert_eq!(
        attr_str(&span, LLM_GATEWAY_REQUEST_ID),
        json["request_id"].as_str().map(String::from)
    );
    assert_eq!(attr_i64(&span, HTTP_REQUEST_RESEND_COUNT), Some(2));
    assert_eq!(attr(&span, ERROR_TYPE), None);
    let attempts = capture.attempts_of(&span);
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                attr_i64(a, HTTP_REQUEST_RESEND_COUNT),
                attr_i64(a, HTTP_RESPONSE_STATUS_CODE),
                attr_str(a, ERROR_TYPE),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (None, Some(503), Some("503".into())),
            (Some(1), Some(503), Some("503".into())),
            (Some(2), Some(200), None)
        ]
    );
    let w = waits(&span);
    assert_eq!(w.len(), 2);
    assert!(w.iter().all(|(reason, _)| reason == "backoff"), "{w:?}");
    assert!(
        w[0].1 <= 0.5 && w[1].1 <= 1.0,
        "full jitter under 0.5 s then 1 s: {w:?}"
    );
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn backoff_is_jittered_within_its_bounds() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default().no_budget());
    for _ in 0..30 {
        sim.inject(Fault::Status(502));
        send_read(&client, &sim.chat_url(), &chat("gpt-4o")).await;
    }
    let delays: Vec<f64> = capture
        .calls()
        .iter()
        .flat_map(waits)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(delays.len(), 30);
    assert!(delays.iter().all(|d| (0.0..=0.5).contains(d)), "{delays:?}");
    let distinct: std::collections::BTreeSet<u64> =
        delays.iter().map(|d| (d * 1e6) as u64).collect();
    assert!(
        distinct.len() > 20,
        "jittered, not a fixed wait: {delays:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_never_retried() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    for fault in [Fault::Flat(400), Fault::Auth, Fault::Status(403)] {
        sim.inject(fault);
        client
            .post(sim.chat_url())
            .json(&chat("gpt-4o"))
            .send()
            .await
            .unwrap();
    }
    let r = client
        .post(sim.chat_url())
        .json(&chat("no-such-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop(r);
    assert_eq!(sim.request_count(), 4);
    assert!(capture
        .calls()
        .iter()
        .all(|s| attr_i64(s, HTTP_REQUEST_RESEND_COUNT).is_none()));
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_retries_from_growing_an_outage() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let budget = BudgetConfig {
        ratio: 0.2,
        min_retries: 2,
        window: Duration::from_secs(600),
    };
    let client = retrying(&sim, Region::US, Retry::default().budget(budget));
    let calls = 40;
    for _ in 0..calls {
        let r = client
            .post(sim.chat_url())
            .header("x-simulator-fault", "503")
            .json(&chat("gpt-4o"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    let sent = sim.request_count();
    assert!(
        sent <= calls + calls / 5 + 2,
        "{sent} requests for {calls} calls: retries add at most 20% + 2"
    );
    assert!(sent > calls, "some retries were allowed");
    let stopped = capture
        .calls()
        .iter()
        .filter(|s| attr_str(s, LLM_GATEWAY_RETRY_STOP_REASON).as_deref() == Some("budget"))
        .count();
    assert!(stopped > 0);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_chain_is_served_by_the_second_model() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let retry = Retry::default().fallback("claude-sonnet-4-6", ["gemini-2.5-flash", "gpt-4o"]);
    let client = retrying(&sim, Region::US, retry);
    sim.inject_for_model(
        "claude-sonnet-4-6",
        Fault::RateLimited { retry_after_s: 300 },
    );
    let json: serde_json::Value = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["model"], "gemini-2.5-flash");
    assert_eq!(
        models_sent(&sim),
        vec!["claude-sonnet-4-6", "gemini-2.5-flash"]
    );
    let span = capture.call();
    assert_eq!(
        attr_str(&span, GEN_AI_REQUEST_MODEL).as_deref(),
        Some("claude-sonnet-4-6")
    );
    assert_eq!(
        attr_str(&span, GEN_AI_RESPONSE_MODEL).as_deref(),
        Some("gemini-2.5-flash")
    );
    assert_eq!(span.name, "chat claude-sonnet-4-6");
    assert!(span.events.iter().any(|e| e.name == EVENT_FALLBACK));
    assert_eq!(capture.attempts_of(&span).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_model_not_in_the_region_falls_back() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .region(SimRegion::Eu)
        .start()
        .await
        .unwrap();
    let client = retrying(
        &sim,
        Region::EU,
        Retry::default().fallback("gpt-4o", ["claude-sonnet-4-6"]),
    );
    let response = client
        .post(sim.chat_url())
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    assert_eq!(models_sent(&sim), vec!["gpt-4o", "claude-sonnet-4-6"]);
    assert_eq!(
        attr_str(&capture.call(), LLM_GATEWAY_REGION).as_deref(),
        Some("eu")
    );
}

#[tokio::test(start_paused = true)]
async fn gateway_fallback_mode_puts_the_chain_in_the_body() {
    let sim = Simulator::start().await.unwrap();
    let retry = Retry::default()
        .fallback("claude-sonnet-4-6", ["gemini-2.5-flash"])
        .fallback_mode(FallbackMode::Gateway);
    let client = retrying(&sim, Region::US, retry);
    sim.inject(Fault::Fallback);
    let json: serde_json::Value = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json["model"], "gemini-2.5-flash",
        "the gateway fell back by itself"
    );
    let sent: serde_json::Value = serde_json::from_slice(&sim.received()[0].body).unwrap();
    assert_eq!(
        sent["fallbacks"],
        serde_json::json!([{"model": "gemini-2.5-flash"}])
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_never_retried_once_it_started() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::BrokenStream { after_chunks: 1 });
    let mut body = chat("gpt-4o");
    body["stream"] = serde_json::json!(true);
    let response = client
        .post(sim.chat_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.bytes().await.is_err());
    assert_eq!(sim.request_count(), 1);
    assert_eq!(
        attr_str(&capture.call(), ERROR_TYPE).as_deref(),
        Some("stream_interrupted")
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_cannot_be_cloned_is_sent_once_and_the_span_says_why() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::Status(503));
    let json = serde_json::to_vec(&chat("gpt-4o")).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        json.chunks(10).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = client.post(sim.chat_url()).body(body).send().await.unwrap();
    assert_eq!(response.status(), 503);
    drop(response);
    assert_eq!(sim.request_count(), 1);
    let span = capture.call();
    assert_eq!(
        attr_str(&span, LLM_GATEWAY_RETRY_STOP_REASON).as_deref(),
        Some("body_not_clonable")
    );
}

#[tokio::test(start_paused = true)]
async fn the_gateways_own_retry_can_be_turned_off_and_is_flagged_when_on() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let off = retrying(
        &sim,
        Region::US,
        Retry::default().disable_gateway_retry(true),
    );
    send_read(&off, &sim.chat_url(), &chat("gpt-4o")).await;
    let sent: serde_json::Value = serde_json::from_slice(&sim.received()[0].body).unwrap();
    assert_eq!(sent["fallback_config"]["retry"], false);
    assert_eq!(
        sent["messages"],
        chat("gpt-4o")["messages"],
        "the rest of the body is kept"
    );
    let on = retrying(&sim, Region::US, Retry::default());
    for retried in [false, true] {
        if retried {
            sim.inject(Fault::RateLimited { retry_after_s: 1 });
        }
        assert_eq!(send_read(&on, &sim.chat_url(), &chat("gpt-4o")).await, 200);
    }
    let calls = capture.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(attr_bool(&calls[0], LLM_GATEWAY_RETRY_GATEWAY_RETRY), None);
    // Both retry only when we re-send: a call that needed one attempt says nothing.
    assert_eq!(attr_bool(&calls[1], LLM_GATEWAY_RETRY_GATEWAY_RETRY), None);
    assert_eq!(
        attr_bool(&calls[2], LLM_GATEWAY_RETRY_GATEWAY_RETRY),
        Some(true)
    );
    assert_eq!(attr_i64(&calls[2], HTTP_REQUEST_RESEND_COUNT), Some(1));
}

#[tokio::test(start_paused = true)]
async fn pacing_waits_for_the_window_instead_of_earning_a_429() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .rate_limit_per_minute(2)
        .start()
        .await
        .unwrap();
    let client = retrying(
        &sim,
        Region::US,
        Retry::default()
            .pacing(true)
            .max_wait(Duration::from_secs(90)),
    );
    for _ in 0..3 {
        let r = client
            .post(sim.chat_url())
            .json(&chat("gpt-4o"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    assert_eq!(sim.request_count(), 3, "no 429 was earned");
    let third = &capture.calls()[2];
    let w = waits(third);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, "pacing");
    assert!((59.0..=60.0).contains(&w[0].1), "{w:?}");
}

#[tokio::test(start_paused = true)]
async fn connect_errors_are_retried_with_backoff() {
    let capture = Capture::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let middleware = GatewayMiddleware::builder()
        .traced()
        .gateway_host(addr.to_string(), Region::US)
        .retry(Retry::default())
        .build()
        .unwrap();
    let client = client(middleware);
    let err = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect());
    let span = capture.call();
    assert_eq!(attr_str(&span, ERROR_TYPE).as_deref(), Some("connect"));
    let attempts = capture.attempts_of(&span);
    assert_eq!(attempts.len(), 3);
    assert!(attempts
        .iter()
        .all(|a| attr_str(a, ERROR_TYPE).as_deref() == Some("connect")));
    assert_eq!(
        attr_str(&span, LLM_GATEWAY_RETRY_STOP_REASON).as_deref(),
        Some("max_attempts")
    );
}

#[test]
fn bad_retry_settings_are_build_errors() {
    let zero = GatewayMiddleware::builder()
        .traced()
        .retry(Retry::default().max_attempts(0))
        .build();
    assert!(zero.err().unwrap().to_string().contains("max_attempts"));
    let inverted = GatewayMiddleware::builder()
        .traced()
        .retry(Retry::default().backoff(Duration::from_secs(5), Duration::from_secs(1)))
        .build();
    assert!(inverted.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_waiting_to_retry_ends_its_span_as_cancelled() {
    let capture = Capture::start();
    let sim = Simulator::start().await.unwrap();
    let client = retrying(&sim, Region::US, Retry::default());
    sim.inject(Fault::RateLimited { retry_after_s: 7 });
    let call = client.post(sim.chat_url()).json(&chat("gpt-4o")).send();
    let gave_up = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert!(gave_up.is_err(), "the caller gave up during the 7 s wait");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        sim.request_count(),
        1,
        "nothing was sent after the caller left"
    );
    let span = capture.call();
    assert_eq!(attr_bool(&span, LLM_GATEWAY_CANCELLED), Some(true));
    assert_eq!(waits(&span).len(), 1, "the wait had started");
    assert_eq!(capture.attempts_of(&span).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pacing_keeps_each_models_window_apart() {
    let capture = Capture::start();
    let sim = Simulator::builder()
        .rate_limit_per_minute(1)
        .start()
        .await
        .unwrap();
    let client = retrying(
        &sim,
        Region::US,
        Retry::default()
            .pacing(true)
            .max_wait(Duration::from_secs(90)),
    );
    for model in ["gpt-4o", "claude-sonnet-4-6", "gpt-4o"] {
        let r = client
            .post(sim.chat_url())
            .json(&chat(model))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        r.bytes().await.unwrap();
    }
    let calls = capture.calls();
    assert!(
        waits(&calls[1]).is_empty(),
        "claude's window is its own: no wait"
    );
    assert_eq!(
        waits(&calls[2]).len(),
        1,
        "gpt-4o's second call waits for gpt-4o's reset"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_after_a_fallback_keep_the_fallback_model() {
    let sim = Simulator::start().await.unwrap();
    let client = retrying(
        &sim,
        Region::US,
        Retry::default().fallback("claude-sonnet-4-6", ["gemini-2.5-flash"]),
    );
    sim.inject_for_model(
        "claude-sonnet-4-6",
        Fault::RateLimited { retry_after_s: 300 },
    );
    sim.inject_for_model("gemini-2.5-flash", Fault::Status(503));
    let r = client
        .post(sim.chat_url())
        .json(&chat("claude-sonnet-4-6"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    assert_eq!(
        models_sent(&sim),
        vec!["claude-sonnet-4-6", "gemini-2.5-flash", "gemini-2.5-flash"]
    );
}
