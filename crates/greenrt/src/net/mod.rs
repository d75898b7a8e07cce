//! Green sockets: calls that look blocking in an `async fn` and suspend
//! only the task (gevent's monkey-patched `socket`, done without patching).
//!
//! Each socket registers with the reactor of the hub it is created on, and
//! may be moved to and used from any hub while that one runs (its reactor
//! delivers the readiness, the task's own hub runs the task). Once that hub
//! has ended (the end of a `block_on`, a runtime dropped), the socket's
//! operations that would wait fail with an error instead: create sockets
//! inside the hub that will use them. [`TcpStream`] implements
//! `futures::io::AsyncRead` and `AsyncWrite`, so the futures ecosystem's
//! codecs and utilities work on it. Every operation composes with
//! [`timeout`](crate::timeout) (a read with a deadline) and with
//! [`Greenlet::kill`](crate::Greenlet::kill), and a dropped socket leaves
//! its reactor. A dropped accept or UDP operation leaves nothing behind
//! (but a name lookup already running, which runs to its end on the
//! blocking pool: see [`ToSocketAddrs`]); a
//! dropped read or write of a stream leaves its waker in the socket's
//! list until the next readiness event, at most one per waker (one per
//! task, unless a combinator gives each poll a waker of its own): a
//! stream direction has one task at a time, and a key per wait would cost
//! each read and write.

/// `AsFd` and `AsRawFd` for a socket type whose registered socket is
/// `self.io` (the generated impls say what the descriptor is for).
macro_rules! descriptor {
    ($ty:ty) => {
        /// The socket's descriptor, for options this type does not offer
        /// (through `socket2::SockRef`, say). Closing it, or making it
        /// blocking, breaks the socket: it stays registered with its hub's
        /// reactor.
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.io.get())
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(self.io.get())
            }
        }
    };
}
pub(crate) use descriptor;

mod addr;
mod tcp;
mod udp;

pub use self::addr::ToSocketAddrs;
pub use self::tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use self::udp::UdpSocket;

use std::io;
use std::net::SocketAddr;

/// How many sockets are registered with the current hub's reactor (a
/// diagnostic: a test can check that a killed task left none behind).
/// Zero when not called on a hub.
pub fn registered_sockets() -> usize {
    crate::driver::current_io().map_or(0, |io| io.sources())
}

/// The error of an address that resolves to nothing.
pub(crate) fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "no address to use")
}

/// Runs `f` on each address `addr` stands for, in order (a name looked
/// up on the calling thread), until one succeeds (as std's `bind` and
/// `connect` do): its result, or the last error.
fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr::resolve_here(&addr)? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_address))
}
