//! The notes' point about overlapping I/O: N requests to a server that
//! takes a while to answer, done one after another and then by N green
//! clients at once.
//!
//! `cargo run -p greenrt --example fetch_many -- [N]` (default 20). It
//! starts its own echo server, which waits 50 ms before each answer (a
//! slow backend), on 127.0.0.1.

use std::time::{Duration, Instant};

use greenrt::net::{TcpListener, TcpStream};

const DELAY: Duration = Duration::from_millis(50);

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 20,
        Some(Ok(n)) if n > 0 && n <= 1000 => n,
        Some(_) => {
            eprintln!("usage: fetch_many [N]   (1 <= N <= 1000)");
            std::process::exit(2);
        }
    };
    greenrt::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        greenrt::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                greenrt::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(k) = conn.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        greenrt::sleep(DELAY).await; // the slow backend
                        if conn.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });

        let fetch = move |i: usize| async move {
            let c = TcpStream::connect(addr).await?;
            let msg = format!("request {i:04}");
            c.write_all(msg.as_bytes()).await?;
            let mut back = vec![0; msg.len()];
            c.read_exact(&mut back).await?;
            assert_eq!(back, msg.as_bytes());
            std::io::Result::Ok(())
        };

        let t = Instant::now();
        for i in 0..n {
            fetch(i).await.expect("sequential fetch");
        }
        let sequential = t.elapsed();
        println!("{n} requests one after another: {sequential:?}");

        let t = Instant::now();
        let clients: Vec<_> = (0..n).map(|i| greenrt::spawn(fetch(i))).collect();
        let done = greenrt::joinall(&clients, None).await;
        for c in clients {
            c.await.expect("client task").expect("concurrent fetch");
        }
        let concurrent = t.elapsed();
        println!(
            "{n} requests by {} green clients at once: {concurrent:?}",
            done.len()
        );
        println!(
            "overlapping the waits: {:.1}x faster",
            sequential.as_secs_f64() / concurrent.as_secs_f64()
        );
    });
}
