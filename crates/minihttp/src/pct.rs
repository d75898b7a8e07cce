//! Percent-decoding of URL parts and escaping for HTML and URLs.

use std::borrow::Cow;

/// The value of a hex digit (either case).
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `input` strictly: `None` when a `%` is not followed by
/// two hex digits. Borrows when there is nothing to decode.
pub(crate) fn decode_strict(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !input.contains(&b'%') {
        return Some(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hi = hex(*input.get(i + 1)?)?;
            let lo = hex(*input.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(out))
}

/// Percent-decodes `input` leniently into bytes: a `%` without two hex
/// digits stays as it is, and `+` becomes a space when `plus_is_space`
/// (form encoding). Borrows when there is nothing to decode.
pub(crate) fn decode_lenient(input: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !(input.contains(&b'%') || (plus_is_space && input.contains(&b'+'))) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => match (
                input.get(i + 1).and_then(|&b| hex(b)),
                input.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// A path segment as route literals and `serve_under` prefixes compare it:
/// percent-decoded to bytes (a `+` stays a `+`), not to text, so that
/// segments that decode to different bytes never compare equal.
pub(crate) fn decode_segment(segment: &str) -> Cow<'_, [u8]> {
    decode_lenient(segment.as_bytes(), false)
}

/// Whether the raw (encoded) `segment` is `decoded`, a segment decoded with
/// [`decode_segment`].
pub(crate) fn segment_is(segment: &str, decoded: &[u8]) -> bool {
    *decode_segment(segment) == *decoded
}

/// Percent-decodes `input` leniently into text: as [`decode_lenient`], and
/// invalid UTF-8 becomes U+FFFD. Borrows when there is nothing to decode.
pub(crate) fn decode_lossy(input: &str, plus_is_space: bool) -> Cow<'_, str> {
    match decode_lenient(input.as_bytes(), plus_is_space) {
        Cow::Borrowed(_) => Cow::Borrowed(input),
        Cow::Owned(out) => match String::from_utf8(out) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

/// Percent-encodes everything but unreserved characters and `/`, for a path
/// written into an `href`.
pub(crate) fn encode_path(input: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub(crate) fn escape_html(input: &str, out: &mut String) {
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strict() {
        assert_eq!(decode_strict(b"/a%20b").unwrap().as_ref(), b"/a b");
        assert_eq!(decode_strict(b"%2e%2E").unwrap().as_ref(), b"..");
        assert!(matches!(
            decode_strict(b"/plain").unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(decode_strict(b"%").is_none());
        assert!(decode_strict(b"%4").is_none());
        assert!(decode_strict(b"%zz").is_none());
    }

    #[test]
    fn lossy() {
        assert_eq!(decode_lossy("a+b%21", true), "a b!");
        assert_eq!(decode_lossy("a+b", false), "a+b");
        assert_eq!(decode_lossy("100%", false), "100%");
        assert_eq!(decode_lossy("%ff", false), "\u{fffd}");
        assert_eq!(decode_lossy("%C3%A9", false), "é");
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        escape_html("<a href=\"x\">&'", &mut s);
        assert_eq!(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let mut s = String::new();
        encode_path("/a b/é?#".as_bytes(), &mut s);
        assert_eq!(s, "/a%20b/%C3%A9%3F%23");
    }

    proptest! {
        #[test]
        fn encode_then_decode(s in "\\PC{0,30}") {
            let mut enc = String::new();
            encode_path(s.as_bytes(), &mut enc);
            let dec = decode_strict(enc.as_bytes()).unwrap();
            prop_assert_eq!(dec.as_ref(), s.as_bytes());
            prop_assert_eq!(decode_lossy(&enc, false), s.as_str());
        }
    }
}
