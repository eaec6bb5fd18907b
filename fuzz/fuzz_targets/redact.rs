//! The redactor on arbitrary text with a secret taken from its letters and digits: never a panic, the secret
//! never survives, and redacting twice changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_gateway_otel::fuzz::redact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let secret: String = text.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    // A secret spelled inside the marker is not redacted (it cannot be a real key).
    let marker = llm_gateway_otel::fuzz::REDACTED;
    let secrets = if secret.len() >= 6 && !marker.contains(&secret) {
        vec![secret.clone()]
    } else {
        Vec::new()
    };
    let once = redact(&text, &secrets).into_owned();
    if !secrets.is_empty() {
        // Outside the markers (a secret may be spelled like the marker's own letters).
        let outside = once.replace(marker, "\0");
        assert!(!outside.contains(&secret), "{secret:?} survived in {once:?}");
    }
    assert_eq!(redact(&once, &secrets), once);
});
