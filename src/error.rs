//! The crate's configuration error (a leaf).

use std::fmt;

/// A configuration mistake, reported when the middleware is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: String) -> Self {
        ConfigError(message)
    }

    /// The message, without the `llm-gateway-otel configuration:` prefix.
    pub(crate) fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "llm-gateway-otel configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}
