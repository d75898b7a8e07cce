//! The notes' `multi_task.py`: several generator tasks share one thread,
//! each giving up control at its `yield`, run round-robin by a tiny
//! scheduler loop.
//!
//! ```text
//! cargo run -p coro --example multi_task
//! ```

use std::collections::VecDeque;

use coro::Gen;

/// A task that works in `steps` steps, yielding after each one.
fn task(name: &'static str, steps: u32) -> Gen<String> {
    Gen::new(move |co| async move {
        for i in 1..=steps {
            co.yield_(format!("{name}: step {i} of {steps}")).await;
        }
    })
}

fn main() {
    let mut ready: VecDeque<(&str, Gen<String>)> = VecDeque::new();
    for (name, steps) in [("download", 3), ("music", 2), ("watch", 4)] {
        ready.push_back((name, task(name, steps)));
    }

    // The scheduler: run each task to its next yield, then move it to the back.
    let mut turn = 0;
    while let Some((name, mut t)) = ready.pop_front() {
        match t.next() {
            Some(line) => {
                turn += 1;
                println!("[turn {turn:2}] {line}");
                ready.push_back((name, t));
            }
            None => println!("           {name} finished"),
        }
    }
    println!("all tasks done in {turn} turns");
}
