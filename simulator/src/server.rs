//! The HTTP side: routing, validation, rate limits, answers and faults.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde_json::{json, Map, Value};
use tokio::time::{sleep, Instant};

use crate::util::{completion_id, http_date, request_id, unix_secs_from_now, words};
use crate::{Fault, ReceivedRequest, Region, Shared, MAX_RECEIVED, MAX_RECORDED_BODY};

/// Request bodies above this are refused (413) and recorded empty.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Upper bound for any delay asked for by a fault or header.
const MAX_DELAY_MS: u64 = 3_600_000;
/// Upper bound for `x-simulator-chunks`.
const MAX_CHUNKS: usize = 10_000;
/// Frame size of `Fault::Big` bodies.
const BIG_FRAME: usize = 64 * 1024;
const BIG_MARKER: &str = "@@SIMULATOR-BIG-CONTENT-7f3a9c@@";
const ANSWER: [&str; 6] = ["Paris", "is", "the", "capital", "of", "France."];

static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
static X_MODEL: HeaderName = HeaderName::from_static("x-ratelimit-model");
static X_SERVICE: HeaderName = HeaderName::from_static("x-ratelimit-service");

type Frames = BoxStream<'static, Result<Bytes, io::Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Anthropic,
    Google,
}

const CATALOGUE: [(&str, Provider); 9] = [
    ("gpt-4o", Provider::OpenAi),
    ("gpt-4o-mini", Provider::OpenAi),
    ("gpt-4.1", Provider::OpenAi),
    ("gpt-5", Provider::OpenAi),
    ("claude-sonnet-4-6", Provider::Anthropic),
    ("claude-opus-4-1", Provider::Anthropic),
    ("claude-haiku-4-5", Provider::Anthropic),
    ("gemini-2.5-flash", Provider::Google),
    ("gemini-2.5-pro", Provider::Google),
];

impl Provider {
    fn of(model: &str) -> Option<Provider> {
        CATALOGUE.iter().find(|(m, _)| *m == model).map(|(_, p)| *p)
    }
    fn served_in(self, region: Region) -> bool {
        region == Region::Us || self != Provider::OpenAi
    }
    fn owner(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Google => "google",
        }
    }
    /// (finish reason when done, finish reason when cut by max_tokens)
    fn finish(self) -> (&'static str, &'static str) {
        match self {
            Provider::OpenAi => ("stop", "length"),
            Provider::Anthropic => ("end_turn", "max_tokens"),
            Provider::Google => ("STOP", "MAX_TOKENS"),
        }
    }
    /// The provider's usage shape. `cached` input tokens (a subset of `input`, as the GenAI
    /// conventions count them) were read from the prompt cache.
    fn usage(self, input: u64, output: u64, cached: u64) -> Value {
        let total = input.saturating_add(output);
        match self {
            Provider::OpenAi => json!({
                "prompt_tokens": input,
                "completion_tokens": output,
                "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": cached},
            }),
            // Anthropic's own counting: input_tokens is the uncached rest.
            Provider::Anthropic => json!({
                "input_tokens": input - cached.min(input),
                "output_tokens": output,
                "total_tokens": total,
                "cache_read_input_tokens": cached,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            }),
            Provider::Google => json!({
                "input_tokens": input,
                "output_tokens": output,
                "total_tokens": total,
            }),
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let (body, body_ok) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => (b, true),
        Err(_) => (Bytes::new(), false),
    };
    record(&shared, &parts, &body);
    let path = parts.uri.path();
    if parts.method == Method::POST && path == "/v1/chat/completions" {
        shared.lock().chat_requests += 1;
        if !body_ok {
            return error1(413, "Invalid request: body too large or unreadable");
        }
        return chat(&shared, &parts.headers, &body, started).await;
    }
    if parts.method == Method::GET && path == "/v1/models" {
        return models(shared.region);
    }
    respond(
        404,
        "text/plain; charset=utf-8",
        Body::from("404 page not found"),
    )
}

fn record(shared: &Shared, parts: &Parts, body: &Bytes) {
    let rec = ReceivedRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: if body.len() > MAX_RECORDED_BODY {
            Bytes::copy_from_slice(&body[..MAX_RECORDED_BODY])
        } else {
            body.clone()
        },
    };
    let mut st = shared.lock();
    while st.received.len() >= MAX_RECEIVED {
        st.received.pop_front();
    }
    st.received.push_back(rec);
}

fn models(region: Region) -> Response {
    let data: Vec<Value> = CATALOGUE
        .iter()
        .filter(|(_, p)| p.served_in(region))
        .map(|(m, p)| json!({"id": m, "object": "model", "owned_by": p.owner()}))
        .collect();
    json_response(200, &json!({"object": "list", "data": data}))
}

// ---------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------

async fn chat(shared: &Shared, headers: &HeaderMap, body: &Bytes, started: Instant) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let body_model = parsed
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .map(str::to_owned);

    let mut fault = headers
        .get("x-simulator-fault")
        .and_then(|v| v.to_str().ok())
        .and_then(Fault::parse);
    if fault.is_none() {
        let mut st = shared.lock();
        if let Some(m) = body_model.as_deref() {
            fault = st.per_model.get_mut(m).and_then(|q| q.pop_front());
        }
        if fault.is_none() {
            fault = st.global.pop_front();
        }
    }

    if let Some(Fault::Slow { delay_ms }) = fault {
        sleep(Duration::from_millis(delay_ms.min(MAX_DELAY_MS))).await;
        fault = None;
    }
    if let Some(f) = &fault {
        if let Some(resp) = fault_response(shared, f, headers, body_model.as_deref()) {
            return resp;
        }
    }
    let resp = answer(shared, headers, parsed.as_ref(), fault.as_ref(), started);
    match fault {
        Some(Fault::Stall {
            after_bytes,
            delay_ms,
        }) => stall(resp, after_bytes, delay_ms.min(MAX_DELAY_MS)),
        _ => resp,
    }
}

/// The answer to a request with no fault, or with one that modifies a normal answer.
fn answer(
    shared: &Shared,
    headers: &HeaderMap,
    parsed: Option<&Value>,
    fault: Option<&Fault>,
    started: Instant,
) -> Response {
    if let Some(key) = &shared.api_key {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return auth_error();
        };
        let ok = value.to_str().is_ok_and(|s| {
            let s = s.trim();
            s == key
                || s.strip_prefix("Bearer ")
                    .or_else(|| s.strip_prefix("bearer "))
                    .is_some_and(|k| k.trim() == key)
        });
        if !ok {
            return error1(401, "Unauthorized - Invalid or missing API key");
        }
    }

    let Some(v) = parsed else {
        return error1(400, "Invalid request: body is not valid JSON");
    };
    let Some(obj) = v.as_object() else {
        return error1(400, "Invalid request: body must be a JSON object");
    };
    let model = match obj.get("model") {
        None | Some(Value::Null) => {
            return error1(400, "Invalid request: missing required field 'model'")
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return error1(400, "Invalid request: 'model' must be a string"),
    };
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(_) => {
            return flat_error(
                400,
                "Invalid request: 'messages' must be an array",
                "messages",
                "must be an array",
            )
        }
    };
    let prompt = obj.get("prompt").filter(|p| !p.is_null());
    if messages.is_none() && prompt.is_none() {
        return error1(
            400,
            "Invalid request: either 'messages' or 'prompt' is required",
        );
    }
    let max_tokens = match obj.get("max_tokens") {
        None | Some(Value::Null) => 1000,
        Some(n) => match n.as_u64() {
            Some(n) if (1..=200_000).contains(&n) => n,
            _ => {
                return error1(
                    400,
                    "Invalid request: 'max_tokens' must be an integer between 1 and 200000",
                )
            }
        },
    };

    let region = shared.region;
    let Some(provider) = Provider::of(model) else {
        return error1(404, &format!("Model '{model}' not found"));
    };
    if !provider.served_in(region) {
        return error1(
            404,
            &format!(
                "Model '{model}' is not available in region {}",
                region.as_str()
            ),
        );
    }

    let fallback = first_fallback(obj)
        .and_then(|m| Provider::of(m).map(|p| (m, p)))
        .filter(|(_, p)| p.served_in(region));
    let mut rate = shared.rate(model, false).unwrap_or_default();
    let mut served = (model, provider);
    if rate.over() {
        match fallback.and_then(|fb| shared.rate(fb.0, true).map(|r| (fb, r))) {
            Some((fb, r)) => {
                served = fb;
                rate = r;
            }
            None => {
                let mut resp = error1(429, &format!("Rate limit exceeded for model {model}"));
                let h = resp.headers_mut();
                rate.set_headers(h, model);
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(rate.reset_secs.max(1)),
                );
                return resp;
            }
        }
    } else if fault == Some(&Fault::Fallback) {
        if let Some(fb) = fallback {
            served = fb;
            rate = shared.rate(fb.0, false).unwrap_or_default();
        }
    }

    let input = input_tokens(messages, prompt);
    let ans = Answer {
        request_id: request_id(),
        served: served.0.to_string(),
        provider: served.1,
        requested: model.to_string(),
        max_tokens,
        input,
        // `x-simulator-cached-tokens: N`: N of the input tokens came from the prompt cache.
        cached: header_num(headers, "x-simulator-cached-tokens")
            .unwrap_or(0)
            .min(input),
        started,
    };
    let without_usage = fault == Some(&Fault::NoUsage);
    let stream = obj.get("stream").and_then(Value::as_bool) == Some(true);
    let chunks = header_num(headers, "x-simulator-chunks")
        .map_or(5, |n| usize::try_from(n).unwrap_or(MAX_CHUNKS))
        .clamp(1, MAX_CHUNKS);
    let chunk_delay = header_num(headers, "x-simulator-chunk-delay-ms")
        .unwrap_or(0)
        .min(MAX_DELAY_MS);

    let mut resp = match fault {
        Some(Fault::Big { content_bytes }) => big(&ans, *content_bytes),
        Some(Fault::TruncatedJson) => {
            let full = Bytes::from(ans.json().to_string());
            let cut = full.slice(..full.len() / 2);
            respond(200, "application/json", Body::from(cut))
        }
        Some(Fault::BrokenStream { after_chunks }) => {
            let n = chunks.max(after_chunks.saturating_add(1)).min(MAX_CHUNKS);
            sse(&ans, n, chunk_delay, SseEnd::Break(*after_chunks))
        }
        Some(Fault::NoDone) => sse(&ans, chunks, chunk_delay, SseEnd::NoDone),
        _ if stream && ans.provider == Provider::OpenAi => {
            let end = if without_usage {
                SseEnd::DoneWithoutUsage
            } else {
                SseEnd::Done
            };
            sse(&ans, chunks, chunk_delay, end)
        }
        _ if without_usage => {
            let mut body = ans.json();
            if let Some(o) = body.as_object_mut() {
                o.remove("usage");
            }
            json_response(200, &body)
        }
        _ => json_response(200, &ans.json()),
    };
    rate.set_headers(resp.headers_mut(), &ans.served);
    resp
}

fn first_fallback(obj: &Map<String, Value>) -> Option<&str> {
    let first = obj.get("fallbacks")?.as_array()?.first()?;
    match first {
        Value::String(s) => Some(s),
        other => other.get("model")?.as_str(),
    }
}

fn header_num(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn content_words(v: &Value) -> u64 {
    match v {
        Value::String(s) => words(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => words(s),
                other => other.get("text").and_then(Value::as_str).map_or(0, words),
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

fn input_tokens(messages: Option<&Vec<Value>>, prompt: Option<&Value>) -> u64 {
    let from_messages = messages
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content"))
        .map(content_words)
        .fold(0u64, u64::saturating_add);
    from_messages
        .saturating_add(prompt.map_or(0, content_words))
        .max(1)
}

struct Answer {
    request_id: String,
    served: String,
    provider: Provider,
    requested: String,
    max_tokens: u64,
    input: u64,
    /// Input tokens read from the prompt cache (part of `input`).
    cached: u64,
    started: Instant,
}

impl Answer {
    fn body(&self, content: &str, output: u64, finish: &str) -> Value {
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        json!({
            "request_id": self.request_id,
            "model": self.served,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }],
            "usage": self.provider.usage(self.input, output, self.cached),
            "request": {"model": self.requested, "max_tokens": self.max_tokens},
            "response_time": elapsed.max(1),
            "llm_status_code": 200,
        })
    }

    /// The normal answer, "Paris is the capital of France." cut to max_tokens words.
    fn json(&self) -> Value {
        let n = ANSWER
            .len()
            .min(usize::try_from(self.max_tokens).unwrap_or(usize::MAX));
        let (done, cut) = self.provider.finish();
        let finish = if n < ANSWER.len() { cut } else { done };
        self.body(&ANSWER[..n].join(" "), n as u64, finish)
    }
}

// ---------------------------------------------------------------------------------------
// Streaming bodies
// ---------------------------------------------------------------------------------------

enum SseEnd {
    Done,
    /// `[DONE]` without the usage chunk before it (a stream asked without usage).
    DoneWithoutUsage,
    NoDone,
    Break(usize),
}

fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn sse(ans: &Answer, chunks: usize, delay_ms: u64, end: SseEnd) -> Response {
    let n = chunks.min(usize::try_from(ans.max_tokens).unwrap_or(usize::MAX));
    let (_, cut) = Provider::OpenAi.finish();
    let last_finish = if n < chunks { cut } else { "stop" };
    let id = completion_id();
    let mut events: Vec<Bytes> = (0..n)
        .map(|i| {
            let finish = if i + 1 == n {
                Value::from(last_finish)
            } else {
                Value::Null
            };
            sse_event(&json!({
                "id": id,
                "object": "chat.completion.chunk",
                "model": ans.served,
                "request_id": ans.request_id,
                "choices": [{
                    "index": 0,
                    "delta": {"content": format!("{} ", ANSWER[i % ANSWER.len()])},
                    "finish_reason": finish,
                }],
            }))
        })
        .collect();
    let fail = match end {
        SseEnd::Break(after) => {
            events.truncate(after);
            true
        }
        SseEnd::DoneWithoutUsage => {
            events.push(Bytes::from_static(b"data: [DONE]\n\n"));
            false
        }
        SseEnd::Done | SseEnd::NoDone => {
            let input = ans.input;
            let output = n as u64;
            events.push(sse_event(&json!({
                "id": id,
                "object": "chat.completion.chunk",
                "request_id": ans.request_id,
                "model": ans.served,
                "choices": [],
                "usage": {
                    "prompt_tokens": input,
                    "completion_tokens": output,
                    "total_tokens": input.saturating_add(output),
                    "prompt_tokens_details": {"cached_tokens": ans.cached},
                },
            })));
            if matches!(end, SseEnd::Done) {
                events.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            false
        }
    };

    struct St {
        events: std::vec::IntoIter<Bytes>,
        first: bool,
        delay: Duration,
        fail: bool,
    }
    let st = St {
        events: events.into_iter(),
        first: true,
        delay: Duration::from_millis(delay_ms),
        fail,
    };
    let frames = stream::unfold(st, |mut st| async move {
        match st.events.next() {
            Some(b) => {
                if !st.first && !st.delay.is_zero() {
                    sleep(st.delay).await;
                }
                st.first = false;
                Some((Ok(b), st))
            }
            None if st.fail => {
                st.fail = false;
                // Let the server flush what was sent before the connection is torn down.
                sleep(Duration::from_millis(5)).await;
                Some((
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "simulated broken stream",
                    )),
                    st,
                ))
            }
            None => None,
        }
    });
    let mut resp = respond(200, "text/event-stream", Body::from_stream(frames));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn big_pattern() -> Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            (0..BIG_FRAME + 26)
                .map(|i| b'a' + (i % 26) as u8)
                .collect::<Vec<u8>>()
                .into()
        })
        .clone()
}

fn big(ans: &Answer, content_bytes: usize) -> Response {
    let (done, _) = ans.provider.finish();
    let text = ans
        .body(BIG_MARKER, u64::from(content_bytes > 0), done)
        .to_string();
    let (prefix, suffix) = match text.find(BIG_MARKER) {
        Some(i) => (
            text[..i].to_string(),
            text[i + BIG_MARKER.len()..].to_string(),
        ),
        None => (text, String::new()),
    };
    let total = prefix.len() as u64 + content_bytes as u64 + suffix.len() as u64;
    let pattern = big_pattern();
    let content = stream::unfold(0usize, move |off| {
        let pattern = pattern.clone();
        async move {
            if off >= content_bytes {
                return None;
            }
            let len = (content_bytes - off).min(BIG_FRAME);
            let start = off % 26;
            Some((pattern.slice(start..start + len), off + len))
        }
    });
    let frames: Frames = stream::iter([Bytes::from(prefix)])
        .chain(content)
        .chain(stream::iter([Bytes::from(suffix)]))
        .map(Ok)
        .boxed();
    let mut resp = respond(200, "application/json", Body::from_stream(frames));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    resp
}

/// Re-streams `resp`'s body, pausing `delay_ms` once `after_bytes` bytes have gone out.
fn stall(resp: Response, after_bytes: usize, delay_ms: u64) -> Response {
    let (parts, body) = resp.into_parts();
    struct St {
        inner: Frames,
        sent: usize,
        after: usize,
        stalled: bool,
        sleep_next: bool,
        pending: Option<Bytes>,
        delay: Duration,
    }
    let st = St {
        inner: body
            .into_data_stream()
            .map(|r| r.map_err(io::Error::other))
            .boxed(),
        sent: 0,
        after: after_bytes,
        stalled: false,
        sleep_next: false,
        pending: None,
        delay: Duration::from_millis(delay_ms),
    };
    let frames = stream::unfold(st, |mut st| async move {
        if st.sleep_next {
            st.sleep_next = false;
            sleep(st.delay).await;
        }
        if let Some(p) = st.pending.take() {
            st.sent += p.len();
            return Some((Ok(p), st));
        }
        let mut b = match st.inner.next().await? {
            Ok(b) => b,
            Err(e) => return Some((Err(e), st)),
        };
        if !st.stalled && st.sent.saturating_add(b.len()) >= st.after {
            st.stalled = true;
            let head = st.after - st.sent;
            if head == 0 {
                sleep(st.delay).await;
            } else {
                let rest = b.split_off(head);
                if !rest.is_empty() {
                    st.pending = Some(rest);
                }
                st.sleep_next = true;
            }
        }
        st.sent += b.len();
        Some((Ok(b), st))
    });
    Response::from_parts(parts, Body::from_stream(frames))
}

// ---------------------------------------------------------------------------------------
// Faults and error bodies
// ---------------------------------------------------------------------------------------

/// The response for faults that replace the answer; `None` for those that modify it.
fn fault_response(
    shared: &Shared,
    fault: &Fault,
    headers: &HeaderMap,
    model: Option<&str>,
) -> Option<Response> {
    let rate_limited = |retry_after: HeaderValue, reset: u64| {
        let msg = match model {
            Some(m) => format!("Rate limit exceeded for model {m}"),
            None => "Rate limit exceeded".to_string(),
        };
        let mut resp = error1(429, &msg);
        let h = resp.headers_mut();
        Rate {
            limit: shared.limit,
            count: u64::from(shared.limit),
            reset_secs: reset,
        }
        .set_headers_opt(h, model);
        h.insert(header::RETRY_AFTER, retry_after);
        resp
    };
    let resp = match fault {
        Fault::Status(429) => rate_limited(HeaderValue::from_static("1"), 1),
        Fault::Status(code) => {
            let reason = status(*code).canonical_reason().unwrap_or("Error");
            error1(*code, reason)
        }
        Fault::RateLimited { retry_after_s } => {
            rate_limited(HeaderValue::from(*retry_after_s), *retry_after_s)
        }
        Fault::RetryAfterDate { secs_from_now } => {
            let date = http_date(unix_secs_from_now(*secs_from_now));
            let value = HeaderValue::from_str(&date).unwrap_or(HeaderValue::from_static("1"));
            rate_limited(value, *secs_from_now)
        }
        Fault::Flat(code) => flat_error(
            *code,
            "Invalid request: 'messages' must be an array",
            "messages",
            "must be an array",
        ),
        Fault::Auth => auth_error(),
        Fault::Html(code) => {
            let st = status(*code);
            let title = format!(
                "{} {}",
                st.as_u16(),
                st.canonical_reason().unwrap_or("Error")
            );
            let page = format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n"
            );
            respond(*code, "text/html", Body::from(page))
        }
        Fault::Empty(code) => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = status(*code);
            resp
        }
        Fault::PlainText(code) => respond(
            *code,
            "text/plain",
            Body::from("upstream connect error or disconnect/reset before headers"),
        ),
        Fault::Garbage(code) => respond(
            *code,
            "application/json",
            Body::from(&b"\xff\xfe\x00\x00{\"err\xc3\x28\x80\x81\xfe\xff\x00}"[..]),
        ),
        Fault::EchoKey(code) => {
            let key = headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            error1(*code, &format!("Invalid API key: {key}"))
        }
        Fault::JsonRepairFailed => error1(
            500,
            "Post-processing failed: json-repair could not repair the model output into valid JSON",
        ),
        Fault::Slow { .. }
        | Fault::Stall { .. }
        | Fault::TruncatedJson
        | Fault::BrokenStream { .. }
        | Fault::NoDone
        | Fault::NoUsage
        | Fault::Big { .. }
        | Fault::Fallback => return None,
    };
    Some(resp)
}

/// The status for `code`; 500 for anything that can't be a final response (< 200, > 999).
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn respond(code: u16, content_type: &'static str, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status(code);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(code: u16, v: &Value) -> Response {
    respond(code, "application/json", Body::from(v.to_string()))
}

/// Shape 1, the documented one: `{"error":{"code":N,"message":"..."}}`.
fn error1(code: u16, message: &str) -> Response {
    let code = status(code).as_u16();
    json_response(code, &json!({"error": {"code": code, "message": message}}))
}

/// Shape 2, flat.
fn flat_error(code: u16, message: &str, field: &str, field_message: &str) -> Response {
    json_response(
        status(code).as_u16(),
        &json!({
            "request_id": request_id(),
            "message": message,
            "code": "invalid_request",
            "metadata": {"errors": [{"field": field, "message": field_message}]},
        }),
    )
}

/// Shape 3, the auth error.
fn auth_error() -> Response {
    json_response(
        401,
        &json!({
            "error": "Authentication error, API token missing/invalid",
            "status": "error",
            "request_id": request_id(),
        }),
    )
}

// ---------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct Rate {
    limit: u32,
    count: u64,
    reset_secs: u64,
}

impl Rate {
    fn over(&self) -> bool {
        self.count > u64::from(self.limit)
    }

    fn set_headers(&self, h: &mut HeaderMap, model: &str) {
        self.set_headers_opt(h, Some(model));
    }

    fn set_headers_opt(&self, h: &mut HeaderMap, model: Option<&str>) {
        let remaining = i64::from(self.limit) - i64::try_from(self.count).unwrap_or(i64::MAX);
        h.insert(X_LIMIT.clone(), HeaderValue::from(self.limit));
        h.insert(X_REMAINING.clone(), HeaderValue::from(remaining));
        h.insert(X_RESET.clone(), HeaderValue::from(self.reset_secs));
        if let Some(v) = model.and_then(|m| HeaderValue::from_str(m).ok()) {
            h.insert(X_MODEL.clone(), v);
        }
        h.insert(X_SERVICE.clone(), HeaderValue::from_static("llm-gateway"));
    }
}

impl Shared {
    /// Counts a request for `model` in its window. With `only_if_available`, counts it (and
    /// returns `Some`) only if the model still has room in the window.
    fn rate(&self, model: &str, only_if_available: bool) -> Option<Rate> {
        let now = Instant::now();
        let mut st = self.lock();
        let w = st
            .windows
            .entry(model.to_string())
            .or_insert(crate::RateWindow {
                start: now,
                count: 0,
            });
        if now.duration_since(w.start) >= self.window {
            w.start = now;
            w.count = 0;
        }
        if only_if_available && w.count >= u64::from(self.limit) {
            return None;
        }
        w.count = w.count.saturating_add(1);
        let left = self.window.saturating_sub(now.duration_since(w.start));
        Some(Rate {
            limit: self.limit,
            count: w.count,
            reset_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        })
    }
}
