//! gevent's warning, made visible: a task that computes without yielding
//! starves its hub. A ticker on the same hub stops ticking until it is
//! done; greenrt's monitor names it (on stderr, and here through a callback
//! too); a ticker on the other hub keeps its rhythm.
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

    let ticker_on = |hub: usize, name: &'static str| {
        Builder::new().name(name).spawn_on(&h, hub, async move {
            for i in 1..=8 {
                sleep(Duration::from_millis(60)).await;
                println!(
                    "[{:>4} ms] {name} tick {i} on hub-{hub}",
                    t0.elapsed().as_millis()
                );
            }
        })
    };
    // Its ticks are 60 ms apart, but the spinner, on the same hub, holds it
    // from about 0 to 400 ms: the first tick, due at 60 ms, comes only
    // once the spinner is done.
    let neighbour = ticker_on(0, "neighbour");
    // Spins for 400 ms without an await.
    let spinner = Builder::new().name("spinner").spawn_on(&h, 0, async move {
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
    // On the other hub: keeps its rhythm while the spinner hogs its own.
    let ticker = ticker_on(1, "ticker");
    for t in [ticker, neighbour] {
        t.get_blocking().expect("not taken").expect("ticker ran");
    }
    spinner
        .get_blocking()
        .expect("not taken")
        .expect("spinner ran");
    Ok(())
}
