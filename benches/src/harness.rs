//! A small timing harness: medians of several samples, and Markdown tables of
//! figures beside their peers.

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set when a measurement could not be taken: the area's section is then
/// not written (a table with holes must not replace recorded figures).
static FAILED: AtomicBool = AtomicBool::new(false);

/// Why the area cannot be measured on this machine, if it cannot.
static SKIPPED: Mutex<Option<String>> = Mutex::new(None);

/// Records a measurement that could not be taken.
pub(crate) fn fail(what: &str) {
    eprintln!("FAILED: {what}");
    FAILED.store(true, Ordering::Relaxed);
}

/// Records that the area cannot be measured here, and why.
pub(crate) fn skip(why: &str) {
    eprintln!("skipped: {why}");
    *SKIPPED.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
}

/// Whether a measurement failed, and why the area was skipped if it was.
pub(crate) fn outcome() -> (bool, Option<String>) {
    (
        FAILED.load(Ordering::Relaxed),
        SKIPPED.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    )
}

/// Samples taken of each figure; the median is reported.
pub(crate) const SAMPLES: usize = 7;

/// A timed loop: runs the given number of operations and returns how long
/// they took (a [`sampler`], or any loop of its own; see
/// [`medians_interleaved`]).
pub(crate) type Timed<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Samples `rows` in turn ([`medians_interleaved`]), `iters` operations a
/// sample, into `t`: one row per name, in the order given.
pub(crate) fn interleaved<const R: usize>(t: &mut Table, iters: u64, rows: [(&str, Timed<'_>); R]) {
    let (names, mut timed): (Vec<&str>, Vec<Timed<'_>>) = rows.into_iter().unzip();
    for (name, ns) in names
        .into_iter()
        .zip(medians_interleaved(iters, &mut timed))
    {
        t.row(name, ns);
    }
}

/// A timed loop of `op`, boxed so that rows of different types can be
/// sampled in turn ([`medians_interleaved`]): the box is called once per
/// sample, the loop inside it is compiled for `op` alone.
pub(crate) fn sampler<'a>(mut op: impl FnMut() + 'a) -> Timed<'a> {
    Box::new(move |n| {
        let t = Instant::now();
        for _ in 0..n {
            op();
            black_box(());
        }
        t.elapsed()
    })
}

/// Median nanoseconds per iteration of each of `rows` ([`sampler`]s or
/// any timed loops), their samples taken in turn (row 1, row 2, ..., then
/// again) rather than row after row: a machine that slows down for a
/// while slows every row's samples alike, instead of the rows measured
/// then.
pub(crate) fn medians_interleaved(iters: u64, rows: &mut [Timed<'_>]) -> Vec<f64> {
    for row in rows.iter_mut() {
        row(iters / 10 + 1); // warm-up
    }
    let mut samples = vec![Vec::with_capacity(SAMPLES); rows.len()];
    for _ in 0..SAMPLES {
        for (row, s) in rows.iter_mut().zip(&mut samples) {
            s.push(row(iters).as_nanos() as f64 / iters as f64);
        }
    }
    samples.into_iter().map(median).collect()
}

/// A Markdown table: one row per (name, figure), with each figure's ratio to
/// the row named `base` (ratio < 1 means faster than the base).
#[derive(Debug)]
pub(crate) struct Table {
    title: String,
    unit: &'static str,
    rows: Vec<(String, f64)>,
}

impl Table {
    pub(crate) fn new(title: &str, unit: &'static str) -> Self {
        Table {
            title: title.to_string(),
            unit,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, name: &str, value: f64) {
        eprintln!("  {:<44} {:>12.1} {}", name, value, self.unit);
        self.rows.push((name.to_string(), value));
    }

    /// Renders the table with ratios against the row named `base`.
    pub(crate) fn render(&self, base: &str) -> String {
        self.render_against(&[base])
    }

    /// Renders the table with a column of ratios against each row named in
    /// `bases`.
    pub(crate) fn render_against(&self, bases: &[&str]) -> String {
        let value = |base: &str| {
            self.rows
                .iter()
                .find(|r| r.0 == base)
                .map_or(f64::NAN, |r| r.1)
        };
        let mut s = format!("### {}\n\n| | {} |", self.title, self.unit);
        for base in bases {
            s.push_str(&format!(" ratio to {} |", cell(base)));
        }
        s.push_str("\n|---|---:|");
        s.push_str(&"---:|".repeat(bases.len()));
        s.push('\n');
        for (name, v) in &self.rows {
            s.push_str(&format!("| {} | {} |", cell(name), fmt(*v)));
            for base in bases {
                s.push_str(&format!(" {}x |", ratio(v / value(base))));
            }
            s.push('\n');
        }
        s.push('\n');
        s
    }
}

/// A row's name as the text of a Markdown cell: `<` and `>` escaped, or
/// a renderer takes `Mutex<bool>` for an HTML tag and shows `Mutex`.
fn cell(name: &str) -> String {
    name.replace('<', "&lt;").replace('>', "&gt;")
}

/// A ratio with two decimals, or, below 0.1, with two significant digits:
/// a figure far below its base is not written as `0.00`.
fn ratio(r: f64) -> String {
    if !r.is_finite() || r >= 0.1 || r <= 0.0 {
        return format!("{r:.2}");
    }
    // At least 2 decimals; one more per zero after the point.
    let decimals = (-r.log10()).ceil() as usize + 1;
    format!("{r:.decimals$}")
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A server under test, started as a child process and killed on drop.
#[derive(Debug)]
pub(crate) struct ServerProc {
    child: std::process::Child,
}

impl ServerProc {
    /// Starts `program args... port` of `spec` (with a raised open-file
    /// limit) and waits up to 20 s for 127.0.0.1:`port` to accept
    /// connections.
    pub(crate) fn start(spec: &ServerSpec, port: u16) -> Result<ServerProc, String> {
        let (name, program, args) = spec;
        // A process left listening on the port would be measured instead.
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Err(format!("{name}: port {port} is not free: {e}"));
        }
        let port_arg = port.to_string();
        let args: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .chain([port_arg.as_str()])
            .collect();
        let mut script = String::from("ulimit -n 65536 2>/dev/null; exec \"$0\"");
        for i in 0..args.len() {
            script.push_str(&format!(" \"${}\"", i + 1));
        }
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{name}: cannot start {program}: {e}"))?;
        let mut server = ServerProc { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("{name}: port {port} never accepted"));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{name}: exited at start ({status})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// User + system CPU time consumed so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second for `/proc/PID/stat` (100 on Linux).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// The median of `v`: the middle figure, or the mean of the two middle
/// ones for an even count (NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Where `cargo build --release` puts the workspace's binaries.
pub(crate) fn release_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// A numeric knob from the environment (`BENCH_*`), or its default.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A server to start for a run: its name, program and leading arguments
/// (the port is appended).
pub(crate) type ServerSpec = (&'static str, String, Vec<String>);

/// The servers of a run: first this workspace's `example` (built by
/// `cargo build --release -p CRATE --example EXAMPLE`, started with
/// `--port N`; when it is missing a line in `out` says so), then the peers
/// served by this binary (`benches serve KIND N`).
pub(crate) fn servers(
    ours: (&'static str, &str, &str),
    peers: &[(&'static str, &str)],
    out: &mut String,
) -> Vec<ServerSpec> {
    let (name, krate, example) = ours;
    let mut v = Vec::new();
    let path = release_dir().join("examples").join(example);
    if path.exists() {
        v.push((
            name,
            path.to_string_lossy().into_owned(),
            vec!["--port".into()],
        ));
    } else {
        out.push_str(&format!(
            "{krate}'s `{example}` example was not built (`cargo build --release -p {krate} --example {example}`); its rows are missing.\n\n"
        ));
    }
    let me = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (name, kind) in peers {
        v.push((*name, me.clone(), vec!["serve".into(), (*kind).into()]));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![10.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn a_figure_far_below_its_base_keeps_two_significant_digits() {
        let mut t = Table::new("Event round trip", "ns");
        t.row("Condvar + Mutex<bool>", 35965.0);
        t.row("sync_prims::Event", 156.0);
        t.row("same", 17982.0);
        let md = t.render("Condvar + Mutex<bool>");
        assert!(
            md.contains("| ratio to Condvar + Mutex&lt;bool&gt; |"),
            "{md}"
        );
        assert!(
            md.contains("| Condvar + Mutex&lt;bool&gt; | 35965 | 1.00x |"),
            "{md}"
        );
        assert!(md.contains("| sync_prims::Event | 156 | 0.0043x |"), "{md}");
        assert!(md.contains("| same | 17982 | 0.50x |"), "{md}");
        assert_eq!(ratio(0.05), "0.050");
        assert_eq!(ratio(0.099), "0.099");
        assert_eq!(ratio(f64::NAN), "NaN");
    }
}
