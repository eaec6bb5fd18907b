//! Rate-limit facts from response headers: `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//! `X-RateLimit-Reset` (seconds until the window resets) and `Retry-After` (seconds or an
//! HTTP date). Pure functions over header values.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The `X-RateLimit-*` headers read, by slot.
const RATE_LIMIT_NAMES: [&str; 4] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-model",
];
const LIMIT: usize = 0;
const REMAINING: usize = 1;
const RESET: usize = 2;
const MODEL: usize = 3;
const RETRY_AFTER: usize = 4;

/// What the rate-limit headers of one response said. Absent or unreadable headers are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: requests allowed per window for this model.
    pub limit: Option<i64>,
    /// `X-RateLimit-Remaining`: requests left in the window (can be negative).
    pub remaining: Option<i64>,
    /// `X-RateLimit-Reset`: seconds until the window resets.
    pub reset_s: Option<f64>,
    /// `Retry-After`, as a delay from `now`.
    pub retry_after: Option<Duration>,
    /// `X-RateLimit-Model`: the model whose window these numbers describe (after a fallback,
    /// the one that served the call, not the one requested).
    pub model: Option<String>,
}

impl RateLimit {
    /// Reads the headers of a response received at `now`.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> RateLimit {
        // One pass over the headers, comparing names, instead of five hash lookups; the
        // first value of a name counts, as `HeaderMap::get` would have it.
        let mut values: [Option<&http::HeaderValue>; 5] = [None; 5];
        for (name, value) in headers {
            let slot = if *name == http::header::RETRY_AFTER {
                RETRY_AFTER
            } else if name.as_str().starts_with("x-ratelimit-") {
                match RATE_LIMIT_NAMES.iter().position(|n| *name == *n) {
                    Some(slot) => slot,
                    None => continue,
                }
            } else {
                continue;
            };
            values[slot].get_or_insert(value);
        }
        let text = |slot: usize| values[slot].and_then(|v| v.to_str().ok()).map(str::trim);
        RateLimit {
            limit: text(LIMIT).and_then(parse_int),
            remaining: text(REMAINING).and_then(parse_int),
            reset_s: text(RESET).and_then(parse_seconds),
            retry_after: text(RETRY_AFTER).and_then(|v| parse_retry_after(v, now)),
            model: text(MODEL)
                .filter(|m| !m.is_empty() && m.len() <= 128)
                .map(str::to_owned),
        }
    }

    /// Whether any rate-limit header was present.
    pub fn is_empty(&self) -> bool {
        *self == RateLimit::default()
    }
}

fn parse_int(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

fn parse_seconds(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0)
}

/// `Retry-After` per RFC 9110: a non-negative number of seconds, or an HTTP date (a date in
/// the past means "now", zero). Anything else is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Some(secs) = parse_seconds(value) {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_header_values_parse_without_panic(
            limit in "[ -~]{0,20}",
            remaining in "[ -~]{0,20}",
            reset in "[ -~]{0,20}",
            retry_after in "[ -~]{0,40}",
        ) {
            let mut h = HeaderMap::new();
            for (name, v) in [("x-ratelimit-limit", &limit), ("x-ratelimit-remaining", &remaining),
                ("x-ratelimit-reset", &reset), ("retry-after", &retry_after)] {
                if let Ok(v) = v.parse() {
                    h.insert(name, v);
                }
            }
            let _ = RateLimit::from_headers(&h, SystemTime::now());
        }

        #[test]
        fn one_pass_reads_what_lookups_by_name_read(
            headers in proptest::collection::vec((0usize..7, "[ -~]{0,8}|3|-2|1.5|gpt-4o"), 0..8),
        ) {
            let names = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                "retry-after", "x-ratelimit-model", "x-ratelimit-other", "content-type"];
            let mut h = HeaderMap::new();
            for (name, v) in &headers {
                if let Ok(v) = v.parse() {
                    h.append(names[*name], v);
                }
            }
            let now = SystemTime::now();
            let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
            let expected = RateLimit {
                limit: text("x-ratelimit-limit").and_then(parse_int),
                remaining: text("x-ratelimit-remaining").and_then(parse_int),
                reset_s: text("x-ratelimit-reset").and_then(parse_seconds),
                retry_after: text("retry-after").and_then(|v| parse_retry_after(v, now)),
                model: text("x-ratelimit-model")
                    .filter(|m| !m.is_empty() && m.len() <= 128)
                    .map(str::to_owned),
            };
            prop_assert_eq!(RateLimit::from_headers(&h, now), expected);
        }

        #[test]
        fn whole_seconds_are_exact(secs in 0u32..1_000_000) {
            prop_assert_eq!(
                parse_retry_after(&secs.to_string(), SystemTime::now()),
                Some(Duration::from_secs(u64::from(secs)))
            );
        }

        #[test]
        fn an_http_date_round_trips(secs in 0u64..100_000) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let date = httpdate::fmt_http_date(now + Duration::from_secs(secs));
            prop_assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn a_date_in_the_past_means_now_and_junk_means_nothing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for junk in ["", "-1", "NaN", "inf", "soon", "1e999"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn reads_the_rate_limit_headers() {
        use crate::ratelimit::RateLimit;
        use http::HeaderMap;
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", "30".parse().unwrap());
        h.insert("x-ratelimit-remaining", "-2".parse().unwrap());
        h.insert("x-ratelimit-reset", "17".parse().unwrap());
        h.insert("retry-after", "3".parse().unwrap());
        let rl = RateLimit::from_headers(&h, std::time::SystemTime::now());
        assert_eq!(
            (rl.limit, rl.remaining, rl.reset_s),
            (Some(30), Some(-2), Some(17.0))
        );
        assert_eq!(rl.retry_after, Some(std::time::Duration::from_secs(3)));
    }

    #[test]
    fn parses_retry_after_in_seconds_or_as_a_date() {
        use crate::ratelimit::parse_retry_after;
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_475); // Wed, 21 Oct 2015 07:27:55 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
