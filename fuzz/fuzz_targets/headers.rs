//! Rate-limit and Retry-After header parsing on arbitrary values: never a panic.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use llm_gateway_otel::fuzz::{parse_retry_after, RateLimit};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_retry_after(text, now);
    }
    let mut headers = http::HeaderMap::new();
    let names = ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"];
    for (name, value) in names.iter().zip(data.split(|b| *b == b'\n')) {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.insert(*name, v);
        }
    }
    let _ = RateLimit::from_headers(&headers, now);
});
