//! The redactor on arbitrary text with a secret taken from its letters and digits: never a panic, the secret
//! never survives, and redacting twice changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_gateway_otel::redact::redact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let secret: String = text.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    let secrets = if secret.len() >= 6 { vec![secret.clone()] } else { Vec::new() };
    let once = redact(&text, &secrets).into_owned();
    if !secrets.is_empty() {
        assert!(!once.contains(&secret), "{secret:?} survived in {once:?}");
    }
    assert_eq!(redact(&once, &secrets), once);
});
