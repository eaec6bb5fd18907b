//! What one response turned out to be: the fields its body showed (a JSON document, or merged
//! over a stream's events), how the body parsed and ended. Filled by the body observer, read by
//! classification, diagnosis, recording and the report. A leaf: it imports nothing from the
//! crate.

use std::time::Duration;

/// Most `finish_reasons` kept.
pub const MAX_FINISH_REASONS: usize = 16;

/// Token counts from a top-level `usage` object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Usage {
    /// `input_tokens`, else `prompt_tokens`.
    pub input_tokens: Option<u64>,
    /// `output_tokens`, else `completion_tokens`.
    pub output_tokens: Option<u64>,
    /// `total_tokens`.
    pub total_tokens: Option<u64>,
    /// `prompt_tokens_details.cached_tokens`, else `cache_read_input_tokens`.
    pub cache_read_input_tokens: Option<u64>,
    /// `cache_creation_input_tokens`, else the sum of `cache_creation.ephemeral_5m_input_tokens`
    /// and `cache_creation.ephemeral_1h_input_tokens` (whichever are present).
    pub cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    /// True when no count was found.
    pub fn is_empty(&self) -> bool {
        self.input_tokens.is_none()
            && self.output_tokens.is_none()
            && self.total_tokens.is_none()
            && self.cache_read_input_tokens.is_none()
            && self.cache_creation_input_tokens.is_none()
    }
}

/// What an error body says, whichever of the three known shapes it has.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorFacts {
    /// `error.code` (number or string, as text), else a flat top-level `code`.
    pub code: Option<String>,
    /// `error.message`, else `error` when it is a string, else a flat top-level `message`.
    pub message: Option<String>,
    /// Top-level `status` (`"error"` in the auth-error shape).
    pub status: Option<String>,
}

/// The fields picked from one JSON document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BodyFacts {
    /// Top-level `request_id`.
    pub request_id: Option<String>,
    /// Top-level `id` (OpenAI chunk/completion id).
    pub id: Option<String>,
    /// Top-level `model` (the model that served the call).
    pub model: Option<String>,
    /// `request.model` (echo of the request).
    pub request_model: Option<String>,
    /// Top-level `usage` object.
    pub usage: Usage,
    /// Each `choices[i].finish_reason` that is a string, at most [`MAX_FINISH_REASONS`].
    pub finish_reasons: Vec<String>,
    /// Error facts.
    pub error: ErrorFacts,
    /// Top-level `llm_status_code` (the upstream provider's status).
    pub llm_status_code: Option<i64>,
    /// Top-level `response_time` (nanoseconds).
    pub response_time_ns: Option<u64>,
}

impl BodyFacts {
    /// The model that served the call: the top-level `model`, else the `request.model` echo
    /// (error bodies carry only the echo). What the span, the metrics and the report record.
    ///
    pub fn served_model(&self) -> Option<&str> {
        self.model.as_deref().or(self.request_model.as_deref())
    }

    /// Merge facts from a later document (used for SSE: one document per event):
    /// first non-None wins for request_id/id/model/request_model; usage fields from `later`
    /// overwrite when Some; finish_reasons appended (cap 16); error fields first non-None;
    /// llm_status_code/response_time later Some overwrites.
    pub fn merge(&mut self, later: BodyFacts) {
        let BodyFacts {
            request_id,
            id,
            model,
            request_model,
            usage,
            finish_reasons,
            error,
            llm_status_code,
            response_time_ns,
        } = later;
        keep_first(&mut self.request_id, request_id);
        keep_first(&mut self.id, id);
        keep_first(&mut self.model, model);
        keep_first(&mut self.request_model, request_model);
        take_later(&mut self.usage.input_tokens, usage.input_tokens);
        take_later(&mut self.usage.output_tokens, usage.output_tokens);
        take_later(&mut self.usage.total_tokens, usage.total_tokens);
        take_later(
            &mut self.usage.cache_read_input_tokens,
            usage.cache_read_input_tokens,
        );
        take_later(
            &mut self.usage.cache_creation_input_tokens,
            usage.cache_creation_input_tokens,
        );
        let room = MAX_FINISH_REASONS.saturating_sub(self.finish_reasons.len());
        self.finish_reasons
            .extend(finish_reasons.into_iter().take(room));
        keep_first(&mut self.error.code, error.code);
        keep_first(&mut self.error.message, error.message);
        keep_first(&mut self.error.status, error.status);
        take_later(&mut self.llm_status_code, llm_status_code);
        take_later(&mut self.response_time_ns, response_time_ns);
    }
}

fn keep_first<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn take_later<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// How much of a JSON document the bytes fed so far make up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStatus {
    /// Exactly one JSON value, closed, only whitespace after it.
    Complete,
    /// Input ended inside the value (or empty / whitespace-only input).
    Truncated,
    /// A byte that cannot be JSON at that point (HTML, garbage, trailing junk); picking stops
    /// there, facts found before are kept.
    Malformed,
}

/// How the response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Read to its end.
    Complete,
    /// The user dropped the body before its end (not a failure of the call).
    Dropped,
    /// Reading it failed (connection reset, timeout).
    Failed {
        /// Whether the failure was a timeout.
        timeout: bool,
    },
}

/// Everything the observer saw of one response, handed to classification and recording.
#[derive(Debug, Clone)]
pub struct ResponseOutcome {
    /// Final HTTP status code.
    pub status: u16,
    /// Whether the answer was a server-sent-events stream.
    pub streamed: bool,
    /// Fields picked from the JSON body, or merged over the stream's events.
    pub facts: BodyFacts,
    /// How the JSON body parsed (`None` for streams).
    pub json: Option<JsonStatus>,
    /// For a stream: events seen and whether `[DONE]` arrived.
    pub stream: Option<StreamSummary>,
    /// Body bytes that passed.
    pub body_bytes: u64,
    /// For a stream: time from sending the request to its first body bytes.
    pub time_to_first_chunk: Option<Duration>,
    /// For a stream of two events or more (`[DONE]` counted) read to its end:
    /// (end − first chunk) ÷ (events − 1).
    pub time_per_output_chunk: Option<Duration>,
    /// With content capture on, the first bytes of a 2xx body (up to the capture bound), for
    /// the answer's messages and the support report.
    pub kept_body: Option<Vec<u8>>,
    /// For a non-2xx: the body, bounded and redacted.
    pub error_body: Option<String>,
    /// The error message from the body (any of the gateway's shapes), redacted.
    pub error_message: Option<String>,
    /// How the body ended.
    pub end: BodyEnd,
}

impl ResponseOutcome {
    /// Whether the body was read to its end (it may still have failed there).
    pub fn read_to_end(&self) -> bool {
        self.end != BodyEnd::Dropped
    }
}

/// What a stream showed beyond the merged facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSummary {
    /// SSE data events, not counting `[DONE]`.
    pub events: u64,
    /// Whether `data: [DONE]` arrived.
    pub done: bool,
}
