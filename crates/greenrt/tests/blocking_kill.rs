//! Blocking jobs whose greenlets are killed before a thread takes them,
//! and a lingering close behind a busy pool: in a binary of their own,
//! since they fill the process's blocking pool (and one at a time, see
//! `POOL`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use greenrt::time::ManualClock;
use greenrt::{Greenlet, GreenletError, MAX_BLOCKING_THREADS, Runtime, spawn_blocking};
use sync_prims::Event;

/// How long a test waits for what must happen (never reached when the
/// runtime works).
const PATIENCE: Duration = Duration::from_secs(60);

/// Each test fills the pool, and counts on the order in which its threads
/// take jobs: the tests take turns.
fn pool_to_myself() -> MutexGuard<'static, ()> {
    static POOL: Mutex<()> = Mutex::new(());
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// On a hub: takes every thread of the pool with a job that says it
/// started on `started`, then waits for `gate`; the jobs' greenlets.
fn hold_the_pool(gate: &Arc<Event>, started: &mpsc::Sender<()>) -> Vec<Greenlet<()>> {
    (0..MAX_BLOCKING_THREADS)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            spawn_blocking(move || {
                started.send(()).unwrap();
                gate.wait();
            })
        })
        .collect()
}

/// Whether every job of [`hold_the_pool`] started (bounded).
fn all_started(starts: &mpsc::Receiver<()>) -> bool {
    (0..MAX_BLOCKING_THREADS).all(|_| starts.recv_timeout(PATIENCE).is_ok())
}

#[cfg_attr(miri, ignore = "fills the blocking pool's 64 threads")]
#[test]
fn a_job_killed_from_another_thread_before_a_thread_takes_it_never_runs() {
    let _pool = pool_to_myself();
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

#[cfg_attr(miri, ignore = "fills the blocking pool's 64 threads")]
#[test]
fn a_killed_job_waiting_for_a_thread_does_not_hold_a_manual_clock() {
    // A hub with a manual clock does not move it while a blocking job of
    // its own runs. A job whose greenlet was killed before a thread took
    // it never runs: it was counted all the same until a thread of the
    // busy pool got to it, and the hub's clock stood still meanwhile.
    let _pool = pool_to_myself();
    let gate = Arc::new(Event::new());
    let (started, starts) = mpsc::channel();
    let filler = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            greenrt::run(async move {
                let held = hold_the_pool(&gate, &started);
                for h in held {
                    h.await.unwrap();
                }
            })
        })
    };
    let full = all_started(&starts);
    let (tx, rx) = mpsc::channel();
    let clock = ManualClock::new();
    let timed = {
        let clock = clock.clone();
        std::thread::spawn(move || {
            let killed = Runtime::builder().clock(clock).run(async {
                let job = spawn_blocking(|| ());
                job.kill();
                let killed = job.await;
                greenrt::sleep(Duration::from_secs(3600)).await;
                killed
            });
            tx.send(killed).unwrap();
        })
    };
    let got = rx.recv_timeout(PATIENCE);
    // Everything let go before any assertion, so that a failure ends the
    // test rather than leave the pool full.
    gate.set();
    filler.join().unwrap();
    timed.join().unwrap();
    assert!(full, "the pool's threads did not all start");
    assert_eq!(
        got.expect("the hour's sleep never ended: the killed job held the clock"),
        Err(GreenletError::Killed)
    );
    assert_eq!(clock.elapsed(), Duration::from_secs(3600));
}

#[cfg_attr(miri, ignore = "fills the blocking pool's 64 threads")]
#[test]
fn a_lingering_stream_dropped_while_the_pool_is_busy_ends_at_once_for_its_peer() {
    // The drop of a stream with a linger time hands its close to the pool;
    // with every thread of it busy, the peer saw no end of the stream
    // until one was free.
    let _pool = pool_to_myself();
    let (gate, full) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (started, starts) = mpsc::channel();
    let (peer_tx, peer_rx) = mpsc::channel();
    let hub = {
        let (gate, full) = (gate.clone(), full.clone());
        std::thread::spawn(move || {
            greenrt::run(async move {
                let held = hold_the_pool(&gate, &started);
                full.wait_async().await;
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let c = greenrt::net::TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap();
                let (peer, _) = listener.accept().unwrap();
                c.set_linger(Some(Duration::from_secs(5))).unwrap();
                c.write_all(b"bye").await.unwrap();
                drop(c);
                peer_tx.send(peer).unwrap();
                for h in held {
                    h.await.unwrap();
                }
            })
        })
    };
    let filled = all_started(&starts);
    full.set();
    let got = peer_rx.recv_timeout(PATIENCE).map(|mut peer| {
        peer.set_read_timeout(Some(PATIENCE / 2)).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut bytes).map(|_| bytes)
    });
    // Everything let go before any assertion.
    gate.set();
    hub.join().unwrap();
    assert!(filled, "the pool's threads did not all start");
    let bytes = got
        .expect("the peer")
        .expect("the end of the stream while the pool is busy");
    assert_eq!(bytes, b"bye");
}
