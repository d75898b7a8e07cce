//! `io`: greenrt's `echo_server` example against the same echo server on
//! tokio, both single-threaded, driven by one client (tokio, in this
//! process) in interleaved rounds.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{ServerProc, TICKS_PER_SEC, env_or, median, servers};

const MSG: usize = 64;
/// Idle connections held open beside the active one in the last figure.
const IDLE: usize = 10_000;

pub(crate) fn run() -> String {
    let mut out = String::from("## io: echo server\n\n");
    let secs: u64 = env_or("BENCH_IO_SECS", 3);
    let rounds = 5;
    let servers = servers(
        ("greenrt (one hub)", "greenrt", "echo_server"),
        &[("tokio (current-thread)", "tokio-echo")],
        &mut out,
    );
    let figures = [
        "round trips/s, 1 connection",
        "round trips/s, 64 connections",
        "accepts/s (connect, 1-byte echo, close)",
        "round trips/s, 1 active connection beside 10,000 idle ones",
        "server CPU per round trip, 64 connections (us; lower is better)",
    ];
    let mut res: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); figures.len()]; servers.len()];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    for round in 0..rounds {
        for (si, spec) in servers.iter().enumerate() {
            let name = spec.0;
            let port = 19000 + (round * 8 + si) as u16;
            let server = match ServerProc::start(spec, port) {
                Ok(s) => s,
                Err(e) => {
                    crate::harness::fail(&e);
                    continue;
                }
            };
            let d = Duration::from_secs(secs);
            let r1 = rt.block_on(echo_rate(port, 1, d));
            let t0 = server.cpu_ticks();
            let r64 = rt.block_on(echo_rate(port, 64, d));
            // The server's CPU time (user + system) per round trip: what
            // the round trip costs it, apart from the client's share.
            let cpu = match (t0, server.cpu_ticks()) {
                (Some(a), Some(b)) => {
                    (b - a) as f64 / TICKS_PER_SEC * 1e6 / (r64 * d.as_secs_f64())
                }
                _ => f64::NAN,
            };
            let acc = rt.block_on(accept_rate(port, 4, d));
            let idle = rt.block_on(beside_idle(port, d));
            eprintln!(
                "round {} {name}: 1 conn {r1:.0}/s, 64 conns {r64:.0}/s, accept {acc:.0}/s, 1 beside {IDLE} idle {idle:.0}/s",
                round + 1
            );
            for (fi, v) in [r1, r64, acc, idle, cpu].into_iter().enumerate() {
                res[si][fi].push(v);
            }
            drop(server);
        }
    }
    let _ = writeln!(
        out,
        "{MSG}-byte messages; each figure runs {secs} s; medians of {rounds} interleaved rounds, a fresh server \
         process per round. Higher is better but where a row says otherwise; the ratio is against tokio.\n\n| figure | {} |\n|---|{}",
        servers.iter().map(|s| s.0).collect::<Vec<_>>().join(" | "),
        "---:|".repeat(servers.len())
    );
    let base = servers.len() - 1;
    for (fi, f) in figures.iter().enumerate() {
        let b = median(res[base][fi].clone());
        let cells: Vec<String> = (0..servers.len())
            .map(|si| {
                let m = median(res[si][fi].clone());
                let digits = if m < 100.0 { 2 } else { 0 };
                if si == base {
                    format!("{m:.digits$}")
                } else {
                    format!("{m:.digits$} ({:.2}x)", m / b)
                }
            })
            .collect();
        let _ = writeln!(out, "| {f} | {} |", cells.join(" | "));
    }
    out
}

/// `benches echo-load PORT CONNS SECS`: the echo load against a server
/// started by hand; prints round trips per second.
pub(crate) fn load(args: &[String]) -> std::process::ExitCode {
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let (Some(port), Some(conns), Some(secs)) = (num(0), num(1), num(2)) else {
        eprintln!("usage: benches echo-load PORT CONNS SECS");
        return std::process::ExitCode::from(2);
    };
    let (Ok(port), Ok(conns)) = (u16::try_from(port), usize::try_from(conns)) else {
        eprintln!("port or connection count out of range");
        return std::process::ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let rate = rt.block_on(echo_rate(port, conns, Duration::from_secs(secs)));
    println!("{rate:.0} round trips/s");
    std::process::ExitCode::SUCCESS
}

/// Round trips per second over `conns` connections, each echoing one
/// message at a time, for `d`.
async fn echo_rate(port: u16, conns: usize, d: Duration) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (count, stop) = (count.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => s,
                Err(e) => return crate::harness::fail(&format!("echo connection: {e}")),
            };
            let _ = s.set_nodelay(true);
            let msg = [7u8; MSG];
            let mut buf = [0u8; MSG];
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&msg).await.is_err() || s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    join_bounded(tasks).await;
    count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

/// Waits for the client tasks of a measurement, each for at most
/// [`STALL`]: a server that stops answering fails the measurement instead
/// of hanging the run.
async fn join_bounded(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout(STALL, t).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => crate::harness::fail(&format!("client task: {e}")),
            Err(_) => {
                abort.abort();
                crate::harness::fail("a connection stalled: the server stopped answering");
            }
        }
    }
}

/// How long a client task may outlive its measurement.
const STALL: Duration = Duration::from_secs(10);

/// Round trips per second on one connection while `IDLE` others stay open.
async fn beside_idle(port: u16, d: Duration) -> f64 {
    let mut idle = Vec::with_capacity(IDLE);
    while idle.len() < IDLE {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(c) => idle.push(c),
            Err(e) => {
                crate::harness::fail(&format!("idle connection {}: {e}", idle.len()));
                return f64::NAN;
            }
        }
    }
    echo_rate(port, 1, d).await
}

/// Connections per second: `par` tasks each connect, echo one byte, close.
async fn accept_rate(port: u16, par: usize, d: Duration) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + d;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..par {
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut s = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(s) => s,
                    Err(e) => return crate::harness::fail(&format!("accept connection: {e}")),
                };
                let mut b = [0u8; 1];
                if s.write_all(b"x").await.is_err() || s.read_exact(&mut b).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    join_bounded(tasks).await;
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
