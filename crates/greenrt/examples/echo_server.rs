//! gevent's `StreamServer` echo server: one green task per connection,
//! every connection on one thread (one hub).
//!
//! `cargo run -p greenrt --example echo_server -- --port 9000`, then
//! `nc 127.0.0.1 9000` and type.

use greenrt::net::TcpListener;

fn main() {
    let mut port: u16 = 9000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--port", Some(p)) => match p.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(&format!("not a port number: {p}")),
            },
            _ => return usage(&format!("unexpected argument: {a}")),
        }
    }
    let result: std::io::Result<()> = greenrt::run(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        eprintln!("echo server on {}", listener.local_addr()?);
        loop {
            let (conn, peer) = listener.accept().await?;
            let _ = conn.set_nodelay(true);
            greenrt::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            eprintln!("{peer}: {e}");
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Err(e) = result {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}

fn usage(problem: &str) {
    eprintln!("echo_server: {problem}\nusage: echo_server [--port N]");
    std::process::exit(2);
}
