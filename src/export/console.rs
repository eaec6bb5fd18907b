//! A span exporter that prints one readable block per span to stdout.

use std::io::Write;

use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

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

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T17:01:40.123Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_millis(1_445_412_475_123);
/// assert_eq!(llm_gateway_otel::export::rfc3339_utc(t), "2015-10-21T07:27:55.123Z");
/// ```
pub fn rfc3339_utc(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}
