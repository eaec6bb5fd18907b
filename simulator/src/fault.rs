//! Injectable faults and their textual header spec.

use std::fmt;

/// A fault the simulator answers one chat request with, instead of (or on top of) the
/// normal answer.
///
/// Faults are queued with [`Simulator::inject`](crate::Simulator::inject) /
/// [`Simulator::inject_for_model`](crate::Simulator::inject_for_model), or given per request
/// in the `x-simulator-fault` header using the textual spec understood by [`Fault::parse`]
/// (and produced by `Display`).
///
/// ```
/// use llm_gateway_simulator::Fault;
/// assert_eq!(Fault::parse("429:7"), Some(Fault::RateLimited { retry_after_s: 7 }));
/// assert_eq!(Fault::Html(502).to_string(), "html:502");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A JSON error with the documented shape `{"error":{"code":N,"message":"..."}}`.
    /// A 429 also gets `Retry-After: 1` and `X-RateLimit-Remaining: 0`.
    Status(u16),
    /// 429 (documented shape) with `Retry-After: retry_after_s`, `X-RateLimit-Remaining: 0`
    /// and `X-RateLimit-Reset: retry_after_s`.
    RateLimited {
        /// Seconds sent in `Retry-After` and `X-RateLimit-Reset`.
        retry_after_s: u64,
    },
    /// 429 whose `Retry-After` is an RFC 9110 HTTP date (IMF-fixdate) `secs_from_now` ahead.
    RetryAfterDate {
        /// How far ahead of now the date lies, in seconds.
        secs_from_now: u64,
    },
    /// The flat error shape:
    /// `{"request_id":..,"message":..,"code":"invalid_request","metadata":{"errors":[..]}}`.
    Flat(u16),
    /// 401 with the auth shape:
    /// `{"error":"Authentication error, API token missing/invalid","status":"error","request_id":..}`.
    Auth,
    /// A load balancer's HTML error page (`text/html`, no request id).
    Html(u16),
    /// An empty body.
    Empty(u16),
    /// `text/plain` "upstream connect error or disconnect/reset before headers".
    PlainText(u16),
    /// Non-UTF-8 bytes labelled `application/json`.
    Garbage(u16),
    /// 200 with a valid success body cut in the middle.
    TruncatedJson,
    /// A documented-shape error whose message echoes the received `Authorization` header
    /// verbatim (`"Invalid API key: <value>"`): a hostile gateway, for redaction tests.
    EchoKey(u16),
    /// Wait `delay_ms` before sending the headers, then answer normally.
    Slow {
        /// Delay before the response headers, in milliseconds.
        delay_ms: u64,
    },
    /// The normal answer, but pause `delay_ms` after the first `after_bytes` body bytes.
    Stall {
        /// Body bytes sent before the pause.
        after_bytes: usize,
        /// Length of the pause, in milliseconds.
        delay_ms: u64,
    },
    /// SSE: send `after_chunks` chunk events, then abort the connection (no terminating
    /// chunk, the client's body read fails).
    BrokenStream {
        /// Content chunk events sent before the abort.
        after_chunks: usize,
    },
    /// SSE: all chunks including the usage chunk, then a clean end without `data: [DONE]`.
    NoDone,
    /// A normal 200 without usage: a stream ends with `data: [DONE]` but no usage chunk (what
    /// a stream asked without usage looks like), a JSON answer has no `usage` object.
    NoUsage,
    /// 200 success whose message content is `content_bytes` long (`a`..`z` repeated),
    /// streamed in 64 KiB frames.
    Big {
        /// Length of the message content, in bytes.
        content_bytes: usize,
    },
    /// 500 in the documented shape after `json-repair` post-processing: the model's output
    /// could not be repaired into valid JSON (the gateway's answer to
    /// `"post_processing_steps":[{"type":"json-repair"}]` when repair fails).
    JsonRepairFailed,
    /// Answer successfully, served by the first model of the request's `fallbacks` array
    /// (the top-level `model` names it). Without a usable fallback: a normal answer.
    Fallback,
}

fn status(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|n| (100..=599).contains(n))
}

impl Fault {
    /// Parses the textual spec used in the `x-simulator-fault` request header.
    ///
    /// Accepted: `429`, `429:<secs>`, `429-date:<secs>`, `<status>`, `flat:<status>`, `auth`,
    /// `html:<status>`, `empty:<status>`, `text:<status>`, `garbage:<status>`, `truncated`,
    /// `echo-key:<status>`, `slow:<ms>`, `stall:<bytes>:<ms>`, `broken-stream:<chunks>`,
    /// `no-done`, `no-usage`, `big:<bytes>`, `fallback`, `json-repair-failed`. Statuses must lie in 100..=599. Keywords are
    /// case-insensitive, surrounding whitespace is ignored; anything else gives `None`.
    ///
    /// ```
    /// use llm_gateway_simulator::Fault;
    /// assert_eq!(Fault::parse("503"), Some(Fault::Status(503)));
    /// assert_eq!(Fault::parse("stall:10:50"), Some(Fault::Stall { after_bytes: 10, delay_ms: 50 }));
    /// assert_eq!(Fault::parse("nonsense"), None);
    /// ```
    pub fn parse(spec: &str) -> Option<Fault> {
        let spec = spec.trim().to_ascii_lowercase();
        let mut parts = spec.split(':');
        let head = parts.next()?;
        let args: Vec<&str> = parts.collect();
        let num = |i: usize| args.get(i).and_then(|s| s.trim().parse::<u64>().ok());
        let usize_arg = |i: usize| args.get(i).and_then(|s| s.trim().parse::<usize>().ok());
        let st = || {
            if args.len() == 1 {
                status(args[0].trim())
            } else {
                None
            }
        };
        let fault = match (head, args.len()) {
            ("auth", 0) => Fault::Auth,
            ("truncated", 0) => Fault::TruncatedJson,
            ("no-done", 0) => Fault::NoDone,
            ("no-usage", 0) => Fault::NoUsage,
            ("fallback", 0) => Fault::Fallback,
            ("json-repair-failed", 0) => Fault::JsonRepairFailed,
            ("429", 1) => Fault::RateLimited {
                retry_after_s: num(0)?,
            },
            ("429-date", 1) => Fault::RetryAfterDate {
                secs_from_now: num(0)?,
            },
            ("flat", _) => Fault::Flat(st()?),
            ("html", _) => Fault::Html(st()?),
            ("empty", _) => Fault::Empty(st()?),
            ("text", _) => Fault::PlainText(st()?),
            ("garbage", _) => Fault::Garbage(st()?),
            ("echo-key", _) => Fault::EchoKey(st()?),
            ("slow", 1) => Fault::Slow { delay_ms: num(0)? },
            ("stall", 2) => Fault::Stall {
                after_bytes: usize_arg(0)?,
                delay_ms: num(1)?,
            },
            ("broken-stream", 1) => Fault::BrokenStream {
                after_chunks: usize_arg(0)?,
            },
            ("big", 1) => Fault::Big {
                content_bytes: usize_arg(0)?,
            },
            (code, 0) => Fault::Status(status(code)?),
            _ => return None,
        };
        Some(fault)
    }
}

/// Formats the fault as the header spec [`Fault::parse`] reads back.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(s) => write!(f, "{s}"),
            Fault::RateLimited { retry_after_s } => write!(f, "429:{retry_after_s}"),
            Fault::RetryAfterDate { secs_from_now } => write!(f, "429-date:{secs_from_now}"),
            Fault::Flat(s) => write!(f, "flat:{s}"),
            Fault::Auth => f.write_str("auth"),
            Fault::Html(s) => write!(f, "html:{s}"),
            Fault::Empty(s) => write!(f, "empty:{s}"),
            Fault::PlainText(s) => write!(f, "text:{s}"),
            Fault::Garbage(s) => write!(f, "garbage:{s}"),
            Fault::TruncatedJson => f.write_str("truncated"),
            Fault::EchoKey(s) => write!(f, "echo-key:{s}"),
            Fault::Slow { delay_ms } => write!(f, "slow:{delay_ms}"),
            Fault::Stall {
                after_bytes,
                delay_ms,
            } => write!(f, "stall:{after_bytes}:{delay_ms}"),
            Fault::BrokenStream { after_chunks } => write!(f, "broken-stream:{after_chunks}"),
            Fault::NoDone => f.write_str("no-done"),
            Fault::NoUsage => f.write_str("no-usage"),
            Fault::Big { content_bytes } => write!(f, "big:{content_bytes}"),
            Fault::Fallback => f.write_str("fallback"),
            Fault::JsonRepairFailed => f.write_str("json-repair-failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spec() {
        let cases = [
            ("429", Fault::Status(429)),
            ("429:3", Fault::RateLimited { retry_after_s: 3 }),
            ("429-date:30", Fault::RetryAfterDate { secs_from_now: 30 }),
            ("500", Fault::Status(500)),
            (" 503 ", Fault::Status(503)),
            ("flat:400", Fault::Flat(400)),
            ("auth", Fault::Auth),
            ("AUTH", Fault::Auth),
            ("html:502", Fault::Html(502)),
            ("empty:504", Fault::Empty(504)),
            ("text:503", Fault::PlainText(503)),
            ("garbage:500", Fault::Garbage(500)),
            ("truncated", Fault::TruncatedJson),
            ("echo-key:401", Fault::EchoKey(401)),
            ("slow:150", Fault::Slow { delay_ms: 150 }),
            (
                "stall:100:20",
                Fault::Stall {
                    after_bytes: 100,
                    delay_ms: 20,
                },
            ),
            ("broken-stream:2", Fault::BrokenStream { after_chunks: 2 }),
            ("no-done", Fault::NoDone),
            ("no-usage", Fault::NoUsage),
            (
                "big:1048576",
                Fault::Big {
                    content_bytes: 1_048_576,
                },
            ),
            ("fallback", Fault::Fallback),
            ("json-repair-failed", Fault::JsonRepairFailed),
        ];
        for (spec, want) in cases {
            assert_eq!(Fault::parse(spec), Some(want.clone()), "{spec}");
            assert_eq!(Fault::parse(&want.to_string()), Some(want), "{spec}");
        }
    }

    #[test]
    fn rejects_unknown_or_malformed_specs() {
        for spec in [
            "",
            "42",
            "600",
            "99999",
            "-1",
            "nonsense",
            "429:",
            "429:x",
            "429:1:2",
            "flat",
            "flat:abc",
            "flat:700",
            "auth:1",
            "slow",
            "slow:-5",
            "stall:1",
            "stall:1:2:3",
            "broken-stream",
            "big:many",
            "truncated:1",
            "html:502:1",
            "\u{0}\u{ff}",
            "::::",
        ] {
            assert_eq!(Fault::parse(spec), None, "{spec:?}");
        }
    }
}
