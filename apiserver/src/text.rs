//! Cutting and decoding request text without ever slicing it at a byte index that may fall
//! inside a multi-byte character (which panics). Everything a request carries (names, tokens,
//! selectors, query parameters, patch paths) is cut through these.

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character boundary.
pub fn truncate_to_char_boundary(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let end = (0..=max_bytes)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    s.get(..end).unwrap_or_default()
}

/// Decodes lowercase or uppercase hexadecimal text; `None` for anything else (odd length,
/// non-hex or non-ASCII characters).
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let value = |d: u8| char::from(d).to_digit(16);
    digits
        .chunks_exact(2)
        .map(|pair| Some((value(pair[0])? * 16 + value(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_character() {
        let s = format!("a{}", "é".repeat(30));
        let cut = truncate_to_char_boundary(&s, 58);
        assert_eq!(cut.len(), 57);
        assert!(s.starts_with(cut));
        assert_eq!(truncate_to_char_boundary("abc", 58), "abc");
        assert_eq!(truncate_to_char_boundary("é", 1), "");
        assert_eq!(truncate_to_char_boundary("e\u{301}x", 2), "e");
    }

    #[test]
    fn hex_decoding_refuses_anything_but_pairs_of_hex_digits() {
        assert_eq!(decode_hex("7b7d"), Some(b"{}".to_vec()));
        assert_eq!(decode_hex("7B7D"), Some(b"{}".to_vec()));
        assert_eq!(decode_hex("a\u{e9}b"), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("\u{e9}"), None);
    }
}
