//! The `minihttp` command run as a process: it starts on a free port,
//! serves a file, logs the request, refuses a taken port, and stops cleanly
//! on SIGINT.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_minihttp");

/// A server process, killed if the test fails before it stops it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn help_prints_usage() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Usage: minihttp [DIR]"), "{text}");
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A port where `python3 -m http.server` takes it: the way to say it.
    let out = Command::new(BIN)
        .arg("65432")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--port 65432"), "{text}");
}

#[cfg(unix)]
#[test]
fn serves_a_file_logs_it_and_stops_on_sigint() {
    let site = Site::new("serve");
    let dir = &site.0;
    std::fs::write(dir.join("page.txt"), b"served by the command\n").unwrap();

    let (mut child, addr) = start(dir, 2);
    let lines = lines_of(child.0.stderr.take().unwrap());

    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /page.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with("\r\n\r\nserved by the command\n"),
        "{response}"
    );

    // The access log line: client, method, path, status, bytes, time.
    let line = lines.recv_timeout(PATIENCE).expect("an access log line");
    assert!(line.starts_with("127.0.0.1:"), "{line}");
    assert!(
        line.contains("\"GET /page.txt HTTP/1.1\" 200 22 "),
        "{line}"
    );
    assert!(line.trim_end().ends_with("ms"), "{line}");

    // A body the files never read is not waited for (nor kept): the answer
    // comes before it.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /page.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 8388608\r\n\r\n")
        .unwrap();
    let mut status = [0; 17];
    s.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 200 OK\r\n");
    drop(s);

    // A second instance on the same port: a clear message and exit code 1.
    let taken = Command::new(BIN)
        .arg(dir)
        .args(["--port", addr.rsplit(':').next().unwrap()])
        .output()
        .unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already in use"));

    signal(&child, "-INT");
    let status = exits(child);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let rest: Vec<String> = lines.iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("shutting down"))
            && rest.iter().any(|l| l.contains("stopped")),
        "{rest:?}"
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still listening after exit"
    );
}

/// Starts the command on a free port serving `dir` with `workers` hubs,
/// its stderr piped; returns it and its address.
#[cfg(unix)]
fn start(dir: &std::path::Path, workers: usize) -> (Child, String) {
    start_under(Command::new(BIN), dir, workers)
}

/// As [`start`], with the command run by `command` (`BIN` itself, or a
/// shell that runs it under some limit).
#[cfg(unix)]
fn start_under(mut command: Command, dir: &std::path::Path, workers: usize) -> (Child, String) {
    let mut child = Child(
        command
            .arg(dir)
            .args(["--port", "0", "--workers", &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, addr)
}

#[cfg(unix)]
#[test]
fn out_of_descriptors_an_idle_connection_makes_room_for_a_new_one() {
    // Under a limit of 64 descriptors, more keep-alive connections than
    // that, each left idle after one answer: each new one is served at
    // once, in place of the one idle the longest (without it, a new client
    // waited in the backlog until an idle connection timed out, a minute).
    let site = Site::new("fds");
    let dir = &site.0;
    let mut limited = Command::new("sh");
    limited.args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", BIN]);
    let (mut child, addr) = start_under(limited, dir, 1);
    let _lines = lines_of(child.0.stderr.take().unwrap());
    let mut kept = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(&addr).unwrap();
        // Loose: an answer comes in milliseconds, or, without room made,
        // only when an idle connection times out (60 s).
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        // A missing file: an answer that opens no file, which would need
        // a descriptor of its own.
        s.write_all(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 22];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("connection {i} had no answer: {e}"));
        assert_eq!(&head, b"HTTP/1.1 404 Not Found", "connection {i}");
        kept.push(s);
    }
    // The first connection was closed to make room (the rest of its
    // answer, then the end of the stream, not the read's timeout).
    let mut rest = Vec::new();
    kept[0]
        .read_to_end(&mut rest)
        .expect("the oldest idle connection was closed");
    signal(&child, "-INT");
    assert!(exits(child).is_some_and(|s| s.success()));
}

#[cfg(unix)]
#[test]
fn a_server_that_cannot_start_every_hub_says_so_instead_of_serving() {
    // Under a limit of 64 descriptors, 40 hubs: their listeners fit, the
    // pollers of their reactors do not. The command once announced it
    // served, served on the hubs that started, and told of the error only
    // at shutdown.
    let site = Site::new("hubs");
    let dir = &site.0;
    let mut child = Child(
        Command::new("sh")
            .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", BIN])
            .arg(dir)
            .args(["--port", "0", "--workers", "40"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (mut out, mut err) = (
        child.0.stdout.take().unwrap(),
        child.0.stderr.take().unwrap(),
    );
    // Killed after a minute if it serves on.
    let status = exits(child);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    out.read_to_string(&mut stdout).unwrap();
    err.read_to_string(&mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("Serving"), "{stdout}");
    assert!(stderr.starts_with("minihttp: "), "{stderr}");
}

/// How long a test waits for what the command should do at once.
#[cfg(unix)]
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The lines of `stderr`, read by a thread of their own, so that a test
/// can wait for each within a bound.
#[cfg(unix)]
fn lines_of(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for `child` to exit, for a minute at most.
#[cfg(unix)]
fn exits(mut child: Child) -> Option<std::process::ExitStatus> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.0.id();
    let waiter = std::thread::spawn(move || {
        let status = child.0.wait();
        let _ = tx.send(());
        status.ok()
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(()) => waiter.join().unwrap(),
        Err(_) => {
            // Still running: end it, so that the waiter ends too.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = waiter.join();
            None
        }
    }
}

/// A scratch directory holding `page.txt` ("ok\n"), removed on drop.
#[cfg(unix)]
struct Site(std::path::PathBuf);

#[cfg(unix)]
impl Site {
    fn new(name: &str) -> Site {
        let dir = std::env::temp_dir().join(format!("minihttp-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("page.txt"), b"ok\n").unwrap();
        Site(dir)
    }
}

#[cfg(unix)]
impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `signal` (`-INT`, `-TERM`) to `child`.
#[cfg(unix)]
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// `n` pipelined GETs of `/page.txt` on one connection, every answer read.
#[cfg(unix)]
fn pipelined(addr: &str, n: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let reader = s.try_clone().unwrap();
    let wire = b"GET /page.txt HTTP/1.1\r\nHost: t\r\n\r\n".repeat(n);
    let writer = std::thread::spawn(move || s.write_all(&wire).map(|()| s));
    let mut r = BufReader::new(reader);
    let mut line = String::new();
    for i in 0..n {
        // Status line, then fields to the empty line, then 3 body bytes.
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "answer {i}: {line:?}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        let mut body = [0; 3];
        r.read_exact(&mut body).unwrap();
        assert_eq!(&body, b"ok\n");
    }
    drop(writer.join().unwrap().unwrap());
}

/// Starts the command on `site` with one hub, takes its stderr unread,
/// and answers 8,000 requests: past the pipe's 64 KiB and the log's own
/// queue of 4,096 lines, a hub that wrote its log itself would stop (with
/// it, every connection on it).
#[cfg(unix)]
fn start_with_stderr_stalled(site: &Site) -> (Child, std::process::ChildStderr) {
    let (mut child, addr) = start(&site.0, 1);
    let stderr = child.0.stderr.take().unwrap();
    for _ in 0..8 {
        pipelined(&addr, 1000);
    }
    (child, stderr)
}

#[cfg(unix)]
#[test]
fn a_stalled_stderr_holds_up_no_request_and_loses_no_count() {
    let site = Site::new("log");
    // Nobody reads stderr for now.
    let (child, stderr) = start_with_stderr_stalled(&site);
    // From now on stderr is read. Each request is either logged or counted
    // in a notice of lines dropped: the lines that did not fit were
    // dropped, and counted. All of them are accounted for before the
    // command is stopped (so that its own notices find room).
    let lines = lines_of(stderr);
    let (mut logged, mut dropped) = (0, 0);
    while logged + dropped < 8000 {
        let line = lines.recv_timeout(PATIENCE).expect("a line on stderr");
        if line.starts_with("127.0.0.1:") {
            logged += 1;
        } else if let Some(n) = line.strip_prefix("minihttp: ") {
            assert!(line.contains("log lines dropped"), "{line}");
            dropped += n.split(' ').next().unwrap().parse::<usize>().unwrap();
        } else if !line.starts_with("greenrt: task ") {
            // The stall monitor's notice is no log line: on a loaded
            // machine, a debug build's hub may well run a batch of a
            // thousand pipelined requests for longer than 100 ms.
            panic!("unexpected line: {line}");
        }
    }
    assert_eq!(
        logged + dropped,
        8000,
        "{logged} logged + {dropped} dropped"
    );
    assert!(dropped > 0, "nothing was dropped: {logged} lines logged");
    signal(&child, "-INT");
    let status = exits(child);
    let rest: Vec<String> = lines.iter().collect();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(rest.iter().any(|l| l == "minihttp: stopped"), "{rest:?}");
    // Nothing more was logged or dropped.
    assert!(
        rest.iter()
            .all(|l| !l.starts_with("127.0.0.1:") && !l.contains("dropped")),
        "{rest:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_stalled_stderr_does_not_keep_a_signal_from_stopping_the_command() {
    let site = Site::new("stall");
    // Held, never read: the log's writer is stuck in its write for good.
    let (child, _stderr) = start_with_stderr_stalled(&site);
    signal(&child, "-INT");
    signal(&child, "-TERM");
    // The second signal exits at once (status 130), or the first one's
    // stop came first.
    let status = exits(child).expect("the command stopped");
    assert!(status.success() || status.code() == Some(130), "{status:?}");
}

#[cfg(unix)]
#[test]
fn a_closed_stderr_does_not_keep_a_signal_from_stopping_the_command() {
    let site = Site::new("epipe");
    let (mut child, addr) = start(&site.0, 1);
    // Every write to stderr fails from here on.
    drop(child.0.stderr.take());
    pipelined(&addr, 10);
    signal(&child, "-TERM");
    let status = exits(child).expect("the command stopped on SIGTERM");
    assert!(status.success(), "{status:?}");
}
