//! Symmetric coroutines in the style of the `greenlet` package.
//!
//! A generator returns to whoever resumed it; a greenlet *switches* to a
//! named greenlet, which resumes where it last switched away (or starts,
//! receiving the value as its argument). A greenlet that returns switches
//! to its parent with its return value; switching to a finished greenlet
//! goes to its parent instead (and so on up to the main greenlet, which is
//! the caller of [`Greenlets::switch`] and never finishes).
//!
//! Greenlets are generators underneath: each body yields "switch to `g`
//! with `v`" requests, and [`Greenlets::switch`] runs a trampoline that
//! resumes the target of each request in turn, so a chain of switches uses
//! no stack depth.
//!
//! ```
//! use coro::greenlet::{GreenletId, Greenlets};
//!
//! let mut hub = Greenlets::new();
//! let (gr1, gr2) = (hub.reserve(), hub.reserve());
//! let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
//! let l = log.clone();
//! hub.bind(gr1, move |g, _| async move {
//!     l.borrow_mut().push(12);
//!     g.switch(gr2, 0).await;
//!     l.borrow_mut().push(34);
//!     g.switch(gr2, 0).await;
//!     0
//! })
//! .unwrap();
//! let l = log.clone();
//! hub.bind(gr2, move |g, _| async move {
//!     l.borrow_mut().push(56);
//!     g.switch(gr1, 0).await;
//!     l.borrow_mut().push(78);
//!     // Returning switches to the parent: the main greenlet.
//!     99
//! })
//! .unwrap();
//! assert_eq!(hub.switch(gr1, 0), Ok(99));
//! assert_eq!(*log.borrow(), [12, 56, 34, 78]);
//! assert!(hub.is_dead(gr2) && !hub.is_dead(gr1));
//! # let _ = GreenletId::MAIN;
//! ```

use std::fmt;
use std::future::Future;

use crate::{Co, Gen, GenError, GenState};

/// Names a greenlet of a [`Greenlets`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenletId {
    /// The set the greenlet belongs to (0 for the main greenlet, which
    /// every set has).
    set: u64,
    /// Its number in the set (0 for the main greenlet).
    n: usize,
}

impl GreenletId {
    /// The main greenlet: the caller of [`Greenlets::switch`]. It is every
    /// greenlet's parent unless [`Greenlets::set_parent`] says otherwise,
    /// and it never finishes.
    pub const MAIN: GreenletId = GreenletId { set: 0, n: 0 };
}

/// Numbers sets of greenlets, so that an id of one set means nothing in
/// another.
static NEXT_SET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl fmt::Display for GreenletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == GreenletId::MAIN {
            f.write_str("main")
        } else {
            write!(f, "greenlet-{}", self.n)
        }
    }
}

/// What a greenlet body yields to the trampoline.
enum Request<T> {
    /// The body is ready for its argument.
    Begin,
    /// Switch to this greenlet with this value.
    Switch(GreenletId, T),
}

/// A greenlet's handle on the switching protocol, given to its body.
pub struct Switcher<T> {
    co: Co<Request<T>, T>,
    id: GreenletId,
}

impl<T> Switcher<T> {
    /// Suspends this greenlet and switches to `target` with `value`
    /// (Python's `target.switch(value)`). Evaluates to the value of the
    /// switch that comes back to this greenlet, or to the return value of a
    /// child greenlet that finished.
    pub fn switch(&self, target: GreenletId, value: T) -> impl Future<Output = T> + '_ {
        self.co.yield_(Request::Switch(target, value))
    }

    /// This greenlet's id (Python's `greenlet.getcurrent()`).
    pub fn id(&self) -> GreenletId {
        self.id
    }
}

impl<T> fmt::Debug for Switcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switcher").field("id", &self.id).finish()
    }
}

/// Why a switch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreenletError {
    /// No greenlet has this id in this set.
    Unknown(GreenletId),
    /// The greenlet was reserved but never given a body.
    Unbound(GreenletId),
    /// The greenlet already has a body.
    AlreadyBound(GreenletId),
    /// The parent change would make a greenlet its own ancestor.
    ParentCycle(GreenletId),
    /// Resuming this greenlet failed (for instance its body awaited a
    /// future that is not a switch: [`GenError::Blocked`]); it is dead.
    Failed(GreenletId, GenError),
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Unknown(g) => write!(f, "no greenlet {g}"),
            GreenletError::Unbound(g) => write!(f, "{g} has no body"),
            GreenletError::AlreadyBound(g) => write!(f, "{g} already has a body"),
            GreenletError::ParentCycle(g) => write!(f, "{g} would become its own ancestor"),
            GreenletError::Failed(g, e) => write!(f, "{g} failed: {e}"),
        }
    }
}

impl std::error::Error for GreenletError {}

struct Entry<T> {
    body: Option<Gen<Request<T>, T, T>>,
    parent: GreenletId,
}

/// A set of greenlets that switch among themselves, exchanging values of
/// type `T`, driven from the main greenlet by [`switch`](Greenlets::switch).
pub struct Greenlets<T> {
    entries: Vec<Entry<T>>,
    /// This set's number, in its ids.
    set: u64,
}

impl<T: 'static> Default for Greenlets<T> {
    fn default() -> Self {
        Greenlets::new()
    }
}

impl<T: 'static> Greenlets<T> {
    /// An empty set.
    pub fn new() -> Self {
        Greenlets {
            entries: Vec::new(),
            set: NEXT_SET.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Names a new greenlet without giving it a body yet, so that bodies
    /// bound later can switch to it. Its parent is the main greenlet.
    pub fn reserve(&mut self) -> GreenletId {
        self.entries.push(Entry {
            body: None,
            parent: GreenletId::MAIN,
        });
        GreenletId {
            set: self.set,
            n: self.entries.len(),
        }
    }

    /// Gives a reserved greenlet its body (Python's `greenlet(run)`): `run`
    /// receives the [`Switcher`] and the value of the first switch to it,
    /// and its return value goes to the greenlet's parent.
    ///
    /// # Errors
    ///
    /// [`GreenletError::Unknown`] or [`GreenletError::AlreadyBound`].
    pub fn bind<F, Fut>(&mut self, id: GreenletId, run: F) -> Result<(), GreenletError>
    where
        F: FnOnce(Switcher<T>, T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let entry = self.entry_mut(id)?;
        if entry.body.is_some() {
            return Err(GreenletError::AlreadyBound(id));
        }
        entry.body = Some(Gen::new(move |co: Co<Request<T>, T>| async move {
            let first = co.yield_(Request::Begin).await;
            run(Switcher { co, id }, first).await
        }));
        Ok(())
    }

    /// [`reserve`](Greenlets::reserve) and [`bind`](Greenlets::bind) in one.
    pub fn spawn<F, Fut>(&mut self, run: F) -> GreenletId
    where
        F: FnOnce(Switcher<T>, T) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let id = self.reserve();
        let bound = self.bind(id, run);
        debug_assert!(bound.is_ok());
        id
    }

    /// Makes `parent` the greenlet that receives `id`'s return value, and
    /// that switches to `id` go to once `id` is dead (Python's
    /// `g.parent = p`).
    ///
    /// # Errors
    ///
    /// [`GreenletError::Unknown`] for either id (the main greenlet has no
    /// parent), [`GreenletError::ParentCycle`] if `id` would become its own
    /// ancestor.
    pub fn set_parent(&mut self, id: GreenletId, parent: GreenletId) -> Result<(), GreenletError> {
        self.entry_mut(id)?;
        let mut p = parent;
        while p != GreenletId::MAIN {
            if p == id {
                return Err(GreenletError::ParentCycle(id));
            }
            p = self.entry_mut(p)?.parent;
        }
        self.entry_mut(id)?.parent = parent;
        Ok(())
    }

    /// The greenlet's parent, or `None` for the main greenlet and unknown
    /// ids.
    pub fn parent(&self, id: GreenletId) -> Option<GreenletId> {
        self.index(id)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.parent)
    }

    /// Whether the greenlet has finished (returned, panicked or failed).
    /// The main greenlet and unknown or unbound ids are not dead.
    pub fn is_dead(&self, id: GreenletId) -> bool {
        self.index(id)
            .and_then(|i| self.entries.get(i))
            .and_then(|e| e.body.as_ref())
            .is_some_and(Gen::is_complete)
    }

    /// Switches from the main greenlet to `target` with `value`, and runs
    /// the greenlets' switches among themselves until one switches back to
    /// the main greenlet (or a greenlet whose ancestors are all dead
    /// finishes); returns the value it brought.
    ///
    /// # Errors
    ///
    /// [`GreenletError::Unknown`] or [`GreenletError::Unbound`] for a
    /// switch to a greenlet that does not exist or has no body (made by
    /// this call or by a body; that body stays suspended at its switch),
    /// [`GreenletError::Failed`] for a body that could not be resumed.
    ///
    /// # Panics
    ///
    /// A panic in a greenlet's body propagates to the caller; that
    /// greenlet is dead afterwards.
    pub fn switch(&mut self, target: GreenletId, value: T) -> Result<T, GreenletError> {
        let (mut target, mut value) = (target, value);
        loop {
            target = self.live(target)?;
            if target == GreenletId::MAIN {
                return Ok(value);
            }
            let entry = self.entry_mut(target)?;
            let body = entry.body.as_mut().ok_or(GreenletError::Unbound(target))?;
            let step = if body.is_started() {
                body.send(value)
            } else {
                match body.start() {
                    Ok(GenState::Yielded(Request::Begin)) => body.send(value),
                    other => other,
                }
            };
            match step {
                Ok(GenState::Yielded(Request::Switch(to, v))) => (target, value) = (to, v),
                Ok(GenState::Complete(r)) => (target, value) = (entry.parent, r),
                Ok(GenState::Yielded(Request::Begin)) => {
                    body.close();
                    return Err(GreenletError::Failed(target, GenError::Misuse));
                }
                Err(e) => return Err(GreenletError::Failed(target, e)),
            }
        }
    }

    /// `id`, or its nearest ancestor that is not dead.
    fn live(&mut self, mut id: GreenletId) -> Result<GreenletId, GreenletError> {
        while id != GreenletId::MAIN {
            let entry = self.entry_mut(id)?;
            match &entry.body {
                Some(g) if g.is_complete() => id = entry.parent,
                _ => break,
            }
        }
        Ok(id)
    }

    fn entry_mut(&mut self, id: GreenletId) -> Result<&mut Entry<T>, GreenletError> {
        self.index(id)
            .and_then(|i| self.entries.get_mut(i))
            .ok_or(GreenletError::Unknown(id))
    }

    /// Where greenlet `id` of this set is in `entries` (`None` for the
    /// main greenlet, and for an id of another set).
    fn index(&self, id: GreenletId) -> Option<usize> {
        if id.set != self.set {
            return None;
        }
        id.n.checked_sub(1)
    }
}

impl<T> fmt::Debug for Greenlets<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for (i, e) in self.entries.iter().enumerate() {
            list.entry(
                &GreenletId {
                    set: self.set,
                    n: i + 1,
                },
                &e.body,
            );
        }
        list.finish()
    }
}
