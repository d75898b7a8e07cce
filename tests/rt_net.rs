//! greenrt's green sockets end to end, on 127.0.0.1, bounded, with events
//! (not sleeps) ordering what must happen first.

use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, AsyncWriteExt, StreamExt};
use greenrt::net::{TcpListener, TcpStream, UdpSocket, registered_sockets};
use greenrt::{GreenletError, spawn, spawn_blocking, timeout, yield_now};
use sync_prims::Event;

/// The byte `j` of client `i`'s message: distinct per client and position.
fn pattern(i: usize, j: usize) -> u8 {
    ((i * 131 + j * 7 + j / 251) % 256) as u8
}

async fn echo_forever(listener: TcpListener) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            return;
        };
        spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

#[test]
fn echo_1000_concurrent_clients_64k_each() {
    const CLIENTS: usize = 1000;
    const LEN: usize = 64 * 1024;
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(echo_forever(listener));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                spawn(async move {
                    let stream = Rc::new(TcpStream::connect(addr).await?);
                    let msg: Vec<u8> = (0..LEN).map(|j| pattern(i, j)).collect();
                    // Write and read at once (one task each way), or large
                    // messages would fill both socket buffers and stall.
                    let writer = {
                        let stream = stream.clone();
                        spawn(async move {
                            stream.write_all(&msg).await?;
                            stream.shutdown(Shutdown::Write)
                        })
                    };
                    let mut back = Vec::with_capacity(LEN);
                    (&*stream).read_to_end(&mut back).await?;
                    writer.await.expect("writer task")?;
                    io::Result::Ok(back)
                })
            })
            .collect();
        // Bounded: a lost wake-up fails the test instead of hanging it.
        let all = greenrt::joinall(&clients, Some(Duration::from_secs(120))).await;
        assert_eq!(all.len(), CLIENTS, "every client finished in time");
        for (i, c) in clients.into_iter().enumerate() {
            let back = c.await.expect("client task").expect("client io");
            assert_eq!(back.len(), LEN, "client {i} got every byte");
            assert!(
                back.iter().enumerate().all(|(j, &b)| b == pattern(i, j)),
                "client {i}: bytes in order"
            );
        }
        server.kill();
    });
}

#[test]
fn fast_writer_slow_reader_loses_nothing() {
    const LEN: usize = 16 << 20;
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = spawn(async move {
            let (conn, _) = listener.accept().await?;
            let mut buf = [0u8; 4096];
            let (mut total, mut sum) = (0usize, 0u64);
            loop {
                let n = conn.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok((total, sum));
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, ((total + k) % 253) as u8, "byte {} in order", total + k);
                    sum += u64::from(b);
                }
                total += n;
                yield_now().await; // a slow reader: everyone else runs between reads
            }
        });
        let mut out = TcpStream::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..LEN).map(|k| (k % 253) as u8).collect();
        // Bounded: a lost wake-up fails the test instead of hanging it.
        let limit = Duration::from_secs(120);
        greenrt::timeout(limit, out.write_all(&data))
            .await
            .expect("written in time")
            .unwrap();
        out.close().await.unwrap();
        let (total, sum) = greenrt::timeout(limit, reader)
            .await
            .expect("read in time")
            .unwrap()
            .unwrap();
        assert_eq!(total, LEN);
        assert_eq!(sum, data.iter().map(|&b| u64::from(b)).sum::<u64>());
    });
}

#[test]
fn eof_and_half_close() {
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut conn, _) = listener.accept().await?;
            let mut got = Vec::new();
            conn.read_to_end(&mut got).await?; // ends at the client's half-close
            conn.write_all(format!("got {} bytes", got.len()).as_bytes())
                .await?;
            conn.close().await?;
            io::Result::Ok(got)
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"hello, half-closed").await.unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "got 18 bytes");
        let mut more = [0u8; 8];
        assert_eq!(
            c.read(&mut more).await.unwrap(),
            0,
            "end of stream stays end of stream"
        );
        assert_eq!(server.await.unwrap().unwrap(), b"hello, half-closed");
    });
}

#[test]
fn readable_waits_for_bytes_or_the_peer_closing() {
    /// Polls `fut` once, under the task's own context.
    async fn pending(fut: std::pin::Pin<&mut impl Future<Output = io::Result<()>>>) -> bool {
        let mut fut = Some(fut);
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(fut.take().is_some_and(|f| f.poll(cx).is_pending()))
        })
        .await
    }
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 16];
        for word in [&b"ping"[..], b"pong"] {
            client.write_all(word).await.unwrap();
            conn.readable().await.unwrap();
            // A short read: the socket is drained, and says so.
            assert_eq!(conn.read(&mut buf).await.unwrap(), 4);
            assert_eq!(&buf[..4], word);
            let mut ready = std::pin::pin!(conn.readable());
            assert!(
                pending(ready.as_mut()).await,
                "readable with nothing to read"
            );
        }
        client.shutdown(Shutdown::Write).unwrap();
        conn.readable().await.unwrap();
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn dropping_a_stream_that_lingers_holds_no_hub_up() {
    // With `SO_LINGER` at a time that is not zero, the system's close
    // waits (non-blocking socket or not) until the bytes sent are
    // acknowledged: here never, the peer does not read. That close ran
    // on the hub's thread and stopped every task of the hub for the
    // whole linger time.
    const LINGER: Duration = Duration::from_secs(120);
    let (dropped, peer_out) = (Arc::new(Event::new()), Arc::new(Event::new()));
    let (d, p) = (dropped.clone(), peer_out.clone());
    let (peer_tx, peer_rx) = std::sync::mpsc::channel();
    let hub = std::thread::spawn(move || {
        greenrt::run(async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (peer, _) = listener.accept().unwrap();
            peer_tx.send(peer).unwrap();
            c.set_linger(Some(LINGER)).unwrap();
            // Fill both socket buffers: the close cannot send its end.
            let chunk = vec![0u8; 1 << 16];
            while let Ok(written) = timeout(Duration::from_millis(200), c.write(&chunk)).await {
                written.unwrap();
            }
            drop(c);
            d.set();
            // The hub goes on: this task still runs, and waits for the end.
            p.wait_async().await;
        })
    });
    let peer = peer_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    // Far below the linger time: the drop returns at once when the close
    // is not on the hub's thread.
    let returned = dropped.wait_timeout(LINGER / 4);
    // The lingering close ends when the peer goes.
    drop(peer);
    peer_out.set();
    hub.join().unwrap();
    assert!(returned, "dropping the stream held the hub up");
}

#[test]
fn connection_refused_has_its_kind() {
    greenrt::run(async {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        }; // closed: nothing listens there now
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn read_with_a_deadline_times_out() {
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            // Hold the connection open without writing.
            std::future::pending::<()>().await;
            drop(conn);
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let d = Duration::from_millis(30);
        let t = Instant::now();
        assert!(
            timeout(d, c.read(&mut buf)).await.is_err(),
            "nothing to read: the deadline wins"
        );
        assert!(t.elapsed() >= d);
    });
}

#[test]
fn killing_blocked_tasks_leaves_no_registration() {
    greenrt::run(async {
        let baseline = registered_sockets();
        // A task blocked in accept.
        let in_accept = Arc::new(Event::new());
        let acceptor = {
            let in_accept = in_accept.clone();
            spawn(async move {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                in_accept.set();
                let _ = listener.accept().await;
            })
        };
        in_accept.wait_async().await;
        assert_eq!(registered_sockets(), baseline + 1);
        acceptor.kill();
        assert!(matches!(acceptor.await, Err(GreenletError::Killed)));
        assert_eq!(
            registered_sockets(),
            baseline,
            "the listener left the reactor"
        );

        // A task blocked in read.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let in_read = Arc::new(Event::new());
        let reader = {
            let in_read = in_read.clone();
            spawn(async move {
                let c = TcpStream::connect(addr).await.unwrap();
                in_read.set();
                let mut buf = [0u8; 1];
                let _ = c.read(&mut buf).await;
            })
        };
        let (server_side, _) = listener.accept().await.unwrap();
        in_read.wait_async().await;
        assert_eq!(registered_sockets(), baseline + 3);
        reader.kill();
        assert!(matches!(reader.await, Err(GreenletError::Killed)));
        drop((server_side, listener));
        assert_eq!(registered_sockets(), baseline);
    });
}

#[test]
fn a_plain_thread_wakes_a_task_while_the_hub_sleeps_in_the_reactor() {
    greenrt::run(async {
        // A registered socket keeps the hub sleeping in the reactor's wait.
        let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (waiting, go) = (Arc::new(Event::new()), Arc::new(Event::new()));
        let thread = {
            let (waiting, go) = (waiting.clone(), go.clone());
            std::thread::spawn(move || {
                waiting.wait();
                go.set();
            })
        };
        let task = {
            let (waiting, go) = (waiting.clone(), go.clone());
            spawn(async move {
                let mut wait = std::pin::pin!(go.wait_async());
                // Queued on `go` (still clear) before the thread may set it:
                // only its wake-up can end the wait.
                let first = tests::pending_once(wait.as_mut()).await;
                assert!(first);
                waiting.set();
                wait.await;
                "woken"
            })
        };
        assert_eq!(task.await.unwrap(), "woken");
        thread.join().unwrap();
    });
}

#[test]
fn reuseport_listeners_on_two_hubs_both_accept() {
    let rt = greenrt::Runtime::builder().workers(2).build().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ready = Arc::new(sync_prims::Lock::new(0usize));
    let both_ready = Arc::new(Event::new());
    let counts: Vec<_> = (0..2)
        .map(|hub| {
            let (ready, both_ready) = (ready.clone(), both_ready.clone());
            rt.spawn_on(hub, async move {
                let listener = TcpListener::bind_reuseport(("127.0.0.1", port))?;
                {
                    let mut r = ready.acquire_async().await;
                    *r += 1;
                    if *r == 2 {
                        both_ready.set();
                    }
                }
                let mut accepted = 0usize;
                let mut incoming = listener.incoming();
                while let Some(conn) = incoming.next().await {
                    let conn = conn?;
                    let mut b = [0u8; 1];
                    conn.read_exact(&mut b).await?;
                    if b[0] == b'q' {
                        return io::Result::Ok(accepted);
                    }
                    accepted += 1;
                    conn.write_all(&b).await?;
                }
                Ok(accepted)
            })
        })
        .collect();
    assert!(
        both_ready.wait_timeout(tests::BOUND),
        "the tasks never got ready"
    );
    // The kernel spreads connections by their address hash: 200 make it all
    // but certain (1 in 2^199 otherwise) that both listeners get some.
    for _ in 0..200 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        std::io::Write::write_all(&mut c, b"x").unwrap();
        let mut b = [0u8; 1];
        std::io::Read::read_exact(&mut c, &mut b).unwrap();
    }
    // Stop each listener: connect until each has seen a 'q' (at most
    // 1,000 connections: a listener that never stops fails the test).
    let mut results = Vec::new();
    for g in &counts {
        let mut tries = 0;
        while !g.ready() {
            tries += 1;
            assert!(tries <= 1000, "a listener did not stop");
            if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = std::io::Write::write_all(&mut c, b"q");
                let _ = g.join_timeout_blocking(Duration::from_millis(50));
            }
        }
    }
    for g in counts {
        results.push(tests::finished(g).unwrap().unwrap());
    }
    assert_eq!(results.iter().sum::<usize>(), 200);
    assert!(
        results.iter().all(|&n| n > 0),
        "both hubs accepted: {results:?}"
    );
}

#[test]
fn udp_send_to_recv_from_and_connected() {
    greenrt::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let receiver = spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await?;
            b.connect(from)?;
            b.send(&buf[..n]).await?;
            io::Result::Ok((buf[..n].to_vec(), from))
        });
        yield_now().await; // the receiver is now waiting in recv_from
        assert_eq!(a.send_to(b"datagram", ba).await.unwrap(), 8);
        a.connect(ba).unwrap();
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"datagram");
        let (got, from) = receiver.await.unwrap().unwrap();
        assert_eq!(got, b"datagram");
        // `recv_from` named the sender.
        assert_eq!(from, aa);
    });
}

#[test]
fn a_listener_and_a_udp_socket_move_to_another_hub_through_std() {
    let rt = greenrt::Runtime::builder().workers(2).build().unwrap();
    let (listener, udp) = tests::finished(rt.spawn_on(0, async {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            u.peer_addr().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
        let baseline = registered_sockets();
        let moved = (l.into_std(), u.into_std());
        assert_eq!(
            registered_sockets(),
            baseline - 2,
            "they left this hub's reactor"
        );
        moved
    }))
    .unwrap();
    // A connection and a datagram that arrive while neither is on a hub.
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"moved", udp.local_addr().unwrap()).unwrap();
    let got = tests::finished(rt.spawn_on(1, async move {
        let l = TcpListener::from_std(listener).unwrap();
        let u = UdpSocket::from_std(udp).unwrap();
        let (_, from) = timeout(Duration::from_secs(30), l.accept())
            .await
            .expect("the connection made before the move never came")
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, peer) = timeout(Duration::from_secs(30), u.recv_from(&mut buf))
            .await
            .expect("the datagram sent before the move never came")
            .unwrap();
        u.connect(peer).unwrap();
        assert_eq!(u.peer_addr().unwrap(), peer);
        (from, buf[..n].to_vec(), peer)
    }))
    .unwrap();
    assert_eq!(
        got,
        (
            client.local_addr().unwrap(),
            b"moved".to_vec(),
            sender.local_addr().unwrap()
        )
    );
}

#[test]
fn a_refused_datagram_is_reported_once_and_the_socket_waits_again() {
    // On a thread of its own, so that a hub spinning in a poll fails the
    // test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = greenrt::run(async {
            let closed = {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.local_addr().unwrap()
            };
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            a.connect(closed).unwrap();
            // A second socket, waiting for a datagram sent after the
            // refused one: its read ends only once the reactor has taken
            // the events, the refusal's error event among them (which must
            // come before the read of `a` below consumes the error itself,
            // after which the kernel reports no event).
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut b_buf = [0u8; 4];
            let mut b_recv = std::pin::pin!(b.recv_from(&mut b_buf));
            let waiting = tests::pending_once(b_recv.as_mut()).await;
            assert!(waiting);
            a.send(b"anyone?").await.unwrap();
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
            assert_eq!(b_recv.await.unwrap().0, 4);
            let mut buf = [0u8; 16];
            // The port's refusal comes back as an error, once.
            let first = a.recv(&mut buf).await.map_err(|e| e.kind());
            // Then nothing is there: the read waits (here, until the
            // timeout) instead of finding the direction ready forever.
            let second = greenrt::timeout(Duration::from_millis(50), a.recv(&mut buf)).await;
            (first, second.is_err())
        });
        let _ = tx.send(result);
    });
    let (first, timed_out) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the hub went on");
    assert_eq!(first, Err(io::ErrorKind::ConnectionRefused));
    assert!(timed_out);
}

#[test]
fn spawn_blocking_results_panics_and_many_jobs() {
    greenrt::run(async {
        assert_eq!(spawn_blocking(|| 6 * 7).await.unwrap(), 42);
        match spawn_blocking(|| -> u8 { panic!("blocking boom") }).await {
            Err(GreenletError::Panicked(m)) => assert!(m.message().contains("blocking boom")),
            other => panic!("expected the panic, got {other:?}"),
        }
        // More jobs than the pool has threads: they queue, and all finish.
        let gate = Arc::new(Event::new());
        let jobs: Vec<_> = (0..100)
            .map(|i| {
                let gate = gate.clone();
                spawn_blocking(move || {
                    gate.wait();
                    i
                })
            })
            .collect();
        gate.set();
        let mut sum = 0;
        for j in jobs {
            sum += j.await.unwrap();
        }
        assert_eq!(sum, (0..100).sum::<i32>());
    });
}

#[test]
fn data_and_fin_in_one_edge_still_end_the_stream() {
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A plain thread sends a few bytes and closes before the server
        // reads anything, so the bytes and the FIN arrive together.
        let sent = Arc::new(Event::new());
        let client = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                std::io::Write::write_all(&mut c, b"short").unwrap();
                drop(c);
                sent.set();
            })
        };
        let (conn, _) = listener.accept().await.unwrap();
        sent.wait_async().await;
        let mut buf = [0u8; 1024];
        assert_eq!(conn.read(&mut buf).await.unwrap(), 5, "a short read");
        let end = timeout(Duration::from_secs(30), conn.read(&mut buf)).await;
        assert_eq!(
            end.expect("end of stream is seen, not waited for").unwrap(),
            0
        );
        client.join().unwrap();
    });
}

/// Bytes `fd` sent that its peer's kernel has not acknowledged.
#[cfg(target_os = "linux")]
fn unacknowledged(fd: std::os::fd::RawFd) -> libc::c_int {
    let mut n: libc::c_int = 0;
    // SAFETY: `fd` is an open TCP socket, and `n` the `int` that
    // `TIOCOUTQ` writes.
    assert_eq!(unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) }, 0);
    n
}

#[cfg(target_os = "linux")]
#[test]
fn bytes_past_an_urgent_mark_are_read_without_another_event() {
    use std::os::fd::AsRawFd;
    // The peer sends "abc", one urgent byte, then "def", and stays open. A
    // read stops at the urgent mark: short ("abc"), with "def" queued and
    // no event to come for it.
    on_a_hub_of_its_own(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_nodelay(true).unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        // Use up the readiness a new stream starts with.
        let mut byte = [0u8; 1];
        assert!(timeout(Duration::ZERO, conn.read(&mut byte)).await.is_err());
        let fd = peer.as_raw_fd();
        for (bytes, flags) in [(&b"abc"[..], 0), (b"!", libc::MSG_OOB), (b"def", 0)] {
            // SAFETY: `fd` is open, and `bytes` valid for its length.
            let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
            assert_eq!(n, bytes.len() as isize);
        }
        // Every byte acknowledged, so in `conn`'s queue (a bounded wait on
        // the kernel's count), and two rounds of the hub, each polling the
        // reactor: every event of those bytes came before the read.
        let deadline = Instant::now() + Duration::from_secs(30);
        while unacknowledged(fd) > 0 {
            assert!(Instant::now() < deadline, "the bytes never arrived");
            yield_now().await;
        }
        yield_now().await;
        yield_now().await;
        let mut got = [0u8; 6];
        let read = timeout(Duration::from_secs(30), conn.read_exact(&mut got)).await;
        read.expect("the bytes past the mark are read, not waited for")
            .unwrap();
        assert_eq!(&got, b"abcdef");
        drop(peer);
    });
}

#[test]
fn a_root_that_only_yields_still_sees_sockets_become_ready() {
    // gevent's `while not done: sleep(0)`: the root never waits, so the hub
    // never parks in the reactor; the reactor must be polled all the same.
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Rc::new(std::cell::Cell::new(false));
        let done = accepted.clone();
        spawn(async move {
            listener.accept().await.unwrap();
            done.set(true);
        });
        // The task runs (and waits in accept) in this round.
        yield_now().await;
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let mut rounds = 0u32;
        while !accepted.get() {
            rounds += 1;
            assert!(rounds < 1_000_000, "the accept never saw the connection");
            yield_now().await;
        }
    });
}

#[cfg(target_os = "linux")]
#[test]
fn accepted_sockets_are_not_inherited_by_child_processes() {
    use std::os::fd::AsRawFd;
    /// The descriptor's flags, from `/proc/self/fdinfo`.
    fn flags(fd: i32) -> u32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap()
    }
    /// The `O_CLOEXEC` bit; every green socket is non-blocking too.
    fn cloexec(fd: i32) -> bool {
        assert_ne!(flags(fd) & 0o4000, 0, "descriptor {fd} blocks");
        flags(fd) & 0o2000000 != 0
    }
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        for (what, fd) in [
            ("listener", listener.as_raw_fd()),
            ("connected", client.as_raw_fd()),
            ("accepted", conn.as_raw_fd()),
        ] {
            assert!(cloexec(fd), "{what} socket is inherited");
        }
    });
}

#[test]
fn a_socket_that_outlives_its_hub_fails_instead_of_waiting_for_good() {
    // Made in `block_on`, whose hub ends with it, then used on a worker:
    // no reactor waits for its readiness any more.
    let rt = greenrt::Runtime::builder().workers(1).build().unwrap();
    let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0").unwrap() });
    let mut accept = rt.spawn(async move { listener.accept().await.map(|_| ()) });
    assert!(
        accept.join_timeout_blocking(Duration::from_secs(30)),
        "the accept waits for good"
    );
    let err = accept.try_get().unwrap().unwrap().unwrap_err();
    assert!(err.to_string().contains("has stopped"), "{err}");
    // Its connections stream says so once, then ends (rather than trying
    // again every 10 ms for good).
    let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0").unwrap() });
    let mut incoming = rt.spawn(async move {
        let mut connections = listener.incoming();
        let first = connections.next().await.map(|r| r.is_err());
        (first, connections.next().await.is_none())
    });
    assert!(incoming.join_timeout_blocking(Duration::from_secs(30)));
    assert_eq!(incoming.try_get().unwrap().unwrap(), (Some(true), true));
}

#[test]
fn an_accept_off_any_hub_after_its_hub_stopped_leaves_the_connection_in_the_backlog() {
    let listener = greenrt::run(async { TcpListener::bind("127.0.0.1:0").unwrap() });
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // On a plain thread, no reactor could take the connection: the error
    // comes back, and the connection is not taken (only to be dropped).
    let err = futures_executor::block_on(listener.accept())
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("has stopped"), "{err}");
    let listener = listener.into_std();
    let deadline = Instant::now() + Duration::from_secs(30);
    let accepted = loop {
        match listener.accept() {
            Ok(_) => break true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::yield_now();
            }
            Err(_) => break false,
        }
    };
    assert!(accepted, "the connection was lost");
}

#[test]
fn every_task_waiting_on_a_shared_socket_is_woken() {
    greenrt::run(async {
        let sock = Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = sock.local_addr().unwrap();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let s = sock.clone();
                spawn(async move {
                    let mut buf = [0u8; 16];
                    let (n, _) = s.recv_from(&mut buf).await?;
                    io::Result::Ok(buf[..n].to_vec())
                })
            })
            .collect();
        yield_now().await; // all three wait in recv_from
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for d in [b"one", b"two", b"six"] {
            sender.send_to(d, addr).await.unwrap();
        }
        let mut got = Vec::new();
        for r in readers {
            // A bound only so that a reader never woken fails the test.
            let r = timeout(Duration::from_secs(60), r).await.expect("woken");
            got.push(r.unwrap().unwrap());
        }
        got.sort();
        assert_eq!(got, [b"one", b"six", b"two"]);

        // The same for connections accepted by two tasks on one listener.
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..2)
            .map(|_| {
                let l = listener.clone();
                spawn(async move { l.accept().await.map(|(_, peer)| peer) })
            })
            .collect();
        yield_now().await; // both wait in accept
        let clients = [
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        ];
        let mut peers = Vec::new();
        for a in acceptors {
            let a = timeout(Duration::from_secs(60), a).await.expect("woken");
            peers.push(a.unwrap().unwrap());
        }
        let mut mine: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        peers.sort();
        mine.sort();
        assert_eq!(peers, mine);
    });
}

#[test]
fn empty_reads_and_writes_and_many_slices() {
    greenrt::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // An idle connection: an empty read or write has nothing to wait
        // for (the readiness of a new socket is used up first).
        let mut byte = [0u8; 1];
        assert!(
            timeout(Duration::ZERO, client.read(&mut byte))
                .await
                .is_err()
        );
        let empty = timeout(Duration::from_secs(60), client.read(&mut [])).await;
        assert_eq!(empty.expect("no wait").unwrap(), 0);
        assert_eq!(client.write(&[]).await.unwrap(), 0);
        // More slices than one system call takes, the first 1500 of them
        // empty: short writes, never an error or a write of nothing, and
        // every byte arrives.
        let pieces: Vec<[u8; 1]> = (0..3000u32).map(|i| [(i % 251) as u8]).collect();
        let mut slices: Vec<io::IoSlice<'_>> = vec![io::IoSlice::new(&[]); 1500];
        slices.extend(pieces.iter().map(|p| io::IoSlice::new(p)));
        let mut sent = 0;
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = client.write_vectored(rest).await.unwrap();
            assert!(n > 0);
            sent += n;
            io::IoSlice::advance_slices(&mut rest, n);
        }
        assert_eq!(sent, 3000);
        let mut got = vec![0u8; 3000];
        server.read_exact(&mut got).await.unwrap();
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    });
}

#[test]
fn bind_tries_every_address_in_turn() {
    greenrt::run(async {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let free: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        // The first address is in use: the second is bound.
        let l = TcpListener::bind(&[busy, free][..]).unwrap();
        assert_ne!(l.local_addr().unwrap(), busy);
        assert!(TcpListener::bind(busy).is_err());
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ubusy = u.local_addr().unwrap();
        let u2 = UdpSocket::bind(&[ubusy, free][..]).unwrap();
        assert_ne!(u2.local_addr().unwrap(), ubusy);
    });
}

#[test]
fn a_connection_moves_to_another_hub_with_its_unread_bytes() {
    let rt = greenrt::Runtime::builder().workers(2).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Sent before the server side moves, and nothing after until it is
    // read there: the other hub must see these bytes without a new event.
    std::io::Write::write_all(&mut client, b"before").unwrap();
    let moved = tests::finished(rt.spawn_on(0, async move {
        let listener = TcpListener::from_std(listener).unwrap();
        let baseline = registered_sockets();
        let (conn, _) = listener.accept().await.unwrap();
        assert_eq!(registered_sockets(), baseline + 1);
        let conn = conn.into_std();
        assert_eq!(registered_sockets(), baseline, "it left this hub's reactor");
        conn
    }))
    .unwrap();
    let echoed = rt.spawn_on(1, async move {
        let conn = TcpStream::from_std(moved).unwrap();
        let mut got = [0u8; 6];
        timeout(Duration::from_secs(30), conn.read_exact(&mut got))
            .await
            .expect("the bytes sent before the move never came")
            .unwrap();
        conn.write_all(&got).await.unwrap();
        got
    });
    assert_eq!(&tests::finished(echoed).unwrap(), b"before");
    let mut back = [0u8; 6];
    std::io::Read::read_exact(&mut client, &mut back).unwrap();
    assert_eq!(&back, b"before");
}

#[test]
fn pinned_cpu_names_the_cpu_of_a_pinned_hub_only() {
    assert_eq!(greenrt::pinned_cpu(), None, "not a hub");
    let unpinned = greenrt::Runtime::builder()
        .workers(1)
        .pin_workers(false)
        .build()
        .unwrap();
    assert_eq!(
        tests::finished(unpinned.spawn(async { greenrt::pinned_cpu() })),
        Ok(None)
    );
    greenrt::run(async { assert_eq!(greenrt::pinned_cpu(), None, "a hub of `run`") });
    let pinned = greenrt::Runtime::builder()
        .workers(2)
        .pin_workers(true)
        .build()
        .unwrap();
    for hub in 0..2 {
        let (cpu, current) = tests::finished(
            pinned.spawn_on(hub, async { (greenrt::pinned_cpu(), tests::thread_cpus()) }),
        )
        .unwrap();
        match cpu {
            // The hub runs on that CPU alone.
            Some(cpu) => assert_eq!(current, Some(vec![cpu])),
            // Pinning was refused (a system that forbids it).
            None => eprintln!("note: hub {hub} was not pinned (its CPUs: {current:?})"),
        }
    }
}

/// A waker that drops the socket it holds when woken (as an executor that
/// shut down drops the task it is told to run).
struct DropOnWake(std::sync::Mutex<Option<TcpStream>>);

impl std::task::Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.0.lock().unwrap().take();
    }
}

#[test]
fn a_waker_that_drops_a_socket_of_the_same_reactor_does_not_stop_it() {
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        greenrt::run(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let near = TcpStream::connect(addr).await.unwrap();
            let (far, _) = listener.accept().await.unwrap();
            let other = TcpStream::connect(addr).await.unwrap();
            let holder = Arc::new(DropOnWake(std::sync::Mutex::new(Some(other))));
            let waker = std::task::Waker::from(holder.clone());
            // `far` has nothing to read: the waker waits on it (and stays in
            // its list when the read is dropped, until the next event).
            let mut cx = std::task::Context::from_waker(&waker);
            let mut buf = [0; 1];
            let mut read = std::pin::pin!(far.read(&mut buf));
            assert!(std::future::Future::poll(read.as_mut(), &mut cx).is_pending());
            near.write_all(b"x").await.unwrap();
            // The reactor wakes it with the byte's event, and the socket it
            // drops leaves that reactor.
            while holder.0.lock().unwrap().is_some() {
                yield_now().await;
            }
            // The hub goes on with its I/O.
            let mut byte = [0; 1];
            far.read_exact(&mut byte).await.unwrap();
            assert_eq!(&byte, b"x");
        });
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_secs(60))
        .expect("the hub stopped in the wake-up");
}

/// A waker that panics when woken.
struct PanicsOnWake;

impl std::task::Wake for PanicsOnWake {
    fn wake(self: Arc<Self>) {
        panic!("a reader's waker that panics");
    }
}

/// A waker that sets an event when woken.
struct SetsEvent(Event);

impl std::task::Wake for SetsEvent {
    fn wake(self: Arc<Self>) {
        self.0.set();
    }
}

/// Closes `peer` with a reset (`SO_LINGER` of zero) rather than a FIN.
#[cfg(target_os = "linux")]
fn reset(peer: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `peer`'s descriptor is open for the call; the option value is
    // a `linger` of the size passed, only read.
    let rc = unsafe {
        libc::setsockopt(
            peer.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    drop(peer);
}

#[cfg(target_os = "linux")]
#[test]
fn a_reader_waker_that_panics_does_not_keep_the_writer_from_its_wake_up() {
    use futures_util::{AsyncRead, AsyncWrite};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    // A worker hub, which goes on after a panic out of a round.
    let rt = greenrt::Runtime::builder().workers(1).build().unwrap();
    let peer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peer_listener.local_addr().unwrap();
    let writer_woken = Arc::new(SetsEvent(Event::new()));
    let armed = Arc::new(Event::new());
    let (w, a) = (writer_woken.clone(), armed.clone());
    let kept = rt.spawn(async move {
        let s = TcpStream::connect(addr).await.unwrap();
        // The peer never reads: writes fill the buffers until one would
        // block, and its waker (which sets the event) waits.
        let writer = Waker::from(w);
        let chunk = vec![0u8; 1 << 16];
        for _ in 0..100_000 {
            match Pin::new(&mut &s).poll_write(&mut Context::from_waker(&writer), &chunk) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => break,
            }
        }
        // Nothing to read: a reader whose waker panics waits too.
        let reader = Waker::from(Arc::new(PanicsOnWake));
        let mut byte = [0u8; 1];
        let read = Pin::new(&mut &s).poll_read(&mut Context::from_waker(&reader), &mut byte);
        assert!(read.is_pending());
        a.set();
        // Kept registered (in the task's output) while the test goes on.
        s
    });
    let (peer, _) = peer_listener.accept().unwrap();
    assert!(armed.wait_timeout(Duration::from_secs(60)), "waiters armed");
    // A reset: one event that closes both directions, the reader's first.
    reset(peer);
    assert!(
        writer_woken.0.wait_timeout(Duration::from_secs(60)),
        "the writer was not woken"
    );
    drop(kept);
}

/// A stream whose peer has closed: every read completes at once (with 0),
/// for good.
async fn always_readable() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    drop(client);
    server
}

/// Runs `f` on a hub of its own thread; its result, or a failure once the
/// bound passes (a task that never gives way would hang the test).
fn on_a_hub_of_its_own<T: Send + 'static>(f: impl Future<Output = T> + 'static + Send) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(greenrt::run(f));
    });
    rx.recv_timeout(tests::BOUND)
        .expect("a task looping over a ready socket never gave way")
}

/// Spawns `spinner`, a loop that never waits for anything, then another
/// task, and waits for that one: the spinner runs first, and the other
/// task runs (and the spinner can be killed) only if the spinner gives
/// way. Returns the other task's value and how the spinner ended.
async fn beside_a_spinner<T: 'static>(
    spinner: impl Future<Output = T> + 'static,
) -> (u32, Result<T, GreenletError>) {
    let spinner = spawn(spinner);
    let other = spawn(async { 7 });
    let others_ran = other.await.unwrap();
    spinner.kill();
    (others_ran, spinner.await)
}

#[test]
fn a_task_looping_over_a_ready_socket_gives_way_to_the_others() {
    let (others_ran, killed) = on_a_hub_of_its_own(async {
        let spinning = always_readable().await;
        beside_a_spinner(async move {
            let mut buf = [0u8; 16];
            loop {
                let _ = spinning.read(&mut buf).await;
            }
        })
        .await
    });
    assert_eq!(others_ran, 7);
    assert!(matches!(killed, Err(GreenletError::Killed)), "{killed:?}");
}

#[test]
fn a_timeout_around_a_loop_over_a_ready_socket_fires() {
    let r = on_a_hub_of_its_own(async {
        let s = always_readable().await;
        let mut buf = [0u8; 16];
        let mut reads = 0u64;
        let r = timeout(Duration::ZERO, async {
            loop {
                let _ = s.read(&mut buf).await;
                reads += 1;
            }
        })
        .await;
        (r.is_err(), reads)
    });
    assert!(r.0, "the timeout fired");
    // After a poll's budget of reads (128) or two: a zero timeout lets
    // its future run once, as `sleep(ZERO)` does.
    assert!((128..=256).contains(&r.1), "{} reads", r.1);
}

#[test]
fn a_loop_retrying_a_refused_connect_gives_way() {
    // A client that retries until its server is up. Refused on the same
    // machine, a connect fails at once, without waiting on the socket:
    // once it counted as no operation, the loop never gave way, so a
    // timeout around it could not fire, and a server started by another
    // task of the hub would never have run.
    let (fired, tries, others_ran, killed) = on_a_hub_of_its_own(async {
        // Nothing ever listens on port 0.
        let nowhere = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut tries = 0u64;
        let r = timeout(Duration::ZERO, async {
            loop {
                let _ = TcpStream::connect(nowhere).await;
                tries += 1;
            }
        })
        .await;
        let (others_ran, killed) = beside_a_spinner(async move {
            loop {
                let refused = TcpStream::connect(nowhere).await;
                assert!(refused.is_err());
            }
        })
        .await;
        (r.is_err(), tries, others_ran, killed)
    });
    assert!(fired, "the timeout fired");
    // After a poll's budget (128) or two, as for reads above.
    assert!((128..=256).contains(&tries), "{tries} tries");
    assert_eq!(others_ran, 7);
    assert!(matches!(killed, Err(GreenletError::Killed)), "{killed:?}");
}

#[test]
fn a_loop_of_empty_transfers_gives_way() {
    // A read into no room and a write of no bytes complete without the
    // socket; they count as operations all the same.
    let counts = on_a_hub_of_its_own(async {
        let s = always_readable().await;
        let mut counts = Vec::new();
        for op in 0..3 {
            let mut n = 0u64;
            let r = timeout(Duration::ZERO, async {
                loop {
                    let done = match op {
                        0 => s.read(&mut []).await,
                        1 => s.write(&[]).await,
                        _ => s.write_vectored(&[io::IoSlice::new(&[])]).await,
                    };
                    assert_eq!(done.unwrap(), 0);
                    n += 1;
                }
            })
            .await;
            assert!(r.is_err(), "the timeout fired");
            counts.push(n);
        }
        counts
    });
    for n in counts {
        assert!((128..=256).contains(&n), "{n} transfers");
    }
}

#[test]
fn a_read_told_to_yield_then_a_wait_for_readiness_gives_way() {
    // A server's loop between requests: a read that says Pending is taken
    // for "nothing to read", and the task waits for the socket to be
    // readable, then reads again. Once the budget is spent, the readiness
    // must say Pending too, or the loop never leaves its poll.
    let waits = on_a_hub_of_its_own(async {
        let s = always_readable().await;
        let mut buf = [0u8; 16];
        let (mut reads, mut waits) = (0, 0);
        while reads < 1000 {
            let mut read = std::pin::pin!(s.read(&mut buf));
            match std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx))).await {
                std::task::Poll::Ready(_) => reads += 1,
                std::task::Poll::Pending => {
                    waits += 1;
                    s.readable().await.unwrap();
                }
            }
        }
        waits
    });
    assert!(waits > 0, "the budget never made a read wait");
}

#[test]
fn a_root_future_that_panicked_leaves_no_budget_on_its_thread() {
    // A socket of a runtime, used from a plain thread after a `run` on
    // that thread ended in a panic: its sends are not counted against a
    // budget left over from the root's poll (which would make them say
    // Pending, for good, after 128).
    let rt = greenrt::Runtime::builder().workers(1).build().unwrap();
    let (a, b) = tests::finished(rt.spawn(async {
        (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        )
    }))
    .unwrap();
    let to = b.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let failed = std::panic::catch_unwind(|| {
            greenrt::run(async { panic!("the root fails on purpose") })
        });
        assert!(failed.is_err());
        let sent = futures_executor::block_on(async {
            let mut sent = 0;
            for _ in 0..1000 {
                sent += a.send_to(b"x", to).await.unwrap();
            }
            sent
        });
        let _ = tx.send(sent);
    });
    let sent = rx
        .recv_timeout(tests::BOUND)
        .expect("the sends never ended");
    assert_eq!(sent, 1000);
    drop(b);
}

/// One poll of `f`, from a task.
async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

#[test]
fn a_name_is_looked_up_off_the_hub_and_an_ip_at_once() {
    use std::net::ToSocketAddrs as _;
    // Bound where "localhost" leads first (127.0.0.1 or ::1).
    let here = ("localhost", 0).to_socket_addrs().unwrap().next().unwrap();
    greenrt::run(async move {
        let a = UdpSocket::bind(here).unwrap();
        let b = UdpSocket::bind(here).unwrap();
        let to = b.local_addr().unwrap();
        // By IP: sent at the first poll.
        let mut by_ip = std::pin::pin!(a.send_to(b"by ip", (to.ip(), to.port())));
        assert_eq!(
            poll_once(&mut by_ip).await.map(Result::ok),
            std::task::Poll::Ready(Some(5))
        );
        // By name: the first poll hands the lookup to the blocking pool
        // and waits, leaving the hub to its other tasks.
        let mut by_name = std::pin::pin!(a.send_to(b"by name", ("localhost", to.port())));
        assert!(poll_once(&mut by_name).await.is_pending());
        assert_eq!(by_name.await.unwrap(), 7);
        let mut buf = [0; 16];
        for want in [&b"by ip"[..], b"by name"] {
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (want, a.local_addr().unwrap()));
        }
        // Connecting by name works the same way.
        let listener = TcpListener::bind(here).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(format!("localhost:{port}"))
            .await
            .unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(client.local_addr().unwrap(), peer);
    });
}

/// The futures of the sockets' waiting calls are `Send` for any address
/// that is (checked at compile time; their lookup holds no borrow of it).
#[allow(dead_code, reason = "a compile-time check, never called")]
fn waiting_calls_are_send_for_any_send_address<A>(a: A, b: A, sock: &'static UdpSocket)
where
    A: greenrt::net::ToSocketAddrs + Send + 'static,
{
    fn send<T: Send>(_: T) {}
    send(TcpStream::connect(a));
    send(sock.send_to(b"", b));
}
