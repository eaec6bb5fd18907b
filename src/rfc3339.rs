//! Timestamps as the gateway's troubleshooting page writes them (a leaf: imports nothing
//! from the crate).

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T17:01:40.123Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_millis(1_445_412_475_123);
/// assert_eq!(llm_gateway_otel::export::rfc3339_utc(t), "2015-10-21T07:27:55.123Z");
/// ```
pub fn rfc3339_utc(time: std::time::SystemTime) -> String {
    Rfc3339(time).to_string()
}

/// Writes a time as [`rfc3339_utc`] does, without allocating (for log fields).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rfc3339(pub(crate) std::time::SystemTime);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self
            .0
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}
