//! The response-body observer. It wraps the body the user reads, passes every frame through
//! unchanged, and feeds the bytes to a parser as they pass: the JSON field picker for JSON
//! answers, the SSE reader for streams. When the body ends, fails or is dropped, it hands
//! what it saw (a [`ResponseOutcome`]) to the callback it was given, once. It records
//! nothing itself.
//!
//! Success bodies are never copied. Non-2xx bodies, which are small, are read ahead up to the
//! error-body limit so that the outcome has the error even when the user never reads the
//! body; the user still receives the same bytes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::outcome::{BodyEnd, ResponseOutcome, StreamSummary};
use crate::parse::json::JsonPicker;
use crate::parse::sse::StreamObserver;
use crate::request::RequestFacts;

/// Longest error message recorded (the whole body is under the error-body limit).
const MAX_ERROR_MESSAGE: usize = 1024;

// The state lives in one boxed `CallState` per call, so the larger variant costs nothing extra.
#[allow(clippy::large_enum_variant)]
enum Parser {
    Json(JsonPicker),
    Sse(StreamObserver),
}

/// The state of one response while its body passes; consumed when the body ends, when it
/// hands the outcome to `on_end`.
struct Observer<F> {
    request: Arc<RequestFacts>,
    status: u16,
    /// When the request was sent (for the time to the first chunk).
    started: Instant,
    parser: Parser,
    /// The first bytes of a non-2xx body, up to the limit.
    capture: Option<Vec<u8>>,
    capture_limit: usize,
    /// With content capture on, the first bytes of a 2xx body, up to its limit.
    kept: Option<(Vec<u8>, usize)>,
    body_bytes: u64,
    first_chunk: Option<Duration>,
    on_end: F,
}

impl<F: FnOnce(ResponseOutcome)> Observer<F> {
    fn new(
        response: &reqwest::Response,
        request: Arc<RequestFacts>,
        started: Instant,
        limits: Limits,
        on_end: F,
    ) -> Self {
        let status = response.status().as_u16();
        let success = (200..300).contains(&status);
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
        Observer {
            request,
            status,
            started,
            parser: if streamed {
                Parser::Sse(StreamObserver::new())
            } else {
                Parser::Json(JsonPicker::new())
            },
            capture: (!success).then(Vec::new),
            capture_limit: limits.error_body,
            kept: limits
                .content
                .filter(|_| success)
                .map(|limit| (Vec::new(), limit)),
            body_bytes: 0,
            first_chunk: None,
            on_end,
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
        if let Some((kept, limit)) = &mut self.kept {
            let room = limit.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..room.min(data.len())]);
        }
    }

    fn capture_full(&self) -> bool {
        self.capture
            .as_ref()
            .is_none_or(|c| c.len() >= self.capture_limit)
    }

    fn finish(self, end: BodyEnd) {
        let ended = self.started.elapsed();
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
        let error_body = self
            .capture
            .map(|c| crate::content::kept_text(&c, self.body_bytes, &self.request.secrets));
        let error_message = facts.error.message.as_deref().map(|m| {
            crate::redact::redact(
                crate::text::truncate_utf8(m, MAX_ERROR_MESSAGE),
                &self.request.secrets,
            )
            .into_owned()
        });
        // Every event is a chunk, `[DONE]` too: the time from the first chunk to the end of
        // the stream spans (chunks − 1) gaps.
        let time_per_output_chunk = match (stream, self.first_chunk) {
            (Some(s), Some(first)) if end == BodyEnd::Complete => {
                let chunks = s.events + u64::from(s.done);
                let gaps = u32::try_from(chunks.saturating_sub(1)).unwrap_or(u32::MAX);
                (gaps > 0).then(|| ended.saturating_sub(first) / gaps)
            }
            _ => None,
        };
        let outcome = ResponseOutcome {
            status: self.status,
            streamed: stream.is_some(),
            facts,
            json,
            stream,
            body_bytes: self.body_bytes,
            time_to_first_chunk: stream.and(self.first_chunk),
            time_per_output_chunk,
            kept_body: self.kept.map(|(kept, _)| kept),
            error_body,
            error_message,
            end,
        };
        (self.on_end)(outcome);
    }
}

/// How much of a body the observer keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Of a non-2xx body (read ahead).
    pub(crate) error_body: usize,
    /// Of a 2xx body, with content capture on (kept as it passes, never read ahead).
    pub(crate) content: Option<usize>,
}

/// Wraps `response`'s body in the observer; `on_end` gets the outcome when the body ends,
/// fails or is dropped. For a non-2xx answer the body is first read ahead up to
/// `limits.error_body` (the outcome is then usually handed over right here).
pub(crate) async fn observe<F>(
    response: reqwest::Response,
    request: Arc<RequestFacts>,
    started: Instant,
    limits: Limits,
    on_end: F,
) -> reqwest::Response
where
    F: FnOnce(ResponseOutcome) + Send + Sync + 'static,
{
    let mut call = Observer::new(&response, request, started, limits, on_end);
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
struct ObservedBody<F: FnOnce(ResponseOutcome)> {
    prefix: Option<Bytes>,
    inner: Option<reqwest::Body>,
    pending_error: Option<reqwest::Error>,
    call: Option<Box<Observer<F>>>,
}

impl<F: FnOnce(ResponseOutcome)> ObservedBody<F> {
    fn finish(&mut self, end: BodyEnd) {
        if let Some(call) = self.call.take() {
            call.finish(end);
        }
    }
}

impl<F: FnOnce(ResponseOutcome)> HttpBody for ObservedBody<F> {
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

impl<F: FnOnce(ResponseOutcome)> Drop for ObservedBody<F> {
    fn drop(&mut self) {
        let end = if self.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        self.finish(end);
    }
}
