//! A small timing harness: medians of several samples, and Markdown tables of
//! figures beside their peers.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Samples taken of each figure; the median is reported.
pub(crate) const SAMPLES: usize = 7;

/// Median nanoseconds per iteration of `f`, which runs `iters` iterations
/// per call and returns how long they took.
pub(crate) fn median_ns(iters: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    f(iters / 10 + 1); // warm-up
    let mut v: Vec<f64> = (0..SAMPLES)
        .map(|_| f(iters).as_nanos() as f64 / iters as f64)
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median nanoseconds per call of `op`.
pub(crate) fn per_op(iters: u64, mut op: impl FnMut()) -> f64 {
    median_ns(iters, |n| {
        let t = Instant::now();
        for _ in 0..n {
            op();
            black_box(());
        }
        t.elapsed()
    })
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
        let b = self
            .rows
            .iter()
            .find(|r| r.0 == base)
            .map_or(f64::NAN, |r| r.1);
        let mut s = format!(
            "### {}\n\n| | {} | ratio to {base} |\n|---|---:|---:|\n",
            self.title, self.unit
        );
        for (name, v) in &self.rows {
            s.push_str(&format!("| {name} | {} | {:.2}x |\n", fmt(*v), v / b));
        }
        s.push('\n');
        s
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
