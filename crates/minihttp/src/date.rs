//! HTTP dates (RFC 9110 section 5.6.7): the IMF-fixdate formatter, a parser
//! for the three formats recipients must accept, and the per-thread cache
//! behind every response's `Date` header.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats a time as an IMF-fixdate, truncated to the second (toward the
/// past, before 1970 as after). Times before the year 1 are written as
/// 0001-01-01 00:00:00, years past 9999 as 9999-12-31 23:59:59.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(&minihttp::fmt_http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// let before = UNIX_EPOCH - Duration::from_millis(500);
/// assert_eq!(&minihttp::fmt_http_date(before), b"Wed, 31 Dec 1969 23:59:59 GMT");
/// ```
pub fn fmt_http_date(time: SystemTime) -> [u8; HTTP_DATE_LEN] {
    fmt_secs(unix_secs(time).clamp(MIN_SECS, MAX_SECS))
}

/// 0001-01-01T00:00:00Z, the first second a four-digit year writes.
const MIN_SECS: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z, the last.
const MAX_SECS: i64 = 253_402_300_799;

/// Whole seconds from the epoch to `time` (negative before it), rounded
/// toward the past, and saturating: the precision of HTTP dates.
pub(crate) fn unix_secs(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    }
}

fn fmt_secs(secs: i64) -> [u8; HTTP_DATE_LEN] {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u64;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7) as usize;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[weekday]);
    two(&mut out[5..7], u64::from(day));
    out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    let y = year as u64;
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    two(&mut out[17..19], h);
    two(&mut out[20..22], m);
    two(&mut out[23..25], s);
    out
}

fn two(out: &mut [u8], v: u64) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month 1..=12, day 1..=31) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an HTTP date in any of the three formats RFC 9110 requires
/// recipients to accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). `None` for anything else. An RFC 850
/// date's two-digit year is read as the year with those digits within 50
/// years of now, as RFC 9110 section 5.6.7 asks.
///
/// ```
/// let t = minihttp::parse_http_date("Sun Nov  6 08:49:37 1994").unwrap();
/// assert_eq!(&minihttp::fmt_http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// assert!(minihttp::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_some());
/// ```
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim_matches([' ', '\t']).as_bytes();
    let (year, month, day, time) = if s.len() == 29 && s[3] == b',' {
        // IMF-fixdate
        if &s[25..] != b" GMT" || s[4] != b' ' || s[7] != b' ' || s[11] != b' ' || s[16] != b' ' {
            return None;
        }
        (
            num(&s[12..16])?,
            month(&s[8..11])?,
            num(&s[5..7])?,
            &s[17..25],
        )
    } else if s.len() == 24 && s[3] == b' ' {
        // asctime: "Sun Nov  6 08:49:37 1994"
        if s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
            return None;
        }
        let day = if s[8] == b' ' {
            num(&s[9..10])?
        } else {
            num(&s[8..10])?
        };
        (num(&s[20..24])?, month(&s[4..7])?, day, &s[11..19])
    } else {
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        let comma = s.iter().position(|&b| b == b',')?;
        let rest = &s[comma..];
        if rest.len() != 24
            || &rest[..2] != b", "
            || rest[4] != b'-'
            || rest[8] != b'-'
            || rest[11] != b' '
            || &rest[20..] != b" GMT"
        {
            return None;
        }
        let year = two_digit_year(num(&rest[9..11])?, current_year());
        (year, month(&rest[5..8])?, num(&rest[2..4])?, &rest[12..20])
    };
    if time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (h, m, sec) = (num(&time[0..2])?, num(&time[3..5])?, num(&time[6..8])?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    // Reject days past the end of the month (e.g. Feb 30): they round-trip
    // to a different date.
    if civil_from_days(days) != (i64::from(year), month, day) {
        return None;
    }
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + sec);
    let since = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(since)
    } else {
        UNIX_EPOCH.checked_sub(since)
    }
}

/// The year an RFC 850 date's two digits `yy` name, in `now`'s terms (RFC
/// 9110 section 5.6.7): the year with those last digits that is neither
/// more than 50 years ahead of `now` nor 50 or more behind it.
fn two_digit_year(yy: u32, now: u32) -> u32 {
    let year = now - now % 100 + yy;
    if year > now + 50 {
        year - 100
    } else if year + 50 <= now {
        year + 100
    } else {
        year
    }
}

/// This year, by the system clock (1970 if the clock is before it).
fn current_year() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, _, _) = civil_from_days((secs / 86_400) as i64);
    u32::try_from(year).unwrap_or(1970)
}

fn num(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

fn month(name: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| &m[..] == name)
        .map(|i| i as u32 + 1)
}

/// A formatted `Date` value, recomputed at most once per second.
///
/// The server keeps one per thread ([`with_cached_date`]); own one when you
/// want to drive the clock yourself:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let mut cache = minihttp::DateCache::new();
/// let t = UNIX_EPOCH + Duration::from_millis(784_111_777_250);
/// assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
#[derive(Clone, Debug)]
pub struct DateCache {
    /// Whole seconds since the epoch that `text` shows, if any.
    secs: Option<i64>,
    text: [u8; HTTP_DATE_LEN],
    #[cfg(test)]
    formats: u32,
}

impl DateCache {
    /// An empty cache: the first [`get`](DateCache::get) formats.
    pub const fn new() -> DateCache {
        DateCache {
            secs: None,
            text: [b' '; HTTP_DATE_LEN],
            #[cfg(test)]
            formats: 0,
        }
    }

    /// The IMF-fixdate for `now`, formatted only when the second changed
    /// since the previous call.
    pub fn get(&mut self, now: SystemTime) -> &[u8; HTTP_DATE_LEN] {
        let secs = Some(unix_secs(now));
        if secs != self.secs {
            self.secs = secs;
            self.text = fmt_http_date(now);
            #[cfg(test)]
            {
                self.formats += 1;
            }
        }
        &self.text
    }
}

impl Default for DateCache {
    fn default() -> DateCache {
        DateCache::new()
    }
}

/// Length of the `Date` field line as a response carries it:
/// `date: ` + IMF-fixdate + CRLF.
pub(crate) const DATE_LINE_LEN: usize = 6 + HTTP_DATE_LEN + 2;

/// The status line of `200 OK`, which a cached head starts with.
const OK_LINE: &[u8; 17] = b"HTTP/1.1 200 OK\r\n";

/// Length of the status line of `200 OK` and the `Date` field line.
const OK_HEAD_LEN: usize = OK_LINE.len() + DATE_LINE_LEN;

/// The status line of `200 OK` and the field line for an IMF-fixdate.
const fn make_ok_head(date: &[u8; HTTP_DATE_LEN]) -> [u8; OK_HEAD_LEN] {
    let parts: [&[u8]; 4] = [OK_LINE, b"date: ", date, b"\r\n"];
    let mut head = [0; OK_HEAD_LEN];
    let (mut at, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            head[at] = parts[p][i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    head
}

thread_local! {
    static CACHE: Cell<(u64, [u8; HTTP_DATE_LEN])> = const { Cell::new((u64::MAX, [b' '; HTTP_DATE_LEN])) };
    /// `CACHE`'s date as a field line after the status line of `200 OK`,
    /// kept in step with it: a response copies one fixed-size piece.
    static HEAD: Cell<[u8; OK_HEAD_LEN]> = const { Cell::new(make_ok_head(&[b' '; HTTP_DATE_LEN])) };
    /// Set while a ticker (the server's, one per hub) refreshes `CACHE`
    /// every second: then reading the date reads no clock.
    static TICKED: Cell<bool> = const { Cell::new(false) };
}

/// Calls `f` with the current time as an IMF-fixdate, from a per-thread
/// cache that formats at most once per second.
///
/// On a server hub the cache is refreshed by a once-a-second timer and this
/// reads no clock at all (a handler that blocks its hub's thread, which
/// the stall monitor reports, answers with the date of before it blocked);
/// elsewhere it reads the clock and formats when the second changed.
pub fn with_cached_date<R>(f: impl FnOnce(&[u8; HTTP_DATE_LEN]) -> R) -> R {
    keep_fresh();
    CACHE.with(|cell| f(&cell.get().1))
}

/// Without a ticker on this thread, brings the cache up to the second.
#[inline(always)]
fn keep_fresh() {
    if !TICKED.get() {
        refresh_date();
    }
}

/// The status line of `200 OK` and the `Date` field line (`date:
/// ...\r\n`) of the current time, from the same cache as
/// [`with_cached_date`]; the `Date` field line alone is the last
/// [`DATE_LINE_LEN`] bytes.
#[inline(always)]
pub(crate) fn ok_head() -> [u8; OK_HEAD_LEN] {
    keep_fresh();
    HEAD.get()
}

/// Brings this thread's cached date up to the current second; returns the
/// time until the next second starts.
pub(crate) fn refresh_date() -> Duration {
    let now = SystemTime::now();
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    CACHE.with(|cell| {
        if cell.get().0 != secs {
            let date = fmt_http_date(now);
            cell.set((secs, date));
            HEAD.set(make_ok_head(&date));
        }
    });
    Duration::from_secs(1).saturating_sub(Duration::from_nanos(u64::from(since.subsec_nanos())))
}

/// Says whether a ticker keeps this thread's cached date fresh.
pub(crate) fn set_ticked(on: bool) {
    TICKED.set(on);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn known_dates() {
        let table: [(u64, &str); 6] = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, text) in table {
            assert_eq!(std::str::from_utf8(&fmt_http_date(at(secs))).unwrap(), text);
            assert_eq!(parse_http_date(text), Some(at(secs)), "{text}");
        }
        assert_eq!(
            &fmt_http_date(at(u64::MAX / 4)),
            b"Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn dates_before_1970() {
        let before = |secs: u64| UNIX_EPOCH - Duration::from_secs(secs);
        let table: [(SystemTime, &str); 5] = [
            (before(1), "Wed, 31 Dec 1969 23:59:59 GMT"),
            (before(86_401), "Tue, 30 Dec 1969 23:59:59 GMT"),
            (before(2_208_988_800), "Mon, 01 Jan 1900 00:00:00 GMT"),
            (before(2_203_891_200), "Thu, 01 Mar 1900 00:00:00 GMT"),
            (before(62_135_596_800), "Mon, 01 Jan 0001 00:00:00 GMT"),
        ];
        for (t, text) in table {
            assert_eq!(std::str::from_utf8(&fmt_http_date(t)).unwrap(), text);
            assert_eq!(parse_http_date(text), Some(t), "{text}");
        }
        // Truncated toward the past, as after 1970.
        assert_eq!(
            &fmt_http_date(UNIX_EPOCH - Duration::from_nanos(1)),
            b"Wed, 31 Dec 1969 23:59:59 GMT"
        );
        // Before the year 1: the first date a four-digit year writes.
        if let Some(t) = UNIX_EPOCH.checked_sub(Duration::from_secs(70_000_000_000)) {
            assert_eq!(&fmt_http_date(t), b"Mon, 01 Jan 0001 00:00:00 GMT");
        }
        assert_eq!(parse_http_date("Sat, 01 Jan 0000 00:00:00 GMT"), None);
    }

    #[test]
    fn two_digit_years_are_read_within_50_years_of_now() {
        let table = [
            (94, 2026, 1994),
            (70, 2026, 2070),
            (76, 2026, 2076),
            (77, 2026, 1977),
            (26, 2026, 2026),
            (10, 2090, 2110),
            (40, 2090, 2140),
            (41, 2090, 2041),
            (99, 1999, 1999),
        ];
        for (yy, now, year) in table {
            assert_eq!(two_digit_year(yy, now), year, "{yy} in {now}");
        }
        assert!(current_year() >= 2024);
    }

    #[test]
    fn obsolete_formats() {
        let t = Some(at(784_111_777));
        // "94" is 1994 until 2044 (then 2094: within 50 years of now).
        if two_digit_year(94, current_year()) == 1994 {
            assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), t);
        }
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), t);
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), t);
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 0x Nov 1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 19x4",
            "Sunday, 06-Nov-94 08:49:37 PST",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cache_formats_once_per_second() {
        let mut cache = DateCache::new();
        let base = at(784_111_777);
        let first = *cache.get(base);
        assert_eq!(cache.get(base + Duration::from_millis(999)), &first);
        assert_eq!(cache.formats, 1);
        assert_eq!(
            cache.get(base + Duration::from_secs(1)),
            b"Sun, 06 Nov 1994 08:49:38 GMT"
        );
        assert_eq!(cache.formats, 2);
        // The thread-local cache agrees with the formatter on the same second.
        let (a, now, b) = (
            SystemTime::now(),
            with_cached_date(|d| *d),
            SystemTime::now(),
        );
        assert!(now == fmt_http_date(a) || now == fmt_http_date(b));
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(secs in MIN_SECS..=MAX_SECS) {
            let t = if secs >= 0 {
                UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
            } else {
                UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            };
            let text = fmt_http_date(t);
            let parsed = parse_http_date(std::str::from_utf8(&text).unwrap());
            prop_assert_eq!(parsed, Some(t));
        }

        #[test]
        fn date_shaped_strings_parse_exactly_when_their_fields_are_valid(
            shape in 0..3u8,
            day in 0..33u32,
            // 12 is not a month name.
            month in 0..13usize,
            year in 0..10_000u32,
            (h, m, sec) in (0..26u32, 0..62u32, 0..62u32),
            padded in any::<bool>(),
        ) {
            const NAMES: [&str; 13] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo",
            ];
            let mon = NAMES[month];
            let time = format!("{h:02}:{m:02}:{sec:02}");
            // The year each shape names: an RFC 850 date's two digits within
            // 50 years of now, counted here by search rather than formula.
            let (text, year) = match shape {
                0 => (format!("Sun, {day:02} {mon} {year:04} {time} GMT"), year),
                1 => {
                    let day = if padded { format!("{day:02}") } else { format!("{day:>2}") };
                    (format!("Sun {mon} {day} {time} {year:04}"), year)
                }
                _ => {
                    let now = current_year();
                    let full = (now - 49..=now + 50).find(|y| y % 100 == year % 100).unwrap();
                    (format!("Sunday, {day:02}-{mon}-{:02} {time} GMT", year % 100), full)
                }
            };
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let valid = month < 12
                && (1..=month_days[month.min(11)]).contains(&day)
                && year >= 1
                && h < 24
                && m < 60
                && sec <= 60;
            let parsed = parse_http_date(&text);
            prop_assert_eq!(parsed.is_some(), valid, "{}", text);
            if let Some(t) = parsed {
                let imf = fmt_http_date(t);
                prop_assert_eq!(parse_http_date(std::str::from_utf8(&imf).unwrap()), Some(t));
                // A leap second reads as the next minute's first.
                if sec < 60 {
                    let fields = format!("{day:02} {mon} {year:04} {time} GMT");
                    prop_assert_eq!(&imf[5..], fields.as_bytes(), "{}", text);
                }
            }
        }
    }
}
