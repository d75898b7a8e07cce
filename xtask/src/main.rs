//! `cargo xtask ci`: every check the project has, in one command.
//! `cargo xtask bench [AREA...]`: runs the side-by-side benchmarks and rewrites
//! their sections of `BENCHMARKS.md`.
//!
//! Every command is printed before it runs; the first failure stops the run.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Crates whose `unsafe` code is checked under miri when it is installed.
const MIRI_CRATES: &[&str] = &["sync-prims", "coro", "greenrt"];

/// Crates whose loom models run under `--cfg loom`.
const LOOM_CRATES: &[&str] = &["sync-prims"];

/// The longest any one step may run; past it, the step is killed and
/// fails (every check here takes minutes on two cores).
const STEP_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Benchmark areas known to the `benches` member, in the order they run.
const BENCH_AREAS: &[&str] = &["sync", "coro", "rt", "io", "http"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if let Err(e) = env::set_current_dir(workspace_root()) {
        eprintln!("xtask: cannot enter the workspace root: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.first().map(String::as_str) {
        Some("ci") if args.len() == 1 => ci(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci              run every check\n       \
                 cargo xtask bench [AREA...]  run benchmarks ({}) and update BENCHMARKS.md",
                BENCH_AREAS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this package's directory, as
/// `cargo run` gives it at run time (a binary built in another checkout
/// and reused, or copied with its target directory, would otherwise work
/// on that checkout), or as it was at build time.
fn workspace_root() -> PathBuf {
    // Only this package's directory: xtask may itself run under another
    // package's `cargo run` or `cargo test`, whose variable it inherits.
    let manifest = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.ends_with("xtask") && dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}

/// One step of a run: its name and how it ended.
struct Step {
    name: String,
    outcome: Outcome,
    secs: f64,
}

enum Outcome {
    Passed,
    Skipped(String),
}

struct Run {
    /// What the closing line calls the run (`ci`, `bench`).
    label: &'static str,
    steps: Vec<Step>,
}

impl Run {
    fn new(label: &'static str) -> Self {
        Run {
            label,
            steps: Vec::new(),
        }
    }

    /// Runs `cmd`, printing it first; a failure ends the whole run.
    fn step(&mut self, name: &str, cmd: &mut Command) -> Result<(), String> {
        self.run_step(name, cmd, None::<fn() -> String>).map(drop)
    }

    /// Runs `cmd` like [`step`](Run::step), except that exit status 3
    /// means "cannot run on this machine": the step is skipped with the
    /// reason `why()` gives, and the result is `Ok(false)`.
    fn step_or_skip(
        &mut self,
        name: &str,
        cmd: &mut Command,
        why: impl FnOnce() -> String,
    ) -> Result<bool, String> {
        self.run_step(name, cmd, Some(why))
    }

    /// The two above: `Ok(true)` when the step passed.
    fn run_step(
        &mut self,
        name: &str,
        cmd: &mut Command,
        skip: Option<impl FnOnce() -> String>,
    ) -> Result<bool, String> {
        println!("\n$ {}", render(cmd));
        let start = Instant::now();
        let status = match run_bounded(cmd, STEP_LIMIT) {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.summary(Some(name));
                return Err(format!(
                    "step `{name}` ran longer than {} minutes and was stopped",
                    STEP_LIMIT.as_secs() / 60
                ));
            }
            Err(e) => {
                self.summary(Some(name));
                return Err(format!(
                    "step `{name}`: cannot start {:?}: {e}",
                    cmd.get_program()
                ));
            }
        };
        if let (Some(why), Some(3)) = (skip, status.code()) {
            self.skip(name, &why());
            return Ok(false);
        }
        if !status.success() {
            self.summary(Some(name));
            return Err(format!("step `{name}` failed ({status})"));
        }
        self.steps.push(Step {
            name: name.to_string(),
            outcome: Outcome::Passed,
            secs: start.elapsed().as_secs_f64(),
        });
        Ok(true)
    }

    fn skip(&mut self, name: &str, why: &str) {
        println!("\n# skipped {name}: {why}");
        self.steps.push(Step {
            name: name.to_string(),
            outcome: Outcome::Skipped(why.to_string()),
            secs: 0.0,
        });
    }

    fn summary(&self, failed: Option<&str>) {
        println!("\n== summary ==");
        for s in &self.steps {
            match &s.outcome {
                Outcome::Passed => println!("  ok      {:<28} {:>7.1}s", s.name, s.secs),
                Outcome::Skipped(why) => println!("  skipped {:<28} ({why})", s.name),
            }
        }
        if let Some(f) = failed {
            println!("  FAILED  {f}");
        }
        let passed = self
            .steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Passed))
            .count();
        let skipped = self.steps.len() - passed;
        println!(
            "{}: {passed} passed, {} failed, {skipped} skipped",
            self.label,
            usize::from(failed.is_some())
        );
    }
}

/// `cmd` as a shell line that runs it again when pasted.
fn render(cmd: &Command) -> String {
    let mut s = String::new();
    let removed: Vec<_> = cmd.get_envs().filter(|(_, v)| v.is_none()).collect();
    if !removed.is_empty() {
        s.push_str("env");
        for (k, _) in removed {
            s.push_str(&format!(" -u {}", quote(&k.to_string_lossy())));
        }
        s.push(' ');
    }
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!(
                "{}={} ",
                k.to_string_lossy(),
                quote(&v.to_string_lossy())
            ));
        }
    }
    s.push_str(&quote(&cmd.get_program().to_string_lossy()));
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&quote(&a.to_string_lossy()));
    }
    s
}

/// `word` quoted for a POSIX shell where it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The workspace's target directory, as cargo resolves it
/// (`CARGO_TARGET_DIR`, `build.target-dir`, else `target`): from
/// `cargo metadata`, printed like any other command.
fn target_dir() -> Result<PathBuf, String> {
    let mut cmd = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    println!("$ {}  (probe)", render(&cmd));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed ({})", out.status));
    }
    let json = String::from_utf8_lossy(&out.stdout);
    json_string_field(&json, "target_directory")
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata gave no target_directory".to_string())
}

/// The value of the first string field `name` in `json` (escapes undone),
/// without a JSON library for one field.
fn json_string_field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":");
    let rest = json[json.find(&key)? + key.len()..].trim_start();
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut value = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                'b' => value.push('\u{8}'),
                'f' => value.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => value.push(c),
            },
            c => value.push(c),
        }
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    c
}

/// Runs `cmd` for at most `limit`: its exit status, or `None` when it was
/// still running then (it is killed).
fn run_bounded(
    cmd: &mut Command,
    limit: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            // Its own children first (cargo's rustc and test processes),
            // which killing cargo would leave running.
            let pids: Vec<String> = descendants(child.id()).iter().map(u32::to_string).collect();
            if !pids.is_empty() {
                let _ = Command::new("kill").arg("-KILL").args(&pids).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The processes below `pid`, from `/proc` (none where there is no
/// `/proc`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // `PID (COMMAND) STATE PPID ...`; the command may hold spaces and
        // parentheses, so the fields are read after its last `)`.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|f| f.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// How many tests `cmd`, a `cargo test ... -- FILTER --list`, lists
/// (printed, its listing read from a file of its own rather than a pipe,
/// which a long listing could fill while nothing reads it).
fn listed_tests(cmd: &mut Command, name: &str) -> Result<usize, String> {
    println!("\n$ {}", render(cmd));
    let path = env::temp_dir().join(format!("xtask-list-{}-{name}.txt", std::process::id()));
    let file =
        fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let status = run_bounded(cmd.stdout(file), STEP_LIMIT);
    let text = fs::read_to_string(&path);
    let _ = fs::remove_file(&path);
    match status {
        Ok(Some(s)) if s.success() => {}
        Ok(Some(s)) => return Err(format!("listing the tests of {name} failed ({s})")),
        Ok(None) => return Err(format!("listing the tests of {name} did not end")),
        Err(e) => return Err(format!("cannot start {:?}: {e}", cmd.get_program())),
    }
    let text = text.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(count_listed(&text))
}

/// The tests in a libtest `--list` output: one line `PATH: test` each
/// (benchmarks say `: bench`, and the summary line neither).
fn count_listed(listing: &str) -> usize {
    listing.lines().filter(|l| l.ends_with(": test")).count()
}

/// Whether `cmd` runs and succeeds (a probe: printed, its output hidden).
fn has(cmd: &mut Command) -> bool {
    println!("$ {}  (probe)", render(cmd));
    run_bounded(
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        Duration::from_secs(60),
    )
    .is_ok_and(|s| s.is_some_and(|s| s.success()))
}

/// Whether the toolchain has `component` (`cargo fmt`, `cargo clippy`),
/// adding it with rustup when it is missing.
fn component(cargo_sub: &str, component: &str) -> bool {
    if has(&mut cargo(&[cargo_sub, "--version"])) {
        return true;
    }
    rustup_add(&[component]);
    has(&mut cargo(&[cargo_sub, "--version"]))
}

/// Runs `rustup component add ARGS` (components, and which toolchain),
/// printed, bounded at ten minutes; whether it worked is for the caller's
/// probe to say.
fn rustup_add(args: &[&str]) {
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add"]).args(args);
    println!("\n$ {}", render(&cmd));
    let _ = run_bounded(&mut cmd, Duration::from_secs(10 * 60));
}

/// The library crates under `crates/`, by package name.
fn crate_names() -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let dir = fs::read_dir("crates").map_err(|e| format!("cannot list crates/: {e}"))?;
    for entry in dir {
        let path = entry.map_err(|e| e.to_string())?.path().join("Cargo.toml");
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| format!("{}: no package name", path.display()))?;
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

/// Whether a `.rs` or `.md` file under `dir` has a `compile_fail` doc
/// test that names an error code (an unreadable entry counts as none).
fn names_an_error_code(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return path.file_name() != Some("target".as_ref()) && names_an_error_code(&path);
        }
        let source = matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "md"));
        source && fs::read_to_string(&path).is_ok_and(|text| text.contains("```compile_fail,E"))
    })
}

const MISSING_RUSTFMT: &str =
    "rustfmt is not installed and rustup could not add it (`rustup component add rustfmt`)";
const MISSING_CLIPPY: &str =
    "clippy is not installed and rustup could not add it (`rustup component add clippy`)";

fn ci() -> Result<(), String> {
    let mut run = Run::new("ci");
    // The builds with other flags (loom's cfg, nightly, miri) go to
    // directories of their own under it, so that none rebuilds another's.
    let target = target_dir()?;
    let nextest = has(cargo(&["nextest", "--version"]).env_remove("RUSTFLAGS"));

    let fmt = component("fmt", "rustfmt");
    let clippy = component("clippy", "clippy");
    if fmt {
        run.step("fmt", &mut cargo(&["fmt", "--all", "--check"]))?;
    } else {
        run.skip("fmt", MISSING_RUSTFMT);
    }
    if clippy {
        run.step(
            "clippy",
            &mut cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    } else {
        run.skip("clippy", MISSING_CLIPPY);
    }
    if nextest {
        run.step(
            "tests (nextest)",
            &mut cargo(&[
                "nextest",
                "run",
                "--workspace",
                "--exclude",
                "benches",
                "--no-fail-fast",
            ]),
        )?;
    } else {
        println!("\n# cargo-nextest is not installed; using cargo test");
        run.step(
            "tests",
            &mut cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "benches",
                "--lib",
                "--bins",
                "--tests",
                "--examples",
            ]),
        )?;
    }
    run.step(
        "doc tests",
        &mut cargo(&["test", "--workspace", "--exclude", "benches", "--doc"]),
    )?;
    // The unit tests of the benchmark runner (the harness's medians,
    // ratios and tables), which would otherwise never run: a build of the
    // peers too, but no benchmark. No filter, which a rename would make
    // match nothing.
    run.step(
        "benches unit tests",
        &mut cargo(&["test", "-p", "benches", "--bin", "benches"]),
    )?;
    for name in crate_names()? {
        // Built alone, a crate gets only the features it asks for itself: this
        // proves that it does not lean on a sibling's feature unification.
        let step = format!("{name} alone");
        if nextest {
            run.step(&step, &mut cargo(&["nextest", "run", "-p", &name]))?;
        } else {
            run.step(&step, &mut cargo(&["test", "-p", &name]))?;
        }
    }
    // The library without the command (`--no-default-features`), as a
    // dependent that does not want signal-hook builds it: with clippy's
    // lints, or else at least rustc's warnings (denied for this crate
    // only, as `cargo rustc` passes them: RUSTFLAGS would rebuild the
    // others).
    let lint = if clippy { "clippy" } else { "rustc" };
    run.step(
        "minihttp library alone",
        &mut cargo(&[
            lint,
            "-p",
            "minihttp",
            "--no-default-features",
            "--lib",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run.step(
        "docs",
        // An inherited encoded form would take precedence over it.
        cargo(&["doc", "--workspace", "--exclude", "benches", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings")
            .env_remove("CARGO_ENCODED_RUSTDOCFLAGS"),
    )?;
    for name in LOOM_CRATES {
        let loom = |args: &[&str]| {
            let mut c = cargo(args);
            c.env("RUSTFLAGS", "--cfg loom")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env("CARGO_TARGET_DIR", target.join("loom"));
            c
        };
        // The models are compiled only under the cfg, so the lints above
        // never saw them.
        if clippy {
            run.step(
                &format!("clippy {name} under loom"),
                &mut loom(&[
                    "clippy", "-p", name, "--lib", "--tests", "--", "-D", "warnings",
                ]),
            )?;
        } else {
            run.skip(&format!("clippy {name} under loom"), MISSING_CLIPPY);
        }
        let step = format!("loom {name}");
        let models = ["test", "--release", "-p", name, "--lib", "--", "loom"];
        // A filter that matches nothing passes: a renamed model, or a cfg
        // that no longer compiles them in, would go unnoticed.
        let listed = listed_tests(&mut loom(&[&models[..], &["--list"]].concat()), name);
        let error = match listed {
            Ok(0) => Some(format!(
                "step `{step}`: no test of {name} matches `loom` under `--cfg loom`"
            )),
            Ok(n) => {
                println!("# {n} loom models in {name}");
                None
            }
            Err(e) => Some(format!("step `{step}`: {e}")),
        };
        if let Some(e) = error {
            run.summary(Some(&step));
            return Err(e);
        }
        run.step(&step, loom(&models).env("LOOM_MAX_PREEMPTIONS", "3"))?;
    }
    // Stable rustdoc only checks that a `compile_fail` example fails;
    // nightly also checks that it fails with the error code it names, so
    // that an example which stops compiling for another reason (a renamed
    // item) fails here rather than pass unnoticed.
    let coded: Vec<String> = crate_names()?
        .into_iter()
        .filter(|name| names_an_error_code(&Path::new("crates").join(name)))
        .collect();
    if coded.is_empty() {
        run.skip(
            "compile_fail error codes (nightly)",
            "no `compile_fail` doc test names an error code",
        );
    } else if has_nightly() {
        let mut doc = Command::new("cargo");
        doc.args(["+nightly", "test", "--doc"]);
        for name in &coded {
            doc.args(["-p", name]);
        }
        run.step(
            "compile_fail error codes (nightly)",
            doc.env("CARGO_TARGET_DIR", target.join("nightly")),
        )?;
    } else {
        run.skip(
            "compile_fail error codes (nightly)",
            "no nightly toolchain here (`rustup toolchain install nightly` adds it); \
             stable's doc tests still check that each example fails to compile",
        );
    }
    let miri = miri_available();
    for name in MIRI_CRATES {
        if miri {
            run.step(
                &format!("miri {name}"),
                Command::new("cargo")
                    .args(["+nightly", "miri", "test", "-p", name, "--lib", "--tests"])
                    .env(
                        "MIRIFLAGS",
                        "-Zmiri-strict-provenance -Zmiri-disable-isolation",
                    )
                    .env("PROPTEST_CASES", "4")
                    .env("CARGO_TARGET_DIR", target.join("miri")),
            )?;
        } else {
            run.skip(
                &format!("miri {name}"),
                "no nightly toolchain with miri here (`rustup toolchain install nightly --component miri,rust-src` adds it)",
            );
        }
    }
    run.summary(None);
    Ok(())
}

/// Whether a nightly toolchain is installed.
fn has_nightly() -> bool {
    has(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]))
}

/// Whether `cargo +nightly miri` works, installing the component when a
/// nightly toolchain is present without it.
fn miri_available() -> bool {
    if has(Command::new("cargo").args(["+nightly", "miri", "--version"])) {
        return true;
    }
    if !has_nightly() {
        return false;
    }
    rustup_add(&["--toolchain", "nightly", "miri", "rust-src"]);
    has(Command::new("cargo").args(["+nightly", "miri", "--version"]))
}

fn bench(areas: &[String]) -> Result<(), String> {
    let areas: Vec<&str> = if areas.is_empty() {
        BENCH_AREAS.to_vec()
    } else {
        for a in areas {
            if !BENCH_AREAS.contains(&a.as_str()) {
                return Err(format!(
                    "unknown bench area `{a}` (known: {})",
                    BENCH_AREAS.join(", ")
                ));
            }
        }
        areas.iter().map(String::as_str).collect()
    };
    let mut run = Run::new("bench");
    let mut updated: Vec<&str> = Vec::new();
    // Where the build below puts the runner (and the servers it starts,
    // which it finds beside itself), wherever cargo is told to build.
    let target = target_dir()?;
    let runner = target.join("release").join("benches");
    let out_dir = target.join("bench");
    let out_dir = out_dir.as_path();
    fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    run.step(
        "build benches",
        // The runner and peer servers, and our servers (examples of their
        // crates, which building `benches` alone does not build).
        &mut cargo(&[
            "build",
            "--release",
            "-p",
            "benches",
            "-p",
            "minihttp",
            "-p",
            "greenrt",
            "--bins",
            "--example",
            "hello",
            "--example",
            "echo_server",
        ]),
    )?;
    for area in &areas {
        let file = out_dir.join(format!("{area}.md"));
        let _ = fs::remove_file(&file);
        // Under a raised open-file limit: the io area holds 10,000 client
        // connections open (its servers raise their own).
        let measured = run.step_or_skip(
            &format!("bench {area}"),
            Command::new("sh")
                .args(["-c", "ulimit -n 65536 2>/dev/null; exec \"$0\" \"$@\""])
                .arg(&runner)
                .args([area, "--out"])
                .arg(&file),
            || {
                fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| t.strip_prefix("SKIPPED: ").map(|w| w.trim().to_string()))
                    .unwrap_or_else(|| "cannot be measured here".to_string())
            },
        )?;
        if measured {
            let section =
                fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            // Under the section's heading, where it belongs when rendered.
            let section = match section.split_once('\n') {
                Some((heading, rest)) if heading.starts_with("## ") => {
                    format!("{heading}\n\n{}{rest}", provenance(area))
                }
                _ => format!("{}\n{section}", provenance(area)),
            };
            update_section("BENCHMARKS.md", area, &section)?;
            updated.push(*area);
        }
    }
    run.summary(None);
    if updated.is_empty() {
        println!("BENCHMARKS.md unchanged");
    } else {
        println!("BENCHMARKS.md updated ({})", updated.join(", "));
    }
    Ok(())
}

/// Where a section's figures come from: the command, the commit (and
/// whether the tree had changes), the cores; so that a file that mixes
/// sections of several runs says which is which.
fn provenance(area: &str) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit =
        git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "an unknown commit".into());
    // BENCHMARKS.md itself changes as a run writes it.
    let changed = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!BENCHMARKS.md",
    ])
    .is_some_and(|s| !s.is_empty());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "_`cargo xtask bench {area}` at {commit}{}, {cores} cores._\n",
        if changed {
            " with uncommitted changes"
        } else {
            ""
        }
    )
}

/// Replaces the text between `<!-- bench:AREA -->` and `<!-- /bench:AREA -->`
/// in `path`, appending the section when it is not there yet.
fn update_section(path: &str, area: &str, body: &str) -> Result<(), String> {
    let open = format!("<!-- bench:{area} -->");
    let close = format!("<!-- /bench:{area} -->");
    // Only a file that is not there starts afresh: one that cannot be read
    // (not UTF-8, say) would be written over, its other sections lost.
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "# Benchmarks\n\nRegenerated by `cargo xtask bench`; every figure stands beside its \
             peer measured in the same run.\n"
                .to_string()
        }
        Err(e) => return Err(format!("cannot read {path}: {e}")),
    };
    let block = format!("{open}\n{}\n{close}", body.trim_end());
    let new = match (old.find(&open), old.find(&close)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &old[..a], &old[b + close.len()..]),
        (None, None) => format!("{}\n\n{block}\n", old.trim_end()),
        // A marker without its pair: appending would leave two blocks,
        // and the next run would take what lies between them for one.
        _ => {
            return Err(format!(
                "{path}: `{open}` and `{close}` do not enclose a section; mend the markers"
            ));
        }
    };
    fs::write(path, new).map_err(|e| format!("cannot write {path}: {e}"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Whether process `pid` still runs (a zombie has ended).
    fn running(pid: &str) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().to_string())
            })
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    #[test]
    fn listed_tests_are_counted() {
        let listing =
            "loom_tests::a: test\nloom_tests::b: test\nx: bench\n\n2 tests, 1 benchmark\n";
        assert_eq!(count_listed(listing), 2);
        assert_eq!(count_listed("\n0 tests, 0 benchmarks\n"), 0);
    }

    #[test]
    fn commands_are_printed_as_they_can_be_pasted() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo 'hi'", "x y"])
            .env("RUSTFLAGS", "--cfg loom");
        assert_eq!(
            render(&c),
            r#"RUSTFLAGS='--cfg loom' sh -c 'echo '\''hi'\''' 'x y'"#
        );
        c.env_remove("CARGO_TARGET_DIR");
        assert!(render(&c).starts_with("env -u CARGO_TARGET_DIR RUSTFLAGS='--cfg loom' sh"));
    }

    #[test]
    fn a_section_is_replaced_and_broken_markers_are_refused() {
        let path = env::temp_dir().join(format!("xtask-bench-{}.md", std::process::id()));
        let p = path.to_str().unwrap();
        fs::write(
            &path,
            "# B\n\n<!-- bench:a -->\nold\n<!-- /bench:a -->\nkept\n",
        )
        .unwrap();
        update_section(p, "a", "new").unwrap();
        update_section(p, "b", "added").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# B\n\n<!-- bench:a -->\nnew\n<!-- /bench:a -->\nkept\n\n<!-- bench:b -->\nadded\n<!-- /bench:b -->\n"
        );
        fs::write(&path, "<!-- bench:a -->\nno end\n").unwrap();
        assert!(update_section(p, "a", "new").is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "<!-- bench:a -->\nno end\n"
        );
        // A file that cannot be read as text is refused, not written over.
        let latin1 = b"# B\n\n5 \xb5s\n<!-- bench:a -->\nold\n<!-- /bench:a -->\n";
        fs::write(&path, latin1).unwrap();
        assert!(update_section(p, "a", "new").is_err());
        assert_eq!(fs::read(&path).unwrap(), latin1);
        // One that is not there is made.
        let _ = fs::remove_file(&path);
        update_section(p, "a", "new").unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .ends_with("<!-- bench:a -->\nnew\n<!-- /bench:a -->\n")
        );
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn a_string_field_is_read_from_cargo_metadata() {
        let json = r#"{"packages":[],"target_directory":"/a \"b\"\\c\u00e9\r","version":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some("/a \"b\"\\c\u{e9}\r")
        );
        assert_eq!(json_string_field(json, "workspace_root"), None);
    }

    #[test]
    fn a_step_past_its_limit_is_stopped_with_its_children() {
        let file = env::temp_dir().join(format!("xtask-child-{}", std::process::id()));
        let _ = fs::remove_file(&file);
        let script = format!("sleep 60 & echo $! > {}; wait", file.display());
        let status = run_bounded(
            Command::new("sh").args(["-c", &script]),
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(status.is_none(), "stopped at its limit");
        let pid = fs::read_to_string(&file).unwrap();
        let pid = pid.trim();
        let _ = fs::remove_file(&file);
        // A killed process ends soon after the signal, not at once: a
        // loose bound (the child would otherwise sleep a minute).
        let deadline = Instant::now() + Duration::from_secs(20);
        while running(pid) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!running(pid), "the step's child {pid} was left running");
    }

    #[test]
    fn a_step_within_its_limit_gives_its_status() {
        let ok = run_bounded(&mut Command::new("true"), Duration::from_secs(60)).unwrap();
        assert!(ok.is_some_and(|s| s.success()));
        let no = run_bounded(&mut Command::new("false"), Duration::from_secs(60)).unwrap();
        assert!(no.is_some_and(|s| !s.success()));
    }
}
