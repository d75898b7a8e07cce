//! The benchmark runner: `benches AREA [--out FILE]` measures one area and
//! writes its Markdown section (to FILE, or standard output). It exits 1
//! without writing when a measurement failed, and 3 when the area cannot
//! be measured on this machine (FILE then holds `SKIPPED: ` and why).
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

/// The exit status of an area that cannot be measured on this machine.
const SKIP_EXIT: u8 = 3;

/// What starts the `--out` file of a skipped area, before the reason.
const SKIP_MARK: &str = "SKIPPED: ";

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
        other => {
            eprintln!("unknown area `{other}` (sync, coro, rt, io, http)");
            return ExitCode::from(2);
        }
    };
    // A skipped area writes its reason, marked for `cargo xtask bench`, and
    // a failed one nothing: neither replaces recorded figures.
    match harness::outcome() {
        (_, Some(why)) => {
            if let Some(path) = &out {
                let _ = std::fs::write(path, format!("{SKIP_MARK}{why}\n"));
            }
            return ExitCode::from(SKIP_EXIT);
        }
        (true, None) => {
            eprintln!("some measurements failed (above): the section is not written");
            return ExitCode::FAILURE;
        }
        (false, None) => {}
    }
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
