//! Which hub serves a connection.
//!
//! Each hub has a listener of its own (`SO_REUSEPORT`). Where the hubs are
//! pinned, one to a CPU, each listener also names its hub's CPU
//! (`SO_INCOMING_CPU`, Linux): since Linux 6.1 the kernel then gives a new
//! connection to the listener of the CPU that processed its handshake,
//! which is, for a flow that stays on one receive queue (or a client on
//! the same machine), the CPU that processes the rest of its packets too.
//! The hub that serves it then runs where its socket's data already is,
//! and the client's packets wake a thread on their own CPU rather than
//! another's. Where no listener names the CPU, the kernel picks one by
//! hash, as it does without the option.
//!
//! Steering could leave one hub with every connection (a network card
//! with one receive queue; local clients that all connect from one CPU),
//! so a hub that holds more than its share hands a new connection to the
//! least loaded hub ([`Loads::elsewhere`]): the connection leaves its
//! reactor and is taken up by the other (an unregistration and a
//! registration more). Such a hub, and one that reaches the per-hub cap of
//! connections, also stops asking for its CPU's connections, for good
//! ([`unsteer`]): the kernel spreads them by hash again, so that one CPU
//! that receives most handshakes does not make one hub accept them all.
//!
//! A connection's packets may also move to another CPU after the
//! handshake: a client on the same machine whose thread the scheduler
//! moves, or one that made its connections from one CPU and then spread.
//! Every [`CHECK_EVERY`]th time a connection goes idle after an answer, it
//! reads the CPU that processed its last packet (`SO_INCOMING_CPU` again);
//! if that is another hub's CPU twice in a row, and the move keeps the hubs
//! even ([`Loads::may_move`]), the connection moves there ([`Follow`]).
//! A flow from another machine stays on its receive queue's CPU, so its
//! connection stays where it was steered.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many more connections than the least loaded hub a hub may hold
/// before it hands new ones over, at the least: a quarter more, or this.
const SLACK: usize = 8;

/// A connection looks at where its packets are processed once in this many
/// idle waits after an answer.
const CHECK_EVERY: u32 = 32;

/// A [`Slot`]'s CPU when it has none.
const NO_CPU: usize = usize::MAX;

/// Whether a hub with `more` connections is even with one with `fewer`:
/// at most [`SLACK`] more, or a quarter more, whichever is larger.
fn even(more: usize, fewer: usize) -> bool {
    more <= fewer + SLACK.max(fewer / 4)
}

/// The live connections of each hub of a server, as the balance sees
/// them (a connection counts for the hub that will serve it from the
/// moment that hub is chosen), and the CPU of each steered hub.
#[derive(Debug)]
pub(crate) struct Loads {
    hubs: Box<[Slot]>,
    /// `Limits::max_connections_per_hub`: no connection is handed to a hub
    /// that holds as many.
    cap: usize,
}

/// One hub's count, on a cache line of its own: hubs write their own
/// counts and read the others' only when they accept or move a
/// connection.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    count: AtomicUsize,
    /// Whether the hub accepts connections (and so takes those handed to
    /// it): from when its task is set up to when it stops accepting.
    open: AtomicBool,
    /// The CPU the hub runs on, [`NO_CPU`] if unknown: connections whose
    /// packets that CPU processes may move to it.
    cpu: AtomicUsize,
}

/// One connection counted for one hub, until dropped.
#[derive(Debug)]
pub(crate) struct Counted {
    loads: Arc<Loads>,
    hub: usize,
}

impl Loads {
    /// One slot per entry of `cpus`, each hub's CPU where it is steered.
    pub(crate) fn new(cpus: &[Option<usize>], cap: usize) -> Arc<Loads> {
        Arc::new(Loads {
            hubs: cpus
                .iter()
                .map(|cpu| Slot {
                    count: AtomicUsize::new(0),
                    open: AtomicBool::new(false),
                    cpu: AtomicUsize::new(cpu.unwrap_or(NO_CPU)),
                })
                .collect(),
            cap: cap.max(1),
        })
    }

    /// Marks `hub` as taking connections handed to it, or no longer.
    pub(crate) fn set_open(&self, hub: usize, open: bool) {
        self.hubs[hub].open.store(open, Ordering::Release);
    }

    /// The CPU `hub` runs on, if it is steered and pinned there.
    pub(crate) fn cpu(&self, hub: usize) -> Option<usize> {
        let cpu = self.hubs.get(hub)?.cpu.load(Ordering::Relaxed);
        (cpu != NO_CPU).then_some(cpu)
    }

    /// `hub` does not run where it was to (its pinning was refused): no
    /// connection moves to it for its CPU.
    pub(crate) fn lose_cpu(&self, hub: usize) {
        self.hubs[hub].cpu.store(NO_CPU, Ordering::Relaxed);
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

    /// Whether `hub` is open and holds fewer connections than the cap.
    fn takes(&self, hub: usize) -> bool {
        self.hubs[hub].open.load(Ordering::Acquire) && self.load(hub) < self.cap
    }

    /// The hub that should take a connection that hub `me` accepted: the
    /// least loaded one that takes connections, when `me` holds more than
    /// it by the larger of [`SLACK`] and a quarter; `None` (keep it)
    /// otherwise.
    pub(crate) fn elsewhere(&self, me: usize) -> Option<usize> {
        let mine = self.load(me);
        let (least, fewest) = (0..self.hubs.len())
            .filter(|&h| h != me && self.takes(h))
            .map(|h| (h, self.load(h)))
            .min_by_key(|&(_, n)| n)?;
        (!even(mine, fewest)).then_some(least)
    }

    /// Whether a connection of hub `from` may move to hub `to`: `to` is
    /// steered and takes connections, and holds no more than its share
    /// once the move is made.
    pub(crate) fn may_move(&self, from: usize, to: usize) -> bool {
        self.cpu(to).is_some()
            && self.takes(to)
            && even(self.load(to) + 1, self.load(from).saturating_sub(1))
    }

    /// The steered hub that runs on `cpu`, other than `me`; `None` when
    /// `me` runs there itself (two hubs may share a CPU).
    fn other_on(&self, cpu: usize, me: usize) -> Option<usize> {
        if self.cpu(me) == Some(cpu) {
            return None;
        }
        (0..self.hubs.len()).find(|&h| self.cpu(h) == Some(cpu))
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
    /// Called when the connection of hub `me` (`fd`) goes idle after an
    /// answer, with nothing of a request in hand: the hub to move it to,
    /// if it should move now.
    pub(crate) fn idle(&mut self, fd: impl AsFd, me: usize, loads: &Loads) -> Option<usize> {
        self.idles = self.idles.wrapping_add(1);
        if self.idles % CHECK_EVERY != 0 {
            return None;
        }
        self.saw(incoming_cpu(fd), me, loads)
    }

    /// A check found the connection's packets processed on `cpu`.
    fn saw(&mut self, cpu: Option<usize>, me: usize, loads: &Loads) -> Option<usize> {
        let away = cpu.and_then(|cpu| loads.other_on(cpu, me));
        let seen_before = away.is_some() && away == self.away;
        self.away = away;
        away.filter(|&to| seen_before && loads.may_move(me, to))
    }
}

/// The CPU that processed the last packet received on `fd` (Linux only).
fn incoming_cpu(fd: impl AsFd) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // A socket that received nothing yet says -1 (here `usize::MAX`,
        // which is no hub's CPU).
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
pub(crate) fn steer(listener: impl AsFd, cpu: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        cpu != NO_CPU
            && socket2::SockRef::from(&listener)
                .set_cpu_affinity(cpu)
                .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (listener, cpu);
        false
    }
}

/// Takes back what [`steer`] asked: the kernel spreads the listener's
/// connections by hash again. Best effort.
pub(crate) fn unsteer(listener: impl AsFd) {
    #[cfg(target_os = "linux")]
    {
        // socket2 passes the CPU as a C `int`: `usize::MAX` becomes -1, the
        // kernel's "no CPU".
        let _ = socket2::SockRef::from(&listener).set_cpu_affinity(NO_CPU);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = listener;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hubs` open hubs on CPUs 0, 1, ..., with room for 1,000 each.
    fn open(hubs: usize) -> Arc<Loads> {
        let cpus: Vec<_> = (0..hubs).map(Some).collect();
        let loads = Loads::new(&cpus, 1000);
        (0..hubs).for_each(|h| loads.set_open(h, true));
        loads
    }

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
    fn only_open_hubs_with_room_take_connections() {
        let loads = Loads::new(&[Some(0), Some(1), Some(2)], 20);
        loads.set_open(0, true);
        let _held: Vec<_> = (0..100).map(|_| loads.count(0)).collect();
        assert_eq!(loads.elsewhere(0), None, "hubs 1 and 2 have not started");
        loads.set_open(2, true);
        assert_eq!(loads.elsewhere(0), Some(2));
        let full: Vec<_> = (0..20).map(|_| loads.count(2)).collect();
        assert_eq!(loads.elsewhere(0), None, "hub 2 is at the cap");
        drop(full);
        loads.set_open(2, false);
        assert_eq!(loads.elsewhere(0), None, "hub 2 stopped accepting");
    }

    #[test]
    fn a_connection_moves_to_the_hub_of_its_packets_seen_twice_in_a_row() {
        let loads = Loads::new(&[Some(4), Some(5), None], 1000);
        (0..3).for_each(|h| loads.set_open(h, true));
        let _mine = loads.count(0);
        let mut f = Follow::default();
        assert_eq!(f.saw(Some(4), 0, &loads), None, "at home");
        assert_eq!(f.saw(Some(5), 0, &loads), None, "away once");
        assert_eq!(f.saw(Some(5), 0, &loads), Some(1), "away twice");
        let mut f = Follow::default();
        assert_eq!(f.saw(Some(5), 0, &loads), None);
        assert_eq!(f.saw(Some(4), 0, &loads), None, "back home");
        assert_eq!(f.saw(Some(5), 0, &loads), None, "away once again");
        // A CPU no steered hub has, or none known: it stays.
        let mut f = Follow::default();
        for cpu in [Some(7), Some(7), None, None, Some(NO_CPU), Some(NO_CPU)] {
            assert_eq!(f.saw(cpu, 0, &loads), None);
        }
        // A hub whose pinning was refused is no CPU's.
        loads.lose_cpu(1);
        let mut f = Follow::default();
        f.saw(Some(5), 0, &loads);
        assert_eq!(f.saw(Some(5), 0, &loads), None);
        // Two hubs on one CPU (more hubs than CPUs): both are at home there.
        let shared = Loads::new(&[Some(4), Some(4)], 1000);
        (0..2).for_each(|h| shared.set_open(h, true));
        let mut f = Follow::default();
        for _ in 0..3 {
            assert_eq!(f.saw(Some(4), 1, &shared), None);
        }
    }

    #[test]
    fn a_connection_moves_only_while_the_hubs_stay_even() {
        let loads = open(2);
        let a: Vec<_> = (0..10).map(|_| loads.count(0)).collect();
        let b: Vec<_> = (0..11).map(|_| loads.count(1)).collect();
        // 9 and 12 after the move: within 8.
        assert!(loads.may_move(0, 1));
        let mut f = Follow::default();
        f.saw(Some(1), 0, &loads);
        assert_eq!(f.saw(Some(1), 0, &loads), Some(1));
        let more: Vec<_> = (0..6).map(|_| loads.count(1)).collect();
        // 9 and 18: not even.
        assert!(!loads.may_move(0, 1));
        assert_eq!(f.saw(Some(1), 0, &loads), None);
        // Nor to a hub that stopped accepting.
        drop(more);
        loads.set_open(1, false);
        assert!(!loads.may_move(0, 1));
        drop((a, b));
        // Nor to a full one.
        let loads = Loads::new(&[Some(0), Some(1)], 3);
        (0..2).for_each(|h| loads.set_open(h, true));
        let _a: Vec<_> = (0..3).map(|_| loads.count(0)).collect();
        let _b: Vec<_> = (0..3).map(|_| loads.count(1)).collect();
        assert!(!loads.may_move(0, 1));
    }
}
