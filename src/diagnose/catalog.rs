//! The region's model list (`GET /v1/models`), looked up at most once per gateway origin when
//! the user allows it, to tell a misspelled model from one not served in the region.
//!
//! The lookup uses a plain `reqwest::Client` of the middleware's own (not the user's stack, so
//! it is never observed or retried) with a short timeout; a failed lookup is cached too, and
//! the diagnosis then falls back to what it knows statically.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

/// Largest `/v1/models` body read.
const MAX_MODELS_BODY: usize = 1024 * 1024;
/// Longest the lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

type Entry = Arc<OnceCell<Option<Arc<[String]>>>>;

/// One cached model list per origin (`scheme://host[:port]`).
pub(crate) struct ModelCatalog {
    client: reqwest::Client,
    by_origin: Mutex<HashMap<String, Entry>>,
}

impl ModelCatalog {
    pub(crate) fn new() -> ModelCatalog {
        ModelCatalog {
            client: reqwest::Client::builder()
                .timeout(LOOKUP_TIMEOUT)
                .build()
                .unwrap_or_default(),
            by_origin: Mutex::new(HashMap::new()),
        }
    }

    /// For a 404 answer, when the static rules cannot decide: the model list of the call's
    /// region.
    pub(crate) async fn for_not_found(
        &self,
        request: &crate::request::RequestFacts,
        status: u16,
    ) -> Option<Arc<[String]>> {
        if status != 404 {
            return None;
        }
        let model = request.model.as_deref()?;
        if request.region == crate::region::Region::EU && super::is_openai_model(model) {
            return None;
        }
        self.models(&request.origin).await
    }

    /// The model ids `origin` serves; `None` when the lookup failed (once, then cached).
    pub(crate) async fn models(&self, origin: &str) -> Option<Arc<[String]>> {
        if origin.is_empty() {
            return None;
        }
        let entry = {
            let mut map = self.by_origin.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(origin.to_owned()).or_default())
        };
        entry
            .get_or_init(|| async {
                let list = self.fetch(origin).await;
                list.map(Arc::from)
            })
            .await
            .clone()
    }

    async fn fetch(&self, origin: &str) -> Option<Vec<String>> {
        let mut response = self
            .client
            .get(format!("{origin}/v1/models"))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.ok()? {
            if body.len() + chunk.len() > MAX_MODELS_BODY {
                return None;
            }
            body.extend_from_slice(&chunk);
        }
        parse_models(&body)
    }
}

/// The model ids of a `/v1/models` body: the OpenAI list shape `{"data":[{"id":..}]}`, or a
/// `models` array, or a bare array; entries may be strings or objects with `id`/`name`.
pub(crate) fn parse_models(body: &[u8]) -> Option<Vec<String>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("data")
            .or_else(|| o.get("models"))
            .and_then(Value::as_array)?,
        _ => return None,
    };
    let ids: Vec<String> = list
        .iter()
        .filter_map(|m| match m {
            Value::String(s) => Some(s.clone()),
            other => other
                .get("id")
                .or_else(|| other.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect();
    (!ids.is_empty()).then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::parse_models;

    #[test]
    fn model_list_shapes() {
        let openai = br#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"claude-sonnet-4-6"}]}"#;
        assert_eq!(
            parse_models(openai),
            Some(vec!["gpt-4o".into(), "claude-sonnet-4-6".into()])
        );
        assert_eq!(
            parse_models(br#"{"models":[{"name":"a"},"b"]}"#),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse_models(br#"["x"]"#), Some(vec!["x".into()]));
        for bad in [&b"<html>"[..], b"{}", b"[]", b"{\"data\":[1,2]}", b""] {
            assert_eq!(parse_models(bad), None);
        }
    }
}
