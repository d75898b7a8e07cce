//! A small router: method + path patterns with parameters, as a pure matcher
//! over [`Request`]s.

use std::future::Future;

use futures_core::future::LocalBoxFuture;

use crate::error::{Error, Kind};
use crate::method::Method;
use crate::pct;
use crate::request::Request;
use crate::response::Response;
use crate::status::StatusCode;

/// A handler stored in a [`Router`]: any `Fn(Request) -> impl Future<Output =
/// Response>`, boxed. Make one with [`handler`].
pub type BoxHandler = Box<dyn Fn(Request) -> LocalBoxFuture<'static, Response> + Send + Sync>;

/// Boxes an async function or closure into a [`BoxHandler`].
///
/// ```
/// let h = minihttp::handler(|req: minihttp::Request| async move {
///     minihttp::Response::text(format!("you asked for {}", req.path()))
/// });
/// let req = minihttp::Request::parse(b"GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let resp = futures_executor::block_on(h(req));
/// assert_eq!(resp.body().as_bytes(), Some(&b"you asked for /a b"[..]));
/// ```
pub fn handler<F, Fut>(f: F) -> BoxHandler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + 'static,
{
    Box::new(move |req| Box::pin(f(req)))
}

#[derive(Clone, PartialEq, Eq)]
enum Segment {
    /// Matches this exact segment, as bytes once percent-decoded (not as
    /// text: two segments that decode to different invalid UTF-8 differ).
    Literal(Box<[u8]>),
    /// `:name`: matches any one non-empty segment.
    Param(Box<str>),
    /// `*name`: matches the rest of the path, slashes included (last only).
    Rest(Box<str>),
}

/// A literal as its decoded bytes (escaped where they are not printable
/// ASCII), a parameter as in a pattern.
impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::Literal(lit) => write!(f, "\"{}\"", lit.escape_ascii()),
            Segment::Param(name) => write!(f, ":{name}"),
            Segment::Rest(name) => write!(f, "*{name}"),
        }
    }
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 2,
        }
    }
}

#[derive(Clone, Debug)]
struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    fn parse(pattern: &str) -> Result<Pattern, Error> {
        let bad = || Error::new(Kind::InvalidRoute);
        let rest = pattern.strip_prefix('/').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(name) = part.strip_prefix(':') {
                names.push(name);
                Segment::Param(name.into())
            } else if let Some(name) = part.strip_prefix('*') {
                if i + 1 != parts.len() {
                    return Err(bad());
                }
                names.push(name);
                Segment::Rest(name.into())
            } else {
                // Compared with the decoded request segment: decoded here
                // too, so that `/caf%C3%A9` and `/café` name the same route.
                Segment::Literal(pct::decode_segment(part).into())
            };
            segments.push(seg);
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || names[..i].contains(name) {
                return Err(bad());
            }
        }
        Ok(Pattern { segments })
    }

    /// Whether both match the same paths (their parameters' names aside).
    fn same_paths(&self, other: &Pattern) -> bool {
        self.segments.len() == other.segments.len()
            && (self.segments.iter().zip(&other.segments)).all(|pair| match pair {
                (Segment::Literal(a), Segment::Literal(b)) => a == b,
                (Segment::Param(_), Segment::Param(_)) | (Segment::Rest(_), Segment::Rest(_)) => {
                    true
                }
                _ => false,
            })
    }

    /// Matches a raw (encoded) path; on success the decoded parameters.
    fn matches(&self, path: &str) -> Option<Vec<(Box<str>, String)>> {
        let mut rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if let Segment::Rest(name) = seg {
                params.push((name.clone(), pct::decode_lossy(rest, false).into_owned()));
                return Some(params);
            }
            let (part, tail) = match rest.split_once('/') {
                Some((p, t)) => (p, Some(t)),
                None => (rest, None),
            };
            match seg {
                Segment::Literal(lit) => {
                    if !pct::segment_is(part, lit) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), pct::decode_lossy(part, false).into_owned()));
                }
                Segment::Rest(_) => {}
            }
            let last = i + 1 == self.segments.len();
            match (tail, last) {
                (None, true) => return Some(params),
                (Some(t), false) => rest = t,
                _ => return None,
            }
        }
        None
    }

    fn ranks(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments.iter().map(Segment::rank)
    }
}

/// Decoded path parameters, `(name, value)`.
type Params = Vec<(Box<str>, String)>;

struct Entry<H> {
    method: Method,
    pattern: Pattern,
    handler: H,
}

/// The outcome of routing a request.
#[derive(Debug)]
pub enum RouteMatch<'r, H> {
    /// A route matched: its handler and the decoded path parameters.
    Found {
        /// The handler.
        handler: &'r H,
        /// `(name, value)` for each `:name` / `*name` in the pattern.
        params: Vec<(Box<str>, String)>,
    },
    /// No route has this path (404).
    NotFound,
    /// Routes have this path but not this method (405); `allow` lists their
    /// methods for the `Allow` header.
    MethodNotAllowed {
        /// Comma-separated methods, e.g. `GET, HEAD, POST`.
        allow: String,
    },
}

/// Routes requests by method and path pattern.
///
/// Patterns start with `/`; a segment `:name` matches one non-empty path
/// segment, a final `*name` matches the rest of the path (slashes included,
/// possibly empty), any other segment matches itself after percent-decoding.
/// A literal is compared decoded: `/a b` matches `/a%20b`, and a `?` or
/// `#` in a pattern matches only its encoded form (`%3F`, `%23`), never a
/// query or a fragment. A trailing slash is part of the path: `/users`
/// and `/users/` are two routes (register both if both should answer;
/// with only `/users/`, a `GET` of `/users` is redirected to it, see
/// below).
/// When several routes match, the most specific wins (literal before
/// `:param` before `*rest`, segment by segment); a route that matches the
/// same paths as an earlier one of its method is refused when added.
/// `HEAD` falls back to the `GET` route (a `HEAD` route of the app's own,
/// even a `:param` one, is preferred to it). A path with routes but none for
/// the method answers 405 with `Allow`; `OPTIONS` on such a path answers
/// 204 with `Allow`; no route answers 404, except a `GET` or `HEAD` whose
/// path a route of its method matches once a final `/` is added: that is
/// redirected there (301, query kept), as a directory asked for without
/// its `/` is (`/static` to `/static/` for a route `/static/*path`). A
/// method that no standard
/// defines ([`Method::is_extension`]: `PROPFIND`, or `get`, as method
/// names are case-sensitive) and that no route uses answers 501 Not
/// Implemented, whatever the path (RFC 9110, section 9.1).
///
/// Parameters are the request's segments percent-decoded (invalid UTF-8
/// replaced by U+FFFD), and nothing more: `/f/%2e%2e` gives `..`, a
/// `*rest` of `/f/a/../../b` is `a/../../b`, `%2F` gives a `/` inside one
/// `:param`, `%00` a NUL. A handler that makes a file path of one must
/// check it itself, or serve files through [`StaticFiles`](crate::StaticFiles),
/// which does.
///
/// ```
/// use minihttp::{Method, RouteMatch, Router};
/// let mut router = Router::new();
/// router.route(Method::GET, "/f/*rest", "files")?;
/// let RouteMatch::Found { params, .. } = router.find(&Method::GET, "/f/a/../%2e%2e/b") else {
///     panic!("no match");
/// };
/// assert_eq!(params, [("rest".into(), "a/../../b".to_string())]);
/// # Ok::<(), minihttp::Error>(())
/// ```
///
/// The router is generic over the handler type; with the default
/// [`BoxHandler`], [`get`](Router::get) and friends take async closures and
/// [`handle`](Router::handle) runs the whole dispatch.
///
/// ```
/// use minihttp::{Request, Response, Router};
/// let mut router = Router::new();
/// router
///     .get("/users/:id", |req: Request| async move {
///         Response::text(format!("user {}", req.param("id").unwrap()))
///     })
///     .unwrap();
/// let req = Request::parse(b"DELETE /users/7 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let resp = futures_executor_like::block_on(router.handle(req));
/// assert_eq!(resp.status().as_u16(), 405);
/// assert_eq!(resp.headers().get("allow"), Some("GET, HEAD, OPTIONS"));
/// # mod futures_executor_like {
/// #     pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #         let mut f = std::pin::pin!(f);
/// #         let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #         loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
/// #     }
/// # }
/// ```
pub struct Router<H = BoxHandler> {
    routes: Vec<Entry<H>>,
}

impl<H> std::fmt::Debug for Router<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|e| (&e.method, &e.pattern)))
            .finish()
    }
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<H> Router<H> {
    /// No routes.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route; an error ([`is_invalid_route`](Error::is_invalid_route))
    /// for a pattern that does not start with `/`, has an empty or repeated
    /// parameter name, or a `*rest` that is not last, and for a route that
    /// an earlier one of the same method already covers (the same pattern,
    /// its parameters' names aside), whose handler could never be reached.
    pub fn route(&mut self, method: Method, pattern: &str, handler: H) -> Result<&mut Self, Error> {
        let pattern = Pattern::parse(pattern)?;
        let taken =
            (self.routes.iter()).any(|e| e.method == method && e.pattern.same_paths(&pattern));
        if taken {
            return Err(Error::new(Kind::InvalidRoute));
        }
        self.routes.push(Entry {
            method,
            pattern,
            handler,
        });
        Ok(self)
    }

    /// Routes `method` and a raw (percent-encoded) `path`.
    pub fn find(&self, method: &Method, path: &str) -> RouteMatch<'_, H> {
        let mut best: Option<(&Entry<H>, Params)> = None;
        let mut best_get: Option<(&Entry<H>, Params)> = None;
        let mut allow: Vec<&Method> = Vec::new();
        for entry in &self.routes {
            let Some(params) = entry.pattern.matches(path) else {
                continue;
            };
            if !allow.contains(&&entry.method) {
                allow.push(&entry.method);
            }
            let slot = if entry.method == *method {
                &mut best
            } else if method.is_head() && entry.method == Method::GET {
                &mut best_get
            } else {
                continue;
            };
            let better = match slot {
                None => true,
                Some((b, _)) => entry.pattern.ranks().lt(b.pattern.ranks()),
            };
            if better {
                *slot = Some((entry, params));
            }
        }
        match best.or(best_get) {
            Some((entry, params)) => RouteMatch::Found {
                handler: &entry.handler,
                params,
            },
            None if allow.is_empty() => RouteMatch::NotFound,
            None => {
                if allow.contains(&&Method::GET) && !allow.contains(&&Method::HEAD) {
                    let at = allow
                        .iter()
                        .position(|m| **m == Method::GET)
                        .map_or(0, |i| i + 1);
                    allow.insert(at, &Method::HEAD);
                }
                // Answered for every route's path (see `dispatch`).
                if !allow.contains(&&Method::OPTIONS) {
                    allow.push(&Method::OPTIONS);
                }
                let allow = allow
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                RouteMatch::MethodNotAllowed { allow }
            }
        }
    }

    /// Routes `request`: on a match, stores the path parameters in it (see
    /// [`Request::param`]) and returns the handler; otherwise the 404, 405,
    /// 501, `OPTIONS` 204 or trailing-slash 301 response to send.
    pub fn dispatch(&self, request: &mut Request) -> Result<&H, Response> {
        if request.method().is_extension()
            && !self.routes.iter().any(|e| e.method == *request.method())
        {
            // A method this server implements nowhere (RFC 9110, section
            // 9.1), as `StaticFiles` answers it.
            return Err(Response::error(StatusCode::NOT_IMPLEMENTED));
        }
        if *request.method() == Method::OPTIONS && request.path_raw() == "*" {
            // `OPTIONS *` (or its absolute form): about the server, not a
            // resource (RFC 9110 section 9.3.7).
            return Err(Response::new(StatusCode::NO_CONTENT));
        }
        match self.find(request.method(), request.path_raw()) {
            RouteMatch::Found { handler, params } => {
                // The parameters of this match replace any earlier ones (a
                // router nested in another's handler); no box is made for
                // none.
                match &mut request.p_mut().extra {
                    Some(extra) => extra.params = params,
                    None if params.is_empty() => {}
                    None => request.extra_mut().params = params,
                }
                Ok(handler)
            }
            RouteMatch::NotFound => Err(self
                .slash_redirect(request)
                .unwrap_or_else(|| Response::error(StatusCode::NOT_FOUND))),
            RouteMatch::MethodNotAllowed { allow } => {
                let mut response = if *request.method() == Method::OPTIONS {
                    Response::new(StatusCode::NO_CONTENT)
                } else {
                    Response::error(StatusCode::METHOD_NOT_ALLOWED)
                };
                // Method names are tokens joined by ", ": always valid.
                let _ = response.headers_mut().insert("allow", allow);
                Err(response)
            }
        }
    }

    /// For a `GET` or `HEAD` that no route matches: a 301 to its path with
    /// a final `/`, if a route of its method matches that.
    fn slash_redirect(&self, request: &Request) -> Option<Response> {
        let (method, path) = (request.method(), request.path_raw());
        if !(*method == Method::GET || method.is_head()) || path.ends_with('/') {
            return None;
        }
        match self.find(method, &format!("{path}/")) {
            RouteMatch::Found { .. } => Some(crate::files::redirect_to_directory(request)),
            RouteMatch::NotFound | RouteMatch::MethodNotAllowed { .. } => None,
        }
    }
}

impl Router<BoxHandler> {
    /// Adds a route for `method` with an async handler.
    pub fn on<F, Fut>(&mut self, method: Method, pattern: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        self.route(method, pattern, handler(f))
    }

    /// Adds a `GET` route (which also answers `HEAD`).
    pub fn get<F, Fut>(&mut self, pattern: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        self.on(Method::GET, pattern, f)
    }

    /// Adds a `POST` route.
    pub fn post<F, Fut>(&mut self, pattern: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        self.on(Method::POST, pattern, f)
    }

    /// Adds a `PUT` route.
    pub fn put<F, Fut>(&mut self, pattern: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        self.on(Method::PUT, pattern, f)
    }

    /// Adds a `DELETE` route.
    pub fn delete<F, Fut>(&mut self, pattern: &str, f: F) -> Result<&mut Self, Error>
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        self.on(Method::DELETE, pattern, f)
    }

    /// Routes `request` and runs its handler, or answers as
    /// [`dispatch`](Router::dispatch) does (404, 405, 501, 301, ...).
    pub fn handle(&self, mut request: Request) -> LocalBoxFuture<'static, Response> {
        match self.dispatch(&mut request) {
            Ok(h) => h(request),
            Err(response) => Box::pin(std::future::ready(response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        // Every handler here is ready on its first poll.
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("handler not ready"),
        }
    }

    fn req(method: &str, target: &str) -> Request {
        Request::parse(format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap()
    }

    fn router() -> Router {
        let mut r = Router::new();
        r.get("/", |_| async { Response::text("root") })
            .unwrap()
            .get("/users/:id", |q: Request| async move {
                Response::text(format!("user {}", q.param("id").unwrap()))
            })
            .unwrap()
            .get("/users/me", |_| async { Response::text("me") })
            .unwrap()
            .post("/users/:id", |q: Request| async move {
                Response::text(format!("posted {}", String::from_utf8_lossy(q.body())))
            })
            .unwrap()
            .get("/files/*path", |q: Request| async move {
                Response::text(format!("file [{}]", q.param("path").unwrap()))
            })
            .unwrap()
            .get("/a/:x/b/:y", |q: Request| async move {
                Response::text(format!(
                    "{}-{}",
                    q.param("x").unwrap(),
                    q.param("y").unwrap()
                ))
            })
            .unwrap();
        r
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body().as_bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn routing_table() {
        let r = router();
        let table: &[(&str, &str, u16, &str)] = &[
            ("GET", "/", 200, "root"),
            ("GET", "/?q=1", 200, "root"),
            ("GET", "/users/42", 200, "user 42"),
            ("GET", "/users/j%C3%B6rg", 200, "user jörg"),
            ("GET", "/users/a%2Fb", 200, "user a/b"),
            ("GET", "/users/me", 200, "me"),
            ("HEAD", "/users/me", 200, "me"),
            ("GET", "/users/", 404, "404 Not Found\n"),
            ("GET", "/users/1/2", 404, "404 Not Found\n"),
            ("GET", "/files/", 200, "file []"),
            ("GET", "/files/a/b%20c.txt", 200, "file [a/b c.txt]"),
            ("GET", "/files", 301, "301 Moved Permanently\n"),
            ("HEAD", "/files?x", 301, "301 Moved Permanently\n"),
            ("POST", "/files", 404, "404 Not Found\n"),
            ("GET", "/users", 404, "404 Not Found\n"),
            ("GET", "/a/1/b/2", 200, "1-2"),
            ("GET", "/a/1/c/2", 404, "404 Not Found\n"),
            ("GET", "/nope", 404, "404 Not Found\n"),
            ("DELETE", "/", 405, "405 Method Not Allowed\n"),
            ("PROPFIND", "/users/1", 501, "501 Not Implemented\n"),
            ("get", "/nope", 501, "501 Not Implemented\n"),
            ("OPTIONS", "/users/1", 204, ""),
        ];
        for &(method, target, status, text) in table {
            let resp = block_on(r.handle(req(method, target)));
            assert_eq!(
                (resp.status().as_u16(), body(&resp).as_str()),
                (status, text),
                "{method} {target}"
            );
        }
        let resp = block_on(r.handle(req("HEAD", "/files?x")));
        assert_eq!(resp.headers().get("location"), Some("/files/?x"));
        let resp = block_on(r.handle(req("PUT", "/users/1")));
        assert_eq!(
            resp.headers().get("allow"),
            Some("GET, HEAD, POST, OPTIONS")
        );
        let resp = block_on(r.handle(req("OPTIONS", "/users/1")));
        assert_eq!(resp.status().as_u16(), 204);
        assert_eq!(
            resp.headers().get("allow"),
            Some("GET, HEAD, POST, OPTIONS")
        );
        // `OPTIONS *` asks about the server: no route needed.
        let star = Request::parse(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(block_on(r.handle(star)).status().as_u16(), 204);
        // Nor does its absolute form: the server's answer, not `/`'s.
        let star = Request::parse(b"OPTIONS http://x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let resp = block_on(r.handle(star));
        assert_eq!(resp.status().as_u16(), 204);
        assert_eq!(resp.headers().get("allow"), None);
        let root = Request::parse(b"OPTIONS http://x/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(block_on(r.handle(root)).headers().get("allow").is_some());
        let mut q =
            Request::parse(b"POST /users/9 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
                .unwrap();
        assert!(r.dispatch(&mut q).is_ok());
        assert_eq!(q.params().collect::<Vec<_>>(), [("id", "9")]);
        assert_eq!(body(&block_on(r.handle(q))), "posted hi");
    }

    #[test]
    fn a_later_dispatch_replaces_the_parameters_of_an_earlier_one() {
        let mut outer: Router<u32> = Router::new();
        outer.route(Method::GET, "/api/*rest", 1).unwrap();
        let mut inner: Router<u32> = Router::new();
        inner.route(Method::GET, "/api/ping", 2).unwrap();
        let mut q = Request::parse(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(outer.dispatch(&mut q).ok(), Some(&1));
        assert_eq!(q.param("rest"), Some("ping"));
        assert_eq!(inner.dispatch(&mut q).ok(), Some(&2));
        assert_eq!(q.params().count(), 0, "the inner route has no parameters");
    }

    #[test]
    fn an_extension_method_is_501_unless_a_route_uses_it() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        let mut r: Router<u32> = Router::new();
        r.route(Method::GET, "/page", 1)
            .unwrap()
            .route(purge.clone(), "/cache", 2)
            .unwrap();
        let status = |raw: &[u8]| {
            let mut q = Request::parse(raw).unwrap();
            r.dispatch(&mut q).copied().map_err(|e| e.status().as_u16())
        };
        assert_eq!(status(b"PURGE /cache HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(2));
        assert_eq!(status(b"PURGE /page HTTP/1.1\r\nHost: x\r\n\r\n"), Err(405));
        assert_eq!(
            status(b"PROPFIND /page HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(501)
        );
        assert_eq!(
            status(b"PROPFIND /none HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(501)
        );
        assert_eq!(
            status(b"DELETE /page HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(405)
        );
    }

    #[test]
    fn generic_handlers_and_bad_patterns() {
        let mut r: Router<u32> = Router::new();
        r.route(Method::GET, "/x/:a", 1)
            .unwrap()
            .route(Method::GET, "/x/y", 2)
            .unwrap();
        assert!(matches!(
            r.find(&Method::GET, "/x/y"),
            RouteMatch::Found { handler: 2, .. }
        ));
        assert!(matches!(
            r.find(&Method::GET, "/x/z"),
            RouteMatch::Found { handler: 1, .. }
        ));
        assert!(matches!(r.find(&Method::GET, "/y"), RouteMatch::NotFound));
        for bad in ["", "x", "/:", "/*", "/:a/:a", "/*a/b", "/:a/*a"] {
            assert!(
                r.route(Method::GET, bad, 0).unwrap_err().is_invalid_route(),
                "{bad}"
            );
        }
        // A route an earlier one covers could never be reached: refused,
        // for its method only.
        for taken in ["/x/:b", "/x/y", "/x/%79"] {
            assert!(
                r.route(Method::GET, taken, 0)
                    .unwrap_err()
                    .is_invalid_route(),
                "{taken}"
            );
        }
        r.route(Method::POST, "/x/y", 5).unwrap();
        r.route(Method::GET, "/x/*rest", 6).unwrap();
        assert!(r.route(Method::GET, "/x/*all", 0).is_err());
        assert!(matches!(
            r.find(&Method::GET, "/x/y"),
            RouteMatch::Found { handler: 2, .. }
        ));
        // A trailing slash is a route of its own; `?` in a pattern is a
        // literal, matched encoded, never a query.
        r.route(Method::GET, "/q?", 3).unwrap();
        r.route(Method::GET, "/dir/", 4).unwrap();
        assert!(matches!(
            r.find(&Method::GET, "/q%3F"),
            RouteMatch::Found { handler: 3, .. }
        ));
        assert!(matches!(r.find(&Method::GET, "/q"), RouteMatch::NotFound));
        assert!(matches!(
            r.find(&Method::GET, "/dir/"),
            RouteMatch::Found { handler: 4, .. }
        ));
        assert!(matches!(r.find(&Method::GET, "/dir"), RouteMatch::NotFound));
        // ... which `dispatch` redirects to, for a `GET` or `HEAD` only.
        let status = |method: &str, target: &str| {
            let mut q = req(method, target);
            r.dispatch(&mut q)
                .map(|_| ())
                .unwrap_err()
                .status()
                .as_u16()
        };
        assert_eq!(status("GET", "/dir"), 301);
        assert_eq!(status("HEAD", "/dir"), 301);
        assert_eq!(status("POST", "/dir"), 404);
        assert_eq!(status("GET", "/q"), 404);
        // Never to another site: a `\` (a `/` to browsers) goes encoded.
        r.route(Method::GET, "/:user/", 7).unwrap();
        let mut q = req("GET", "/\\evil.com");
        let redirect = r.dispatch(&mut q).map(|_| ()).unwrap_err();
        assert_eq!(redirect.headers().get("location"), Some("/%5Cevil.com/"));
        assert!(format!("{r:?}").contains("GET"));
    }

    #[test]
    fn a_literal_matches_its_encoded_and_decoded_spellings() {
        let mut r: Router<u32> = Router::new();
        r.route(Method::GET, "/caf%C3%A9/menu", 1)
            .unwrap()
            .route(Method::GET, "/thé", 2)
            .unwrap();
        for (path, want) in [
            ("/caf%C3%A9/menu", 1),
            ("/caf%c3%a9/menu", 1),
            ("/th%C3%A9", 2),
        ] {
            assert!(
                matches!(r.find(&Method::GET, path), RouteMatch::Found { handler, .. } if *handler == want),
                "{path}"
            );
        }
        assert!(matches!(
            r.find(&Method::GET, "/caf%25C3%25A9/menu"),
            RouteMatch::NotFound
        ));
        // Bytes that are not UTF-8 are compared as bytes, not as the
        // replacement character they would both show as.
        r.route(Method::GET, "/%FF", 3).unwrap();
        assert!(matches!(
            r.find(&Method::GET, "/%ff"),
            RouteMatch::Found { handler: 3, .. }
        ));
        assert!(matches!(r.find(&Method::GET, "/%FE"), RouteMatch::NotFound));
    }

    #[test]
    fn a_routed_handler_may_hold_an_rc_across_an_await() {
        let mut r = Router::new();
        r.get("/rc", |_| async {
            let shared = std::rc::Rc::new("local");
            std::future::ready(()).await;
            Response::text(*shared)
        })
        .unwrap();
        assert_eq!(body(&block_on(r.handle(req("GET", "/rc")))), "local");
    }
}
