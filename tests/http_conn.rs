//! Connection behaviour end to end over raw sockets: keep-alive,
//! pipelining, request bodies, `100-continue`, streamed responses,
//! timeouts, hardening, and a handler that panics.

#[path = "http_util.rs"]
mod util;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use greenrt::time::ManualClock;
use minihttp::{Body, Limits, Request, Response, Server, ServerHandle, StatusCode};
use sync_prims::Event;
use util::{Client, get, slow_body_limits, trickle, trickled_body_gets_408};

/// A panic payload whose own drop panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a panic payload's drop");
    }
}

async fn app(req: Request) -> Response {
    match req.path().as_ref() {
        "/echo" => Response::text(format!(
            "{} {}",
            req.body().len(),
            String::from_utf8_lossy(req.body())
        )),
        "/panic" => panic!("handler failure on purpose"),
        "/bomb" => std::panic::panic_any(Bomb),
        "/stream-bomb" => {
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                let fail = true;
                if fail {
                    std::panic::panic_any(Bomb);
                }
                co.yield_(b"never".to_vec()).await;
            });
            let mut r = Response::text("");
            r.set_body(Body::stream(chunks));
            r
        }
        "/rc" => {
            // Handler futures run on their connection's hub and never move:
            // they may hold non-Send values across awaits.
            let shared = std::rc::Rc::new(req.path().into_owned());
            greenrt::yield_now().await;
            Response::text(format!("{shared} {}", std::rc::Rc::strong_count(&shared)))
        }
        "/stream" => {
            let words = Body::generate(|co| async move {
                for w in ["green ", "threads ", "stream"] {
                    greenrt::yield_now().await;
                    co.yield_(w.as_bytes().to_vec()).await;
                }
            });
            let mut r = Response::text("");
            r.set_body(words);
            r
        }
        "/stream-panics" => {
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                co.yield_(b"first".to_vec()).await;
                // Pending once: the server sends what it has (the head and
                // the first chunk) before the failure.
                greenrt::yield_now().await;
                panic!("body stream failure on purpose");
            });
            let mut r = Response::text("");
            r.set_body(Body::stream(chunks));
            r
        }
        "/stream-errs" => {
            // The same, failing with an error value instead.
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                co.yield_(Ok(b"first".to_vec())).await;
                greenrt::yield_now().await;
                co.yield_(Err(std::io::Error::other("the source went away")))
                    .await;
                co.yield_(Ok(b"never".to_vec())).await;
            });
            let mut r = Response::text("");
            r.set_body(Body::try_stream(chunks));
            r
        }
        "/stream-misused" => {
            // The same, failing with a misuse of `coro`: a delegation to
            // a generator already started.
            let mut r = Response::text("");
            r.set_body(Body::generate(|co| async move {
                co.yield_(b"first".to_vec()).await;
                greenrt::yield_now().await;
                let mut started = coro::SendAsyncGen::new_send(|co| async move {
                    co.yield_(b"inner".to_vec()).await;
                });
                let _ = started.start().await;
                co.yield_from(started).await;
                co.yield_(b"never".to_vec()).await;
            }));
            r
        }
        "/stream-too-deep" => {
            // The same, delegating too deep, from a generator made a body
            // with `Body::from`.
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                co.yield_(b"first".to_vec()).await;
                greenrt::yield_now().await;
                co.yield_from(nested(coro::MAX_DELEGATION_DEPTH + 1)).await;
                co.yield_(b"never".to_vec()).await;
            });
            let mut r = Response::text("");
            r.set_body(Body::from(chunks));
            r
        }
        "/gate-cut/errs" => {
            // Sends part of its body, says so, waits for the test, then
            // fails with an error.
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                co.yield_(Ok(b"12345".to_vec())).await;
                // Pending once: the server sends what it has.
                greenrt::yield_now().await;
                gate("/gate-cut-entered").set();
                gate("/gate-cut").wait_async().await;
                co.yield_(Err(std::io::Error::other("the source went away")))
                    .await;
            });
            let mut r = Response::text("");
            r.set_body(Body::try_stream(chunks));
            r
        }
        "/gate-cut/short" => {
            // The same, ending at half the length it promised.
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                co.yield_(b"12345".to_vec()).await;
                greenrt::yield_now().await;
                gate("/gate-cut-entered").set();
                gate("/gate-cut").wait_async().await;
            });
            let mut r = Response::text("");
            r.set_body(Body::stream_with_len(chunks, 10));
            r
        }
        "/errs-at-once" => {
            let chunks = futures_util::stream::iter([Err(std::io::Error::other("no source"))]);
            let mut r = Response::text("");
            r.set_body(Body::try_stream(chunks));
            r
        }
        "/fails-at-once" => {
            let chunks = coro::SendAsyncGen::new_send(|co| async move {
                // Fails before its first chunk: nothing of the answer is
                // sent yet.
                let fail = true;
                if fail {
                    panic!("body stream failure on purpose");
                }
                co.yield_(b"never".to_vec()).await;
            });
            let mut r = Response::text("");
            r.set_body(Body::stream(chunks));
            r
        }
        "/short-file" => {
            // Promises 10 bytes of a file that has 5.
            let path = std::env::temp_dir().join(format!("http-conn-short-{}", std::process::id()));
            std::fs::write(&path, b"12345").unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            let mut r = Response::text("");
            r.set_body(Body::File(minihttp::FileBody::new(file, 0, 10)));
            r
        }
        "/promised" => {
            // All 5 promised bytes, then a stream that never ends (a
            // channel whose sender lives on).
            use futures_util::stream::{self, StreamExt};
            let chunks = stream::iter([b"12345".to_vec()]).chain(stream::pending());
            let mut r = Response::text("");
            r.set_body(Body::stream_with_len(chunks, 5));
            r
        }
        "/interim" => Response::new(StatusCode::CONTINUE),
        "/big" => Response::text("b".repeat(100_000)),
        "/gate-close" => {
            // Says it runs, waits for the test, then closes after a large
            // answer, where the client kept the connection alive.
            gate("/gate-close-entered").set();
            gate("/gate-close").wait_async().await;
            Response::builder()
                .header("connection", "close")
                .body(vec![b'c'; 64 << 10])
                .unwrap()
        }
        "/gate-asked-close" => {
            // Says it runs, waits for the test, then sends a large answer
            // (to a client that asked for the close).
            gate("/gate-asked-close-entered").set();
            gate("/gate-asked-close").wait_async().await;
            Response::text(vec![b'a'; 64 << 10])
        }
        path @ ("/gate" | "/gate-small" | "/gate-logged" | "/gate-idle") => {
            // Waits until the test opens the gate of that path.
            gate(path).wait_async().await;
            Response::text("through")
        }
        "/reset" => Response::builder()
            .status(StatusCode::RESET_CONTENT)
            .header("date", "Thu, 01 Jan 1970 00:00:00 GMT")
            .header("content-length", "27")
            .body("content a 205 must not have")
            .unwrap(),
        other => Response::text(other.to_string()),
    }
}

/// A generator `depth` delegations deep, yielding once at the bottom.
fn nested(depth: u32) -> coro::SendAsyncGen<Vec<u8>> {
    coro::SendAsyncGen::new_send(move |co| async move {
        if depth == 0 {
            co.yield_(b"bottom".to_vec()).await;
        } else {
            co.yield_from(nested(depth - 1)).await;
        }
    })
}

fn serve(limits: Limits) -> ServerHandle {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .limits(limits)
        .spawn(app)
        .unwrap()
}

#[test]
fn keep_alive_and_http10() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    for i in 0..5 {
        c.send(get(&format!("/n{i}")).as_bytes());
        let r = c.read().unwrap();
        assert_eq!((r.status, r.text()), (200, format!("/n{i}")));
        assert!(r.header("server").is_some());
        assert!(minihttp::parse_http_date(r.header("date").unwrap()).is_some());
    }
    c.send(get("/rc").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/rc 1");
    c.send(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    // HTTP/1.0 closes unless it asks for keep-alive.
    let mut c = Client::connect(server.local_addr());
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read().unwrap().header("connection"), Some("keep-alive"));
    c.send(b"GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(c.read().unwrap().text(), "/b");
    assert!(c.closed());
    server.shutdown().unwrap();
}

#[test]
fn sixteen_pipelined_requests_in_one_write() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    let batch: String = (0..16).map(|i| get(&format!("/p{i}"))).collect();
    c.send(batch.as_bytes());
    for i in 0..16 {
        let r = c.read().unwrap();
        assert_eq!(
            (r.status, r.text()),
            (200, format!("/p{i}")),
            "response {i}"
        );
    }
    // The connection is still usable.
    c.send(get("/after").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/after");
    server.shutdown().unwrap();
}

#[test]
fn chunked_upload_then_another_request() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: dropped\r\n\r\n",
    );
    assert_eq!(c.read().unwrap().text(), "12 hello, world");
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(c.read().unwrap().text(), "3 abc");
    c.send(get("/next").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/next");
    server.shutdown().unwrap();
}

#[test]
fn expect_100_continue() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    // The interim answer comes before the body is sent.
    let interim = c.read().unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"data");
    assert_eq!(c.read().unwrap().text(), "4 data");
    server.shutdown().unwrap();
}

#[test]
fn streamed_body_is_chunked_for_11_and_until_close_for_10() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(get("/stream").as_bytes());
    let r = c.read().unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "green threads stream");
    c.send(get("/after").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/after");

    let mut c = Client::connect(server.local_addr());
    c.send(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.text(), "green threads stream");
    server.shutdown().unwrap();
}

#[test]
fn a_panicking_handler_answers_500_and_the_connection_goes_on() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(get("/panic").as_bytes());
    assert_eq!(c.read().unwrap().status, 500);
    c.send(get("/fine").as_bytes());
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "/fine".to_string()));
    // Other connections are unaffected too.
    let mut other = Client::connect(server.local_addr());
    other.send(get("/other").as_bytes());
    assert_eq!(other.read().unwrap().text(), "/other");
    server.shutdown().unwrap();
}

#[test]
fn a_body_stream_that_panics_or_fails_never_passes_for_a_whole_response() {
    let server = serve(Limits::default());
    for path in [
        "/stream-panics",
        "/stream-errs",
        "/stream-misused",
        "/stream-too-deep",
    ] {
        // Chunked (HTTP/1.1): the body ends without its last chunk, at an
        // orderly close, and the answer pipelined before it arrives whole.
        let mut c = Client::connect(server.local_addr());
        c.send(format!("{}{}", get("/fine"), get(path)).as_bytes());
        assert_eq!(c.read().unwrap().text(), "/fine");
        let err = c.read().expect_err("no whole response");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof,
            "{path}: {err:?}"
        );
        // Until close (HTTP/1.0): an orderly close would pass for the end
        // of the body, so the connection is reset.
        let mut c = Client::connect(server.local_addr());
        c.send(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes());
        let err = c.read().expect_err("no whole response");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset,
            "{path}: {err:?}"
        );
    }
    // The server goes on.
    let mut other = Client::connect(server.local_addr());
    other.send(get("/after").as_bytes());
    assert_eq!(other.read().unwrap().text(), "/after");
    server.shutdown().unwrap();
}

#[test]
fn a_body_cut_short_keeps_the_answer_before_it_though_a_request_follows_unread() {
    // A large answer still in the socket buffers (the client reads
    // slowly), then a body that fails after part of it went out, while
    // the client pipelines one more request, which the server never
    // reads. Closed with that request unread, the connection was reset,
    // and the reset destroyed the large answer on its way. It closes
    // lingering now (a short chunked or counted body tells by itself).
    let server = serve(Limits::default());
    for path in ["/gate-cut/errs", "/gate-cut/short"] {
        let (entered, open) = (gate("/gate-cut-entered"), gate("/gate-cut"));
        entered.clear();
        open.clear();
        let mut c = Client::connect(server.local_addr());
        c.shrink_receive_buffer();
        c.send(format!("{}{}", get("/big"), get(path)).as_bytes());
        assert!(entered.wait_timeout(Duration::from_secs(60)), "{path}");
        c.send(get("/after").as_bytes());
        open.set();
        let r = c.read().unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!((r.status, r.body.len()), (200, 100_000), "{path}");
        let err = c.read().expect_err("no whole answer");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof,
            "{path}: {err:?}"
        );
    }
    server.shutdown().unwrap();
}

#[test]
fn a_body_that_fails_before_it_is_sent_is_answered_500_after_the_answers_before_it() {
    let server = serve(Limits::default());
    for path in ["/fails-at-once", "/errs-at-once", "/short-file"] {
        let mut c = Client::connect(server.local_addr());
        // Pipelined: the first answer waits in the same batch as the
        // failing one, and must not be lost with it.
        c.send(format!("{}{}{}", get("/fine"), get(path), get("/never")).as_bytes());
        let r = c.read().unwrap();
        assert_eq!((r.status, r.text()), (200, "/fine".to_string()), "{path}");
        let r = c.read().unwrap();
        assert_eq!(r.status, 500, "{path}");
        assert_eq!(r.header("connection"), Some("close"), "{path}");
        // The connection ends there: the request after it is not answered.
        let end = c.read().expect_err("closed after the 500");
        assert_eq!(end.kind(), std::io::ErrorKind::UnexpectedEof, "{path}");
    }
    server.shutdown().unwrap();
}

#[test]
fn statuses_that_cannot_be_sent_as_given_are_mended() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    // A 1xx is not a final answer: 500, and the connection goes on.
    c.send(get("/interim").as_bytes());
    assert_eq!(c.read().unwrap().status, 500);
    // A 205 goes out with no content, framed, and with one `Date` (the
    // server's, not the handler's).
    c.send(get("/reset").as_bytes());
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (205, String::new()));
    assert_eq!(r.header("content-length"), Some("0"));
    let dates: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("date"))
        .collect();
    assert_eq!(dates.len(), 1, "{:?}", r.headers);
    assert!(!dates[0].1.contains("1970"));
    // Its answer to HEAD has the same fields: the handler's length of the
    // content it may not have is not one of them.
    c.send(b"HEAD /reset HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_for(true).unwrap();
    assert_eq!(r.status, 205);
    let lengths: Vec<_> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(lengths, ["0"], "{:?}", r.headers);
    c.send(get("/after").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/after");
    server.shutdown().unwrap();
}

/// The gate of `/gate`, `/gate-small` or `/gate-logged`: one per path, so
/// that the tests using them may run at once.
fn gate(path: &str) -> Arc<Event> {
    static GATES: [OnceLock<Arc<Event>>; 10] = [const { OnceLock::new() }; 10];
    let i = match path {
        "/gate" => 0,
        "/gate-small" => 1,
        "/gate-logged" => 2,
        "/gate-close" => 3,
        "/gate-close-entered" => 4,
        "/gate-idle" => 5,
        "/gate-cut" => 6,
        "/gate-cut-entered" => 7,
        "/gate-asked-close" => 8,
        "/gate-asked-close-entered" => 9,
        _ => unreachable!("no gate for {path}"),
    };
    GATES[i].get_or_init(|| Arc::new(Event::new())).clone()
}

/// Sends a GET of `first`, then one of `gated` (whose handler waits at its
/// gate), in one write; reads the first answer while the gate is still
/// shut, then opens it and checks the second. Returns the first answer.
fn first_while_gated(server: ServerHandle, first: &str, gated: &str) -> util::Resp {
    let gate = gate(gated);
    let mut c = Client::connect(server.local_addr());
    c.send([get(first), get(gated)].concat().as_bytes());
    // The first answer arrives while the second waits: answers are not
    // held back until the whole batch is done.
    let r = c.read().unwrap();
    gate.set();
    assert_eq!(c.read().unwrap().text(), "through");
    server.shutdown().unwrap();
    r
}

#[test]
fn a_large_answer_goes_out_while_a_later_pipelined_request_waits() {
    let r = first_while_gated(serve(Limits::default()), "/big", "/gate");
    assert_eq!((r.status, r.text().len()), (200, 100_000));
}

#[test]
fn with_an_access_log_too_a_ready_answer_is_not_held_back() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .access_log(|_| {})
        .spawn(app)
        .unwrap();
    assert_eq!(
        first_while_gated(server, "/echo", "/gate-logged").status,
        200
    );
}

#[test]
fn an_answer_that_closes_is_not_lost_to_a_reset_when_more_requests_came() {
    // The next request arrives while the handler runs, after the server's
    // last read: closing with it unread would reset the connection and
    // destroy the end of the answer still in the kernel's buffers.
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.shrink_receive_buffer();
    c.send(get("/gate-close").as_bytes());
    assert!(
        gate("/gate-close-entered").wait_timeout(tests::BOUND),
        "the handler never ran"
    );
    c.send(get("/echo").as_bytes());
    gate("/gate-close").set();
    let r = c.read().expect("the whole answer, not a reset");
    assert_eq!((r.status, r.body.len()), (200, 64 << 10));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed(), "then a clean close");
    drop(c);
    server.shutdown().unwrap();
}

#[test]
fn an_answer_to_a_client_that_asked_to_close_is_not_lost_to_bytes_it_sent_after() {
    // The client asked for the close, and sent more all the same while
    // the handler ran (a CRLF after its request, as some clients do):
    // closing with those bytes unread would reset the connection.
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.shrink_receive_buffer();
    c.send(b"GET /gate-asked-close HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    assert!(
        gate("/gate-asked-close-entered").wait_timeout(tests::BOUND),
        "the handler never ran"
    );
    c.send(b"\r\n");
    gate("/gate-asked-close").set();
    let r = c.read().expect("the whole answer, not a reset");
    assert_eq!((r.status, r.body.len()), (200, 64 << 10));
    assert!(c.closed(), "then a close");
    drop(c);
    server.shutdown().unwrap();
}

#[test]
fn a_stream_that_sent_its_promised_length_is_not_waited_for() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(get("/promised").as_bytes());
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "12345"));
    // The answer is whole: the connection serves the next request.
    c.send(get("/echo").as_bytes());
    assert_eq!(c.read().unwrap().status, 200);
    drop(c);
    server.shutdown().unwrap();
}

#[test]
fn a_small_answer_goes_out_before_a_later_pipelined_request_waits() {
    let r = first_while_gated(serve(Limits::default()), "/echo", "/gate-small");
    assert_eq!(r.status, 200);
}

/// A server whose timeouts count the time of `clock`, which the test
/// moves.
fn serve_on(clock: &ManualClock, limits: Limits) -> ServerHandle {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .limits(limits)
        .clock(clock.clone())
        .spawn(app)
        .unwrap()
}

/// Waits until the server has read what `c` sent and done all it had to
/// at the current time of `clock`, which the test may then move.
fn settle(c: &Client, clock: &ManualClock) {
    c.wait_read();
    assert!(
        clock.wait_until_idle(util::READ_TIMEOUT),
        "the server never settled"
    );
}

/// A server on a manual clock that only the test moves, and a client
/// whose first request (`/first`) it has answered at 0 ms.
fn first_answered_on_a_manual_clock(limits: Limits) -> (ManualClock, ServerHandle, Client) {
    let clock = ManualClock::without_auto_advance();
    let server = serve_on(&clock, limits);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/first").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/first");
    (clock, server, c)
}

#[test]
fn timeouts_of_duration_max_mean_none() {
    let (clock, server, mut c) = first_answered_on_a_manual_clock(Limits {
        idle_timeout: Duration::MAX,
        header_read_timeout: Duration::MAX,
        write_timeout: Duration::MAX,
        ..Limits::default()
    });
    // A head in two parts, an hour of the server's clock between them: the
    // server reads the first part alone, and arms the header-read deadline
    // of a head begun.
    c.send(b"GET /second HTTP/1.1\r\n");
    settle(&c, &clock);
    clock.advance(Duration::from_secs(3600));
    c.send(b"Host: x\r\n\r\n");
    assert_eq!(c.read().unwrap().text(), "/second");
    server.shutdown().unwrap();
}

#[test]
fn empty_lines_do_not_keep_an_idle_connection_open() {
    let (clock, server, mut c) = first_answered_on_a_manual_clock(Limits {
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    // An empty line every 100 ms of the server's clock starts no request:
    // the idle time runs from the server's first wait after the answer (at
    // 0 ms) and the connection closes at 300. Had each line renewed the
    // idle time, the last (at 200 ms) would keep it open until 500, and
    // the clock stops at 300: the read below would find it open.
    for _ in 0..3 {
        c.send(b"\r\n");
        settle(&c, &clock);
        clock.advance(Duration::from_millis(100));
    }
    assert!(c.closed(), "still open after 300 ms of empty lines");
    server.shutdown().unwrap();
}

#[test]
fn a_connection_that_never_sends_closes_after_the_header_timeout() {
    // The idle timeout is for the wait between requests: a connection that
    // sends nothing at all would otherwise hold one of the server's
    // connection slots for that long.
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(3600),
        ..Limits::default()
    };
    let server = serve(limits);
    let mut c = Client::connect(server.local_addr());
    // The read waits for the close (the client's read timeout bounds it).
    assert!(c.closed(), "still open past the header timeout");
    server.shutdown().unwrap();
}

#[test]
fn a_panicking_access_log_loses_its_line_not_the_connection() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .access_log(|entry| panic!("log failure on purpose: {entry}"))
        .spawn(app)
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    for path in ["/one", "/two"] {
        c.send(get(path).as_bytes());
        assert_eq!(c.read().unwrap().text(), path);
    }
    // An error answer is logged too, and survives it as well.
    c.send(b"GARBAGE\r\n\r\n");
    assert_eq!(c.read().unwrap().status, 400);
    server.shutdown().unwrap();
}

#[test]
fn a_download_cut_short_logs_the_bytes_that_went_out() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 16 * 1024; // 1 GiB: more than any socket buffers.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .access_log(move |entry| {
            let _ = tx.send((entry.target.to_owned(), entry.status.as_u16(), entry.bytes));
        })
        .spawn(|_req: Request| async {
            let mut r = Response::text("");
            r.set_body(Body::generate(|co| async move {
                for _ in 0..CHUNKS {
                    co.yield_(vec![b'x'; CHUNK]).await;
                }
            }));
            r
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.send(get("/big").as_bytes());
    let read = c.read_raw(1 << 20);
    // Closed with bytes unread: the system resets the connection, and the
    // server's next write fails.
    drop(c);
    let (target, status, bytes) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((target.as_str(), status), ("/big", 200));
    // What the client read went out, less the head, the chunks' framing,
    // and the part of the write that failed (one chunk at most, which the
    // log does not count); the whole body did not.
    let framing = 1024 + (read / CHUNK + 1) * 16;
    assert!(
        bytes as usize + framing + CHUNK >= read,
        "{bytes} logged, {read} read"
    );
    assert!(bytes < (CHUNK * CHUNKS) as u64, "{bytes} logged");
    server.shutdown().unwrap();
}

#[test]
fn a_request_refused_is_logged_with_its_request_line_and_the_bytes_of_its_answer() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .limits(Limits {
            max_body: 1000,
            header_read_timeout: Duration::from_millis(200),
            ..Limits::default()
        })
        .access_log(move |entry| {
            let line = format!("{} {} {}", entry.method, entry.target, entry.version);
            let _ = tx.send((line, entry.status.as_u16(), entry.bytes));
        })
        .spawn(|_req: Request| async { Response::text("unused") })
        .unwrap();
    for (wire, line, status) in [
        // A bad field: the request line is known.
        (
            &b"GET /a HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n"[..],
            "GET /a HTTP/1.1",
            400,
        ),
        // A body too large, refused from its head.
        (
            b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
            "POST /b HTTP/1.1",
            413,
        ),
        // A body that never comes whole, refused after the head was read.
        (
            b"PUT /c HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
            "PUT /c HTTP/1.1",
            408,
        ),
        // A request line that is not one: nothing of it is told.
        (b"GET /d HTTP/1.1 extra\r\nHost: t\r\n\r\n", "- - -", 400),
        (b"G\"T /e HTTP/1.1\r\nHost: t\r\n\r\n", "- - -", 400),
        (b"GET /f HTTP/1.1\"\r\nHost: t\r\n\r\n", "- - -", 400),
        (b"GET /g HTTP/9.9\r\nHost: t\r\n\r\n", "- - -", 505),
    ] {
        let mut c = Client::connect(server.local_addr());
        c.send(wire);
        let r = c.read().unwrap();
        assert_eq!(r.status, status, "{line}");
        let (logged, s, bytes) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!((logged.as_str(), s), (line, status));
        assert_eq!(bytes, r.body.len() as u64, "the answer's body");
        assert!(bytes > 0);
    }
    // A line over the limit (414) is not logged either.
    let mut c = Client::connect(server.local_addr());
    c.send(format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(20_000)).as_bytes());
    assert_eq!(c.read().unwrap().status, 414);
    let (logged, s, _) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((logged.as_str(), s), ("- - -", 414));
    // The answer to a `HEAD` request has no content: no bytes are logged
    // (the length of the text it would have had once was).
    for (wire, status) in [
        (
            &b"HEAD /h HTTP/1.1\r\nHost: t\r\nbad header\r\n\r\n"[..],
            400,
        ),
        (b"HEAD /i HTTP/1.1\r\nHost: t\r\n", 408),
    ] {
        let mut c = Client::connect(server.local_addr());
        c.send(wire);
        assert_eq!(c.read_for(true).unwrap().status, status);
        assert!(c.closed(), "no content after the head");
        let (_, s, bytes) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!((s, bytes), (status, 0));
    }
    server.shutdown().unwrap();
}

#[test]
fn slow_heads_get_408_and_idle_connections_close() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let server = serve(limits);
    // Half a head, then nothing: 408 and close, not a pinned connection.
    let mut c = Client::connect(server.local_addr());
    let start = std::time::Instant::now();
    c.send(b"GET /slow HTTP/1.1\r\nHost:");
    let r = c.read().unwrap();
    assert_eq!(r.status, 408);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(c.closed());

    // The 408 of a HEAD request has no content (RFC 9110, section 9.3.2).
    let mut c = Client::connect(server.local_addr());
    c.send(b"HEAD /slow HTTP/1.1\r\nHost:");
    assert_eq!(c.read_for(true).unwrap().status, 408);
    assert!(c.closed(), "no content after the head");

    // A body that stalls gets 408 too.
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(c.read().unwrap().status, 408);
    assert!(c.closed());
    // Without content for a `HEAD` request.
    let mut c = Client::connect(server.local_addr());
    c.send(b"HEAD /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(c.read_for(true).unwrap().status, 408);
    assert!(c.closed(), "no content after the head");

    // An idle keep-alive connection is closed without a response.
    let mut c = Client::connect(server.local_addr());
    c.send(get("/once").as_bytes());
    assert_eq!(c.read().unwrap().text(), "/once");
    assert!(c.closed());
    server.shutdown().unwrap();
}

#[test]
fn a_stalled_head_that_breaks_a_rule_gets_that_rules_answer_not_408() {
    // A head is parsed again only when it may be complete: a later piece
    // that breaks a rule, after which nothing comes, was once answered 408
    // at the timeout. It gets the answer it gets when it arrives whole.
    let server = serve(Limits {
        header_read_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    for (head, first, then, status) in [
        // A space before a field's colon.
        (false, &b"GET /a HTTP/1.1\r\nHo"[..], &b"st : a"[..], 400),
        // A control byte in a field's value.
        (false, b"GET /b HTTP/1.1\r\nHost: a\r\nX-A: ", b"b\x01", 400),
        // A space in the target, before the line ends.
        (false, b"GET /c", b" d HTTP/1.1", 400),
        // Another major version.
        (false, b"GET /e ", b"HTTP/2.0\r\nHost: a\r\n", 505),
        // Without content for a `HEAD` request.
        (true, b"HEAD /f HTTP/1.1\r\nHo", b"st : a", 400),
    ] {
        let whole = [first, then].concat();
        let what = String::from_utf8_lossy(&whole);
        let mut c = Client::connect(server.local_addr());
        // The first piece comes behind a whole request: once that is
        // answered, the server has read the piece and parsed it, so the
        // second arrives as a later piece (the two sent at once are one).
        c.send(&[get("/before").as_bytes(), first].concat());
        assert_eq!(c.read().unwrap().text(), "/before");
        c.send(then);
        let r = c.read_for(head).unwrap();
        assert_eq!(r.status, status, "{what}");
        assert!(c.closed(), "{what}");
    }
    server.shutdown().unwrap();
}

#[test]
fn an_idle_timer_that_fires_early_is_moved() {
    // The idle timer, armed after the first answer for 100 ms, is kept
    // through a second request answered at 50 ms, fires early at 100 and
    // is moved to 150, when the connection closes. A timer lost when it
    // fired early would leave the connection open however far the clock
    // goes: the read below would find it open.
    let (clock, server, mut c) = first_answered_on_a_manual_clock(Limits {
        idle_timeout: Duration::from_millis(100),
        ..Limits::default()
    });
    c.send(get("/gate-idle").as_bytes());
    settle(&c, &clock);
    clock.advance(Duration::from_millis(50));
    gate("/gate-idle").set();
    assert_eq!(c.read().unwrap().text(), "through");
    settle(&c, &clock);
    clock.advance(Duration::from_millis(50));
    settle(&c, &clock);
    clock.advance(Duration::from_secs(1));
    assert!(c.closed(), "still open a second after the last answer");
    server.shutdown().unwrap();
}

#[test]
fn a_pipelined_head_s_time_counts_from_its_own_bytes() {
    // On the server's clock: the first request's head starts at 0 ms and
    // ends at 600; its body ends at 1200 in the read that also brings the
    // start of the second head. Counted from the first head's first byte, the second head
    // would be 1200 ms late against a 1000 ms limit; counted from its own,
    // it is not late at all.
    let clock = ManualClock::without_auto_advance();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let server = serve_on(&clock, limits);
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\n");
    settle(&c, &clock);
    clock.advance(Duration::from_millis(600));
    c.send(b"Content-Length: 5\r\n\r\nab");
    settle(&c, &clock);
    clock.advance(Duration::from_millis(600));
    c.send(b"cdeGET /second HTTP/1.1\r\n");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "5 abcde".to_string()));
    c.send(b"Host: t\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "/second".to_string()));
    server.shutdown().unwrap();
}

#[test]
fn hostile_requests_get_their_status_and_a_close() {
    let limits = Limits {
        max_body: 16,
        ..Limits::default()
    };
    let server = serve(limits);
    let cases: &[(&[u8], u16)] = &[
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GARBAGE\r\n\r\n", 400),
    ];
    for (raw, status) in cases {
        let mut c = Client::connect(server.local_addr());
        c.send(raw);
        let r = c.read().unwrap();
        assert_eq!(r.status, *status, "{}", String::from_utf8_lossy(raw));
        assert!(c.closed(), "{}", String::from_utf8_lossy(raw));
    }
    // An error answer survives bytes the client keeps sending after it
    // (the server drains them instead of resetting the connection).
    let mut c = Client::connect(server.local_addr());
    let mut raw = b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'z', 100_000));
    c.send(&raw);
    assert_eq!(c.read().unwrap().status, 400);
    assert!(c.closed());

    let mut c = Client::connect(server.local_addr());
    c.send(format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000)).as_bytes());
    assert_eq!(c.read().unwrap().status, StatusCode::URI_TOO_LONG.as_u16());
    server.shutdown().unwrap();
}

#[test]
fn a_body_trickled_below_the_minimum_rate_gets_408() {
    let limits = slow_body_limits();
    let server = serve(limits.clone());
    let mut c = Client::connect(server.local_addr());
    trickled_body_gets_408(
        &mut c,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
    );
    server.shutdown().unwrap();

    // With the check off, the same trickle is served to the end.
    let server = serve(Limits {
        min_body_rate: 0,
        ..limits
    });
    let mut c = Client::connect(server.local_addr());
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 60\r\n\r\n");
    let r = trickle(&mut c, Duration::from_millis(30), 400).expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("60 {}", "x".repeat(60)));
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_closes_mid_request_gets_400_at_once() {
    // Timeouts far away: only the end of file can end these exchanges
    // quickly, and a server that missed it would answer 408 much later.
    let server = serve(Limits {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    for raw in [
        &b"x"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc",
    ] {
        let mut c = Client::connect(server.local_addr());
        c.send(raw);
        c.shutdown_write();
        let r = c.read().unwrap();
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
        assert!(c.closed());
    }
    // A complete request, then the end of file: answered, then closed.
    let mut c = Client::connect(server.local_addr());
    c.send(get("/done").as_bytes());
    c.shutdown_write();
    assert_eq!(c.read().unwrap().text(), "/done");
    assert!(c.closed());
    server.shutdown().unwrap();
}

/// Sets its event when dropped.
struct SetOnDrop(Arc<Event>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A server whose every answer is a 32 MiB stream (far more than the
/// socket buffers of both ends hold), with a write timeout of 200 ms; the
/// event is set when an answer's stream is dropped.
fn huge_stream_server() -> (ServerHandle, Arc<Event>) {
    let ended = Arc::new(Event::new());
    let flag = ended.clone();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .limits(Limits {
            write_timeout: Duration::from_millis(200),
            ..Limits::default()
        })
        .spawn(move |_req: Request| {
            let flag = flag.clone();
            async move {
                let chunks = coro::SendAsyncGen::new_send(|co| async move {
                    let _ended = SetOnDrop(flag);
                    for _ in 0..512 {
                        co.yield_(vec![b'h'; 64 << 10]).await;
                    }
                });
                let mut r = Response::text("");
                r.set_body(Body::stream(chunks));
                r
            }
        })
        .unwrap();
    (server, ended)
}

#[test]
fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
    let (server, ended) = huge_stream_server();
    let mut c = Client::connect(server.local_addr());
    let sent = std::time::Instant::now();
    c.send(get("/huge").as_bytes());
    // The server drops the body (ending or giving up) while this client
    // reads nothing, and not before its writes stalled for the timeout.
    assert!(
        ended.wait_timeout(Duration::from_secs(60)),
        "the body was never dropped"
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(200),
        "cut off early"
    );
    // It gave up: the connection ends before the body does (the bytes
    // already in the socket buffers arrive first). A connection left open
    // would end this read with the client's read timeout instead.
    let err = c.read().expect_err("the whole body arrived");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "the connection was not closed: {err}"
    );
    server.shutdown().unwrap();
}

#[test]
fn an_until_close_body_cut_off_by_the_write_timeout_resets_its_connection() {
    use std::io::{Read, Write};
    let (server, ended) = huge_stream_server();
    let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(util::READ_TIMEOUT)).unwrap();
    // HTTP/1.0: a stream of no known length is sent until the close.
    s.write_all(b"GET /huge HTTP/1.0\r\n\r\n").unwrap();
    // The server gives the body up while this client reads nothing.
    assert!(
        ended.wait_timeout(Duration::from_secs(60)),
        "the body was never dropped"
    );
    // What the socket buffers hold arrives; then, as the body was cut
    // short, the connection is reset: an orderly close (a read of 0)
    // would pass the cut body off as whole.
    let (mut got, mut buf) = (0_usize, vec![0; 64 << 10]);
    let end = loop {
        match s.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got += n,
            Err(e) => break Err(e.kind()),
        }
    };
    assert!(got < 32 << 20, "the whole body arrived");
    assert_eq!(
        end,
        Err(std::io::ErrorKind::ConnectionReset),
        "after {got} bytes"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_connection_stuck_mid_write_keeps_its_answers_while_another_is_served() {
    // One hub, so both connections' answers are written by one thread
    // (whose write buffers they share between batches).
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(|req: Request| async move {
            match req.path().strip_prefix("/big/") {
                // 1 MiB each, each of its own byte: sixteen are far more
                // than the socket buffers of both ends hold.
                Some(n) => Response::text(vec![b'a' + n.parse::<u8>().unwrap(); 1 << 20]),
                None => Response::text(req.path().into_owned()),
            }
        })
        .unwrap();
    let addr = server.local_addr();
    let mut stuck = Client::connect(addr);
    let pipelined: String = (0..16).map(|i| get(&format!("/big/{i}"))).collect();
    stuck.send(pipelined.as_bytes());
    // The first answer arrives; the other fifteen (15 MiB) cannot all fit
    // in the sockets' buffers while this client reads nothing more, so the
    // server is stuck writing them, and another client is answered
    // meanwhile.
    let first = stuck.read().unwrap();
    assert!(first.body.len() == 1 << 20 && first.body.iter().all(|&b| b == b'a'));
    let mut other = Client::connect(addr);
    for i in 0..3 {
        other.send(get(&format!("/small/{i}")).as_bytes());
        assert_eq!(other.read().unwrap().text(), format!("/small/{i}"));
    }
    for i in 1..16 {
        let r = stuck.read().unwrap();
        assert_eq!(r.body.len(), 1 << 20);
        assert!(r.body.iter().all(|&b| b == b'a' + i), "answer {i} mixed up");
    }
    server.shutdown().unwrap();
}

#[test]
fn at_the_per_hub_cap_a_new_connection_waits_for_an_idle_one_and_takes_its_place() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .limits(Limits {
            max_connections_per_hub: 2,
            ..Limits::default()
        })
        .spawn(app)
        .unwrap();
    let addr = server.local_addr();
    // Two connections with a request begun: neither is idle.
    let mut first = Client::connect(addr);
    first.send(b"GET /1 HTTP/1.1\r\n");
    first.wait_read();
    let mut second = Client::connect(addr);
    second.send(b"GET /2 HTTP/1.1\r\n");
    second.wait_read();

    // The third waits in the backlog. More of the first's head, read by
    // the server after the third has sent, gives the hub a turn with the
    // third's connection pending, in which a broken cap would accept it;
    // the read's bound only adds time for its answer to arrive.
    let mut third = Client::connect(addr);
    third.send(get("/3").as_bytes());
    first.send(b"Host: test\r\n");
    first.wait_read();
    third.set_read_timeout(Duration::from_millis(300));
    let early = third.read();
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "served over the cap: {early:?}"
    );

    // The first is answered and goes idle: the third takes its place, and
    // the first is closed.
    first.send(b"\r\n");
    assert_eq!(first.read().unwrap().text(), "/1");
    third.set_read_timeout(util::READ_TIMEOUT);
    assert_eq!(third.read().unwrap().text(), "/3");
    assert!(first.closed(), "the idle connection made room");
    // The second, busy all along, is untouched.
    second.send(b"Host: test\r\n\r\n");
    assert_eq!(second.read().unwrap().text(), "/2");

    // Both idle now, the third for longer: a fourth takes its place.
    let mut fourth = Client::connect(addr);
    fourth.send(get("/4").as_bytes());
    assert_eq!(fourth.read().unwrap().text(), "/4");
    assert!(third.closed(), "the connection idle the longest made room");
    second.send(get("/again").as_bytes());
    assert_eq!(second.read().unwrap().text(), "/again");

    // Two at once, with two idle: one makes room at a time, and both are
    // served.
    let mut burst: Vec<Client> = (5..7).map(|_| Client::connect(addr)).collect();
    for (i, c) in burst.iter_mut().enumerate() {
        c.send(get(&format!("/{}", i + 5)).as_bytes());
    }
    for (i, c) in burst.iter_mut().enumerate() {
        assert_eq!(c.read().unwrap().text(), format!("/{}", i + 5));
    }
    assert!(fourth.closed() && second.closed());
    server.shutdown().unwrap();
}

#[test]
fn binding_a_taken_port_is_a_clear_error() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let err = Server::bind(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // A port held by another minihttp server (SO_REUSEPORT) is refused too.
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .spawn(app)
        .unwrap();
    let err = Server::bind(running.local_addr()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    running.shutdown().unwrap();
}

/// The scheduling policy of the hub that answers, under a server made
/// with `batch` (`None`: the default).
#[cfg(target_os = "linux")]
fn policy_of_hubs(batch: Option<bool>) -> i32 {
    let mut server = Server::bind("127.0.0.1:0").unwrap().workers(1);
    if let Some(on) = batch {
        server = server.batch_scheduling(on);
    }
    let server = server
        .spawn(|_req: Request| async {
            // SAFETY: no pointer is passed; pid 0 is the calling thread
            // (on Linux), the hub's.
            let policy = unsafe { libc::sched_getscheduler(0) };
            Response::text((policy & !libc::SCHED_RESET_ON_FORK).to_string())
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.send(get("/").as_bytes());
    let policy = c.read().unwrap().text().parse().unwrap();
    server.shutdown().unwrap();
    policy
}

#[test]
#[cfg(target_os = "linux")]
fn batch_scheduling_reaches_the_hubs_and_is_off_by_default() {
    // SAFETY: no pointer is passed; pid 0 is the calling thread.
    let mine = unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
    assert_eq!(policy_of_hubs(None), mine);
    assert_eq!(policy_of_hubs(Some(false)), mine);
    let batch = policy_of_hubs(Some(true));
    // Whether this system lets a thread take the batch policy (a sandbox
    // may refuse it), tried on a thread of its own.
    let allowed = std::thread::spawn(|| {
        // SAFETY: all-zero is a valid `sched_param` (integers only):
        // priority 0, the batch policy's only one.
        let param: libc::sched_param = unsafe { std::mem::zeroed() };
        // SAFETY: `param` is valid and only read; `pthread_self()` is
        // this thread.
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_BATCH, &param) == 0 }
    })
    .join()
    .unwrap();
    if mine == libc::SCHED_OTHER && allowed {
        assert_eq!(batch, libc::SCHED_BATCH);
    } else {
        // A thread under another policy keeps it, as one the system
        // refuses the batch policy.
        eprintln!("note: policy {mine}, SCHED_BATCH allowed: {allowed}");
        assert_eq!(batch, mine);
    }
}

/// The CPUs this thread may use, and a server of two pinned hubs (with
/// connection locality or without) whose answer names the CPU of the hub
/// that served it; `None` (with a note) where there are fewer than two
/// CPUs.
#[cfg(target_os = "linux")]
fn server_naming_its_cpus(locality: bool) -> Option<(Vec<usize>, ServerHandle)> {
    let cpus = tests::thread_cpus().unwrap_or_default();
    if cpus.len() < 2 {
        eprintln!("note: fewer than two CPUs; no other hub's CPU");
        return None;
    }
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .pin_workers(true)
        .connection_locality(locality)
        .spawn(|_req: Request| async { Response::text(format!("{:?}", greenrt::pinned_cpu())) })
        .unwrap();
    Some((cpus, server))
}

/// One request on `c` to a server of [`server_naming_its_cpus`]: the CPU
/// of the hub that answered, as it wrote it.
#[cfg(target_os = "linux")]
fn served_by(c: &mut Client) -> String {
    c.send(get("/").as_bytes());
    c.read().unwrap().text()
}

#[test]
#[cfg(target_os = "linux")]
fn connections_go_to_the_hub_of_their_cpu_and_the_hubs_stay_even() {
    // Every connection from one CPU: the kernel would give all of them to
    // that CPU's hub, and the hub hands over what is more than its share.
    const CONNS: usize = 40;
    // `Loads::elsewhere`: a hub keeps up to 8 more than another one (a
    // quarter more, past 32), and the ninth more goes over.
    const SLACK: usize = 8;
    let Some((cpus, server)) = server_naming_its_cpus(true) else {
        return;
    };
    let addr = server.local_addr();
    let answers = std::thread::spawn(move || {
        let cpu = cpus[0];
        tests::pin_to(cpu);
        // Held open until all are answered, so that each still counts.
        let mut clients = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..CONNS {
            let mut c = Client::connect(addr);
            answers.push(served_by(&mut c));
            clients.push(c);
        }
        (cpu, answers)
    });
    let (cpu, answers) = answers.join().unwrap();
    server.shutdown().unwrap();
    assert_eq!(answers.len(), CONNS, "every connection answered");
    if answers.iter().any(|a| a == "None") {
        eprintln!("note: the system did not pin the hubs; no steering to check");
        return;
    }
    let mine = format!("Some({cpu})");
    let local = answers.iter().filter(|a| **a == mine).count();
    let other = CONNS - local;
    assert!(
        local.abs_diff(other) <= SLACK + 1,
        "{local} connections on the client's CPU's hub, {other} on the other"
    );
    if steers_within_group() {
        // The listeners are steered before the server serves: the first
        // connections go to the client's CPU's hub, until it holds 8 more
        // than the other (after which its CPU's connections are hashed).
        let first = &answers[..=SLACK];
        assert!(first.iter().all(|a| *a == mine), "not steered: {first:?}");
    }
}

/// Whether the kernel gives a connection to the listener of its CPU within
/// a group of `SO_REUSEPORT` listeners: since Linux 6.1 (before, it spreads
/// them by hash).
#[cfg(target_os = "linux")]
fn steers_within_group() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut version = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let steers = (version.next().unwrap_or(0), version.next().unwrap_or(0)) >= (6, 1);
    if !steers {
        eprintln!(
            "note: kernel {} does not steer within a group of listeners",
            release.trim()
        );
    }
    steers
}

#[test]
#[cfg(target_os = "linux")]
fn a_connection_follows_its_client_to_another_cpu() {
    let Some((cpus, server)) = server_naming_its_cpus(true) else {
        return;
    };
    let addr = server.local_addr();
    let (from, to) = (cpus[0], cpus[1]);
    let (first, moved) = std::thread::spawn(move || {
        tests::pin_to(from);
        let mut c = Client::connect(addr);
        let first = served_by(&mut c);
        // The client's packets are now processed on the other CPU: a check
        // every 32 requests, two in a row, then the move.
        tests::pin_to(to);
        let there = format!("Some({to})");
        let moved = (0..400).find(|_| served_by(&mut c) == there);
        (first, moved)
    })
    .join()
    .unwrap();
    server.shutdown().unwrap();
    if first == "None" {
        eprintln!("note: the system did not pin the hubs; nothing to follow");
        return;
    }
    if steers_within_group() {
        assert_eq!(first, format!("Some({from})"), "served where it came from");
    }
    let moved = moved.expect("the connection never moved to the client's new CPU");
    // Two checks of 32 idle waits each, the first of them possibly at the
    // first request after the client moved.
    assert!(moved < 2 * 32 + 2, "moved after {moved} requests");
}

#[test]
#[cfg(target_os = "linux")]
fn without_locality_a_connection_stays_on_its_hub() {
    let Some((cpus, server)) = server_naming_its_cpus(false) else {
        return;
    };
    let addr = server.local_addr();
    let answers = std::thread::spawn(move || {
        tests::pin_to(cpus[0]);
        let mut c = Client::connect(addr);
        let first = served_by(&mut c);
        // To the CPU of the other hub: with locality, the connection would
        // follow within 64 requests.
        let other = cpus[..2]
            .iter()
            .find(|&&c| format!("Some({c})") != first)
            .copied();
        tests::pin_to(other.unwrap_or(cpus[1]));
        let later: Vec<String> = (0..100).map(|_| served_by(&mut c)).collect();
        (first, later)
    })
    .join()
    .unwrap();
    server.shutdown().unwrap();
    let (first, later) = answers;
    if first == "None" {
        eprintln!("note: the system did not pin the hubs; nothing to stay on");
        return;
    }
    assert!(
        later.iter().all(|a| *a == first),
        "moved from {first}: {later:?}"
    );
}

/// A handler's future that is ready at once and panics when dropped.
struct ReadyThenPanics(Option<Response>);

impl std::future::Future for ReadyThenPanics {
    type Output = Response;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Response> {
        std::task::Poll::Ready(self.0.take().expect("polled once"))
    }
}

impl Drop for ReadyThenPanics {
    fn drop(&mut self) {
        panic!("a handler's future that panics when dropped");
    }
}

/// A body stream of one chunk that panics when dropped.
struct OneChunkThenPanics(bool);

impl futures_core::Stream for OneChunkThenPanics {
    type Item = Vec<u8>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Vec<u8>>> {
        let first = !std::mem::replace(&mut self.0, true);
        std::task::Poll::Ready(first.then(|| b"streamed".to_vec()))
    }
}

impl Drop for OneChunkThenPanics {
    fn drop(&mut self) {
        panic!("a body stream that panics when dropped");
    }
}

#[test]
fn destructors_of_a_handler_that_panic_lose_no_answer() {
    // With and without an access log (two paths through the server).
    for logged in [false, true] {
        let server = util::one_hub(logged)
            .spawn(|req: Request| {
                let r = if req.path() == "/body" {
                    let mut r = Response::text("");
                    r.set_body(Body::stream(OneChunkThenPanics(false)));
                    r
                } else {
                    Response::text(req.path().to_string())
                };
                ReadyThenPanics(Some(r))
            })
            .unwrap();
        let mut c = Client::connect(server.local_addr());
        c.send(
            format!(
                "{}{}HEAD /body HTTP/1.1\r\nHost: t\r\n\r\n{}",
                get("/body"),
                get("/fut"),
                get("/ping")
            )
            .as_bytes(),
        );
        let body = c.read().expect("the streamed answer");
        assert_eq!(
            (body.status, body.text()),
            (200, "streamed".into()),
            "{logged}"
        );
        let fut = c.read().expect("the next answer");
        assert_eq!((fut.status, fut.text()), (200, "/fut".into()), "{logged}");
        let head = c.read_for(true).expect("the answer to HEAD");
        assert_eq!(head.status, 200, "{logged}");
        let ping = c.read().expect("the last answer");
        assert_eq!(
            (ping.status, ping.text()),
            (200, "/ping".into()),
            "{logged}"
        );
        server.shutdown().unwrap();
    }
}

#[test]
fn a_stream_of_empty_chunks_gives_way_to_the_other_connections() {
    // One hub. The stream gives empty chunks until the other connection's
    // request has been answered, or gives up after a count far beyond
    // what that takes when the hub lets the other connection run.
    let pinged = Arc::new(Event::new());
    let p = pinged.clone();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(move |req: Request| {
            let pinged = p.clone();
            async move {
                if req.path() == "/ping" {
                    pinged.set();
                    return Response::text("pong");
                }
                let mut r = Response::text("");
                r.set_body(Body::generate(move |co| async move {
                    for _ in 0..50_000_000u64 {
                        if pinged.is_set() {
                            co.yield_(b"pinged".to_vec()).await;
                            return;
                        }
                        co.yield_(Vec::new()).await;
                    }
                    co.yield_(b"starved".to_vec()).await;
                }));
                r
            }
        })
        .unwrap();
    let mut streaming = Client::connect(server.local_addr());
    let mut ping = Client::connect(server.local_addr());
    streaming.send(get("/stream").as_bytes());
    ping.send(get("/ping").as_bytes());
    assert_eq!(ping.read().unwrap().text(), "pong");
    assert_eq!(streaming.read().unwrap().text(), "pinged");
    server.shutdown().unwrap();
}

#[test]
fn a_stream_of_small_chunks_gives_way_to_the_other_connections() {
    // One hub. A request waits in its handler until the stream starts,
    // then needs a turn of the hub to answer; the stream gives one-byte
    // chunks until that answer went, or gives up after a count far beyond
    // what that takes when the stream gives way (a write, which spends
    // the task's budget, comes only every 64 KiB of such chunks: once
    // they held the hub for about two million).
    const GIVE_UP: u32 = 100_000;
    let (waiting, started, pinged) = (
        Arc::new(Event::new()),
        Arc::new(Event::new()),
        Arc::new(Event::new()),
    );
    let (w, st, p) = (waiting.clone(), started.clone(), pinged.clone());
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(move |req: Request| {
            let (waiting, started, pinged) = (w.clone(), st.clone(), p.clone());
            async move {
                if req.path() == "/ping" {
                    waiting.set();
                    started.wait_async().await;
                    pinged.set();
                    return Response::text("pong");
                }
                let mut r = Response::text("");
                r.set_body(Body::generate(move |co| async move {
                    started.set();
                    for _ in 0..GIVE_UP {
                        if pinged.is_set() {
                            co.yield_(b"pinged".to_vec()).await;
                            return;
                        }
                        co.yield_(b"x".to_vec()).await;
                    }
                    co.yield_(b"starved".to_vec()).await;
                }));
                r
            }
        })
        .unwrap();
    let mut ping = Client::connect(server.local_addr());
    ping.send(get("/ping").as_bytes());
    assert!(waiting.wait_timeout(Duration::from_secs(60)));
    // The stream is read as it comes, so that no full socket makes it
    // wait (and give way).
    let addr = server.local_addr();
    let streaming = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.send(get("/stream").as_bytes());
        c.read().unwrap().text()
    });
    assert_eq!(ping.read().unwrap().text(), "pong");
    let body = streaming.join().unwrap();
    assert!(
        body.ends_with("pinged"),
        "{} bytes, then {:?}",
        body.len(),
        &body[body.len().saturating_sub(7)..]
    );
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_keeps_the_pipeline_full_is_answered_to_the_last() {
    // The socket holds more requests whenever the connection reads, and
    // its reads end between two requests, where the connection may go
    // idle: every answer comes, none is lost or held back.
    const N: usize = 30_000;
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(|_req: Request| async { Response::text("ok") })
        .unwrap();
    let mut reader = std::net::TcpStream::connect(server.local_addr()).unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = reader.try_clone().unwrap();
    // 64 bytes a request: a read of 4 KiB ends between two requests, as
    // a connection between requests (which may go idle) sees it.
    let one = format!("GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "p".repeat(32));
    assert_eq!(one.len(), 64);
    let sender = std::thread::spawn(move || {
        let all = one.repeat(N);
        std::io::Write::write_all(&mut writer, all.as_bytes()).unwrap();
    });
    // Every answer: count the status lines as the bytes come (a line may
    // be split between two reads: the end of one is kept for the next).
    const STATUS: &str = "HTTP/1.1 200 OK\r\n";
    let (mut seen, mut buf, mut tail) = (0, vec![0u8; 1 << 16], String::new());
    while seen < N {
        let n = std::io::Read::read(&mut reader, &mut buf)
            .unwrap_or_else(|e| panic!("after {seen} answers of {N}: {e}"));
        assert!(n > 0, "closed after {seen} answers of {N}");
        tail.push_str(std::str::from_utf8(&buf[..n]).expect("ASCII answers"));
        seen += tail.matches(STATUS).count();
        let keep = tail.len().saturating_sub(STATUS.len() - 1);
        let cut = tail[keep..].rfind('H').map_or(tail.len(), |i| keep + i);
        tail.drain(..cut);
    }
    assert_eq!(seen, N);
    sender.join().unwrap();
    server.shutdown().unwrap();
}

#[test]
fn a_panic_whose_payload_panics_when_dropped_still_answers_500() {
    let server = serve(Limits::default());
    let mut c = Client::connect(server.local_addr());
    c.send(get("/bomb").as_bytes());
    assert_eq!(c.read().unwrap().status, 500);
    // The connection goes on.
    c.send(get("/echo").as_bytes());
    assert_eq!(c.read().unwrap().status, 200);
    // A body that fails unsent answers 500 too (and closes: its answer was
    // replaced).
    let mut c = Client::connect(server.local_addr());
    c.send(get("/stream-bomb").as_bytes());
    assert_eq!(c.read().unwrap().status, 500);
    server.shutdown().unwrap();
}

#[test]
fn a_500_in_place_of_a_body_that_failed_unsent_is_logged_with_its_bytes() {
    let (server, rx) = util::serve_logged(app);
    let mut c = Client::connect(server.local_addr());
    c.send(get("/fails-at-once").as_bytes());
    let r = c.read().unwrap();
    assert_eq!(r.status, 500);
    let (status, bytes) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(status, 500);
    assert_eq!(bytes, r.body.len() as u64, "the answer's body");
    assert!(bytes > 0);
    server.shutdown().unwrap();
}
