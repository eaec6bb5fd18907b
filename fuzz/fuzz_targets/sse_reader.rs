//! The SSE stream observer on arbitrary bytes in arbitrary chunks: never a panic or a hang,
//! and the same stream facts whatever the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_gateway_otel::fuzz::StreamObserver;

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let mut whole = StreamObserver::new();
    whole.feed(body);
    let mut chunked = StreamObserver::new();
    for chunk in body.chunks(usize::from(step % 32) + 1) {
        chunked.feed(chunk);
    }
    assert_eq!(chunked.finish(), whole.finish());
});
