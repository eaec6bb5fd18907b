//! The request body's facts (model, max_tokens, temperature, stream, the kinds of the fields
//! the gateway validates, json-repair and `fallback_config.retry`), read in one pass with
//! `serde_json` into a struct of `Value`s and kinds: large fields such as `messages` are
//! skipped without being copied.

use serde::Deserialize;
use serde_json::Value;

use super::JsonKind;

/// What the body says, as [`RequestFacts`](super::RequestFacts) records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BodyRead {
    /// The body was a JSON object (and valid JSON).
    pub(crate) described: bool,
    pub(crate) model: Option<String>,
    pub(crate) model_kind: Option<JsonKind>,
    pub(crate) max_tokens: Option<i64>,
    pub(crate) max_tokens_kind: Option<JsonKind>,
    pub(crate) temperature: Option<f64>,
    pub(crate) stream: bool,
    pub(crate) messages: Option<JsonKind>,
    pub(crate) prompt: Option<JsonKind>,
    pub(crate) json_repair: bool,
    /// `fallback_config.retry` (true when absent); `None` when not described.
    pub(crate) gateway_retries: Option<bool>,
}

/// The facts of `body` (already cut to the described size).
///
/// Only a JSON object describes a call: serde's derived struct would also accept an array,
/// reading `["a","b"]` as `model: "a"`.
pub(crate) fn read(body: &[u8]) -> BodyRead {
    let wire = Some(body)
        .filter(|b| b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{'))
        .and_then(|b| serde_json::from_slice::<WireRequest>(b).ok());
    let Some(wire) = wire else {
        return BodyRead::default();
    };
    BodyRead {
        described: true,
        model: wire
            .model
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_owned),
        model_kind: wire.model.as_ref().map(JsonKind::of),
        max_tokens: wire.max_tokens.as_ref().and_then(Value::as_i64),
        max_tokens_kind: wire.max_tokens.as_ref().map(JsonKind::of),
        temperature: wire.temperature.as_ref().and_then(Value::as_f64),
        stream: wire
            .stream
            .as_ref()
            .and_then(Value::as_bool)
            .unwrap_or(false),
        messages: wire.messages.map(|k| k.0),
        prompt: wire.prompt.map(|k| k.0),
        json_repair: wire.post_processing_steps.as_ref().is_some_and(json_repair),
        gateway_retries: Some(wire.fallback_config.as_ref().is_none_or(gateway_retries)),
    }
}

/// Whether `post_processing_steps` asks for `json-repair`.
fn json_repair(steps: &Value) -> bool {
    steps.as_array().is_some_and(|steps| {
        steps.iter().any(|s| {
            s.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("json-repair"))
        })
    })
}

/// `fallback_config.retry`, true unless it is `false`.
fn gateway_retries(config: &Value) -> bool {
    config.get("retry").and_then(Value::as_bool).unwrap_or(true)
}

/// The top-level request fields we describe. Each is a `Value` so that a wrongly typed field
/// (the gateway answers 400 to it) costs the description of that field only; unknown fields,
/// such as the (possibly large) `messages`, are skipped without being copied.
#[derive(Deserialize, Default)]
struct WireRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    messages: Option<KindOnly>,
    #[serde(default)]
    prompt: Option<KindOnly>,
    #[serde(default)]
    post_processing_steps: Option<Value>,
    /// Read here so that the retry loop need not parse the body again.
    #[serde(default)]
    fallback_config: Option<Value>,
}

/// Deserializes any JSON value into its kind only: arrays and objects are walked with
/// `IgnoredAny`, so a large `messages` is skipped without being copied.
struct KindOnly(JsonKind);

impl<'de> Deserialize<'de> for KindOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KindOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Null))
            }
            fn visit_none<E>(self) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Bool))
            }
            fn visit_i64<E>(self, _: i64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Integer))
            }
            fn visit_u64<E>(self, _: u64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Integer))
            }
            fn visit_f64<E>(self, _: f64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Number))
            }
            fn visit_str<E>(self, _: &str) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::String))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KindOnly, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(KindOnly(JsonKind::Array))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KindOnly, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(KindOnly(JsonKind::Object))
            }
        }
        d.deserialize_any(V)
    }
}

// ---- the fast reader ----
