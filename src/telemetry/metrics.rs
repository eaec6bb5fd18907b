//! Metric instruments (see `telemetry-conventions.md`): one place where every call, attempt,
//! retry and rate-limit reading is turned into OpenTelemetry measurements.
//!
//! The instruments are created when the middleware is built, from the meter given to the
//! builder, or from the global meter provider's `llm_gateway_otel` meter, made again once if
//! the application sets that provider later ([`MetricsSource`]). Attribute sets stay
//! low-cardinality: model, region, status code, error type, never a request id; each is built
//! once and kept (`bound`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;

use super::bound::{Labels, Point, Sets};
use crate::names::*;
use crate::outcome::ResponseOutcome;
use crate::price::Cost;
use crate::ratelimit::RateLimit;
use crate::request::RequestFacts;

/// What one finished call contributes to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct CallSummary<'a> {
    /// The call's attributes (model, region, server).
    pub attributes: &'a MetricAttributes,
    /// What the body showed, when there was a response.
    pub outcome: Option<&'a ResponseOutcome>,
    /// Final status code, when there was a response.
    pub status: Option<u16>,
    /// The classified `error.type`, if the call failed.
    pub error_type: Option<&'a str>,
    /// From sending the request to the end of the body (or the failure).
    pub duration: Duration,
    /// Where its usage came from and what it cost.
    pub(crate) spend: Spend,
}

/// What the usage of a finished call came to: recorded on its span, in its log line and in
/// the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Spend {
    /// `llm_gateway.usage.source`: reported, missing, or nothing to say (an error answer).
    pub(crate) source: Option<&'static str>,
    /// What it cost, when the served model has a price and usage is known.
    pub(crate) cost: Option<Cost>,
}

impl Spend {
    /// `llm_gateway.usage.cost_usd`.
    pub(crate) fn cost_usd(&self) -> Option<f64> {
        self.cost.map(|c| c.total())
    }
}

/// What one HTTP attempt contributes to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct AttemptSummary<'a> {
    /// The call's attributes.
    pub attributes: &'a MetricAttributes,
    /// Status code of the attempt, when one came back.
    pub status: Option<u16>,
    /// `error.type` of the attempt, if it failed.
    pub error_type: Option<&'a str>,
    /// From sending to the response head (or the failure).
    pub duration: Duration,
}

/// The instruments.
#[derive(Debug)]
pub struct Metrics {
    operation_duration: Histogram<f64>,
    token_usage: Histogram<u64>,
    time_to_first_chunk: Histogram<f64>,
    time_per_output_chunk: Histogram<f64>,
    http_duration: Histogram<f64>,
    retries: Counter<u64>,
    cost: Counter<f64>,
    usage_missing: Counter<u64>,
    /// The model label values each instrument may see (the cardinality cap).
    pub(crate) models: ModelLabels,
    /// The latest rate-limit reading per model and region, which the three quota gauges
    /// observe when metrics are collected: a call updates it instead of recording three
    /// measurements.
    quota: Arc<Quota>,
    /// The attribute sets of finished calls and of attempts, kept across calls.
    calls: Sets<CallPoints>,
    attempts: Sets<Point<Histogram<f64>>>,
}

/// The measurements of finished calls with one set of labels.
#[derive(Debug, Default)]
struct CallPoints {
    duration: Point<Histogram<f64>>,
    input_tokens: Point<Histogram<u64>>,
    output_tokens: Point<Histogram<u64>>,
    time_to_first_chunk: Point<Histogram<f64>>,
    time_per_output_chunk: Point<Histogram<f64>>,
    /// Answers without usage: JSON, then streamed.
    usage_missing: [Point<Counter<u64>>; 2],
    /// Spend, in the order of [`Cost::parts`].
    cost: [Point<Counter<f64>>; 4],
}

impl Metrics {
    /// Instruments from `meter`, which label at most `max_models` distinct model names
    /// (past that, [`OTHER_MODEL`]).
    pub fn new(meter: &Meter, max_models: usize) -> Metrics {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        Metrics {
            operation_duration: seconds(
                METRIC_OPERATION_DURATION,
                "Duration of gateway calls, from sending the request to the end of the body",
            ),
            token_usage: meter
                .u64_histogram(METRIC_TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Input and output tokens per gateway call")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            time_to_first_chunk: seconds(
                METRIC_TIME_TO_FIRST_CHUNK,
                "Time from sending a streamed call to its first chunk",
            ),
            time_per_output_chunk: seconds(
                METRIC_TIME_PER_OUTPUT_CHUNK,
                "Time per output chunk of a streamed call, after the first chunk",
            ),
            http_duration: seconds(
                METRIC_HTTP_CLIENT_DURATION,
                "Duration of each HTTP attempt, from sending to the response head",
            ),
            retries: meter
                .u64_counter(METRIC_RETRIES)
                .with_description("Requests re-sent to the gateway, by reason")
                .build(),
            cost: meter
                .f64_counter(METRIC_COST)
                .with_unit("{USD}")
                .with_description(
                    "Spend in USD, priced from the account's rate table at the model that served the call",
                )
                .build(),
            usage_missing: meter
                .u64_counter(METRIC_USAGE_MISSING)
                .with_description("2xx answers that ended without usage: tokens and cost unknown")
                .build(),
            quota: Quota::observed_by(meter),
            models: ModelLabels::new(max_models),
            calls: Sets::default(),
            attempts: Sets::default(),
        }
    }

    /// Records one finished call.
    pub fn record_call(&self, call: &CallSummary<'_>) {
        let attrs = call.attributes;
        let served = call
            .outcome
            .and_then(|o| o.facts.served_model())
            .map(|served| attrs.response_model(served, call.status, &self.models));
        let labels = Labels {
            model: attrs.model_label(),
            served: served.as_ref().map(|kv| value_str(&kv.value)),
            region: attrs.region_label(),
            server: None,
            status: call.status,
            error: call.error_type,
        };
        // The attributes of the call's set, built once per set: the values are shared with
        // the request's facts, not copied. `error.type` is on the call's duration only.
        let common = || {
            let mut a = attrs.base(7);
            a.push(KeyValue::new(GEN_AI_OPERATION_NAME, OPERATION_CHAT));
            a.push(KeyValue::new(GEN_AI_PROVIDER_NAME, PROVIDER_NAME));
            a.extend(served.clone());
            if let Some(status) = call.status {
                a.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
            }
            a
        };
        let with = |mut a: Vec<KeyValue>, kv: KeyValue| {
            a.push(kv);
            a
        };
        self.calls.with(&labels, |points| {
            points.duration.record(
                &self.operation_duration,
                call.duration.as_secs_f64(),
                || match call.error_type {
                    Some(error_type) => {
                        with(common(), KeyValue::new(ERROR_TYPE, error_type.to_owned()))
                    }
                    None => common(),
                },
            );
            let Some(outcome) = call.outcome else {
                return;
            };
            let usage = &outcome.facts.usage;
            for (point, kind, count) in [
                (&points.input_tokens, "input", usage.input_tokens),
                (&points.output_tokens, "output", usage.output_tokens),
            ] {
                if let Some(count) = count {
                    point.record(&self.token_usage, count, || {
                        with(common(), KeyValue::new(GEN_AI_TOKEN_TYPE, kind))
                    });
                }
            }
            if let Some(ttfc) = outcome.time_to_first_chunk {
                points.time_to_first_chunk.record(
                    &self.time_to_first_chunk,
                    ttfc.as_secs_f64(),
                    common,
                );
            }
            if let Some(tpoc) = outcome.time_per_output_chunk {
                points.time_per_output_chunk.record(
                    &self.time_per_output_chunk,
                    tpoc.as_secs_f64(),
                    common,
                );
            }
            if call.spend.source == Some(USAGE_SOURCE_MISSING) {
                let streamed = outcome.streamed;
                points.usage_missing[usize::from(streamed)].record(&self.usage_missing, 1, || {
                    with(
                        attrs.base(1),
                        KeyValue::new(LLM_GATEWAY_RESPONSE_STREAMED, streamed),
                    )
                });
            }
            if let (Some(cost), Some(served)) = (call.spend.cost, &served) {
                for (point, (kind, usd)) in points.cost.iter().zip(cost.parts()) {
                    if usd > 0.0 {
                        point.record(&self.cost, usd, || {
                            let mut a = attrs.base(2);
                            a.push(served.clone());
                            with(a, KeyValue::new(GEN_AI_TOKEN_TYPE, kind))
                        });
                    }
                }
            }
        });
    }

    /// Records one HTTP attempt.
    pub fn record_attempt(&self, attempt: &AttemptSummary<'_>) {
        let base = attempt.attributes;
        let labels = Labels {
            model: base.model_label(),
            served: None,
            region: base.region_label(),
            server: Some(value_str(&base.server.value)),
            status: attempt.status,
            error: attempt.error_type,
        };
        self.attempts.with(&labels, |point| {
            point.record(&self.http_duration, attempt.duration.as_secs_f64(), || {
                let mut attrs = base.base(4);
                attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, "POST"));
                attrs.push(base.server.clone());
                if let Some(status) = attempt.status {
                    attrs.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
                }
                if let Some(error_type) = attempt.error_type {
                    attrs.push(KeyValue::new(ERROR_TYPE, error_type.to_owned()));
                }
                attrs
            })
        });
    }

    /// Records one retry (a re-send) and why it happened.
    pub fn record_retry(&self, attributes: &MetricAttributes, reason: &'static str) {
        let mut attrs = attributes.base(3);
        attrs.push(KeyValue::new(LLM_GATEWAY_RETRY_REASON, reason));
        self.retries.add(1, &attrs);
    }

    /// Keeps the rate-limit headers of a response as the latest reading of its model's
    /// window (the gauges report it at collection).
    pub fn record_rate_limit(&self, attributes: &MetricAttributes, rate: &RateLimit) {
        let mut attrs = attributes.base(2);
        if let Some(model) = &rate.model {
            // The headers describe this model's window (it differs after a fallback).
            attrs.retain(|kv| kv.key.as_str() != GEN_AI_REQUEST_MODEL);
            attrs.push(KeyValue::new(
                GEN_AI_REQUEST_MODEL,
                self.models.label(model),
            ));
        }
        self.quota.update(attrs, rate);
    }
}

/// Where the instruments come from: the meter given to the builder, or the global meter
/// provider. The global one is followed: a provider the application sets after the middleware
/// was built (a client made before `init()`) is picked up as the next call starts, then looked
/// for at most once a second until it changes, and kept from then on, as the global tracer is.
pub(crate) struct MetricsSource {
    first: Metrics,
    global: Option<GlobalMeter>,
}

struct GlobalMeter {
    max_models: usize,
    /// The global provider when the middleware was built (its address: an identity only).
    at_build: usize,
    built: std::time::Instant,
    /// Milliseconds after `built` of the next look at the global provider.
    next_look_ms: std::sync::atomic::AtomicU64,
    found: std::sync::OnceLock<Metrics>,
}

impl MetricsSource {
    /// The instruments of `meter`.
    pub(crate) fn given(meter: &Meter, max_models: usize) -> MetricsSource {
        MetricsSource {
            first: Metrics::new(meter, max_models),
            global: None,
        }
    }

    /// The instruments of the global meter provider, followed when it changes.
    pub(crate) fn global(max_models: usize) -> MetricsSource {
        let provider = opentelemetry::global::meter_provider();
        MetricsSource {
            first: Metrics::new(&global_meter(&provider), max_models),
            global: Some(GlobalMeter {
                max_models,
                at_build: address(&provider),
                built: std::time::Instant::now(),
                next_look_ms: Default::default(),
                found: Default::default(),
            }),
        }
    }

    /// The instruments to record with.
    pub(crate) fn get(&self) -> &Metrics {
        self.global
            .as_ref()
            .and_then(|g| g.found.get())
            .unwrap_or(&self.first)
    }

    /// The instruments to record a new call with: the global provider is looked at here,
    /// once per call at most (and at most once a second), not at every measurement.
    pub(crate) fn look(&self) -> &Metrics {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(g) = &self.global else {
            return &self.first;
        };
        if let Some(found) = g.found.get() {
            return found;
        }
        let now_ms = u64::try_from(g.built.elapsed().as_millis()).unwrap_or(u64::MAX);
        if now_ms < g.next_look_ms.load(Relaxed) {
            return &self.first;
        }
        g.next_look_ms.store(now_ms.saturating_add(1000), Relaxed);
        let provider = opentelemetry::global::meter_provider();
        if address(&provider) == g.at_build {
            return &self.first;
        }
        g.found
            .get_or_init(|| Metrics::new(&global_meter(&provider), g.max_models))
    }
}

fn global_meter(provider: &Arc<dyn opentelemetry::metrics::MeterProvider + Send + Sync>) -> Meter {
    provider.meter(crate::names::TRACING_TARGET)
}

fn address(provider: &Arc<dyn opentelemetry::metrics::MeterProvider + Send + Sync>) -> usize {
    Arc::as_ptr(provider).cast::<()>() as usize
}

/// Most model × region windows kept (a bound on memory; a reading for a new window beyond it
/// is not reported).
const MAX_QUOTA_WINDOWS: usize = 1024;

/// The latest reading of each window.
#[derive(Debug, Default)]
struct Quota(std::sync::Mutex<Vec<Window>>);

#[derive(Debug)]
struct Window {
    attributes: Vec<KeyValue>,
    limit: Option<i64>,
    remaining: Option<i64>,
    reset_at: Option<std::time::Instant>,
}

impl Quota {
    /// A reading store, and the gauges that report it from `meter`.
    fn observed_by(meter: &Meter) -> Arc<Quota> {
        let quota = Arc::new(Quota::default());
        let q = Arc::clone(&quota);
        meter
            .i64_observable_gauge(METRIC_RATE_LIMIT_REMAINING)
            .with_description("X-RateLimit-Remaining of the latest response")
            .with_callback(move |o| {
                q.each(|w| {
                    if let Some(v) = w.remaining {
                        o.observe(v, &w.attributes);
                    }
                })
            })
            .build();
        let q = Arc::clone(&quota);
        meter
            .i64_observable_gauge(METRIC_RATE_LIMIT_LIMIT)
            .with_description("X-RateLimit-Limit of the latest response")
            .with_callback(move |o| {
                q.each(|w| {
                    if let Some(v) = w.limit {
                        o.observe(v, &w.attributes);
                    }
                })
            })
            .build();
        let q = Arc::clone(&quota);
        meter
            .f64_observable_gauge(METRIC_RATE_LIMIT_RESET)
            .with_unit("s")
            .with_description("Seconds until the model's rate-limit window resets")
            .with_callback(move |o| {
                let now = std::time::Instant::now();
                q.each(|w| {
                    if let Some(at) = w.reset_at {
                        let left = at.saturating_duration_since(now).as_secs_f64();
                        o.observe(left, &w.attributes);
                    }
                })
            })
            .build();
        quota
    }

    fn update(&self, attributes: Vec<KeyValue>, rate: &RateLimit) {
        if rate.limit.is_none() && rate.remaining.is_none() && rate.reset_s.is_none() {
            return;
        }
        let reset_at = rate
            .reset_s
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| {
                std::time::Instant::now() + std::time::Duration::from_secs_f64(s.min(86_400.0))
            });
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = windows.iter().position(|w| w.attributes == attributes);
        let window = match at {
            Some(i) => &mut windows[i],
            None if windows.len() < MAX_QUOTA_WINDOWS => {
                windows.push(Window {
                    attributes,
                    limit: None,
                    remaining: None,
                    reset_at: None,
                });
                let last = windows.len() - 1;
                &mut windows[last]
            }
            None => return,
        };
        // A header a response lacks leaves the window's last reading as it was.
        window.limit = rate.limit.or(window.limit);
        window.remaining = rate.remaining.or(window.remaining);
        window.reset_at = reset_at.or(window.reset_at);
    }

    fn each(&self, mut f: impl FnMut(&Window)) {
        let windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for w in windows.iter() {
            f(w);
        }
    }
}

/// The model names the instruments may carry as labels: at most `max` distinct ones, then
/// [`OTHER_MODEL`] for any other (model names come from request bodies, so a client sending
/// junk names would make a series per name). A name the gateway has not yet answered with a
/// 2xx ("unproven": perhaps junk, perhaps a real model's first call) may take at most half of
/// the slots; a name it served takes a slot whenever one is free. So a burst of junk names
/// never keeps real models out. Spans keep the real name. The names are reference-counted,
/// so a label shares one string instead of a copy per call.
#[derive(Debug)]
pub(crate) struct ModelLabels {
    max: usize,
    names: RwLock<Names>,
    other: Arc<str>,
}

#[derive(Debug, Default)]
struct Names {
    /// Each name labelled, and whether the gateway has answered it with a 2xx.
    seen: HashMap<Arc<str>, bool>,
    /// How many of them it has not.
    unproven: usize,
}

impl ModelLabels {
    pub(crate) fn new(max: usize) -> ModelLabels {
        ModelLabels {
            max,
            names: RwLock::new(Names::default()),
            other: Arc::from(OTHER_MODEL),
        }
    }

    /// Most unproven names labelled.
    fn max_unproven(&self) -> usize {
        self.max.div_ceil(2)
    }

    /// The label of `model` as a call starts: itself when it has a slot or gets one, else
    /// [`OTHER_MODEL`].
    pub(crate) fn label(&self, model: &str) -> Arc<str> {
        self.lookup(model, false)
    }

    /// The label of `model`, which the gateway has just answered with a 2xx: it keeps its
    /// slot for good, or takes a free one.
    pub(crate) fn proven(&self, model: &str) -> Arc<str> {
        self.lookup(model, true)
    }

    fn lookup(&self, model: &str, proven: bool) -> Arc<str> {
        {
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            if let Some((name, &was_proven)) = names.seen.get_key_value(model) {
                if was_proven || !proven {
                    return Arc::clone(name);
                }
            } else if names.seen.len() >= self.max
                || !proven && names.unproven >= self.max_unproven()
            {
                return Arc::clone(&self.other);
            }
        }
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        let Names { seen, unproven } = &mut *names;
        if let Some((name, was_proven)) =
            seen.get_key_value(model).map(|(n, p)| (Arc::clone(n), *p))
        {
            if proven && !was_proven {
                seen.insert(Arc::clone(&name), true);
                *unproven -= 1;
            }
            return name;
        }
        if seen.len() >= self.max || !proven && *unproven >= self.max_unproven() {
            return Arc::clone(&self.other);
        }
        let name: Arc<str> = Arc::from(model);
        seen.insert(Arc::clone(&name), proven);
        if !proven {
            *unproven += 1;
        }
        name
    }
}

/// The attributes every instrument carries (requested model when known, and region) and the
/// server address, built once per call. Their values are reference-counted, so each
/// measurement shares them instead of copying strings.
#[derive(Debug, Clone)]
pub(crate) struct MetricAttributes {
    /// The requested model: its label (capped) and the span's attribute (the real name,
    /// sharing the label's string when they are the same).
    model: Option<(KeyValue, KeyValue)>,
    region: KeyValue,
    server: KeyValue,
}

impl MetricAttributes {
    /// The attributes of a call to `request`, measured by `metrics`.
    pub(crate) fn of(request: &RequestFacts, models: &ModelLabels) -> MetricAttributes {
        MetricAttributes {
            model: request.model.as_deref().map(|m| {
                let label = models.label(m);
                let span = if *label == *m {
                    KeyValue::new(GEN_AI_REQUEST_MODEL, Arc::clone(&label))
                } else {
                    KeyValue::new(GEN_AI_REQUEST_MODEL, m.to_owned())
                };
                (KeyValue::new(GEN_AI_REQUEST_MODEL, label), span)
            }),
            region: KeyValue::new(LLM_GATEWAY_REGION, request.region.metric_value()),
            server: KeyValue::new(
                SERVER_ADDRESS,
                Arc::<str>::from(request.server_address.as_str()),
            ),
        }
    }

    /// The requested model (when known, its real name), the region and the server address:
    /// what the call's span starts with, shared rather than copied.
    pub(crate) fn request_attributes(&self) -> impl Iterator<Item = KeyValue> + '_ {
        self.model
            .as_ref()
            .map(|(_, span)| span.clone())
            .into_iter()
            .chain([self.region.clone(), self.server.clone()])
    }

    /// The requested model's label, when the request names one.
    fn model_label(&self) -> Option<&str> {
        self.model
            .as_ref()
            .map(|(label, _)| value_str(&label.value))
    }

    /// The region's label.
    fn region_label(&self) -> &str {
        value_str(&self.region.value)
    }

    /// Model and region, in a vector with room for `extra` more.
    fn base(&self, extra: usize) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(2 + extra);
        if let Some((label, _)) = &self.model {
            attrs.push(label.clone());
        }
        attrs.push(self.region.clone());
        attrs
    }

    /// The gateway answered the call with a 2xx: its requested model is proven, and its label
    /// is the model's own from now on if it was [`OTHER_MODEL`] (the call's own metrics then
    /// carry it too).
    pub(crate) fn answered(&mut self, models: &ModelLabels) {
        if let Some((label, span)) = &mut self.model {
            let real = span.value.as_str();
            let proven = models.proven(&real);
            if label.value.as_str() != *proven {
                *label = KeyValue::new(GEN_AI_REQUEST_MODEL, proven);
            }
        }
    }

    /// `gen_ai.response.model` of an answer with `status` as a label (capped by `models`; a
    /// model that served a 2xx is proven), sharing the requested model's value when they are
    /// the same.
    fn response_model(&self, served: &str, status: Option<u16>, models: &ModelLabels) -> KeyValue {
        match &self.model {
            Some((label, span)) if span.value.as_str() == served => {
                KeyValue::new(GEN_AI_RESPONSE_MODEL, label.value.clone())
            }
            _ if status.is_some_and(|s| (200..300).contains(&s)) => {
                KeyValue::new(GEN_AI_RESPONSE_MODEL, models.proven(served))
            }
            _ => KeyValue::new(GEN_AI_RESPONSE_MODEL, models.label(served)),
        }
    }
}

/// A string value's text (every label value here is a string).
fn value_str(v: &opentelemetry::Value) -> &str {
    match v {
        opentelemetry::Value::String(s) => s.as_str(),
        _ => "",
    }
}
