//! Arbitrary bytes against a real server: every connection ends in
//! well-formed responses followed by a clean close, never a hang or a
//! crashed server.

#[path = "http_util.rs"]
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use minihttp::{Limits, Request, Response, Server, ServerHandle};
use proptest::prelude::*;

fn server() -> SocketAddr {
    static SERVER: OnceLock<ServerHandle> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let limits = Limits {
                header_read_timeout: Duration::from_millis(500),
                idle_timeout: Duration::from_millis(500),
                max_body: 4096,
                ..Limits::default()
            };
            Server::bind("127.0.0.1:0")
                .unwrap()
                .workers(2)
                .limits(limits)
                .spawn(
                    |req: Request| async move { Response::text(format!("{}", req.body().len())) },
                )
                .unwrap()
        })
        .local_addr()
}

/// Sends `bytes`, closes the sending side, reads until the server closes.
fn exchange(bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer and close before taking everything: a failed
    // write is part of the game, not of the verdict.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    // A clean close ends the read; a timeout (a hang) or a reset fails.
    if let Err(e) = s.read_to_end(&mut out) {
        panic!("no clean close after {} bytes: {e}", out.len());
    }
    out
}

/// Whether the server owes `bytes` an answer: anything but empty lines
/// starts a request, and a request cut short by the end of input gets an
/// error answer.
fn starts_a_request(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b != b'\r' && b != b'\n')
}

/// Checks `out` for `input`: framed responses, at least one when a request
/// was started, each with a status the server sends.
fn check(input: &[u8], out: &[u8]) -> Result<(), TestCaseError> {
    let Some(codes) = statuses(out) else {
        return Err(TestCaseError::fail(format!(
            "unframed output: {:?}",
            String::from_utf8_lossy(out)
        )));
    };
    prop_assert!(
        !starts_a_request(input) || !codes.is_empty(),
        "no answer to {:?}",
        String::from_utf8_lossy(input)
    );
    prop_assert!(codes.iter().all(|c| (200..600).contains(c)), "{codes:?}");
    Ok(())
}

/// Splits a byte stream into the status codes of its responses, checking
/// each is framed by `Content-Length`.
fn statuses(mut out: &[u8]) -> Option<Vec<u16>> {
    let mut codes = Vec::new();
    while !out.is_empty() {
        let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&out[..end]).ok()?;
        let code: u16 = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(Some(0), |v| v.parse().ok())?;
        out = out.get(end + 4 + len..)?;
        codes.push(code);
    }
    Some(codes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_responses_then_a_clean_close(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let out = exchange(&bytes);
        check(&bytes, &out)?;
    }

    #[test]
    fn mangled_requests_get_responses_then_a_clean_close(
        cut in 0usize..120,
        flip in 0usize..120,
        byte in any::<u8>(),
    ) {
        let mut raw = b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
        let flip = flip % raw.len();
        raw[flip] = byte;
        raw.truncate(raw.len() - cut.min(raw.len()));
        let out = exchange(&raw);
        check(&raw, &out)?;
    }
}

#[test]
fn the_server_still_answers_after_the_noise() {
    // Noise of its own first: the proptests may run before or after this.
    for noise in [
        &b"\x00\xff GET"[..],
        b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
        b"\r\n\r\nGET",
    ] {
        check(noise, &exchange(noise)).unwrap();
    }
    let mut c = util::Client::connect(server());
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(c.read().unwrap().text(), "2");
}
