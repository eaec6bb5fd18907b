//! The account's rate table and what a call cost. The gateway bills per 1M input and output
//! tokens at rates that differ per account (Billing → Rates in the AssemblyAI dashboard), so
//! there is no built-in price list: the user gives one, in code or as a JSON file named by
//! `LLM_GATEWAY_PRICES`. Pure: no I/O but reading that file at build time.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::outcome::Usage;

/// The environment variable naming a rate-table file, read when the middleware is built
/// without [`GatewayMiddlewareBuilder::prices`](crate::GatewayMiddlewareBuilder::prices).
pub const PRICES_ENV: &str = "LLM_GATEWAY_PRICES";

/// One model's rates, in USD per 1M tokens. Cached input is priced at its own rates when
/// given, else at the input rate.
///
/// ```
/// use llm_gateway_otel::Rates;
/// let sonnet = Rates::new(3.0, 15.0).cache_read(0.3).cache_write(3.75);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// USD per 1M input tokens that were not read from or written to the prompt cache.
    pub input_per_million: f64,
    /// USD per 1M output tokens.
    pub output_per_million: f64,
    /// USD per 1M input tokens read from the prompt cache (default: the input rate).
    #[serde(default)]
    pub cache_read_per_million: Option<f64>,
    /// USD per 1M input tokens written to the prompt cache (default: the input rate).
    #[serde(default)]
    pub cache_write_per_million: Option<f64>,
}

impl Rates {
    /// Input and output rates, USD per 1M tokens.
    pub fn new(input_per_million: f64, output_per_million: f64) -> Rates {
        Rates {
            input_per_million,
            output_per_million,
            cache_read_per_million: None,
            cache_write_per_million: None,
        }
    }

    /// The rate of input tokens read from the prompt cache.
    pub fn cache_read(mut self, per_million: f64) -> Rates {
        self.cache_read_per_million = Some(per_million);
        self
    }

    /// The rate of input tokens written to the prompt cache.
    pub fn cache_write(mut self, per_million: f64) -> Rates {
        self.cache_write_per_million = Some(per_million);
        self
    }

    fn validate(&self, model: &str) -> Result<(), ConfigError> {
        for (field, v) in [
            ("input_per_million", Some(self.input_per_million)),
            ("output_per_million", Some(self.output_per_million)),
            ("cache_read_per_million", self.cache_read_per_million),
            ("cache_write_per_million", self.cache_write_per_million),
        ] {
            if let Some(v) = v.filter(|v| !v.is_finite() || *v < 0.0) {
                return Err(ConfigError::new(format!(
                    "rate table: {model}.{field} is {v}; a price must be a finite number ≥ 0"
                )));
            }
        }
        Ok(())
    }
}

/// The account's rate table: USD per 1M tokens for each model, looked up by the exact name
/// of the model that served the call (`gen_ai.response.model`). A model without an entry
/// has no cost (the span then carries no `llm_gateway.usage.cost_usd`, never a 0).
///
/// ```
/// use llm_gateway_otel::{GatewayMiddleware, Prices, Rates};
/// let prices = Prices::new()
///     .model("claude-sonnet-4-5", Rates::new(3.0, 15.0).cache_read(0.3).cache_write(3.75))
///     .model("gpt-4o-mini", Rates::new(0.15, 0.6));
/// let middleware = GatewayMiddleware::builder().prices(prices).build().unwrap();
/// ```
///
/// The same table as the JSON file `LLM_GATEWAY_PRICES` names (the cache prices optional):
///
/// ```
/// use llm_gateway_otel::Prices;
/// let prices = Prices::from_json(r#"{"models": {
///     "claude-sonnet-4-5": {"input_per_million": 3.0, "output_per_million": 15.0,
///                           "cache_read_per_million": 0.3, "cache_write_per_million": 3.75}
/// }}"#).unwrap();
/// assert!(Prices::from_json(r#"{"models": {"m": {"input_per_million": -1, "output_per_million": 1}}}"#).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    models: HashMap<String, Rates>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    models: HashMap<String, Rates>,
}

impl Prices {
    /// An empty table.
    pub fn new() -> Prices {
        Prices::default()
    }

    /// Adds (or replaces) the rates of `model`.
    pub fn model(mut self, model: impl Into<String>, rates: Rates) -> Prices {
        self.models.insert(model.into(), rates);
        self
    }

    /// A table from JSON: `{"models": {"<model>": {"input_per_million": …,
    /// "output_per_million": …, "cache_read_per_million": …, "cache_write_per_million": …}}}`.
    /// Not JSON, an unknown field, a missing rate, a negative price or no model at all is an
    /// error that says where.
    pub fn from_json(text: &str) -> Result<Prices, ConfigError> {
        let file: PriceFile =
            serde_json::from_str(text).map_err(|e| ConfigError::new(format!("rate table: {e}")))?;
        if file.models.is_empty() {
            return Err(ConfigError::new(
                "rate table: `models` is empty, so no call would be priced".to_owned(),
            ));
        }
        let prices = Prices {
            models: file.models,
        };
        prices.validate()?;
        Ok(prices)
    }

    /// A table from a JSON file (see [`Prices::from_json`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Prices, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!(
                "rate table {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        Prices::from_json(&text)
            .map_err(|e| ConfigError::new(format!("{} (in {})", e.message(), path.display())))
    }

    /// The table in the file `LLM_GATEWAY_PRICES` names, `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<Prices>, ConfigError> {
        match std::env::var_os(PRICES_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Prices::from_file(path)
                .map(Some)
                .map_err(|e| ConfigError::new(format!("{PRICES_ENV}: {}", e.message()))),
            None => Ok(None),
        }
    }

    /// The rates of `model`, if the table has it.
    pub fn rates(&self, model: &str) -> Option<&Rates> {
        self.models.get(model)
    }

    /// Whether the table has no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut names: Vec<&String> = self.models.keys().collect();
        names.sort();
        for name in names {
            self.models[name].validate(name)?;
        }
        Ok(())
    }

    /// What `usage` cost at `model`'s rates; `None` when the model has no price or the usage
    /// lacks input or output tokens.
    pub(crate) fn cost(&self, model: &str, usage: &Usage) -> Option<Cost> {
        let rates = self.rates(model)?;
        Cost::of(rates, usage)
    }
}

/// What one call cost, in USD, by kind of token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cost {
    /// Input tokens that were neither read from nor written to the prompt cache.
    pub(crate) input: f64,
    pub(crate) cache_read: f64,
    pub(crate) cache_write: f64,
    pub(crate) output: f64,
}

impl Cost {
    /// The input count includes cached tokens (as the GenAI conventions and the gateway's
    /// OpenAI shape count them): the reads and writes are priced at their rates, the rest at
    /// the input rate.
    fn of(rates: &Rates, usage: &Usage) -> Option<Cost> {
        let input = usage.input_tokens?;
        let output = usage.output_tokens?;
        let read = usage.cache_read_input_tokens.unwrap_or(0).min(input);
        let write = usage
            .cache_creation_input_tokens
            .unwrap_or(0)
            .min(input - read);
        let plain = input - read - write;
        let per = |tokens: u64, rate: f64| tokens as f64 * rate / 1e6;
        let input_rate = rates.input_per_million;
        Some(Cost {
            input: per(plain, input_rate),
            cache_read: per(read, rates.cache_read_per_million.unwrap_or(input_rate)),
            cache_write: per(write, rates.cache_write_per_million.unwrap_or(input_rate)),
            output: per(output, rates.output_per_million),
        })
    }

    /// The whole cost, rounded to a millionth of a cent (10⁻¹² USD, far below any price)
    /// so that it reads as written (`0.0001119`, not `0.00011190000000000001`).
    pub(crate) fn total(&self) -> f64 {
        let sum = self.input + self.cache_read + self.cache_write + self.output;
        (sum * 1e12).round() / 1e12
    }

    /// Each part by its `gen_ai.token.type`.
    pub(crate) fn parts(&self) -> [(&'static str, f64); 4] {
        [
            ("input", self.input),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("output", self.output),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, read: Option<u64>, write: Option<u64>) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            total_tokens: None,
            cache_read_input_tokens: read,
            cache_creation_input_tokens: write,
        }
    }

    #[test]
    fn cached_input_is_priced_at_its_own_rate() {
        let rates = Rates::new(3.0, 15.0).cache_read(0.3).cache_write(3.75);
        // 1000 input of which 600 cache reads and 100 cache writes; 200 output.
        let c = Cost::of(&rates, &usage(1000, 200, Some(600), Some(100))).unwrap();
        assert!((c.input - 300.0 * 3.0 / 1e6).abs() < 1e-15);
        assert!((c.cache_read - 600.0 * 0.3 / 1e6).abs() < 1e-15);
        assert!((c.cache_write - 100.0 * 3.75 / 1e6).abs() < 1e-15);
        assert!((c.output - 200.0 * 15.0 / 1e6).abs() < 1e-15);
        assert_eq!(
            c.total(),
            0.004455,
            "rounded to 10⁻¹² USD: reads as written"
        );
        // Without cache rates, cached tokens cost the input rate.
        let plain = Cost::of(&Rates::new(3.0, 15.0), &usage(1000, 200, Some(600), None)).unwrap();
        assert!((plain.total() - (1000.0 * 3.0 + 200.0 * 15.0) / 1e6).abs() < 1e-15);
    }

    #[test]
    fn unknown_usage_has_no_cost_and_counts_never_underflow() {
        let rates = Rates::new(1.0, 2.0);
        let mut u = usage(10, 5, None, None);
        u.output_tokens = None;
        assert_eq!(Cost::of(&rates, &u), None);
        // More cached tokens than input tokens (a confused body): capped, never negative.
        let c = Cost::of(&rates, &usage(10, 5, Some(50), Some(50))).unwrap();
        assert!(c.input >= 0.0 && c.cache_write >= 0.0);
        assert!((c.cache_read - 10.0 / 1e6).abs() < 1e-15);
    }

    #[test]
    fn a_bad_table_is_an_error_that_says_where() {
        // (Negative prices, unknown fields and not-JSON are tested through a file, as users
        // meet them, in tests/all/spend.rs.)
        for (text, says) in [
            (
                r#"{"models": {"m": {"input_per_million": 1}}}"#,
                "output_per_million",
            ),
            (r#"{"model": {}}"#, "unknown field"),
            (r#"{"models": {}}"#, "`models` is empty"),
            (
                r#"{"models": {"m": {"input_per_million": "3", "output_per_million": 2}}}"#,
                "invalid type",
            ),
        ] {
            let err = Prices::from_json(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        let err = Prices::new()
            .model("m", Rates::new(f64::NAN, 1.0))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("m.input_per_million"), "{err}");
    }
}
