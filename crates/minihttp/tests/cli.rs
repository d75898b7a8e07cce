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
    let dir = std::env::temp_dir().join(format!("minihttp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("page.txt"), b"served by the command\n").unwrap();

    let mut child = Child(
        Command::new(BIN)
            .arg(&dir)
            .args(["--port", "0", "--workers", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // "Serving DIR on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();

    let mut s = TcpStream::connect(&addr).unwrap();
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
    line.clear();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("127.0.0.1:"), "{line}");
    assert!(
        line.contains("\"GET /page.txt HTTP/1.1\" 200 22 "),
        "{line}"
    );
    assert!(line.trim_end().ends_with("ms"), "{line}");

    // A body the files never read is not waited for (nor kept): the answer
    // comes before it.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    s.write_all(b"GET /page.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 8388608\r\n\r\n")
        .unwrap();
    let mut status = [0; 17];
    s.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 200 OK\r\n");
    drop(s);

    // A second instance on the same port: a clear message and exit code 1.
    let taken = Command::new(BIN)
        .arg(&dir)
        .args(["--port", addr.rsplit(':').next().unwrap()])
        .output()
        .unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already in use"));

    let killed = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("shutting down") && rest.contains("stopped"),
        "{rest}"
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still listening after exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
