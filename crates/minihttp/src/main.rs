#![forbid(unsafe_code)]
//! `minihttp [DIR] [--bind ADDR] [--port N] [--workers N]`: serves a
//! directory over HTTP/1.1, like `python3 -m http.server`, with an access
//! log on stderr. Ctrl-C finishes the requests in flight, then exits.

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use minihttp::{LogEntry, Server, StaticFiles};

/// Writes a line to stderr, as `eprintln!` does, but goes on when stderr
/// is gone (a closed pipe) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The access log: each line goes to a thread of its own, which writes it
/// to stderr, so that a slow or stalled stderr (a pipe whose reader
/// stopped reading, a paused terminal) never holds up a hub, whose every
/// connection would wait with it. Up to [`LOG_QUEUE`] lines wait for it;
/// past that, lines are dropped, and their number is written once the
/// writer catches up.
struct AccessLog {
    lines: mpsc::SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

/// The most access log lines waiting to be written.
const LOG_QUEUE: usize = 4096;

impl AccessLog {
    /// The log, and its writer thread, which ends once every line was
    /// written and the log dropped, and then sends on `done`.
    fn start(done: mpsc::Sender<()>) -> std::io::Result<AccessLog> {
        let (lines, rx) = mpsc::sync_channel::<String>(LOG_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        std::thread::Builder::new()
            .name("minihttp-log".into())
            .spawn(move || {
                for line in rx {
                    let n = lost.swap(0, Ordering::Relaxed);
                    if n > 0 {
                        say!("minihttp: {n} access log lines dropped (stderr was too slow)");
                    }
                    say!("{line}");
                }
                let _ = done.send(());
            })?;
        Ok(AccessLog { lines, dropped })
    }

    fn log(&self, entry: &LogEntry<'_>) {
        if let Err(mpsc::TrySendError::Full(_)) = self.lines.try_send(entry.to_string()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

const USAGE: &str = "\
Usage: minihttp [DIR] [--bind ADDR] [--port N] [--workers N]

Serves DIR (default: the current directory) over HTTP/1.1: files with their
MIME type, index.html (or index.htm) for a directory, else a listing. The
address served is printed on stdout, each request logged on stderr.
Ctrl-C finishes the requests in flight, then exits.

Options:
  -b, --bind ADDR       address to listen on, with or without :PORT
                        (default: 127.0.0.1)
  --port N              port to listen on (default: 8000; 0 picks a free
                        one)
  -d, --directory DIR   the directory to serve (as the DIR argument)
  --workers N           threads serving requests, 1 to 1024 (default: one
                        per core)
  -h, --help            print this help
  --                    end of options (for a DIR whose name starts with -)
";

#[derive(Debug)]
struct Args {
    dir: PathBuf,
    bind: String,
    port: u16,
    workers: Option<usize>,
}

/// A command-line mistake, shown with the usage.
#[derive(Debug)]
struct Usage(String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most hubs `--workers` takes: far more than any machine has cores,
/// far less than would exhaust threads.
const MAX_WORKERS: usize = 1024;

/// The directory of a `--directory=DIR` argument whose DIR is not Unicode
/// (a Unicode one is parsed with the other options).
fn directory_value(raw: &OsString) -> Option<OsString> {
    if raw.to_str().is_some() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let rest = raw.as_bytes().strip_prefix(b"--directory=")?;
        Some(OsString::from_vec(rest.to_vec()))
    }
    #[cfg(not(unix))]
    {
        let _ = raw;
        None
    }
}

/// Parses the arguments; `Ok(None)` asks for the help text. Options are
/// Unicode; the directory may be any path (`--` ends the options, for a
/// directory whose name starts with `-`).
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, Usage> {
    let mut parsed = Args {
        dir: PathBuf::from("."),
        bind: "127.0.0.1".into(),
        port: 8000,
        workers: None,
    };
    let mut dir = None;
    // A port given with `--port`, and one given with `--bind HOST:PORT`.
    let (mut port, mut bind_port) = (None, None);
    let mut args = args.into_iter();
    let mut options = true;
    let mut set_dir = |raw: OsString| {
        if dir.is_some() {
            return Err(Usage(format!(
                "more than one directory given: {}",
                raw.to_string_lossy()
            )));
        }
        dir = Some(PathBuf::from(raw));
        Ok(())
    };
    while let Some(raw) = args.next() {
        // `--directory=DIR` with a DIR that is not Unicode.
        if let Some(d) = options.then(|| directory_value(&raw)).flatten() {
            set_dir(d)?;
            continue;
        }
        if !options || raw.to_str().is_none_or(|a| !a.starts_with('-') || a == "-") {
            set_dir(raw)?;
            continue;
        }
        let arg = raw.to_string_lossy().into_owned();
        if arg == "--" {
            options = false;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| match inline.clone() {
            Some(v) => Ok(v),
            None => match args.next().map(OsString::into_string) {
                Some(Ok(v)) => Ok(v),
                Some(Err(v)) => Err(Usage(format!(
                    "{name}: not Unicode: {}",
                    v.to_string_lossy()
                ))),
                None => Err(Usage(format!("{name} needs a value"))),
            },
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "-b" | "--bind" => {
                let v = value("--bind")?;
                (parsed.bind, bind_port) = split_port(&v)?;
            }
            "--port" => {
                let v = value("--port")?;
                port = Some(
                    v.parse()
                        .map_err(|_| Usage(format!("--port: not a port number: {v}")))?,
                );
            }
            "-d" | "--directory" => match inline.clone() {
                Some(v) => set_dir(v.into())?,
                None => set_dir(
                    args.next()
                        .ok_or_else(|| Usage("--directory needs a value".into()))?,
                )?,
            },
            "--workers" => {
                let v = value("--workers")?;
                parsed.workers = match v.parse() {
                    Ok(n) if (1..=MAX_WORKERS).contains(&n) => Some(n),
                    _ => {
                        return Err(Usage(format!(
                            "--workers: not a number from 1 to {MAX_WORKERS}: {v}"
                        )));
                    }
                };
            }
            s => return Err(Usage(format!("unknown option: {s}"))),
        }
    }
    if let Some(d) = dir {
        parsed.dir = d;
    }
    parsed.port = match (port, bind_port) {
        (Some(p), Some(b)) if p != b => {
            return Err(Usage(format!(
                "two ports given: {p} with --port and {b} with --bind"
            )));
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => parsed.port,
    };
    Ok(Some(parsed))
}

/// Splits `--bind`'s value into a host and, if it has one, a port:
/// `0.0.0.0`, `::1`, `127.0.0.1:9000`, `[::1]:9000`, `localhost:9000`.
fn split_port(v: &str) -> Result<(String, Option<u16>), Usage> {
    if let Ok(addr) = v.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), Some(addr.port())));
    }
    // A host name with a port (an IPv6 address has more than one colon,
    // and a bracketed one with a port parsed above).
    match v.split_once(':') {
        Some((host, port)) if !port.contains(':') && !host.is_empty() => port
            .parse()
            .map(|p| (host.to_string(), Some(p)))
            .map_err(|_| Usage(format!("--bind: not a port number: {port}"))),
        _ => Ok((v.to_string(), None)),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            say!("minihttp: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let files = match StaticFiles::new(&args.dir) {
        Ok(f) => f,
        Err(e) => {
            // `python3 -m http.server 8080` takes the port there.
            let port = args.dir.to_str().filter(|d| d.parse::<u16>().is_ok());
            let hint = port.map_or(String::new(), |p| format!(" (for port {p}: --port {p})"));
            say!("minihttp: cannot serve {}: {e}{hint}", args.dir.display());
            return ExitCode::FAILURE;
        }
    };
    // An IPv6 literal needs brackets in a socket address.
    let host = if args.bind.contains(':') && !args.bind.starts_with('[') {
        format!("[{}]", args.bind)
    } else {
        args.bind.clone()
    };
    let mut server = match Server::bind(format!("{host}:{}", args.port)) {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another program listens there; pick another with --port N)"
            } else {
                ""
            };
            say!("minihttp: {e}{hint}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    // Files never read a request body: streamed, one that comes is
    // discarded as it arrives instead of being kept whole (up to
    // `max_body`, per connection) before the answer.
    let (log_done, log_written) = mpsc::channel();
    let log = match AccessLog::start(log_done) {
        Ok(log) => log,
        Err(e) => {
            say!("minihttp: cannot start the access log: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = server
        .stream_bodies(true)
        .drain_timeout(Duration::from_secs(5))
        .access_log(move |entry| log.log(entry));
    let addr = server.local_addr();
    if let Err(e) = on_ctrl_c(server.shutdown_event()) {
        say!("minihttp: cannot handle Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    // Not `println!`, which panics when stdout is closed (a pipe whose
    // reader left): serving goes on without the line.
    let _ = writeln!(
        std::io::stdout(),
        "Serving {} on http://{addr}/ (Ctrl-C to stop)",
        files.root().display()
    );
    let served = server.serve(files);
    // The server, and the log with it, is gone: the lines still queued are
    // written (for a few seconds at most, should stderr be stalled).
    let _ = log_written.recv_timeout(Duration::from_secs(5));
    match served {
        Ok(()) => {
            say!("minihttp: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("minihttp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On SIGINT or SIGTERM, sets `shutdown` (a graceful stop); a second
/// signal exits at once.
#[cfg(unix)]
fn on_ctrl_c(shutdown: std::sync::Arc<sync_prims::Event>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("minihttp-signals".into())
        .spawn(move || {
            let mut seen = false;
            for _ in signals.forever() {
                if seen {
                    say!("minihttp: second signal, exiting now");
                    std::process::exit(130);
                }
                seen = true;
                // First: writing the notice may fail (a closed stderr).
                shutdown.set();
                say!("minihttp: shutting down (finishing requests in flight)");
            }
        })?;
    Ok(())
}

/// Without Unix signals, Ctrl-C ends the process the default way.
#[cfg(not(unix))]
fn on_ctrl_c(_shutdown: std::sync::Arc<sync_prims::Event>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Args>, Usage> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        let a = p(&[]).unwrap().unwrap();
        assert_eq!(
            (a.dir, a.bind.as_str(), a.port, a.workers),
            (PathBuf::from("."), "127.0.0.1", 8000, None)
        );
        let a = p(&["site", "--port", "9000", "--bind=0.0.0.0", "--workers", "3"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.dir, a.bind.as_str(), a.port, a.workers),
            (PathBuf::from("site"), "0.0.0.0", 9000, Some(3))
        );
        for (bind, host, port) in [
            ("127.0.0.1:9000", "127.0.0.1", 9000),
            ("[::1]:9001", "::1", 9001),
            ("localhost:9002", "localhost", 9002),
            ("::1", "::1", 8000),
            ("0.0.0.0", "0.0.0.0", 8000),
        ] {
            let a = p(&["--bind", bind]).unwrap().unwrap();
            assert_eq!((a.bind.as_str(), a.port), (host, port), "{bind}");
        }
        // The short options of `python3 -m http.server`.
        let a = p(&["-b", "::1", "-d", "site"]).unwrap().unwrap();
        assert_eq!((a.dir, a.bind.as_str()), (PathBuf::from("site"), "::1"));
        let a = p(&["--directory=site"]).unwrap().unwrap();
        assert_eq!(a.dir, PathBuf::from("site"));
        let a = p(&["--bind", "127.0.0.1:9000", "--port", "9000"])
            .unwrap()
            .unwrap();
        assert_eq!(a.port, 9000, "the same port twice is fine");
        assert!(p(&["--help"]).unwrap().is_none());
        assert!(p(&["a", "-h"]).unwrap().is_none());
        for bad in [
            &["--port"][..],
            &["--port", "70000"],
            &["--workers", "0"],
            &["--nope"],
            &["a", "b"],
            &["--bind", "127.0.0.1:9000", "--port", "9001"],
            &["--bind", "localhost:http"],
            &["--workers", "18446744073709551615"],
            &["--workers", "1025"],
            &["--", "a", "b"],
            &["a", "--directory", "b"],
            &["-d"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            p(&["--workers", "1024"]).unwrap().unwrap().workers,
            Some(1024)
        );
        // `--` ends the options: a directory named like one.
        let a = p(&["--port", "9000", "--", "--site"]).unwrap().unwrap();
        assert_eq!((a.dir, a.port), (PathBuf::from("--site"), 9000));
        assert_eq!(p(&["-"]).unwrap().unwrap().dir, PathBuf::from("-"));
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_need_not_be_unicode() {
        use std::os::unix::ffi::OsStringExt;
        let dir = OsString::from_vec(b"caf\xe9".to_vec());
        let a = parse([dir.clone()]).unwrap().unwrap();
        assert_eq!(a.dir, PathBuf::from(dir.clone()));
        let mut option = OsString::from("--directory=");
        option.push(&dir);
        let a = parse([option]).unwrap().unwrap();
        assert_eq!(a.dir, PathBuf::from(dir));
        let bad = parse([
            OsString::from("--bind"),
            OsString::from_vec(b"\xff".to_vec()),
        ]);
        assert!(bad.is_err());
    }
}
