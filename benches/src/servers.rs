//! The peer servers, run as child processes of the benchmarks:
//! `benches serve hyper-hello PORT`, `benches serve may-hello PORT`,
//! `benches serve may-hello-batch PORT` (may_minihttp with its threads
//! under the batch scheduling policy, beside minihttp's `--batch` row),
//! `benches serve tokio-echo PORT`. All bind 127.0.0.1 only.

use std::convert::Infallible;
use std::io;
use std::process::ExitCode;

const HELLO: &[u8] = b"Hello, World!";

pub(crate) fn serve(args: &[String]) -> ExitCode {
    let (Some(kind), Some(port)) = (
        args.first(),
        args.get(1).and_then(|p| p.parse::<u16>().ok()),
    ) else {
        eprintln!("usage: benches serve (hyper-hello|may-hello|may-hello-batch|tokio-echo) PORT");
        return ExitCode::from(2);
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let result = match kind.as_str() {
        "hyper-hello" => hyper_hello(addr),
        "may-hello" => may_hello(addr),
        "may-hello-batch" => batch_policy().and_then(|()| may_hello(addr)),
        "tokio-echo" => tokio_echo(addr),
        other => {
            eprintln!("unknown server {other}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{kind}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// hyper 1.x on tokio's multi-thread runtime (one worker per core),
/// HTTP/1.1 keep-alive, with `pipeline_flush` on (hyper's best setting for
/// pipelined clients).
fn hyper_hello(addr: std::net::SocketAddr) -> io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
                    let mut rsp = Response::new(Full::new(Bytes::from_static(HELLO)));
                    rsp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, Infallible>(rsp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// may_minihttp: stackful coroutines, one worker per core.
fn may_hello(addr: std::net::SocketAddr) -> io::Result<()> {
    use may_minihttp::{HttpServer, HttpService, Request, Response};

    #[derive(Clone)]
    struct Hello;
    impl HttpService for Hello {
        fn call(&mut self, _req: Request<'_, '_, '_>, rsp: &mut Response<'_>) -> io::Result<()> {
            rsp.header("Content-Type: text/plain").body("Hello, World!");
            Ok(())
        }
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    may::config().set_workers(workers);
    let server = HttpServer(Hello).start(addr)?;
    server
        .join()
        .map_err(|_| io::Error::other("may server panicked"))
}

/// Gives the calling thread, and so the threads it starts after, the batch
/// scheduling policy (Linux; an error elsewhere or where refused).
fn batch_policy() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a `sched_param` is made of integers (with private padding
        // on some C libraries, hence no struct literal), for which all-zero
        // is valid: priority 0, the batch policy's only one.
        let param: libc::sched_param = unsafe { std::mem::zeroed() };
        // SAFETY: `param` is a valid `sched_param`, only read;
        // `pthread_self()` is the calling thread, alive.
        let rc =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_BATCH, &param) };
        if rc == 0 {
            return Ok(());
        }
        Err(io::Error::from_raw_os_error(rc))
    }
    #[cfg(not(target_os = "linux"))]
    Err(io::Error::other("the batch scheduling policy is Linux's"))
}

/// The echo server of the `io` benchmarks on tokio: one task per
/// connection, on a current-thread runtime (one thread, like one hub).
fn tokio_echo(addr: std::net::SocketAddr) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
