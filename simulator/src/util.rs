//! Small helpers: request ids, HTTP dates, word counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        splitmix64(nanos ^ u64::from(std::process::id()).rotate_left(32))
    })
}

fn next_pair() -> (u64, u64) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = splitmix64(seed() ^ n.wrapping_mul(2));
    let lo = splitmix64(hi ^ n.wrapping_mul(2).wrapping_add(1));
    (hi, lo)
}

/// A fresh UUID-shaped id (8-4-4-4-12 lowercase hex, version 4 layout).
pub(crate) fn request_id() -> String {
    let (hi, lo) = next_pair();
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// A fresh OpenAI-style completion id, `chatcmpl-` and 24 hex digits.
pub(crate) fn completion_id() -> String {
    let (hi, lo) = next_pair();
    format!("chatcmpl-{:016x}{:08x}", hi, lo >> 32)
}

/// Formats unix seconds as an RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
/// Seconds past 9999-12-31T23:59:59Z are clamped to it.
pub(crate) fn http_date(unix_secs: u64) -> String {
    const MAX: u64 = 253_402_300_799;
    httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(unix_secs.min(MAX)))
}

/// Unix seconds `secs_from_now` ahead, rounded up to a whole second.
pub(crate) fn unix_secs_from_now(secs_from_now: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let base = now.as_secs() + u64::from(now.subsec_nanos() > 0);
    base.saturating_add(secs_from_now)
}

/// Whitespace-separated words.
pub(crate) fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_767_225_599), "Wed, 31 Dec 2025 23:59:59 GMT");
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert!(completion_id().starts_with("chatcmpl-"));
    }
}
