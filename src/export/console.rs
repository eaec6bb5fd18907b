//! A span exporter that prints one readable block per span to stdout.

use std::io::Write;

use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::rfc3339::rfc3339_utc;

/// Prints each finished span as a header line (name, status, duration, ids, and the parent's
/// id when it has one) followed by its attributes and events, one per line. For reading, not
/// parsing.
#[derive(Debug, Default)]
pub struct ConsoleExporter;

impl ConsoleExporter {
    /// The text printed for one span.
    pub fn render(span: &SpanData) -> String {
        let duration = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        let status = match &span.status {
            Status::Unset => "unset".to_owned(),
            Status::Ok => "ok".to_owned(),
            Status::Error { description } if description.is_empty() => "error".to_owned(),
            Status::Error { description } => format!("error: {description}"),
        };
        let mut out = format!(
            "span {:?} [{}] at {} for {:.1} ms trace={} span={}",
            span.name,
            status,
            rfc3339_utc(span.start_time),
            duration.as_secs_f64() * 1e3,
            span.span_context.trace_id(),
            span.span_context.span_id(),
        );
        if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
            out.push_str(&format!(" parent={}", span.parent_span_id));
        }
        out.push('\n');
        for kv in &span.attributes {
            out.push_str(&format!("    {} = {}\n", kv.key, kv.value));
        }
        for event in span.events.iter() {
            let attrs: Vec<String> = event
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            out.push_str(&format!("    event {} {}\n", event.name, attrs.join(" ")));
        }
        out
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut stdout = std::io::stdout().lock();
        for span in &batch {
            // A closed stdout must not fail the program being observed.
            let _ = stdout.write_all(Self::render(span).as_bytes());
        }
        Ok(())
    }
}
