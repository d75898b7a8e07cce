//! Serving files from a directory, and the pieces that do not need a
//! runtime: safe path resolution, MIME types, validators (`ETag`,
//! `Last-Modified`) and conditional requests, `Range`, directory listings.
//!
//! [`StaticFiles`] puts them together. It looks files up with `std::fs`
//! and answers with a [`Body::File`] that the server reads in chunks while
//! it sends.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, Metadata};
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use crate::date::{fmt_http_date, parse_http_date, unix_secs};
use crate::method::Method;
use crate::pct;
use crate::request::Request;
use crate::response::{Body, FileBody, Response};
use crate::status::StatusCode;

/// Why a URL path does not name a file under the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// Not a path this server accepts: a bad `%` escape, a NUL byte, an
    /// encoded path separator, or (except on Unix, where names are bytes)
    /// invalid UTF-8 (400).
    Malformed,
    /// A path that would leave the root: a `..` segment (also encoded), an
    /// absolute or drive path, or a symbolic link pointing outside; or one
    /// through a directory that the server may not search (403).
    Forbidden,
    /// Nothing there (404).
    NotFound,
}

impl ResolveError {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            ResolveError::Malformed => StatusCode::BAD_REQUEST,
            ResolveError::Forbidden => StatusCode::FORBIDDEN,
            ResolveError::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResolveError::Malformed => "malformed path",
            ResolveError::Forbidden => "path leaves the served directory or may not be searched",
            ResolveError::NotFound => "no such file",
        })
    }
}

impl std::error::Error for ResolveError {}

/// Maps a raw (percent-encoded) URL path to an existing file or directory
/// under `root`, refusing anything that could escape it.
///
/// `root` should be canonical ([`Path::canonicalize`]); the result is
/// canonical and always inside it. The path is decoded strictly, then
/// checked segment by segment (`.` and empty segments are skipped), then
/// canonicalized so that symbolic links are followed and checked too. A
/// path through a link out of the root is refused whether or not what it
/// names exists, so that the answer tells nothing about the outside.
///
/// ```
/// use minihttp::files::{resolve, ResolveError};
/// let root = std::env::temp_dir().canonicalize().unwrap();
/// assert_eq!(resolve(&root, "/%2e%2e/etc/passwd"), Err(ResolveError::Forbidden));
/// assert_eq!(resolve(&root, "/a%00b"), Err(ResolveError::Malformed));
/// ```
pub fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, ResolveError> {
    resolve_asked(root, url_path).map(|r| r.real)
}

/// What [`resolve_asked`] found.
struct Resolved {
    /// The path as asked for (under the root, before links are followed):
    /// its name is the one the client used.
    asked: PathBuf,
    /// Where it leads (canonical, under the root).
    real: PathBuf,
    /// The URL asked for a directory: its last segment is empty or `.`.
    dir_form: bool,
}

/// No path longer than this names a file (Linux's `PATH_MAX`); a longer
/// one is not looked up at all.
const MAX_PATH: usize = 4096;

/// [`resolve`], and what the client asked for.
fn resolve_asked(root: &Path, url_path: &str) -> Result<Resolved, ResolveError> {
    let rest = url_path.strip_prefix('/').ok_or(ResolveError::Forbidden)?;
    let mut path = root.to_path_buf();
    let mut dir_form = false;
    for raw in rest.split('/') {
        let seg = pct::decode_strict(raw.as_bytes()).ok_or(ResolveError::Malformed)?;
        if seg.iter().any(|b| matches!(b, b'\0' | b'/' | b'\\')) {
            return Err(ResolveError::Malformed);
        }
        match &*seg {
            b"" | b"." => {
                dir_form = true;
                continue;
            }
            b".." => return Err(ResolveError::Forbidden),
            _ => dir_form = false,
        }
        let seg = os_name(&seg).ok_or(ResolveError::Malformed)?;
        // Anything that is not a plain name (a drive prefix like `C:`, a
        // root) would replace the path instead of extending it.
        let mut comps = Path::new(seg).components();
        // On Windows a `:` also names an alternate data stream.
        if !matches!(
            (comps.next(), comps.next()),
            (Some(Component::Normal(_)), None)
        ) || (cfg!(windows) && seg.as_encoded_bytes().contains(&b':'))
        {
            return Err(ResolveError::Forbidden);
        }
        path.push(seg);
    }
    if path.as_os_str().len() > MAX_PATH {
        return Err(ResolveError::NotFound);
    }
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) => return Err(unresolved(root, &path, &e)),
    };
    if !real.starts_with(root) {
        return Err(ResolveError::Forbidden);
    }
    Ok(Resolved {
        asked: path,
        real,
        dir_form,
    })
}

/// Why `path`, under `root`, could not be resolved (`e`): a directory on
/// the way that the server may not search is 403, as a file it may not
/// read is; so is a path that leads out of the root; anything else is 404.
fn unresolved(root: &Path, path: &Path, e: &io::Error) -> ResolveError {
    if e.kind() == io::ErrorKind::PermissionDenied || leads_out(root, path) {
        ResolveError::Forbidden
    } else {
        ResolveError::NotFound
    }
}

/// Whether `path`, under `root` and not found, goes out of the root as far
/// as it can be followed: through a link out of it (whether or not what
/// follows exists), or into a dangling link that points out of it (whether
/// or not its target exists). Either way the answer is the same 403, so
/// that it tells nothing about what exists outside the root.
fn leads_out(root: &Path, path: &Path) -> bool {
    // What exists of the path (the root at worst), and its first part
    // missing.
    let (mut deepest, mut next) = existing_part(path, root);
    if !deepest.starts_with(root) {
        return true;
    }
    // The first missing part may be a link whose target is missing: where
    // that target would be (and so on, for a chain of such links, as far as
    // the system would follow one).
    let mut followed: Vec<PathBuf> = Vec::new();
    for _ in 0..MAX_LINKS {
        let Some(link) = next.take() else { break };
        if followed.contains(&link) {
            // A loop: the system would give up on it too.
            break;
        }
        let Ok(target) = fs::read_link(&link) else {
            break;
        };
        followed.push(link);
        // Absolute, as `deepest` is (canonical).
        let target = deepest.join(target);
        // A target under the link's own directory is looked at from there
        // (known to exist); any other from the top.
        let from = if target.starts_with(&deepest) {
            deepest.clone()
        } else {
            PathBuf::from("/")
        };
        let (real, missing) = existing_part(&target, &from);
        if !real.starts_with(root) {
            return true;
        }
        deepest = real;
        next = missing;
    }
    false
}

/// The deepest part of `path` that exists, canonical, and the first part
/// missing (none when all of it exists), below `known` (an existing part of
/// `path`, canonical, itself the answer when nothing below it exists).
///
/// What exists of a path is a prefix of it (a part that resolves has
/// parents that do), so the end of that prefix is found by halving: a
/// path of `n` parts costs about `log2(n)` lookups of a part, each of which
/// walks the whole part. (Looking at every part in turn cost `n` of them:
/// seconds for a missing file deep in a tree a thousand levels deep.)
fn existing_part(path: &Path, known: &Path) -> (PathBuf, Option<PathBuf>) {
    let mut below: Vec<&Path> = path
        .ancestors()
        .take_while(|a| a.starts_with(known) && *a != known)
        .collect();
    below.reverse();
    // The parts before `lo` exist (`found` is the last of them, or
    // `known`), the parts from `hi` on do not.
    let mut found = known.to_path_buf();
    let (mut lo, mut hi) = (0, below.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match below[mid].canonicalize() {
            Ok(real) => {
                found = real;
                lo = mid + 1;
            }
            Err(_) => hi = mid,
        }
    }
    (found, below.get(lo).map(|p| p.to_path_buf()))
}

/// The most links followed in a chain of dangling links (Linux's own
/// limit).
const MAX_LINKS: usize = 40;

/// A file name from the bytes of a decoded URL segment: any bytes on Unix,
/// where names are bytes; UTF-8 elsewhere.
fn os_name(bytes: &[u8]) -> Option<&OsStr> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes).ok().map(OsStr::new)
    }
}

/// The bytes of a file name, percent-encoded in links: the name's own
/// bytes on Unix (so that a link leads back to it), UTF-8 elsewhere.
fn name_bytes(name: &OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(name.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match name.to_string_lossy() {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }
    }
}

/// The MIME type for a file name's extension (case-insensitive);
/// `application/octet-stream` when unknown. Text types carry
/// `charset=utf-8`.
///
/// ```
/// assert_eq!(minihttp::files::mime_type(std::path::Path::new("a/INDEX.HTML")), "text/html; charset=utf-8");
/// ```
pub fn mime_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" | "text" | "log" => "text/plain; charset=utf-8",
        "md" | "markdown" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "rs" | "toml" | "py" | "c" | "h" | "sh" | "yaml" | "yml" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "application/octet-stream",
    }
}

/// A strong entity tag for a file's content, in hex: on Unix
/// `"<inode>-<secs>-<nanos>-<len>"` with the time of the file's last
/// status change, elsewhere `"<secs>-<nanos>-<len>"` with its modification
/// time.
///
/// A strong tag must change whenever the content does (RFC 9110 section
/// 8.8.1). The modification time alone does not: a file replaced by
/// another of the same length, dated back to the same time (`cp -p`,
/// `rsync -t`, `tar`), keeps it. The status change time cannot be set
/// back, and moves with every write; the inode tells a file renamed into
/// place from the one it replaced.
pub fn etag(meta: &Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "\"{:x}-{:x}-{:x}-{:x}\"",
            meta.ino(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.len()
        )
    }
    #[cfg(not(unix))]
    {
        let d = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        format!(
            "\"{:x}-{:x}-{:x}\"",
            d.as_secs(),
            d.subsec_nanos(),
            meta.len()
        )
    }
}

/// The `Last-Modified` value for a modification time.
pub fn last_modified(modified: SystemTime) -> String {
    String::from_utf8_lossy(&fmt_http_date(modified)).into_owned()
}

/// The entity tags of an `If-None-Match` / `If-Match` list (`*` is
/// returned as itself), each with its `W/` prefix if any.
fn entity_tags(value: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return tags;
        }
        if let Some(after) = rest.strip_prefix('*') {
            tags.push("*");
            rest = after;
            continue;
        }
        let start = rest;
        let body = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = body.strip_prefix('"') else {
            return tags;
        };
        let Some(end) = inner.find('"') else {
            return tags;
        };
        let len = start.len() - inner.len() + end + 1;
        tags.push(&start[..len]);
        rest = &start[len..];
    }
}

/// Weak comparison (RFC 9110 section 8.8.3.2): equal opaque tags, `W/`
/// ignored on both sides.
fn weak_eq(a: &str, b: &str) -> bool {
    a.strip_prefix("W/").unwrap_or(a) == b.strip_prefix("W/").unwrap_or(b)
}

/// Strong comparison (RFC 9110 section 8.8.3.2): equal opaque tags, neither
/// weak.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Whether a request for a representation with `etag` and `modified` must
/// be answered `412 Precondition Failed` (RFC 9110 sections 13.1.1,
/// 13.1.4 and 13.2.2, steps 1 and 2): `If-Match` decides when present
/// (strong comparison, `*` matches an existing representation), otherwise
/// `If-Unmodified-Since` (at one-second precision; an invalid date is
/// ignored). Evaluated before [`is_not_modified`] and `Range`.
///
/// ```
/// use minihttp::{files::is_precondition_failed, Request};
/// let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\nIf-Match: \"a\", \"b\"\r\n\r\n").unwrap();
/// assert!(!is_precondition_failed(&req, "\"b\"", None));
/// assert!(is_precondition_failed(&req, "\"c\"", None));
/// ```
pub fn is_precondition_failed(request: &Request, etag: &str, modified: Option<SystemTime>) -> bool {
    validators(
        request,
        ("if-match", strong_eq),
        "if-unmodified-since",
        etag,
        modified,
    )
    .is_some_and(|holds| !holds)
}

/// Evaluates a pair of validator fields, as RFC 9110 section 13.2.2 does:
/// the entity-tag list field (`If-Match`, `If-None-Match`) decides when
/// present (whether any tag, or `*`, matches `etag` by `eq`); otherwise
/// the date field (whether the representation was not modified after
/// it). `None` when neither applies: no field, an invalid date, one later
/// than now (which no `Last-Modified` sent can have been), or no
/// modification time.
fn validators(
    request: &Request,
    (tags_field, eq): (&str, fn(&str, &str) -> bool),
    date_field: &str,
    etag: &str,
    modified: Option<SystemTime>,
) -> Option<bool> {
    let mut saw_tags = false;
    for value in request.header_all(tags_field) {
        saw_tags = true;
        let value = String::from_utf8_lossy(value);
        if entity_tags(&value).iter().any(|t| *t == "*" || eq(t, etag)) {
            return Some(true);
        }
    }
    if saw_tags {
        return Some(false);
    }
    // A date field given more than once is a list of dates: ignored (RFC
    // 9110 sections 13.1.3 and 13.1.4).
    let since = one_field(request, date_field)?.and_then(parse_http_date)?;
    let modified = modified?;
    // Compared in whole seconds, the precision of HTTP dates (signed:
    // before 1970 as after).
    (since <= SystemTime::now()).then(|| unix_secs(modified) <= unix_secs(since))
}

/// The value of a field that may appear once: `None` when absent,
/// `Some(None)` when it cannot be read as one value (the field appears
/// more than once, or its value is not UTF-8), else `Some(Some(value))`.
fn one_field<'a>(request: &'a Request, name: &'a str) -> Option<Option<&'a str>> {
    let mut values = request.header_all(name);
    let first = values.next()?;
    if values.next().is_some() {
        return Some(None);
    }
    Some(std::str::from_utf8(first).ok())
}

/// Whether a `GET`/`HEAD` for a representation with `etag` and `modified`
/// should be answered `304 Not Modified` (RFC 9110 section 13.2.2):
/// `If-None-Match` decides when present (weak comparison, `*` matches),
/// otherwise `If-Modified-Since` (at one-second precision; an invalid date,
/// or one later than now, which no `Last-Modified` sent can have been, is
/// ignored).
pub fn is_not_modified(request: &Request, etag: &str, modified: Option<SystemTime>) -> bool {
    if *request.method() != Method::GET && !request.method().is_head() {
        return false;
    }
    validators(
        request,
        ("if-none-match", weak_eq),
        "if-modified-since",
        etag,
        modified,
    )
    .unwrap_or(false)
}

/// The outcome of a `Range` header for a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// Send everything (no `Range`, a malformed one, several ranges, or a
    /// unit other than `bytes`): 200.
    Full,
    /// Send bytes `start..=end`: 206 with `Content-Range`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// No byte of the range exists: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Parses a `Range` header value for a representation of `len` bytes
/// (RFC 9110 section 14): one `bytes=first-last`, `bytes=first-` or
/// `bytes=-suffix` range. Multiple ranges are answered in full (allowed:
/// a server may ignore `Range`), and so is a suffix range of an empty
/// representation (satisfiable, but no `206` can describe zero bytes).
///
/// ```
/// use minihttp::files::{parse_range, ByteRange};
/// assert_eq!(parse_range("bytes=0-9", 100), ByteRange::Partial { start: 0, end: 9 });
/// assert_eq!(parse_range("bytes=-10", 100), ByteRange::Partial { start: 90, end: 99 });
/// assert_eq!(parse_range("bytes=100-", 100), ByteRange::Unsatisfiable);
/// ```
pub fn parse_range(value: &str, len: u64) -> ByteRange {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return ByteRange::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    // Numbers too large for a `u64` stand for `u64::MAX` (RFC 9110 section
    // 14.1.1): past any length, they are clamped like any other.
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(s.bytes().fold(0u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        }))
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last `n` bytes.
        return match num(last) {
            None => ByteRange::Full,
            Some(0) => ByteRange::Unsatisfiable,
            // The only satisfiable range of an empty representation (RFC
            // 9110 section 14.1.1), but no 206 can say "no bytes": the
            // whole, which is nothing.
            Some(_) if len == 0 => ByteRange::Full,
            Some(n) => ByteRange::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        };
    }
    let Some(start) = num(first) else {
        return ByteRange::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match num(last) {
            Some(e) if e >= start => e,
            _ => return ByteRange::Full,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// Whether `If-Range` lets a range request be served partially: absent, or
/// (given once) naming the current validator (strong comparison of the entity tag, or
/// the exact `Last-Modified` date, when that date is a strong validator:
/// at least one second before now, RFC 9110, section 8.8.2.2; a file
/// changed twice within its last second has one date for both contents).
pub fn if_range_matches(request: &Request, etag: &str, modified: Option<SystemTime>) -> bool {
    if_range_matches_at(request, etag, modified, SystemTime::now())
}

/// [`if_range_matches`] at the time `now`.
fn if_range_matches_at(
    request: &Request,
    etag: &str,
    modified: Option<SystemTime>,
    now: SystemTime,
) -> bool {
    let value = match one_field(request, "if-range") {
        None => return true,
        // Given twice, or not UTF-8: it names no validator of ours.
        Some(None) => return false,
        Some(Some(value)) => value.trim(),
    };
    if value.starts_with('"') {
        return value == etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    match (parse_http_date(value), modified) {
        (Some(date), Some(m)) => {
            let strong = now
                .duration_since(m)
                .is_ok_and(|age| age >= Duration::from_secs(1));
            strong && fmt_http_date(date) == fmt_http_date(m)
        }
        _ => false,
    }
}

/// An HTML page listing the entries of `dir`, for the URL path `url_path`
/// (raw, ending in `/`). Names are HTML-escaped in text and percent-encoded
/// in links; directories end in `/`; entries are sorted by name. Only files
/// and directories (or links to them) are listed, and no name a path may
/// not hold (one with a backslash).
pub fn directory_listing(url_path: &str, dir: &Path) -> io::Result<String> {
    listing(url_path, dir, None)
}

/// [`directory_listing`], without the links that lead out of `root` (which
/// [`StaticFiles`] refuses to follow, whether or not what they lead to
/// exists: listing them by what they lead to would tell).
fn listing(url_path: &str, dir: &Path, root: Option<&Path>) -> io::Result<String> {
    let mut entries: Vec<(OsString, bool)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            // A link is listed as what it leads to (a link to a directory
            // as a directory, whose link then needs no redirect); what is
            // neither a file nor a directory (a FIFO, a socket, a device,
            // a dangling link) is not listed, as its link could only fail;
            // nor is a name the server refuses in a path (one with a
            // backslash, see `resolve_asked`).
            let name = e.file_name();
            if name_bytes(&name).contains(&b'\\') {
                return None;
            }
            let (is_file, is_dir) = match e.file_type().ok()? {
                t if t.is_symlink() => {
                    let real = e.path().canonicalize().ok()?;
                    if root.is_some_and(|root| !real.starts_with(root)) {
                        return None;
                    }
                    let m = fs::metadata(real).ok()?;
                    (m.is_file(), m.is_dir())
                }
                t => (t.is_file(), t.is_dir()),
            };
            (is_file || is_dir).then_some((name, is_dir))
        })
        .collect();
    entries.sort();
    let shown = pct::decode_lossy(url_path, false);
    let mut html = String::with_capacity(256 + entries.len() * 64);
    html.push_str(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Directory listing for ",
    );
    pct::escape_html(&shown, &mut html);
    html.push_str("</title>\n</head>\n<body>\n<h1>Directory listing for ");
    pct::escape_html(&shown, &mut html);
    html.push_str("</h1>\n<hr>\n<ul>\n");
    if url_path != "/" {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        html.push_str("<li><a href=\"");
        let mut href = String::new();
        pct::encode_path(&name_bytes(&name), &mut href);
        // Encoding leaves `/` alone; a file name cannot contain one.
        pct::escape_html(&href, &mut html);
        html.push_str(slash);
        html.push_str("\">");
        pct::escape_html(&name.to_string_lossy(), &mut html);
        html.push_str(slash);
        html.push_str("</a></li>\n");
    }
    html.push_str("</ul>\n<hr>\n</body>\n</html>\n");
    Ok(html)
}

/// The URL path under `prefix` that `request` asks for (see
/// [`StaticFiles::serve_under`]), or the answer when there is none to
/// serve: 404 for a path outside the prefix, a redirect for the prefix
/// itself without its final `/`.
fn under<'r>(request: &'r Request, prefix: &str) -> Result<&'r str, Response> {
    let mut rest = request.path_raw();
    for want in prefix.split('/').filter(|s| !s.is_empty()) {
        // One raw segment per segment of the prefix, both compared as
        // decoded bytes, as the router compares a route's literal
        // segments.
        let want = pct::decode_segment(want);
        let tail = rest.strip_prefix('/').and_then(|r| {
            let seg = r.split_once('/').map_or(r, |(seg, _)| seg);
            pct::segment_is(seg, &want).then(|| &r[seg.len()..])
        });
        match tail {
            Some(tail) => rest = tail,
            None => return Err(Response::error(StatusCode::NOT_FOUND)),
        }
    }
    if rest.is_empty() && !prefix.trim_matches('/').is_empty() {
        // The prefix itself, without its final `/`: the root directory,
        // asked for as a directory is asked for without it.
        let method = request.method();
        if *method == Method::GET || method.is_head() {
            return Err(redirect_to_directory(request));
        }
        return Ok("/");
    }
    Ok(rest)
}

/// A directory listing to build, and what to answer with it.
struct Listing {
    root: PathBuf,
    url_path: String,
    dir: PathBuf,
    /// The request's preconditions, which a listing (with no validator)
    /// meets or not whatever it holds.
    precondition_failed: bool,
    not_modified: bool,
}

impl Listing {
    /// The listing's HTML: one entry at a time, a look at each link.
    fn build(&self) -> io::Result<String> {
        list_checked(&self.root, &self.url_path, &self.dir)
    }

    fn respond(&self, html: io::Result<String>) -> Response {
        let html = match html {
            Ok(html) => html,
            Err(e) => return Response::error(listing_failed(&e, &self.dir)),
        };
        if self.precondition_failed {
            return Response::error(StatusCode::PRECONDITION_FAILED);
        }
        if self.not_modified {
            return Response::new(StatusCode::NOT_MODIFIED);
        }
        Response::html(html)
    }
}

/// The answer to a listing of `dir` that could not be built: 403 for a
/// directory that may not be read, or that was swapped for a link since
/// it was resolved (which `O_NOFOLLOW` refuses, with `ENOTDIR` on Linux
/// and `ELOOP` elsewhere) or led out of the root; 404 for one gone (or no
/// longer a directory); 500 for the rest (out of descriptors or memory,
/// say), which are the server's, not the request's.
fn listing_failed(e: &io::Error, dir: &Path) -> StatusCode {
    #[cfg(unix)]
    match e.raw_os_error() {
        Some(libc::ELOOP) => return StatusCode::FORBIDDEN,
        Some(libc::ENOTDIR) => {
            let link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
            return if link {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
        }
        _ => {}
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The future of [`StaticFiles`] as a [`Handler`](crate::Handler), and of
/// [`StaticFiles::serve_under_async`]: ready at once, but for a directory
/// listing served on a greenrt hub, which is built on greenrt's blocking
/// pool, so that a directory of a hundred thousand entries does not hold
/// up the hub's other connections while it is read. Dropped before the
/// listing was built, it leaves it unbuilt if it has not started.
#[must_use = "futures do nothing unless awaited"]
pub struct Serve {
    state: ServeState,
}

impl Serve {
    fn ready(r: Response) -> Serve {
        Serve {
            state: ServeState::Ready(Some(r)),
        }
    }
}

enum ServeState {
    /// Taken by the poll that returns it.
    Ready(Option<Response>),
    Listing(greenrt::Greenlet<(Listing, io::Result<String>)>),
}

impl Future for Serve {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.get_mut();
        match &mut this.state {
            // Polled again after its answer: nothing more to say.
            ServeState::Ready(r) => Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Response::error(StatusCode::INTERNAL_SERVER_ERROR)),
            ),
            ServeState::Listing(job) => {
                let done = std::task::ready!(Pin::new(job).poll(cx));
                this.state = ServeState::Ready(None);
                Poll::Ready(match done {
                    Ok((listing, html)) => listing.respond(html),
                    // The pool's thread panicked, or the job was killed.
                    Err(_) => Response::error(StatusCode::INTERNAL_SERVER_ERROR),
                })
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Answered to no one (the connection went): a listing that has not
        // started is not built.
        if let ServeState::Listing(job) = &self.state {
            job.kill();
        }
    }
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listing = matches!(self.state, ServeState::Listing(_));
        f.debug_struct("Serve")
            .field("listing", &listing)
            .finish_non_exhaustive()
    }
}

/// The files that answer for their directory, in order (as
/// `python3 -m http.server` looks for them).
const INDEX_NAMES: [&str; 2] = ["index.html", "index.htm"];

/// Serves the files under a directory.
///
/// For `GET` and `HEAD`: a file is sent with the MIME type of the name it
/// was asked by, `ETag`, `Last-Modified` (never later than now) and
/// `Accept-Ranges`; `412` when `If-Match` or `If-Unmodified-Since` fails,
/// `304` when the request's validators match, `206` / `416` for a `Range`.
/// A directory URL without its final `/` is redirected (301) to it; a
/// directory is answered with its `index.html` (or `index.htm`), else a
/// listing (both can be turned off), which shows no link that leads out
/// of the directory served, and answers `If-Match` and `If-None-Match`
/// as a representation without an entity tag. Paths that would leave the
/// directory get 403 (a symbolic link out of it too, an `index.html`
/// included, whether or not what it leads to exists), as do files and
/// directories the server may not read or search; malformed paths get
/// 400, missing ones, a file
/// asked for with a final `/` and anything that is not a regular file (a
/// FIFO, a device) 404; other methods 405, and methods it does not know
/// of (`PROPFIND`, `get`) 501.
///
/// Files are looked up and opened with `std::fs` (without blocking on a
/// FIFO) and sent as a [`Body::File`], read in chunks while sending. On
/// Linux, the file opened is checked to be under the root again, so that
/// a directory swapped for a link between the check and the open cannot
/// lead out of it. On Unix, file names are bytes: a name that is not UTF-8
/// is listed and served.
///
/// Served as a [`Handler`](crate::Handler) on a greenrt hub (as
/// [`Server::serve`](crate::Server::serve) and the `minihttp` command serve
/// it), a directory listing is built on greenrt's blocking pool
/// ([`Serve`]), so that the hub's other connections go on meanwhile: a
/// listing of 100,000 entries takes about 0.1 s. So does
/// [`serve_under_async`](StaticFiles::serve_under_async), for a route;
/// [`serve`](StaticFiles::serve) and its synchronous siblings build it in
/// place.
///
/// ```
/// // The crate's own folder, in its doc tests.
/// let files = minihttp::StaticFiles::new(env!("CARGO_MANIFEST_DIR")).unwrap();
/// let req = minihttp::Request::parse(b"GET /README.md HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let resp = files.serve(&req);
/// assert_eq!(resp.status().as_u16(), 200);
/// assert_eq!(resp.headers().get("content-type"), Some("text/markdown; charset=utf-8"));
/// // Out of the folder: refused.
/// let req = minihttp::Request::parse(b"GET /../Cargo.toml HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// assert_eq!(files.serve(&req).status().as_u16(), 403);
/// ```
#[derive(Clone, Debug)]
pub struct StaticFiles {
    root: PathBuf,
    index: bool,
    listing: bool,
}

impl StaticFiles {
    /// Serves `dir`, which must exist; it is canonicalized once here.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let root = dir.as_ref().canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(StaticFiles {
            root,
            index: true,
            listing: true,
        })
    }

    /// Whether a directory is answered with its `index.html`, or else its
    /// `index.htm` (default: on).
    pub fn index(mut self, on: bool) -> StaticFiles {
        self.index = on;
        self
    }

    /// Whether a directory without an index is listed (default: on); off
    /// answers 403.
    pub fn listing(mut self, on: bool) -> StaticFiles {
        self.listing = on;
        self
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Answers `request` from its path.
    pub fn serve(&self, request: &Request) -> Response {
        self.serve_path(request, request.path_raw())
    }

    /// Answers `request` for the files under the URL path `prefix`: a
    /// request for `{prefix}/a/b` is answered with the file `a/b`. For a
    /// [`Router`](crate::Router) route `{prefix}/*name`; a path that does
    /// not start with the prefix's segments gets 404, and the prefix itself
    /// without a final `/` a redirect (301) to it with one.
    ///
    /// ```
    /// use minihttp::{Request, Response, Router, StaticFiles};
    ///
    /// let dir = std::env::temp_dir().join(format!("minihttp-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("100% pure.txt"), "juice").unwrap();
    /// let files = StaticFiles::new(&dir).unwrap();
    /// let mut app = Router::new();
    /// app.get("/static/*path", move |req: Request| {
    ///     let r = files.serve_under(&req, "/static");
    ///     async move { r }
    /// })
    /// .unwrap();
    /// let req = Request::parse(b"GET /static/100%25%20pure.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let resp = futures_executor::block_on(minihttp::Handler::call(&app, req));
    /// assert_eq!(resp.status().as_u16(), 200);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn serve_under(&self, request: &Request, prefix: &str) -> Response {
        match under(request, prefix) {
            Ok(url_path) => self.serve_path(request, url_path),
            Err(r) => r,
        }
    }

    /// As [`serve_under`](StaticFiles::serve_under), but as a future that,
    /// on a greenrt hub, builds a directory listing on greenrt's blocking
    /// pool (see [`Serve`]), as the [`Handler`](crate::Handler) of a
    /// `StaticFiles` does: for a [`Router`](crate::Router) route.
    ///
    /// ```
    /// use minihttp::{Request, Router, StaticFiles};
    ///
    /// let dir = std::env::temp_dir().join(format!("minihttp-doc-async-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("docs")).unwrap();
    /// let files = StaticFiles::new(&dir).unwrap();
    /// let mut app = Router::new();
    /// app.get("/static/*path", move |req: Request| files.serve_under_async(&req, "/static"))
    ///     .unwrap();
    /// let req = Request::parse(b"GET /static/docs/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// let resp = greenrt::run(minihttp::Handler::call(&app, req));
    /// assert_eq!(resp.status().as_u16(), 200);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn serve_under_async(&self, request: &Request, prefix: &str) -> Serve {
        match under(request, prefix) {
            Ok(url_path) => self.serve_off_hub(request, url_path),
            Err(r) => Serve::ready(r),
        }
    }

    /// Answers `request` for the raw (percent-encoded) URL path `url_path`,
    /// which starts with `/`: the request's own path, or a part of it (see
    /// [`serve_under`](StaticFiles::serve_under)). A directory asked for
    /// without its final `/` is redirected to the request's path with one.
    pub fn serve_path(&self, request: &Request, url_path: &str) -> Response {
        self.answer(request, url_path).unwrap_or_else(|listing| {
            let html = listing.build();
            listing.respond(html)
        })
    }

    /// [`serve_path`](StaticFiles::serve_path), but a directory listing,
    /// which takes time in proportion to the directory's entries, is left
    /// for the caller to build.
    fn answer(&self, request: &Request, url_path: &str) -> Result<Response, Listing> {
        let method = request.method();
        if *method != Method::GET && !method.is_head() {
            let mut r = if *method == Method::OPTIONS {
                Response::new(StatusCode::NO_CONTENT)
            } else if method.is_extension() {
                // Not a method it knows of (RFC 9110, section 15.6.2), as
                // `python3 -m http.server` answers too.
                Response::error(StatusCode::NOT_IMPLEMENTED)
            } else {
                Response::error(StatusCode::METHOD_NOT_ALLOWED)
            };
            let _ = r.headers_mut().insert("allow", "GET, HEAD, OPTIONS");
            return Ok(r);
        }
        let Resolved {
            asked,
            real: path,
            dir_form,
        } = match resolve_asked(&self.root, url_path) {
            Ok(r) => r,
            Err(e) => return Ok(Response::error(e.status())),
        };
        if path.is_dir() {
            if !url_path.ends_with('/') {
                return Ok(redirect_to_directory(request));
            }
            if self.index {
                for name in INDEX_NAMES {
                    // Resolved like any path: a link out of the root is
                    // refused.
                    match path.join(name).canonicalize() {
                        Ok(index) if !index.starts_with(&self.root) => {
                            return Ok(Response::error(StatusCode::FORBIDDEN));
                        }
                        // Typed as the name it was asked as, wherever a
                        // link inside the root leads.
                        Ok(index) if index.is_file() => {
                            return Ok(self.serve_file(request, &index, Path::new(name)));
                        }
                        // A dangling link out of the root: the same 403
                        // as one whose target exists, which would tell
                        // what exists outside the root otherwise.
                        Err(_) if leads_out(&self.root, &path.join(name)) => {
                            return Ok(Response::error(StatusCode::FORBIDDEN));
                        }
                        _ => {}
                    }
                }
            }
            if !self.listing {
                return Ok(Response::error(StatusCode::FORBIDDEN));
            }
            // A listing has no validator of its own: `If-Match` holds only
            // as `*`, `If-None-Match: *` matches it, and the date fields
            // are ignored (RFC 9110 section 13.1).
            return Err(Listing {
                root: self.root.clone(),
                url_path: url_path.to_string(),
                dir: path,
                precondition_failed: is_precondition_failed(request, "", None),
                not_modified: is_not_modified(request, "", None),
            });
        }
        if dir_form {
            // A file asked for as a directory (`/a.txt/`, `/a.txt/.`): its
            // relative links would resolve wrongly, and every such path
            // would be another name for it.
            return Ok(Response::error(StatusCode::NOT_FOUND));
        }
        // Typed as the name it was asked as, wherever a link inside the
        // root leads.
        Ok(self.serve_file(request, &path, &asked))
    }

    /// What [`Handler::call`](crate::Handler::call) answers with (for the
    /// request's own path): as [`serve_path`](StaticFiles::serve_path), but
    /// on a hub a directory listing is built on greenrt's blocking pool.
    pub(crate) fn serve_off_hub(&self, request: &Request, url_path: &str) -> Serve {
        match self.answer(request, url_path) {
            Ok(r) => Serve::ready(r),
            Err(listing) if greenrt::current().is_some() => Serve {
                state: ServeState::Listing(greenrt::spawn_blocking(move || {
                    let html = listing.build();
                    (listing, html)
                })),
            },
            Err(listing) => {
                let html = listing.build();
                Serve::ready(listing.respond(html))
            }
        }
    }

    /// Answers with the file at `path`, its MIME type from the name
    /// `typed_as`.
    fn serve_file(&self, request: &Request, path: &Path, typed_as: &Path) -> Response {
        match serve_file(request, &self.root, path, typed_as) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Response::error(StatusCode::NOT_FOUND),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Response::error(StatusCode::FORBIDDEN)
            }
            Err(_) => Response::error(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// A 301 to the request's path with a final `/` (and its query).
pub(crate) fn redirect_to_directory(request: &Request) -> Response {
    // The path the client asked for, with one leading `/`: a `//host`
    // location would send it to another site. So would `/\host`, browsers
    // reading a `\` as a `/`: it goes encoded.
    let asked = request.path_raw().trim_start_matches('/');
    let mut location = format!("/{}/", asked.replace('\\', "%5C"));
    if let Some(q) = request.query_raw() {
        location.push('?');
        location.push_str(q);
    }
    let mut r = Response::error(StatusCode::MOVED_PERMANENTLY);
    // The raw path and query are visible ASCII: a valid value.
    if r.headers_mut().insert("location", location).is_err() {
        return Response::error(StatusCode::BAD_REQUEST);
    }
    r
}

/// The listing of the directory at `dir`, checked to be inside `root`
/// where the system tells what was opened (Linux): the directory is opened,
/// the opened one checked, and read through its descriptor, so that a
/// directory swapped for a link after `dir` was resolved is not listed.
fn list_checked(root: &Path, url_path: &str, dir: &Path) -> io::Result<String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dir)?;
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
        match fs::read_link(&by_fd) {
            Ok(p) if !p.starts_with(root) => return Err(io::ErrorKind::PermissionDenied.into()),
            Ok(_) => return listing(url_path, &by_fd, Some(root)),
            // No `/proc` here: as elsewhere, by path.
            Err(_) => {}
        }
    }
    listing(url_path, dir, Some(root))
}

/// Opens a regular file. A FIFO, a socket or a device is `NotFound`, and
/// is not opened: opening one has effects (a FIFO's writer, blocked in its
/// own `open`, goes on and then dies of `SIGPIPE`; a device runs its
/// driver). It is looked at first; should it be put in place of a
/// regular file between the look and the open, the open does not block
/// (on Unix it is non-blocking, which changes nothing for the reads of a
/// regular file) and what was opened is looked at again.
fn open_regular(root: &Path, path: &Path) -> io::Result<(File, Metadata)> {
    let not_a_file = || io::Error::from(io::ErrorKind::NotFound);
    if !fs::metadata(path)?.is_file() {
        return Err(not_a_file());
    }
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                // A socket cannot be opened (`ENXIO`): as any other file
                // that is not a regular one, it is not found.
                if fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
                    not_a_file()
                } else {
                    e
                }
            })?
    };
    #[cfg(not(unix))]
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    // The path was checked before it was opened; a directory on it
    // swapped for a link in between would lead out of the root. What was
    // opened is checked again where the system tells (Linux).
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let opened = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if opened.is_ok_and(|p| !p.starts_with(root)) {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
    Ok((file, meta))
}

fn serve_file(
    request: &Request,
    root: &Path,
    path: &Path,
    typed_as: &Path,
) -> io::Result<Response> {
    let (file, meta) = open_regular(root, path)?;
    let len = meta.len();
    let tag = etag(&meta);
    // A modification time in the future is sent, and compared, as now
    // (RFC 9110 section 8.8.2.1): a client would otherwise keep a copy
    // changed after it as not modified.
    let modified = meta.modified().ok().map(|m| m.min(SystemTime::now()));
    let mut r = Response::new(StatusCode::OK);
    let h = r.headers_mut();
    // Every value below is ASCII without control characters.
    let _ = h.insert("content-type", mime_type(typed_as));
    let _ = h.insert("etag", tag.clone());
    if let Some(m) = modified {
        let _ = h.insert("last-modified", last_modified(m));
    }
    let _ = h.insert("accept-ranges", "bytes");
    if is_precondition_failed(request, &tag, modified) {
        return Ok(Response::error(StatusCode::PRECONDITION_FAILED));
    }
    if is_not_modified(request, &tag, modified) {
        r.set_status(StatusCode::NOT_MODIFIED);
        r.headers_mut().remove("content-type");
        return Ok(r);
    }
    // A `Range` given twice (or not UTF-8) is invalid, and ignored.
    let range = match one_field(request, "range") {
        Some(Some(v))
            if *request.method() == Method::GET && if_range_matches(request, &tag, modified) =>
        {
            parse_range(v, len)
        }
        _ => ByteRange::Full,
    };
    let (start, count) = match range {
        ByteRange::Full => (0, len),
        ByteRange::Partial { start, end } => {
            r.set_status(StatusCode::PARTIAL_CONTENT);
            let _ = r
                .headers_mut()
                .insert("content-range", format!("bytes {start}-{end}/{len}"));
            (start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            let mut r = Response::error(StatusCode::RANGE_NOT_SATISFIABLE);
            let _ = r
                .headers_mut()
                .insert("content-range", format!("bytes */{len}"));
            return Ok(r);
        }
    };
    if request.method().is_head() {
        let _ = r.headers_mut().insert("content-length", count.to_string());
        return Ok(r);
    }
    // The server reads the file while it sends, in chunks: no copy of the
    // whole file in memory.
    r.set_body(Body::File(FileBody::new(file, start, count)));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    /// A fresh directory tree under the system temp dir, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new() -> Tree {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "minihttp-files-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let root = dir.join("root");
            fs::create_dir_all(root.join("sub")).unwrap();
            fs::create_dir_all(root.join("site")).unwrap();
            fs::create_dir_all(dir.join("outside")).unwrap();
            fs::write(root.join("a.txt"), b"0123456789").unwrap();
            fs::write(root.join("sub/b.json"), b"{}").unwrap();
            fs::write(root.join("sub/<b>&'.txt"), b"x").unwrap();
            fs::write(root.join("site/index.html"), b"<p>hi</p>").unwrap();
            fs::write(dir.join("outside/secret"), b"secret").unwrap();
            #[cfg(unix)]
            {
                std::os::unix::fs::symlink(dir.join("outside"), root.join("link-out")).unwrap();
                std::os::unix::fs::symlink(root.join("sub"), root.join("link-in")).unwrap();
            }
            Tree(dir)
        }

        fn root(&self) -> PathBuf {
            self.0.join("root").canonicalize().unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_listing_that_fails_is_answered_by_whose_fault_it_is() {
        let nowhere = Path::new("/nonexistent/minihttp");
        let of = |kind: io::ErrorKind| listing_failed(&io::Error::from(kind), nowhere);
        assert_eq!(of(io::ErrorKind::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(of(io::ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            of(io::ErrorKind::OutOfMemory),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        #[cfg(unix)]
        {
            let os = |n| listing_failed(&io::Error::from_raw_os_error(n), nowhere);
            assert_eq!(os(libc::EMFILE), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(os(libc::ENFILE), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(os(libc::ELOOP), StatusCode::FORBIDDEN);
            assert_eq!(os(libc::ENOTDIR), StatusCode::NOT_FOUND);
            assert_eq!(os(libc::EACCES), StatusCode::FORBIDDEN);
        }
        // What the system says of a directory swapped for a link, and of
        // one swapped for a file, read from the listing itself (which
        // checks what it opened where the system tells: Linux).
        #[cfg(target_os = "linux")]
        {
            let tree = Tree::new();
            let root = tree.root();
            let swapped = root.join("swapped");
            std::os::unix::fs::symlink(root.join("sub"), &swapped).unwrap();
            let e = list_checked(&root, "/swapped/", &swapped).unwrap_err();
            assert_eq!(listing_failed(&e, &swapped), StatusCode::FORBIDDEN, "{e}");
            let file = root.join("a.txt");
            let e = list_checked(&root, "/a.txt/", &file).unwrap_err();
            assert_eq!(listing_failed(&e, &file), StatusCode::NOT_FOUND, "{e}");
        }
    }

    #[test]
    fn resolve_table() {
        let tree = Tree::new();
        let root = tree.root();
        use ResolveError::*;
        let table: &[(&str, Result<&str, ResolveError>)] = &[
            ("/", Ok("")),
            ("/a.txt", Ok("a.txt")),
            ("/./sub//b.json", Ok("sub/b.json")),
            ("/sub/%3Cb%3E%26'.txt", Ok("sub/<b>&'.txt")),
            ("/../a.txt", Err(Forbidden)),
            ("/sub/../a.txt", Err(Forbidden)),
            ("/%2e%2e/outside/secret", Err(Forbidden)),
            ("/sub/%2E%2E/%2e%2e/outside", Err(Forbidden)),
            ("a.txt", Err(Forbidden)),
            // A drive prefix on Windows; a plain (missing) name elsewhere.
            (
                "/C:/Windows",
                Err(if cfg!(windows) { Forbidden } else { NotFound }),
            ),
            ("/a.txt%00.html", Err(Malformed)),
            ("/%zz", Err(Malformed)),
            ("/%2", Err(Malformed)),
            // Names are bytes on Unix.
            ("/%ff", Err(if cfg!(unix) { NotFound } else { Malformed })),
            ("/sub%2Fb.json", Err(Malformed)),
            ("/%2Fetc/passwd", Err(Malformed)),
            ("/sub%5Cb.json", Err(Malformed)),
            ("/missing", Err(NotFound)),
        ];
        for (url, expected) in table {
            let got = resolve(&root, url);
            let expected = expected.map(|rel| root.join(rel).canonicalize().unwrap());
            assert_eq!(got, expected, "{url}");
        }
        #[cfg(unix)]
        {
            assert_eq!(resolve(&root, "/link-out/secret"), Err(Forbidden));
            assert_eq!(resolve(&root, "/link-out"), Err(Forbidden));
            // Through a link out, what is missing is refused as what
            // exists is: the answer tells nothing about the outside.
            assert_eq!(resolve(&root, "/link-out/missing"), Err(Forbidden));
            assert_eq!(resolve(&root, "/link-out/no/such/path"), Err(Forbidden));
            // A dangling link answers as a link to something that exists:
            // 403 when it points out, 404 when it points in.
            let outside = tree.0.join("outside");
            let link = |target: &str, at: PathBuf| std::os::unix::fs::symlink(target, at);
            std::os::unix::fs::symlink(outside.join("missing"), root.join("dang-out")).unwrap();
            link("../../outside/missing", root.join("sub/dang-out-rel")).unwrap();
            link("../../outside/secret", root.join("sub/out-rel")).unwrap();
            link("missing.txt", root.join("dang-in")).unwrap();
            link("chain2", root.join("chain1")).unwrap();
            link("../outside/none", root.join("chain2")).unwrap();
            link("chain4", root.join("chain3")).unwrap();
            link("sub/missing", root.join("chain4")).unwrap();
            link("loop2", root.join("loop1")).unwrap();
            link("loop1", root.join("loop2")).unwrap();
            for (url, want) in [
                ("/dang-out", Forbidden),
                ("/dang-out/deeper", Forbidden),
                ("/sub/dang-out-rel", Forbidden),
                ("/sub/out-rel", Forbidden),
                ("/dang-in", NotFound),
                ("/chain1", Forbidden),
                ("/chain3", NotFound),
                ("/loop1", NotFound),
            ] {
                assert_eq!(resolve(&root, url), Err(want), "{url}");
            }
            assert_eq!(resolve(&root, "/sub/missing/deeper"), Err(NotFound));
            // A path no file can have is not looked up.
            let long = "/a".repeat(10_000);
            assert_eq!(resolve(&root, &long), Err(NotFound));
            assert_eq!(
                resolve(&root, "/link-in/b.json"),
                Ok(root.join("sub/b.json"))
            );
        }
    }

    fn get(files: &StaticFiles, target: &str, extra: &str) -> Response {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        files.serve(&Request::parse(raw.as_bytes()).unwrap())
    }

    fn body(r: &Response) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        match r.body() {
            Body::File(f) => {
                let mut file = &f.file;
                file.seek(SeekFrom::Start(f.offset)).unwrap();
                let mut v = Vec::new();
                file.take(f.len).read_to_end(&mut v).unwrap();
                v
            }
            b => b.as_bytes().unwrap().to_vec(),
        }
    }

    #[test]
    fn a_suffix_range_of_an_empty_file_gets_the_whole_empty_file() {
        let tree = Tree::new();
        fs::write(tree.root().join("empty"), b"").unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        let r = get(&files, "/empty", "Range: bytes=-5\r\n");
        assert_eq!((r.status().as_u16(), body(&r).len()), (200, 0));
        assert_eq!(r.headers().get("content-range"), None);
        // A range with a first byte has none to start at.
        let r = get(&files, "/empty", "Range: bytes=0-\r\n");
        assert_eq!(r.status().as_u16(), 416);
        assert_eq!(r.headers().get("content-range"), Some("bytes */0"));
    }

    #[test]
    fn if_range_takes_a_date_only_as_a_strong_validator() {
        let tree = Tree::new();
        let path = tree.root().join("a.txt");
        let files = StaticFiles::new(tree.root()).unwrap();
        // An hour old: the date is a strong validator.
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let date = |t| String::from_utf8(fmt_http_date(t).to_vec()).unwrap();
        let lm = date(hour_ago);
        let r = get(
            &files,
            "/a.txt",
            &format!("Range: bytes=0-0\r\nIf-Range: {lm}\r\n"),
        );
        assert_eq!((r.status().as_u16(), &body(&r)[..]), (206, &b"0"[..]));
        // A date that is not at least a second before now is weak, however
        // exactly it matches: the file may have changed within its second.
        let matches = |m: SystemTime, now: SystemTime| {
            let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nIf-Range: {}\r\n\r\n", date(m));
            let request = Request::parse(raw.as_bytes()).unwrap();
            if_range_matches_at(&request, "\"t\"", Some(m), now)
        };
        // A whole second, so that both dates fall in one second of the format.
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(matches(now - Duration::from_secs(1), now));
        assert!(matches(
            now - Duration::from_secs(1) + Duration::from_millis(500),
            now + Duration::from_millis(500)
        ));
        assert!(!matches(now - Duration::from_millis(999), now));
        assert!(!matches(now, now));
        assert!(!matches(now + Duration::from_secs(600), now));
    }

    #[test]
    #[cfg(unix)]
    fn a_socket_is_not_found_and_a_name_with_a_backslash_is_not_listed() {
        let tree = Tree::new();
        let _socket = std::os::unix::net::UnixListener::bind(tree.root().join("app.sock")).unwrap();
        fs::write(tree.root().join("back\\slash.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(tree.root().join("nowhere"), tree.root().join("dangling"))
            .unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        assert_eq!(get(&files, "/app.sock", "").status().as_u16(), 404);
        let listing = body(&get(&files, "/", ""));
        let listing = String::from_utf8(listing).unwrap();
        assert!(
            listing.contains("a.txt") && listing.contains("link-in/"),
            "{listing}"
        );
        assert!(!listing.contains("slash"), "{listing}");
        // Links that could only fail (404) are not listed either.
        assert!(
            !listing.contains("app.sock") && !listing.contains("dangling"),
            "{listing}"
        );
        // The link could only fail: the name is refused in a path.
        assert_eq!(get(&files, "/back%5Cslash.txt", "").status().as_u16(), 400);
    }

    #[test]
    fn serving() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let r = get(&files, "/a.txt", "");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body(&r), b"0123456789");
        assert_eq!(
            r.headers().get("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(r.headers().get("accept-ranges"), Some("bytes"));
        let tag = r.headers().get("etag").unwrap().to_string();
        let lm = r.headers().get("last-modified").unwrap().to_string();
        assert!(tag.starts_with('"') && tag.ends_with("-a\""), "{tag}");
        assert!(parse_http_date(&lm).is_some());

        // Conditional requests.
        let cases: &[(String, u16)] = &[
            (format!("If-None-Match: {tag}\r\n"), 304),
            (format!("If-None-Match: \"other\", W/{tag}\r\n"), 304),
            ("If-None-Match: *\r\n".to_string(), 304),
            ("If-None-Match: \"other\"\r\n".to_string(), 200),
            (format!("If-Modified-Since: {lm}\r\n"), 304),
            (
                "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n".to_string(),
                200,
            ),
            ("If-Modified-Since: garbage\r\n".to_string(), 200),
            (
                format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}\r\n"),
                200,
            ),
        ];
        for (extra, status) in cases {
            let r = get(&files, "/a.txt", extra);
            assert_eq!(r.status().as_u16(), *status, "{extra}");
            if *status == 304 {
                assert!(r.body().is_empty());
                assert_eq!(r.headers().get("etag"), Some(tag.as_str()));
            }
        }

        // Ranges.
        let r = get(&files, "/a.txt", "Range: bytes=2-4\r\n");
        assert_eq!((r.status().as_u16(), &body(&r)[..]), (206, &b"234"[..]));
        assert_eq!(r.headers().get("content-range"), Some("bytes 2-4/10"));
        let r = get(&files, "/a.txt", "Range: bytes=-3\r\n");
        assert_eq!((r.status().as_u16(), &body(&r)[..]), (206, &b"789"[..]));
        let r = get(&files, "/a.txt", "Range: bytes=10-\r\n");
        assert_eq!(r.status().as_u16(), 416);
        assert_eq!(r.headers().get("content-range"), Some("bytes */10"));
        let r = get(&files, "/a.txt", "Range: bytes=0-1,4-5\r\n");
        assert_eq!(
            (r.status().as_u16(), &body(&r)[..]),
            (200, &b"0123456789"[..])
        );
        let r = get(
            &files,
            "/a.txt",
            &format!("Range: bytes=0-0\r\nIf-Range: {tag}\r\n"),
        );
        assert_eq!((r.status().as_u16(), &body(&r)[..]), (206, &b"0"[..]));
        let r = get(
            &files,
            "/a.txt",
            "Range: bytes=0-0\r\nIf-Range: \"stale\"\r\n",
        );
        assert_eq!(r.status().as_u16(), 200);

        // HEAD: no body bytes, the GET length.
        let head = Request::parse(b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = files.serve(&head);
        assert!(r.body().is_empty());
        assert_eq!(r.headers().get("content-length"), Some("10"));

        // Directories.
        let r = get(&files, "/site?x=1", "");
        assert_eq!(r.status().as_u16(), 301);
        assert_eq!(r.headers().get("location"), Some("/site/?x=1"));
        let r = get(&files, "/site/", "");
        assert_eq!(
            (r.status().as_u16(), &body(&r)[..]),
            (200, &b"<p>hi</p>"[..])
        );
        let r = get(&files, "/sub/", "");
        let html = String::from_utf8(body(&r).to_vec()).unwrap();
        assert_eq!(
            r.headers().get("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            html.contains("<a href=\"%3Cb%3E%26%27.txt\">&lt;b&gt;&amp;&#39;.txt</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"b.json\">b.json</a>") && html.contains("href=\"../\""));
        assert!(
            html.find("%3Cb").unwrap() < html.find("b.json").unwrap(),
            "sorted"
        );
        let r = get(&files, "/", "");
        let html = String::from_utf8(body(&r).to_vec()).unwrap();
        assert!(html.contains("<a href=\"sub/\">sub/</a>") && !html.contains("../"));
        let quiet = files.clone().listing(false).index(false);
        assert_eq!(get(&quiet, "/sub/", "").status().as_u16(), 403);
        assert_eq!(get(&quiet, "/site/", "").status().as_u16(), 403);

        // Refusals.
        assert_eq!(
            get(&files, "/%2e%2e/outside/secret", "").status().as_u16(),
            403
        );
        assert_eq!(get(&files, "/a%00", "").status().as_u16(), 400);
        assert_eq!(get(&files, "/nope", "").status().as_u16(), 404);
        #[cfg(unix)]
        assert_eq!(get(&files, "/link-out/secret", "").status().as_u16(), 403);
        let post = Request::parse(b"POST /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = files.serve(&post);
        assert_eq!(
            (r.status().as_u16(), r.headers().get("allow")),
            (405, Some("GET, HEAD, OPTIONS"))
        );
        for unknown in ["PROPFIND", "get"] {
            let raw = format!("{unknown} /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
            let r = files.serve(&Request::parse(raw.as_bytes()).unwrap());
            assert_eq!(r.status().as_u16(), 501, "{unknown}");
        }
        let options = Request::parse(b"OPTIONS /a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = files.serve(&options);
        assert_eq!(
            (r.status().as_u16(), r.headers().get("allow")),
            (204, Some("GET, HEAD, OPTIONS"))
        );
        assert!(StaticFiles::new(tree.root().join("a.txt")).is_err());
    }

    #[test]
    fn preconditions_and_dates_in_the_future() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let tag = get(&files, "/a.txt", "")
            .headers()
            .get("etag")
            .unwrap()
            .to_string();
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        let future = "Fri, 01 Jan 2100 00:00:00 GMT";
        let cases: &[(String, u16)] = &[
            (format!("If-Match: {tag}\r\n"), 200),
            (format!("If-Match: \"other\", {tag}\r\n"), 200),
            ("If-Match: *\r\n".to_string(), 200),
            ("If-Match: \"other\"\r\n".to_string(), 412),
            // Strong comparison: a weak tag never matches.
            (format!("If-Match: W/{tag}\r\n"), 412),
            (format!("If-Unmodified-Since: {future}\r\n"), 200),
            (format!("If-Unmodified-Since: {past}\r\n"), 412),
            ("If-Unmodified-Since: garbage\r\n".to_string(), 200),
            // `If-Match` decides alone when present.
            (
                format!("If-Match: {tag}\r\nIf-Unmodified-Since: {past}\r\n"),
                200,
            ),
            // Before `Range` and `If-None-Match`.
            (
                "If-Match: \"other\"\r\nRange: bytes=0-1\r\n".to_string(),
                412,
            ),
            (
                format!("If-Unmodified-Since: {past}\r\nIf-None-Match: {tag}\r\n"),
                412,
            ),
            // No `Last-Modified` sent can be later than now.
            (format!("If-Modified-Since: {future}\r\n"), 200),
        ];
        for (extra, status) in cases {
            let r = get(&files, "/a.txt", extra);
            assert_eq!(r.status().as_u16(), *status, "{extra}");
        }

        // A file modified "in the future" is dated now: a client given the
        // future date would take every later change for no change.
        let f = File::options()
            .write(true)
            .open(tree.root().join("a.txt"))
            .unwrap();
        f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(4_102_444_800))
            .unwrap();
        let r = get(&files, "/a.txt", "");
        let lm = parse_http_date(r.headers().get("last-modified").unwrap()).unwrap();
        assert!(
            lm <= SystemTime::now(),
            "{:?}",
            r.headers().get("last-modified")
        );
    }

    #[test]
    fn dates_before_1970_are_compared_as_dates() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        // 1960-01-01 00:00:00.
        let f = fs::File::options()
            .write(true)
            .open(tree.root().join("a.txt"))
            .unwrap();
        f.set_modified(UNIX_EPOCH - std::time::Duration::from_secs(315_619_200))
            .unwrap();
        let lm = get(&files, "/a.txt", "")
            .headers()
            .get("last-modified")
            .unwrap()
            .to_string();
        assert_eq!(lm, "Fri, 01 Jan 1960 00:00:00 GMT");
        let earlier = "Sun, 01 Jan 1950 00:00:00 GMT";
        let cases = [
            (format!("If-Modified-Since: {earlier}\r\n"), 200),
            (format!("If-Modified-Since: {lm}\r\n"), 304),
            (format!("If-Unmodified-Since: {earlier}\r\n"), 412),
            (format!("If-Unmodified-Since: {lm}\r\n"), 200),
        ];
        for (extra, status) in cases {
            let r = get(&files, "/a.txt", &extra);
            assert_eq!(r.status().as_u16(), status, "{extra}");
        }
    }

    #[test]
    #[cfg(unix)]
    fn a_directory_the_server_may_not_search_is_forbidden() {
        use std::os::unix::fs::PermissionsExt;
        let tree = Tree::new();
        let dir = tree.root().join("nox");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("f"), "x").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o644)).unwrap();
        let searchable = fs::metadata(dir.join("f")).is_ok();
        let status = if searchable {
            None
        } else {
            let files = StaticFiles::new(tree.root()).unwrap();
            Some(get(&files, "/nox/f", "").status().as_u16())
        };
        // Searchable again, so that the tree can be removed.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        match status {
            Some(status) => assert_eq!(status, 403),
            None => eprintln!("skipped: permissions do not stop this user (root)"),
        }
    }

    #[test]
    fn a_path_the_server_may_not_search_is_forbidden() {
        // A directory without search permission makes the resolution fail
        // with `EACCES` (not reproducible here when the tests run as root,
        // whom permissions do not stop).
        let tree = Tree::new();
        let root = tree.root();
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let missing = io::Error::from(io::ErrorKind::NotFound);
        let inside = root.join("sub/f");
        assert_eq!(unresolved(&root, &inside, &denied), ResolveError::Forbidden);
        assert_eq!(unresolved(&root, &inside, &missing), ResolveError::NotFound);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn what_was_opened_is_checked_against_the_root() {
        // As if a directory on the checked path had been swapped for a
        // link out between the check and the open.
        let tree = Tree::new();
        let outside = tree.0.join("outside/secret");
        let err = open_regular(&tree.root(), &outside).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(open_regular(&tree.root(), &tree.root().join("a.txt")).is_ok());
    }

    #[test]
    fn files_are_typed_and_found_as_asked() {
        let tree = Tree::new();
        let root = tree.root();
        let files = StaticFiles::new(&root).unwrap();
        // A file asked for as a directory is not there.
        for url in [
            "/a.txt/",
            "/sub/b.json/",
            "/a.txt/./",
            "/a.txt/.",
            "/a.txt//%2e",
        ] {
            assert_eq!(get(&files, url, "").status().as_u16(), 404, "{url}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            // Typed by the name asked for, not the name linked to.
            fs::write(root.join("blob-3f2a"), b"<p>page</p>").unwrap();
            std::os::unix::fs::symlink(root.join("blob-3f2a"), root.join("page.html")).unwrap();
            let r = get(&files, "/page.html", "");
            assert_eq!(
                (r.status().as_u16(), r.headers().get("content-type")),
                (200, Some("text/html; charset=utf-8"))
            );
            // A name that is not UTF-8 is listed with a link that leads
            // back to it.
            fs::write(root.join(OsStr::from_bytes(b"caf\xe9.txt")), b"latin-1").unwrap();
            let html = String::from_utf8(body(&get(&files, "/", ""))).unwrap();
            assert!(
                html.contains("<a href=\"caf%E9.txt\">caf\u{fffd}.txt</a>"),
                "{html}"
            );
            let r = get(&files, "/caf%E9.txt", "");
            assert_eq!((r.status().as_u16(), body(&r)), (200, b"latin-1".to_vec()));
            // A link to a directory is listed as a directory.
            assert!(html.contains("<a href=\"link-in/\">link-in/</a>"), "{html}");
        }
    }

    #[test]
    fn redirects_keep_the_asked_path_and_one_leading_slash() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        // `//site` would be a location on the host `site`.
        let r = get(&files, "//site", "");
        assert_eq!(r.status().as_u16(), 301);
        assert_eq!(r.headers().get("location"), Some("/site/"));
        let r = get(&files, "///site?q", "");
        assert_eq!(r.headers().get("location"), Some("/site/?q"));
    }

    #[test]
    fn serving_under_a_prefix() {
        let tree = Tree::new();
        fs::write(tree.root().join("100% pure.txt"), b"juice").unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        let under = |target: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            files.serve_under(&Request::parse(raw.as_bytes()).unwrap(), "/static/v1")
        };
        let r = under("/static/v1/100%25%20pure.txt");
        assert_eq!((r.status().as_u16(), body(&r)), (200, b"juice".to_vec()));
        // The prefix is compared decoded, as the router compares it, and
        // may be written encoded too.
        assert_eq!(under("/st%61tic/v1/a.txt").status().as_u16(), 200);
        let r = files.serve_under(
            &Request::parse(b"GET /static/v1/a.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
            "/st%61tic/v%31",
        );
        assert_eq!(r.status().as_u16(), 200);
        // The redirect names the whole path, prefix included.
        let r = under("/static/v1/site");
        assert_eq!(r.headers().get("location"), Some("/static/v1/site/"));
        // An encoded separator is refused, not decoded into a path.
        assert_eq!(under("/static/v1/sub%2Fb.json").status().as_u16(), 400);
        assert_eq!(under("/static/v2/a.txt").status().as_u16(), 404);
        assert_eq!(under("/static").status().as_u16(), 404);
        assert_eq!(under("/static/v1/").status().as_u16(), 200);
        // The prefix itself, without its final `/`, is its directory's URL
        // without one.
        let r = under("/static/v1?q");
        assert_eq!(r.status().as_u16(), 301);
        assert_eq!(r.headers().get("location"), Some("/static/v1/?q"));
        assert_eq!(under("/static/v1x").status().as_u16(), 404);
        let post = Request::parse(b"POST /static/v1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            files.serve_under(&post, "/static/v1").status().as_u16(),
            405
        );
    }

    #[test]
    fn the_prefix_without_its_slash_is_redirected_through_the_documented_route() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let mut app = crate::Router::new();
        app.get("/static/*path", move |req: Request| {
            let r = files.serve_under(&req, "/static");
            async move { r }
        })
        .unwrap();
        let call = |target: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            let call = crate::Handler::call(&app, Request::parse(raw.as_bytes()).unwrap());
            let mut call = std::pin::pin!(call);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match call.as_mut().poll(&mut cx) {
                Poll::Ready(r) => r,
                Poll::Pending => panic!("a file handler without I/O waits"),
            }
        };
        let r = call("/static?q");
        assert_eq!(r.status().as_u16(), 301);
        assert_eq!(r.headers().get("location"), Some("/static/?q"));
        assert_eq!(call("/static/").status().as_u16(), 200);
        assert_eq!(
            call("/static/site").headers().get("location"),
            Some("/static/site/")
        );
        assert_eq!(call("/staticx").status().as_u16(), 404);
    }

    #[test]
    fn a_file_replaced_by_one_of_the_same_length_and_date_gets_a_new_etag() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let path = tree.root().join("a.txt");
        let date = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(date)
            .unwrap();
        let first = get(&files, "/a.txt", "");
        let tag = first.headers().get("etag").unwrap().to_string();
        // As `cp -p` to a new name and a rename, or `rsync -t`, do.
        let next = tree.root().join("a.txt.new");
        fs::write(&next, b"9876543210").unwrap();
        File::options()
            .write(true)
            .open(&next)
            .unwrap()
            .set_modified(date)
            .unwrap();
        fs::rename(&next, &path).unwrap();
        let r = get(&files, "/a.txt", "");
        assert_eq!(
            r.headers().get("last-modified"),
            first.headers().get("last-modified")
        );
        assert_ne!(r.headers().get("etag"), Some(tag.as_str()));
        // The old tag no longer stands for the file: no 304, and no range
        // of the new content spliced onto the old.
        let r = get(&files, "/a.txt", &format!("If-None-Match: {tag}\r\n"));
        assert_eq!(r.status().as_u16(), 200);
        let r = get(
            &files,
            "/a.txt",
            &format!("Range: bytes=4-\r\nIf-Range: {tag}\r\n"),
        );
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (200, b"9876543210".to_vec())
        );
    }

    #[test]
    fn fields_that_may_appear_once_are_ignored_when_repeated_or_unreadable() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let lm = get(&files, "/a.txt", "")
            .headers()
            .get("last-modified")
            .unwrap()
            .to_string();
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        let cases: &[(String, u16)] = &[
            // Once each: they apply.
            (format!("If-Modified-Since: {lm}\r\n"), 304),
            (format!("If-Unmodified-Since: {past}\r\n"), 412),
            ("Range: bytes=0-1\r\n".to_string(), 206),
            // Twice: a list of dates, or two ranges, is ignored whatever
            // its order (RFC 9110 sections 13.1.3, 13.1.4 and 14.2).
            (
                format!("If-Modified-Since: {lm}\r\nIf-Modified-Since: {past}\r\n"),
                200,
            ),
            (
                format!("If-Modified-Since: {past}\r\nIf-Modified-Since: {lm}\r\n"),
                200,
            ),
            (
                format!("If-Unmodified-Since: {past}\r\nIf-Unmodified-Since: {lm}\r\n"),
                200,
            ),
            (
                format!("If-Unmodified-Since: {lm}\r\nIf-Unmodified-Since: {past}\r\n"),
                200,
            ),
            ("Range: bytes=0-1\r\nRange: bytes=2-3\r\n".to_string(), 200),
        ];
        for (extra, status) in cases {
            let r = get(&files, "/a.txt", extra);
            assert_eq!(r.status().as_u16(), *status, "{extra}");
        }
        // An `If-Range` that is not UTF-8, or given twice, names no
        // validator: the whole file.
        let tag = get(&files, "/a.txt", "")
            .headers()
            .get("etag")
            .unwrap()
            .to_string();
        for if_range in [
            b"\"\xe9\"".to_vec(),
            format!("{tag}\r\nIf-Range: {tag}").into_bytes(),
        ] {
            let mut raw =
                b"GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\nIf-Range: ".to_vec();
            raw.extend_from_slice(&if_range);
            raw.extend_from_slice(b"\r\n\r\n");
            let r = files.serve(&Request::parse(&raw).unwrap());
            assert_eq!(
                r.status().as_u16(),
                200,
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn as_a_handler_on_a_hub_a_listing_is_built_off_the_hub() {
        use crate::Handler;
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let req = |target: &str, extra: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
            Request::parse(raw.as_bytes()).unwrap()
        };
        let mut noop = Context::from_waker(std::task::Waker::noop());
        greenrt::run(async {
            // A file: answered at the first poll.
            let mut file = files.call(req("/a.txt", ""));
            let Poll::Ready(r) = Pin::new(&mut file).poll(&mut noop) else {
                panic!("a file is answered at once");
            };
            assert_eq!(r.status().as_u16(), 200);
            // A listing: built on the blocking pool, whose result this
            // task can only see after it let the hub run.
            let mut listing = files.call(req("/sub/", ""));
            assert!(Pin::new(&mut listing).poll(&mut noop).is_pending());
            let r = listing.await;
            assert_eq!(r.status().as_u16(), 200);
            assert!(String::from_utf8_lossy(&body(&r)).contains("b.json"));
            // Answered as the synchronous path answers.
            for (extra, status) in [
                ("If-Match: \"x\"\r\n", 412),
                ("If-None-Match: *\r\n", 304),
                ("", 200),
            ] {
                let r = files.call(req("/sub/", extra)).await;
                assert_eq!(r.status().as_u16(), status, "{extra}");
                assert_eq!(r.status(), get(&files, "/sub/", extra).status());
            }
        });
        // Outside a hub the listing is built at once.
        let mut off = files.call(req("/sub/", ""));
        assert!(Pin::new(&mut off).poll(&mut noop).is_ready());
    }

    #[test]
    fn serve_under_async_answers_as_serve_under_with_listings_off_the_hub() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let req = |target: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            Request::parse(raw.as_bytes()).unwrap()
        };
        let mut noop = Context::from_waker(std::task::Waker::noop());
        greenrt::run(async {
            // A listing: pending at its first poll, built on the pool.
            let mut listing = files.serve_under_async(&req("/static/sub/"), "/static");
            assert!(Pin::new(&mut listing).poll(&mut noop).is_pending());
            let r = listing.await;
            assert_eq!(r.status().as_u16(), 200);
            assert!(String::from_utf8_lossy(&body(&r)).contains("b.json"));
            // Everything else at once, as `serve_under` answers it.
            for target in [
                "/static/a.txt",
                "/elsewhere/a.txt",
                "/static",
                "/static/sub",
            ] {
                let mut f = files.serve_under_async(&req(target), "/static");
                let Poll::Ready(r) = Pin::new(&mut f).poll(&mut noop) else {
                    panic!("{target} is answered at once");
                };
                let sync = files.serve_under(&req(target), "/static");
                assert_eq!(r.status(), sync.status(), "{target}");
                assert_eq!(
                    r.headers().get("location"),
                    sync.headers().get("location"),
                    "{target}"
                );
            }
        });
    }

    #[test]
    fn a_listing_answers_preconditions_as_a_representation_without_a_tag() {
        let tree = Tree::new();
        let files = StaticFiles::new(tree.root()).unwrap();
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        let cases: &[(String, u16)] = &[
            ("If-Match: \"x\"\r\n".to_string(), 412),
            ("If-Match: *\r\n".to_string(), 200),
            ("If-None-Match: *\r\n".to_string(), 304),
            ("If-None-Match: \"x\"\r\n".to_string(), 200),
            (format!("If-Modified-Since: {past}\r\n"), 200),
            (format!("If-Unmodified-Since: {past}\r\n"), 200),
        ];
        for (extra, status) in cases {
            let r = get(&files, "/sub/", extra);
            assert_eq!(r.status().as_u16(), *status, "{extra}");
            if *status == 304 {
                assert!(r.body().is_empty(), "{extra}");
            }
        }
    }

    #[test]
    fn a_directory_with_only_an_index_htm_is_answered_with_it() {
        let tree = Tree::new();
        let dir = tree.root().join("old");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("index.htm"), b"<p>old</p>").unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        let r = get(&files, "/old/", "");
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (200, b"<p>old</p>".to_vec())
        );
        assert_eq!(
            r.headers().get("content-type"),
            Some("text/html; charset=utf-8")
        );
        // `index.html` comes first.
        fs::write(dir.join("index.html"), b"<p>new</p>").unwrap();
        assert_eq!(body(&get(&files, "/old/", "")), b"<p>new</p>".to_vec());
    }

    #[cfg(unix)]
    #[test]
    fn the_listing_shows_no_link_out_of_the_root() {
        let tree = Tree::new();
        let root = tree.root();
        // Out of the root: to a directory, to a file, to nothing. Each is
        // refused (403) when asked for, so that the answer does not tell
        // whether it exists; the listing must not tell either.
        std::os::unix::fs::symlink(tree.0.join("outside/secret"), root.join("secret-link"))
            .unwrap();
        std::os::unix::fs::symlink(tree.0.join("outside/none"), root.join("none-link")).unwrap();
        let files = StaticFiles::new(&root).unwrap();
        for name in ["link-out", "secret-link", "none-link"] {
            assert_eq!(
                get(&files, &format!("/{name}"), "").status().as_u16(),
                403,
                "{name}"
            );
        }
        let listing = String::from_utf8(body(&get(&files, "/", ""))).unwrap();
        assert!(
            listing.contains("link-in/") && listing.contains("a.txt"),
            "{listing}"
        );
        for name in ["link-out", "secret-link", "none-link"] {
            assert!(!listing.contains(name), "{name} in {listing}");
        }
        // The function on its own lists links by what they lead to.
        let plain = directory_listing("/", &root).unwrap();
        assert!(
            plain.contains("link-out/") && plain.contains("secret-link"),
            "{plain}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn paths_deep_in_a_tree_resolve_as_shallow_ones_do() {
        let tree = Tree::new();
        let root = tree.root();
        let depth = 60;
        let mut deep = root.join("deep");
        let mut url = String::from("/deep");
        for _ in 0..depth {
            deep.push("d");
            url.push_str("/d");
        }
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f.txt"), b"f").unwrap();
        std::os::unix::fs::symlink(tree.0.join("outside/none"), deep.join("out")).unwrap();
        std::os::unix::fs::symlink(&deep, root.join("deep/in")).unwrap();
        let root = root.canonicalize().unwrap();
        let deep = deep.canonicalize().unwrap();
        assert_eq!(
            resolve(&root, &format!("{url}/f.txt")),
            Ok(deep.join("f.txt"))
        );
        assert_eq!(
            resolve(&root, &format!("{url}/missing/x")),
            Err(ResolveError::NotFound)
        );
        // Missing at every depth: found missing where it is.
        for cut in [1, 2, depth / 2, depth - 1] {
            let mut path = String::from("/deep");
            for _ in 0..cut {
                path.push_str("/d");
            }
            path.push_str("/gone/d/d");
            assert_eq!(resolve(&root, &path), Err(ResolveError::NotFound), "{path}");
        }
        // A dangling link out, deep down, and what would lie under it.
        assert_eq!(
            resolve(&root, &format!("{url}/out")),
            Err(ResolveError::Forbidden)
        );
        assert_eq!(
            resolve(&root, &format!("{url}/out/x/y")),
            Err(ResolveError::Forbidden)
        );
        // Through a link inside the root, then missing.
        assert_eq!(resolve(&root, "/deep/in/f.txt"), Ok(deep.join("f.txt")));
        assert_eq!(
            resolve(&root, "/deep/in/out/x"),
            Err(ResolveError::Forbidden)
        );
        assert_eq!(
            resolve(&root, "/deep/in/gone/x"),
            Err(ResolveError::NotFound)
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_index_linked_out_of_the_root_is_refused() {
        let tree = Tree::new();
        let dir = tree.root().join("linked");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(tree.0.join("outside/secret"), dir.join("index.html")).unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        let r = get(&files, "/linked/", "");
        assert_eq!(r.status().as_u16(), 403);
        assert!(!matches!(r.body(), Body::File(_)));
        // The same answer where what it leads to does not exist: nothing
        // is told of what exists outside.
        let dangling = tree.root().join("dangling");
        fs::create_dir(&dangling).unwrap();
        let nowhere = tree.0.join("outside/nothing-here");
        std::os::unix::fs::symlink(nowhere, dangling.join("index.html")).unwrap();
        assert_eq!(get(&files, "/dangling/", "").status().as_u16(), 403);
        // A link that stays inside is followed.
        let inside = tree.root().join("inside");
        fs::create_dir(&inside).unwrap();
        std::os::unix::fs::symlink(tree.root().join("a.txt"), inside.join("index.html")).unwrap();
        let r = get(&files, "/inside/", "");
        assert_eq!(
            (r.status().as_u16(), body(&r)),
            (200, b"0123456789".to_vec())
        );
        // Typed as the index it was asked as, not as the file it links to.
        assert_eq!(
            r.headers().get("content-type"),
            Some("text/html; charset=utf-8")
        );
    }

    #[cfg(unix)]
    #[test]
    fn names_with_a_colon_are_served_where_they_are_plain_names() {
        let tree = Tree::new();
        fs::write(tree.root().join("a:b.txt"), b"colon").unwrap();
        let files = StaticFiles::new(tree.root()).unwrap();
        let r = get(&files, "/a%3Ab.txt", "");
        assert_eq!((r.status().as_u16(), body(&r)), (200, b"colon".to_vec()));
        let r = get(&files, "/a:b.txt", "");
        assert_eq!(r.status().as_u16(), 200);
    }

    #[test]
    fn range_table() {
        use ByteRange::*;
        let table: &[(&str, u64, ByteRange)] = &[
            ("bytes=0-0", 10, Partial { start: 0, end: 0 }),
            ("bytes=0-99", 10, Partial { start: 0, end: 9 }),
            ("bytes=5-", 10, Partial { start: 5, end: 9 }),
            ("bytes=-20", 10, Partial { start: 0, end: 9 }),
            (" Bytes = 1 - 2 ", 10, Partial { start: 1, end: 2 }),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Full),
            ("bytes=-0", 0, Unsatisfiable),
            ("bytes=5-3", 10, Full),
            ("bytes=a-b", 10, Full),
            ("bytes=-", 10, Full),
            ("bytes=+1-2", 10, Full),
            ("items=0-1", 10, Full),
            ("bytes 0-1", 10, Full),
            ("bytes=0-1,3-4", 10, Full),
            // Past a `u64`: `u64::MAX`, clamped as any number past the end.
            ("bytes=99999999999999999999-", 10, Unsatisfiable),
            (
                "bytes=0-18446744073709551615",
                10,
                Partial { start: 0, end: 9 },
            ),
            (
                "bytes=0-99999999999999999999",
                10,
                Partial { start: 0, end: 9 },
            ),
            (
                "bytes=-99999999999999999999",
                10,
                Partial { start: 0, end: 9 },
            ),
            ("bytes=99999999999999999999-5", 10, Full),
        ];
        for (value, len, expected) in table {
            assert_eq!(parse_range(value, *len), *expected, "{value} / {len}");
        }
    }

    #[test]
    fn tags_and_types() {
        assert_eq!(
            entity_tags(r#""a", W/"b,c" ,*,"#),
            [r#""a""#, r#"W/"b,c""#, "*"]
        );
        assert_eq!(entity_tags(r#""open"#), Vec::<&str>::new());
        assert!(weak_eq(r#"W/"x""#, r#""x""#) && !weak_eq(r#""x""#, r#""y""#));
        for (name, mime) in [
            ("x.css", "text/css; charset=utf-8"),
            ("x.JS", "text/javascript; charset=utf-8"),
            ("x.png", "image/png"),
            ("x.wasm", "application/wasm"),
            ("x", "application/octet-stream"),
            ("x.unknown", "application/octet-stream"),
        ] {
            assert_eq!(mime_type(Path::new(name)), mime);
        }
        assert_eq!(ResolveError::Forbidden.status(), StatusCode::FORBIDDEN);
        assert!(!ResolveError::NotFound.to_string().is_empty());
    }
}
