//! Rewrites of the outgoing JSON body that retry features need: another model for a
//! fallback re-send, the gateway's own `fallbacks` field, and `fallback_config.retry: false`.
//! Pure functions over bytes; `None` when the body is not a JSON object.

use serde_json::{Map, Value};

fn edit(body: &[u8], f: impl FnOnce(&mut Map<String, Value>)) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    f(value.as_object_mut()?);
    serde_json::to_vec(&value).ok()
}

/// The body with `model` replaced.
pub fn with_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    edit(body, |o| {
        o.insert("model".into(), Value::from(model));
    })
}

/// The body with the gateway's `fallbacks` field set to `models`, unless the caller already
/// set one.
pub fn with_gateway_fallbacks(body: &[u8], models: &[String]) -> Option<Vec<u8>> {
    edit(body, |o| {
        if !o.contains_key("fallbacks") {
            let list = models
                .iter()
                .map(|m| serde_json::json!({ "model": m }))
                .collect();
            o.insert("fallbacks".into(), Value::Array(list));
        }
    })
}

/// The body with `fallback_config.retry` set to `false` (other `fallback_config` fields kept),
/// so that a client-side retry does not multiply the gateway's own.
pub fn without_gateway_retry(body: &[u8]) -> Option<Vec<u8>> {
    edit(body, |o| {
        let config = o
            .entry("fallback_config")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(c) = config.as_object_mut() {
            c.insert("retry".into(), Value::Bool(false));
        } else {
            *config = serde_json::json!({ "retry": false });
        }
    })
}

/// Whether the gateway will retry by itself: `fallback_config.retry` is true or absent (its
/// default).
pub fn gateway_retries(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Wire {
        #[serde(default)]
        fallback_config: Option<Value>,
    }
    match serde_json::from_slice::<Wire>(body) {
        Ok(w) => w
            .fallback_config
            .as_ref()
            .and_then(|c| c.get("retry"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn rewrites_the_model() {
        let out = crate::retry::body::with_model(br#"{"model":"a","max_tokens":5}"#, "b").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["model"].as_str(), v["max_tokens"].as_i64()),
            (Some("b"), Some(5))
        );
    }

    #[test]
    fn turns_the_gateway_retry_off() {
        let out = crate::retry::body::without_gateway_retry(
            br#"{"model":"a","fallback_config":{"depth":2}}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["fallback_config"],
            serde_json::json!({"depth": 2, "retry": false})
        );
    }
}
