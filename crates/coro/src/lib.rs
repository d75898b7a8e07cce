//! Python's generator protocol on stable Rust, built on `async`/`await`:
//! `r = yield x`, `send`, `StopIteration` values, `yield from`, `close`,
//! `throw`, async generators, and greenlet-style switching.
//!
//! A generator's body is an `async` block that receives a [`Co`];
//! `co.yield_(x).await` suspends it, hands `x` to whoever resumed it, and
//! evaluates to the next value sent in.
//!
//! | Python                          | here                                     |
//! |---------------------------------|------------------------------------------|
//! | generator function `f()`        | [`Gen::new(\|co\| async move { .. })`](Gen::new) |
//! | `r = yield x`                   | `let r = co.yield_(x).await;`            |
//! | `next(g)` / `g.send(None)`      | [`Gen::start`]                           |
//! | `g.send(v)`                     | [`Gen::send`] → [`GenState::Yielded`]    |
//! | `StopIteration.value`           | [`GenState::Complete`]                   |
//! | `send` to a just-started generator | [`GenError::NotStarted`]              |
//! | `send` to a finished generator  | [`GenError::Finished`]                   |
//! | `g.close()`                     | [`Gen::close`]                           |
//! | `g.throw(e)`                    | [`Gen::throw`]                           |
//! | `yield from h`                  | [`Co::yield_from`]                       |
//! | `for x in g`                    | [`Iterator`] for `Gen<Y>`                |
//! | `async def` with `yield`        | [`AsyncGen`], a [`Stream`](futures_core::Stream) |
//! | `greenlet(f)`, `g.switch(v)`    | [`greenlet::Greenlets`], [`greenlet::Switcher::switch`] |
//!
//! Misuse is an error value, never a hang: sending before starting,
//! resuming a finished generator, a synchronous body awaiting a future
//! that is not ready ([`GenError::Blocked`]) and a chain of delegations
//! deeper than [`MAX_DELEGATION_DEPTH`] ([`GenError::TooDeep`]) all return
//! [`GenError`]s.
//! Resuming a generator from its own body (Python's "generator already
//! executing") does not compile.
//!
//! # Example
//!
//! The lecture notes' consumer: a coroutine that receives values with
//! `send` and answers each one.
//!
//! ```
//! use coro::{Gen, GenState};
//!
//! let mut consumer = Gen::new(|co| async move {
//!     let mut reply = String::from("ready");
//!     let mut eaten = 0;
//!     loop {
//!         let item: Option<u32> = co.yield_(reply).await;
//!         let Some(item) = item else { break };
//!         eaten += 1;
//!         reply = format!("ate {item}");
//!     }
//!     eaten
//! });
//!
//! assert_eq!(consumer.start(), Ok(GenState::Yielded("ready".to_string())));
//! for n in 1..=3 {
//!     assert_eq!(consumer.send(Some(n)), Ok(GenState::Yielded(format!("ate {n}"))));
//! }
//! assert_eq!(consumer.send(None), Ok(GenState::Complete(3)));
//! assert!(consumer.is_complete());
//! ```
//!
//! # Cost
//!
//! Making a generator allocates once (its boxed body); resuming allocates
//! nothing and shares nothing between threads: the values pass through a
//! slot on the resumer's stack. `yield_from` adds no copying however deep
//! the delegation. [`Gen::new`] erases the body's type, so that
//! `Gen<Y, R, S>` can be named; [`Gen::new_inline`] keeps it, so that
//! resumes call the body directly, for hot loops.
//!
//! # Threads
//!
//! A [`Co`] is `Send + Sync` whatever it carries, so it never stops a body
//! from being `Send`. Generators made with `new_send` ([`SendGen`],
//! [`SendAsyncGen`]) are `Send` and can be resumed on any thread, one at a
//! time.

#![deny(unsafe_code)]

mod async_gen;
mod co;
mod core;
mod error;
mod generator;
pub mod greenlet;
#[allow(
    unsafe_code,
    reason = "the resumer-to-body slot hand-off; see the module's invariant"
)]
mod raw;

pub use crate::async_gen::{AsyncGen, SendAsyncGen};
pub use crate::co::{Co, Delegate, MAX_DELEGATION_DEPTH};
pub use crate::error::{GenError, GenState};
pub use crate::generator::{Gen, SendGen};

/// The named future types of the crate.
pub mod futures {
    pub use crate::async_gen::Resume;
    pub use crate::co::{Yield, YieldFrom};
}

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
