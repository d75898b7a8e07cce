//! The benchmark runner: `benches AREA [--out FILE]` measures one area and
//! writes its Markdown section (to FILE, or standard output).
//! `benches echo-load PORT CONNS SECS` puts the echo load of the `io` area
//! on a server started by hand (for profiling it).
//! `cargo xtask bench` runs every area and splices the sections into
//! `BENCHMARKS.md`.

mod coro;
mod harness;
mod http;
mod io;
mod rt;
mod servers;
mod sync;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return servers::serve(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("echo-load") {
        return io::load(&args[1..]);
    }
    let Some(area) = args.first() else {
        eprintln!("usage: benches AREA [--out FILE]");
        return ExitCode::from(2);
    };
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => match args.get(i + 1) {
            Some(f) => Some(f.clone()),
            None => {
                eprintln!("--out needs a file name");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let section = match area.as_str() {
        "sync" => sync::run(),
        "http" => http::run(),
        "io" => io::run(),
        "coro" => coro::run(),
        "rt" => rt::run(),
        other => format!(
            "## {other}\n\nNot measured yet: the `{other}` benchmarks arrive with their layer.\n"
        ),
    };
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, &section) {
                eprintln!("cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => print!("{section}"),
    }
    ExitCode::SUCCESS
}
