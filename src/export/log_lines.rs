//! A log exporter that prints each gateway call's log line on stdout, readable or as JSON.

use std::io::Write;

use opentelemetry::logs::AnyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord};
use serde_json::{Map, Value};

use crate::names::{CALL_LOG_MESSAGE, GEN_AI_CONTENT_EVENT};
use crate::rfc3339::rfc3339_utc;

/// The fields of the troubleshooting page's log entry, always present in a JSON line (`null`
/// when unknown), in this order; the others follow when they are set.
const PAGE_FIELDS: [&str; 6] = [
    "timestamp",
    "region",
    "model",
    "status_code",
    "request_id",
    "error",
];

/// Written after the page's fields in every JSON line: the line's level.
const LEVEL: &str = "level";

/// Prints log records on stdout, one line each: [`readable`](Self::readable) (time, level,
/// message, `key=value` fields, a value with spaces quoted) or [`json`](Self::json) (the
/// gateway calls' lines only, as one JSON object each, for shops that collect only stdout:
/// the page's six fields always, `null` when unknown, then `level`, then ours when set; and
/// the captured-content events, when content capture is on, as `{"event": …, …}`).
#[derive(Debug, Clone, Copy)]
pub struct CallLineExporter {
    json: bool,
}

impl CallLineExporter {
    /// `2026-11-30T03:27:00.734Z WARN llm gateway call region=us model=… status_code=429 …`
    pub fn readable() -> CallLineExporter {
        CallLineExporter { json: false }
    }

    /// `{"timestamp":"…","region":"us","model":"…","status_code":429,"request_id":null,"error":"429: …",…}`
    pub fn json() -> CallLineExporter {
        CallLineExporter { json: true }
    }

    /// The line printed for `record`, if any.
    pub fn render(&self, record: &SdkLogRecord) -> Option<String> {
        let message = record.body().map(text).unwrap_or_default();
        if self.json {
            match message.as_str() {
                CALL_LOG_MESSAGE => Some(json_line(record)),
                GEN_AI_CONTENT_EVENT => Some(content_line(record)),
                _ => None,
            }
        } else {
            Some(readable_line(record, &message))
        }
    }
}

impl LogExporter for CallLineExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let mut out = String::new();
        for (record, _) in batch.iter() {
            if let Some(line) = self.render(record) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        // A closed stdout must not fail the program being observed.
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
        Ok(())
    }
}

fn readable_line(record: &SdkLogRecord, message: &str) -> String {
    let time = record
        .timestamp()
        .or(record.observed_timestamp())
        .map(rfc3339_utc)
        .unwrap_or_default();
    let level = record.severity_text().unwrap_or("INFO");
    let mut line = format!("{time} {level} {message}");
    for (key, value) in record.attributes_iter() {
        line.push(' ');
        line.push_str(key.as_str());
        line.push('=');
        let value = text(value);
        // key=value stays parseable: a value with a space or a quote is quoted.
        if value.contains([' ', '"', '=']) {
            line.push_str(&Value::String(value).to_string());
        } else {
            line.push_str(&value);
        }
    }
    line
}

fn json_line(record: &SdkLogRecord) -> String {
    let mut fields: Map<String, Value> = PAGE_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    for (key, value) in record.attributes_iter() {
        fields.insert(key.as_str().to_owned(), json(value));
    }
    // serde_json's map keeps insertion order only with its preserve_order feature; the page's
    // fields are put first by hand.
    let mut out = String::from("{");
    let mut first = true;
    let mut put = |key: &str, value: &Value| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&Value::String(key.to_owned()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    };
    for key in PAGE_FIELDS {
        put(key, &fields[key]);
    }
    let level = record.severity_text().unwrap_or("INFO");
    put(LEVEL, &Value::String(level.to_owned()));
    for (key, value) in &fields {
        if !PAGE_FIELDS.contains(&key.as_str()) {
            put(key, value);
        }
    }
    out.push('}');
    out
}

/// A captured-content event as one JSON object: `event`, then its fields, the messages as
/// JSON (not as strings holding JSON).
fn content_line(record: &SdkLogRecord) -> String {
    let mut fields = Map::new();
    fields.insert("event".to_owned(), Value::from(GEN_AI_CONTENT_EVENT));
    for (key, value) in record.attributes_iter() {
        let value = match json(value) {
            Value::String(s) if key.as_str().starts_with("gen_ai.") => {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            }
            other => other,
        };
        fields.insert(key.as_str().to_owned(), value);
    }
    Value::Object(fields).to_string()
}

fn text(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => s.as_str().to_owned(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) => d.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn json(value: &AnyValue) -> Value {
    match value {
        AnyValue::String(s) => Value::String(s.as_str().to_owned()),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => Value::from(*d),
        AnyValue::Boolean(b) => Value::Bool(*b),
        other => Value::String(format!("{other:?}")),
    }
}
