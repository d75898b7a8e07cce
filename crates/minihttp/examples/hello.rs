//! Plaintext "Hello, World!" on 127.0.0.1:PORT (default 8080), one hub per
//! core: the server that `cargo xtask bench http` measures. `--batch` runs
//! the hubs under the batch scheduling policy
//! ([`Server::batch_scheduling`]); `--no-locality` turns off
//! [`Server::connection_locality`].
//!
//! ```text
//! cargo run --release -p minihttp --example hello -- --port 8080
//! ```

use minihttp::{Response, Server};

fn main() {
    let mut port: u16 = 8080;
    let mut batch = false;
    let mut locality = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--batch" => {
                batch = true;
                continue;
            }
            "--no-locality" => {
                locality = false;
                continue;
            }
            _ => {}
        }
        match (arg.as_str(), args.next().map(|v| v.parse())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: hello [--port N] [--batch] [--no-locality]");
                std::process::exit(2);
            }
        }
    }
    let server = match Server::bind(("127.0.0.1", port)) {
        Ok(s) => s.batch_scheduling(batch).connection_locality(locality),
        Err(e) => {
            eprintln!("hello: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("hello: serving on http://{}/", server.local_addr());
    // A static body: no allocation for it per request.
    let served = server.serve(|_req| async { Response::text("Hello, World!") });
    if let Err(e) = served {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}
