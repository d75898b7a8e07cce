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

/// What the command writes to stderr once it serves: the access log, its
/// notices, and panic messages. Each line goes to a thread of its own,
/// which writes it, so that a slow or stalled stderr (a pipe whose reader
/// stopped reading, a paused terminal) never holds up a hub, whose every
/// connection would wait with it, nor the handling of a signal. Up to
/// [`LOG_QUEUE`] lines wait for it; past that, lines are dropped, and
/// their number is written once the writer catches up.
struct Log {
    lines: mpsc::SyncSender<Msg>,
    dropped: AtomicU64,
}

/// What the writer of a [`Log`] is sent.
enum Msg {
    Line(String),
    /// Write what came before, then end.
    End,
}

/// The most lines waiting to be written.
const LOG_QUEUE: usize = 4096;

impl Log {
    /// The log, and its writer thread, which sends on `done` when it ends.
    fn start(done: mpsc::Sender<()>) -> std::io::Result<Arc<Log>> {
        let (lines, rx) = mpsc::sync_channel(LOG_QUEUE);
        let log = Arc::new(Log {
            lines,
            dropped: AtomicU64::new(0),
        });
        let writer = log.clone();
        std::thread::Builder::new()
            .name("minihttp-log".into())
            .spawn(move || {
                writer.write_out(&rx);
                let _ = done.send(());
            })?;
        Ok(log)
    }

    /// The writer's loop: the lines waiting are written together, with
    /// one write to stderr for many of them.
    fn write_out(&self, rx: &mpsc::Receiver<Msg>) {
        let mut out = std::io::BufWriter::new(std::io::stderr());
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next {
                let n = self.dropped.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "minihttp: {n} log lines dropped (stderr was too slow)");
                }
                match msg {
                    Msg::Line(line) => {
                        let _ = writeln!(out, "{line}");
                    }
                    Msg::End => {
                        let _ = out.flush();
                        return;
                    }
                }
                next = rx.try_recv().ok();
            }
            let _ = out.flush();
        }
    }

    /// Queues `line`, or counts it as dropped.
    fn line(&self, line: String) {
        if let Err(mpsc::TrySendError::Full(_)) = self.lines.try_send(Msg::Line(line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `last`, then the end, and waits for the writer to write them,
    /// for `limit` at most (stderr may be stalled for good).
    fn finish(&self, last: String, done: &mpsc::Receiver<()>, limit: Duration) {
        self.line(last);
        // The end goes in behind the lines queued once the queue has room,
        // sent by a thread of its own: the writer may be stuck for good,
        // and the exit does not wait for it past `limit`.
        let lines = self.lines.clone();
        let _ = std::thread::Builder::new()
            .name("minihttp-log-end".into())
            .spawn(move || drop(lines.send(Msg::End)));
        let _ = done.recv_timeout(limit);
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

/// The directory of a `--directory=DIR`, `-d=DIR` or `-dDIR` argument whose
/// DIR is not Unicode (a Unicode one is parsed with the other options).
fn directory_value(raw: &OsString) -> Option<OsString> {
    if raw.to_str().is_some() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let bytes = raw.as_bytes();
        let rest = (bytes.strip_prefix(b"--directory="))
            .or_else(|| bytes.strip_prefix(b"-d=").filter(|r| !r.is_empty()))
            .or_else(|| bytes.strip_prefix(b"-d").filter(|r| !r.is_empty()))?;
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
        if options && raw.to_str().is_none() && raw.as_encoded_bytes().starts_with(b"-") {
            // An option (not `-d`'s, taken above) whose value is not
            // Unicode, not a directory named like one.
            return Err(Usage(format!("{}: not Unicode", raw.to_string_lossy())));
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
            // A short option with its value attached (`-b::1`, `-dsite`,
            // `-d=site`), as `python3 -m http.server` takes them.
            _ if !arg.starts_with("--") && arg.len() > 2 && arg.is_char_boundary(2) => {
                let value = &arg[2..];
                let value = value.strip_prefix('=').unwrap_or(value);
                (arg[..2].to_string(), Some(value.to_string()))
            }
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
            "-h" | "--help" if inline.is_none() => return Ok(None),
            "-h" | "--help" => return Err(Usage(format!("{name} takes no value"))),
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
                Some(v) if v.is_empty() => return Err(Usage("--directory needs a value".into())),
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
/// `0.0.0.0`, `::1`, `127.0.0.1:9000`, `[::1]`, `[::1]:9000`,
/// `localhost:9000`. A value that is none of these is a usage error, not
/// a name to look up.
fn split_port(v: &str) -> Result<(String, Option<u16>), Usage> {
    let port = |p: &str| {
        p.parse()
            .map_err(|_| Usage(format!("--bind: not a port number: {p}")))
    };
    let not_an_address = || Usage(format!("--bind: not an address: {v:?}"));
    // An IPv6 address, perhaps with a scope (`fe80::1%2`), which the
    // address given to the system keeps.
    let ipv6 = |ip: &str| -> Result<(), Usage> {
        let (addr, scope) = match ip.split_once('%') {
            Some((addr, scope)) => (addr, Some(scope)),
            None => (ip, None),
        };
        addr.parse::<std::net::Ipv6Addr>()
            .map_err(|_| Usage(format!("--bind: not an IPv6 address: {ip:?}")))?;
        match scope {
            Some(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) => {
                Err(Usage(format!(
                    "--bind: give the scope of {ip} as a number ({addr}%2, say: \
                     `ip link` numbers the interfaces; with a port, [{addr}%2]:PORT)"
                )))
            }
            Some(s) if s.parse::<u32>().is_err() => {
                Err(Usage(format!("--bind: no such scope: {s}")))
            }
            _ => Ok(()),
        }
    };
    if let Some(rest) = v.strip_prefix('[') {
        // `[IPv6]` or `[IPv6]:port`.
        let (ip, after) = rest.split_once(']').ok_or_else(not_an_address)?;
        ipv6(ip)?;
        return match after {
            "" => Ok((ip.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((ip.to_string(), Some(port(p)?))),
                None => Err(not_an_address()),
            },
        };
    }
    if let Ok(addr) = v.parse::<std::net::SocketAddrV4>() {
        return Ok((addr.ip().to_string(), Some(addr.port())));
    }
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Ok((v.to_string(), None));
    }
    if v.contains('%') {
        ipv6(v)?;
        return Ok((v.to_string(), None));
    }
    // A host name, with a port or without.
    let (host, p) = match v.split_once(':') {
        Some((host, p)) => (host, Some(p)),
        None => (v, None),
    };
    if host.is_empty() || host.contains([':', '[', ']']) {
        return Err(not_an_address());
    }
    Ok((host.to_string(), p.map(port).transpose()?))
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
    let addr = format!("{host}:{}", args.port);
    let mut server = match Server::bind(&addr) {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another program listens there; pick another with --port N)"
            } else {
                ""
            };
            // A failed bind names the address; a failed lookup does not.
            let e = e.to_string();
            if e.contains(&addr) {
                say!("minihttp: {e}{hint}");
            } else {
                say!("minihttp: cannot listen on {addr}: {e}{hint}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let (log_done, log_written) = mpsc::channel();
    let log = match Log::start(log_done) {
        Ok(log) => log,
        Err(e) => {
            say!("minihttp: cannot start the log: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Panic messages too go through the log: a hub that wrote one itself
    // would wait on a stalled stderr.
    let hook_log = log.clone();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        hook_log.line(format!("minihttp: thread '{name}' {info}"));
    }));
    // Files never read a request body: streamed, one that comes is
    // discarded as it arrives instead of being kept whole before the
    // answer (and past 256 KiB, the connection closes instead).
    let access = log.clone();
    let server = server
        .stream_bodies(true)
        .drain_timeout(Duration::from_secs(5))
        .access_log(move |entry: &LogEntry<'_>| access.line(entry.to_string()));
    let addr = server.local_addr();
    if let Err(e) = on_ctrl_c(server.shutdown_event(), log.clone()) {
        say!("minihttp: cannot handle Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    let root = files.root().to_owned();
    // Announced once every hub serves: a server that cannot start (out of
    // descriptors for its hubs, say) says so instead.
    let served = server.spawn(files).and_then(|running| {
        // Not after a signal that came while the hubs started: the
        // server is already on its way out. Not `println!`, which panics
        // when stdout is closed (a pipe whose reader left): serving goes
        // on without the line.
        if !running.shutdown_event().is_set() {
            let _ = writeln!(
                std::io::stdout(),
                "Serving {} on http://{addr}/ (Ctrl-C to stop)",
                root.display()
            );
        }
        running.join()
    });
    // The lines still queued are written, for a few seconds at most:
    // stderr may be stalled for good.
    let (last, code) = match served {
        Ok(()) => ("minihttp: stopped".to_string(), ExitCode::SUCCESS),
        Err(e) => (format!("minihttp: {e}"), ExitCode::FAILURE),
    };
    log.finish(last, &log_written, Duration::from_secs(5));
    code
}

/// On SIGINT or SIGTERM, sets `shutdown` (a graceful stop); a second
/// signal exits at once. Its notices go through `log`: a signal is
/// handled whatever state stderr is in.
#[cfg(unix)]
fn on_ctrl_c(shutdown: Arc<sync_prims::Event>, log: Arc<Log>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("minihttp-signals".into())
        .spawn(move || {
            let mut seen = false;
            for _ in signals.forever() {
                if seen {
                    std::process::exit(130);
                }
                seen = true;
                shutdown.set();
                log.line("minihttp: shutting down (finishing requests in flight)".into());
            }
        })?;
    Ok(())
}

/// Without Unix signals, Ctrl-C ends the process the default way.
#[cfg(not(unix))]
fn on_ctrl_c(_shutdown: Arc<sync_prims::Event>, _log: Arc<Log>) -> std::io::Result<()> {
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
            ("[::1]", "::1", 8000),
            ("fe80::1%2", "fe80::1%2", 8000),
            ("[fe80::1%2]:9003", "fe80::1%2", 9003),
            ("0.0.0.0", "0.0.0.0", 8000),
            ("localhost", "localhost", 8000),
        ] {
            let a = p(&["--bind", bind]).unwrap().unwrap();
            assert_eq!((a.bind.as_str(), a.port), (host, port), "{bind}");
        }
        // The short options of `python3 -m http.server`, also with their
        // values attached.
        let a = p(&["-b", "::1", "-d", "site"]).unwrap().unwrap();
        assert_eq!((a.dir, a.bind.as_str()), (PathBuf::from("site"), "::1"));
        let a = p(&["-b::1", "-dsite"]).unwrap().unwrap();
        assert_eq!((a.dir, a.bind.as_str()), (PathBuf::from("site"), "::1"));
        let a = p(&["-b=::1", "-d=site"]).unwrap().unwrap();
        assert_eq!((a.dir, a.bind.as_str()), (PathBuf::from("site"), "::1"));
        assert!(p(&["-hx"]).is_err());
        assert!(p(&["--help=x"]).is_err());
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
            // Bad ports, brackets and hosts: told as such, not looked up.
            &["--bind", "[::1]:99999"],
            &["--bind", "[::1]:abc"],
            &["--bind", "[::1"],
            &["--bind", "[::1]9000"],
            &["--bind", "[localhost]:9000"],
            &["--bind", ":9000"],
            &["--bind", ""],
            &["--bind", "1:2:3"],
            &["--bind", "fe80::1%eth0"],
            &["--bind", "[fe80::1%]:9000"],
            &["--bind", "1.2.3.4%2"],
            &["--bind", "fe80::1%+2"],
            &["-d="],
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
        assert_eq!(a.dir, PathBuf::from(dir.clone()));
        for short in ["-d", "-d="] {
            let mut option = OsString::from(short);
            option.push(&dir);
            let a = parse([option]).unwrap().unwrap();
            assert_eq!(a.dir, PathBuf::from(dir.clone()), "{short}");
        }
        let bad = parse([
            OsString::from("--bind"),
            OsString::from_vec(b"\xff".to_vec()),
        ]);
        assert!(bad.is_err());
        // An option whose attached value is not Unicode is refused, not
        // taken for a directory.
        for option in [&b"-b\xff"[..], b"--bind=\xff", b"--port=\xff", b"-x\xff"] {
            let bad = parse([OsString::from_vec(option.to_vec())]);
            assert!(bad.is_err(), "{}", String::from_utf8_lossy(option));
        }
    }
}
