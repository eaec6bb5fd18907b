//! Message content, opt-in: the request's messages and the answer (a stream's assembled from
//! its deltas) in the GenAI semantic conventions' JSON shape, redacted and bounded; and the
//! one rule that bounds and redacts a JSON value (also used by the support report's payload).
//! Nothing here runs unless content capture is on, but [`bound_value`] for the report.

use serde_json::{json, Map, Value};

use crate::error::ConfigError;
use crate::redact::{is_secret_name, redact, REDACTED};

/// The variable the OpenTelemetry GenAI instrumentations read (`NO_CONTENT`, `SPAN_ONLY`,
/// `EVENT_ONLY`, `SPAN_AND_EVENT`), read when the middleware is built without
/// [`GatewayMiddlewareBuilder::capture_content`](crate::GatewayMiddlewareBuilder::capture_content).
pub const CAPTURE_CONTENT_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// Default bound of each captured attribute (`gen_ai.input.messages`, ...), in bytes.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 16 * 1024;

/// Largest bound accepted for a captured attribute.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

/// With capture on, how much of a 2xx response is kept for the support report (and read for
/// the answer's messages): the first 1 MiB.
pub const MAX_CAPTURED_RESPONSE: usize = 1024 * 1024;

/// Whether message content is recorded, and where. Off by default: nothing of a prompt or
/// an answer is copied.
///
/// With capture on, the call's span (`SPAN_ONLY`, `SPAN_AND_EVENT`) gets
/// `gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions`; an
/// event `gen_ai.client.inference.operation.details` (a `tracing` event of target
/// `llm_gateway_otel::content`, a log record through a logs bridge) carries the same
/// (`EVENT_ONLY`, `SPAN_AND_EVENT`); and the support report holds the full request payload
/// and the full response, what the gateway's support asks for on a quality issue.
///
/// ```
/// use llm_gateway_otel::{ContentCapture, GatewayMiddleware};
/// let middleware = GatewayMiddleware::builder()
///     .capture_content(ContentCapture::SpanOnly)
///     .build()
///     .unwrap();
/// assert_eq!(ContentCapture::parse("span_and_event").unwrap(), ContentCapture::SpanAndEvent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentCapture {
    /// Nothing is captured (`NO_CONTENT`).
    #[default]
    NoContent,
    /// On the call's span (`SPAN_ONLY`).
    SpanOnly,
    /// In the event only (`EVENT_ONLY`).
    EventOnly,
    /// Both (`SPAN_AND_EVENT`).
    SpanAndEvent,
}

impl ContentCapture {
    /// Reads a value of `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (any case).
    /// `true` and `false`, which older instrumentations took, mean `SPAN_AND_EVENT` and
    /// `NO_CONTENT`; an empty value is `NO_CONTENT`; anything else is an error.
    pub fn parse(value: &str) -> Result<ContentCapture, ConfigError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "" | "NO_CONTENT" | "FALSE" => Ok(ContentCapture::NoContent),
            "SPAN_ONLY" => Ok(ContentCapture::SpanOnly),
            "EVENT_ONLY" => Ok(ContentCapture::EventOnly),
            "SPAN_AND_EVENT" | "TRUE" => Ok(ContentCapture::SpanAndEvent),
            _ => Err(ConfigError::new(format!(
                "{CAPTURE_CONTENT_ENV}={value:?}: expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT"
            ))),
        }
    }

    /// The mode `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` asks for (unset: off).
    pub fn from_env() -> Result<ContentCapture, ConfigError> {
        match std::env::var(CAPTURE_CONTENT_ENV) {
            Ok(v) => ContentCapture::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(ContentCapture::NoContent),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(format!(
                "{CAPTURE_CONTENT_ENV} is not UTF-8"
            ))),
        }
    }

    /// Whether anything is captured.
    pub fn is_on(self) -> bool {
        self != ContentCapture::NoContent
    }

    pub(crate) fn on_span(self) -> bool {
        matches!(
            self,
            ContentCapture::SpanOnly | ContentCapture::SpanAndEvent
        )
    }

    pub(crate) fn on_event(self) -> bool {
        matches!(
            self,
            ContentCapture::EventOnly | ContentCapture::SpanAndEvent
        )
    }
}

/// The content of a request: its messages and its system instructions, as bounded JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestContent {
    /// `gen_ai.input.messages`.
    pub(crate) input: Option<String>,
    /// `gen_ai.system_instructions` (the request's system messages).
    pub(crate) system: Option<String>,
}

/// The content of a request body (`messages`, or `prompt`), redacted and bounded to `max`
/// bytes per attribute. Not JSON, or neither field: nothing.
pub(crate) fn request_content(body: &[u8], secrets: &[String], max: usize) -> RequestContent {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return RequestContent::default();
    };
    let mut messages = Vec::new();
    let mut system = Vec::new();
    match (body.get("messages"), body.get("prompt")) {
        (Some(Value::Array(list)), _) => {
            for m in list {
                let message = input_message(m);
                if message["role"] == "system" || message["role"] == "developer" {
                    if let Some(parts) = message["parts"].as_array() {
                        system.extend(parts.iter().cloned());
                    }
                }
                messages.push(message);
            }
        }
        (_, Some(prompt)) => messages.push(json!({"role": "user", "parts": parts_of(prompt)})),
        _ => {}
    }
    RequestContent {
        input: (!messages.is_empty()).then(|| render(Value::Array(messages), secrets, max)),
        system: (!system.is_empty()).then(|| render(Value::Array(system), secrets, max)),
    }
}

/// One chat message in the GenAI shape: `{"role", "parts": [...]}`; tool calls and tool
/// results become `tool_call` / `tool_call_response` parts.
fn input_message(m: &Value) -> Value {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
    let mut parts = match m.get("content") {
        Some(content) if role == "tool" => vec![json!({
            "type": "tool_call_response",
            "id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
            "response": content,
        })],
        Some(content) => parts_of(content),
        None => Vec::new(),
    };
    if let Some(Value::Array(calls)) = m.get("tool_calls") {
        parts.extend(calls.iter().map(tool_call));
    }
    json!({"role": role, "parts": parts})
}

/// The parts of a `content` value: a string is one text part; an array of OpenAI content
/// parts keeps its text, and names other parts by type without their data (an image is not
/// copied).
fn parts_of(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![text_part(s)],
        Value::Array(items) => items
            .iter()
            .map(|p| match p {
                Value::String(s) => text_part(s),
                _ => match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (_, Some(Value::String(t))) => text_part(t),
                    (Some(kind), _) => json!({"type": kind}),
                    (None, _) => json!({"type": "unknown"}),
                },
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![text_part(&other.to_string())],
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "text", "content": text})
}

/// An OpenAI `tool_calls[]` entry as a `tool_call` part (arguments parsed when they are JSON).
fn tool_call(call: &Value) -> Value {
    let function = call.get("function");
    let arguments = function.and_then(|f| f.get("arguments"));
    let arguments = match arguments {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::from(s.clone()))
        }
        Some(other) => other.clone(),
        None => Value::Null,
    };
    json!({
        "type": "tool_call",
        "id": call.get("id").cloned().unwrap_or(Value::Null),
        "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
        "arguments": arguments,
    })
}

/// `gen_ai.output.messages` of a JSON answer: one message per choice, with its
/// `finish_reason`. `None` when the body is not a JSON object with `choices`.
pub(crate) fn output_from_json(body: &[u8], secrets: &[String], max: usize) -> Option<String> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let choices = body.get("choices")?.as_array()?;
    let messages: Vec<Value> = choices
        .iter()
        .map(|c| {
            let message = c.get("message").cloned().unwrap_or(Value::Null);
            let mut out = input_message(&message);
            if message.get("role").is_none() {
                out["role"] = Value::from("assistant");
            }
            out["finish_reason"] = c.get("finish_reason").cloned().unwrap_or(Value::Null);
            out
        })
        .collect();
    Some(render(Value::Array(messages), secrets, max))
}

/// One choice of a stream, assembled from its deltas.
#[derive(Default)]
struct Assembled {
    role: Option<String>,
    text: String,
    finish_reason: Option<Value>,
    /// Tool calls by their `index`: id, name, arguments text.
    tools: Vec<(Value, Value, String)>,
}

/// `gen_ai.output.messages` of a stream (the SSE bytes kept, up to
/// [`MAX_CAPTURED_RESPONSE`]): the deltas of each choice joined, in the order of their
/// `index`. `None` when no event had a choice.
pub(crate) fn output_from_sse(body: &[u8], secrets: &[String], max: usize) -> Option<String> {
    let mut choices: Vec<(u64, Assembled)> = Vec::new();
    let mut reader = crate::parse::sse::SseReader::new(MAX_CAPTURED_RESPONSE);
    let mut take = |data: &[u8]| {
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        for c in event
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let at = match choices.iter().position(|(i, _)| *i == index) {
                Some(at) => at,
                None => {
                    choices.push((index, Assembled::default()));
                    choices.len() - 1
                }
            };
            let a = &mut choices[at].1;
            let delta = c.get("delta").or_else(|| c.get("message"));
            if let Some(d) = delta {
                if let Some(role) = d.get("role").and_then(Value::as_str) {
                    a.role.get_or_insert_with(|| role.to_owned());
                }
                if let Some(text) = d.get("content").and_then(Value::as_str) {
                    if a.text.len() < MAX_CAPTURED_RESPONSE {
                        a.text.push_str(text);
                    }
                }
                for call in d
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let i = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                    if i >= 128 {
                        continue;
                    }
                    while a.tools.len() <= i {
                        a.tools.push((Value::Null, Value::Null, String::new()));
                    }
                    let t = &mut a.tools[i];
                    if let Some(id) = call.get("id").filter(|v| !v.is_null()) {
                        t.0 = id.clone();
                    }
                    let f = call.get("function");
                    if let Some(name) = f.and_then(|f| f.get("name")).filter(|v| !v.is_null()) {
                        t.1 = name.clone();
                    }
                    if let Some(args) = f.and_then(|f| f.get("arguments")).and_then(Value::as_str) {
                        if t.2.len() < MAX_CAPTURED_RESPONSE {
                            t.2.push_str(args);
                        }
                    }
                }
            }
            if let Some(reason) = c.get("finish_reason").filter(|v| !v.is_null()) {
                a.finish_reason = Some(reason.clone());
            }
        }
    };
    reader.feed(body, &mut take);
    if let Some(pending) = reader.pending() {
        take(pending);
    }
    if choices.is_empty() {
        return None;
    }
    choices.sort_by_key(|(i, _)| *i);
    let messages: Vec<Value> = choices
        .into_iter()
        .map(|(_, a)| {
            let mut parts = Vec::new();
            if !a.text.is_empty() {
                parts.push(text_part(&a.text));
            }
            for (id, name, args) in a.tools {
                let arguments = serde_json::from_str(&args).unwrap_or(Value::String(args));
                parts.push(
                    json!({"type": "tool_call", "id": id, "name": name, "arguments": arguments}),
                );
            }
            json!({
                "role": a.role.unwrap_or_else(|| "assistant".to_owned()),
                "parts": parts,
                "finish_reason": a.finish_reason.unwrap_or(Value::Null),
            })
        })
        .collect();
    Some(render(Value::Array(messages), secrets, max))
}

/// `value` as JSON text of at most `max` bytes: every string redacted, and when the whole is
/// too long, the strings cut (each cut marked) until it fits; what still does not fit is cut
/// as text, the cut marked.
fn render(value: Value, secrets: &[String], max: usize) -> String {
    let mut notes = Vec::new();
    let bounds = Bounds {
        string: max,
        array: MAX_ARRAY,
        total: max,
    };
    let bounded = bound_value(&value, secrets, bounds, &mut notes);
    let mut text = bounded.to_string();
    if text.len() > max {
        let total = text.len() as u64;
        let mut marker = String::new();
        crate::text::mark_cut(&mut marker, total);
        // The marker fits inside the bound, not after it.
        crate::text::truncate_string(&mut text, max.saturating_sub(marker.len()));
        text.push_str(&marker);
    }
    text
}

/// Most elements kept of an array: the first one (the system prompt, usually) and the last
/// ones (the latest turns).
pub(crate) const MAX_ARRAY: usize = 50;
/// Deeper nesting than this is replaced by a marker.
const MAX_DEPTH: usize = 32;
/// The shortest string budget tried before giving up on fitting a value.
const MIN_STRING_BUDGET: usize = 64;

/// How far [`bound_value`] cuts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Longest string kept, in bytes (it is cut shorter when the whole does not fit).
    pub(crate) string: usize,
    /// Most elements kept of an array (the first and the last ones).
    pub(crate) array: usize,
    /// Target size of the whole JSON text, in bytes.
    pub(crate) total: usize,
}

/// `value` redacted (known secrets, key-like tokens, values of secret-named keys) and bounded:
/// strings cut at `bounds.string` bytes, arrays at `bounds.array` elements, then strings cut
/// shorter until the JSON text fits `bounds.total` bytes (or the strings are down to 64
/// bytes). Every cut is marked in place and described in `notes`.
pub(crate) fn bound_value(
    value: &Value,
    secrets: &[String],
    bounds: Bounds,
    notes: &mut Vec<String>,
) -> Value {
    let total_limit = bounds.total;
    let mut limit = bounds.string;
    loop {
        let mut n = Vec::new();
        let at = Bounds {
            string: limit,
            ..bounds
        };
        let bounded = bound(value, secrets, at, 0, "", &mut n);
        let size = serde_json::to_string(&bounded).map_or(0, |s| s.len());
        if size <= total_limit || limit <= MIN_STRING_BUDGET {
            notes.extend(n);
            if size > total_limit {
                notes.push(format!("still {size} bytes after cutting"));
            }
            return bounded;
        }
        limit = (limit / 4).max(MIN_STRING_BUDGET).min(limit - 1);
    }
}

fn bound(
    v: &Value,
    secrets: &[String],
    bounds: Bounds,
    depth: usize,
    path: &str,
    notes: &mut Vec<String>,
) -> Value {
    if depth > MAX_DEPTH {
        notes.push(format!("{path}: nested deeper than {MAX_DEPTH}, left out"));
        return Value::String("…[nested too deep]".to_owned());
    }
    let child = |i: &dyn std::fmt::Display| {
        if path.is_empty() {
            i.to_string()
        } else {
            format!("{path}.{i}")
        }
    };
    match v {
        Value::String(s) => Value::String(cut(&redact(s, secrets), bounds.string, notes, path)),
        Value::Array(items) => {
            let element = |i: usize, notes: &mut Vec<String>| {
                let at = format!("{path}[{i}]");
                bound(&items[i], secrets, bounds, depth + 1, &at, notes)
            };
            if items.len() <= bounds.array {
                return Value::Array((0..items.len()).map(|i| element(i, notes)).collect());
            }
            let omitted = items.len() - bounds.array;
            notes.push(format!(
                "{path}: {} elements, {omitted} after the first left out",
                items.len()
            ));
            let mut out = Vec::with_capacity(bounds.array + 1);
            out.push(element(0, notes));
            out.push(Value::String(format!("…[{omitted} elements omitted]")));
            for i in items.len() - (bounds.array - 1)..items.len() {
                out.push(element(i, notes));
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, item)| {
                    let key = redact(k, secrets).into_owned();
                    let value = if is_secret_name(k) && !item.is_null() {
                        Value::String(REDACTED.to_owned())
                    } else {
                        bound(item, secrets, bounds, depth + 1, &child(&key), notes)
                    };
                    (key, value)
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

/// The first bytes of a body that had `total` bytes, as redacted text, the cut marked when
/// some were not kept (an error body, a captured response).
pub(crate) fn kept_text(kept: &[u8], total: u64, secrets: &[String]) -> String {
    let text = String::from_utf8_lossy(kept);
    let mut out = redact(&text, secrets).into_owned();
    if total > kept.len() as u64 {
        crate::text::mark_cut(&mut out, total);
    }
    out
}

/// `text` cut to at most `limit` bytes on a character boundary, the cut marked.
pub(crate) fn cut(text: &str, limit: usize, notes: &mut Vec<String>, path: &str) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    notes.push(format!("{path}: {} bytes, cut to {limit}", text.len()));
    let mut kept = crate::text::truncate_utf8(text, limit).to_owned();
    crate::text::mark_cut(&mut kept, text.len() as u64);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn messages_become_the_genai_shape_with_system_instructions_apart() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"Answer in French."},
            {"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"sunny"}
        ]}"#;
        let c = request_content(body, &[], DEFAULT_MAX_CONTENT_BYTES);
        let input = parse(c.input.as_deref().unwrap());
        assert_eq!(
            input[0],
            json!({"role":"system","parts":[{"type":"text","content":"Answer in French."}]})
        );
        assert_eq!(
            input[1]["parts"][0],
            json!({"type":"text","content":"What is this?"})
        );
        assert_eq!(
            input[1]["parts"][1],
            json!({"type":"image_url"}),
            "no image data copied"
        );
        assert_eq!(
            input[2]["parts"][0],
            json!({"type":"tool_call","id":"call_1","name":"lookup","arguments":{"city":"Paris"}})
        );
        assert_eq!(
            input[3]["parts"][0],
            json!({"type":"tool_call_response","id":"call_1","response":"sunny"})
        );
        assert_eq!(
            parse(c.system.as_deref().unwrap()),
            json!([{"type":"text","content":"Answer in French."}])
        );
        let prompt = request_content(br#"{"prompt":"Hi"}"#, &[], 1024);
        assert_eq!(
            parse(prompt.input.as_deref().unwrap()),
            json!([{"role":"user","parts":[{"type":"text","content":"Hi"}]}])
        );
        assert_eq!(prompt.system, None);
        assert_eq!(
            request_content(b"not json", &[], 1024),
            RequestContent::default()
        );
    }

    #[test]
    fn keys_are_redacted_and_long_content_is_cut_visibly_within_the_bound() {
        let key = "5f0e3c9a7b1d4e2f8a6c0b9d3e7f1a2c";
        let long = "word ".repeat(10_000);
        let body = json!({"messages": [
            {"role": "user", "content": format!("my key is {key} and my-own-secret")},
            {"role": "user", "content": long},
        ]})
        .to_string();
        let c = request_content(body.as_bytes(), &["my-own-secret".to_owned()], 4096);
        let input = c.input.unwrap();
        assert!(input.len() <= 4096, "{}", input.len());
        assert!(
            !input.contains(key) && !input.contains("my-own-secret"),
            "{input}"
        );
        assert!(input.contains("[REDACTED]"));
        assert!(
            input.contains("…[truncated: 50000 bytes in all]"),
            "{input}"
        );
        assert!(serde_json::from_str::<Value>(&input).is_ok(), "still JSON");
    }

    #[test]
    fn a_json_answer_and_a_stream_give_the_same_output_messages() {
        let answer = br#"{"request_id":"r","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France."},"finish_reason":"stop"}],"usage":{"input_tokens":3,"output_tokens":6}}"#;
        let from_json = output_from_json(answer, &[], 1024).unwrap();
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Paris \"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is the capital \"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"of France.\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":6}}\n\n",
            "data: [DONE]\n\n",
        );
        let from_sse = output_from_sse(stream.as_bytes(), &[], 1024).unwrap();
        assert_eq!(parse(&from_json), parse(&from_sse));
        assert_eq!(
            parse(&from_sse),
            json!([{"role":"assistant","parts":[{"type":"text","content":"Paris is the capital of France."}],"finish_reason":"stop"}])
        );
        // Garbage, a cut stream, an HTML page: no panic, whatever can be read is kept.
        assert_eq!(output_from_json(b"<html>", &[], 1024), None);
        let cut = &stream.as_bytes()[..stream.find("is the").unwrap() + 3];
        assert!(output_from_sse(cut, &[], 1024).unwrap().contains("Paris"));
        assert_eq!(output_from_sse(b"data: nope\n\n", &[], 1024), None);
    }

    #[test]
    fn streamed_tool_calls_are_assembled() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"ci\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        );
        let out = parse(&output_from_sse(stream.as_bytes(), &[], 1024).unwrap());
        assert_eq!(
            out[0]["parts"][0],
            json!({"type":"tool_call","id":"c1","name":"lookup","arguments":{"city":"Paris"}})
        );
        assert_eq!(out[0]["finish_reason"], "tool_calls");
    }

    proptest::proptest! {
        /// Whatever the network sends (garbage, cut JSON, broken SSE), capture records what
        /// it can and never panics; what it records is JSON within the bound.
        #[test]
        fn any_bytes_are_captured_without_a_panic_and_within_the_bound(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            json_like in "(data: )?\\{\"choices\":\\[\\{\"index\":[0-9],\"(delta|message)\":\\{\"content\":\"[a-z \\\\u00e9]{0,40}\"(,\"tool_calls\":\\[\\{\"index\":[0-9]{1,4},\"function\":\\{\"arguments\":\"[{}a-z:]{0,10}\"\\}\\}\\])?\\}\\}\\]\\}\n\n",
            max in 64usize..2048,
        ) {
            for input in [&bytes[..], json_like.as_bytes()] {
                for out in [
                    output_from_json(input, &[], max),
                    output_from_sse(input, &[], max),
                    request_content(input, &[], max).input,
                ]
                .into_iter()
                .flatten()
                {
                    proptest::prop_assert!(out.len() <= max, "{} > {max}", out.len());
                }
            }
        }
    }

    #[test]
    fn capture_modes_read_as_the_instrumentations_spell_them() {
        for (text, mode) in [
            ("NO_CONTENT", ContentCapture::NoContent),
            ("", ContentCapture::NoContent),
            ("span_only", ContentCapture::SpanOnly),
            ("EVENT_ONLY", ContentCapture::EventOnly),
            (" SPAN_AND_EVENT ", ContentCapture::SpanAndEvent),
            ("true", ContentCapture::SpanAndEvent),
            ("false", ContentCapture::NoContent),
        ] {
            assert_eq!(ContentCapture::parse(text).unwrap(), mode, "{text}");
        }
        let err = ContentCapture::parse("yes please").unwrap_err().to_string();
        assert!(
            err.contains(CAPTURE_CONTENT_ENV) && err.contains("SPAN_ONLY"),
            "{err}"
        );
    }
}
