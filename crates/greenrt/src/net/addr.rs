//! The addresses the green sockets take, and their resolution: a name is
//! looked up on the blocking pool by the operations that wait
//! ([`TcpStream::connect`](super::TcpStream::connect),
//! [`UdpSocket::send_to`](super::UdpSocket::send_to)), so that a slow DNS
//! answer suspends only the task that asked for it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What a green socket accepts as an address: the types that the standard
/// library's [`ToSocketAddrs`](std::net::ToSocketAddrs) takes (a
/// [`SocketAddr`], an `(IpAddr, u16)` pair, `"host:port"`, a
/// `(host, port)` pair, a slice of addresses, and references to them).
///
/// An address given by IP is used as it is. A name (`"localhost:8080"`,
/// `("example.com", 80)`) is looked up:
/// - by the operations that wait, on the blocking pool
///   ([`spawn_blocking`](crate::spawn_blocking)), so that the hub's other
///   tasks run meanwhile, as gevent's resolver lets them (an operation
///   dropped or killed first takes its lookup back if no thread has taken
///   it yet; one already running runs to its end, its answer dropped);
/// - by the operations that return at once (`bind`, `UdpSocket::connect`),
///   on the calling thread.
///
/// Sealed: it cannot be implemented outside this crate.
///
/// ```
/// use greenrt::net::{TcpListener, TcpStream};
///
/// greenrt::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let port = listener.local_addr().unwrap().port();
///     // A name, looked up off the hub; the connection is then made on it.
///     let client = TcpStream::connect(("localhost", port)).await;
///     let (_, peer) = listener.accept().await.unwrap();
///     assert_eq!(client.unwrap().local_addr().unwrap(), peer);
/// });
/// ```
pub trait ToSocketAddrs: sealed::Sealed {}

#[allow(
    unreachable_pub,
    reason = "the sealing trait and its type: public, never reachable"
)]
mod sealed {
    use std::net::SocketAddr;

    /// What [`ToSocketAddrs`](super::ToSocketAddrs) does; in a private
    /// module, so that no other crate can implement it.
    pub trait Sealed {
        /// The address as given, not yet looked up.
        fn addrs(&self) -> Addrs;
    }

    /// An address as given: known, or to be looked up.
    #[derive(Debug)]
    pub enum Addrs {
        One(SocketAddr),
        Many(Vec<SocketAddr>),
        /// `"host:port"`.
        Name(String),
        /// `(host, port)`.
        HostPort(String, u16),
    }
}

use sealed::{Addrs, Sealed};

impl Addrs {
    /// Whether a lookup (which may block) is needed.
    fn is_name(&self) -> bool {
        matches!(self, Addrs::Name(_) | Addrs::HostPort(..))
    }

    /// The addresses, looking a name up on the calling thread.
    fn resolve_here(self) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs as _;
        let v: Vec<SocketAddr> = match self {
            Addrs::One(a) => vec![a],
            Addrs::Many(v) => v,
            Addrs::Name(s) => s.to_socket_addrs()?.collect(),
            Addrs::HostPort(h, p) => (h.as_str(), p).to_socket_addrs()?.collect(),
        };
        if v.is_empty() {
            return Err(super::no_address());
        }
        Ok(v)
    }
}

/// Every address `addr` stands for (at least one), a name looked up on the
/// calling thread.
pub(crate) fn resolve_here(addr: &(impl ToSocketAddrs + ?Sized)) -> io::Result<Vec<SocketAddr>> {
    addr.addrs().resolve_here()
}

/// Every address `addr` stands for (at least one), a name looked up on
/// the blocking pool when on a hub (so that the hub's other tasks run
/// meanwhile), on the calling thread otherwise. The address is read before
/// the first await, so that the caller's future holds no borrow of it
/// across the lookup (and is `Send` whenever the address is). Dropped
/// before the answer, the lookup is killed: a job no thread took yet never
/// runs; one already running runs to its end, and its answer is dropped.
pub(crate) async fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs = addr.addrs();
    drop(addr);
    // Off any hub: no pool to wait on without blocking anyway.
    if !addrs.is_name() || crate::hub::current_uid().is_none() {
        return addrs.resolve_here();
    }
    let lookup = crate::Builder::new()
        .name("name lookup")
        .spawn_blocking(move || addrs.resolve_here())?;
    let mut lookup = KillOnDrop(lookup);
    (&mut lookup.0)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("the name lookup failed: {e}"))))
}

/// Kills its greenlet when dropped before the greenlet finished.
struct KillOnDrop<T>(crate::Greenlet<T>);

impl<T> Drop for KillOnDrop<T> {
    fn drop(&mut self) {
        if !self.0.ready() {
            self.0.kill();
        }
    }
}

/// An address given by IP: used as it is.
macro_rules! by_ip {
    ($($ty:ty),*) => {$(
        impl ToSocketAddrs for $ty {}
        impl Sealed for $ty {
            fn addrs(&self) -> Addrs {
                Addrs::One((*self).into())
            }
        }
    )*};
}

by_ip!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for str {}
impl Sealed for str {
    fn addrs(&self) -> Addrs {
        match self.parse() {
            Ok(a) => Addrs::One(a),
            Err(_) => Addrs::Name(self.to_owned()),
        }
    }
}

impl ToSocketAddrs for String {}
impl Sealed for String {
    fn addrs(&self) -> Addrs {
        self.as_str().addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Sealed for (&str, u16) {
    fn addrs(&self) -> Addrs {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => Addrs::One((ip, port).into()),
            Err(_) => Addrs::HostPort(host.to_owned(), port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Sealed for (String, u16) {
    fn addrs(&self) -> Addrs {
        (self.0.as_str(), self.1).addrs()
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl Sealed for [SocketAddr] {
    fn addrs(&self) -> Addrs {
        Addrs::Many(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Sealed + ?Sized> Sealed for &T {
    fn addrs(&self) -> Addrs {
        (**self).addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_given_by_ip_need_no_lookup() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        for (given, want) in [
            (v4.addrs(), v4),
            ("127.0.0.1:80".addrs(), v4),
            ("[::1]:80".addrs(), v6),
            (("::1", 80).addrs(), v6),
            ((String::from("127.0.0.1"), 80).addrs(), v4),
            ((Ipv4Addr::LOCALHOST, 80).addrs(), v4),
            ((&&"127.0.0.1:80").addrs(), v4),
        ] {
            assert!(!given.is_name());
            assert_eq!(given.resolve_here().unwrap(), [want]);
        }
        assert_eq!([v4, v6][..].addrs().resolve_here().unwrap(), [v4, v6]);
        let none: &[SocketAddr] = &[];
        let err = none.addrs().resolve_here().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_lookup_given_up_is_killed() {
        /// Sets its flag when dropped.
        struct Flag(std::rc::Rc<std::cell::Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        crate::run(async {
            let dropped = std::rc::Rc::new(std::cell::Cell::new(false));
            let flag = Flag(dropped.clone());
            let waiting = crate::spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            });
            crate::yield_now().await;
            assert!(!dropped.get());
            // Dropped on its own hub, the waiting task is killed at once:
            // its future is gone before the drop returns.
            drop(KillOnDrop(waiting));
            assert!(dropped.get());
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "a name lookup is a foreign call miri cannot make")]
    fn names_are_looked_up_and_bad_ones_are_errors() {
        for given in ["localhost:80".addrs(), ("localhost", 80).addrs()] {
            assert!(given.is_name());
            let found = given.resolve_here().unwrap();
            assert!(found.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
        }
        // No port, or a port out of range: refused before any lookup goes
        // out.
        for bad in ["localhost", "localhost:99999"] {
            assert!(bad.addrs().resolve_here().is_err(), "{bad}");
        }
    }
}
