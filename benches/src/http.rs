//! `http`: minihttp's `hello` example against hyper 1.x + tokio and
//! may_minihttp, all driven by `wrk` in interleaved rounds. More rows show
//! what minihttp's connection locality does (`hello --no-locality`), and
//! what the batch scheduling policy does for each server: minihttp with
//! `Server::batch_scheduling`, and may_minihttp with its threads under the
//! same policy.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::harness::{ServerProc, TICKS_PER_SEC, env_or, median, servers};

/// The row of minihttp with its hubs under the batch scheduling policy.
const BATCH: &str = "minihttp, `--batch` (SCHED_BATCH)";
/// The row of minihttp without connection locality.
const NO_LOCALITY: &str = "minihttp, `--no-locality`";
/// The row of may_minihttp under the batch scheduling policy.
const MAY_BATCH: &str = "may_minihttp under SCHED_BATCH";

struct Load {
    name: &'static str,
    connections: u32,
    pipeline: Option<u32>,
}

const LOADS: &[Load] = &[
    Load {
        name: "keep-alive, 64 connections",
        connections: 64,
        pipeline: None,
    },
    Load {
        name: "pipelined depth 16, 64 connections",
        connections: 64,
        pipeline: Some(16),
    },
    Load {
        name: "1,000 connections",
        connections: 1000,
        pipeline: None,
    },
];

const PIPELINE_LUA: &str = r#"
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"#;

#[derive(Default, Clone)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu: f64,
}

pub(crate) fn run() -> String {
    let mut out = String::from("## http: hello-world plaintext\n\n");
    if Command::new("wrk").arg("--version").output().is_err() {
        crate::harness::skip("wrk is not installed (apt-get install wrk adds it)");
        return out;
    }
    let secs: u64 = env_or("BENCH_HTTP_SECS", 5);
    let rounds: usize = env_or("BENCH_HTTP_ROUNDS", 5);
    let script = std::env::temp_dir().join("greenstack-pipeline.lua");
    if let Err(e) = std::fs::write(&script, PIPELINE_LUA) {
        crate::harness::fail(&format!("cannot write the wrk script: {e}"));
        return out;
    }
    let mut servers = servers(
        ("minihttp", "minihttp", "hello"),
        &[
            ("hyper 1.x + tokio", "hyper-hello"),
            ("may_minihttp", "may-hello"),
            (MAY_BATCH, "may-hello-batch"),
        ],
        &mut out,
    );
    // What connection locality does, and what the batch scheduling policy
    // does for minihttp (beside what it does for may_minihttp, above).
    if let Some(ours) = servers.iter().find(|s| s.0 == "minihttp").cloned() {
        for (at, (row, flag)) in [(NO_LOCALITY, "--no-locality"), (BATCH, "--batch")]
            .into_iter()
            .enumerate()
        {
            let mut args = vec![flag.to_string()];
            args.extend(ours.2.iter().cloned());
            servers.insert(1 + at, (row, ours.1.clone(), args));
        }
    }

    // results[server][load] = samples
    let mut results: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); LOADS.len()]; servers.len()];
    let mut peak_rss: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    for round in 0..rounds {
        for (si, spec) in servers.iter().enumerate() {
            let name = spec.0;
            for (li, load) in LOADS.iter().enumerate() {
                // A fresh server per load, so that its peak RSS belongs to it.
                let port = 18080 + ((round * servers.len() + si) * LOADS.len() + li) as u16;
                let server = match ServerProc::start(spec, port) {
                    Ok(s) => s,
                    Err(e) => {
                        crate::harness::fail(&e);
                        continue;
                    }
                };
                eprintln!("round {} {name}: {}", round + 1, load.name);
                let cpu0 = server.cpu_ticks().unwrap_or(0);
                match wrk(port, load, secs, &script) {
                    Ok(mut s) => {
                        let cpu1 = server.cpu_ticks().unwrap_or(cpu0);
                        s.cpu = (cpu1 - cpu0) as f64 / TICKS_PER_SEC / secs as f64;
                        eprintln!(
                            "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, cpu {:.2}",
                            s.rps, s.p50_ms, s.p99_ms, s.cpu
                        );
                        results[si][li].push(s);
                    }
                    Err(e) => crate::harness::fail(&format!("{name}: wrk failed: {e}")),
                }
                if li + 1 == LOADS.len() {
                    if let Some(kib) = server.peak_rss_kib() {
                        peak_rss[si].push(kib as f64 / 1024.0);
                    }
                }
                drop(server);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    let _ = writeln!(
        out,
        "`wrk -t2 -d{secs}s --latency` against each server on 127.0.0.1, {rounds} interleaved rounds, a fresh server per \
         load; medians over the rounds. wrk and the server share the machine's cores. The ratio column is \
         requests/s against hyper (above 1 = more requests served). CPU is the server's CPU time per second \
         of load (cores busy). Every server runs with its defaults, but hyper with `pipeline_flush` and \
         `TCP_NODELAY` on (its best settings for these loads), may_minihttp with one worker per core set, \
         and three rows: \"{NO_LOCALITY}\" \
         turns off `Server::connection_locality` (each connection served by the hub pinned to the CPU that \
         processes its packets, the hubs kept even), and \"{BATCH}\" and \"{MAY_BATCH}\" run their threads \
         under the batch scheduling policy, where a woken thread does not preempt the one on its CPU (`wrk`, \
         here).\n"
    );
    let base = servers.iter().position(|s| s.0.starts_with("hyper"));
    for (li, load) in LOADS.iter().enumerate() {
        let _ = writeln!(
            out,
            "### {}\n\n| server | req/s | ratio to hyper | p50 ms | p99 ms | server CPU |\n|---|---:|---:|---:|---:|---:|",
            load.name
        );
        // Medians of the figures wrk gave (see `wrk`).
        let med = |si: usize, f: fn(&Sample) -> f64| {
            median(
                results[si][li]
                    .iter()
                    .map(f)
                    .filter(|v| !v.is_nan())
                    .collect(),
            )
        };
        let base_rps = base.map_or(f64::NAN, |b| med(b, |s| s.rps));
        for (si, (name, ..)) in servers.iter().enumerate() {
            let rps = med(si, |s| s.rps);
            // A p99 that wrk gave in no round (see `wrk`) is no figure.
            let p99 = match med(si, |s| s.p99_ms) {
                v if v.is_nan() => "n/a".to_string(),
                v => format!("{v:.2}"),
            };
            let _ = writeln!(
                out,
                "| {name} | {rps:.0} | {:.2}x | {:.2} | {p99} | {:.2} |",
                rps / base_rps,
                med(si, |s| s.p50_ms),
                med(si, |s| s.cpu)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "### Server peak RSS under the 1,000-connection load\n\n| server | MiB | ratio to hyper |\n|---|---:|---:|"
    );
    let base_rss = base.map_or(f64::NAN, |b| median(peak_rss[b].clone()));
    for (si, (name, ..)) in servers.iter().enumerate() {
        let m = median(peak_rss[si].clone());
        let _ = writeln!(out, "| {name} | {m:.1} | {:.2}x |", m / base_rss);
    }
    out
}

fn wrk(port: u16, load: &Load, secs: u64, script: &std::path::Path) -> Result<Sample, String> {
    let mut cmd = String::from("ulimit -n 65536 2>/dev/null; exec wrk");
    let _ = write!(
        cmd,
        " -t2 -c{} -d{secs}s --timeout 5s --latency",
        load.connections
    );
    if let Some(depth) = load.pipeline {
        let _ = write!(
            cmd,
            " -s {} http://127.0.0.1:{port}/ -- {depth}",
            script.display()
        );
    } else {
        let _ = write!(cmd, " http://127.0.0.1:{port}/");
    }
    let output = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{cmd}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| parse_ms(v.trim()))
            .unwrap_or(f64::NAN)
    };
    if text.contains("Non-2xx") {
        // Error answers are not served requests.
        return Err(format!(
            "non-2xx answers: {}",
            text.lines()
                .find(|l| l.contains("Non-2xx"))
                .unwrap_or_default()
                .trim()
        ));
    }
    if text.contains("Socket errors") {
        // Timeouts of a few connections under the 1,000-connection load;
        // counted by wrk apart from the requests served.
        eprintln!(
            "  note: {}",
            text.lines()
                .filter(|l| l.contains("Socket errors"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let (p50_ms, mut p99_ms) = (pct("50%"), pct("99%"));
    if p99_ms < p50_ms {
        // wrk sometimes prints `0.00us` for a percentile of a pipelined
        // load: not a figure, and left out of the medians.
        eprintln!("  note: wrk printed a p99 below its p50; ignored");
        p99_ms = f64::NAN;
    }
    Ok(Sample {
        rps,
        p50_ms,
        p99_ms,
        cpu: 0.0,
    })
}

/// Parses wrk's latency figures: `812.00us`, `1.25ms`, `2.01s`.
fn parse_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}
