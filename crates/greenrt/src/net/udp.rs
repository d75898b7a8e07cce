//! UDP: [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::ToSocketAddrs;

use socket2::{Domain, Protocol, Socket, Type};

use crate::driver::{Direction, Io};

/// A UDP socket on a hub.
///
/// ```
/// use greenrt::net::UdpSocket;
///
/// greenrt::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    io: Io<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds a socket on the current hub, to the first of `addr`'s
    /// addresses that can be bound (a name is looked up on the calling
    /// thread: see [`ToSocketAddrs`]).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        super::each_addr(addr, |addr| {
            let socket = Socket::new(
                Domain::for_address(addr),
                Type::DGRAM.nonblocking().cloexec(),
                Some(Protocol::UDP),
            )?;
            socket.bind(&addr.into())?;
            Ok(UdpSocket {
                io: Io::new(std::net::UdpSocket::from(socket))?,
            })
        })
    }

    /// Takes a socket from the standard library (made non-blocking here),
    /// registered with the current hub's reactor.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: Io::new(socket)?,
        })
    }

    /// Gives the socket back as the standard library's, taken out of its
    /// hub's reactor and still non-blocking: to move it to another hub
    /// (where [`from_std`](UdpSocket::from_std) takes it again) or to a
    /// plain thread (after `set_nonblocking(false)`). Datagrams not yet
    /// received stay in the socket.
    pub fn into_std(self) -> std::net::UdpSocket {
        self.io.into_inner()
    }

    /// Sends a datagram to `target` (to the first address it stands for;
    /// a name is looked up on the blocking pool: see [`ToSocketAddrs`]);
    /// returns the bytes sent.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = super::addr::resolve(target).await?[0];
        self.io
            .wait_io(Direction::Write, |s| s.send_to(buf, target))
            .await
    }

    /// Receives a datagram; returns its length and sender. A datagram longer
    /// than `buf` is truncated, as with the system call.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.wait_io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// Sets the default peer for [`send`](UdpSocket::send) and filters
    /// [`recv`](UdpSocket::recv) to it (a name is looked up on the calling
    /// thread: see [`ToSocketAddrs`]).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        super::each_addr(addr, |a| self.io.get().connect(a))
    }

    /// Sends to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.wait_io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.wait_io(Direction::Read, |s| s.recv(buf)).await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The peer given to [`connect`](UdpSocket::connect); an error
    /// (`NotConnected`) before it.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }
}

super::descriptor!(UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use super::UdpSocket;
    use crate::driver::Direction;
    use crate::test_util::flag;

    #[test]
    #[cfg_attr(miri, ignore = "sockets need the reactor, which miri cannot run")]
    fn a_dropped_wait_takes_its_waker_out_and_a_kept_one_is_woken() {
        crate::run(async {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let waiting = || sock.io.registration().waiting(Direction::Read);
            let mut buf = [0u8; 8];
            // Tasks that each wait once, then give up (a timeout, say).
            let gone: Vec<_> = (0..100).map(|_| flag()).collect();
            for (_, waker) in &gone {
                let mut recv = pin!(sock.recv_from(&mut buf));
                assert!(
                    recv.as_mut()
                        .poll(&mut Context::from_waker(waker))
                        .is_pending()
                );
                assert_eq!(waiting(), 1);
            }
            assert_eq!(waiting(), 0);
            // Each flag is held by itself and its waker only: the list let
            // go of every clone.
            assert!(gone.iter().all(|(f, _)| Arc::strong_count(f) == 2));
            // One that still waits is woken by the datagram, and gets it.
            let (kept, waker) = flag();
            let mut kept_buf = [0u8; 8];
            let n = {
                let mut recv = pin!(sock.recv_from(&mut kept_buf));
                let mut cx = Context::from_waker(&waker);
                assert!(recv.as_mut().poll(&mut cx).is_pending());
                let other = UdpSocket::bind("127.0.0.1:0").unwrap();
                other
                    .send_to(b"ping", sock.local_addr().unwrap())
                    .await
                    .unwrap();
                // Polled again (as its task would be once woken) until the
                // hub has seen the datagram's event.
                std::future::poll_fn(|hub| match recv.as_mut().poll(&mut cx) {
                    Poll::Ready(r) => Poll::Ready(r),
                    Poll::Pending => {
                        hub.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await
                .unwrap()
                .0
            };
            assert_eq!(&kept_buf[..n], b"ping");
            assert!(kept.woken());
            assert!(gone.iter().all(|(f, _)| !f.woken()));
        });
    }
}
