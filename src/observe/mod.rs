//! The response-body observer. It wraps the body the user reads, passes every frame through
//! unchanged, and feeds the bytes to a parser as they pass: the JSON field picker for JSON
//! answers, the SSE reader for streams. When the body ends (or is dropped) it hands what it
//! saw to `classify` and `telemetry`, and the call's span ends.
//!
//! Success bodies are never copied. Non-2xx bodies, which are small, are read ahead up to the
//! error-body limit so that the span has the error even when the user never reads the body;
//! the user still receives the same bytes.




use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::telemetry::SpanHandle;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::classify::{classify_response, ResponseVerdictInput};
pub use crate::outcome::{BodyEnd, ResponseOutcome, StreamSummary};
use crate::config::Config;
use crate::ratelimit::RateLimit;
use crate::report::ReportHandle;
use crate::request::RequestFacts;
use crate::telemetry::metrics::CallSummary;
use crate::parse::json::JsonPicker;
use crate::parse::sse::StreamObserver;

/// Longest error message recorded (the whole body is under the error-body limit).
const MAX_ERROR_MESSAGE: usize = 1024;

// The state lives in one boxed `CallState` per call, so the larger variant costs nothing extra.
#[allow(clippy::large_enum_variant)]
enum Parser {
    Json(JsonPicker),
    Sse(StreamObserver),
}

/// The state of one call while its body passes; consumed when the body ends.
pub(crate) struct CallState {
    span: SpanHandle,
    request: Arc<RequestFacts>,
    config: Arc<Config>,
    status: u16,
    started: Instant,
    parser: Parser,
    /// The first bytes of a non-2xx body, up to the limit.
    capture: Option<Vec<u8>>,
    capture_limit: usize,
    body_bytes: u64,
    first_chunk: Option<Duration>,
    /// For diagnosis: the rate-limit headers, the region's model list (404s, when allowed),
    /// and the report the outcome goes to.
    rate: RateLimit,
    region_models: Option<Arc<[String]>>,
    report: ReportHandle,
}

impl CallState {
    pub(crate) fn new(
        span: SpanHandle,
        request: Arc<RequestFacts>,
        started: Instant,
        response: &reqwest::Response,
        config: &Arc<Config>,
        report: ReportHandle,
    ) -> CallState {
        let status = response.status().as_u16();
        report.set_status(status);
        let rate = RateLimit::from_headers(response.headers(), std::time::SystemTime::now());
        crate::telemetry::record_response_head(&span, status, &rate);
        if !rate.is_empty() {
            config.metrics.record_rate_limit(&request, &rate);
        }
        let streamed = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                const SSE: &[u8] = b"text/event-stream";
                ct.trim_start()
                    .as_bytes()
                    .get(..SSE.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(SSE))
            });
        CallState {
            span,
            request,
            config: Arc::clone(config),
            status,
            started,
            parser: if streamed {
                Parser::Sse(StreamObserver::new())
            } else {
                Parser::Json(JsonPicker::new())
            },
            capture: (!(200..300).contains(&status)).then(Vec::new),
            capture_limit: config.error_body_limit,
            body_bytes: 0,
            first_chunk: None,
            rate,
            region_models: None,
            report,
        }
    }

    fn observe(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.first_chunk.is_none() {
            self.first_chunk = Some(self.started.elapsed());
        }
        self.body_bytes += data.len() as u64;
        match &mut self.parser {
            Parser::Json(p) => p.feed(data),
            Parser::Sse(p) => p.feed(data),
        }
        if let Some(capture) = &mut self.capture {
            let room = self.capture_limit.saturating_sub(capture.len());
            capture.extend_from_slice(&data[..room.min(data.len())]);
        }
    }

    fn capture_full(&self) -> bool {
        self.capture
            .as_ref()
            .is_none_or(|c| c.len() >= self.capture_limit)
    }

    fn finish(self, end: BodyEnd) {
        let (facts, json, stream) = match self.parser {
            Parser::Json(p) => {
                let (facts, status) = p.finish();
                (facts, Some(status), None)
            }
            Parser::Sse(p) => {
                let s = p.finish();
                let summary = StreamSummary {
                    events: s.events,
                    done: s.done,
                };
                (s.facts, None, Some(summary))
            }
        };
        let error_body = self.capture.map(|c| {
            let text = String::from_utf8_lossy(&c);
            let mut body = crate::redact::redact(&text, &self.request.secrets).into_owned();
            if self.body_bytes > c.len() as u64 {
                body.push_str(&format!("…[truncated: {} bytes in all]", self.body_bytes));
            }
            body
        });
        let error_message = facts.error.message.as_deref().map(|m| {
            crate::redact::redact(crate::text::truncate_utf8(m, MAX_ERROR_MESSAGE), &self.request.secrets)
                .into_owned()
        });
        let outcome = ResponseOutcome {
            status: self.status,
            streamed: stream.is_some(),
            facts,
            json,
            stream,
            body_bytes: self.body_bytes,
            time_to_first_chunk: stream.and(self.first_chunk),
            error_body,
            error_message,
            end,
        };
        let error_type = classify_response(&ResponseVerdictInput {
            status: outcome.status,
            streamed: outcome.streamed,
            stream_done: stream.is_some_and(|s| s.done),
            json: outcome.json,
            end,
        });
        crate::telemetry::record_outcome(
            &self.span,
            &outcome,
            self.request.stream,
            error_type.as_ref(),
        );
        let diagnosis = crate::diagnose::diagnose(&crate::diagnose::DiagnosisInput::of_outcome(
            &self.request,
            &outcome,
            &self.rate,
            self.region_models.as_deref(),
        ));
        crate::telemetry::record_diagnosis(&self.span, diagnosis.as_ref());
        self.report
            .finish_response(&outcome, error_type.as_deref(), diagnosis);
        self.config.metrics.record_call(&CallSummary {
            request: &self.request,
            outcome: Some(&outcome),
            status: Some(outcome.status),
            error_type: error_type.as_deref(),
            duration: self.started.elapsed(),
        });
        // The call's span ends with its body.
        self.span.end();
    }
}

/// Wraps `response`'s body in the observer. For a non-2xx answer the body is first read
/// ahead up to the error-body limit (the span then usually ends right here).
pub(crate) async fn observe(response: reqwest::Response, mut call: CallState) -> reqwest::Response {
    call.region_models =
        crate::diagnose::catalog::for_not_found(&call.config, &call.request, call.status).await;
    let url = response.url().clone();
    let (mut parts, mut body) = http::Response::<reqwest::Body>::from(response).into_parts();
    restore_url(&mut parts, url);

    let mut observed = ObservedBody {
        prefix: None,
        inner: None,
        pending_error: None,
        call: None,
    };
    if call.capture.is_some() {
        let mut ahead = Vec::new();
        let mut end = None;
        while !call.capture_full() {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        call.observe(data);
                        ahead.extend_from_slice(data);
                    }
                }
                Some(Err(e)) => {
                    end = Some(BodyEnd::Failed {
                        timeout: e.is_timeout(),
                    });
                    observed.pending_error = Some(e);
                    break;
                }
                None => {
                    end = Some(BodyEnd::Complete);
                    break;
                }
            }
        }
        if end.is_none() && body.is_end_stream() {
            end = Some(BodyEnd::Complete);
        }
        observed.prefix = (!ahead.is_empty()).then(|| Bytes::from(ahead));
        match end {
            Some(end) => call.finish(end),
            None => {
                observed.inner = Some(body);
                observed.call = Some(Box::new(call));
            }
        }
    } else {
        observed.inner = Some(body);
        observed.call = Some(Box::new(call));
    }
    reqwest::Response::from(http::Response::from_parts(
        parts,
        reqwest::Body::wrap(observed),
    ))
}

/// `reqwest::Response::from(http::Response)` forgets the URL unless it is carried in the
/// extensions, which only `reqwest::ResponseBuilderExt` can put there.
fn restore_url(parts: &mut http::response::Parts, url: reqwest::Url) {
    use reqwest::ResponseBuilderExt;
    if let Ok(carrier) = http::Response::builder().url(url).body(()) {
        let carried = carrier.into_parts().0.extensions;
        if parts.extensions.is_empty() {
            parts.extensions = carried;
        } else {
            parts.extensions.extend(carried);
        }
    }
}

/// The body the user reads: read-ahead bytes first, then the rest of the network body,
/// every frame passed through unchanged.
struct ObservedBody {
    prefix: Option<Bytes>,
    inner: Option<reqwest::Body>,
    pending_error: Option<reqwest::Error>,
    call: Option<Box<CallState>>,
}

impl ObservedBody {
    fn finish(&mut self, end: BodyEnd) {
        if let Some(call) = self.call.take() {
            call.finish(end);
        }
    }
}

impl HttpBody for ObservedBody {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, reqwest::Error>>> {
        let this = &mut *self;
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(e) = this.pending_error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(call)) = (frame.data_ref(), this.call.as_mut()) {
                    call.observe(data);
                }
                if inner.is_end_stream() {
                    this.finish(BodyEnd::Complete);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(BodyEnd::Failed {
                    timeout: e.is_timeout(),
                });
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.finish(BodyEnd::Complete);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none()
            && self.pending_error.is_none()
            && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let ahead = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
        let lower = hint.lower().saturating_add(ahead);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(ahead));
        }
        hint.set_lower(lower);
        hint
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        let end = if self.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        self.finish(end);
    }
}
