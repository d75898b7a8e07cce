//! Response header fields: an ordered list of validated name/value pairs.

use std::borrow::Cow;

use crate::error::{Error, Kind};
use crate::method::is_tchar;

/// The header fields of a [`Response`](crate::Response), in insertion order.
///
/// Names are matched case-insensitively. Names must be tokens and values
/// must not contain control characters other than horizontal tab, so that no
/// header can split the response, nor begin or end with whitespace (a
/// field value has none there, RFC 9110 section 5.5); anything else is an
/// error value.
/// `&'static str` names and values are stored without allocating.
///
/// The server owns message framing and the date: `Content-Length`,
/// `Transfer-Encoding`, `Connection` and `Date` set here are not sent as
/// they are (see
/// [`Conn::encode_response`](crate::Conn::encode_response)).
///
/// ```
/// let mut h = minihttp::Headers::new();
/// h.insert("Content-Type", "text/plain").unwrap();
/// assert_eq!(h.get("content-type"), Some("text/plain"));
/// assert!(h.insert("Bad Name", "x").unwrap_err().is_invalid_header());
/// assert!(h.insert("X-Split", "a\r\nSet-Cookie: b").is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Headers {
    /// The first field, kept inline: a typical response (a content type)
    /// then allocates nothing for its fields.
    first: Option<Entry>,
    /// The fields after `first`, in order.
    rest: Vec<Entry>,
}

type Entry = (Cow<'static, str>, Cow<'static, str>);

/// Equal when the fields are, in order (wherever they are stored).
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.entries().eq(other.entries())
    }
}

impl Eq for Headers {}

/// Whether `name` is a non-empty token.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

/// Whether `value` has no control characters but horizontal tab, and no
/// leading or trailing whitespace.
pub(crate) fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    b.iter().all(|&c| c == b'\t' || (c >= 0x20 && c != 0x7f))
        && !b.first().is_some_and(|&c| c == b' ' || c == b'\t')
        && !b.last().is_some_and(|&c| c == b' ' || c == b'\t')
}

/// A field whose name is a token and whose value has no forbidden bytes.
fn checked(name: Cow<'static, str>, value: Cow<'static, str>) -> Result<Entry, Error> {
    if valid_name(&name) && valid_value(&value) {
        Ok((name, value))
    } else {
        Err(Error::new(Kind::InvalidHeader))
    }
}

impl Headers {
    /// No header fields.
    pub const fn new() -> Headers {
        Headers {
            first: None,
            rest: Vec::new(),
        }
    }

    /// Adds a field, keeping any others of the same name.
    pub fn append(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Result<(), Error> {
        self.push(checked(name.into(), value.into())?);
        Ok(())
    }

    /// Sets a field, replacing every other of the same name.
    pub fn insert(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Result<(), Error> {
        let entry = checked(name.into(), value.into())?;
        self.remove(&entry.0);
        self.push(entry);
        Ok(())
    }

    /// Appends a checked field, inline when it is the only one.
    fn push(&mut self, entry: Entry) {
        if self.is_empty() {
            self.first = Some(entry);
        } else {
            self.rest.push(entry);
        }
    }

    /// Every field, in order.
    fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.first.iter().chain(self.rest.iter())
    }

    /// One field, from constants known to be valid.
    pub(crate) fn one_static(name: &'static str, value: &'static str) -> Headers {
        debug_assert!(valid_name(name) && valid_value(value));
        Headers {
            first: Some((Cow::Borrowed(name), Cow::Borrowed(value))),
            rest: Vec::new(),
        }
    }

    /// The first value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Every value of the field `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Whether a field `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every field `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.len();
        if self
            .first
            .as_ref()
            .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            self.first = None;
        }
        self.rest.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.len()
    }

    /// Every field, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries().map(|(n, v)| (&**n, &**v))
    }

    /// Calls `f` with every field, in order (without an iterator adapter:
    /// the loop of every response's encoding).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, &str)) {
        if let Some((n, v)) = &self.first {
            f(n, v);
        }
        for (n, v) in &self.rest {
            f(n, v);
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_survives_removing_the_inline_field() {
        let mut h = Headers::new();
        h.append("a", "1").unwrap();
        h.append("b", "2").unwrap();
        assert_eq!(h.remove("A"), 1);
        h.append("c", "3").unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), [("b", "2"), ("c", "3")]);
        let mut same = Headers::new();
        same.append("b", "2").unwrap();
        same.append("c", "3").unwrap();
        assert_eq!(h, same);
        assert_eq!(h.len(), 2);
        h.remove("b");
        h.remove("c");
        assert!(h.is_empty());
        h.insert("d", "4").unwrap();
        assert_eq!(h.get("D"), Some("4"));
    }

    #[test]
    fn validation_and_lookup() {
        let mut h = Headers::new();
        h.append("X-A", "1").unwrap();
        h.append("x-a", "2").unwrap();
        h.append("Empty", "").unwrap();
        assert_eq!(h.get_all("X-a").collect::<Vec<_>>(), ["1", "2"]);
        h.insert("X-A", String::from("3")).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), [("Empty", ""), ("X-A", "3")]);
        assert_eq!(h.remove("x-A"), 1);
        assert_eq!(h.len(), 1);
        for bad_name in ["", "a b", "a:b", "é", "a\r"] {
            assert!(h.append(bad_name, "v").is_err(), "{bad_name:?}");
        }
        for bad_value in ["a\nb", "a\rb", "a\0b", " lead", "trail\t", "del\x7f"] {
            assert!(h.append("n", bad_value).is_err(), "{bad_value:?}");
        }
        assert!(h.append("n", "tab\tinside é").is_ok());
    }
}
