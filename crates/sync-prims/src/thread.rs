//! [`Thread`]: Python's `threading.Thread` over `std::thread`.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Event;

/// Work run by a thread: the notes' "subclass `Thread` and override `run`"
/// pattern. Implement it for a type that carries the thread's state and
/// start it with [`Thread::start`].
///
/// ```
/// use sync_prims::{Run, Thread};
///
/// struct Summer {
///     upto: u64,
/// }
///
/// impl Run for Summer {
///     type Output = u64;
///     fn run(self) -> u64 {
///         (1..=self.upto).sum()
///     }
/// }
///
/// let t = Thread::start(Summer { upto: 100 });
/// assert_eq!(t.join().unwrap(), 5050);
/// ```
pub trait Run: Send + 'static {
    /// What the thread returns.
    type Output: Send + 'static;
    /// The thread's body.
    fn run(self) -> Self::Output;
}

/// A running OS thread with Python's `threading.Thread` interface: a name,
/// [`is_alive`](Thread::is_alive), [`join`](Thread::join) returning the
/// thread's value (or its panic), and [`join_timeout`](Thread::join_timeout).
///
/// Dropping a `Thread` without joining it detaches the thread: it runs on,
/// and ends with the process if it has not ended before (as a Python
/// daemon thread; Python waits for its other threads at exit).
///
/// ```
/// use std::time::Duration;
/// use sync_prims::Thread;
///
/// let t = Thread::builder().name("worker-1").spawn(|| 6 * 7).unwrap();
/// assert_eq!(t.name(), Some("worker-1"));
/// assert!(t.join_timeout(Duration::from_secs(10)));
/// assert!(!t.is_alive());
/// assert_eq!(t.join().unwrap(), 42);
/// ```
pub struct Thread<T> {
    // The body's panic is caught on the thread, and its value wrapped: left
    // in std's result slot of a detached thread, a payload or a value whose
    // drop panics would abort the process when the slot is dropped (a
    // `Panicked` and a `Value` never panic then).
    handle: JoinHandle<Result<Value<T>, Panicked>>,
    name: Option<Arc<str>>,
    done: Arc<Event>,
}

impl<T: Send + 'static> Thread<T> {
    /// Starts `f` on a new, unnamed thread.
    ///
    /// # Panics
    ///
    /// When the OS cannot create a thread, like [`std::thread::spawn`]; use
    /// [`Thread::builder`] to get that as an error instead.
    pub fn spawn<F>(f: F) -> Thread<T>
    where
        F: FnOnce() -> T + Send + 'static,
    {
        Builder::new().spawn(f).expect("failed to spawn thread")
    }
}

impl<T> Thread<T> {
    /// Whether the thread's body is still running.
    pub fn is_alive(&self) -> bool {
        !self.done.is_set()
    }

    /// The thread's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The underlying thread handle (for its id, or to unpark it).
    pub fn thread(&self) -> &std::thread::Thread {
        self.handle.thread()
    }

    /// Waits for at most `timeout` for the body to finish; true when it has.
    /// The thread's value stays for [`join`](Thread::join), which may still
    /// wait a little: the thread's own end comes after its body's, once its
    /// thread-local values are dropped.
    ///
    /// Called from the thread itself, whose body cannot finish while it
    /// waits, it answers at once (false while the body runs) instead of
    /// waiting out the timeout.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        if self.is_current() {
            return self.done.is_set();
        }
        self.done.wait_timeout(timeout)
    }

    /// Waits for the thread to finish and returns its value, or the panic
    /// that ended it.
    ///
    /// # Panics
    ///
    /// When called from the thread itself, which could never finish
    /// (Python raises `RuntimeError: cannot join current thread`).
    pub fn join(self) -> Result<T, Panicked> {
        if self.is_current() {
            joined_itself();
        }
        // An `Err` of the join itself would be a panic after the body's
        // end (a waker of the event that tells it, woken then).
        match self.handle.join() {
            Ok(Ok(value)) => Ok(value.into_inner()),
            Ok(Err(panicked)) => Err(panicked),
            Err(p) => Err(Panicked::from_payload(p)),
        }
    }

    /// Whether this is the calling thread's own handle.
    fn is_current(&self) -> bool {
        self.handle.thread().id() == std::thread::current().id()
    }
}

impl Thread<()> {
    /// A builder to name a thread or size its stack:
    /// `Thread::builder().name("worker-1").spawn(f)`.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Starts a [`Run`] implementation on a new thread: the notes' thread
    /// subclass with its `run` method.
    ///
    /// # Panics
    ///
    /// When the OS cannot create a thread; see [`Builder::start`].
    pub fn start<R: Run>(runnable: R) -> Thread<R::Output> {
        Builder::new()
            .start(runnable)
            .expect("failed to spawn thread")
    }
}

impl<T> fmt::Debug for Thread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("name", &self.name())
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Thread`] before it starts.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: no name, the platform's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread (shown in panic messages and debuggers).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the thread's stack size in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts `f` on the new thread. A name with a NUL byte in it, which
    /// no system thread name can hold, is an `InvalidInput` error.
    pub fn spawn<F, T>(self, f: F) -> io::Result<Thread<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.name.as_deref().is_some_and(|n| n.contains('\0')) {
            // std would panic on it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread name cannot contain a NUL byte",
            ));
        }
        let done = Arc::new(Event::new());
        let name: Option<Arc<str>> = self.name.as_deref().map(Arc::from);
        let mut b = std::thread::Builder::new();
        if let Some(n) = self.name {
            b = b.name(n);
        }
        if let Some(s) = self.stack_size {
            b = b.stack_size(s);
        }
        let signal = SetOnDrop(done.clone());
        let handle = b.spawn(move || {
            // Set even when `f` panics: the thread is then no longer alive.
            let _signal = signal;
            Panicked::catch(f).map(|v| Value(Some(v)))
        })?;
        Ok(Thread { handle, name, done })
    }

    /// Starts a [`Run`] implementation on the new thread.
    pub fn start<R: Run>(self, runnable: R) -> io::Result<Thread<R::Output>> {
        self.spawn(move || runnable.run())
    }
}

/// The panic of [`Thread::join`] called from the thread itself.
#[cold]
fn joined_itself() -> ! {
    panic!("a thread cannot join itself: it would wait for its own end")
}

/// A thread's value on its way to [`Thread::join`]. Dropped without a join
/// (in std's result slot of a detached thread), a value whose drop panics
/// has that panic caught, as a [`Panicked`]'s payload does.
struct Value<T>(Option<T>);

impl<T> Value<T> {
    fn into_inner(mut self) -> T {
        self.0
            .take()
            .expect("taken only here, which consumes the value")
    }
}

impl<T> Drop for Value<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                drop(Panicked::from_payload(p));
            }
        }
    }
}

/// Sets the event when dropped, on return or unwind alike.
struct SetOnDrop(Arc<Event>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// The panic that ended a thread, as returned by [`Thread::join`].
///
/// Dropping it never panics: a payload whose own destructor panics is
/// dropped with that panic caught (and the payload of that panic likewise,
/// a few levels deep; past them the last one is leaked), so that an error
/// value cannot turn into a second panic wherever it is dropped.
pub struct Panicked {
    message: String,
    /// Behind a mutex only so that `Panicked` is `Sync` (an error type that
    /// converts into `Box<dyn Error + Send + Sync>`); it is never contended.
    /// `Some` until [`into_payload`](Panicked::into_payload) takes it.
    payload: std::sync::Mutex<Option<Box<dyn Any + Send + 'static>>>,
}

impl Panicked {
    /// Wraps a panic payload as caught by `std::panic::catch_unwind`.
    pub fn from_payload(payload: Box<dyn Any + Send + 'static>) -> Panicked {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic with a non-string payload".to_string()
        };
        Panicked {
            message,
            payload: std::sync::Mutex::new(Some(payload)),
        }
    }

    /// Runs `f`, catching a panic as a [`Panicked`].
    pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panicked> {
        panic::catch_unwind(AssertUnwindSafe(f)).map_err(Panicked::from_payload)
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original payload, to continue the panic with
    /// [`std::panic::resume_unwind`].
    pub fn into_payload(mut self) -> Box<dyn Any + Send + 'static> {
        self.payload
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .expect("taken only here, which consumes the value")
    }
}

impl Drop for Panicked {
    fn drop(&mut self) {
        let payload = self
            .payload
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut payload) = payload else {
            return;
        };
        for _ in 0..8 {
            match panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                Ok(()) => return,
                Err(next) => payload = next,
            }
        }
        std::mem::forget(payload);
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}

impl std::error::Error for Panicked {}
