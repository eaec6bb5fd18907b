//! The request body's facts (model, max_tokens, temperature, stream, the kinds of the fields
//! the gateway validates, json-repair and `fallback_config.retry`), read in one pass.
//!
//! Two readers give the same answer for every body:
//!
//! * [`serde_read`], the definition: `serde_json` into a struct of `Value`s and kinds.
//! * [`fast_read`], a validating scanner over the bytes that builds no JSON values. It answers
//!   only for the plain JSON nearly every request is (a UTF-8 object, no `\u` escape of a
//!   surrogate, no exponent, no escape in a top-level key, nesting under 100 levels, each
//!   described field at most once) and returns `None` for anything else, which then goes to
//!   [`serde_read`]. Malformed JSON also gets `None`, so `serde_json` alone decides what is
//!   not described. Scalars that are not plain (an escaped `model`, a fraction) are converted
//!   by `serde_json` from their own bytes, so numbers round exactly as before.
//!
//! Pure functions over bytes; the tests compare the two readers on generated bodies.

use serde::Deserialize;
use serde_json::Value;

use super::JsonKind;

/// What the body says, as [`RequestFacts`](super::RequestFacts) records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BodyRead {
    /// The body was a JSON object (and valid JSON).
    pub(crate) described: bool,
    pub(crate) model: Option<String>,
    pub(crate) model_kind: Option<JsonKind>,
    pub(crate) max_tokens: Option<i64>,
    pub(crate) max_tokens_kind: Option<JsonKind>,
    pub(crate) temperature: Option<f64>,
    pub(crate) stream: bool,
    pub(crate) messages: Option<JsonKind>,
    pub(crate) prompt: Option<JsonKind>,
    pub(crate) json_repair: bool,
    /// `fallback_config.retry` (true when absent); `None` when not described.
    pub(crate) gateway_retries: Option<bool>,
}

/// The facts of `body` (already cut to the described size).
pub(crate) fn read(body: &[u8]) -> BodyRead {
    fast_read(body).unwrap_or_else(|| serde_read(body))
}

// ---- the definition: serde_json ----

/// The facts as `serde_json` reads them. Only a JSON object describes a call: serde's derived
/// struct would also accept an array, reading `["a","b"]` as `model: "a"`.
pub(crate) fn serde_read(body: &[u8]) -> BodyRead {
    let wire = Some(body)
        .filter(|b| b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{'))
        .and_then(|b| serde_json::from_slice::<WireRequest>(b).ok());
    let Some(wire) = wire else {
        return BodyRead::default();
    };
    BodyRead {
        described: true,
        model: wire
            .model
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_owned),
        model_kind: wire.model.as_ref().map(JsonKind::of),
        max_tokens: wire.max_tokens.as_ref().and_then(Value::as_i64),
        max_tokens_kind: wire.max_tokens.as_ref().map(JsonKind::of),
        temperature: wire.temperature.as_ref().and_then(Value::as_f64),
        stream: wire
            .stream
            .as_ref()
            .and_then(Value::as_bool)
            .unwrap_or(false),
        messages: wire.messages.map(|k| k.0),
        prompt: wire.prompt.map(|k| k.0),
        json_repair: wire.post_processing_steps.as_ref().is_some_and(json_repair),
        gateway_retries: Some(wire.fallback_config.as_ref().is_none_or(gateway_retries)),
    }
}

/// Whether `post_processing_steps` asks for `json-repair`.
fn json_repair(steps: &Value) -> bool {
    steps.as_array().is_some_and(|steps| {
        steps.iter().any(|s| {
            s.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("json-repair"))
        })
    })
}

/// `fallback_config.retry`, true unless it is `false`.
fn gateway_retries(config: &Value) -> bool {
    config.get("retry").and_then(Value::as_bool).unwrap_or(true)
}

/// The top-level request fields we describe. Each is a `Value` so that a wrongly typed field
/// (the gateway answers 400 to it) costs the description of that field only; unknown fields,
/// such as the (possibly large) `messages`, are skipped without being copied.
#[derive(Deserialize, Default)]
struct WireRequest {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    temperature: Option<Value>,
    #[serde(default)]
    stream: Option<Value>,
    #[serde(default)]
    messages: Option<KindOnly>,
    #[serde(default)]
    prompt: Option<KindOnly>,
    #[serde(default)]
    post_processing_steps: Option<Value>,
    /// Read here so that the retry loop need not parse the body again.
    #[serde(default)]
    fallback_config: Option<Value>,
}

/// Deserializes any JSON value into its kind only: arrays and objects are walked with
/// `IgnoredAny`, so a large `messages` is skipped without being copied.
struct KindOnly(JsonKind);

impl<'de> Deserialize<'de> for KindOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KindOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Null))
            }
            fn visit_none<E>(self) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Null))
            }
            fn visit_bool<E>(self, _: bool) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Bool))
            }
            fn visit_i64<E>(self, _: i64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Integer))
            }
            fn visit_u64<E>(self, _: u64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Integer))
            }
            fn visit_f64<E>(self, _: f64) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::Number))
            }
            fn visit_str<E>(self, _: &str) -> Result<KindOnly, E> {
                Ok(KindOnly(JsonKind::String))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KindOnly, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(KindOnly(JsonKind::Array))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KindOnly, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(KindOnly(JsonKind::Object))
            }
        }
        d.deserialize_any(V)
    }
}

// ---- the fast reader ----

/// Deeper nesting than this goes to `serde_json` (whose limit is 128).
const MAX_FAST_DEPTH: u32 = 100;
/// Longer numbers go to `serde_json` (so that no number here can overflow an `f64`).
const MAX_FAST_NUMBER: usize = 300;

/// The described top-level fields, in [`WireRequest`]'s order.
const FIELDS: [&[u8]; 8] = [
    b"model",
    b"max_tokens",
    b"temperature",
    b"stream",
    b"messages",
    b"prompt",
    b"post_processing_steps",
    b"fallback_config",
];
const MODEL: usize = 0;
const MAX_TOKENS: usize = 1;
const TEMPERATURE: usize = 2;
const STREAM: usize = 3;
const MESSAGES: usize = 4;
const PROMPT: usize = 5;
const POST_PROCESSING_STEPS: usize = 6;
const FALLBACK_CONFIG: usize = 7;

/// A top-level value as scanned: its bytes, and for a string whether it has an escape.
#[derive(Clone, Copy)]
struct Scanned<'a> {
    bytes: &'a [u8],
    escaped: bool,
}

/// The facts of `body` without building JSON values, or `None` when the body is not in the
/// plain subset this reader answers for (see the module docs).
pub(crate) fn fast_read(body: &[u8]) -> Option<BodyRead> {
    // Valid UTF-8 everywhere: strings `serde_json` only skips are not checked by it, strings
    // it parses are; with this the difference cannot matter.
    std::str::from_utf8(body).ok()?;
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    s.byte(b'{')?;
    let mut fields: [Option<Scanned<'_>>; 8] = [None; 8];
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.byte(b'"')?;
            let key_start = s.i;
            if s.string()? {
                return None;
            }
            let key = &body[key_start..s.i - 1];
            s.ws();
            s.byte(b':')?;
            s.ws();
            let start = s.i;
            let escaped = s.value()?;
            let value = Scanned {
                bytes: &body[start..s.i],
                escaped,
            };
            if let Some(f) = FIELDS.iter().position(|f| *f == key) {
                // serde's derived struct rejects a duplicate field.
                if fields[f].replace(value).is_some() {
                    return None;
                }
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    if s.i != body.len() {
        return None;
    }
    facts_of(&fields)
}

/// The facts from the scanned top-level values (all valid JSON).
fn facts_of(fields: &[Option<Scanned<'_>>; 8]) -> Option<BodyRead> {
    // `null` is an absent field to serde's `Option`.
    let field = |f: usize| fields[f].filter(|v| v.bytes != b"null");
    let model = each(field(MODEL), Scalar::of)?;
    let max_tokens = each(field(MAX_TOKENS), Scalar::of)?;
    let temperature = each(field(TEMPERATURE), Scalar::of)?;
    let stream = field(STREAM).map(|v| v.bytes == b"true");
    let kind = |f: usize| each(field(f), kind_of);
    let json_repair = match field(POST_PROCESSING_STEPS) {
        Some(v) if v.bytes.first() == Some(&b'[') => json_repair(&value_of(v.bytes)?),
        _ => false,
    };
    let gateway_retries = match field(FALLBACK_CONFIG) {
        Some(v) if v.bytes.first() == Some(&b'{') => gateway_retries(&value_of(v.bytes)?),
        _ => true,
    };
    Some(BodyRead {
        described: true,
        model_kind: model.as_ref().map(|m| m.kind),
        model: model.and_then(|m| m.text),
        max_tokens_kind: max_tokens.as_ref().map(|m| m.kind),
        max_tokens: max_tokens.as_ref().and_then(|m| m.int),
        temperature: temperature.as_ref().and_then(|t| t.float),
        stream: stream.unwrap_or(false),
        messages: kind(MESSAGES)?,
        prompt: kind(PROMPT)?,
        json_repair,
        gateway_retries: Some(gateway_retries),
    })
}

/// `f` of a field: `Some(None)` when the field is absent, `None` when `f` failed.
fn each<T>(v: Option<Scanned<'_>>, f: impl FnOnce(Scanned<'_>) -> Option<T>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => f(v).map(Some),
    }
}

/// `serde_json`'s `Value` of valid JSON text, `None` when it refuses it (a number out of range,
/// a surrogate pair it rejects): then the whole body goes to [`serde_read`].
fn value_of(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// The kind of a top-level value, without copying a string.
fn kind_of(v: Scanned<'_>) -> Option<JsonKind> {
    match v.bytes.first() {
        Some(b'{') => Some(JsonKind::Object),
        Some(b'[') => Some(JsonKind::Array),
        Some(b't' | b'f') => Some(JsonKind::Bool),
        Some(b'n') => Some(JsonKind::Null),
        // Valid (checked), so `serde_json` reads it as a string too.
        Some(b'"') => Some(JsonKind::String),
        _ => Some(Scalar::of(v)?.kind),
    }
}

/// A top-level value as `Value::as_str`, `as_i64`, `as_f64` and [`JsonKind::of`] see it.
struct Scalar {
    kind: JsonKind,
    text: Option<String>,
    int: Option<i64>,
    float: Option<f64>,
}

impl Scalar {
    fn of(v: Scanned<'_>) -> Option<Scalar> {
        let plain = |kind| Scalar {
            kind,
            text: None,
            int: None,
            float: None,
        };
        Some(match v.bytes.first() {
            Some(b'{') => plain(JsonKind::Object),
            Some(b'[') => plain(JsonKind::Array),
            Some(b't' | b'f') => plain(JsonKind::Bool),
            Some(b'n') => plain(JsonKind::Null),
            // Valid UTF-8 (checked), without escapes: the text between the quotes.
            Some(b'"') if !v.escaped => Scalar {
                text: Some(
                    std::str::from_utf8(&v.bytes[1..v.bytes.len() - 1])
                        .ok()?
                        .to_owned(),
                ),
                ..plain(JsonKind::String)
            },
            _ => match (small_int(v.bytes), short_fraction(v.bytes)) {
                (Some(n), _) => Scalar {
                    int: Some(n),
                    float: Some(n as f64),
                    ..plain(JsonKind::Integer)
                },
                (None, Some(f)) => Scalar {
                    float: Some(f),
                    ..plain(JsonKind::Number)
                },
                (None, None) => {
                    let value = value_of(v.bytes)?;
                    Scalar {
                        kind: JsonKind::of(&value),
                        int: value.as_i64(),
                        float: value.as_f64(),
                        text: match value {
                            Value::String(s) => Some(s),
                            _ => None,
                        },
                    }
                }
            },
        })
    }
}

/// An integer of at most 18 digits (which `serde_json` reads as an `i64` or `u64` of the same
/// value), except `-0` (which it reads as the float `-0.0`).
fn small_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if negative && digits == b"0" {
        return None;
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    Some(if negative { -n } else { n })
}

/// A number with a fraction and at most 15 digits (`0.2`, `-12.75`), computed as `serde_json`
/// computes it: the significand (exact in an `f64`) divided by a power of ten (exact too),
/// one correctly rounded division.
fn short_fraction(bytes: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, text) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let dot = text.iter().position(|&b| b == b'.')?;
    let (int, frac) = (&text[..dot], &text[dot + 1..]);
    if int.is_empty()
        || frac.is_empty()
        || int.len() + frac.len() > 15
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return None;
    }
    let significand = int
        .iter()
        .chain(frac)
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let f = significand as f64 / POW10[frac.len()];
    Some(if negative { -f } else { f })
}

/// A validating JSON scanner over a byte slice.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// JSON whitespace (what `serde_json` skips: not form feed).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// One value, from its first byte (whitespace skipped) to just after it, containers
    /// without recursion. `Some(escaped)` when valid: whether a string value has an escape.
    fn value(&mut self) -> Option<bool> {
        // Bit `d` set: the container at depth `d` is an object.
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value starts here.
            let mut escaped = false;
            match self.next()? {
                b'{' => {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                    } else {
                        depth += 1;
                        if depth > MAX_FAST_DEPTH {
                            return None;
                        }
                        objects |= 1 << depth;
                        self.member_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                    } else {
                        depth += 1;
                        if depth > MAX_FAST_DEPTH {
                            return None;
                        }
                        objects &= !(1 << depth);
                        continue;
                    }
                }
                b'"' => escaped = self.string()?,
                b't' => self.rest_of(b"rue")?,
                b'f' => self.rest_of(b"alse")?,
                b'n' => self.rest_of(b"ull")?,
                b'-' | b'0'..=b'9' => {
                    self.i -= 1;
                    self.number()?;
                }
                _ => return None,
            }
            // After a value: close containers until one continues.
            loop {
                if depth == 0 {
                    return Some(escaped);
                }
                self.ws();
                let object = objects & (1 << depth) != 0;
                match self.next()? {
                    b',' => {
                        self.ws();
                        if object {
                            self.member_key()?;
                        }
                        break;
                    }
                    b'}' if object => depth -= 1,
                    b']' if !object => depth -= 1,
                    _ => return None,
                }
                escaped = false;
            }
        }
    }

    /// `"key"` `:` inside an object, up to the value.
    fn member_key(&mut self) -> Option<()> {
        self.byte(b'"')?;
        self.string()?;
        self.ws();
        self.byte(b':')?;
        self.ws();
        Some(())
    }

    fn rest_of(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)?`: a number with an exponent, or longer than
    /// [`MAX_FAST_NUMBER`], is left to `serde_json`.
    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let frac = self.i;
            self.digits();
            if self.i == frac {
                return None;
            }
        }
        match self.peek() {
            Some(b'e' | b'E') => None,
            _ => (self.i - start <= MAX_FAST_NUMBER).then_some(()),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    /// The rest of a string, after its opening quote, to just after its closing quote.
    /// `Some(escaped)` when valid; `None` for a control character, a bad escape, a `\u`
    /// escape of a surrogate (left to `serde_json`) or the end of input.
    fn string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            self.i = next_special(self.b, self.i)?;
            match self.next()? {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            let unit = hex.iter().try_fold(0u32, |acc, &h| {
                                Some(acc << 4 | char::from(h).to_digit(16)?)
                            })?;
                            if (0xD800..0xE000).contains(&unit) {
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                // A control character: serde_json rejects it in a string.
                _ => return None,
            }
        }
    }
}

/// The index of the first `"`, `\` or control character at or after `i`, eight bytes at a time.
fn next_special(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        // The lowest flagged byte of each test is exact (borrows only run upwards).
        let hits = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Both readers, and the same answer (temperature compared bit for bit).
    fn check(body: &[u8]) -> BodyRead {
        let slow = serde_read(body);
        let got = read(body);
        assert_eq!(got, slow, "body {:?}", String::from_utf8_lossy(body));
        assert_eq!(
            got.temperature.map(f64::to_bits),
            slow.temperature.map(f64::to_bits)
        );
        got
    }

    #[test]
    fn a_plain_chat_request_is_read_without_serde() {
        let body = br#"{"model":"claude-sonnet-4-6","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one sentence."}],"max_tokens":1000,"temperature":0.2,"stream":false}"#;
        let fast = fast_read(body).expect("plain JSON");
        assert_eq!(fast, serde_read(body));
        assert_eq!(fast.model.as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(fast.messages, Some(JsonKind::Array));
        assert_eq!(
            (fast.max_tokens, fast.temperature, fast.stream),
            (Some(1000), Some(0.2), false)
        );
    }

    #[test]
    fn edge_cases_agree() {
        for body in [
            "",
            "   ",
            "{}",
            " \t\r\n{ } \n",
            "\x0c{}",
            "{}\x0c",
            "[]",
            r#"["gpt-4o", 5]"#,
            r#"{"model":null,"messages":null,"prompt":null,"stream":null}"#,
            r#"{"model":"a","model":"b"}"#,
            r#"{"other":1,"other":2,"model":"x"}"#,
            r#"{"model":"a\"b","max_tokens":-0,"temperature":-0}"#,
            r#"{"model":"\u00e9\ud83d\ude00","max_tokens":1e3,"temperature":1E-1}"#,
            r#"{"model":"\ud800"}"#,
            r#"{"messages":["\ud800"]}"#,
            r#"{"messages":"\udc00x"}"#,
            r#"{"mod\u0065l":"x"}"#,
            r#"{"max_tokens":99999999999999999999,"temperature":123456789012345678901234567890}"#,
            r#"{"max_tokens":-9223372036854775808,"temperature":18446744073709551615}"#,
            r#"{"max_tokens":1.0,"temperature":true,"stream":"true"}"#,
            r#"{"max_tokens":01}"#,
            r#"{"max_tokens":1.}"#,
            r#"{"max_tokens":-}"#,
            r#"{"max_tokens":1e999}"#,
            r#"{"messages":[1e999]}"#,
            r#"{"x":[1e999]}"#,
            r#"{"messages":[1,]}"#,
            r#"{"messages":{"a":1,}}"#,
            r#"{"messages":{"a" 1}}"#,
            r#"{"messages":[tru]}"#,
            r#"{"model":"tab	in"}"#,
            r#"{"post_processing_steps":[{"type":"JSON-Repair"}]}"#,
            r#"{"post_processing_steps":[{"type":"json-repair","type":"x"}]}"#,
            r#"{"post_processing_steps":{"type":"json-repair"}}"#,
            r#"{"post_processing_steps":[{"type":"json\u002drepair"}]}"#,
            r#"{"fallback_config":{"retry":false}}"#,
            r#"{"fallback_config":{"retry":false,"retry":true}}"#,
            r#"{"fallback_config":{"retry":"false"}}"#,
            r#"{"fallback_config":[{"retry":false}]}"#,
            r#"{"fallback_config":null}"#,
            r#"{"model":"gpt-4o"} x"#,
            r#"{"model":"gpt-4o""#,
            r#"{"model":"gpt-4o",}"#,
        ] {
            check(body.as_bytes());
        }
        check(b"{\"x\":\"\xff\"}");
        check(b"{\"model\":\"caf\xc3\xa9\"}");
        check(b"{\"model\":\"caf\xc3\"}");
    }

    #[test]
    fn deep_nesting_agrees() {
        for depth in [1, 99, 100, 101, 126, 127, 128, 129, 200] {
            for key in ["messages", "model", "other", "fallback_config"] {
                let body = format!(r#"{{"{key}":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
                check(body.as_bytes());
                let body = format!(
                    r#"{{"{key}":{}1{}}}"#,
                    r#"{"a":"#.repeat(depth),
                    "}".repeat(depth)
                );
                check(body.as_bytes());
            }
        }
    }

    #[test]
    fn long_numbers_agree() {
        for len in [18, 19, 20, 299, 300, 301, 309, 310, 400] {
            for key in ["max_tokens", "temperature", "messages", "other"] {
                let digits = "9".repeat(len);
                check(format!(r#"{{"{key}":{digits}}}"#).as_bytes());
                check(format!(r#"{{"{key}":-{digits}}}"#).as_bytes());
                check(format!(r#"{{"{key}":0.{digits}}}"#).as_bytes());
            }
        }
    }

    proptest! {
        #[test]
        fn short_fractions_read_as_serde_reads_them(
            number in "-?(0|[1-9][0-9]{0,14})\\.[0-9]{1,15}",
        ) {
            check(format!(r#"{{"temperature":{number},"max_tokens":{number}}}"#).as_bytes());
        }
    }

    #[test]
    fn next_special_finds_the_first_stop() {
        let text = b"abcdefghijklmnopqrstu\"vwxyz\\";
        for start in 0..text.len() {
            let expected = text[start..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map(|p| start + p);
            assert_eq!(next_special(text, start), expected);
        }
        for c in 0u8..=255 {
            let mut text = [b'a'; 20];
            text[11] = c;
            let special = c == b'"' || c == b'\\' || c < 0x20;
            assert_eq!(next_special(&text, 0), special.then_some(11), "{c}");
        }
    }

    /// JSON text of a value: any value, with strings that exercise escapes and UTF-8.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "(json-repair|JSON-REPAIR|gpt-4o|[a-z\"\\\\/\n\t\u{e9}\u{1F600}]{0,12})"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("(type|retry|role|content|model|[a-z]{1,6})", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A request-like body as text: described and other fields in any order, sometimes
    /// repeated, with random spacing and number spellings serde would not write.
    fn body_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("model"),
            Just("max_tokens"),
            Just("temperature"),
            Just("stream"),
            Just("messages"),
            Just("prompt"),
            Just("post_processing_steps"),
            Just("fallback_config"),
            Just("other"),
        ];
        let raw_value = prop_oneof![
            json_value().prop_map(|v| v.to_string()),
            "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
            Just(r#""\ud83d\ude00""#.to_owned()),
            Just(r#""\u00e9""#.to_owned()),
            Just(r#"[{"type":"json-repair"}]"#.to_owned()),
            Just(r#"{"retry":false}"#.to_owned()),
        ];
        let ws = "[ \t\r\n]{0,2}";
        prop::collection::vec((key, raw_value, ws), 0..6).prop_map(|members| {
            let inner: Vec<String> = members
                .into_iter()
                .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{{{}}}", inner.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_bodies_read_the_same(body in body_text()) {
            check(body.as_bytes());
        }

        #[test]
        fn mutated_bodies_read_the_same(
            body in body_text(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0u8..3,
        ) {
            let mut bytes = body.into_bytes();
            let at = at.index(bytes.len() + 1);
            match how {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
            check(&bytes);
        }

        #[test]
        fn arbitrary_bytes_read_the_same(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            check(&bytes);
        }
    }
}
