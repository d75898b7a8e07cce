//! Which hub serves a connection.
//!
//! Each hub has a listener of its own (`SO_REUSEPORT`). Where the hubs are
//! pinned, one to a CPU, each listener also names its hub's CPU
//! (`SO_INCOMING_CPU`, Linux): the kernel then gives a new connection to
//! the listener of the CPU that processed its handshake, which is, for a
//! flow that stays on one receive queue (or a client on the same
//! machine), the CPU that processes the rest of its packets too. The hub
//! that serves it then runs where its socket's data already is, and the
//! client's packets wake a thread on their own CPU rather than another's.
//! Where no listener names the CPU, the kernel picks one by hash, as it
//! does without the option.
//!
//! Steering alone could leave one hub with every connection (a network
//! card with one receive queue; local clients all on one CPU), so a hub
//! that holds more than its share hands a new connection to the least
//! loaded hub ([`Loads::elsewhere`]): the connection leaves its reactor
//! and is taken up by the other (an unregistration and a registration
//! more, for those connections only).
//!
//! A connection's packets may also move to another CPU after the
//! handshake: a client on the same machine whose thread the scheduler
//! moves, or one that made its connections from one CPU and then spread.
//! Every [`CHECK_EVERY`]th time a connection goes idle, it reads the CPU
//! that processed its last packet (`SO_INCOMING_CPU` again); if that is
//! another hub's CPU twice in a row, and the move keeps the hubs even
//! ([`Loads::may_move`]), the connection moves there ([`Follow`]).

use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many more connections than the least loaded hub a hub may hold
/// before it hands new ones over, at the least: a quarter more, or this.
const SLACK: usize = 8;

/// A connection looks at where its packets are processed once in this many
/// idle waits: one system call per this many requests, at most.
pub(crate) const CHECK_EVERY: u32 = 32;

/// Whether a hub with `more` connections is even with one with `fewer`:
/// at most [`SLACK`] more, or a quarter more.
fn even(more: usize, fewer: usize) -> bool {
    more <= fewer + SLACK.max(fewer / 4)
}

/// The live connections of each hub of a server, as the balance sees
/// them: a connection counts for the hub that will serve it from the
/// moment that hub is chosen.
#[derive(Debug)]
pub(crate) struct Loads {
    hubs: Box<[Slot]>,
}

/// One hub's count, on a cache line of its own: hubs write their own
/// counts and read the others' only when they accept.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    count: AtomicUsize,
    /// Whether the hub accepts connections (and so takes those handed to
    /// it): from when its task is set up to when it stops accepting.
    open: AtomicBool,
}

/// One connection counted for one hub, until dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    loads: Arc<Loads>,
    hub: usize,
}

impl Loads {
    pub(crate) fn new(hubs: usize) -> Arc<Loads> {
        Arc::new(Loads {
            hubs: (0..hubs.max(1)).map(|_| Slot::default()).collect(),
        })
    }

    /// Marks `hub` as taking connections handed to it, or no longer.
    pub(crate) fn set_open(&self, hub: usize, open: bool) {
        self.hubs[hub].open.store(open, Ordering::Release);
    }

    /// Counts a connection for `hub`, until the result is dropped.
    pub(crate) fn count(self: &Arc<Self>, hub: usize) -> Counted {
        self.hubs[hub].count.fetch_add(1, Ordering::Relaxed);
        Counted {
            loads: self.clone(),
            hub,
        }
    }

    fn load(&self, hub: usize) -> usize {
        self.hubs[hub].count.load(Ordering::Relaxed)
    }

    /// The hub that should take a connection that hub `me` accepted: the
    /// least loaded open one, when `me` holds more than [`SLACK`] and a
    /// quarter more connections than it; `None` (keep it) otherwise.
    pub(crate) fn elsewhere(&self, me: usize) -> Option<usize> {
        let mine = self.load(me);
        let (least, fewest) = (0..self.hubs.len())
            .filter(|&h| h != me && self.is_open(h))
            .map(|h| (h, self.load(h)))
            .min_by_key(|&(_, n)| n)?;
        (!even(mine, fewest)).then_some(least)
    }

    /// Whether a connection of hub `from` may move to hub `to`: `to` is
    /// open, and holds no more than its share once the move is made.
    pub(crate) fn may_move(&self, from: usize, to: usize) -> bool {
        self.is_open(to) && even(self.load(to) + 1, self.load(from).saturating_sub(1))
    }

    fn is_open(&self, hub: usize) -> bool {
        self.hubs
            .get(hub)
            .is_some_and(|s| s.open.load(Ordering::Acquire))
    }
}

/// Where a connection's packets are processed, followed: see the module
/// docs.
#[derive(Debug, Default)]
pub(crate) struct Follow {
    idles: u32,
    /// The other hub whose CPU processed the connection's packets at the
    /// last check.
    away: Option<usize>,
}

impl Follow {
    /// Called when the connection of hub `me` (`fd`, with nothing of a
    /// request in hand) goes idle; `cpus` are the steered hubs' CPUs. The
    /// hub to move the connection to, if it should move now.
    pub(crate) fn idle(
        &mut self,
        fd: impl AsFd,
        me: usize,
        cpus: &[Option<usize>],
        loads: &Loads,
    ) -> Option<usize> {
        self.idles = self.idles.wrapping_add(1);
        if self.idles % CHECK_EVERY != 0 {
            return None;
        }
        self.saw(incoming_cpu(fd), me, cpus, loads)
    }

    /// A check found the connection's packets processed on `cpu`.
    fn saw(
        &mut self,
        cpu: Option<usize>,
        me: usize,
        cpus: &[Option<usize>],
        loads: &Loads,
    ) -> Option<usize> {
        // At home on its own hub's CPU (which another hub may share, when
        // there are more hubs than CPUs); away on another hub's.
        let away = cpu
            .filter(|&cpu| cpus.get(me) != Some(&Some(cpu)))
            .and_then(|cpu| cpus.iter().position(|&c| c == Some(cpu)));
        let seen_before = away.is_some() && away == self.away;
        self.away = away;
        away.filter(|&to| seen_before && loads.may_move(me, to))
    }
}

impl Counted {
    /// The hub the connection counts for.
    pub(crate) fn hub(&self) -> usize {
        self.hub
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.loads.hubs[self.hub]
            .count
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The CPU that processed the last packet received on `fd` (Linux only).
fn incoming_cpu(fd: impl AsFd) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        socket2::SockRef::from(&fd).cpu_affinity().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// Asks the kernel for the connections whose handshake `cpu` processes
/// (`SO_INCOMING_CPU`); whether it took the option. Nothing happens
/// elsewhere than on Linux.
pub(crate) fn steer(listener: &TcpListener, cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        socket2::SockRef::from(listener)
            .set_cpu_affinity(cpu)
            .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (listener, cpu);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_keeps_its_connections_until_it_holds_more_than_its_share() {
        let loads = open(3);
        let mut held = Vec::new();
        // Hub 0 takes everything: it keeps 8 more than the others (the
        // slack), then sends the next to the least loaded.
        for _ in 0..=SLACK {
            assert_eq!(loads.elsewhere(0), None);
            held.push(loads.count(0));
        }
        assert_eq!(loads.elsewhere(0), Some(1));
        held.push(loads.count(1));
        held.push(loads.count(1));
        assert_eq!(
            loads.elsewhere(0),
            Some(2),
            "the least loaded of the others"
        );
        // Past the slack, a quarter more: 100 against 80 is kept, 101 is not.
        let loads = open(2);
        let a: Vec<_> = (0..100).map(|_| loads.count(0)).collect();
        let b: Vec<_> = (0..80).map(|_| loads.count(1)).collect();
        assert_eq!(loads.elsewhere(0), None);
        let extra = loads.count(0);
        assert_eq!(loads.elsewhere(0), Some(1));
        // Dropped connections no longer count.
        drop(extra);
        assert_eq!(loads.elsewhere(0), None);
        drop((a, b));
        assert_eq!((loads.load(0), loads.load(1)), (0, 0));
    }

    #[test]
    fn one_hub_has_nowhere_to_send() {
        let loads = open(1);
        let _held: Vec<_> = (0..100).map(|_| loads.count(0)).collect();
        assert_eq!(loads.elsewhere(0), None);
    }

    #[test]
    fn only_open_hubs_take_connections() {
        let loads = Loads::new(3);
        loads.set_open(0, true);
        let _held: Vec<_> = (0..100).map(|_| loads.count(0)).collect();
        assert_eq!(loads.elsewhere(0), None, "hubs 1 and 2 have not started");
        loads.set_open(2, true);
        assert_eq!(loads.elsewhere(0), Some(2));
        loads.set_open(2, false);
        assert_eq!(loads.elsewhere(0), None, "hub 2 stopped accepting");
    }

    #[test]
    fn a_connection_moves_to_the_hub_of_its_packets_seen_twice_in_a_row() {
        let loads = open(3);
        let _mine = loads.count(0);
        let cpus = [Some(4), Some(5), None];
        let mut f = Follow::default();
        assert_eq!(f.saw(Some(4), 0, &cpus, &loads), None, "at home");
        assert_eq!(f.saw(Some(5), 0, &cpus, &loads), None, "away once");
        assert_eq!(f.saw(Some(5), 0, &cpus, &loads), Some(1), "away twice");
        let mut f = Follow::default();
        assert_eq!(f.saw(Some(5), 0, &cpus, &loads), None);
        assert_eq!(f.saw(Some(4), 0, &cpus, &loads), None, "back home");
        assert_eq!(f.saw(Some(5), 0, &cpus, &loads), None, "away once again");
        // A CPU no steered hub has, or none known: it stays.
        let mut f = Follow::default();
        for cpu in [Some(7), Some(7), None, None] {
            assert_eq!(f.saw(cpu, 0, &cpus, &loads), None);
        }
        // Two hubs on one CPU (more hubs than CPUs): both are at home there.
        let shared = [Some(4), Some(4)];
        let mut f = Follow::default();
        for _ in 0..3 {
            assert_eq!(f.saw(Some(4), 1, &shared, &open(2)), None);
        }
    }

    #[test]
    fn a_connection_moves_only_while_the_hubs_stay_even() {
        let loads = open(2);
        let cpus = [Some(0), Some(1)];
        let a: Vec<_> = (0..10).map(|_| loads.count(0)).collect();
        let b: Vec<_> = (0..11).map(|_| loads.count(1)).collect();
        // 9 and 12 after the move: within 8.
        assert!(loads.may_move(0, 1));
        let mut f = Follow::default();
        f.saw(Some(1), 0, &cpus, &loads);
        assert_eq!(f.saw(Some(1), 0, &cpus, &loads), Some(1));
        let more: Vec<_> = (0..6).map(|_| loads.count(1)).collect();
        // 9 and 18: not even.
        assert!(!loads.may_move(0, 1));
        assert_eq!(f.saw(Some(1), 0, &cpus, &loads), None);
        // Nor to a hub that stopped accepting.
        drop(more);
        loads.set_open(1, false);
        assert!(!loads.may_move(0, 1));
        drop((a, b));
    }

    fn open(hubs: usize) -> Arc<Loads> {
        let loads = Loads::new(hubs);
        (0..hubs).for_each(|h| loads.set_open(h, true));
        loads
    }
}
