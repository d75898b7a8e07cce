//! The notes' gevent lesson (`spawn`, `sleep`, `joinall`): three tasks that sleep 1, 2 and 3 units
//! (a unit is 200 ms here) overlap, so they finish together in about the
//! longest sleep, not the sum; `joinall` with a shorter timeout returns the
//! subset that finished.
//!
//! `cargo run -p greenrt --example gevent_spawn`

use std::time::{Duration, Instant};

use greenrt::{Builder, Greenlet, joinall, killall, sleep};

const UNIT: Duration = Duration::from_millis(200);

fn spawn_sleepers(t0: Instant, round: &str) -> Vec<Greenlet<u32>> {
    (1..=3u32)
        .map(|n| {
            let name = format!("{round}-{n}");
            Builder::new()
                .name(name.clone())
                .spawn(async move {
                    println!(
                        "[{:>5} ms] {name} starts, sleeps {n} unit(s)",
                        t0.elapsed().as_millis()
                    );
                    sleep(UNIT * n).await; // gevent.sleep(n): gives the hub to the others
                    println!("[{:>5} ms] {name} ends", t0.elapsed().as_millis());
                    n
                })
                .expect("inside greenrt::run")
        })
        .collect()
}

fn main() {
    greenrt::run(async {
        let t0 = Instant::now();
        println!("gevent.joinall([gevent.spawn(f, 1), gevent.spawn(f, 2), gevent.spawn(f, 3)])");
        let tasks = spawn_sleepers(t0, "f");
        let finished = joinall(&tasks, None).await;
        println!(
            "joinall returned {finished:?} after {} ms: about the longest sleep ({} ms), not the sum ({} ms)",
            t0.elapsed().as_millis(),
            (UNIT * 3).as_millis(),
            (UNIT * 6).as_millis()
        );
        for g in tasks {
            println!("g.get() = {}", g.await.expect("no task failed"));
        }

        println!();
        println!("gevent.joinall(greenlets, timeout=2.5 units)");
        let t0 = Instant::now();
        let tasks = spawn_sleepers(t0, "g");
        let finished = joinall(&tasks, Some(UNIT * 5 / 2)).await;
        println!(
            "joinall returned {finished:?} after {} ms: the tasks that finished in time",
            t0.elapsed().as_millis()
        );
        killall(&tasks).await;
        for (i, g) in tasks.into_iter().enumerate() {
            println!("greenlet {i}: {:?}", g.await);
        }
    });
}
