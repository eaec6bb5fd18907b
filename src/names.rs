//! Every span, attribute and event name this crate emits, defined once.
//!
//! The names follow the OpenTelemetry semantic conventions for GenAI client spans and HTTP
//! client spans (taken from the specification, since the Rust
//! `opentelemetry-semantic-conventions` crate has deprecated its `gen_ai` constants), plus a
//! few `llm_gateway.*` names of our own for facts the conventions have no name for. Code,
//! tests and (later) dashboards use these constants and nothing else.

// ---- GenAI semantic conventions -------------------------------------------------------
/// `chat` for the chat-completions endpoint.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// Always [`PROVIDER_NAME`].
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The `model` of the request body.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// The model that served the call (the body's top-level `model`; differs after a fallback).
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The body's `request_id` (the gateway's id for the call).
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// `max_tokens` of the request body.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// `temperature` of the request body.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// `stream` of the request body.
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
/// Input (prompt) tokens, from `usage.input_tokens` or `usage.prompt_tokens`.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Output tokens, from `usage.output_tokens` or `usage.completion_tokens`.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Input tokens read from the provider's prompt cache.
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Input tokens written to the provider's prompt cache.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
/// Every `choices[].finish_reason`, as a string array.
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Captured content (opt-in): the request's messages, as GenAI semconv JSON
/// (`[{"role":"user","parts":[{"type":"text","content":"..."}]}]`).
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// Captured content (opt-in): the answer's messages, one per choice, with `finish_reason`; a
/// stream's answer is assembled from its deltas.
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// Captured content (opt-in): the text of the request's system messages, as JSON parts
/// (`[{"type":"text","content":"..."}]`).
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// The event (a `tracing` event, a log record through a logs bridge) that carries captured
/// content with `EVENT_ONLY` / `SPAN_AND_EVENT`.
pub const GEN_AI_CONTENT_EVENT: &str = "gen_ai.client.inference.operation.details";

// ---- HTTP / general semantic conventions ----------------------------------------------
/// Host of the gateway.
pub const SERVER_ADDRESS: &str = "server.address";
/// Port of the gateway.
pub const SERVER_PORT: &str = "server.port";
/// Final HTTP status code (int).
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// How many times the request was re-sent (0 for the first attempt).
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
/// HTTP method of an attempt.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// URL of an attempt, with credentials and secret-looking query values redacted.
pub const URL_FULL: &str = "url.full";
/// Low-cardinality failure class: a status code (`"429"`) or one of the `ERROR_TYPE_*` values.
pub const ERROR_TYPE: &str = "error.type";

// ---- Ours ----------------------------------------------------------------------------
/// `us`, `eu`, `unknown`, or a region the user configured for a host.
pub const LLM_GATEWAY_REGION: &str = "llm_gateway.region";
/// The body's `request_id` (same value as `gen_ai.response.id`, under the name support asks for).
pub const LLM_GATEWAY_REQUEST_ID: &str = "llm_gateway.request_id";
/// Non-2xx response body: truncated to the configured cap, secrets redacted.
pub const LLM_GATEWAY_ERROR_BODY: &str = "llm_gateway.error.body";
/// The error message picked from any of the gateway's error body shapes (redacted).
pub const LLM_GATEWAY_ERROR_MESSAGE: &str = "llm_gateway.error.message";
/// The error code picked from the error body (`error.code` or flat `code`).
pub const LLM_GATEWAY_ERROR_CODE: &str = "llm_gateway.error.code";
/// `X-RateLimit-Limit`.
pub const LLM_GATEWAY_RATE_LIMIT_LIMIT: &str = "llm_gateway.rate_limit.limit";
/// `X-RateLimit-Remaining` (may be negative).
pub const LLM_GATEWAY_RATE_LIMIT_REMAINING: &str = "llm_gateway.rate_limit.remaining";
/// `X-RateLimit-Reset`: seconds until the model's window resets.
pub const LLM_GATEWAY_RATE_LIMIT_RESET_S: &str = "llm_gateway.rate_limit.reset_s";
/// `Retry-After`, in seconds (an HTTP date is turned into seconds from now).
pub const LLM_GATEWAY_RETRY_AFTER_S: &str = "llm_gateway.retry_after_s";
/// Whether the answer was a server-sent-events stream (`false` with `gen_ai.request.stream`
/// true means the model ignored the stream flag).
pub const LLM_GATEWAY_RESPONSE_STREAMED: &str = "llm_gateway.response.streamed";
/// Seconds from sending the request to the first body bytes of a streamed answer.
pub const LLM_GATEWAY_TIME_TO_FIRST_CHUNK: &str = "llm_gateway.response.time_to_first_chunk";
/// Number of SSE data events in a streamed answer (without `[DONE]`).
pub const LLM_GATEWAY_STREAM_EVENTS: &str = "llm_gateway.response.stream_events";
/// Whether a streamed answer ended with `data: [DONE]`.
pub const LLM_GATEWAY_STREAM_DONE: &str = "llm_gateway.response.stream_done";
/// Response body bytes that passed through the middleware.
pub const LLM_GATEWAY_RESPONSE_BODY_SIZE: &str = "llm_gateway.response.body_size";
/// `false` when the user dropped the body before its end.
pub const LLM_GATEWAY_RESPONSE_READ_TO_END: &str = "llm_gateway.response.read_to_end";
/// `true` when the user gave up on the call: its future was dropped before the response, or
/// its body was dropped before the end. Not an error of the call.
pub const LLM_GATEWAY_CANCELLED: &str = "llm_gateway.cancelled";
/// How the JSON body parsed: `complete`, `truncated` or `malformed`.
pub const LLM_GATEWAY_RESPONSE_JSON: &str = "llm_gateway.response.json";
/// The upstream provider's status code (the body's `llm_status_code`).
pub const LLM_GATEWAY_LLM_STATUS_CODE: &str = "llm_gateway.llm_status_code";
/// What the call cost in USD (double), priced at the model that served it from the rate
/// table; absent when that model has no price or the usage is unknown, never 0 for "unknown".
pub const LLM_GATEWAY_USAGE_COST_USD: &str = "llm_gateway.usage.cost_usd";
/// Where the token counts come from: [`USAGE_SOURCE_REPORTED`] (the body's `usage`) or
/// [`USAGE_SOURCE_MISSING`] (a 2xx answer, streamed or not, that ended without usage: tokens
/// and cost are unknown).
pub const LLM_GATEWAY_USAGE_SOURCE: &str = "llm_gateway.usage.source";
/// `llm_gateway.usage.source` when the body reported usage.
pub const USAGE_SOURCE_REPORTED: &str = "reported";
/// `llm_gateway.usage.source` when a 2xx answer ended without usage.
pub const USAGE_SOURCE_MISSING: &str = "missing";

// ---- Ours: diagnosis (see `crate::diagnose`) ------------------------------------------
/// On a failed call: the diagnosed cause, a low-cardinality label such as `auth_missing_key`,
/// `bad_request_messages_not_array`, `model_not_in_region`, `rate_limited` (see
/// `diagnose::Cause::as_str`). Finer than `error.type`, which stays the status code.
pub const LLM_GATEWAY_ERROR_CAUSE: &str = "llm_gateway.error.cause";
/// On a failed call: the one-line fix for the cause, in the troubleshooting page's words.
pub const LLM_GATEWAY_ERROR_FIX: &str = "llm_gateway.error.fix";
/// On a failed call: the specifics (the gateway's message echoed, rate-limit numbers, a likely
/// model name), redacted.
pub const LLM_GATEWAY_ERROR_DETAIL: &str = "llm_gateway.error.detail";
/// Span event, one per pre-flight finding (before the request is sent), with the
/// `llm_gateway.preflight.*` attributes below.
pub const LLM_GATEWAY_PREFLIGHT_EVENT: &str = "llm_gateway.preflight";
/// Pre-flight event: the cause the gateway would answer with (a `llm_gateway.error.cause` value).
pub const LLM_GATEWAY_PREFLIGHT_CAUSE: &str = "llm_gateway.preflight.cause";
/// Pre-flight event: the field, header or URL part at fault (`model`, `messages`, `Authorization`, `url`).
pub const LLM_GATEWAY_PREFLIGHT_FIELD: &str = "llm_gateway.preflight.field";
/// Pre-flight event: `reject` (the gateway would refuse it) or `warning` (ignored or not the documented form).
pub const LLM_GATEWAY_PREFLIGHT_SEVERITY: &str = "llm_gateway.preflight.severity";
/// Pre-flight event: what was seen (names only, never a value).
pub const LLM_GATEWAY_PREFLIGHT_DETAIL: &str = "llm_gateway.preflight.detail";
/// Pre-flight event: the fix.
pub const LLM_GATEWAY_PREFLIGHT_FIX: &str = "llm_gateway.preflight.fix";
/// Span event on a call that worked but not as asked (`stream_ignored`), with the
/// `llm_gateway.notice.*` attributes below.
pub const LLM_GATEWAY_NOTICE_EVENT: &str = "llm_gateway.notice";
/// Notice event: the cause label.
pub const LLM_GATEWAY_NOTICE_CAUSE: &str = "llm_gateway.notice.cause";
/// Notice event: the fix.
pub const LLM_GATEWAY_NOTICE_FIX: &str = "llm_gateway.notice.fix";
/// Notice event: the specifics.
pub const LLM_GATEWAY_NOTICE_DETAIL: &str = "llm_gateway.notice.detail";

// ---- Values ---------------------------------------------------------------------------
/// `gen_ai.provider.name` of every span.
pub const PROVIDER_NAME: &str = "assemblyai.llm_gateway";
/// `gen_ai.operation.name` of the chat-completions endpoint.
pub const OPERATION_CHAT: &str = "chat";
/// `error.type` when the connection could not be made.
pub const ERROR_TYPE_CONNECT: &str = "connect";
/// `error.type` when a timeout fired (connect, read or the client's total timeout).
pub const ERROR_TYPE_TIMEOUT: &str = "timeout";
/// `error.type` when sending the request failed some other way.
pub const ERROR_TYPE_REQUEST: &str = "request";
/// `error.type` when a streamed (SSE) answer broke or ended without `[DONE]`.
pub const ERROR_TYPE_STREAM_INTERRUPTED: &str = "stream_interrupted";
/// `error.type` when a non-streamed body broke before its end.
pub const ERROR_TYPE_BODY_INTERRUPTED: &str = "body_interrupted";
/// `error.type` when a 2xx JSON answer was truncated or was not JSON.
pub const ERROR_TYPE_MALFORMED_RESPONSE: &str = "malformed_response";
/// `error.type` when another middleware failed.
pub const ERROR_TYPE_MIDDLEWARE: &str = "middleware";
/// `error.type` when a fail-fast pre-flight check stopped the request (nothing was sent).
pub const ERROR_TYPE_PREFLIGHT: &str = "preflight";

/// The instrumentation scope of every span and metric this crate records (the tracer's and
/// the meter's name), and the `tracing` target of its log events.
pub const TRACING_TARGET: &str = "llm_gateway_otel";

/// The `tracing` target of each call's log line (under [`TRACING_TARGET`], so a filter on
/// `llm_gateway_otel` covers it; `llm_gateway_otel::call=off` switches the lines off alone).
pub const CALL_LOG_TARGET: &str = "llm_gateway_otel::call";

/// The `tracing` target of the captured-content event ([`GEN_AI_CONTENT_EVENT`]).
pub const CONTENT_LOG_TARGET: &str = "llm_gateway_otel::content";

/// The event name of each call's log line (the OpenTelemetry log record's `EventName`).
pub const CALL_LOG_EVENT: &str = "llm_gateway.call";

/// The message of each call's log line.
pub const CALL_LOG_MESSAGE: &str = "llm gateway call";

// ---- Metrics (OTel instrument names; Prometheus names in the comments) -------------------
/// Histogram, s: one point per call, from sending to the end of the body
/// (Prometheus: `gen_ai_client_operation_duration_seconds`).
pub const METRIC_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// Histogram, `{token}`: input and output tokens per call, by `gen_ai.token.type`
/// (Prometheus: `gen_ai_client_token_usage`).
pub const METRIC_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// Histogram, s: time to the first chunk of a streamed answer
/// (Prometheus: `gen_ai_client_operation_time_to_first_chunk_seconds`).
pub const METRIC_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
/// Histogram, s: one point per HTTP attempt, from sending to the response head
/// (Prometheus: `http_client_request_duration_seconds`).
pub const METRIC_HTTP_CLIENT_DURATION: &str = "http.client.request.duration";
/// Counter: re-sends, by `llm_gateway.retry.reason` (Prometheus: `llm_gateway_client_retries_total`).
pub const METRIC_RETRIES: &str = "llm_gateway.client.retries";
/// Gauge: `X-RateLimit-Remaining` of the latest response per model and region
/// (Prometheus: `llm_gateway_rate_limit_remaining`).
pub const METRIC_RATE_LIMIT_REMAINING: &str = "llm_gateway.rate_limit.remaining";
/// Gauge: `X-RateLimit-Limit` (Prometheus: `llm_gateway_rate_limit_limit`).
pub const METRIC_RATE_LIMIT_LIMIT: &str = "llm_gateway.rate_limit.limit";
/// Gauge, s: `X-RateLimit-Reset`, time until the window resets (Prometheus: `llm_gateway_rate_limit_reset_seconds`).
pub const METRIC_RATE_LIMIT_RESET: &str = "llm_gateway.rate_limit.reset";
/// Histogram, s: a stream's time per output chunk, (end − first chunk) ÷ (chunks − 1), every
/// SSE event a chunk (`[DONE]` too), for streams of two chunks or more read to their end
/// (Prometheus:
/// `gen_ai_client_operation_time_per_output_chunk_seconds`).
pub const METRIC_TIME_PER_OUTPUT_CHUNK: &str = "gen_ai.client.operation.time_per_output_chunk";
/// Counter, `{USD}`: spend priced from the rate table, by requested and served model, region
/// and `gen_ai.token.type` (`input`, `cache_read`, `cache_write`, `output`)
/// (Prometheus: `llm_gateway_client_cost_usd_total`).
pub const METRIC_COST: &str = "llm_gateway.client.cost_usd";
/// Counter: 2xx answers that ended without usage (tokens and cost unknown), by model and
/// region (Prometheus: `llm_gateway_client_usage_missing_total`).
pub const METRIC_USAGE_MISSING: &str = "llm_gateway.client.usage.missing";
/// Every metric name above, for tests that check dashboards against what is emitted.
pub const METRIC_NAMES: [&str; 11] = [
    METRIC_OPERATION_DURATION,
    METRIC_TOKEN_USAGE,
    METRIC_TIME_TO_FIRST_CHUNK,
    METRIC_TIME_PER_OUTPUT_CHUNK,
    METRIC_HTTP_CLIENT_DURATION,
    METRIC_RETRIES,
    METRIC_RATE_LIMIT_REMAINING,
    METRIC_RATE_LIMIT_LIMIT,
    METRIC_RATE_LIMIT_RESET,
    METRIC_COST,
    METRIC_USAGE_MISSING,
];
/// The model label of every instrument past the cap on distinct model values (see
/// [`GatewayMiddlewareBuilder::max_model_labels`](crate::GatewayMiddlewareBuilder::max_model_labels));
/// spans keep the real name.
pub const OTHER_MODEL: &str = "_other";
/// Metric attribute: `input` or `output` (token usage); for cost also `cache_read` and
/// `cache_write`.
pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
/// Metric attribute: why a request was re-sent (`retry_after`, `rate_limit_reset`, `backoff`).
pub const LLM_GATEWAY_RETRY_REASON: &str = "llm_gateway.retry.reason";

/// Duration buckets (s), the GenAI conventions' advice.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Token-count buckets, the GenAI conventions' advice.
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

// ---- Retry -----------------------------------------------------------------------------
/// Span event on the call's span before each wait.
pub const EVENT_RETRY_WAIT: &str = "llm_gateway.retry.wait";
/// Span event on the call's span when it moves to a fallback model.
pub const EVENT_FALLBACK: &str = "llm_gateway.fallback";
/// Event attribute: the wait, in seconds.
pub const LLM_GATEWAY_RETRY_DELAY_S: &str = "llm_gateway.retry.delay_s";
/// Event attribute: the model a fallback moves to.
pub const LLM_GATEWAY_FALLBACK_MODEL: &str = "llm_gateway.fallback.model";
/// Why retries stopped although the last outcome was retryable: `max_attempts`, `deadline`,
/// `budget`, `hint_exceeds_max_wait`, `body_not_clonable`.
pub const LLM_GATEWAY_RETRY_STOP_REASON: &str = "llm_gateway.retry.stop_reason";
/// With pacing on: where the call's model window came from, [`PACING_SHARED`] (the store
/// every replica shares, feature `redis`) or [`PACING_LOCAL`] (this process's).
pub const LLM_GATEWAY_PACING_SOURCE: &str = "llm_gateway.pacing.source";
/// `llm_gateway.pacing.source` when the shared store answered.
pub const PACING_SHARED: &str = "shared";
/// `llm_gateway.pacing.source` when this process's windows were used.
pub const PACING_LOCAL: &str = "local";
/// With pacing on: seconds the call waited for its model's window before it was sent.
pub const LLM_GATEWAY_PACING_WAIT_S: &str = "llm_gateway.pacing.wait_s";
/// Span event when the shared store (Redis) could not be used and the call used its local
/// state instead, with [`LLM_GATEWAY_SHARED_QUOTA_OPERATION`] and
/// [`LLM_GATEWAY_SHARED_QUOTA_REASON`].
pub const EVENT_SHARED_QUOTA_UNAVAILABLE: &str = "llm_gateway.shared_quota.unavailable";
/// Event and metric attribute: `reserve`, `observe` or `budget`.
pub const LLM_GATEWAY_SHARED_QUOTA_OPERATION: &str = "llm_gateway.shared_quota.operation";
/// Event attribute: why (`skipped after a recent failure`, a timeout, Redis's error).
pub const LLM_GATEWAY_SHARED_QUOTA_REASON: &str = "llm_gateway.shared_quota.reason";
/// Counter (feature `redis`): operations on the shared store that failed or were skipped, by
/// `llm_gateway.shared_quota.operation` (Prometheus:
/// `llm_gateway_client_shared_quota_unavailable_total`).
pub const METRIC_SHARED_QUOTA_UNAVAILABLE: &str = "llm_gateway.client.shared_quota.unavailable";
/// `true` when client retries are on and the gateway will also retry by itself
/// (`fallback_config.retry` true or absent).
pub const LLM_GATEWAY_RETRY_GATEWAY_RETRY: &str = "llm_gateway.retry.gateway_retry";
