//! The notes' lesson on `threading.Lock`: several threads add to one shared
//! total under a `Lock`; the total is exact because each addition happens
//! in the critical section. With no GIL, the threads run in parallel: the
//! lock is all that keeps the total exact.
//!
//! `cargo run -p sync-prims --example thread_lock`

use std::sync::Arc;

use sync_prims::{Lock, Thread};

const THREADS: u64 = 4;
const ADDS: u64 = 100_000;

fn main() {
    let total = Arc::new(Lock::new(0u64));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let total = total.clone();
            Thread::builder()
                .name(format!("adder-{i}"))
                .spawn(move || {
                    for _ in 0..ADDS {
                        // `with lock:` -- the guard releases at the end of the statement.
                        *total.acquire() += 1;
                    }
                })
                .expect("spawn thread")
        })
        .collect();
    for t in threads {
        let name = t.name().unwrap_or("?").to_string();
        t.join().expect("adder panicked");
        println!("{name} finished");
    }
    let total = *total.acquire();
    println!("total = {total} (expected {})", THREADS * ADDS);
    assert_eq!(total, THREADS * ADDS);
}
