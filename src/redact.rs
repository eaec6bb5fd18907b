//! Keeps secrets out of anything recorded: exact credentials seen on the request, key-like
//! tokens, and secret query parameters in URLs. Pure functions over text.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Whether a header or query-parameter name usually carries a secret. The name is read as
/// words (split on anything but letters and digits): a word ending in `key` or `token`,
/// starting with `auth` (but `author…` other than `authoriz…`/`authoris…`), `signature` or `credential`, the word `sig`, or one holding `secret`
/// or `passw`. Words merely containing those letters (`max_tokens`, `design`) are not secrets.
pub fn is_secret_name(name: &str) -> bool {
    fn has(word: &[u8], part: &str) -> bool {
        word.windows(part.len())
            .any(|w| w.eq_ignore_ascii_case(part.as_bytes()))
    }
    fn starts(word: &[u8], part: &str) -> bool {
        word.len() >= part.len() && word[..part.len()].eq_ignore_ascii_case(part.as_bytes())
    }
    fn ends(word: &[u8], part: &str) -> bool {
        word.len() >= part.len()
            && word[word.len() - part.len()..].eq_ignore_ascii_case(part.as_bytes())
    }
    name.as_bytes()
        .split(|b| !b.is_ascii_alphanumeric())
        .any(|w| {
            ends(w, "key")
                || ends(w, "token")
                // `auth`, `authorization` (`-isation`), `authToken`; not `author`, `authority`.
                || starts(w, "auth")
                    && (!starts(w, "author") || starts(w, "authoriz") || starts(w, "authoris"))
                || starts(w, "signature")
                || starts(w, "credential")
                || w.eq_ignore_ascii_case(b"sig")
                || has(w, "secret")
                || has(w, "passw")
        })
}

/// Replaces every occurrence of a known secret, and every key-like token, with
/// [`REDACTED`]. A key-like token is a run of `[A-Za-z0-9_-]` of 32 or more characters
/// holding both letters and digits (an AssemblyAI key is 32 hex characters), a run of 16 or
/// more after `sk-`/`sk_`, or the credential after `Bearer `. UUIDs (request ids) are kept.
pub fn redact<'a>(text: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(text);
    // A "secret" spelled inside the marker itself cannot be a real key, and replacing it would
    // rewrite the markers already there.
    for s in secrets
        .iter()
        .filter(|s| !s.is_empty() && !REDACTED.contains(s.as_str()))
    {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), REDACTED));
        }
    }
    match redact_key_like(&out) {
        Some(clean) => Cow::Owned(clean),
        None => out,
    }
}

/// `Some(redacted)` when `text` holds a key-like token, else `None`.
fn redact_key_like(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_token_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        let token = &text[start..i];
        let after_bearer = start >= 7 && bytes[start - 7..start].eq_ignore_ascii_case(b"bearer ");
        if token != REDACTED_WORD && (after_bearer && token.len() >= 8 || is_key_like(token)) {
            spans.push((start, i));
        }
    }
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (s, e) in spans {
        out.push_str(&text[last..s]);
        out.push_str(REDACTED);
        last = e;
    }
    out.push_str(&text[last..]);
    Some(out)
}

const REDACTED_WORD: &str = "REDACTED";

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Prefixes of the ids providers give completions, messages and tool calls: ids, not keys.
const ID_PREFIXES: [&str; 6] = ["chatcmpl-", "msg_", "toolu_", "call_", "req_", "resp_"];

fn is_key_like(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    if (lower.starts_with("sk-") || lower.starts_with("sk_")) && token.len() >= 19 {
        return true;
    }
    token.len() >= 32
        && !is_uuid(token)
        && !ID_PREFIXES.iter().any(|p| token.starts_with(p))
        && token.bytes().any(|b| b.is_ascii_digit())
        && token.bytes().any(|b| b.is_ascii_alphabetic())
}

fn is_uuid(token: &str) -> bool {
    let parts: Vec<&str> = token.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A URL fit for `url.full`: user and password removed, the value of every secret-looking
/// query parameter (and every key-like value) replaced with [`REDACTED`].
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut clean = url.clone();
    // Only fails for URLs that cannot have credentials, which then have none to remove.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    if clean.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_name(&k) {
                    REDACTED.to_owned()
                } else {
                    redact(&v, &[]).into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        clean.set_query(Some(&query.join("&")));
    }
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent(text in any::<String>(), secret in "[a-z]{6,12}") {
            let once = redact(&text, std::slice::from_ref(&secret)).into_owned();
            let twice = redact(&once, &[secret]).into_owned();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn a_key_anywhere_is_removed(
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
            key in "[0-9a-f]{32}",
        ) {
            // A key-like neighbour may merge with the key into one token; either way the key's
            // characters must not survive as a whole.
            let text = format!("{before} {key} {after}");
            let clean = redact(&text, &[]);
            prop_assert!(!clean.contains(&key), "{}", clean);
        }

        #[test]
        fn known_secrets_are_removed_whatever_they_look_like(
            text in "[ -~]{0,60}",
            secret in "[!-~]{6,20}",
        ) {
            let with = format!("{text}{secret}{text}");
            prop_assert!(!redact(&with, std::slice::from_ref(&secret)).contains(&secret));
        }
    }

    #[test]
    fn a_secret_spelled_like_the_marker_leaves_markers_alone() {
        // Found by the fuzzer: replacing "REDACTED" would rewrite every marker again.
        let secrets = vec!["REDACTED".to_owned()];
        let once = redact("key REDACTED 0123456789abcdef0123456789abcdef", &secrets).into_owned();
        assert_eq!(once, "key REDACTED [REDACTED]");
        assert_eq!(redact(&once, &secrets), once);
    }

    #[test]
    fn secret_names_are_words_not_letters() {
        for name in [
            "api_key",
            "apikey",
            "x-api-key",
            "key",
            "Authorization",
            "authorisation",
            "x-auth-token",
            "access_token",
            "client_secret",
            "password",
            "passwd",
            "sig",
            "signature",
            "credentials",
            "auth",
            "authToken",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "author",
            "authority",
            "max_tokens",
            "tokens",
            "model",
            "design",
            "keyboard",
            "stream",
            "temperature",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn uuids_and_ordinary_words_are_kept() {
        let text =
            "request 5d6c0e2a-8f1b-4c3d-9e7f-0a1b2c3d4e5f failed for model claude-sonnet-4-6";
        assert_eq!(redact(text, &[]), text);
    }

    #[test]
    fn provider_ids_are_not_keys() {
        for id in [
            "chatcmpl-AbC123dEf456GhI789jKl012MnO345pQ",
            "msg_01XFDUDYJgAACzvnptvVoYEL2cb3a8fG",
            "toolu_01A09q90qw90lq917835lq9Xyz12345",
            "call_abc123def456ghi789jkl012mno345pq",
        ] {
            assert_eq!(redact(id, &[]), id);
        }
        // A key after such a prefix is still a key when it is one the request carried.
        assert_eq!(
            redact(
                "msg_0123456789abcdef0123456789abcdef",
                &["msg_0123456789abcdef0123456789abcdef".into()]
            ),
            REDACTED
        );
    }
}

/// The examples that were doc tests before this module became private.
#[cfg(test)]
mod examples {
    #[test]
    fn knows_secret_names() {
        use crate::redact::is_secret_name;
        assert!(is_secret_name("api_key"));
        assert!(is_secret_name("Authorization"));
        assert!(is_secret_name("x-access-token"));
        assert!(!is_secret_name("model"));
        assert!(!is_secret_name("max_tokens"));
    }

    #[test]
    fn redacts_keys_and_keeps_request_ids() {
        use crate::redact::redact;
        let key = "0123456789abcdef0123456789abcdef".to_string();
        let text = format!("Invalid API key: {key} (request 5d6c0e2a-8f1b-4c3d-9e7f-0a1b2c3d4e5f)");
        let clean = redact(&text, &[]);
        assert!(!clean.contains(&key));
        assert!(clean.contains("5d6c0e2a-8f1b-4c3d-9e7f-0a1b2c3d4e5f"));
        assert_eq!(
            redact("short mysecret", &["mysecret".into()]),
            "short [REDACTED]"
        );
    }

    #[test]
    fn redacts_credentials_in_urls() {
        use crate::redact::redact_url;
        let url = reqwest::Url::parse(
            "https://u:p@llm-gateway.assemblyai.com/v1/chat/completions?api_key=abc123&x=1",
        )
        .unwrap();
        assert_eq!(
            redact_url(&url),
            "https://llm-gateway.assemblyai.com/v1/chat/completions?api_key=[REDACTED]&x=1"
        );
    }
}
