//! The lecture notes' `http_server_select.py`, on minihttp: `/` answers a
//! small page, `/secret` `401 Unauthorized` (with the `WWW-Authenticate`
//! challenge a browser answers with a login prompt), anything else `404 Not
//! Found`; every page shows the raw request the server received (request
//! line, header lines, the empty CRLF line), as the notes draw it.
//!
//! One worker is one thread, as in the notes' server. Where that server
//! calls `select()` and dispatches each ready socket in its loop, the
//! worker's hub waits in epoll (greenrt's reactor) and runs one green task
//! per connection, written as straight-line code.
//!
//! ```text
//! cargo run -p minihttp --example http_server
//! ```
//! then open http://127.0.0.1:8080/ (and http://127.0.0.1:8080/secret,
//! http://127.0.0.1:8080/missing).

use minihttp::{Request, Response, Server, StatusCode};

/// The request head as received, made visible: `\r\n` shown as `CRLF`.
fn raw_request(req: &Request) -> String {
    let head = String::from_utf8_lossy(req.head());
    let shown = head.replace("\r\n", "CRLF\n");
    shown
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn handle(req: Request) -> Response {
    let raw = raw_request(&req);
    let (status, title, text) = match req.path().as_ref() {
        "/" => (
            StatusCode::OK,
            "Welcome",
            "The server answered <code>/</code> with 200 OK.",
        ),
        "/secret" => (
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized",
            "This page needs credentials: this is the notes' 401.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "404 Not Found",
            "Only <code>/</code> and <code>/secret</code> exist here: this is the notes' 404.",
        ),
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p><h2>The request this server received</h2>\
         <pre>{raw}</pre></body></html>"
    );
    eprintln!("{} {} -> {}", req.method(), req.target(), status.as_u16());
    let mut response = Response::html(page);
    response.set_status(status);
    if status == StatusCode::UNAUTHORIZED {
        // A constant, valid field: cannot fail.
        let _ = response
            .headers_mut()
            .insert("www-authenticate", "Basic realm=\"notes\"");
    }
    response
}

fn main() {
    let server = match Server::bind("127.0.0.1:8080") {
        Ok(s) => s.workers(1),
        Err(e) => {
            eprintln!("http_server: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("http_server: open http://{}/", server.local_addr());
    if let Err(e) = server.serve(handle) {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    }
}
