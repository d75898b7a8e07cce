//! Static files end to end: a real HTTP client (`ureq`) and raw sockets
//! against `Server` + `StaticFiles` on greenrt.

#[path = "http_util.rs"]
mod util;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use minihttp::{Server, ServerHandle, StaticFiles};
use util::{Client, get};

/// A temporary tree: `root/` is served, `outside/secret` must never be.
struct Tree(PathBuf);

impl Tree {
    fn new() -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "http-static-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let root = dir.join("root");
        fs::create_dir_all(root.join("docs")).unwrap();
        fs::create_dir_all(root.join("site")).unwrap();
        fs::create_dir_all(dir.join("outside")).unwrap();
        fs::write(root.join("big.bin"), big()).unwrap();
        fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
        fs::write(root.join("docs/<a&b>.txt"), b"x").unwrap();
        fs::write(root.join("site/index.html"), b"<p>site</p>").unwrap();
        fs::write(dir.join("outside/secret"), b"secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("outside"), root.join("escape")).unwrap();
        Tree(dir)
    }

    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// 300 KiB of varied bytes: several file chunks and several flushes.
fn big() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..300 * 1024)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

fn serve(tree: &Tree) -> ServerHandle {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .spawn(StaticFiles::new(tree.root()).unwrap())
        .unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn a_file_download_cut_short_logs_the_bytes_that_went_out() {
    // 1 GiB of holes: more than any socket buffers, and nothing on disk.
    const LEN: u64 = 1 << 30;
    let tree = Tree::new();
    let f = fs::File::create(tree.root().join("huge.bin")).unwrap();
    f.set_len(LEN).unwrap();
    let (server, rx) = util::serve_logged(StaticFiles::new(tree.root()).unwrap());
    let mut c = Client::connect(server.local_addr());
    c.send(get("/huge.bin").as_bytes());
    let read = c.read_raw(1 << 20);
    // Closed with bytes unread: the system resets the connection, and the
    // server's next write fails.
    drop(c);
    let (status, bytes) = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(status, 200);
    // What the client read went out, less the head and the part of the
    // write that failed (under two 64 KiB pieces, which the log does not
    // count); the whole file did not.
    assert!(
        bytes as usize + 1024 + 128 * 1024 >= read,
        "{bytes} logged, {read} read"
    );
    assert!(bytes < LEN, "{bytes} logged");
    server.shutdown().unwrap();
}

#[test]
fn files_are_byte_identical_through_a_real_client() {
    let tree = Tree::new();
    let server = serve(&tree);
    let base = format!("http://{}", server.local_addr());
    let agent = agent();

    let mut r = agent.get(format!("{base}/big.bin")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "application/octet-stream"
    );
    let body = r
        .body_mut()
        .with_config()
        .limit(10 << 20)
        .read_to_vec()
        .unwrap();
    assert!(body == big(), "the served bytes differ from the file");

    let mut r = agent.get(format!("{base}/hello.txt")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "hello, world\n");

    // A directory with an index.html serves it; one without is listed,
    // with its names escaped.
    let mut r = agent.get(format!("{base}/site/")).call().unwrap();
    assert_eq!(r.body_mut().read_to_string().unwrap(), "<p>site</p>");
    let mut r = agent.get(format!("{base}/docs/")).call().unwrap();
    let listing = r.body_mut().read_to_string().unwrap();
    assert!(listing.contains("&lt;a&amp;b&gt;.txt"), "{listing}");
    assert!(!listing.contains("<a&b>"), "{listing}");

    let r = agent.get(format!("{base}/nope")).call().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    server.shutdown().unwrap();
}

#[test]
fn conditional_and_range_requests() {
    let tree = Tree::new();
    let server = serve(&tree);
    let mut c = Client::connect(server.local_addr());

    c.send(get("/big.bin").as_bytes());
    let full = c.read().unwrap();
    assert_eq!(full.status, 200);
    let etag = full.header("etag").unwrap().to_string();
    let modified = full.header("last-modified").unwrap().to_string();

    // 304 for a matching validator, on the same keep-alive connection.
    c.send(format!("GET /big.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    let r = c.read().unwrap();
    assert_eq!((r.status, r.body.len()), (304, 0));
    c.send(
        format!("GET /big.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {modified}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(c.read().unwrap().status, 304);

    // 206 for a satisfiable range, 416 for an unsatisfiable one.
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-70999\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-70999/{}", 300 * 1024).as_str())
    );
    assert!(r.body == big()[1000..71000], "wrong range bytes");
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=999999-\r\n\r\n");
    assert_eq!(c.read().unwrap().status, 416);

    // HEAD: the length, no body; the connection goes on.
    c.send(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_for(true).unwrap();
    assert_eq!(r.header("content-length"), Some("307200"));
    c.send(get("/hello.txt").as_bytes());
    assert_eq!(c.read().unwrap().text(), "hello, world\n");
    server.shutdown().unwrap();
}

#[test]
fn traversal_is_refused() {
    let tree = Tree::new();
    let server = serve(&tree);
    let attempts = [
        ("/../outside/secret", 403),
        ("/%2e%2e/outside/secret", 403),
        ("/docs/..%2f..%2foutside/secret", 400),
        ("/docs/%2E%2E/%2E%2E/outside/secret", 403),
        #[cfg(unix)]
        ("/escape/secret", 403),
        ("/hello.txt%00.png", 400),
        // The root's own `etc/passwd`, which does not exist.
        ("//etc/passwd", 404),
    ];
    for (path, status) in attempts {
        let mut c = Client::connect(server.local_addr());
        c.send(get(path).as_bytes());
        let r = c.read().unwrap();
        assert_eq!(r.status, status, "{path}");
        assert!(!r.text().contains("secret"), "{path} leaked the file");
    }
    server.shutdown().unwrap();
}

#[cfg(unix)]
#[test]
fn a_fifo_is_not_served_and_does_not_stop_its_hub() {
    let tree = Tree::new();
    let fifo = tree.root().join("pipe");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c_path` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // One hub: were the open of the FIFO to wait for a writer, nothing
    // else would be answered.
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(1)
        .spawn(StaticFiles::new(tree.root()).unwrap())
        .unwrap();
    // A program that writes to the FIFO waits in its `open` for a reader:
    // the server must not be that reader (the writer would go on, and die
    // of SIGPIPE at its first write once the server closed it).
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            tid_tx.send(tests::thread_id()).unwrap();
            fs::File::options().write(true).open(&fifo).map(drop)
        })
    };
    let tid = tid_rx.recv_timeout(tests::BOUND).unwrap();
    assert!(tests::wait_until_asleep(
        tid,
        std::time::Duration::from_secs(60)
    ));
    let mut c = Client::connect(server.local_addr());
    c.send(get("/pipe").as_bytes());
    assert_eq!(c.read().unwrap().status, 404);
    // Had the server opened it, the writer would have been woken before the
    // answer went out.
    assert!(
        tests::wait_until_asleep(tid, std::time::Duration::ZERO),
        "the server opened the FIFO"
    );
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _reader = fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        writer.join().unwrap().unwrap();
    }
    let mut other = Client::connect(server.local_addr());
    other.send(get("/hello.txt").as_bytes());
    let r = other.read().unwrap();
    assert_eq!((r.status, r.text()), (200, "hello, world\n".to_string()));
    server.shutdown().unwrap();
}
