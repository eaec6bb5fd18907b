//! The JSON field picker on arbitrary bytes, fed whole and in the chunks the first byte
//! chooses: never a panic or a hang, and the same facts whatever the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_gateway_otel::fuzz::{pick, JsonPicker};

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let whole = pick(body);
    let mut picker = JsonPicker::new();
    for chunk in body.chunks(usize::from(step % 64) + 1) {
        picker.feed(chunk);
    }
    assert_eq!(picker.finish(), whole);
});
