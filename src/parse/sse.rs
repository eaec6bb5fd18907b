//! A server-sent-events reader that feeds the JSON picker.
//!
//! [`SseReader`] splits an `text/event-stream` byte stream, chunked any way, into events
//! following the WHATWG rules, keeping only the `data` of the event in progress (capped at
//! `max_event_bytes`). [`StreamObserver`] parses each event's data with [`json::pick`] and
//! merges the facts over the stream.

use memchr::memchr2;

use super::json::{self, BodyFacts, JsonStatus};

/// Default cap on one event's data.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the start of a line.
    Start,
    /// In the field name.
    Name,
    /// Right after the colon (one space may be skipped).
    AfterColon { data: bool },
    /// In the field value.
    Value { data: bool },
}

/// Splits an SSE byte stream (any chunking) into events per the WHATWG rules: lines end in
/// `\n`, `\r\n` or `\r` (a `\r` at the very end of a chunk may be followed by `\n` in the next
/// chunk); a blank line dispatches the event; `data:` fields (one optional leading space
/// removed) are joined with `"\n"`; comment lines (`:`) and other fields (`event:`, `id:`,
/// `retry:`) are ignored; a leading UTF-8 BOM is skipped. A trailing event without the blank
/// line is not dispatched by `feed` (see [`SseReader::pending`] and [`StreamObserver::finish`]).
#[derive(Debug, Clone)]
pub struct SseReader {
    max_event_bytes: usize,
    line: Line,
    /// Bytes of the field name that matched `data` so far; `None` once it can't be `data`.
    name_match: Option<u8>,
    /// The previous line ended in `\r`: a `\n` next is part of that line end.
    skip_lf: bool,
    /// BOM bytes matched at the start of the stream; 3 once past the start.
    bom: u8,
    data: Vec<u8>,
    /// A data field was seen in the event in progress.
    has_data: bool,
    /// The event in progress outgrew the cap; its data is dropped.
    oversized: bool,
    oversized_events: u64,
}

impl SseReader {
    /// A reader that drops (and counts) events whose data is larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseReader {
            max_event_bytes,
            line: Line::Start,
            name_match: Some(0),
            skip_lf: false,
            bom: 0,
            data: Vec::new(),
            has_data: false,
            oversized: false,
            oversized_events: 0,
        }
    }

    /// Feed the next chunk; `on_event` gets the data of every event completed in it.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&[u8])) {
        let mut chunk = chunk;
        while usize::from(self.bom) < BOM.len() {
            let Some((&b, rest)) = chunk.split_first() else {
                return;
            };
            if BOM.get(usize::from(self.bom)) == Some(&b) {
                self.bom += 1;
                chunk = rest;
            } else {
                // Not a BOM after all: the bytes taken for one are ordinary input.
                let taken = usize::from(self.bom);
                self.bom = BOM.len() as u8;
                self.process(&BOM[..taken], &mut on_event);
            }
        }
        self.process(chunk, &mut on_event);
    }

    /// Events dropped because their data was larger than `max_event_bytes`.
    pub fn oversized_events(&self) -> u64 {
        self.oversized_events
    }

    /// Bytes of an event in progress (data received but no blank line yet), if any.
    pub fn pending(&self) -> Option<&[u8]> {
        if self.has_data && !self.oversized {
            Some(&self.data)
        } else {
            None
        }
    }

    /// Heap bytes held for the event in progress (at most `max_event_bytes`).
    #[doc(hidden)]
    #[cfg(test)]
    pub fn buffer_capacity(&self) -> usize {
        self.data.capacity()
    }

    fn process(&mut self, chunk: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if self.skip_lf {
                self.skip_lf = false;
                if b == b'\n' {
                    i += 1;
                    continue;
                }
            }
            match self.line {
                Line::Start => {
                    if b == b'\n' || b == b'\r' {
                        i += 1;
                        self.skip_lf = b == b'\r';
                        self.dispatch(on_event);
                    } else {
                        self.line = Line::Name;
                        self.name_match = Some(0);
                    }
                }
                Line::Name => {
                    i += 1;
                    match b {
                        b':' => {
                            let data = self.name_is_data();
                            self.line = Line::AfterColon { data };
                        }
                        b'\n' | b'\r' => {
                            // A field name alone: an empty value.
                            if self.name_is_data() {
                                self.begin_data_field();
                            }
                            self.end_line(b);
                        }
                        _ => {
                            self.name_match = match self.name_match {
                                Some(n) if b"data".get(usize::from(n)) == Some(&b) => Some(n + 1),
                                _ => None,
                            };
                        }
                    }
                }
                Line::AfterColon { data } => {
                    if b == b' ' {
                        i += 1;
                    }
                    if data {
                        self.begin_data_field();
                    }
                    self.line = Line::Value { data };
                }
                Line::Value { data } => {
                    let rest = &chunk[i..];
                    match memchr2(b'\n', b'\r', rest) {
                        None => {
                            if data {
                                self.append(rest);
                            }
                            i = chunk.len();
                        }
                        Some(off) => {
                            if data {
                                self.append(&rest[..off]);
                            }
                            i += off + 1;
                            self.end_line(rest[off]);
                        }
                    }
                }
            }
        }
    }

    fn name_is_data(&self) -> bool {
        self.name_match == Some(4)
    }

    fn end_line(&mut self, eol: u8) {
        self.line = Line::Start;
        self.skip_lf = eol == b'\r';
    }

    fn begin_data_field(&mut self) {
        if self.has_data {
            self.append(b"\n");
        }
        self.has_data = true;
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.oversized || bytes.is_empty() {
            return;
        }
        let needed = self.data.len().saturating_add(bytes.len());
        if needed > self.max_event_bytes {
            self.oversized = true;
            self.oversized_events += 1;
            self.data.clear();
            return;
        }
        if needed > self.data.capacity() {
            // Grow geometrically, but never past the cap.
            let target = needed
                .max(self.data.capacity().saturating_mul(2))
                .min(self.max_event_bytes);
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend_from_slice(bytes);
    }

    /// A blank line: the event in progress (if it has data) is complete.
    fn dispatch(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.has_data && !self.oversized {
            on_event(&self.data);
        }
        self.data.clear();
        self.has_data = false;
        self.oversized = false;
    }
}

/// What a stream said, over all its events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StreamFacts {
    /// Merged over all data events ([`BodyFacts::merge`]).
    pub facts: BodyFacts,
    /// Data events seen (excluding `[DONE]` and oversized events).
    pub events: u64,
    /// `data: [DONE]` seen.
    pub done: bool,
    /// Data events that were not Complete JSON.
    pub malformed_events: u64,
    /// Events dropped because their data was over the cap.
    pub oversized_events: u64,
    /// Bytes of the stream.
    pub bytes: u64,
}

/// Observes a stream as it passes: the middleware calls [`feed`](Self::feed) for every body
/// frame and [`finish`](Self::finish) at the end of the stream.
#[derive(Debug, Clone)]
pub struct StreamObserver {
    reader: SseReader,
    acc: StreamFacts,
}

impl Default for StreamObserver {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamObserver {
    /// An observer with a 256 KiB cap on one event's data.
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// An observer with a cap of `n` bytes on one event's data.
    pub fn with_max_event_bytes(n: usize) -> Self {
        StreamObserver {
            reader: SseReader::new(n),
            acc: StreamFacts::default(),
        }
    }

    /// Feed the next body frame.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.acc.bytes = self.acc.bytes.saturating_add(chunk.len() as u64);
        let acc = &mut self.acc;
        self.reader.feed(chunk, |data| observe_event(acc, data));
    }

    /// Data events so far (excluding `[DONE]`).
    pub fn events(&self) -> u64 {
        self.acc.events
    }

    /// The end of the stream: an event still pending (no blank line after it) is parsed too.
    pub fn finish(self) -> StreamFacts {
        let StreamObserver { reader, mut acc } = self;
        if let Some(data) = reader.pending() {
            observe_event(&mut acc, data);
        }
        acc.oversized_events = reader.oversized_events();
        acc
    }
}

fn observe_event(acc: &mut StreamFacts, data: &[u8]) {
    if data.trim_ascii() == b"[DONE]" {
        acc.done = true;
        return;
    }
    acc.events += 1;
    // Fields the stream already showed are not copied again from every event (merge keeps
    // the first anyway).
    let mut picker = json::JsonPicker::new().skipping_known(&acc.facts);
    picker.feed(data);
    let (facts, status) = picker.finish();
    if status != JsonStatus::Complete {
        acc.malformed_events += 1;
    }
    acc.facts.merge(facts);
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        ": keep-alive comment\n",
        "\n",
        "event: message\n",
        "id: 1\n",
        "retry: 3000\n",
        "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-5-2025\",\"request_id\":\"req-s\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Par\"},\"index\":0}]}\n",
        "\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"is \\\"\\n\\\".\"},\"index\":0}]}\r\n",
        "\r\n",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{},\"index\":0,\"finish_reason\":\"stop\"}]}\r",
        "\r",
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\n",
        "data:\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":3,\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n",
        "\n",
        "data: [DONE]\n",
        "\n",
    );

    fn observe_whole(bytes: &[u8]) -> StreamFacts {
        let mut o = StreamObserver::new();
        o.feed(bytes);
        o.finish()
    }

    /// Whole, split at every single point, and byte by byte: all the same.
    fn check(bytes: &[u8]) -> StreamFacts {
        let whole = observe_whole(bytes);
        for k in 0..=bytes.len() {
            let mut o = StreamObserver::new();
            o.feed(&bytes[..k]);
            o.feed(&bytes[k..]);
            assert_eq!(o.finish(), whole, "split at {k}");
        }
        let mut o = StreamObserver::new();
        for b in bytes {
            o.feed(std::slice::from_ref(b));
        }
        assert_eq!(o.finish(), whole, "byte by byte");
        whole
    }

    fn events_of(bytes: &[u8]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let mut r = SseReader::new(1 << 20);
        let mut out = Vec::new();
        r.feed(bytes, |d| out.push(d.to_vec()));
        (out, r.pending().map(<[u8]>::to_vec))
    }

    #[test]
    fn contract_stream() {
        let s = check(STREAM.as_bytes());
        assert_eq!(s.events, 4);
        assert!(s.done);
        assert_eq!(s.malformed_events, 0);
        assert_eq!(s.oversized_events, 0);
        assert_eq!(s.bytes, STREAM.len() as u64);
        assert_eq!(s.facts.id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(s.facts.model.as_deref(), Some("gpt-5-2025"));
        assert_eq!(s.facts.request_id.as_deref(), Some("req-s"));
        assert_eq!(s.facts.finish_reasons, vec!["stop"]);
        assert_eq!(s.facts.usage.input_tokens, Some(14));
        assert_eq!(s.facts.usage.output_tokens, Some(3));
        assert_eq!(s.facts.usage.total_tokens, Some(17));
        assert_eq!(s.facts.usage.cache_read_input_tokens, Some(8));
    }

    #[test]
    fn event_splitting_rules() {
        let (ev, pending) = events_of(b"data: a\ndata:b\ndata:  c\ndata\n\ndata: x\n\n");
        assert_eq!(ev, vec![b"a\nb\n c\n".to_vec(), b"x".to_vec()]);
        assert_eq!(pending, None);
        // \r, \r\n, \n all end lines; \r\n is one line end.
        let (ev, _) = events_of(b"data: 1\r\rdata: 2\r\n\r\ndata: 3\n\ndata: 4\r\n\n");
        assert_eq!(
            ev,
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]
        );
        // "\r\n\r" is two line ends (then a blank line), not three.
        let (ev, pending) = events_of(b"data: 1\r\n\rdata: 2\n");
        assert_eq!(ev, vec![b"1".to_vec()]);
        assert_eq!(pending, Some(b"2".to_vec()));
        // Comments and other fields are ignored; a blank line with no data dispatches nothing.
        let (ev, _) =
            events_of(b": hi\nevent: x\nid: 7\nretry: 1\ndatas: no\ndat: no\nDATA: no\n\n\n\n");
        assert!(ev.is_empty());
        // A data field with an empty value makes an event with empty data.
        let (ev, _) = events_of(b"data:\n\ndata\n\n");
        assert_eq!(ev, vec![Vec::<u8>::new(), Vec::new()]);
        // Colons in the value are kept.
        let (ev, _) = events_of(b"data: {\"a\":\"b:c\"}\n\n");
        assert_eq!(ev, vec![b"{\"a\":\"b:c\"}".to_vec()]);
    }

    #[test]
    fn cr_at_end_of_chunk_then_lf() {
        let mut r = SseReader::new(1024);
        let mut ev = Vec::new();
        r.feed(b"data: a\r", |d| ev.push(d.to_vec()));
        r.feed(b"\n\r", |d| ev.push(d.to_vec()));
        r.feed(b"\ndata: b\r", |d| ev.push(d.to_vec()));
        r.feed(b"\r", |d| ev.push(d.to_vec()));
        assert_eq!(ev, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(r.pending(), None);
    }

    #[test]
    fn bom_at_start() {
        let mut bytes = BOM.to_vec();
        bytes.extend(STREAM.as_bytes());
        let s = check(&bytes);
        assert_eq!(s.events, 4);
        assert!(s.done);
        // A partial BOM is ordinary input (here it spoils the first field name).
        let (ev, _) = events_of(b"\xef\xbbdata: x\n\ndata: y\n\n");
        assert_eq!(ev, vec![b"y".to_vec()]);
        let (ev, _) = events_of(b"\xef");
        assert!(ev.is_empty());
    }

    #[test]
    fn trailing_event_without_blank_line() {
        let bytes = b"data: {\"id\":\"a\"}\n\ndata: {\"request_id\":\"tail\",\"usage\":{\"total_tokens\":5}}";
        let (ev, pending) = events_of(bytes);
        assert_eq!(ev.len(), 1);
        let tail = bytes.len() - br#"{"request_id":"tail","usage":{"total_tokens":5}}"#.len();
        assert_eq!(pending.as_deref(), Some(&bytes[tail..]));
        let s = check(bytes);
        assert_eq!(s.events, 2);
        assert!(!s.done);
        assert_eq!(s.malformed_events, 0);
        assert_eq!(s.facts.request_id.as_deref(), Some("tail"));
        assert_eq!(s.facts.usage.total_tokens, Some(5));
    }

    #[test]
    fn broken_stream_mid_json() {
        let cut = STREAM.find("\"usage\"").unwrap() + 20;
        let s = check(&STREAM.as_bytes()[..cut]);
        assert!(!s.done);
        assert_eq!(s.events, 4);
        assert_eq!(s.malformed_events, 1);
        assert_eq!(s.facts.finish_reasons, vec!["stop"]);
    }

    #[test]
    fn malformed_and_done_events() {
        let s = check(
            b"data: <html>\n\ndata: {\"id\":\"x\"}\n\ndata:   [DONE] \r\n\r\ndata: [DONE]x\n\n",
        );
        assert_eq!(s.events, 3);
        assert_eq!(s.malformed_events, 2);
        assert!(s.done);
        assert_eq!(s.facts.id.as_deref(), Some("x"));
    }

    #[test]
    fn not_a_stream() {
        // A model that ignored stream:true answers with a plain JSON body.
        let s = check(br#"{"request_id":"r","choices":[{"finish_reason":"stop"}]}"#);
        assert_eq!(s.events, 0);
        assert_eq!(s.facts, BodyFacts::default());
        let s = check(b"");
        assert_eq!(s, StreamFacts::default());
        let s = check(b"<html><body>502 Bad Gateway</body></html>\r\n");
        assert_eq!(s.events, 0);
        assert_eq!(s.bytes, 43);
    }

    #[test]
    fn oversized_events_are_dropped_and_counted() {
        let big = "x".repeat(5000);
        let stream = format!(
            "data: {{\"id\":\"first\"}}\n\ndata: {{\"request_id\":\"{big}\"}}\n\ndata: {big}\ndata: more\n\ndata: {{\"request_id\":\"ok\"}}\n\ndata: {big}"
        );
        let mut o = StreamObserver::with_max_event_bytes(1024);
        for c in stream.as_bytes().chunks(100) {
            o.feed(c);
            assert!(o.reader.buffer_capacity() <= 1024);
        }
        assert!(o.reader.pending().is_none());
        let s = o.finish();
        assert_eq!(s.oversized_events, 3);
        assert_eq!(s.events, 2);
        assert_eq!(s.malformed_events, 0);
        assert_eq!(s.facts.id.as_deref(), Some("first"));
        assert_eq!(s.facts.request_id.as_deref(), Some("ok"));
        // Exactly the cap is fine.
        let mut r = SseReader::new(4);
        let mut ev = Vec::new();
        r.feed(
            b"data: abcd\n\ndata: ab\ndata: cd\n\ndata: abcde\n\n",
            |d| ev.push(d.to_vec()),
        );
        assert_eq!(ev, vec![b"abcd".to_vec()]);
        assert_eq!(r.oversized_events(), 2);
    }

    #[test]
    fn events_counter_during_stream() {
        let mut o = StreamObserver::new();
        o.feed(b"data: {\"id\":\"a\"}\n");
        assert_eq!(o.events(), 0);
        o.feed(b"\n");
        assert_eq!(o.events(), 1);
        o.feed(b"data: [DONE]\n\n");
        assert_eq!(o.events(), 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn feed_split(bytes: &[u8], cuts: &[usize], max: usize) -> StreamFacts {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let mut o = StreamObserver::with_max_event_bytes(max);
            for w in points.windows(2) {
                o.feed(&bytes[w[0]..w[1]]);
            }
            o.finish()
        }

        #[derive(Debug, Clone)]
        enum Piece {
            Comment(String),
            Field(&'static str, String),
            Data(String),
            Blank,
        }

        fn piece() -> impl Strategy<Value = Piece> {
            prop_oneof![
                "[ -~]{0,10}".prop_map(Piece::Comment),
                (
                    prop::sample::select(vec!["event", "id", "retry", "dat", "datax"]),
                    "[ -~]{0,10}"
                )
                    .prop_map(|(n, v)| Piece::Field(n, v)),
                prop_oneof![
                    Just(r#"{"id":"c1","model":"m","choices":[{"delta":{"content":"hi"},"index":0}]}"#.to_string()),
                    Just(r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"request_id":"r"}"#.to_string()),
                    Just(r#"{"choices":[],"usage":{"input_tokens":3,"output_tokens":4}}"#.to_string()),
                    Just("[DONE]".to_string()),
                    Just(" {\"error\":{\"code\":500,\"message\":\"boom\"}}".to_string()),
                    "[ -~]{0,30}",
                ]
                .prop_map(Piece::Data),
                Just(Piece::Blank),
            ]
        }

        fn render(pieces: &[(Piece, u8)]) -> Vec<u8> {
            let mut out = Vec::new();
            for (p, eol) in pieces {
                match p {
                    Piece::Comment(c) => {
                        out.push(b':');
                        out.extend(c.as_bytes());
                    }
                    Piece::Field(n, v) => {
                        out.extend(n.as_bytes());
                        out.extend(b": ");
                        out.extend(v.as_bytes());
                    }
                    Piece::Data(d) => {
                        out.extend(b"data: ");
                        out.extend(d.as_bytes());
                    }
                    Piece::Blank => {}
                }
                out.extend(match eol % 3 {
                    0 => &b"\n"[..],
                    1 => b"\r\n",
                    _ => b"\r",
                });
            }
            out
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in prop::collection::vec(any::<u8>(), 0..512),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
                max in 0usize..64,
            ) {
                let whole = feed_split(&bytes, &[], max);
                prop_assert_eq!(feed_split(&bytes, &cuts, max), whole);
                let mut r = SseReader::new(max);
                r.feed(&bytes, |d| assert!(d.len() <= max));
                prop_assert!(r.pending().is_none_or(|p| p.len() <= max));
            }

            #[test]
            fn sse_ish_bytes_chunking_is_irrelevant(
                bytes in prop::collection::vec(prop::sample::select(b"data: \r\n{}\"[DONE]id".to_vec()), 0..256),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                prop_assert_eq!(feed_split(&bytes, &cuts, 16), feed_split(&bytes, &[], 16));
            }

            #[test]
            fn any_chunking_of_a_valid_stream_gives_the_same_facts(
                pieces in prop::collection::vec((piece(), any::<u8>()), 0..40),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
                max in prop::sample::select(vec![8usize, 64, 1 << 18]),
            ) {
                let bytes = render(&pieces);
                let whole = feed_split(&bytes, &[], max);
                prop_assert_eq!(feed_split(&bytes, &cuts, max), whole.clone());
                let mut o = StreamObserver::with_max_event_bytes(max);
                for b in &bytes {
                    o.feed(std::slice::from_ref(b));
                }
                prop_assert_eq!(o.finish(), whole);
            }
        }
    }
}
