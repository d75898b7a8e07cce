//! Streamed request bodies end to end (`Server::stream_bodies`): a handler
//! reads a large upload while the client is still sending it, the body
//! limit, the per-pause timeout, an unread body followed by a pipelined
//! request, and `100 Continue` sent only when the body is read.

#[path = "http_util.rs"]
mod util;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::io::AsyncReadExt;
use greenrt::time::ManualClock;
use minihttp::{Limits, Request, Response, Server, ServerHandle, StatusCode};
use sync_prims::Event;
use util::{Client, get, slow_body_limits, trickled_body_gets_408};

/// How long a test waits for an event before it fails (never reached when
/// the server works).
const PATIENCE: Duration = Duration::from_secs(30);

/// 64-bit FNV-1a, fed incrementally.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `n` pseudo-random bytes (xorshift), the same for the same seed.
fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What the handlers report to the test, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The handler started (the head was read).
    Started,
    /// The handler read its first body bytes.
    FirstChunk(usize),
    /// The handler's read failed: whether with 413, and with 408.
    Failed { too_large: bool, timeout: bool },
    /// A read failed as the connection ended in the middle of the body.
    Cut,
}

struct App {
    seen: Mutex<Sender<Seen>>,
    /// Set by the test to let `/gated` read its body.
    gate: Arc<Event>,
}

impl App {
    fn report(&self, s: Seen) {
        let _ = self.seen.lock().unwrap().send(s);
    }
}

async fn handle(app: Arc<App>, mut req: Request) -> Response {
    assert!(req.body().is_empty(), "streamed bodies are not buffered");
    match req.path().as_ref() {
        // Chunk by chunk, reporting the first one: the checksum, the
        // length and the number of chunks.
        "/sum" => {
            app.report(Seen::Started);
            let mut body = req.body_stream();
            let (mut fnv, mut len, mut chunks) = (Fnv::new(), 0, 0);
            loop {
                match body.next_chunk().await {
                    Ok(Some(chunk)) => {
                        if chunks == 0 {
                            app.report(Seen::FirstChunk(chunk.len()));
                        }
                        chunks += 1;
                        len += chunk.len();
                        fnv.update(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        app.report(Seen::Failed {
                            too_large: e.is_body_too_large(),
                            timeout: e.is_timeout(),
                        });
                        // The server answers the body's error instead.
                        return Response::text("not this");
                    }
                }
            }
            Response::text(format!("{:016x} {len} {chunks}", fnv.0))
        }
        // Through `futures_io::AsyncRead` with a small buffer.
        "/read" => {
            let mut body = req.body_stream();
            let mut buf = [0u8; 1000];
            let (mut fnv, mut len, mut first) = (Fnv::new(), 0, true);
            loop {
                let n = match AsyncReadExt::read(&mut body, &mut buf).await {
                    Ok(n) => n,
                    Err(e) => return Response::text(format!("error {e}")),
                };
                if n == 0 {
                    break;
                }
                if first {
                    app.report(Seen::FirstChunk(n));
                    first = false;
                }
                len += n;
                fnv.update(&buf[..n]);
            }
            Response::text(format!("{:016x} {len}", fnv.0))
        }
        // Read by another green task, awaited by the handler.
        "/elsewhere" => {
            let body = req.body_stream();
            match greenrt::spawn(body.read_all()).await {
                Ok(Ok(all)) => Response::text(format!("{} bytes", all.len())),
                other => Response::text(format!("failed: {other:?}")),
            }
        }
        // Read by another green task, which reports what it reads.
        "/elsewhere-reported" => {
            let mut body = req.body_stream();
            let reader = greenrt::spawn(async move {
                loop {
                    match body.next_chunk().await {
                        Ok(Some(chunk)) => app.report(Seen::FirstChunk(chunk.len())),
                        Ok(None) => break,
                        Err(e) if e.is_incomplete() => return app.report(Seen::Cut),
                        Err(e) => {
                            return app.report(Seen::Failed {
                                too_large: e.is_body_too_large(),
                                timeout: e.is_timeout(),
                            });
                        }
                    }
                }
            });
            let _ = reader.await;
            Response::text("read elsewhere")
        }
        // Reads a chunk, waits for the gate, then reads the rest.
        "/paused" => {
            app.report(Seen::Started);
            let mut body = req.body_stream();
            let mut len = 0;
            if let Ok(Some(chunk)) = body.next_chunk().await {
                len += chunk.len();
                app.report(Seen::FirstChunk(chunk.len()));
            }
            app.gate.wait_async().await;
            match body.read_all().await {
                Ok(rest) => Response::text(format!("{} bytes", len + rest.len())),
                Err(e) => Response::text(format!("error {e}")),
            }
        }
        // Reads only when the test opens the gate.
        "/gated" => {
            app.report(Seen::Started);
            app.gate.wait_async().await;
            match req.body_stream().read_all().await {
                Ok(all) => Response::text(String::from_utf8_lossy(&all).into_owned()),
                Err(e) => Response::text(format!("error {e}")),
            }
        }
        // Reads one chunk at most, then answers.
        "/one" => {
            let n = match req.body_stream().next_chunk().await {
                Ok(Some(c)) => c.len(),
                _ => 0,
            };
            assert!(n > 0);
            Response::text("read one chunk")
        }
        // Never reads its body.
        "/ignore" => Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body(format!("ignored {}", req.is_body_streamed()))
            .unwrap(),
        other => Response::text(other.to_string()),
    }
}

/// A streaming server and the channel its handlers report on.
fn serve(limits: Limits) -> (ServerHandle, Receiver<Seen>, Arc<Event>) {
    serve_on(None, limits)
}

/// [`serve`], with one hub whose timeouts count the time of `clock` when
/// there is one.
fn serve_on(
    clock: Option<&ManualClock>,
    limits: Limits,
) -> (ServerHandle, Receiver<Seen>, Arc<Event>) {
    let (tx, rx) = channel();
    let gate = Arc::new(Event::new());
    let app = Arc::new(App {
        seen: Mutex::new(tx),
        gate: gate.clone(),
    });
    let mut server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .limits(limits)
        .stream_bodies(true);
    if let Some(clock) = clock {
        server = server.workers(1).clock(clock.clone());
    }
    let server = server.spawn(move |req| handle(app.clone(), req)).unwrap();
    (server, rx, gate)
}

fn next(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(PATIENCE).expect("the handler reports")
}

fn expected(body: &[u8]) -> String {
    let mut fnv = Fnv::new();
    fnv.update(body);
    format!("{:016x} {}", fnv.0, body.len())
}

#[test]
fn a_large_chunked_upload_is_read_while_it_is_sent() {
    let (server, rx, _gate) = serve(Limits::default());
    let body = data(4 << 20, 7);
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(next(&rx), Seen::Started, "the handler runs after the head");
    // The first 64 KiB, then nothing until the handler has seen bytes:
    // a server that buffered the body would never get there.
    let (first, rest) = body.split_at(64 * 1024);
    let mut wire = Vec::new();
    minihttp::ChunkedEncoder::encode_chunk(first, &mut wire);
    c.send(&wire);
    match next(&rx) {
        Seen::FirstChunk(n) => assert!(n > 0 && n <= first.len()),
        other => panic!("{other:?}"),
    }
    // The rest in chunks of varied sizes, then the trailer section.
    wire.clear();
    let mut at = 0;
    for size in [1, 10, 1000, 4096, 100_000, 65_536].iter().cycle() {
        if at == rest.len() {
            break;
        }
        let n = (*size).min(rest.len() - at);
        minihttp::ChunkedEncoder::encode_chunk(&rest[at..at + n], &mut wire);
        at += n;
    }
    wire.extend_from_slice(b"0\r\nX-Checksum: trailer\r\n\r\n");
    c.send(&wire);
    let r = c.read().unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    let (sum, chunks) = text.rsplit_once(' ').unwrap();
    assert_eq!(sum, expected(&body));
    assert!(chunks.parse::<usize>().unwrap() > 1, "{text}");
    // The connection goes on.
    c.send(get("/after").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/after");
    server.shutdown().unwrap();
}

#[test]
fn a_large_content_length_upload_is_read_while_it_is_sent() {
    let (server, rx, _gate) = serve(Limits::default());
    let body = data(3 << 20, 11);
    let mut c = Client::connect(server.local_addr());
    c.send(
        format!(
            "POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let (first, rest) = body.split_at(50_000);
    c.send(first);
    match next(&rx) {
        Seen::FirstChunk(n) => assert!(n > 0 && n <= 1000),
        other => panic!("{other:?}"),
    }
    c.send(rest);
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, expected(&body)));

    // Read from another green task than the handler's.
    let body = data(1 << 20, 3);
    c.send(
        format!(
            "POST /elsewhere HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    assert_eq!(c.read().unwrap().text(), format!("{} bytes", body.len()));
    server.shutdown().unwrap();
}

#[test]
fn a_body_read_by_another_task_fails_when_its_connection_is_reset() {
    use std::io::Write;
    let (server, rx, _gate) = serve(Limits::default());
    let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(
        b"POST /elsewhere-reported HTTP/1.1\r\nHost: t\r\n\
          Expect: 100-continue\r\nContent-Length: 100\r\n\r\n",
    )
    .unwrap();
    // The reader asks for the body: `100 Continue` comes, left unread.
    assert!(s.peek(&mut [0; 1]).unwrap() > 0);
    s.write_all(b"0123456789").unwrap();
    assert_eq!(next(&rx), Seen::FirstChunk(10));
    // Closed with unread bytes: the system resets the connection, and the
    // server's read fails in the middle of the body. The reader, in a task
    // of its own, learns it rather than wait for good.
    drop(s);
    assert_eq!(next(&rx), Seen::Cut);
    server.shutdown().unwrap();
}

#[test]
fn a_streamed_body_over_the_limit_gets_413() {
    let limits = Limits {
        max_body: 64 * 1024,
        ..Limits::default()
    };
    let (server, rx, _gate) = serve(limits);
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(next(&rx), Seen::Started);
    let mut wire = Vec::new();
    for i in 0..10 {
        minihttp::ChunkedEncoder::encode_chunk(&data(10_000, i), &mut wire);
    }
    c.send(&wire);
    // The handler reads the first bytes, then fails on the chunk that
    // crosses the limit; the client gets 413 and a close.
    assert!(matches!(next(&rx), Seen::FirstChunk(_)));
    assert_eq!(
        next(&rx),
        Seen::Failed {
            too_large: true,
            timeout: false
        }
    );
    let r = c.read().unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    // A declared length over the limit: 413 before the handler runs.
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n");
    assert_eq!(c.read().unwrap().status, 413);
    assert!(c.closed());
    assert!(rx.try_recv().is_err(), "the handler never ran");
    server.shutdown().unwrap();
}

#[test]
fn a_stalled_streamed_body_gets_408() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (server, rx, _gate) = serve(limits);
    // Without content for a `HEAD` request.
    for method in ["POST", "HEAD"] {
        let mut c = Client::connect(server.local_addr());
        let started = Instant::now();
        let head = format!("{method} /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
        c.send([head.as_bytes(), b"only some"].concat().as_slice());
        assert_eq!(next(&rx), Seen::Started);
        assert_eq!(next(&rx), Seen::FirstChunk(9));
        assert_eq!(
            next(&rx),
            Seen::Failed {
                too_large: false,
                timeout: true
            }
        );
        let r = c.read_for(method == "HEAD").unwrap();
        assert_eq!(r.status, 408);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(c.closed(), "{method}: no more than the answer");
    }
    server.shutdown().unwrap();
}

#[test]
fn a_streamed_body_trickled_below_the_minimum_rate_gets_408() {
    // As for a buffered body (see http_conn).
    let (server, rx, _gate) = serve(slow_body_limits());
    let mut c = Client::connect(server.local_addr());
    trickled_body_gets_408(
        &mut c,
        b"POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
    );
    assert_eq!(next(&rx), Seen::Started);
    assert!(matches!(next(&rx), Seen::FirstChunk(_)));
    assert_eq!(
        next(&rx),
        Seen::Failed {
            too_large: false,
            timeout: true
        }
    );
    server.shutdown().unwrap();
}

#[test]
fn the_body_clock_starts_when_the_handler_first_reads() {
    // A handler that waits 20 s (of the server's clock) before it reads,
    // with a 10 s timeout: the wait is not the client's, who waits for its
    // `100 Continue` meanwhile.
    let clock = ManualClock::without_auto_advance();
    let (server, rx, gate) = serve_on(Some(&clock), Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"PUT /gated HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(next(&rx), Seen::Started);
    c.wait_read();
    clock.advance(Duration::from_secs(20));
    // Whatever came due at 20 s has fired before the handler reads: a
    // body timeout armed from the request's arrival would have.
    assert!(clock.wait_until_idle(Duration::from_secs(60)));
    gate.set();
    assert_eq!(c.read().unwrap().status, 100);
    c.send(b"hello");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "hello".into()));
    server.shutdown().unwrap();
}

#[test]
fn a_pause_of_the_handler_between_reads_is_not_the_clients() {
    // The handler stops reading for 60 s (of the server's clock) after
    // the first bytes, with a 10 s timeout and a minimum rate of 500 B/s:
    // the client, held back by the server's not reading, is not late.
    let clock = ManualClock::without_auto_advance();
    let (server, rx, gate) = serve_on(Some(&clock), Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"PUT /paused HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n");
    // The server waits for the body (its clock for the client starts)...
    assert_eq!(next(&rx), Seen::Started);
    assert!(clock.wait_until_idle(PATIENCE));
    c.send(b"first part");
    assert_eq!(next(&rx), Seen::FirstChunk(10));
    clock.advance(Duration::from_secs(60));
    assert!(clock.wait_until_idle(PATIENCE));
    // The handler reads again, and the server waits for the rest.
    gate.set();
    assert!(clock.wait_until_idle(PATIENCE));
    c.send(b"the rest..");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "20 bytes".into()));
    server.shutdown().unwrap();
}

#[test]
fn a_stalled_body_after_an_early_answer_closes_without_a_second_answer() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (server, _rx, _gate) = serve(limits);
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nten bytes.");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (403, "ignored true".to_string()));
    // The rest of the body never comes: once the timeout passes the
    // connection closes, and the client reads no 408 for a request that
    // already had its answer (a second answer would be bytes, not end of
    // file).
    assert!(c.closed());
    server.shutdown().unwrap();
}

#[test]
fn the_rest_of_a_body_answered_early_is_discarded_for_one_header_read_timeout_at_most() {
    // No minimum rate: a client that sends a byte now and then would
    // otherwise keep the discarding (and the connection) going for as
    // long as its body lasts.
    let limits = Limits {
        min_body_rate: 0,
        ..Limits::default()
    };
    let clock = ManualClock::without_auto_advance();
    let (server, _rx, _gate) = serve_on(Some(&clock), limits);
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nten bytes.");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (403, "ignored true".to_string()));
    // 100 bytes every 4 s: each well within the 10 s pause allowed.
    for _ in 0..3 {
        c.send(&[b'x'; 100]);
        c.wait_read();
        assert!(clock.wait_until_idle(PATIENCE), "the hub took the bytes");
        clock.advance(Duration::from_secs(4));
    }
    // 12 s after the answer, past the 10 s the rest is discarded for: the
    // connection is closed (without another answer).
    assert!(c.closed());
    // Its lingering close ends with the client's (the clock does not
    // move on by itself).
    drop(c);
    server.shutdown().unwrap();
}

#[test]
fn an_unread_body_does_not_disturb_the_next_pipelined_request() {
    let (server, _rx, _gate) = serve(Limits::default());
    let big = data(200_000, 5);
    let mut chunked = Vec::new();
    for piece in big.chunks(30_000) {
        minihttp::ChunkedEncoder::encode_chunk(piece, &mut chunked);
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let cases: [(&str, String, &[u8]); 4] = [
        ("/ignore", format!("Content-Length: {}", big.len()), &big),
        ("/ignore", "Transfer-Encoding: chunked".into(), &chunked),
        ("/one", format!("Content-Length: {}", big.len()), &big),
        ("/one", "Transfer-Encoding: chunked".into(), &chunked),
    ];
    for (path, framing, body) in cases {
        let mut c = Client::connect(server.local_addr());
        // A request whose body may look like requests, and one behind it,
        // in one write.
        let wire = [
            format!("POST {path} HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").as_bytes(),
            body,
            get("/second").as_bytes(),
        ]
        .concat();
        c.send(&wire);
        let first = c.read().unwrap();
        if path == "/ignore" {
            assert_eq!((first.status, first.text()), (403, "ignored true".into()));
        } else {
            assert_eq!((first.status, first.text()), (200, "read one chunk".into()));
        }
        assert_eq!(first.header("connection"), None, "{path} {framing}");
        let second = c.read().unwrap();
        assert_eq!((second.status, second.text()), (200, "/second".into()));
        // A body that looks like a request head is still a body.
        let smuggle = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
        let wire = [
            format!(
                "POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                smuggle.len()
            )
            .as_bytes(),
            smuggle,
            get("/third").as_bytes(),
        ]
        .concat();
        c.send(&wire);
        assert_eq!(c.read().unwrap().status, 403);
        assert_eq!(c.read().unwrap().text(), "/third");
    }
    // Unread on a connection that closes after the answer: the server
    // closes lingering, so the client still gets its answer in full.
    for version in ["HTTP/1.1\r\nConnection: close", "HTTP/1.0"] {
        let mut c = Client::connect(server.local_addr());
        let wire = [
            format!(
                "POST /ignore {version}\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                big.len()
            )
            .as_bytes(),
            &big,
        ]
        .concat();
        c.send(&wire);
        let r = c.read().unwrap();
        assert_eq!((r.status, r.text()), (403, "ignored true".into()));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed());
    }
    server.shutdown().unwrap();
}

#[test]
fn answers_made_before_a_streamed_body_go_out_while_its_handler_waits() {
    let (server, rx, gate) = serve(Limits::default());
    // Pipelined in one write: a request answered at once, then one whose
    // handler waits at the gate before it reads its body. The test opens
    // the gate only once the first answer has come.
    let mut c = Client::connect(server.local_addr());
    let wire = [
        get("/first").as_bytes(),
        b"POST /gated HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
    ]
    .concat();
    c.send(&wire);
    assert_eq!(next(&rx), Seen::Started);
    let first = c
        .read()
        .expect("the first answer, sent while the handler waits");
    assert_eq!(first.text(), "/first");
    gate.set();
    c.send(b"hello");
    assert_eq!(c.read().unwrap().text(), "hello");

    // The same when the handler waits for body bytes the client sends only
    // after the first answer.
    let mut c = Client::connect(server.local_addr());
    let wire = [
        get("/first").as_bytes(),
        b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
    ]
    .concat();
    c.send(&wire);
    let first = c
        .read()
        .expect("the first answer, sent while the body waits");
    assert_eq!(first.text(), "/first");
    c.send(b"hello");
    assert_eq!(c.read().unwrap().text(), expected(b"hello"));
    server.shutdown().unwrap();
}

#[test]
fn continue_is_sent_only_when_the_body_is_read() {
    let (server, rx, gate) = serve(Limits::default());
    // Not read: the final answer comes first, no 100, and the connection
    // closes (the client may never send the body).
    let mut c = Client::connect(server.local_addr());
    c.send(b"PUT /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    // Read once the test opens the gate: 100, then the answer.
    let mut c = Client::connect(server.local_addr());
    c.send(b"PUT /gated HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(next(&rx), Seen::Started);
    gate.set();
    assert_eq!(c.read().unwrap().status, 100);
    c.send(b"hello");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "hello".into()));
    // Keep-alive goes on after a body that was asked for and read.
    c.send(get("/after").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/after");
    server.shutdown().unwrap();
}

#[test]
fn requests_without_a_body_and_buffered_servers_are_unchanged() {
    let (server, _rx, _gate) = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    let batch: String = (0..16).map(|i| get(&format!("/p{i}"))).collect();
    c.send(batch.as_bytes());
    for i in 0..16 {
        assert_eq!(c.read().unwrap().text(), format!("/p{i}"));
    }
    server.shutdown().unwrap();

    // Without `stream_bodies`, `body_stream` yields the buffered body.
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(|mut req: Request| async move {
            let buffered = req.body().len();
            let streamed = req.is_body_streamed();
            let all = req.body_stream().read_all().await.unwrap();
            Response::text(format!("{buffered} {streamed} {}", all.len()))
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(c.read().unwrap().text(), "3 false 3");
    server.shutdown().unwrap();
}

#[test]
fn a_streamed_body_that_fails_is_logged_with_its_request() {
    let (tx, rx) = channel();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .stream_bodies(true)
        .access_log(move |entry| {
            let _ = tx.send((
                entry.method.to_owned(),
                entry.target.to_owned(),
                entry.status.as_u16(),
            ));
        })
        .spawn(|mut req: Request| async move {
            let mut body = Vec::new();
            let read = req.body_stream().read_to_end(&mut body).await;
            Response::text(format!("{read:?}"))
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZ\r\n\r\n");
    assert_eq!(c.read().unwrap().status, 400);
    let line = rx.recv_timeout(PATIENCE).expect("a log line");
    assert_eq!(line, ("POST".to_owned(), "/upload".to_owned(), 400));
    server.shutdown().unwrap();
}
