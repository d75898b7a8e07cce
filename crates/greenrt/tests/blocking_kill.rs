//! A blocking job whose greenlet is killed from another thread: in a
//! binary of its own, since it fills the process's blocking pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use greenrt::{GreenletError, MAX_BLOCKING_THREADS, Runtime, spawn_blocking};
use sync_prims::Event;

/// How long the test waits for what must happen (never reached when the
/// runtime works).
const PATIENCE: Duration = Duration::from_secs(60);

#[cfg_attr(miri, ignore = "fills the blocking pool's 64 threads")]
#[test]
fn a_job_killed_from_another_thread_before_a_thread_takes_it_never_runs() {
    // A kill from another thread only marks the task; its hub, busy here,
    // drops it at its next turn. A pool thread that took the job in
    // between once ran it (the slot it checked was still there).
    let rt = Runtime::builder()
        .workers(1)
        .max_blocking_time(None)
        .build()
        .unwrap();
    let holds: Arc<Vec<Event>> =
        Arc::new((0..MAX_BLOCKING_THREADS).map(|_| Event::new()).collect());
    let (busy, marker_ran) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let hub = {
        let (holds, busy, marker_ran, ran) =
            (holds.clone(), busy.clone(), marker_ran.clone(), ran.clone());
        rt.spawn(async move {
            // Every thread of the pool taken: the next jobs queue, in order.
            let held: Vec<_> = (0..MAX_BLOCKING_THREADS)
                .map(|i| {
                    let holds = holds.clone();
                    spawn_blocking(move || holds[i].wait())
                })
                .collect();
            let victim = spawn_blocking(move || ran.store(true, Ordering::SeqCst));
            let marker = spawn_blocking(move || marker_ran.set());
            tx.send(victim).unwrap();
            // Busy: the hub does not see the kill until this returns.
            busy.wait();
            for h in held {
                h.await.unwrap();
            }
            marker.await.unwrap();
        })
    };
    let victim = rx.recv_timeout(PATIENCE).unwrap();
    victim.kill();
    // One thread of the pool freed: it takes the victim's job, then the
    // marker's, in that order. Once the marker ran, the victim's job had
    // its turn.
    holds[0].set();
    let marker_done = marker_ran.wait_timeout(PATIENCE);
    let victim_ran = ran.load(Ordering::SeqCst);
    // Everything let go before any assertion, so that a failure ends the
    // test rather than leave the runtime waiting.
    for h in holds.iter() {
        h.set();
    }
    busy.set();
    assert!(marker_done, "the marker never ran");
    assert!(!victim_ran, "the killed greenlet's job ran");
    assert!(matches!(
        victim.get_blocking(),
        Some(Err(GreenletError::Killed))
    ));
    assert!(matches!(hub.get_blocking(), Some(Ok(()))));
}
