//! Graceful shutdown: in-flight requests finish, idle keep-alive
//! connections close, nothing new is accepted; a request that outlives the
//! drain timeout is cut off. Ordered with events, not sleeps.

#[path = "http_util.rs"]
mod util;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minihttp::{Body, Request, Response, Server, ServerHandle};
use sync_prims::Event;
use util::{Client, get};

/// `/slow` says it started (`entered`), then waits for `release`.
fn serve(entered: &Arc<Event>, release: &Arc<Event>, drain: Duration) -> ServerHandle {
    let (entered, release) = (entered.clone(), release.clone());
    Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .drain_timeout(drain)
        .spawn(move |req: Request| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                if req.path() == "/slow" {
                    entered.set();
                    release.wait_async().await;
                    return Response::text("finished");
                }
                Response::text("fast")
            }
        })
        .unwrap()
}

#[test]
fn shutdown_finishes_an_in_flight_response_and_closes_idle_connections() {
    let (entered, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let server = serve(&entered, &release, Duration::from_secs(60));
    let addr = server.local_addr();

    // An idle keep-alive connection, and one with a request in flight.
    let mut idle = Client::connect(addr);
    idle.send(get("/fast").as_bytes());
    assert_eq!(idle.read().unwrap().text(), "fast");
    let mut busy = Client::connect(addr);
    busy.send(get("/slow").as_bytes());
    assert!(
        entered.wait_timeout(Duration::from_secs(60)),
        "handler never started"
    );

    // Shutdown begins: the idle connection is closed at once...
    server.shutdown_event().set();
    assert!(idle.closed(), "the idle connection stayed open");
    // ...while the in-flight request is still answered in full.
    release.set();
    let r = busy.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "finished".to_string()));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.closed());

    server.shutdown().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

#[test]
fn an_answer_begun_before_the_shutdown_arrives_whole_though_a_request_follows_unread() {
    // A streamed answer whose head went out before the shutdown (so it did
    // not say it closes), to a client that reads slowly and pipelines one
    // more request. Once the answer ended, the connection closed with that
    // request unread, which reset it and destroyed the end of the answer
    // on its way. The request is one arriving now, answered before the
    // connection closes.
    let (entered, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (e, r) = (entered.clone(), release.clone());
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(move |_req: Request| {
            let (entered, release) = (e.clone(), r.clone());
            async move {
                let chunks = coro::SendAsyncGen::new_send(|co| async move {
                    co.yield_(vec![b's'; 64 << 10]).await;
                    entered.set();
                    release.wait_async().await;
                    co.yield_(b"end".to_vec()).await;
                });
                let mut r = Response::text("");
                r.set_body(Body::stream(chunks));
                r
            }
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.shrink_receive_buffer();
    c.send(get("/stream").as_bytes());
    assert!(
        entered.wait_timeout(Duration::from_secs(60)),
        "never streamed"
    );
    c.send(get("/after").as_bytes());
    server.shutdown_event().set();
    release.set();
    let r = c.read().expect("the whole answer, not a reset");
    assert_eq!((r.status, r.body.len()), (200, (64 << 10) + 3));
    assert!(r.body.ends_with(b"end"));
    assert_eq!(r.header("connection"), None, "begun before the shutdown");
    let r = c.read().expect("the answer to the request pipelined");
    assert_eq!((r.status, r.body.len()), (200, (64 << 10) + 3));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
    server.shutdown().unwrap();
}

#[test]
fn a_request_pipelined_behind_one_in_flight_is_answered_before_the_close() {
    // Two requests in one write, before the shutdown; the first still in
    // its handler when it begins. The first answer said the connection
    // closes, and the second request, sent before the shutdown, went
    // unanswered. With and without an access log (two paths through the
    // server).
    for logged in [false, true] {
        let (entered, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let (e, r) = (entered.clone(), release.clone());
        let server = util::one_hub(logged)
            .spawn(move |req: Request| {
                let (entered, release) = (e.clone(), r.clone());
                async move {
                    if req.path() == "/slow" {
                        entered.set();
                        release.wait_async().await;
                    }
                    Response::text(req.path().into_owned())
                }
            })
            .unwrap();
        let mut c = Client::connect(server.local_addr());
        c.send(format!("{}{}", get("/slow"), get("/after")).as_bytes());
        assert!(
            entered.wait_timeout(Duration::from_secs(60)),
            "handler never started"
        );
        server.shutdown_event().set();
        release.set();
        let r = c.read().expect("the answer in flight");
        assert_eq!(
            (r.text(), r.header("connection")),
            ("/slow".into(), None),
            "{logged}"
        );
        let r = c.read().expect("the answer to the request pipelined");
        assert_eq!(
            (r.text(), r.header("connection")),
            ("/after".into(), Some("close")),
            "{logged}"
        );
        assert!(c.closed(), "{logged}");
        server.shutdown().unwrap();
    }
}

#[test]
fn a_client_that_keeps_pipelining_through_a_shutdown_gets_its_close_before_the_drain() {
    // Requests sent before the connection saw the shutdown are answered;
    // one that sends on and on is not kept until the drain timeout (an
    // answer that closes comes after those, not never).
    let (entered, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let server = serve(&entered, &release, Duration::from_secs(600));
    let mut c = Client::connect(server.local_addr());
    c.send(format!("{}{}{}", get("/slow"), get("/a"), get("/b")).as_bytes());
    assert!(
        entered.wait_timeout(Duration::from_secs(60)),
        "handler never started"
    );
    server.shutdown_event().set();
    // Sent while the handler runs (so not read yet), and on and on.
    c.send(get("/more").repeat(16).as_bytes());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (mut w, stop) = (c.writer(), stop.clone());
        std::thread::spawn(move || {
            let more = get("/more").repeat(16);
            for _ in 0..2_000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst)
                    || std::io::Write::write_all(&mut w, more.as_bytes()).is_err()
                {
                    break;
                }
            }
        })
    };
    release.set();
    assert_eq!(c.read().unwrap().text(), "finished");
    // `/a`, `/b`, and at most one more sent while the handler ran.
    let mut answers = 0;
    let closed = loop {
        let r = c.read().expect("an answer");
        answers += 1;
        if r.header("connection") == Some("close") || answers > 3 {
            break r.header("connection") == Some("close");
        }
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        closed,
        "{answers} answers kept the connection past the shutdown"
    );
    server.shutdown().unwrap();
}

#[test]
fn the_drain_timeout_bounds_a_request_that_never_ends() {
    let (entered, release) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let drain = Duration::from_millis(200);
    let server = serve(&entered, &release, drain);
    let mut busy = Client::connect(server.local_addr());
    busy.send(get("/slow").as_bytes());
    assert!(
        entered.wait_timeout(Duration::from_secs(60)),
        "handler never started"
    );

    let start = Instant::now();
    server.shutdown().unwrap();
    assert!(
        start.elapsed() >= drain,
        "returned before the drain timeout"
    );
    // Cut off: no response, the connection is closed.
    assert!(busy.closed(), "the connection was left open");
    drop(release);
}

#[test]
fn a_download_the_drain_cuts_off_is_logged_with_the_bytes_that_went_out() {
    const CHUNK: usize = 64 * 1024;
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .drain_timeout(Duration::from_millis(50))
        .access_log(move |entry| {
            let _ = tx.send((entry.target.to_owned(), entry.status.as_u16(), entry.bytes));
        })
        .spawn(|_req: Request| async {
            let mut r = Response::text("");
            // Endless: only the drain's end stops it.
            r.set_body(minihttp::Body::generate(|co| async move {
                loop {
                    co.yield_(vec![b'x'; CHUNK]).await;
                }
            }));
            r
        })
        .unwrap();
    let mut c = Client::connect(server.local_addr());
    c.send(get("/endless").as_bytes());
    // Some of it went out; then the client reads no more, and the server
    // waits for room in the socket until the drain ends.
    let read = c.read_raw(1 << 20);
    server.shutdown().unwrap();
    let (target, status, bytes) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a line for the request cut off");
    assert_eq!((target.as_str(), status), ("/endless", 200));
    // At least what the client read, less the head and the chunks'
    // framing.
    let framing = 1024 + (read / CHUNK + 1) * 16;
    assert!(
        bytes as usize + framing >= read,
        "{bytes} logged, {read} read"
    );
    drop(c);
}

#[test]
fn an_until_close_body_the_drain_cuts_off_resets_its_connection() {
    use std::io::{Read, Write};
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .drain_timeout(Duration::from_millis(50))
        .spawn(|_req: Request| async {
            let mut r = Response::text("");
            r.set_body(minihttp::Body::generate(|co| async move {
                co.yield_(b"part of it".to_vec()).await;
                // Never ends: only the drain's end stops it.
                std::future::pending::<()>().await;
            }));
            r
        })
        .unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(util::READ_TIMEOUT)).unwrap();
    // HTTP/1.0: a stream of no known length is sent until the close.
    s.write_all(b"GET /cut HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !got.ends_with(b"part of it") {
        let n = s.read(&mut buf).expect("the head and the first part");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    server.shutdown().unwrap();
    // Cut short, the body must not end as a whole one would, in an orderly
    // close: the connection is reset.
    let end = s.read(&mut buf);
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}
