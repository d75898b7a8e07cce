//! Spawning: `spawn`, `spawn_later`, named tasks, and `current()`.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::hub::{self, ROOT_ID};
use crate::runtime::Handle;
use crate::task::Greenlet;
use crate::time::sleep;

/// Spawns a task on the current hub: gevent's `spawn`.
///
/// The future need not be `Send`: it stays on this hub's thread for its
/// whole life, so it may hold `Rc` and `RefCell`. It starts at the hub's
/// next turn (after the caller yields).
///
/// # Panics
///
/// Outside a hub (not inside [`run`](crate::run) or a
/// [`Runtime`](crate::Runtime)); [`Builder::spawn`] returns an error instead.
///
/// ```
/// let n = greenrt::run(async {
///     let g = greenrt::spawn(async { 6 * 7 });
///     g.await.unwrap()
/// });
/// assert_eq!(n, 42);
/// ```
pub fn spawn<F>(future: F) -> Greenlet<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match Builder::new().spawn(future) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Spawns a task that starts after `delay`: gevent's `spawn_later`.
///
/// # Panics
///
/// Outside a hub; [`Builder::spawn_later`] returns an error instead.
pub fn spawn_later<F>(delay: Duration, future: F) -> Greenlet<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match Builder::new().spawn_later(delay, future) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Options for a task to spawn: its name (shown by the stall monitor, the
/// deadlock diagnosis and [`current`]).
///
/// ```
/// greenrt::run(async {
///     let g = greenrt::Builder::new()
///         .name("fetch-3")
///         .spawn(async { greenrt::current().unwrap().name().map(str::to_owned) })
///         .unwrap();
///     assert_eq!(g.name(), Some("fetch-3"));
///     assert_eq!(g.await.unwrap().as_deref(), Some("fetch-3"));
/// });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<Arc<str>>,
}

fn no_hub() -> io::Error {
    io::Error::other("no greenrt hub on this thread: spawn from inside greenrt::run or a Runtime")
}

impl Builder {
    /// Default options: no name.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Spawns the task on the current hub (see [`spawn`]); an error outside
    /// a hub.
    pub fn spawn<F>(self, future: F) -> io::Result<Greenlet<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let name = self.name;
        hub::with_current(move |h| h.spawn(name, future)).ok_or_else(no_hub)
    }

    /// Spawns the task on the current hub, to start after `delay`.
    pub fn spawn_later<F>(self, delay: Duration, future: F) -> io::Result<Greenlet<F::Output>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if hub::with_current(|_| ()).is_none() {
            return Err(no_hub());
        }
        let wait = sleep(delay);
        self.spawn(async move {
            wait.await;
            future.await
        })
    }

    /// Runs blocking `f` on the thread pool, as
    /// [`spawn_blocking`](crate::spawn_blocking) does, with the task that
    /// waits for it named; an error outside a hub (`f` is then not run).
    ///
    /// ```
    /// greenrt::run(async {
    ///     let g = greenrt::Builder::new()
    ///         .name("read-config")
    ///         .spawn_blocking(|| std::fs::read_to_string("Cargo.toml").is_ok())
    ///         .unwrap();
    ///     assert_eq!(g.name(), Some("read-config"));
    ///     assert_eq!(g.await, Ok(true));
    /// });
    /// // Off a hub: an error, not a panic.
    /// assert!(greenrt::Builder::new().spawn_blocking(|| ()).is_err());
    /// ```
    pub fn spawn_blocking<F, T>(self, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::blocking::spawn_with(self, f)
    }

    /// Spawns a `Send` task on one of the runtime's hubs (the least
    /// loaded), as [`Handle::spawn`] does.
    pub fn spawn_in<F>(self, handle: &Handle, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn_named(self.name, future)
    }

    /// Spawns a `Send` task on the runtime's hub number `hub`, as
    /// [`Handle::spawn_on`] does (an index past the last hub wraps
    /// around).
    ///
    /// ```
    /// let rt = greenrt::Runtime::builder().workers(2).build().unwrap();
    /// let g = greenrt::Builder::new()
    ///     .name("second")
    ///     .spawn_on(&rt.handle(), 1, async {
    ///         greenrt::current().unwrap().hub().to_owned()
    ///     });
    /// assert_eq!(g.name(), Some("second"));
    /// assert_eq!(g.get_blocking().unwrap().unwrap(), "hub-1");
    /// ```
    pub fn spawn_on<F>(self, handle: &Handle, hub: usize, future: F) -> Greenlet<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn_named_on(hub, self.name, future)
    }
}

/// The running task, as seen from inside it.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    id: u64,
    name: Option<Arc<str>>,
    hub: Arc<str>,
}

impl TaskInfo {
    /// The task's id (the same as its [`Greenlet::id`]); 0 for the root
    /// future of [`run`](crate::run) / [`Runtime::block_on`](crate::Runtime::block_on).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The task's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name of the hub it runs on.
    pub fn hub(&self) -> &str {
        &self.hub
    }
}

/// The task being run on this thread's hub, or `None` outside a hub.
pub fn current() -> Option<TaskInfo> {
    hub::with_current(|h| {
        let id = h.running_id();
        let name = if id == ROOT_ID {
            None
        } else {
            h.shared().task_name(id)
        };
        TaskInfo {
            id,
            name,
            hub: h.shared().name.clone(),
        }
    })
}
