//! The lecture notes' `http_server_select.py`, on minihttp: `/` answers a
//! small page, anything else `404 Not Found`, and every page shows the raw
//! request the server received (request line, header lines, the empty CRLF
//! line), as the notes draw it.
//!
//! ```text
//! cargo run -p minihttp --example http_server
//! ```
//! then open http://127.0.0.1:8080/ (and http://127.0.0.1:8080/missing).

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
    let (status, title, text) = if req.path() == "/" {
        (
            StatusCode::OK,
            "Welcome",
            "The server answered <code>/</code> with 200 OK.",
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            "404 Not Found",
            "Only <code>/</code> exists here: this is the notes' 404.",
        )
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p><h2>The request this server received</h2>\
         <pre>{raw}</pre></body></html>"
    );
    eprintln!("{} {} -> {}", req.method(), req.target(), status.as_u16());
    let mut response = Response::html(page);
    response.set_status(status);
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
