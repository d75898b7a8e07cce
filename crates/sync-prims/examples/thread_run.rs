//! The notes' "subclass `Thread` and override `run`" pattern: a type that
//! carries the thread's state implements [`Run`], and `Thread::start` runs
//! it. The main thread checks `is_alive` and waits with a timeout
//! (Python's `join(timeout)`) while the worker waits for its go-ahead, then
//! joins it for the value `run` returned.
//!
//! `cargo run -p sync-prims --example thread_run`
//!
//! (Python's `setName` has no counterpart: a thread's name is given when
//! it starts, as std's threads cannot be renamed.)

use std::sync::Arc;
use std::time::Duration;

use sync_prims::{Event, Run, Thread};

/// The thread's state, as the fields of a Python `Thread` subclass.
struct Counter {
    upto: u64,
    go: Arc<Event>,
}

impl Run for Counter {
    type Output = u64;

    /// Python's overridden `run`.
    fn run(self) -> u64 {
        self.go.wait();
        (1..=self.upto).sum()
    }
}

fn main() {
    let go = Arc::new(Event::new());
    let t = Thread::builder()
        .name("counter")
        .start(Counter {
            upto: 100,
            go: go.clone(),
        })
        .expect("start thread");
    println!(
        "started {:?}; alive: {}",
        t.name().unwrap_or("?"),
        t.is_alive()
    );
    // It waits for its go-ahead: a join with a timeout gives up.
    let done = t.join_timeout(Duration::from_millis(50));
    println!("join(timeout=0.05) returned, finished: {done}");
    go.set();
    let sum = t.join().expect("counter panicked");
    println!("joined: run returned {sum}");
}
