//! A push (streaming) JSON field picker.
//!
//! [`JsonPicker`] is a resumable, byte-level JSON tokenizer that is fed a response body chunk by
//! chunk (any split: mid-escape, mid-number, mid-UTF-8, mid-literal) and picks a handful of
//! fields out of it (see [`BodyFacts`]) without copying the body:
//!
//! * strings that are not wanted (nearly all of a body: `content`, keys of uninteresting
//!   objects) are skipped with `memchr2(b'"', b'\\', ..)`, never copied;
//! * wanted strings are decoded (escapes, `\uXXXX`, surrogate pairs) into a fixed 256-byte
//!   buffer and kept cut at a UTF-8 character boundary;
//! * nesting is tracked with a bit per level (object or array) plus a small fixed stack of
//!   path contexts for the first [`MAX_PICK_DEPTH`] levels; there is no recursion.
//!
//! Memory does not grow with the body: the parser state is a fixed-size struct, plus a nesting
//! bitset that only exists past 64 levels and is capped at [`MAX_NESTING`] levels (8 KiB), plus
//! the picked facts themselves (a few strings of at most [`MAX_STRING_BYTES`] bytes each, at
//! most [`MAX_FINISH_REASONS`] finish reasons).
//!
//! Leniency (where this differs from a strict validator such as `serde_json`): raw control
//! characters and invalid UTF-8 inside strings are accepted (invalid UTF-8 in a picked value
//! becomes U+FFFD), and lone surrogate escapes are accepted (decoded as U+FFFD).

use memchr::memchr2;

use crate::outcome::Usage;
use crate::outcome::MAX_FINISH_REASONS;
pub use crate::outcome::{BodyFacts, JsonStatus};

/// Longest string value kept, in bytes (longer values are cut at a UTF-8 char boundary).
pub const MAX_STRING_BYTES: usize = 256;
/// Containers nested deeper than this are scanned but nothing inside them is picked.
pub const MAX_PICK_DEPTH: usize = 64;
/// Nesting deeper than this makes the document [`JsonStatus::Malformed`] (bounds the nesting
/// bitset to 8 KiB).
pub const MAX_NESTING: usize = 65_536;

/// Keys longer than this cannot be wanted ones (the longest wanted key has 27 bytes).
const MAX_KEY_BYTES: usize = 32;
/// Number text longer than this is validated but not used.
const MAX_NUMBER_BYTES: usize = 40;
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What the tokenizer's state does with the bytes at the current position.
enum Run {
    /// Nothing more is read from this chunk.
    Stop,
    /// Taken up to this position.
    To(usize),
    /// One byte goes through the tokenizer.
    OneByte,
}

/// The path context of a container: which keys (or elements) in it are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Other,
    Top,
    Usage,
    Details,
    CacheCreation,
    Request,
    Choices,
    Choice,
    Error,
}

/// What the value about to be parsed is, as far as picking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    None,
    Root,
    RequestId,
    Id,
    Model,
    Usage,
    Request,
    RequestModel,
    Choices,
    Choice,
    FinishReason,
    Error,
    ErrorCode,
    ErrorMessage,
    FlatCode,
    FlatMessage,
    Status,
    LlmStatus,
    ResponseTime,
    InputTokens,
    PromptTokens,
    OutputTokens,
    CompletionTokens,
    TotalTokens,
    CacheReadInputTokens,
    CacheCreationInputTokens,
    PromptTokensDetails,
    CachedTokens,
    CacheCreation,
    Ephemeral5m,
    Ephemeral1h,
}

impl Slot {
    /// A key in an object of context `ctx`.
    fn for_key(ctx: Ctx, key: &[u8]) -> Slot {
        match ctx {
            Ctx::Top => match key {
                b"request_id" => Slot::RequestId,
                b"id" => Slot::Id,
                b"model" => Slot::Model,
                b"usage" => Slot::Usage,
                b"request" => Slot::Request,
                b"choices" => Slot::Choices,
                b"error" => Slot::Error,
                b"code" => Slot::FlatCode,
                b"message" => Slot::FlatMessage,
                b"status" => Slot::Status,
                b"llm_status_code" => Slot::LlmStatus,
                b"response_time" => Slot::ResponseTime,
                _ => Slot::None,
            },
            Ctx::Usage => match key {
                b"input_tokens" => Slot::InputTokens,
                b"prompt_tokens" => Slot::PromptTokens,
                b"output_tokens" => Slot::OutputTokens,
                b"completion_tokens" => Slot::CompletionTokens,
                b"total_tokens" => Slot::TotalTokens,
                b"cache_read_input_tokens" => Slot::CacheReadInputTokens,
                b"cache_creation_input_tokens" => Slot::CacheCreationInputTokens,
                b"prompt_tokens_details" => Slot::PromptTokensDetails,
                b"cache_creation" => Slot::CacheCreation,
                _ => Slot::None,
            },
            Ctx::Details => match key {
                b"cached_tokens" => Slot::CachedTokens,
                _ => Slot::None,
            },
            Ctx::CacheCreation => match key {
                b"ephemeral_5m_input_tokens" => Slot::Ephemeral5m,
                b"ephemeral_1h_input_tokens" => Slot::Ephemeral1h,
                _ => Slot::None,
            },
            Ctx::Request => match key {
                b"model" => Slot::RequestModel,
                _ => Slot::None,
            },
            Ctx::Choice => match key {
                b"finish_reason" => Slot::FinishReason,
                _ => Slot::None,
            },
            Ctx::Error => match key {
                b"code" => Slot::ErrorCode,
                b"message" => Slot::ErrorMessage,
                _ => Slot::None,
            },
            Ctx::Other | Ctx::Choices => Slot::None,
        }
    }

    /// The context of an object that is this slot's value.
    fn object_ctx(self) -> Ctx {
        match self {
            Slot::Root => Ctx::Top,
            Slot::Usage => Ctx::Usage,
            Slot::PromptTokensDetails => Ctx::Details,
            Slot::CacheCreation => Ctx::CacheCreation,
            Slot::Request => Ctx::Request,
            Slot::Choice => Ctx::Choice,
            Slot::Error => Ctx::Error,
            _ => Ctx::Other,
        }
    }

    /// The context of an array that is this slot's value.
    fn array_ctx(self) -> Ctx {
        match self {
            Slot::Choices => Ctx::Choices,
            _ => Ctx::Other,
        }
    }

    /// The slot of each element of an array of context `ctx`.
    fn element(ctx: Ctx) -> Slot {
        match ctx {
            Ctx::Choices => Slot::Choice,
            _ => Slot::None,
        }
    }

    /// Slots kept as text, whether the value is a string or a number.
    fn is_text(self) -> bool {
        matches!(
            self,
            Slot::RequestId
                | Slot::Id
                | Slot::Model
                | Slot::RequestModel
                | Slot::ErrorCode
                | Slot::ErrorMessage
                | Slot::FlatCode
                | Slot::FlatMessage
                | Slot::Status
        )
    }

    fn wants_string(self) -> bool {
        self.is_text() || matches!(self, Slot::FinishReason | Slot::Error)
    }

    fn wants_number(self) -> bool {
        self.is_text()
            || matches!(
                self,
                Slot::LlmStatus
                    | Slot::ResponseTime
                    | Slot::InputTokens
                    | Slot::PromptTokens
                    | Slot::OutputTokens
                    | Slot::CompletionTokens
                    | Slot::TotalTokens
                    | Slot::CacheReadInputTokens
                    | Slot::CacheCreationInputTokens
                    | Slot::CachedTokens
                    | Slot::Ephemeral5m
                    | Slot::Ephemeral1h
            )
    }
}

/// The states of the number grammar `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

enum NumStep {
    More(Num),
    /// The byte is not part of the number, which is complete.
    End,
    /// The byte is not part of the number, which is incomplete.
    Invalid,
}

impl Num {
    fn terminal(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
    }

    fn step(self, b: u8) -> NumStep {
        let digit = b.is_ascii_digit();
        let next = match (self, b) {
            (Num::Minus, b'0') => Num::Zero,
            (Num::Minus | Num::Int, _) if digit => Num::Int,
            (Num::Zero | Num::Int, b'.') => Num::Dot,
            (Num::Dot | Num::Frac, _) if digit => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
            (Num::Exp, b'+' | b'-') => Num::ExpSign,
            (Num::Exp | Num::ExpSign | Num::ExpDigits, _) if digit => Num::ExpDigits,
            _ if self.terminal() => return NumStep::End,
            _ => return NumStep::Invalid,
        };
        NumStep::More(next)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but (possibly) the start of a BOM seen yet.
    Start,
    /// `n` bytes of a UTF-8 BOM seen at the very start.
    Bom(u8),
    /// Expecting a value; `first` right after `[` (so `]` may close the array).
    Value {
        first: bool,
    },
    /// Expecting a key; `first` right after `{` (so `}` may close the object).
    Key {
        first: bool,
    },
    Colon,
    /// After a value inside a container: `,` or the closer.
    After,
    /// Inside a string (key or value).
    Str,
    /// After a backslash inside a string.
    Escape,
    /// Inside `\uXXXX`, `n` hex digits read.
    Unicode {
        n: u8,
        acc: u16,
    },
    Number(Num),
    Literal {
        word: &'static [u8],
        pos: u8,
    },
    /// The top-level value is complete; only whitespace may follow.
    Done,
    Malformed,
}

/// Values found whose precedence is resolved into [`BodyFacts`] as they arrive.
#[derive(Debug, Default, Clone)]
struct Raw {
    input: Option<u64>,
    prompt: Option<u64>,
    output: Option<u64>,
    completion: Option<u64>,
    total: Option<u64>,
    cached_tokens: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    ephemeral_5m: Option<u64>,
    ephemeral_1h: Option<u64>,
    error_code: Option<String>,
    flat_code: Option<String>,
    error_message: Option<String>,
    error_string: Option<String>,
    flat_message: Option<String>,
}

/// A resumable JSON tokenizer that picks `BodyFacts` out of a document fed in chunks.
#[derive(Debug, Clone)]
pub struct JsonPicker {
    state: State,
    /// Containers open.
    depth: usize,
    /// Bit `d` set: the container at depth `d` (0-based) is an object; depths below 64.
    kinds_lo: u64,
    /// The same for depths 64.. (allocated only for documents that deep).
    kinds_hi: Vec<u64>,
    /// Path context of the containers at depths below [`MAX_PICK_DEPTH`].
    ctxs: [Ctx; MAX_PICK_DEPTH],
    /// What the next value (or the current string/number) is.
    slot: Slot,
    /// The current string is a key.
    str_key: bool,
    /// The current string (or number) is being copied.
    capture: bool,
    /// The copy hit its cap; nothing more is appended.
    overflow: bool,
    /// A `\uD800`-`\uDBFF` escape waiting for its low surrogate.
    pending_high: Option<u16>,
    buf: [u8; MAX_STRING_BYTES],
    buf_len: usize,
    num_buf: [u8; MAX_NUMBER_BYTES],
    num_len: usize,
    bytes_seen: u64,
    facts: BodyFacts,
    raw: Raw,
    /// Fields the caller already knows and keeps (see [`JsonPicker::skipping_known`]).
    known: Known,
}

/// Top-level text fields whose values are not copied because the caller keeps the first one
/// it saw ([`BodyFacts::merge`]).
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    request_id: bool,
    id: bool,
    model: bool,
    request_model: bool,
}

impl Default for JsonPicker {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonPicker {
    /// A picker at the start of a document.
    pub fn new() -> Self {
        JsonPicker {
            state: State::Start,
            depth: 0,
            kinds_lo: 0,
            kinds_hi: Vec::new(),
            ctxs: [Ctx::Other; MAX_PICK_DEPTH],
            slot: Slot::Root,
            str_key: false,
            capture: false,
            overflow: false,
            pending_high: None,
            buf: [0; MAX_STRING_BYTES],
            buf_len: 0,
            num_buf: [0; MAX_NUMBER_BYTES],
            num_len: 0,
            bytes_seen: 0,
            facts: BodyFacts::default(),
            raw: Raw::default(),
            known: Known::default(),
        }
    }

    /// A picker that leaves `request_id`, `id`, `model` and `request.model` unset when
    /// `earlier` already has them: what `BodyFacts::merge` would keep anyway, without copying
    /// the same values out of every event of a stream.
    pub fn skipping_known(mut self, earlier: &BodyFacts) -> Self {
        self.known = Known {
            request_id: earlier.request_id.is_some(),
            id: earlier.id.is_some(),
            model: earlier.model.is_some(),
            request_model: earlier.request_model.is_some(),
        };
        self
    }

    /// Whether the value of `slot` is already known to the caller.
    fn is_known(&self, slot: Slot) -> bool {
        match slot {
            Slot::RequestId => self.known.request_id,
            Slot::Id => self.known.id,
            Slot::Model => self.known.model,
            Slot::RequestModel => self.known.request_model,
            _ => false,
        }
    }

    /// Feed the next chunk of the document (any split). After the document turned out
    /// malformed this only counts the bytes.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes_seen = self.bytes_seen.saturating_add(chunk.len() as u64);
        let mut i = 0;
        while i < chunk.len() {
            match self.run(chunk, i) {
                Run::Stop => return,
                Run::To(next) => i = next,
                Run::OneByte => {
                    if self.byte(chunk[i]) {
                        i += 1;
                    }
                }
            }
        }
    }

    /// The states that take more than one byte at a time from `chunk[i..]`: a string's
    /// plain run, a run of digits, what follows the document.
    #[inline]
    fn run(&mut self, chunk: &[u8], i: usize) -> Run {
        match self.state {
            State::Malformed => Run::Stop,
            State::Str => Run::To(self.string_run(chunk, i)),
            State::Done => {
                if chunk[i..].iter().any(|&b| !is_ws(b)) {
                    self.state = State::Malformed;
                }
                Run::Stop
            }
            // A run of digits keeps these states: taken in one step, not a round through the
            // tokenizer per digit.
            State::Number(Num::Int | Num::Frac | Num::ExpDigits) if chunk[i].is_ascii_digit() => {
                let run = chunk[i..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(chunk.len() - i);
                if self.capture {
                    for &b in &chunk[i..i + run] {
                        self.push_number_byte(b);
                    }
                }
                Run::To(i + run)
            }
            _ => Run::OneByte,
        }
    }

    /// One byte through the tokenizer; false when the byte was not taken and must be read
    /// again in the new state (the first byte of a document without a BOM, the byte that ends
    /// a number).
    #[inline]
    fn byte(&mut self, b: u8) -> bool {
        match self.state {
            State::Start => {
                if b == BOM[0] {
                    self.state = State::Bom(1);
                    return true;
                }
                self.state = State::Value { first: false };
                return false;
            }
            State::Bom(n) => self.bom_byte(n, b),
            State::Value { first } => self.value_byte(b, first),
            State::Key { first } => match b {
                b'"' => self.begin_string(true),
                b'}' if first => self.close(true),
                _ if is_ws(b) => {}
                _ => self.malformed(),
            },
            State::Colon => match b {
                b':' => self.state = State::Value { first: false },
                _ if is_ws(b) => {}
                _ => self.malformed(),
            },
            State::After => match b {
                b',' => self.next_member(),
                b'}' => self.close(true),
                b']' => self.close(false),
                _ if is_ws(b) => {}
                _ => self.malformed(),
            },
            State::Escape => self.escape_byte(b),
            State::Unicode { n, acc } => self.unicode_byte(n, acc, b),
            State::Number(num) => match num.step(b) {
                NumStep::More(next) => {
                    self.state = State::Number(next);
                    self.push_number_byte(b);
                }
                NumStep::End => {
                    // The byte belongs to what follows the number.
                    self.end_number();
                    return false;
                }
                NumStep::Invalid => self.malformed(),
            },
            State::Literal { word, pos } => self.literal_byte(word, pos, b),
            // Taken by `run` before a byte is.
            State::Str | State::Done | State::Malformed => {}
        }
        true
    }

    fn bom_byte(&mut self, n: u8, b: u8) {
        match BOM.get(usize::from(n)) {
            Some(&expected) if expected == b => {
                self.state = if usize::from(n) + 1 == BOM.len() {
                    State::Value { first: false }
                } else {
                    State::Bom(n + 1)
                };
            }
            _ => self.malformed(),
        }
    }

    fn unicode_byte(&mut self, n: u8, acc: u16, b: u8) {
        match hex_value(b) {
            Some(v) => {
                let acc = (acc << 4) | u16::from(v);
                if n >= 3 {
                    self.state = State::Str;
                    self.unicode_escape(acc);
                } else {
                    self.state = State::Unicode { n: n + 1, acc };
                }
            }
            None => self.malformed(),
        }
    }

    fn literal_byte(&mut self, word: &'static [u8], pos: u8, b: u8) {
        if word.get(usize::from(pos)) == Some(&b) {
            if usize::from(pos) + 1 >= word.len() {
                self.value_done();
            } else {
                self.state = State::Literal { word, pos: pos + 1 };
            }
        } else {
            self.malformed();
        }
    }

    /// The facts picked so far.
    pub fn facts(&self) -> &BodyFacts {
        &self.facts
    }

    /// The status as of the bytes fed so far.
    pub fn status(&self) -> JsonStatus {
        match self.state {
            State::Malformed => JsonStatus::Malformed,
            State::Done => JsonStatus::Complete,
            State::Number(num) if self.depth == 0 && num.terminal() => JsonStatus::Complete,
            _ => JsonStatus::Truncated,
        }
    }

    /// The end of the document: the facts and the final status.
    pub fn finish(mut self) -> (BodyFacts, JsonStatus) {
        if let State::Number(num) = self.state {
            if self.depth == 0 && num.terminal() {
                self.end_number();
            }
        }
        let status = self.status();
        (self.facts, status)
    }

    /// Bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.bytes_seen
    }

    /// Heap bytes held by the parser state (not counting the picked facts). Zero unless the
    /// document nests deeper than 64 levels; at most 16 KiB.
    #[doc(hidden)]
    pub fn state_heap_bytes(&self) -> usize {
        self.kinds_hi.capacity() * std::mem::size_of::<u64>()
    }

    /// Bytes in the string-copy buffer (capped at [`MAX_STRING_BYTES`]).
    #[doc(hidden)]
    pub fn copied_string_len(&self) -> usize {
        self.buf_len
    }

    fn malformed(&mut self) {
        self.state = State::Malformed;
    }

    fn value_done(&mut self) {
        self.state = if self.depth == 0 {
            State::Done
        } else {
            State::After
        };
    }

    fn cur_ctx(&self) -> Ctx {
        match self.depth.checked_sub(1) {
            Some(d) => self.ctxs.get(d).copied().unwrap_or(Ctx::Other),
            None => Ctx::Other,
        }
    }

    fn is_object_at(&self, d: usize) -> bool {
        let word = if d < 64 {
            self.kinds_lo
        } else {
            self.kinds_hi.get(d / 64 - 1).copied().unwrap_or(0)
        };
        word & (1u64 << (d % 64)) != 0
    }

    fn push(&mut self, object: bool, ctx: Ctx) -> bool {
        let d = self.depth;
        if d >= MAX_NESTING {
            self.malformed();
            return false;
        }
        let bit = 1u64 << (d % 64);
        let word = if d < 64 {
            &mut self.kinds_lo
        } else {
            let idx = d / 64 - 1;
            if idx >= self.kinds_hi.len() {
                self.kinds_hi.resize(idx + 1, 0);
            }
            match self.kinds_hi.get_mut(idx) {
                Some(w) => w,
                None => {
                    self.malformed();
                    return false;
                }
            }
        };
        if object {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        if let Some(c) = self.ctxs.get_mut(d) {
            *c = ctx;
        }
        self.depth = d + 1;
        true
    }

    fn close(&mut self, object: bool) {
        match self.depth.checked_sub(1) {
            Some(d) if self.is_object_at(d) == object => {
                self.depth = d;
                self.value_done();
            }
            _ => self.malformed(),
        }
    }

    /// After a `,` inside a container.
    fn next_member(&mut self) {
        match self.depth.checked_sub(1) {
            Some(d) if self.is_object_at(d) => self.state = State::Key { first: false },
            Some(_) => {
                self.slot = Slot::element(self.cur_ctx());
                self.state = State::Value { first: false };
            }
            None => self.malformed(),
        }
    }

    fn value_byte(&mut self, b: u8, first: bool) {
        match b {
            b'{' => {
                if self.push(true, self.slot.object_ctx()) {
                    self.state = State::Key { first: true };
                }
            }
            b'[' => {
                let ctx = self.slot.array_ctx();
                if self.push(false, ctx) {
                    self.slot = Slot::element(ctx);
                    self.state = State::Value { first: true };
                }
            }
            b']' if first => self.close(false),
            b'"' => self.begin_string(false),
            b'-' => self.begin_number(Num::Minus, b),
            b'0' => self.begin_number(Num::Zero, b),
            b'1'..=b'9' => self.begin_number(Num::Int, b),
            b't' => {
                self.state = State::Literal {
                    word: b"true",
                    pos: 1,
                }
            }
            b'f' => {
                self.state = State::Literal {
                    word: b"false",
                    pos: 1,
                }
            }
            b'n' => {
                self.state = State::Literal {
                    word: b"null",
                    pos: 1,
                }
            }
            _ if is_ws(b) => {}
            _ => self.malformed(),
        }
    }

    // ---- strings ----

    fn begin_string(&mut self, key: bool) {
        self.str_key = key;
        self.capture = if key {
            self.cur_ctx() != Ctx::Other
        } else {
            self.slot.wants_string() && !self.is_known(self.slot)
        };
        self.buf_len = 0;
        self.overflow = false;
        self.pending_high = None;
        self.state = State::Str;
    }

    /// Inside a string: jump to the next `"` or `\`, copying the run if wanted. In a string
    /// that is not copied, a one-character escape (`\n`, `\"`, ...) has no effect beyond
    /// being valid, so when both its bytes are in this chunk it is stepped over here and the
    /// scan goes on, instead of a round through the tokenizer per escape.
    fn string_run(&mut self, chunk: &[u8], mut i: usize) -> usize {
        loop {
            let rest = &chunk[i..];
            let Some(off) = find_quote_or_backslash(rest) else {
                if self.capture {
                    self.push_raw(rest);
                }
                return chunk.len();
            };
            if self.capture {
                self.push_raw(&rest[..off]);
            }
            if rest[off] == b'"' {
                self.end_string();
                return i + off + 1;
            }
            match rest.get(off + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') if !self.capture => {
                    i += off + 2;
                }
                _ => {
                    self.state = State::Escape;
                    return i + off + 1;
                }
            }
        }
    }

    fn end_string(&mut self) {
        if self.capture {
            self.flush_high();
        }
        if self.str_key {
            self.slot = if self.capture && !self.overflow {
                Slot::for_key(self.cur_ctx(), &self.buf[..self.buf_len])
            } else {
                Slot::None
            };
            self.state = State::Colon;
        } else {
            if self.capture {
                let text = finish_text(&self.buf[..self.buf_len], self.overflow);
                self.apply_text(text);
            }
            self.value_done();
        }
    }

    fn escape_byte(&mut self, b: u8) {
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.state = State::Unicode { n: 0, acc: 0 };
                return;
            }
            _ => return self.malformed(),
        };
        self.state = State::Str;
        if self.capture {
            self.push_char(c);
        }
    }

    fn unicode_escape(&mut self, unit: u16) {
        if !self.capture {
            return;
        }
        match unit {
            0xDC00..=0xDFFF => match self.pending_high.take() {
                Some(high) => {
                    let cp =
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                    self.push_encoded(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                None => self.push_encoded(char::REPLACEMENT_CHARACTER),
            },
            0xD800..=0xDBFF => {
                self.flush_high();
                self.pending_high = Some(unit);
            }
            _ => self
                .push_char(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn limit(&self) -> usize {
        if self.str_key {
            MAX_KEY_BYTES
        } else {
            MAX_STRING_BYTES
        }
    }

    /// A high surrogate not followed by a low one becomes U+FFFD.
    fn flush_high(&mut self) {
        if self.pending_high.take().is_some() {
            self.push_encoded(char::REPLACEMENT_CHARACTER);
        }
    }

    fn push_raw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.overflow {
            return;
        }
        self.flush_high();
        let room = self.limit().saturating_sub(self.buf_len);
        let take = room.min(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.buf_len..self.buf_len + take) {
            dst.copy_from_slice(&bytes[..take]);
            self.buf_len += take;
        }
        if take < bytes.len() {
            self.overflow = true;
        }
    }

    fn push_char(&mut self, c: char) {
        self.flush_high();
        self.push_encoded(c);
    }

    /// Append a whole character or, when it doesn't fit, nothing more at all.
    fn push_encoded(&mut self, c: char) {
        if self.overflow {
            return;
        }
        let mut tmp = [0u8; 4];
        let bytes = c.encode_utf8(&mut tmp).as_bytes();
        let end = self.buf_len + bytes.len();
        let limit = self.limit();
        match self.buf.get_mut(self.buf_len..end) {
            Some(dst) if end <= limit => {
                dst.copy_from_slice(bytes);
                self.buf_len = end;
            }
            _ => self.overflow = true,
        }
    }

    // ---- numbers ----

    fn begin_number(&mut self, num: Num, b: u8) {
        self.state = State::Number(num);
        self.capture = self.slot.wants_number();
        self.overflow = false;
        self.num_len = 0;
        self.push_number_byte(b);
    }

    fn push_number_byte(&mut self, b: u8) {
        if !self.capture || self.overflow {
            return;
        }
        match self.num_buf.get_mut(self.num_len) {
            Some(dst) => {
                *dst = b;
                self.num_len += 1;
            }
            None => self.overflow = true,
        }
    }

    fn end_number(&mut self) {
        if self.capture && !self.overflow {
            let buf = self.num_buf;
            self.apply_number(&buf[..self.num_len]);
        }
        self.value_done();
    }

    // ---- storing picked values ----

    fn apply_text(&mut self, text: String) {
        if self.is_known(self.slot) {
            return;
        }
        match self.slot {
            Slot::RequestId => self.facts.request_id = Some(text),
            Slot::Id => self.facts.id = Some(text),
            Slot::Model => self.facts.model = Some(text),
            Slot::RequestModel => self.facts.request_model = Some(text),
            Slot::FinishReason if self.facts.finish_reasons.len() < MAX_FINISH_REASONS => {
                self.facts.finish_reasons.push(text);
            }
            Slot::Status => self.facts.error.status = Some(text),
            Slot::Error => {
                self.raw.error_string = Some(text);
                self.sync_error();
            }
            Slot::ErrorCode => {
                self.raw.error_code = Some(text);
                self.sync_error();
            }
            Slot::FlatCode => {
                self.raw.flat_code = Some(text);
                self.sync_error();
            }
            Slot::ErrorMessage => {
                self.raw.error_message = Some(text);
                self.sync_error();
            }
            Slot::FlatMessage => {
                self.raw.flat_message = Some(text);
                self.sync_error();
            }
            _ => {}
        }
    }

    fn apply_number(&mut self, text: &[u8]) {
        if self.slot.is_text() {
            if self.is_known(self.slot) {
                return;
            }
            // Number text is ASCII and at most MAX_NUMBER_BYTES long.
            self.apply_text(String::from_utf8_lossy(text).into_owned());
            return;
        }
        match self.slot {
            Slot::LlmStatus => {
                if let Some(v) = parse_i64(text) {
                    self.facts.llm_status_code = Some(v);
                }
            }
            Slot::ResponseTime => {
                if let Some(v) = parse_u64(text) {
                    self.facts.response_time_ns = Some(v);
                }
            }
            slot => {
                let Some(v) = parse_u64(text) else { return };
                let raw = &mut self.raw;
                let field = match slot {
                    Slot::InputTokens => &mut raw.input,
                    Slot::PromptTokens => &mut raw.prompt,
                    Slot::OutputTokens => &mut raw.output,
                    Slot::CompletionTokens => &mut raw.completion,
                    Slot::TotalTokens => &mut raw.total,
                    Slot::CacheReadInputTokens => &mut raw.cache_read,
                    Slot::CacheCreationInputTokens => &mut raw.cache_creation,
                    Slot::CachedTokens => &mut raw.cached_tokens,
                    Slot::Ephemeral5m => &mut raw.ephemeral_5m,
                    Slot::Ephemeral1h => &mut raw.ephemeral_1h,
                    _ => return,
                };
                *field = Some(v);
                self.sync_usage();
            }
        }
    }

    /// The usage in the GenAI conventions' terms, where the input count includes the tokens
    /// read from and written to the prompt cache. OpenAI's `prompt_tokens_details.cached_tokens`
    /// is part of the input count already. Anthropic's `cache_read_input_tokens`,
    /// `cache_creation_input_tokens` and `cache_creation.*` are not (its `input_tokens` counts
    /// only the uncached rest), unless `total_tokens` says they are (it equals input + output):
    /// then they are added to the input count.
    fn sync_usage(&mut self) {
        let r = &self.raw;
        let ephemeral = match (r.ephemeral_5m, r.ephemeral_1h) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        let input = r.input.or(r.prompt);
        let output = r.output.or(r.completion);
        let cache_read = r.cached_tokens.or(r.cache_read);
        let cache_creation = r.cache_creation.or(ephemeral);
        let anthropic_cache =
            r.cached_tokens.is_none() && (r.cache_read.is_some() || cache_creation.is_some());
        let cached = cache_read
            .unwrap_or(0)
            .saturating_add(cache_creation.unwrap_or(0));
        let included = match (input, output, r.total) {
            (Some(i), o, Some(t)) => t == i.saturating_add(o.unwrap_or(0)),
            _ => false,
        };
        let input = match input {
            Some(i) if anthropic_cache && !included => Some(i.saturating_add(cached)),
            other => other,
        };
        self.facts.usage = Usage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: r.total,
            cache_read_input_tokens: cache_read,
            cache_creation_input_tokens: cache_creation,
        };
    }

    fn sync_error(&mut self) {
        let r = &self.raw;
        self.facts.error.code = r.error_code.clone().or_else(|| r.flat_code.clone());
        self.facts.error.message = r
            .error_message
            .clone()
            .or_else(|| r.error_string.clone())
            .or_else(|| r.flat_message.clone());
    }
}

/// Convenience over a whole buffer.
pub fn pick(bytes: &[u8]) -> (BodyFacts, JsonStatus) {
    let mut picker = JsonPicker::new();
    picker.feed(bytes);
    picker.finish()
}

/// Bytes looked at eight at a time before [`memchr2`] takes over: runs between escapes are
/// short in chat text, where `memchr2`'s setup costs more than the scan.
const SHORT_RUN: usize = 64;

/// The index of the first `"` or `\` in `bytes`.
fn find_quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while i + 8 <= bytes.len().min(SHORT_RUN) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // The lowest flagged byte is exact (borrows only run upwards).
        let hits =
            zero_byte(x ^ (ONES * u64::from(b'"'))) | zero_byte(x ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    memchr2(b'"', b'\\', &bytes[i..]).map(|off| i + off)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The copied bytes as text: a character cut by the cap is dropped, invalid UTF-8 becomes
/// U+FFFD, and the result is at most [`MAX_STRING_BYTES`] long.
fn finish_text(bytes: &[u8], cut: bool) -> String {
    let end = if cut {
        complete_utf8_prefix(bytes)
    } else {
        bytes.len()
    };
    let mut text = match std::str::from_utf8(&bytes[..end]) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(&bytes[..end]).into_owned(),
    };
    crate::text::truncate_string(&mut text, MAX_STRING_BYTES);
    text
}

/// Length of `bytes` without a trailing UTF-8 sequence that is cut short.
fn complete_utf8_prefix(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead byte
        }
        let need = match b {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if need > back { n - back } else { n };
    }
    n
}

fn parse_u64(text: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(text).ok()?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let f: f64 = s.parse().ok()?;
    // Integral floats such as `14.0` or `1e3` are accepted when exact.
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 {
        Some(f as u64)
    } else {
        None
    }
}

fn parse_i64(text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let f: f64 = s.parse().ok()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
        Some(f as i64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorFacts;

    /// Feeds `input` whole, split at every single point, and byte by byte; all must agree.
    fn check(input: &[u8]) -> (BodyFacts, JsonStatus) {
        let whole = pick(input);
        for k in 0..=input.len() {
            let mut p = JsonPicker::new();
            p.feed(&input[..k]);
            p.feed(&input[k..]);
            assert_eq!(p.bytes_seen(), input.len() as u64);
            assert_eq!(p.status(), whole.1, "status() at split {k}");
            assert_eq!(p.facts(), &whole.0, "facts() at split {k}");
            assert_eq!(p.finish(), whole, "split at {k}");
        }
        let mut p = JsonPicker::new();
        for b in input {
            p.feed(std::slice::from_ref(b));
        }
        assert_eq!(p.finish(), whole, "byte by byte");
        whole
    }

    /// Every proper prefix of a valid document (up to its last non-whitespace byte) is
    /// Truncated; from there on it is Complete. status() agrees with finish().
    fn check_prefixes(input: &[u8]) {
        let end = input.iter().rposition(|&b| !is_ws(b)).map_or(0, |p| p + 1);
        for k in 0..=input.len() {
            let mut p = JsonPicker::new();
            p.feed(&input[..k]);
            let during = p.status();
            let (_, status) = p.finish();
            let expected = if k < end {
                JsonStatus::Truncated
            } else {
                JsonStatus::Complete
            };
            assert_eq!(status, expected, "prefix {k}");
            assert_eq!(during, expected, "prefix {k}");
        }
    }

    const SUCCESS: &str = r#"{"request_id":"5d6c1a2b-uuid","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],
 "usage":{"input_tokens":14,"output_tokens":3,"total_tokens":17},
 "request":{"model":"claude-sonnet-4-6","max_tokens":1000},
 "response_time":812345678,"llm_status_code":200}"#;

    const OPENAI_SUCCESS: &str = r#"{
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "model": "gpt-5-2025",
  "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hi \"there\"", "model": "nope"}, "finish_reason": "length"},
    {"index": 1, "message": {"role": "assistant", "content": null}, "finish_reason": null},
    {"index": 2, "finish_reason": "STOP"}
  ],
  "usage": {
    "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 7}
  },
  "request": {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
  "request_id": "req-1"
}
"#;

    const ANTHROPIC_CACHE: &str = r#"{"request_id":"r2","usage":{"input_tokens":5,"prompt_tokens":999,"output_tokens":7,"completion_tokens":999,
"cache_read_input_tokens":40,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":22}},"choices":[{"finish_reason":"end_turn"}]}"#;

    const ERROR_1: &str = r#"{"error":{"code":429,"message":"Rate limit exceeded for model claude-sonnet-4-6","metadata":{"retry_after":12,"code":"nested"}}}"#;
    const ERROR_2: &str = r#"{"request_id":"e2-id","message":"Unsupported model: gpt-9","code":"model_not_found","metadata":{"errors":[{"code":"x","message":"y"}]}}"#;
    const ERROR_3: &str = r#"{"error":"Authentication error, API token missing/invalid","status":"error","request_id":"e3-id"}"#;

    fn all_docs() -> Vec<&'static str> {
        vec![
            SUCCESS,
            OPENAI_SUCCESS,
            ANTHROPIC_CACHE,
            ERROR_1,
            ERROR_2,
            ERROR_3,
        ]
    }

    #[test]
    fn success_body_documented_shape() {
        let (f, st) = check(SUCCESS.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id.as_deref(), Some("5d6c1a2b-uuid"));
        assert_eq!(f.finish_reasons, vec!["stop".to_string()]);
        assert_eq!(
            f.usage,
            Usage {
                input_tokens: Some(14),
                output_tokens: Some(3),
                total_tokens: Some(17),
                cache_read_input_tokens: None,
                cache_creation_input_tokens: None,
            }
        );
        assert_eq!(f.request_model.as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(f.model, None);
        assert_eq!(f.id, None);
        assert_eq!(f.response_time_ns, Some(812_345_678));
        assert_eq!(f.llm_status_code, Some(200));
        assert_eq!(f.error, ErrorFacts::default());
    }

    #[test]
    fn success_body_openai_spelling_and_cached_tokens() {
        let (f, st) = check(OPENAI_SUCCESS.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.id.as_deref(), Some("chatcmpl-abc123"));
        assert_eq!(f.model.as_deref(), Some("gpt-5-2025"));
        assert_eq!(f.request_model.as_deref(), Some("gpt-5"));
        assert_eq!(f.request_id.as_deref(), Some("req-1"));
        assert_eq!(f.finish_reasons, vec!["length", "STOP"]);
        assert_eq!(f.usage.input_tokens, Some(100));
        assert_eq!(f.usage.output_tokens, Some(20));
        assert_eq!(f.usage.total_tokens, Some(120));
        assert_eq!(f.usage.cache_read_input_tokens, Some(64));
        assert_eq!(f.usage.cache_creation_input_tokens, None);
    }

    #[test]
    fn usage_precedence_and_cache_creation_sum() {
        // Anthropic's input_tokens counts the uncached rest: the cache reads and writes are
        // added, so that the input count includes them as the GenAI conventions count it.
        let (f, _) = check(ANTHROPIC_CACHE.as_bytes());
        assert_eq!(f.usage.input_tokens, Some(5 + 40 + 32));
        assert_eq!(f.usage.output_tokens, Some(7));
        assert_eq!(f.usage.cache_read_input_tokens, Some(40));
        assert_eq!(f.usage.cache_creation_input_tokens, Some(32));
        assert_eq!(f.finish_reasons, vec!["end_turn"]);

        // The preferred spelling wins whatever the order.
        let (f, _) = check(br#"{"usage":{"prompt_tokens":1,"input_tokens":2,"completion_tokens":3,"output_tokens":4}}"#);
        assert_eq!(f.usage.input_tokens, Some(2));
        assert_eq!(f.usage.output_tokens, Some(4));
        // Explicit cache_creation_input_tokens beats the sum; cached_tokens beats cache_read.
        let (f, _) = check(
            br#"{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":5},"cache_creation_input_tokens":9,
                "cache_read_input_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        );
        assert_eq!(f.usage.cache_creation_input_tokens, Some(9));
        assert_eq!(f.usage.cache_read_input_tokens, Some(2));
        let (f, _) = check(br#"{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":5}}}"#);
        assert_eq!(f.usage.cache_creation_input_tokens, Some(5));
        assert!(!f.usage.is_empty());
        let (f, _) = check(br#"{"usage":{}}"#);
        assert!(f.usage.is_empty());
        // OpenAI's cached_tokens are part of prompt_tokens: nothing is added.
        let (f, _) = check(
            br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":60}}}"#,
        );
        assert_eq!(f.usage.input_tokens, Some(100));
        // Anthropic-named cache fields with a total that says they are included: not added.
        let (f, _) = check(
            br#"{"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15,"cache_read_input_tokens":6}}"#,
        );
        assert_eq!(f.usage.input_tokens, Some(10));
        // ... and with a total that says they are not (10 + 5 + 6): added.
        let (f, _) = check(
            br#"{"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":21,"cache_read_input_tokens":6}}"#,
        );
        assert_eq!(f.usage.input_tokens, Some(16));
    }

    #[test]
    fn error_shape_documented() {
        let (f, st) = check(ERROR_1.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.error.code.as_deref(), Some("429"));
        assert_eq!(
            f.error.message.as_deref(),
            Some("Rate limit exceeded for model claude-sonnet-4-6")
        );
        assert_eq!(f.error.status, None);
        assert_eq!(f.request_id, None);
    }

    #[test]
    fn error_shape_flat() {
        let (f, st) = check(ERROR_2.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id.as_deref(), Some("e2-id"));
        assert_eq!(f.error.code.as_deref(), Some("model_not_found"));
        assert_eq!(f.error.message.as_deref(), Some("Unsupported model: gpt-9"));
    }

    #[test]
    fn error_shape_auth() {
        let (f, st) = check(ERROR_3.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(
            f.error.message.as_deref(),
            Some("Authentication error, API token missing/invalid")
        );
        assert_eq!(f.error.status.as_deref(), Some("error"));
        assert_eq!(f.error.code, None);
        assert_eq!(f.request_id.as_deref(), Some("e3-id"));
    }

    #[test]
    fn error_precedence() {
        let (f, _) = check(
            br#"{"code":"flat","message":"flat msg","error":{"message":"inner","code":"E1"}}"#,
        );
        assert_eq!(f.error.code.as_deref(), Some("E1"));
        assert_eq!(f.error.message.as_deref(), Some("inner"));
        let (f, _) = check(br#"{"message":"flat msg","error":"string form","code":-1.5e3}"#);
        assert_eq!(f.error.message.as_deref(), Some("string form"));
        assert_eq!(f.error.code.as_deref(), Some("-1.5e3"));
        let (f, _) = check(br#"{"error":null,"status":500}"#);
        assert_eq!(f.error.message, None);
        assert_eq!(f.error.status.as_deref(), Some("500"));
    }

    #[test]
    fn agrees_with_serde_json_on_real_shapes() {
        for doc in all_docs() {
            let v: serde_json::Value = serde_json::from_str(doc).unwrap();
            let (f, st) = pick(doc.as_bytes());
            assert_eq!(st, JsonStatus::Complete);
            assert_eq!(f.request_id.as_deref(), v["request_id"].as_str());
            assert_eq!(f.id.as_deref(), v["id"].as_str());
            assert_eq!(f.model.as_deref(), v["model"].as_str());
            assert_eq!(f.request_model.as_deref(), v["request"]["model"].as_str());
            assert_eq!(f.usage.total_tokens, v["usage"]["total_tokens"].as_u64());
            check_prefixes(doc.as_bytes());
        }
    }

    #[test]
    fn not_json_bodies() {
        let html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        let (f, st) = check(html);
        assert_eq!(st, JsonStatus::Malformed);
        assert_eq!(f, BodyFacts::default());
        assert_eq!(check(b"upstream connect error").1, JsonStatus::Malformed);
        assert_eq!(check(b"").1, JsonStatus::Truncated);
        assert_eq!(check(b" \r\n\t ").1, JsonStatus::Truncated);
        assert_eq!(
            check(b"\xff\xfe\x00garbage\x80\x81").1,
            JsonStatus::Malformed
        );
        assert_eq!(check(b"{\"a\":1}}").1, JsonStatus::Malformed);
        assert_eq!(check(b"{\"a\":1} {}").1, JsonStatus::Malformed);
        assert_eq!(check(b"{\"a\":1,}").1, JsonStatus::Malformed);
        assert_eq!(check(b"[1,]").1, JsonStatus::Malformed);
        assert_eq!(check(b"[1 2]").1, JsonStatus::Malformed);
        assert_eq!(check(b"{\"a\" 1}").1, JsonStatus::Malformed);
        assert_eq!(check(b"{1:2}").1, JsonStatus::Malformed);
        assert_eq!(check(b"[}").1, JsonStatus::Malformed);
        assert_eq!(check(b"{]").1, JsonStatus::Malformed);
        assert_eq!(check(b"{\"a\":[1}").1, JsonStatus::Malformed);
        assert_eq!(check(b"'single'").1, JsonStatus::Malformed);
    }

    #[test]
    fn facts_before_garbage_are_kept() {
        let (f, st) =
            check(br#"{"request_id":"kept","usage":{"input_tokens":3}, oops "model":"lost"}"#);
        assert_eq!(st, JsonStatus::Malformed);
        assert_eq!(f.request_id.as_deref(), Some("kept"));
        assert_eq!(f.usage.input_tokens, Some(3));
        assert_eq!(f.model, None);

        // After Malformed feeding is a no-op (but bytes are counted).
        let mut p = JsonPicker::new();
        p.feed(b"<html>");
        assert_eq!(p.status(), JsonStatus::Malformed);
        p.feed(br#"{"request_id":"x"}"#);
        assert_eq!(p.facts(), &BodyFacts::default());
        assert_eq!(p.bytes_seen(), 24);
    }

    #[test]
    fn non_utf8_inside_strings() {
        let (f, st) = check(b"{\"request_id\":\"a\xffb\xc3\",\"model\":\"\xe2\x82\xac\"}");
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id.as_deref(), Some("a\u{FFFD}b\u{FFFD}"));
        assert_eq!(f.model.as_deref(), Some("\u{20ac}"));
        // Invalid UTF-8 in keys and skipped values is harmless.
        let (f, st) = check(b"{\"\xff\xfe\":\"\xc0\xc1\",\"id\":\"ok\"}");
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.id.as_deref(), Some("ok"));
    }

    #[test]
    fn truncated_at_every_prefix() {
        for doc in all_docs() {
            let bytes = doc.as_bytes();
            let end = bytes.iter().rposition(|&b| !is_ws(b)).unwrap_or(0);
            for k in 0..=end {
                let (_, st) = pick(&bytes[..k]);
                assert_eq!(st, JsonStatus::Truncated, "{doc} prefix {k}");
            }
        }
        // Garbage prefixes: never panics, status is sensible.
        let garbage = b"\xef\xbb\xbf{\"a\":[tru";
        for k in 0..=garbage.len() {
            let _ = check(&garbage[..k]);
        }
    }

    #[test]
    fn scalars_and_arrays_at_top_level() {
        for (doc, st) in [
            (&b"123"[..], JsonStatus::Complete),
            (b"-0.5e-3 ", JsonStatus::Complete),
            (b"0", JsonStatus::Complete),
            (b"1.", JsonStatus::Truncated),
            (b"-", JsonStatus::Truncated),
            (b"1e", JsonStatus::Truncated),
            (b"1e+", JsonStatus::Truncated),
            (b"01", JsonStatus::Malformed),
            (b"-a", JsonStatus::Malformed),
            (b"1.e5", JsonStatus::Malformed),
            (b"+1", JsonStatus::Malformed),
            (b"\"str\"", JsonStatus::Complete),
            (b"\"str", JsonStatus::Truncated),
            (b"true", JsonStatus::Complete),
            (b"false\n", JsonStatus::Complete),
            (b"null", JsonStatus::Complete),
            (b"nul", JsonStatus::Truncated),
            (b"tru", JsonStatus::Truncated),
            (b"trux", JsonStatus::Malformed),
            (b"truee", JsonStatus::Malformed),
            (b"[]", JsonStatus::Complete),
            (b"{}", JsonStatus::Complete),
            (b"[{}, [], \"x\", 1, true, null]", JsonStatus::Complete),
            (br#"[{"request_id":"not top"}]"#, JsonStatus::Complete),
        ] {
            let (f, got) = check(doc);
            assert_eq!(got, st, "{:?}", String::from_utf8_lossy(doc));
            assert_eq!(f, BodyFacts::default());
        }
    }

    #[test]
    fn only_listed_paths_are_picked() {
        let doc = br#"{"data":{"request_id":"no","model":"no","usage":{"input_tokens":1}},
            "choices":[{"message":{"model":"no","finish_reason":"no","usage":{"total_tokens":5}},"finish_reason":"yes"}],
            "request":{"request":{"model":"no"},"usage":{"input_tokens":2}},
            "usage":{"usage":{"input_tokens":3},"prompt_tokens_details":{"prompt_tokens_details":{"cached_tokens":4}}},
            "error":{"error":{"code":"no"}},"x":[["request_id"]],"model":"yes"}"#;
        let (f, st) = check(doc);
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id, None);
        assert_eq!(f.model.as_deref(), Some("yes"));
        assert_eq!(f.request_model, None);
        assert_eq!(f.finish_reasons, vec!["yes"]);
        assert!(f.usage.is_empty());
        assert_eq!(f.error, ErrorFacts::default());
    }

    #[test]
    fn numbers_where_u64_wanted() {
        let (f, st) = check(
            br#"{"usage":{"input_tokens":-3,"output_tokens":2.5,"total_tokens":18446744073709551616,
                 "cache_read_input_tokens":1e3,"cache_creation_input_tokens":14.0},
                 "response_time":-1,"llm_status_code":-200}"#,
        );
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.usage.input_tokens, None);
        assert_eq!(f.usage.output_tokens, None);
        assert_eq!(f.usage.total_tokens, None);
        assert_eq!(f.usage.cache_read_input_tokens, Some(1000));
        assert_eq!(f.usage.cache_creation_input_tokens, Some(14));
        assert_eq!(f.response_time_ns, None);
        assert_eq!(f.llm_status_code, Some(-200));
        let (f, _) =
            check(br#"{"usage":{"total_tokens":18446744073709551615},"response_time":"12"}"#);
        assert_eq!(f.usage.total_tokens, Some(u64::MAX));
        assert_eq!(f.response_time_ns, None);
        // Very long number text is validated but not used.
        let long = format!(r#"{{"usage":{{"total_tokens":1{}}}}}"#, "0".repeat(100));
        let (f, st) = check(long.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.usage.total_tokens, None);
        // Strings and other values where numbers are wanted are ignored.
        let (f, _) = check(
            br#"{"llm_status_code":"200","usage":{"input_tokens":true,"output_tokens":null}}"#,
        );
        assert_eq!(f.llm_status_code, None);
        assert!(f.usage.is_empty());
        // Numbers where text is wanted become text; objects and arrays are ignored.
        let (f, _) = check(br#"{"request_id":12345,"id":{"x":"y"},"model":["m"]}"#);
        assert_eq!(f.request_id.as_deref(), Some("12345"));
        assert_eq!(f.id, None);
        assert_eq!(f.model, None);
    }

    #[test]
    fn escapes_and_surrogates_in_request_id() {
        let doc = br#"{"request_id":"a\"b\\c\/d\n\t\r\b\f\u00e9\u20AC\ud83d\ude00z","id":"\ud83d","model":"\ude00x","request":{"model":"\ud83d\u0041"}}"#;
        let (f, st) = check(doc);
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(
            f.request_id.as_deref(),
            Some("a\"b\\c/d\n\t\r\u{8}\u{c}\u{e9}\u{20ac}\u{1F600}z")
        );
        assert_eq!(f.id.as_deref(), Some("\u{FFFD}"));
        assert_eq!(f.model.as_deref(), Some("\u{FFFD}x"));
        assert_eq!(f.request_model.as_deref(), Some("\u{FFFD}A"));
        let v: serde_json::Value = serde_json::from_slice(&doc[..doc.len()]).unwrap_or_default();
        if let Some(s) = v["request_id"].as_str() {
            assert_eq!(f.request_id.as_deref(), Some(s));
        }
        // Escaped keys match too.
        let (f, _) = check(br#"{"request\u005fid":"k","\u006dodel":"m"}"#);
        assert_eq!(f.request_id.as_deref(), Some("k"));
        assert_eq!(f.model.as_deref(), Some("m"));
    }

    #[test]
    fn invalid_escapes_are_malformed() {
        for doc in [
            &br#"{"request_id":"ok","x":"bad \x escape"}"#[..],
            br#"{"request_id":"ok","x":"bad \u12G4"}"#,
            br#"{"request_id":"ok","model":"bad \q"}"#,
        ] {
            let (f, st) = check(doc);
            assert_eq!(st, JsonStatus::Malformed);
            assert_eq!(f.request_id.as_deref(), Some("ok"));
            assert_eq!(f.model, None);
        }
    }

    #[test]
    fn long_strings_are_capped_at_char_boundary() {
        let long = "m".repeat(300);
        let doc = format!(r#"{{"model":"{long}","request_id":"after"}}"#);
        let (f, st) = check(doc.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.model.as_deref(), Some(&long[..256]));
        assert_eq!(f.request_id.as_deref(), Some("after"));

        // 100 euro signs = 300 bytes: 85 whole characters fit in 256 bytes.
        let euros = "\u{20ac}".repeat(100);
        let doc = format!(r#"{{"model":"{euros}"}}"#);
        let (f, _) = check(doc.as_bytes());
        assert_eq!(f.model.as_deref(), Some(&euros[..255]));
        // The same through escapes, and emoji through surrogate pairs.
        let doc = format!(r#"{{"model":"{}"}}"#, "\\u20ac".repeat(100));
        assert_eq!(
            check(doc.as_bytes()).0.model.as_deref(),
            Some(&euros[..255])
        );
        let doc = format!(r#"{{"model":"x{}"}}"#, "\\ud83d\\ude00".repeat(70));
        let (f, _) = check(doc.as_bytes());
        let m = f.model.unwrap();
        assert_eq!(m.len(), 253);
        assert!(m.starts_with("x\u{1F600}"));
        // Invalid bytes (each becoming a 3-byte U+FFFD) still end at 256 bytes at most.
        let mut doc = b"{\"model\":\"".to_vec();
        doc.extend(std::iter::repeat_n(0xffu8, 300));
        doc.extend(b"\"}");
        let (f, st) = check(&doc);
        assert_eq!(st, JsonStatus::Complete);
        assert!(f.model.unwrap().len() <= MAX_STRING_BYTES);
    }

    #[test]
    fn utf8_bom() {
        let mut doc = BOM.to_vec();
        doc.extend(ERROR_3.as_bytes());
        let (f, st) = check(&doc);
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id.as_deref(), Some("e3-id"));
        assert_eq!(check(&BOM).1, JsonStatus::Truncated);
        assert_eq!(check(b"\xef\xbb{}").1, JsonStatus::Malformed);
        assert_eq!(check(b" \xef\xbb\xbf{}").1, JsonStatus::Malformed);
        assert_eq!(check(b"{}\xef\xbb\xbf").1, JsonStatus::Malformed);
    }

    #[test]
    fn finish_reasons() {
        let mut doc = String::from(r#"{"choices":["#);
        for i in 0..20 {
            if i > 0 {
                doc.push(',');
            }
            doc.push_str(&format!(r#"{{"index":{i},"finish_reason":"r{i}"}}"#));
        }
        doc.push_str(
            r#",{"finish_reason":null},{"finish_reason":7},"x",[{"finish_reason":"nested"}]]}"#,
        );
        let (f, st) = check(doc.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        let expected: Vec<String> = (0..16).map(|i| format!("r{i}")).collect();
        assert_eq!(f.finish_reasons, expected);
        let (f, _) =
            check(br#"{"choices":[{"finish_reason":"tool_calls"},{"finish_reason":"stop"}]}"#);
        assert_eq!(f.finish_reasons, vec!["tool_calls", "stop"]);
        let (f, _) = check(br#"{"choices":{"finish_reason":"not an array"}}"#);
        assert!(f.finish_reasons.is_empty());
    }

    #[test]
    fn deep_nesting() {
        let n = 10_000;
        let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let (_, st) = pick(arrays.as_bytes());
        assert_eq!(st, JsonStatus::Complete);
        let objects = format!(r#"{}1{}"#, r#"{"a":"#.repeat(n), "}".repeat(n));
        assert_eq!(pick(objects.as_bytes()).1, JsonStatus::Complete);
        // Mixed, with facts after the deep part, fed in odd chunks.
        let doc = format!(
            r#"{{"x":{}{}{},"request_id":"after-deep","usage":{{"total_tokens":9}}}}"#,
            r#"[{"b":"#.repeat(n),
            "null",
            "}]".repeat(n)
        );
        let whole = pick(doc.as_bytes());
        assert_eq!(whole.1, JsonStatus::Complete);
        assert_eq!(whole.0.request_id.as_deref(), Some("after-deep"));
        assert_eq!(whole.0.usage.total_tokens, Some(9));
        for size in [1, 7, 64, 1000] {
            let mut p = JsonPicker::new();
            for c in doc.as_bytes().chunks(size) {
                p.feed(c);
            }
            assert!(p.state_heap_bytes() <= 16 * 1024);
            assert_eq!(p.finish(), whole);
        }
        // Unclosed: Truncated. Mismatched deep down: Malformed.
        assert_eq!(pick("[".repeat(n).as_bytes()).1, JsonStatus::Truncated);
        let bad = format!(
            "{}{}}}{}",
            "[".repeat(n),
            "]".repeat(n / 2),
            "]".repeat(n / 2 - 1)
        );
        assert_eq!(pick(bad.as_bytes()).1, JsonStatus::Malformed);
        // Beyond MAX_NESTING: Malformed, with bounded memory.
        let mut p = JsonPicker::new();
        p.feed(br#"{"request_id":"r","deep":"#);
        p.feed("[".repeat(MAX_NESTING + 10).as_bytes());
        assert_eq!(p.status(), JsonStatus::Malformed);
        assert!(p.state_heap_bytes() <= 16 * 1024);
        assert_eq!(p.facts().request_id.as_deref(), Some("r"));
        // Picking still works just under the pick depth limit, and not beyond it.
        let at = |depth: usize| {
            format!(
                r#"{}{{"choices":[{{"finish_reason":"x"}}]}}{}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert_eq!(pick(at(0).as_bytes()).0.finish_reasons, vec!["x"]);
        assert!(pick(at(1).as_bytes()).0.finish_reasons.is_empty());
    }

    #[test]
    fn huge_content_string() {
        let content = "lorem ipsum \\\"quoted\\\" \\n ".repeat(5 * 1024 * 1024 / 25);
        assert!(content.len() >= 5 * 1024 * 1024);
        let doc = format!(
            r#"{{"request_id":"big","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"max_tokens"}}],"usage":{{"input_tokens":14,"output_tokens":100000}},"model":"{content}"}}"#
        );
        let mut p = JsonPicker::new();
        let size_before = std::mem::size_of_val(&p);
        for c in doc.as_bytes().chunks(64 * 1024 + 3) {
            p.feed(c);
            assert_eq!(p.state_heap_bytes(), 0);
            assert!(p.copied_string_len() <= MAX_STRING_BYTES);
        }
        assert_eq!(size_before, std::mem::size_of_val(&p));
        assert_eq!(p.bytes_seen(), doc.len() as u64);
        let (f, st) = p.finish();
        assert_eq!(st, JsonStatus::Complete);
        assert_eq!(f.request_id.as_deref(), Some("big"));
        assert_eq!(f.finish_reasons, vec!["max_tokens"]);
        assert_eq!(f.usage.input_tokens, Some(14));
        assert_eq!(f.usage.output_tokens, Some(100_000));
        let model = f.model.unwrap();
        assert_eq!(model.len(), MAX_STRING_BYTES);
        assert!(model.starts_with("lorem ipsum \"quoted\" \n lorem"));
        assert_eq!(pick(doc.as_bytes()).1, JsonStatus::Complete);
    }

    #[test]
    fn skipping_known_fields_merges_the_same() {
        let docs: [&[u8]; 6] = [
            br#"{"id":"c1","model":"m1","choices":[{"finish_reason":null}]}"#,
            br#"{"request_id":"r2","id":"c2","model":"m2","request":{"model":"q2"}}"#,
            br#"{"request_id":7,"id":8,"model":"m3","request":{"model":9},"usage":{"output_tokens":3}}"#,
            br#"{"request_id":"r4","request_id":"r5","model":"m\u00e94","choices":[{"finish_reason":"stop"}]}"#,
            br#"{"error":{"code":"x","message":"boom"},"status":"error","model":"m6"}"#,
            br#"{"request_id":"r7","id":"#,
        ];
        for start in 0..docs.len() {
            let (mut plain, mut skipping) = (BodyFacts::default(), BodyFacts::default());
            for doc in docs.iter().cycle().skip(start).take(docs.len()) {
                let (facts, status) = pick(doc);
                plain.merge(facts);
                let mut picker = JsonPicker::new().skipping_known(&skipping);
                picker.feed(doc);
                let (facts, skipped_status) = picker.finish();
                assert_eq!(status, skipped_status);
                skipping.merge(facts);
                assert_eq!(plain, skipping);
            }
        }
    }

    #[test]
    fn merge_semantics() {
        let mut a = pick(br#"{"id":"c1","model":"m1","usage":{"input_tokens":1,"total_tokens":5},"choices":[{"finish_reason":"a"}],"error":{"code":1},"llm_status_code":200,"response_time":10}"#).0;
        let b = pick(br#"{"id":"c2","request_id":"r2","model":"m2","usage":{"input_tokens":9,"output_tokens":3},"choices":[{"finish_reason":"b"}],"error":{"code":2,"message":"m"},"llm_status_code":500}"#).0;
        a.merge(b);
        assert_eq!(a.id.as_deref(), Some("c1"));
        assert_eq!(a.request_id.as_deref(), Some("r2"));
        assert_eq!(a.model.as_deref(), Some("m1"));
        assert_eq!(a.usage.input_tokens, Some(9));
        assert_eq!(a.usage.output_tokens, Some(3));
        assert_eq!(a.usage.total_tokens, Some(5));
        assert_eq!(a.finish_reasons, vec!["a", "b"]);
        assert_eq!(a.error.code.as_deref(), Some("1"));
        assert_eq!(a.error.message.as_deref(), Some("m"));
        assert_eq!(a.llm_status_code, Some(500));
        assert_eq!(a.response_time_ns, Some(10));
        let mut many = BodyFacts::default();
        for i in 0..10 {
            many.merge(BodyFacts {
                finish_reasons: vec![format!("a{i}"), format!("b{i}")],
                ..BodyFacts::default()
            });
        }
        assert_eq!(many.finish_reasons.len(), MAX_FINISH_REASONS);
        assert_eq!(many.finish_reasons[15], "b7");
    }

    #[test]
    fn utf8_helpers() {
        assert_eq!(complete_utf8_prefix(b""), 0);
        assert_eq!(complete_utf8_prefix(b"ab"), 2);
        assert_eq!(complete_utf8_prefix(b"a\xe2\x82"), 1);
        assert_eq!(complete_utf8_prefix(b"a\xe2\x82\xac"), 4);
        assert_eq!(complete_utf8_prefix(b"a\xf0\x9f\x98"), 1);
        assert_eq!(complete_utf8_prefix(b"\x80\x80\x80"), 3);
        assert_eq!(finish_text(b"a\xc3", true), "a");
        assert_eq!(finish_text(b"a\xc3", false), "a\u{FFFD}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            use serde_json::Value;
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                (-1e12f64..1e12).prop_map(Value::from),
                "[a-z_]{0,12}".prop_map(Value::String),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(6, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("request_id".to_string()),
                            Just("model".to_string()),
                            Just("usage".to_string()),
                            Just("input_tokens".to_string()),
                            Just("prompt_tokens".to_string()),
                            Just("choices".to_string()),
                            Just("finish_reason".to_string()),
                            Just("error".to_string()),
                            Just("code".to_string()),
                            "[a-z]{1,6}",
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn splits(len: usize, cuts: &[usize]) -> Vec<usize> {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
            points.push(0);
            points.push(len);
            points.sort_unstable();
            points
        }

        fn feed_split(bytes: &[u8], cuts: &[usize]) -> (BodyFacts, JsonStatus) {
            let points = splits(bytes.len(), cuts);
            let mut p = JsonPicker::new();
            for w in points.windows(2) {
                p.feed(&bytes[w[0]..w[1]]);
            }
            p.finish()
        }

        proptest! {
            #[test]
            fn the_short_run_search_agrees_with_memchr2(
                bytes in prop::collection::vec(
                    prop_oneof![Just(b'"'), Just(b'\\'), Just(b'a'), Just(0x22 ^ 0x80), any::<u8>()],
                    0..200,
                ),
                start in 0usize..200,
            ) {
                let bytes = &bytes[start.min(bytes.len())..];
                prop_assert_eq!(find_quote_or_backslash(bytes), memchr2(b'"', b'\\', bytes));
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_chunking_is_irrelevant(
                bytes in prop::collection::vec(any::<u8>(), 0..512),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let whole = pick(&bytes);
                prop_assert_eq!(feed_split(&bytes, &cuts), whole);
            }

            #[test]
            fn json_ish_bytes_chunking_is_irrelevant(
                bytes in prop::collection::vec(prop::sample::select(b"{}[]\",:0123456789-+.eE \\utrufalsn\"request_id\"usage".to_vec()), 0..256),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let whole = pick(&bytes);
                prop_assert_eq!(feed_split(&bytes, &cuts), whole);
            }

            #[test]
            fn valid_json_is_complete_and_agrees_with_serde(
                v in json_value(),
                pretty in any::<bool>(),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
                let (f, st) = feed_split(text.as_bytes(), &cuts);
                prop_assert_eq!(st, JsonStatus::Complete);
                prop_assert_eq!(pick(text.as_bytes()), (f.clone(), st));
                if v.is_object() {
                    let rid = match &v["request_id"] {
                        serde_json::Value::String(s) => Some(finish_text(s.as_bytes(), s.len() > MAX_STRING_BYTES)),
                        // A number where text is wanted is kept as its text.
                        n @ serde_json::Value::Number(_) => Some(n.to_string()),
                        _ => None,
                    };
                    prop_assert_eq!(f.request_id, rid);
                    let input = v["usage"]["input_tokens"].as_u64().or_else(|| v["usage"]["prompt_tokens"].as_u64());
                    if v["usage"]["input_tokens"].is_null() || v["usage"]["input_tokens"].is_u64() {
                        prop_assert_eq!(f.usage.input_tokens, input);
                    }
                }
            }

            #[test]
            fn one_byte_mutations_agree_with_serde_on_validity(
                v in json_value(),
                at in any::<usize>(),
                with in prop::sample::select(b"{}[]\",:0-.e \\ax".to_vec()),
                cut in any::<usize>(),
            ) {
                let mut bytes = serde_json::to_vec(&v).unwrap();
                // Keep to ASCII documents so that our documented leniencies don't apply.
                if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
                    return Ok(());
                }
                let i = at % bytes.len();
                bytes[i] = with;
                let serde = serde_json::from_slice::<serde_json::Value>(&bytes);
                // serde_json also rejects numbers that overflow f64, which are valid JSON text.
                if serde.as_ref().is_err_and(|e| e.to_string().contains("out of range")) {
                    return Ok(());
                }
                let serde_ok = serde.is_ok();
                let (_, st) = feed_split(&bytes, &[cut]);
                // serde_json rejects lone surrogates that a mutated \u escape can produce.
                let has_escape = bytes.windows(2).any(|w| w == b"\\u");
                if !has_escape {
                    prop_assert_eq!(serde_ok, st == JsonStatus::Complete, "{}", String::from_utf8_lossy(&bytes));
                }
            }
        }
    }
}
