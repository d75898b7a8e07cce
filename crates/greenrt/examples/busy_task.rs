//! gevent's warning, made visible: a task that computes without yielding
//! starves its hub. greenrt's monitor names it (on stderr, and here through
//! a callback too), while a task on the other hub keeps ticking.
//!
//! `cargo run -p greenrt --example busy_task`

use std::time::{Duration, Instant};

use greenrt::{Builder, Runtime, sleep};

fn main() -> std::io::Result<()> {
    let rt = Runtime::builder()
        .workers(2)
        .max_blocking_time(Duration::from_millis(100))
        .on_stall(|r| {
            println!(
                "stall callback: {} ran {} ms on {}",
                r.task_name().unwrap_or("?"),
                r.elapsed().as_millis(),
                r.hub()
            )
        })
        .build()?;
    let h = rt.handle();
    let t0 = Instant::now();

    // On the least loaded hub (the runtime is empty: the first): spins for
    // 400 ms without an await.
    let spinner = Builder::new().name("spinner").spawn_in(&h, async move {
        let hub = greenrt::current()
            .map(|c| c.hub().to_owned())
            .unwrap_or_default();
        println!(
            "[{:>4} ms] spinner starts on {hub}, computing without yielding",
            t0.elapsed().as_millis()
        );
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(400) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        println!("[{:>4} ms] spinner done", t0.elapsed().as_millis());
        x
    });
    // On the least loaded hub (the other one): keeps its rhythm while the
    // spinner hogs its own.
    let ticker = Builder::new().name("ticker").spawn_in(&h, async move {
        let hub = greenrt::current()
            .map(|c| c.hub().to_owned())
            .unwrap_or_default();
        for i in 1..=8 {
            sleep(Duration::from_millis(60)).await;
            println!("[{:>4} ms] tick {i} on {hub}", t0.elapsed().as_millis());
        }
    });
    ticker
        .get_blocking()
        .expect("not taken")
        .expect("ticker ran");
    spinner
        .get_blocking()
        .expect("not taken")
        .expect("spinner ran");
    Ok(())
}
