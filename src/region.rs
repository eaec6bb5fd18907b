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
    pub fn new(label: &str) -> Result<Region, crate::error::ConfigError> {
        let ok = !label.is_empty()
            && label.len() <= 32
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        match label {
            _ if !ok => Err(crate::error::ConfigError::new(format!(
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

/// Region labels configured per host (`host` or `host:port`), falling back to the gateway's
/// own hosts and then to a default.
///
/// The hosts are few (one per gateway or proxy configured), so they are kept in a list and
/// compared case-insensitively in place: resolving a call's region allocates nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegionMap {
    /// Lowercase `host` or `host:port`, each at most once (a later insert replaces).
    by_host: Vec<(String, Region)>,
    default: Option<Region>,
}

impl RegionMap {
    pub(crate) fn insert(&mut self, host: String, region: Region) {
        let host = host.to_ascii_lowercase();
        match self.by_host.iter_mut().find(|(h, _)| *h == host) {
            Some(entry) => entry.1 = region,
            None => self.by_host.push((host, region)),
        }
    }

    pub(crate) fn set_default(&mut self, region: Region) {
        self.default = Some(region);
    }

    pub(crate) fn resolve(&self, host: &str, port: Option<u16>) -> Region {
        if let Some(port) = port {
            let mut digits = [0u8; 5];
            let port = port_text(port, &mut digits);
            let with_port = self.by_host.iter().find(|(key, _)| {
                key.len() == host.len() + 1 + port.len()
                    && key.as_bytes()[..host.len()].eq_ignore_ascii_case(host.as_bytes())
                    && key.as_bytes()[host.len()] == b':'
                    && key.as_bytes()[host.len() + 1..] == *port
            });
            if let Some((_, r)) = with_port {
                return r.clone();
            }
        }
        if let Some((_, r)) = self
            .by_host
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(host))
        {
            return r.clone();
        }
        let region = Region::from_host(host);
        match &self.default {
            Some(default) if region == Region::UNKNOWN => default.clone(),
            _ => region,
        }
    }
}

/// `port` in decimal, as `format!("{port}")` writes it, in `buf`.
pub(crate) fn port_text(port: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut n = port;
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}
