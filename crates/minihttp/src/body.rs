//! Body framing: how long a request body is (`Content-Length` or chunked),
//! an incremental decoder that hands out body bytes without copying them,
//! and the chunked encoder for streamed responses.

use crate::error::{Error, Kind};
use crate::pct::hex;

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no framing header, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One step of [`Decoder::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// Input bytes used (framing and data); drop them from the buffer.
    pub consumed: usize,
    /// Body bytes found, a sub-slice of the input (possibly empty).
    pub data: &'a [u8],
    /// Whether the body is complete.
    pub done: bool,
}

/// Longest chunk-size line extension, and total extension bytes per body;
/// longer answers 400. Extensions carry nothing this server uses, and a cap
/// stops a client from making the server scan unbounded framing.
const MAX_EXTENSIONS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunked {
    /// Reading hex digits of the chunk size.
    Size,
    /// Whitespace after the size: a `;` must follow (RFC 9112's `BWS`).
    SizeWs,
    /// After a `;`: whitespace, then an extension's name.
    ExtPreName,
    /// In an extension's name (a token).
    ExtName,
    /// Whitespace after a name: `=` or `;` must follow.
    ExtPostName,
    /// After `=`: whitespace, then a token or a quoted string.
    ExtPreValue,
    /// In a token value.
    ExtToken,
    /// In a quoted value.
    ExtQuoted,
    /// After a backslash in a quoted value.
    ExtQuotedPair,
    /// After a quoted value's closing quote.
    ExtPostQuote,
    /// Whitespace after a value: `;` must follow.
    ExtWs,
    /// Seen CR after the size line; expecting LF.
    SizeLf,
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// After chunk data; expecting CR.
    DataCr,
    /// Expecting LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field's name (a token, no whitespace before `:`).
    TrailerName,
    /// In a trailer field's value, after the `:`.
    TrailerValue,
    /// Seen CR in a trailer line; expecting LF.
    TrailerLf,
    /// Seen CR of the final empty line; expecting LF.
    EndLf,
    /// The body is complete.
    Done,
}

/// The most hex digits a chunk size may have, leading zeros included:
/// enough for any size written with padding, and a bound on the line.
const MAX_SIZE_DIGITS: u8 = 32;

/// An incremental body decoder for one request.
///
/// Feed it the bytes after the head, as they arrive; each [`decode`] call
/// consumes some framing and returns at most one contiguous run of body
/// bytes, borrowed from the input. Enforces the body limit (413) and strict
/// chunked syntax (RFC 9112 section 7.1): hex sizes of at most 32 digits
/// (leading zeros included; a size past 64 bits is over any limit, 413),
/// CRLF line endings (a bare LF is an error: lenient line endings are a
/// known smuggling vector), whitespace only where the grammar allows it,
/// extensions checked against their grammar and bounded, trailer field
/// lines (`name: value`) checked, bounded with their line endings, and
/// discarded.
///
/// [`decode`]: Decoder::decode
///
/// ```
/// use minihttp::{BodyKind, Decoder};
/// let mut dec = Decoder::new(BodyKind::Chunked, 1024, 1024);
/// let mut body = Vec::new();
/// let (used, done) = dec.decode_into(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nnext", &mut body).unwrap();
/// assert_eq!((used, done, &body[..]), (21, true, &b"abc"[..]));
///
/// // Over the limit: 413, however the body is framed.
/// let mut big = Decoder::new(BodyKind::Length(100), 10, 1024);
/// assert_eq!(big.decode(b"abc").unwrap_err().status().as_u16(), 413);
/// let mut big = Decoder::new(BodyKind::Chunked, 10, 1024);
/// assert_eq!(big.decode(b"b\r\n").unwrap_err().status().as_u16(), 413);
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    kind: Mode,
    /// Body bytes seen so far.
    total: u64,
    max_body: u64,
    max_trailers: usize,
}

#[derive(Clone, Debug)]
enum Mode {
    Length {
        remaining: u64,
    },
    Chunked {
        state: Chunked,
        size: u64,
        digits: u8,
        ext: usize,
        ext_total: usize,
        trailers: usize,
    },
}

/// The next state of a chunk extension (or of the whitespace before one)
/// after byte `b`, if `b` may come there (RFC 9112 section 7.1.1: `*( BWS ";" BWS name [ BWS "=" BWS
/// ( token / quoted-string ) ] )`). A lenient extension parser is a
/// smuggling vector: a proxy in front that parses differently would frame
/// the body differently.
fn extension(state: Chunked, b: u8) -> Option<Chunked> {
    use crate::method::is_tchar;
    let ws = b == b' ' || b == b'\t';
    Some(match state {
        Chunked::SizeWs | Chunked::ExtPreName if ws => state,
        Chunked::SizeWs if b == b';' => Chunked::ExtPreName,
        Chunked::ExtPreName | Chunked::ExtName if is_tchar(b) => Chunked::ExtName,
        Chunked::ExtName | Chunked::ExtPostName if ws => Chunked::ExtPostName,
        Chunked::ExtName | Chunked::ExtPostName if b == b'=' => Chunked::ExtPreValue,
        Chunked::ExtName | Chunked::ExtPostName | Chunked::ExtToken if b == b';' => {
            Chunked::ExtPreName
        }
        Chunked::ExtName | Chunked::ExtToken | Chunked::ExtPostQuote if b == b'\r' => {
            Chunked::SizeLf
        }
        Chunked::ExtPreValue if ws => state,
        Chunked::ExtPreValue if b == b'"' => Chunked::ExtQuoted,
        Chunked::ExtPreValue | Chunked::ExtToken if is_tchar(b) => Chunked::ExtToken,
        Chunked::ExtToken | Chunked::ExtPostQuote | Chunked::ExtWs if ws => Chunked::ExtWs,
        Chunked::ExtPostQuote | Chunked::ExtWs if b == b';' => Chunked::ExtPreName,
        Chunked::ExtQuoted => match b {
            b'"' => Chunked::ExtPostQuote,
            b'\\' => Chunked::ExtQuotedPair,
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => state,
            _ => return None,
        },
        Chunked::ExtQuotedPair => match b {
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => Chunked::ExtQuoted,
            _ => return None,
        },
        _ => return None,
    })
}

/// The next state of the trailer section after byte `b`, if `b` may come
/// there: field lines `name ":" value` (no whitespace before the colon, no
/// obsolete line folding), then an empty line.
fn trailer(state: Chunked, b: u8) -> Option<Chunked> {
    use crate::method::is_tchar;
    Some(match state {
        Chunked::TrailerStart if b == b'\r' => Chunked::EndLf,
        Chunked::TrailerStart | Chunked::TrailerName if is_tchar(b) => Chunked::TrailerName,
        Chunked::TrailerName if b == b':' => Chunked::TrailerValue,
        Chunked::TrailerValue => match b {
            b'\r' => Chunked::TrailerLf,
            b'\t' | 0x20..=0x7e | 0x80..=0xff => state,
            _ => return None,
        },
        Chunked::TrailerLf if b == b'\n' => Chunked::TrailerStart,
        _ => return None,
    })
}

impl Decoder {
    /// A decoder for a body framed as `kind`, at most `max_body` bytes
    /// decoded and `max_trailers` bytes of trailer section.
    pub fn new(kind: BodyKind, max_body: u64, max_trailers: usize) -> Decoder {
        let kind = match kind {
            BodyKind::Empty => Mode::Length { remaining: 0 },
            BodyKind::Length(n) => Mode::Length { remaining: n },
            BodyKind::Chunked => Mode::Chunked {
                state: Chunked::Size,
                size: 0,
                digits: 0,
                ext: 0,
                ext_total: 0,
                trailers: 0,
            },
        };
        Decoder {
            kind,
            total: 0,
            max_body,
            max_trailers,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        match self.kind {
            Mode::Length { remaining } => remaining == 0,
            Mode::Chunked { state, .. } => state == Chunked::Done,
        }
    }

    /// Body bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.total
    }

    /// For a `Content-Length` body, the bytes still expected.
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.kind {
            Mode::Length { remaining } => Some(remaining),
            Mode::Chunked { .. } => None,
        }
    }

    /// Decodes from `input`. `consumed == 0 && !done` means every byte was
    /// used and more input is needed. Once done, consumes nothing.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, Error> {
        match &mut self.kind {
            Mode::Length { remaining } => {
                // A declared length over the limit: refused before a byte
                // (the server checks it with the head already).
                if self.total.saturating_add(*remaining) > self.max_body {
                    return Err(Error::new(Kind::BodyTooLarge));
                }
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                self.total += n as u64;
                Ok(Step {
                    consumed: n,
                    data: &input[..n],
                    done: *remaining == 0,
                })
            }
            Mode::Chunked {
                state,
                size,
                digits,
                ext,
                ext_total,
                trailers,
            } => {
                let bad = || Error::new(Kind::Chunk);
                let mut i = 0;
                while i < input.len() {
                    let b = input[i];
                    match *state {
                        Chunked::Size => match hex(b) {
                            Some(v) => {
                                if *digits == MAX_SIZE_DIGITS {
                                    return Err(bad());
                                }
                                // A size past `u64` is past any body limit.
                                if *size > u64::MAX >> 4 {
                                    return Err(Error::new(Kind::BodyTooLarge));
                                }
                                *size = *size << 4 | u64::from(v);
                                *digits += 1;
                            }
                            None if *digits == 0 => return Err(bad()),
                            None => match b {
                                b' ' | b'\t' => *state = Chunked::SizeWs,
                                b';' => *state = Chunked::ExtPreName,
                                b'\r' => *state = Chunked::SizeLf,
                                _ => return Err(bad()),
                            },
                        },
                        // Whitespace after the size counts with the
                        // extensions: it is framing too, and must not go on
                        // forever.
                        Chunked::SizeWs
                        | Chunked::ExtPreName
                        | Chunked::ExtName
                        | Chunked::ExtPostName
                        | Chunked::ExtPreValue
                        | Chunked::ExtToken
                        | Chunked::ExtQuoted
                        | Chunked::ExtQuotedPair
                        | Chunked::ExtPostQuote
                        | Chunked::ExtWs => {
                            *ext += 1;
                            *ext_total += 1;
                            if *ext > MAX_EXTENSIONS || *ext_total > MAX_EXTENSIONS {
                                return Err(bad());
                            }
                            *state = extension(*state, b).ok_or_else(bad)?;
                        }
                        Chunked::SizeLf => {
                            if b != b'\n' {
                                return Err(bad());
                            }
                            *ext = 0;
                            *digits = 0;
                            if *size == 0 {
                                *state = Chunked::TrailerStart;
                            } else {
                                if self.total.saturating_add(*size) > self.max_body {
                                    return Err(Error::new(Kind::BodyTooLarge));
                                }
                                *state = Chunked::Data(*size);
                                *size = 0;
                            }
                        }
                        Chunked::Data(left) => {
                            let n = left.min((input.len() - i) as u64) as usize;
                            let left = left - n as u64;
                            *state = if left == 0 {
                                Chunked::DataCr
                            } else {
                                Chunked::Data(left)
                            };
                            self.total += n as u64;
                            return Ok(Step {
                                consumed: i + n,
                                data: &input[i..i + n],
                                done: false,
                            });
                        }
                        Chunked::DataCr => {
                            if b != b'\r' {
                                return Err(bad());
                            }
                            *state = Chunked::DataLf;
                        }
                        Chunked::DataLf => {
                            if b != b'\n' {
                                return Err(bad());
                            }
                            *state = Chunked::Size;
                        }
                        Chunked::TrailerStart
                        | Chunked::TrailerName
                        | Chunked::TrailerValue
                        | Chunked::TrailerLf
                        | Chunked::EndLf => {
                            // Every byte of the trailer section counts,
                            // line endings included; the final CRLF is
                            // not part of it (RFC 9112 section 7.1).
                            let last_crlf = *state == Chunked::EndLf
                                || (*state == Chunked::TrailerStart && b == b'\r');
                            *trailers += usize::from(!last_crlf);
                            if *trailers > self.max_trailers {
                                return Err(Error::new(Kind::HeadTooLarge));
                            }
                            if *state != Chunked::EndLf {
                                *state = trailer(*state, b).ok_or_else(bad)?;
                                i += 1;
                                continue;
                            }
                            if b != b'\n' {
                                return Err(bad());
                            }
                            *state = Chunked::Done;
                            return Ok(Step {
                                consumed: i + 1,
                                data: &[],
                                done: true,
                            });
                        }
                        Chunked::Done => {
                            return Ok(Step {
                                consumed: i,
                                data: &[],
                                done: true,
                            });
                        }
                    }
                    i += 1;
                }
                Ok(Step {
                    consumed: i,
                    data: &[],
                    done: *state == Chunked::Done,
                })
            }
        }
    }

    /// Decodes as much of `input` as possible, appending body bytes to
    /// `out`. Returns the bytes consumed and whether the body is complete.
    pub fn decode_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), Error> {
        let mut used = 0;
        loop {
            let step = self.decode(&input[used..])?;
            used += step.consumed;
            out.extend_from_slice(step.data);
            if step.done || step.consumed == 0 {
                return Ok((used, step.done));
            }
        }
    }
}

/// The chunked transfer coding for a streamed response body.
///
/// ```
/// let mut out = Vec::new();
/// minihttp::ChunkedEncoder::encode_chunk(b"hello", &mut out);
/// minihttp::ChunkedEncoder::encode_chunk(b"", &mut out); // skipped: it would end the body
/// minihttp::ChunkedEncoder::finish(&mut out);
/// assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ChunkedEncoder;

impl ChunkedEncoder {
    /// Appends `data` as one chunk; nothing for empty data (an empty chunk
    /// would end the body).
    pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        ChunkedEncoder::chunk_header(data.len() as u64, out);
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }

    /// Appends the size line of a chunk of `len` (> 0) bytes, for callers
    /// that write the data themselves; they must follow it with the data
    /// and CRLF.
    pub fn chunk_header(len: u64, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 16];
        let mut i = buf.len();
        let mut n = len;
        loop {
            i -= 1;
            buf[i] = HEX[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&buf[i..]);
        out.extend_from_slice(b"\r\n");
    }

    /// Appends the last chunk and the (empty) trailer section.
    pub fn finish(out: &mut Vec<u8>) {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_crlf_is_no_part_of_the_trailer_section() {
        // (trailer section, the smallest `max_trailers` that takes it)
        for (trailers, fits) in [(&b""[..], 0), (b"T: 1\r\n", 6), (b"T: 1\r\nU: 2\r\n", 12)] {
            let wire = [&b"1\r\na\r\n0\r\n"[..], trailers, b"\r\n"].concat();
            let mut body = Vec::new();
            let mut d = Decoder::new(BodyKind::Chunked, 1024, fits);
            assert_eq!(
                d.decode_into(&wire, &mut body),
                Ok((wire.len(), true)),
                "{fits}"
            );
            assert_eq!(body, b"a");
            if fits > 0 {
                let mut d = Decoder::new(BodyKind::Chunked, 1024, fits - 1);
                let e = d.decode_into(&wire, &mut Vec::new()).unwrap_err();
                assert_eq!(e.status().as_u16(), 431, "{fits}");
            }
        }
    }
}
