//! `rt`: the greenrt scheduler against tokio and async-executor: spawn +
//! join, yield ping-pong, memory per idle task, and a CPU-bound batch on
//! one and two hubs.
//!
//! Memory is measured in a child process per figure (this binary, re-run
//! with `GREENRT_BENCH_MEM` set), so that one runtime's freed memory does
//! not hide the next one's growth.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_executor::{Executor, LocalExecutor};
use futures_executor::block_on;
use sync_prims::Event;

use crate::harness::{Table, Timed, interleaved, medians_interleaved};

const SPAWN_N: u64 = 100_000;
const SWITCHES: u64 = 1_000_000;
const IDLE_N: usize = 100_000;
const MEM_ENV: &str = "GREENRT_BENCH_MEM";

/// `futures_lite::future::yield_now`: wake, return `Pending` once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

fn tokio_current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn tokio_multi(n: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// An async-executor `Executor` driven by `n` threads until dropped.
struct MultiExecutor {
    ex: Arc<Executor<'static>>,
    stop: Arc<Event>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MultiExecutor {
    fn new(n: usize) -> Self {
        let ex = Arc::new(Executor::new());
        let stop = Arc::new(Event::new());
        let threads = (0..n)
            .map(|_| {
                let (ex, stop) = (ex.clone(), stop.clone());
                std::thread::spawn(move || block_on(ex.run(stop.wait_async())))
            })
            .collect();
        MultiExecutor { ex, stop, threads }
    }
}

impl Drop for MultiExecutor {
    fn drop(&mut self) {
        self.stop.set();
        for t in self.threads.drain(..) {
            t.join().expect("executor thread");
        }
    }
}

fn greenrt_rt(workers: usize) -> greenrt::Runtime {
    greenrt::Runtime::builder()
        .workers(workers)
        .max_blocking_time(None)
        .build()
        .expect("greenrt runtime")
}

pub(crate) fn run() -> String {
    if let Ok(which) = std::env::var(MEM_ENV) {
        // Child process: one memory figure on stdout, then exit (failing
        // when it could not be taken).
        let bytes = idle_bytes(&which);
        println!("{bytes}");
        std::process::exit(if bytes.is_nan() { 1 } else { 0 });
    }
    let mut out = String::from(
        "## rt: the greenrt scheduler\n\nMedians of 7 samples (those of a table's timed rows taken in turn: each row's first sample, then each row's second, ...); lower is better; ratio < 1 means better than the row named. The `greenrt::run` rows run with stall detection on (its default: four stores per poll); the `Runtime` rows with it off.\n\n",
    );
    out += &spawn_join();
    out += &yields();
    out += &memory();
    out += &cpu_batch();
    out
}

fn spawn_join() -> String {
    eprintln!("spawn + join of {SPAWN_N} trivial tasks");
    let mut t = Table::new("Spawn + join of 100,000 trivial tasks", "ns/task");
    // Every runtime lives through the whole table, its rows sampled in
    // turn; idle, each one's threads are parked.
    let ex = LocalExecutor::new();
    let rt1 = tokio_current();
    let grt = greenrt_rt(2);
    let h = grt.handle();
    let mex = MultiExecutor::new(2);
    let rt2 = tokio_multi(2);
    let rows: [(&str, Timed<'_>); 6] = [
        (
            "greenrt, 1 hub (greenrt::run)",
            Box::new(|n| {
                greenrt::run(async move {
                    let start = Instant::now();
                    let gs: Vec<_> = (0..n).map(|i| greenrt::spawn(async move { i })).collect();
                    for g in gs {
                        g.await.expect("task");
                    }
                    start.elapsed()
                })
            }),
        ),
        (
            "async-executor LocalExecutor",
            Box::new(|n| {
                block_on(ex.run(async {
                    let start = Instant::now();
                    let ts: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
                    for t in ts {
                        t.await;
                    }
                    start.elapsed()
                }))
            }),
        ),
        (
            "tokio current-thread",
            Box::new(|n| tokio_spawn_join(&rt1, n)),
        ),
        (
            "greenrt, 2 hubs (Runtime::spawn from block_on)",
            Box::new(|n| {
                grt.block_on(async {
                    let start = Instant::now();
                    let gs: Vec<_> = (0..n).map(|i| h.spawn(async move { i })).collect();
                    for g in gs {
                        g.await.expect("task");
                    }
                    start.elapsed()
                })
            }),
        ),
        (
            "async-executor Executor, 2 threads",
            Box::new(|n| {
                block_on(async {
                    let start = Instant::now();
                    let ts: Vec<_> = (0..n).map(|i| mex.ex.spawn(async move { i })).collect();
                    for t in ts {
                        t.await;
                    }
                    start.elapsed()
                })
            }),
        ),
        (
            "tokio multi-thread, 2 workers",
            Box::new(|n| tokio_spawn_join(&rt2, n)),
        ),
    ];
    interleaved(&mut t, SPAWN_N, rows);
    t.render_against(&[
        "async-executor LocalExecutor",
        "async-executor Executor, 2 threads",
    ])
}

/// Spawns `n` trivial tasks on `rt` and joins them; the time it took.
fn tokio_spawn_join(rt: &tokio::runtime::Runtime, n: u64) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let ts: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        for t in ts {
            t.await.expect("task");
        }
        start.elapsed()
    })
}

/// Two tasks on `rt` that each yield `n / 2` times with `yield_now`; the
/// time it took.
fn tokio_ping_pong<F: Future<Output = ()> + Send + 'static>(
    rt: &tokio::runtime::Runtime,
    n: u64,
    yield_now: fn() -> F,
) -> Duration {
    rt.block_on(async move {
        let start = Instant::now();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..n / 2 {
                        yield_now().await;
                    }
                })
            })
            .collect();
        for t in ts {
            t.await.expect("task");
        }
        start.elapsed()
    })
}

fn yields() -> String {
    eprintln!("yield ping-pong, {SWITCHES} switches");
    let mut t = Table::new(
        "Yield ping-pong between two tasks (1,000,000 switches)",
        "ns/switch",
    );
    let ex = LocalExecutor::new();
    let rt = tokio_current();
    let rows: [(&str, Timed<'_>); 4] = [
        (
            "greenrt::yield_now, 1 hub",
            Box::new(|n| {
                greenrt::run(async move {
                    let start = Instant::now();
                    let gs: Vec<_> = (0..2)
                        .map(|_| {
                            greenrt::spawn(async move {
                                for _ in 0..n / 2 {
                                    greenrt::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for g in gs {
                        g.await.expect("task");
                    }
                    start.elapsed()
                })
            }),
        ),
        (
            "async-executor LocalExecutor (yield_now)",
            Box::new(|n| {
                block_on(ex.run(async {
                    let start = Instant::now();
                    let ts: Vec<_> = (0..2)
                        .map(|_| {
                            ex.spawn(async move {
                                for _ in 0..n / 2 {
                                    yield_once().await;
                                }
                            })
                        })
                        .collect();
                    for t in ts {
                        t.await;
                    }
                    start.elapsed()
                }))
            }),
        ),
        (
            "tokio current-thread (task::yield_now)",
            Box::new(|n| tokio_ping_pong(&rt, n, tokio::task::yield_now)),
        ),
        (
            "tokio current-thread (yield_now as the LocalExecutor row)",
            Box::new(|n| tokio_ping_pong(&rt, n, yield_once)),
        ),
    ];
    interleaved(&mut t, SWITCHES, rows);
    let mut out = t.render("async-executor LocalExecutor (yield_now)");
    out += "`tokio::task::yield_now` lets the runtime poll its I/O driver and timers before the task \
            runs again; the last row yields as the LocalExecutor row does (wakes itself, then \
            `Pending` once), as does `greenrt::yield_now`.\n\n";
    out
}

/// Resident set size of this process, in bytes (`VmRSS`, which the kernel
/// gives in kB whatever the page size).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// How many of the idle tasks have been polled (each counts itself at its
/// first poll): a static, so that counting adds nothing to a task.
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts the calling task as started.
fn started() {
    STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Whether every idle task has been polled (so that each holds its timer
/// entry or its waiter, not only its unpolled future). A runtime that
/// polls the spawning task again before all the others (tokio's
/// current-thread scheduler does, every 61 tasks) is yielded to until
/// they all have, for at most as many rounds as there are tasks.
fn all_started() -> bool {
    STARTED.load(std::sync::atomic::Ordering::Relaxed) >= IDLE_N
}

/// Child side: RSS growth per task for `which` = `"<runtime>-<sleep|event>"`,
/// once every task has been polled.
fn idle_bytes(which: &str) -> f64 {
    let long = Duration::from_secs(3600);
    let ev = Arc::new(Event::new());
    let on_event = which.ends_with("-event");
    let grow = match which.split('-').next().unwrap_or("") {
        "greenrt" => greenrt::run(async {
            let before = rss();
            for _ in 0..IDLE_N {
                let ev = ev.clone();
                drop(greenrt::spawn(async move {
                    started();
                    if on_event {
                        ev.wait_async().await;
                    } else {
                        greenrt::sleep(long).await;
                    }
                }));
            }
            for _ in 0..IDLE_N {
                greenrt::yield_now().await;
                if all_started() {
                    break;
                }
            }
            rss().saturating_sub(before)
        }),
        "asyncexecutor" => {
            let ex = LocalExecutor::new();
            let timer_rt = tokio_multi(1);
            let _enter = timer_rt.enter();
            block_on(ex.run(async {
                let before = rss();
                for _ in 0..IDLE_N {
                    let ev = ev.clone();
                    ex.spawn(async move {
                        started();
                        if on_event {
                            ev.wait_async().await;
                        } else {
                            tokio::time::sleep(long).await;
                        }
                    })
                    .detach();
                }
                for _ in 0..IDLE_N {
                    yield_once().await;
                    while ex.try_tick() {}
                    if all_started() {
                        break;
                    }
                }
                rss().saturating_sub(before)
            }))
        }
        "tokio" => tokio_current().block_on(async {
            let before = rss();
            for _ in 0..IDLE_N {
                let ev = ev.clone();
                drop(tokio::spawn(async move {
                    started();
                    if on_event {
                        ev.wait_async().await;
                    } else {
                        tokio::time::sleep(long).await;
                    }
                }));
            }
            for _ in 0..IDLE_N {
                tokio::task::yield_now().await;
                if all_started() {
                    break;
                }
            }
            rss().saturating_sub(before)
        }),
        _ => return f64::NAN,
    };
    if !all_started() {
        crate::harness::fail(&format!("memory of {which}: not every task was polled"));
        return f64::NAN;
    }
    grow as f64 / IDLE_N as f64
}

fn memory_child(which: &str) -> f64 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            crate::harness::fail(&format!("memory of {which}: {e}"));
            return f64::NAN;
        }
    };
    let out = std::process::Command::new(exe)
        .arg("rt")
        .env(MEM_ENV, which)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            text.trim().parse().unwrap_or_else(|_| {
                crate::harness::fail(&format!("memory of {which}: {text:?}"));
                f64::NAN
            })
        }
        other => {
            crate::harness::fail(&format!("memory of {which}: {other:?}"));
            f64::NAN
        }
    }
}

fn memory() -> String {
    eprintln!("memory per idle task ({IDLE_N} tasks, child processes)");
    let mut s = String::new();
    let mut t = Table::new(
        "Memory per idle task: 100,000 tasks parked on a one-hour sleep",
        "bytes/task",
    );
    t.row("greenrt (sleep)", memory_child("greenrt-sleep"));
    t.row(
        "async-executor LocalExecutor (tokio::time::sleep on a tokio timer thread)",
        memory_child("asyncexecutor-sleep"),
    );
    t.row(
        "tokio current-thread (tokio::time::sleep)",
        memory_child("tokio-sleep"),
    );
    s += &t.render("async-executor LocalExecutor (tokio::time::sleep on a tokio timer thread)");
    let mut t = Table::new(
        "Memory per idle task: 100,000 tasks parked on a never-set sync_prims::Event",
        "bytes/task",
    );
    t.row("greenrt", memory_child("greenrt-event"));
    t.row(
        "async-executor LocalExecutor",
        memory_child("asyncexecutor-event"),
    );
    t.row("tokio current-thread", memory_child("tokio-event"));
    s += &t.render("async-executor LocalExecutor");
    s += "RSS growth of a fresh process divided by the task count; handles detached, so only what the runtime keeps per task (the task, its future, its timer or waiter entry) is counted.\n\n";
    s
}

/// A fixed amount of arithmetic (3 million dependent multiply-adds, a few
/// milliseconds), no awaits.
fn burn(seed: u64) -> u64 {
    let mut x = seed;
    for k in 0..3_000_000u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(k);
    }
    x
}

fn cpu_batch() -> String {
    const TASKS: u64 = 64;
    eprintln!("CPU-bound batch of {TASKS} tasks");
    let mut t = Table::new(
        "CPU-bound batch: 64 tasks of arithmetic without awaits (Runtime::spawn, joined from a plain thread)",
        "ms/batch",
    );
    // The three runtimes live through the table, their rows sampled in
    // turn; idle, each one's threads are parked.
    let (one, two, tokio_rt) = (greenrt_rt(1), greenrt_rt(2), tokio_multi(2));
    let greenrt_batch = |rt: &greenrt::Runtime| {
        let start = Instant::now();
        let gs: Vec<_> = (0..TASKS)
            .map(|i| rt.spawn(async move { burn(i) }))
            .collect();
        for g in gs {
            std::hint::black_box(g.get_blocking());
        }
        start.elapsed()
    };
    let mut rows: [Timed<'_>; 3] = [
        Box::new(|_| greenrt_batch(&one)),
        Box::new(|_| greenrt_batch(&two)),
        Box::new(|_| {
            tokio_rt.block_on(async {
                let start = Instant::now();
                let ts: Vec<_> = (0..TASKS)
                    .map(|i| tokio::spawn(async move { burn(i) }))
                    .collect();
                for t in ts {
                    std::hint::black_box(t.await.ok());
                }
                start.elapsed()
            })
        }),
    ];
    let names = [
        "greenrt, 1 hub",
        "greenrt, 2 hubs",
        "tokio multi-thread, 2 workers",
    ];
    for (name, ns) in names.into_iter().zip(medians_interleaved(1, &mut rows)) {
        t.row(name, ns / 1e6);
    }
    let mut s = t.render("greenrt, 1 hub");
    s += "The 2-hub ratio to 1 hub is the multi-core speed-up (0.5x is perfect on two cores).\n\n";
    s
}
