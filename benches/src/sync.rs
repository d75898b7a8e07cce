//! `sync`: Lock and Event against std, parking_lot, async-lock and
//! event-listener.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use event_listener::Listener;

use crate::harness::{Table, Timed, interleaved, sampler};

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
        "## sync: Lock and Event\n\nMedians of 7 samples, taken in turn (each row's first sample, then \
         each row's second, ...), so that a machine slowed for a while slows every row alike; lower \
         is better; ratio < 1 means faster than the peer named.\n\n",
    );

    eprintln!("uncontended acquire + release");
    let mut t = Table::new("Uncontended acquire + release (one thread)", "ns/op");
    const N: u64 = 5_000_000;
    let std_m = Mutex::new(0u64);
    let pl = parking_lot::Mutex::new(0u64);
    let ours = sync_prims::Lock::new(0u64);
    let al = async_lock::Mutex::new(0u64);
    let rows: [(&str, Timed<'_>); 5] = [
        (
            "std::sync::Mutex",
            sampler(|| *black_box(&std_m).lock().unwrap() += 1),
        ),
        (
            "parking_lot::Mutex",
            sampler(|| *black_box(&pl).lock() += 1),
        ),
        (
            "sync_prims::Lock::acquire",
            sampler(|| *black_box(&ours).acquire() += 1),
        ),
        (
            "async_lock::Mutex::lock (polled)",
            sampler(|| *poll_now(black_box(&al).lock()) += 1),
        ),
        (
            "sync_prims::Lock::acquire_async (polled)",
            sampler(|| *poll_now(black_box(&ours).acquire_async()) += 1),
        ),
    ];
    interleaved(&mut t, N, rows);
    out += &t.render("parking_lot::Mutex");

    eprintln!("contended: 2 threads x 1,000,000 increments");
    let mut t = Table::new(
        "Contended: 2 threads x 1,000,000 increments each",
        "ns/increment",
    );
    const K: u64 = 1_000_000;
    let rows: [(&str, Timed<'_>); 5] = [
        (
            "std::sync::Mutex",
            contended(Mutex::new(0u64), |m| *m.lock().unwrap() += 1),
        ),
        (
            "parking_lot::Mutex",
            contended(parking_lot::Mutex::new(0u64), |m| *m.lock() += 1),
        ),
        (
            "sync_prims::Lock",
            contended(sync_prims::Lock::new(0u64), |m| *m.acquire() += 1),
        ),
        (
            "async_lock::Mutex (block_on)",
            contended(async_lock::Mutex::new(0u64), |m| {
                *futures_executor::block_on(m.lock()) += 1
            }),
        ),
        (
            "sync_prims::Lock::acquire_async (block_on)",
            contended(sync_prims::Lock::new(0u64), |m| {
                *futures_executor::block_on(m.acquire_async()) += 1
            }),
        ),
    ];
    interleaved(&mut t, K * 2, rows);
    out += &t.render("std::sync::Mutex");

    eprintln!("event round trip between two threads");
    let mut t = Table::new(
        "Event round trip between two threads (A sets, B wakes and sets back)",
        "ns/round trip",
    );
    const R: u64 = 20_000;
    let rows: [(&str, Timed<'_>); 4] = [
        ("Condvar + Mutex<bool>", round_trip(CondvarFlag::default)),
        (
            "event_listener::Event + AtomicBool",
            round_trip(ListenerFlag::default),
        ),
        (
            "event_listener::Event + AtomicBool, spinning first as sync_prims does",
            round_trip(SpinningListenerFlag::default),
        ),
        ("sync_prims::Event", round_trip(sync_prims::Event::new)),
    ];
    interleaved(&mut t, R, rows);
    out += &t.render_against(&[
        "Condvar + Mutex<bool>",
        "event_listener::Event + AtomicBool, spinning first as sync_prims does",
    ]);
    out += "`sync_prims::Event::wait` spins briefly (up to 20 µs of pause instructions, no yields) before it parks, \
             so a set that arrives within microseconds costs neither side a system call; \
             Condvar and event-listener park at once, and the spinning event-listener row spins as \
             `sync_prims` does (the same rounds of pause instructions, for the same 20 µs) on its flag \
             before it listens: the like-for-like comparison. A spinning waiter keeps its core busy \
             meanwhile, which these wall-clock figures do not show.\n";
    out
}

/// Two threads each run half the increments of a sample through `op`.
fn contended<M: Send + Sync + 'static>(m: M, op: fn(&M)) -> Timed<'static> {
    let m = Arc::new(m);
    Box::new(move |n| {
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

/// A spinning wait as `sync_prims` does it (a copy of its private `Spin`,
/// `crates/sync-prims/src/sync.rs`: keep the two in step): rounds of
/// pause instructions that double up to sixteen, checking the clock
/// between rounds, for at most 20 µs; never a yield.
struct Spin {
    step: u32,
    start: Option<Instant>,
}

impl Spin {
    fn new() -> Self {
        Spin {
            step: 0,
            start: None,
        }
    }

    /// Spins once more; false once the waiter should park instead.
    fn spin(&mut self) -> bool {
        if self.step >= 4 {
            let now = Instant::now();
            match self.start {
                None => self.start = Some(now),
                Some(t) if now.duration_since(t) >= Duration::from_micros(20) => return false,
                Some(_) => {}
            }
        }
        for _ in 0..1u32 << self.step.min(4) {
            std::hint::spin_loop();
        }
        self.step += 1;
        true
    }
}

/// [`ListenerFlag`], whose waiter first spins on the flag as `sync_prims`
/// does before it listens.
#[derive(Default)]
struct SpinningListenerFlag(ListenerFlag);

impl Flag for SpinningListenerFlag {
    fn set(&self) {
        self.0.set();
    }
    fn wait_and_clear(&self) {
        let mut spin = Spin::new();
        // A read a round, as `sync_prims::Event` does; the swap only once
        // the flag is seen set.
        while spin.spin() {
            if self.0.flag.load(Ordering::Acquire) && self.0.flag.swap(false, Ordering::SeqCst) {
                return;
            }
        }
        self.0.wait_and_clear();
    }
}

/// Two threads pass a flag back and forth, a round trip per operation.
fn round_trip<F: Flag>(make: fn() -> F) -> Timed<'static> {
    Box::new(move |n| {
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
