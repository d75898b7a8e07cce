//! 1,000 concurrent keep-alive clients (green tasks of a client runtime)
//! against one server: every client holds its connection open until all
//! 1,000 are connected and answered, then sends a second request on it.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use greenrt::net::TcpStream;
use minihttp::{Request, Response, Server};
use sync_prims::Event;

const CLIENTS: usize = 1000;

/// Sends a GET for `path` and reads one `Content-Length` response; returns
/// its body.
async fn exchange(s: &TcpStream, buf: &mut Vec<u8>, path: &str) -> std::io::Result<String> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await?;
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                assert!(head.starts_with("http/1.1 200"), "{head}");
                return Ok(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn client(addr: SocketAddr, i: usize, arrived: Rc<Cell<usize>>, all: Rc<Event>) -> bool {
    let Ok(s) = TcpStream::connect(addr).await else {
        return false;
    };
    let mut buf = Vec::new();
    let first = exchange(&s, &mut buf, &format!("/{i}/1")).await;
    arrived.set(arrived.get() + 1);
    if arrived.get() == CLIENTS {
        all.set();
    }
    // Every connection is open (and answered once) at this point.
    all.wait_async().await;
    let second = exchange(&s, &mut buf, &format!("/{i}/2")).await;
    first.ok() == Some(format!("/{i}/1")) && second.ok() == Some(format!("/{i}/2"))
}

#[test]
fn a_thousand_concurrent_keep_alive_clients() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .spawn(|req: Request| async move { Response::text(req.path().into_owned()) })
        .unwrap();
    let addr = server.local_addr();
    let ok = greenrt::run(async move {
        let arrived = Rc::new(Cell::new(0));
        let all = Rc::new(Event::new());
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|i| greenrt::spawn(client(addr, i, arrived.clone(), all.clone())))
            .collect();
        // A guard against a hang, far above the time this takes.
        let finished = greenrt::joinall(&tasks, Some(Duration::from_secs(120))).await;
        assert_eq!(finished.len(), CLIENTS, "clients did not finish");
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        ok
    });
    assert_eq!(ok, CLIENTS);
    server.shutdown().unwrap();
}
