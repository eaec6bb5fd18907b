//! Cutting text to a size on a character boundary: the one rule every bounded value (span
//! attributes, error bodies, report fields, picked strings) follows. A leaf.

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most `max` bytes on a character boundary, in place.
pub fn truncate_string(text: &mut String, max: usize) {
    let keep = truncate_utf8(text, max).len();
    text.truncate(keep);
}

/// Marks, after what was kept of a value, that it was cut from `total` bytes: the one visible
/// cut marker of every bounded value.
pub fn mark_cut(kept: &mut String, total: u64) {
    use std::fmt::Write as _;
    let _ = write!(kept, "…[truncated: {total} bytes in all]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
        let mut s = String::from("日本語");
        truncate_string(&mut s, 4);
        assert_eq!(s, "日");
    }
}
