//! Helpers of the `http_*` tests: a raw-socket client that reads responses
//! (length-delimited, chunked or until close) one at a time, so pipelined
//! answers can be checked in order.

#![allow(dead_code, unreachable_pub)] // each test file uses a different subset

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A server on one hub, with an access log that drops its lines when
/// `logged` (the server answers through another path then).
pub fn one_hub(logged: bool) -> minihttp::Server {
    let server = minihttp::Server::bind("127.0.0.1:0").unwrap().workers(1);
    if logged {
        server.access_log(|_| {})
    } else {
        server
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw connection: write bytes, read whole responses.
pub struct Client {
    reader: BufReader<TcpStream>,
}

/// A client's read timeout: generous, so that a broken server fails the
/// test instead of hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connects, with [`READ_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    /// Writes `bytes` in one write call.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// A second handle on the connection, to write from another thread.
    pub fn writer(&self) -> TcpStream {
        self.reader.get_ref().try_clone().unwrap()
    }

    /// Sends `bytes`, reporting a failure (the server closed or reset the
    /// connection) instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Makes the socket's receive buffer as small as the system allows, so
    /// that a large answer waits in the server's send buffer until this
    /// client reads it.
    pub fn shrink_receive_buffer(&mut self) {
        use std::os::fd::AsRawFd;
        let size: libc::c_int = 4096;
        // SAFETY: the descriptor is this client's open socket, and the
        // option value is a live `c_int` whose size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                self.reader.get_ref().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                std::ptr::from_ref(&size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(
            rc,
            0,
            "setsockopt(SO_RCVBUF): {}",
            io::Error::last_os_error()
        );
    }

    /// Changes the read timeout.
    pub fn set_read_timeout(&mut self, d: Duration) {
        self.reader.get_ref().set_read_timeout(Some(d)).unwrap();
    }

    /// Ends the sending side (the server reads end of file).
    pub fn shutdown_write(&mut self) {
        self.reader
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
    }

    /// Reads the next response (to a request that was not HEAD).
    pub fn read(&mut self) -> io::Result<Resp> {
        self.read_for(false)
    }

    /// Reads the next response; `head` says it answers a HEAD (no body).
    pub fn read_for(&mut self, head: bool) -> io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 304 || status == 204 || status / 100 == 1 {
            return Ok(resp);
        }
        if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().unwrap();
            resp.body.resize(n, 0);
            self.reader.read_exact(&mut resp.body)?;
        } else if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let mut size = String::new();
                if self.reader.read_line(&mut size)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let n = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, size.clone()))?;
                if n == 0 {
                    let mut end = String::new();
                    self.reader.read_line(&mut end)?;
                    break;
                }
                let at = resp.body.len();
                resp.body.resize(at + n, 0);
                self.reader.read_exact(&mut resp.body[at..])?;
                let mut crlf = [0; 2];
                self.reader.read_exact(&mut crlf)?;
            }
        } else {
            self.reader.read_to_end(&mut resp.body)?;
        }
        Ok(resp)
    }

    /// Waits until the server has read every byte this client sent: the
    /// client's send queue and the server's receive queue are both empty,
    /// as Linux shows them in `/proc/net/tcp` (a connection not listed
    /// there fails the test). Bounded by [`READ_TIMEOUT`]. A test that moves a server's manual
    /// clock calls it first, so that the bytes sent are read at the time
    /// the test means.
    pub fn wait_read(&self) {
        let s = self.reader.get_ref();
        let (me, server) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        let start = std::time::Instant::now();
        // Two readings in a row: the table is written a line at a time, and
        // bytes may move from the client's queue to the server's between
        // the two lines of one reading (once out of the first, they stay
        // in the second until the server reads them).
        let mut empty_readings = 0;
        while empty_readings < 2 {
            match queues_empty(me, server) {
                Some(true) => empty_readings += 1,
                Some(false) => empty_readings = 0,
                None => panic!("the connection is not in /proc/net/tcp"),
            }
            assert!(start.elapsed() < READ_TIMEOUT, "the server never read");
            if empty_readings < 2 {
                std::thread::yield_now();
            }
        }
    }

    /// Reads raw bytes until at least `n` came (or the connection ended);
    /// returns how many.
    pub fn read_raw(&mut self, n: usize) -> usize {
        let mut got = 0;
        let mut buf = [0; 16 * 1024];
        while got < n {
            match self.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) => panic!("read failed after {got} bytes: {e}"),
            }
        }
        got
    }

    /// Whether the server closed the connection (a read gives end of file).
    pub fn closed(&mut self) -> bool {
        let mut b = [0; 1];
        match self.reader.read(&mut b) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

/// Whether the connection from `client` to `server` has nothing queued:
/// neither bytes the client has not sent out nor bytes the server has not
/// read (the `tx_queue` and `rx_queue` of `/proc/net/tcp`); `None` when
/// the client's end is not listed.
fn queues_empty(client: SocketAddr, server: SocketAddr) -> Option<bool> {
    // An IPv4 address as the kernel prints it: the address in memory order
    // read as a native integer, then the port.
    let key = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(a.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => panic!("the tests use IPv4"),
    };
    let (c, s) = (key(client), key(server));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let (mut seen, mut empty) = (false, true);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(&local), Some(&remote), Some((tx, rx))) =
            (f.get(1), f.get(2), f.get(4).and_then(|q| q.split_once(':')))
        else {
            continue;
        };
        let queued = |q: &str| u64::from_str_radix(q, 16).map_or(true, |n| n > 0);
        if local == c && remote == s {
            seen = true;
            empty &= !queued(tx);
        } else if local == s && remote == c {
            empty &= !queued(rx);
        }
    }
    seen.then_some(empty)
}

/// A GET request with `Host`.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Sends a byte of body every `every` until an answer comes, for at most
/// `most` bytes; the answer. The client's read timeout is
/// [`READ_TIMEOUT`] again after.
pub fn trickle(c: &mut Client, every: Duration, most: usize) -> Option<Resp> {
    c.set_read_timeout(every);
    let mut answer = None;
    for _ in 0..most {
        match c.read() {
            Ok(r) => {
                answer = Some(r);
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        if c.try_send(b"x").is_err() {
            break;
        }
    }
    c.set_read_timeout(READ_TIMEOUT);
    answer
}

/// Limits under which [`trickled_body_gets_408`]'s trickle is too slow: a
/// body may take 1 s plus 5 ms a byte (200 bytes a second).
pub fn slow_body_limits() -> minihttp::Limits {
    minihttp::Limits {
        header_read_timeout: Duration::from_secs(1),
        min_body_rate: 200,
        ..minihttp::Limits::default()
    }
}

/// Sends `head` (of a request with a long body), then its body a byte every
/// 30 ms (pauses far under the 1 s of [`slow_body_limits`], an average of
/// 33 bytes a second far under its 200): the answer must be 408, after
/// about 40 bytes (1.2 s), and not before the first second.
pub fn trickled_body_gets_408(c: &mut Client, head: &[u8]) {
    // Before the head: the server's clock starts later.
    let start = std::time::Instant::now();
    c.send(head);
    let r = trickle(c, Duration::from_millis(30), 400).expect("an answer before 400 bytes (12 s)");
    assert_eq!(r.status, 408);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the first second is allowed: {took:?}"
    );
}

/// A one-hub server of `handler` whose access log sends each answer's
/// status and body bytes on the channel returned with it.
pub fn serve_logged<H: minihttp::Handler>(
    handler: H,
) -> (
    minihttp::ServerHandle,
    std::sync::mpsc::Receiver<(u16, u64)>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = minihttp::Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .access_log(move |entry| {
            let _ = tx.send((entry.status.as_u16(), entry.bytes));
        })
        .spawn(handler)
        .unwrap();
    (server, rx)
}
