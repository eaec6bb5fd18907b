//! The gateway's data-residency region, derived from the host a call goes to.

use std::borrow::Cow;
use std::fmt;

/// Host of the US endpoint (the default region).
pub const US_HOST: &str = "llm-gateway.assemblyai.com";
/// Host of the EU endpoint.
pub const EU_HOST: &str = "llm-gateway.eu.assemblyai.com";

/// A region label, recorded as `llm_gateway.region`: `us`, `eu`, `unknown`, or a label the
/// user configured for a host (a proxy, a simulator).
///
/// ```
/// use llm_gateway_otel::Region;
/// assert_eq!(Region::from_host("llm-gateway.eu.assemblyai.com"), Region::EU);
/// assert_eq!(Region::from_host("127.0.0.1"), Region::UNKNOWN);
/// assert_eq!(Region::new("ap-1").unwrap().as_str(), "ap-1");
/// assert!(Region::new("Not A Label").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(Cow<'static, str>);

impl Region {
    /// `us`: `llm-gateway.assemblyai.com`.
    pub const US: Region = Region(Cow::Borrowed("us"));
    /// `eu`: `llm-gateway.eu.assemblyai.com`.
    pub const EU: Region = Region(Cow::Borrowed("eu"));
    /// `unknown`: any other host nobody configured.
    pub const UNKNOWN: Region = Region(Cow::Borrowed("unknown"));

    /// A custom label: 1 to 32 characters of `a-z`, `0-9`, `-`, `_` (it becomes a metric
    /// label, so it must stay short and low-cardinality).
    pub fn new(label: &str) -> Result<Region, crate::ConfigError> {
        let ok = !label.is_empty()
            && label.len() <= 32
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        match label {
            _ if !ok => Err(crate::ConfigError::new(format!(
                "region label {label:?} must be 1-32 characters of a-z, 0-9, '-', '_'"
            ))),
            "us" => Ok(Region::US),
            "eu" => Ok(Region::EU),
            "unknown" => Ok(Region::UNKNOWN),
            other => Ok(Region(Cow::Owned(other.to_owned()))),
        }
    }

    /// The region of one of the gateway's own hosts, else [`Region::UNKNOWN`].
    pub fn from_host(host: &str) -> Region {
        if host.eq_ignore_ascii_case(US_HOST) {
            Region::US
        } else if host.eq_ignore_ascii_case(EU_HOST) {
            Region::EU
        } else {
            Region::UNKNOWN
        }
    }

    /// The label as recorded.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label as an OpenTelemetry value (no copy for the built-in labels).
    pub(crate) fn metric_value(&self) -> opentelemetry::StringValue {
        match &self.0 {
            Cow::Borrowed(label) => (*label).into(),
            Cow::Owned(label) => std::sync::Arc::<str>::from(label.as_str()).into(),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
