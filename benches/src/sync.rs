//! `sync`: Lock and Event against std, parking_lot, async-lock and
//! event-listener.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use event_listener::Listener;

use crate::harness::{Table, median_ns, per_op};

/// Polls a future that is expected to complete at once.
fn poll_now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("uncontended future must be ready"),
    }
}

pub(crate) fn run() -> String {
    let mut out = String::from(
        "## sync: Lock and Event\n\nMedians of 7 samples; lower is better; ratio < 1 means faster than the peer named.\n\n",
    );

    eprintln!("uncontended acquire + release");
    let mut t = Table::new("Uncontended acquire + release (one thread)", "ns/op");
    const N: u64 = 5_000_000;
    let std_m = Mutex::new(0u64);
    t.row(
        "std::sync::Mutex",
        per_op(N, || *black_box(&std_m).lock().unwrap() += 1),
    );
    let pl = parking_lot::Mutex::new(0u64);
    t.row(
        "parking_lot::Mutex",
        per_op(N, || *black_box(&pl).lock() += 1),
    );
    let ours = sync_prims::Lock::new(0u64);
    t.row(
        "sync_prims::Lock::acquire",
        per_op(N, || *black_box(&ours).acquire() += 1),
    );
    let al = async_lock::Mutex::new(0u64);
    t.row(
        "async_lock::Mutex::lock (polled)",
        per_op(N, || *poll_now(black_box(&al).lock()) += 1),
    );
    t.row(
        "sync_prims::Lock::acquire_async (polled)",
        per_op(N, || *poll_now(black_box(&ours).acquire_async()) += 1),
    );
    out += &t.render("parking_lot::Mutex");

    eprintln!("contended: 2 threads x 1,000,000 increments");
    let mut t = Table::new(
        "Contended: 2 threads x 1,000,000 increments each",
        "ns/increment",
    );
    const K: u64 = 1_000_000;
    t.row(
        "std::sync::Mutex",
        contended(K, Mutex::new(0u64), |m| *m.lock().unwrap() += 1),
    );
    t.row(
        "parking_lot::Mutex",
        contended(K, parking_lot::Mutex::new(0u64), |m| *m.lock() += 1),
    );
    t.row(
        "sync_prims::Lock",
        contended(K, sync_prims::Lock::new(0u64), |m| *m.acquire() += 1),
    );
    t.row(
        "async_lock::Mutex (block_on)",
        contended(K, async_lock::Mutex::new(0u64), |m| {
            *futures_executor::block_on(m.lock()) += 1
        }),
    );
    t.row(
        "sync_prims::Lock::acquire_async (block_on)",
        contended(K, sync_prims::Lock::new(0u64), |m| {
            *futures_executor::block_on(m.acquire_async()) += 1
        }),
    );
    out += &t.render("std::sync::Mutex");

    eprintln!("event round trip between two threads");
    let mut t = Table::new(
        "Event round trip between two threads (A sets, B wakes and sets back)",
        "ns/round trip",
    );
    const R: u64 = 20_000;
    t.row("Condvar + Mutex<bool>", round_trip(R, CondvarFlag::default));
    t.row(
        "event_listener::Event + AtomicBool",
        round_trip(R, ListenerFlag::default),
    );
    t.row("sync_prims::Event", round_trip(R, sync_prims::Event::new));
    out += &t.render("Condvar + Mutex<bool>");
    out += "`sync_prims::Event::wait` spins briefly (up to 20 µs of pause instructions, no yields) before it parks, \
             so a set that arrives within microseconds costs neither side a system call; \
             Condvar and event-listener park at once.\n";
    out
}

/// Two threads each run `k` increments through `op`; ns per increment.
fn contended<M: Send + Sync + 'static>(k: u64, m: M, op: fn(&M)) -> f64 {
    let m = Arc::new(m);
    median_ns(k * 2, |n| {
        let per = n / 2;
        let barrier = Arc::new(Barrier::new(3));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (m, barrier) = (m.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..per {
                        op(&m);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for t in ts {
            t.join().unwrap();
        }
        start.elapsed()
    })
}

/// A settable, clearable flag that one thread can wait on.
trait Flag: Send + Sync + 'static {
    fn set(&self);
    fn wait_and_clear(&self);
}

impl Flag for sync_prims::Event {
    fn set(&self) {
        sync_prims::Event::set(self);
    }
    fn wait_and_clear(&self) {
        self.wait();
        self.clear();
    }
}

#[derive(Default)]
struct CondvarFlag {
    m: Mutex<bool>,
    cv: Condvar,
}

impl Flag for CondvarFlag {
    fn set(&self) {
        *self.m.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn wait_and_clear(&self) {
        let mut g = self.m.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        *g = false;
    }
}

#[derive(Default)]
struct ListenerFlag {
    flag: AtomicBool,
    ev: event_listener::Event,
}

impl Flag for ListenerFlag {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.ev.notify(usize::MAX);
    }
    fn wait_and_clear(&self) {
        loop {
            if self.flag.swap(false, Ordering::SeqCst) {
                return;
            }
            let l = self.ev.listen();
            if self.flag.swap(false, Ordering::SeqCst) {
                return;
            }
            l.wait();
        }
    }
}

fn round_trip<F: Flag>(rounds: u64, make: fn() -> F) -> f64 {
    median_ns(rounds, |n| {
        let (ping, pong) = (Arc::new(make()), Arc::new(make()));
        let b = {
            let (ping, pong) = (ping.clone(), pong.clone());
            std::thread::spawn(move || {
                for _ in 0..n {
                    ping.wait_and_clear();
                    pong.set();
                }
            })
        };
        let start = Instant::now();
        for _ in 0..n {
            ping.set();
            pong.wait_and_clear();
        }
        let d = start.elapsed();
        b.join().unwrap();
        d
    })
}
