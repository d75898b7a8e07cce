//! Where and how the system runs hub threads: pinning to CPUs
//! ([`RuntimeBuilder::pin_workers`], through `sched_setaffinity`) and the
//! batch scheduling policy ([`RuntimeBuilder::batch_scheduling`], through
//! the `sched_setscheduler` system call). On Linux only (and not under
//! miri); elsewhere both do nothing.
//!
//! A runtime notes the [`Placement`] of the thread that builds it, its
//! *base*, and each hub starts from it before it is pinned or takes the
//! batch policy. Threads inherit their creator's mask and policy, so a
//! helper thread started by a hub (the blocking pool, the stall monitor)
//! is given that hub's base ([`for_helper`], [`apply`]): it neither crowds
//! its hub's CPU nor runs as a batch thread because its hub does. A
//! runtime built on a hub starts from that hub's base too, so that its
//! own settings, not the hub's, decide how its hubs run. The blocking
//! pool's threads are shared by every runtime of the process: each keeps
//! the placement of the hub that started it (the same for every runtime
//! unless they were built from threads placed differently).
//!
//! [`RuntimeBuilder::pin_workers`]: crate::RuntimeBuilder::pin_workers
//! [`RuntimeBuilder::batch_scheduling`]: crate::RuntimeBuilder::batch_scheduling

// miri models none of these system calls: there it is as elsewhere.
#[cfg(all(target_os = "linux", not(miri)))]
mod imp {
    use std::cell::Cell;
    use std::mem::{MaybeUninit, size_of};

    /// How the system runs a thread: the CPUs it may run on, its
    /// scheduling policy (each `None` where the system would not say), and
    /// the parallelism std reported for it.
    #[derive(Clone, Copy)]
    pub(crate) struct Placement {
        mask: Option<libc::cpu_set_t>,
        policy: Option<libc::c_int>,
        parallelism: Option<usize>,
        /// Noted on a hub, whose own thread may run otherwise; else read
        /// from the thread that asked, which threads it starts inherit.
        from_hub: bool,
    }

    impl Placement {
        pub(crate) fn parallelism(&self) -> Option<usize> {
            self.parallelism
        }
    }

    thread_local! {
        /// On a hub thread: its runtime's base, which threads started on
        /// it get (see the module docs).
        static BASE: Cell<Option<Placement>> = const { Cell::new(None) };
        /// On a hub thread that its runtime pinned: the CPU.
        static PINNED: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// The calling thread's CPU mask.
    fn mask() -> Option<libc::cpu_set_t> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: `set` points to a writable `cpu_set_t` of the size
        // passed; pid 0 is the calling thread (on Linux, where the call is
        // per thread). On failure the set is not used.
        let rc =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        // SAFETY: a `cpu_set_t` is an array of integers, for which the
        // zeroed value `set` started from is valid.
        (rc == 0).then(|| unsafe { set.assume_init() })
    }

    /// Makes `set` the calling thread's mask; false if refused.
    fn set_mask(set: &libc::cpu_set_t) -> bool {
        // SAFETY: `set` is a valid `cpu_set_t` of the size passed, only
        // read; pid 0 is the calling thread (on Linux).
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) == 0 }
    }

    /// A `sched_param` of priority 0, the only one of the normal and
    /// batch policies.
    fn priority_zero() -> libc::sched_param {
        // SAFETY: a `sched_param` is made of integers (with more fields
        // than the priority on some targets, hence no struct literal), for
        // which all-zero is valid; zero is priority 0.
        unsafe { MaybeUninit::zeroed().assume_init() }
    }

    // The policy is read and set with the system calls themselves: the C
    // library's wrappers may be stubs (musl's), and glibc's thread calls
    // answer from a copy it keeps, which `chrt -p` or the reset-on-fork
    // flag makes stale.

    /// The calling thread's scheduling policy, without the reset-on-fork
    /// flag, as the kernel has it.
    pub(super) fn policy() -> Option<libc::c_int> {
        // SAFETY: the call takes one integer, 0: the calling thread.
        let p = unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) };
        let p = libc::c_int::try_from(p).ok()?;
        (p >= 0).then_some(p & !libc::SCHED_RESET_ON_FORK)
    }

    /// Gives the calling thread `policy` (normal or batch); false if
    /// refused.
    fn set_policy(policy: libc::c_int) -> bool {
        let param = priority_zero();
        // SAFETY: 0 is the calling thread, `policy` an integer, and
        // `param` a valid `sched_param` that outlives the call, only read.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_setscheduler,
                0,
                policy,
                std::ptr::from_ref(&param),
            )
        };
        rc == 0
    }

    /// Whether this placement's policy is one [`apply`] may give back:
    /// the normal or the batch one (a real-time one needs its priority and
    /// privileges, and an idle one is left as it is).
    fn restorable(policy: Option<libc::c_int>) -> Option<libc::c_int> {
        policy.filter(|&p| p == libc::SCHED_OTHER || p == libc::SCHED_BATCH)
    }

    pub(crate) fn base() -> Placement {
        match BASE.get() {
            Some(base) => Placement {
                from_hub: true,
                ..base
            },
            None => Placement {
                mask: mask(),
                policy: policy(),
                parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
                from_hub: false,
            },
        }
    }

    pub(crate) fn allowed_cpus(base: &Placement) -> Vec<usize> {
        base.mask.as_ref().map(cpus).unwrap_or_default()
    }

    /// The CPUs in `set`, in order.
    fn cpus(set: &libc::cpu_set_t) -> Vec<usize> {
        let limit = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        // SAFETY: `CPU_ISSET` reads the set, and `cpu` is below
        // `CPU_SETSIZE`, the number of CPUs a `cpu_set_t` holds.
        (0..limit)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, set) })
            .collect()
    }

    /// The calling thread's CPUs, read afresh (for tests).
    #[cfg(test)]
    pub(crate) fn current_cpus() -> Vec<usize> {
        mask().map(|set| cpus(&set)).unwrap_or_default()
    }

    /// Pins the calling thread to `cpu`; false if refused.
    pub(super) fn pin(cpu: usize) -> bool {
        let limit = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        if cpu >= limit {
            return false;
        }
        // SAFETY: an all-zero `cpu_set_t` is the empty set.
        let mut set: libc::cpu_set_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `cpu` is below `CPU_SETSIZE` (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        set_mask(&set)
    }

    pub(crate) fn place_hub(base: Placement, cpu: Option<usize>, batch: bool) {
        BASE.set(Some(base));
        let pinned = cpu.is_some_and(pin);
        PINNED.set(cpu.filter(|_| pinned));
        // Built off a hub, this thread inherited `base` as it is.
        let policy = if base.from_hub {
            apply_parts(&base, !pinned)
        } else {
            base.policy
        };
        if batch && policy == Some(libc::SCHED_OTHER) {
            let _ = set_policy(libc::SCHED_BATCH);
        }
    }

    pub(crate) fn for_helper() -> Option<Placement> {
        BASE.get()
    }

    pub(crate) fn pinned_cpu() -> Option<usize> {
        PINNED.get()
    }

    pub(crate) fn apply(placement: Option<Placement>) {
        if let Some(p) = placement {
            let _ = apply_parts(&p, true);
        }
    }

    /// Gives the calling thread `p`'s mask (if `with_mask`) and its
    /// policy where it differs and may be given; best effort. Returns the
    /// thread's policy after.
    fn apply_parts(p: &Placement, with_mask: bool) -> Option<libc::c_int> {
        if with_mask {
            if let Some(set) = &p.mask {
                let _ = set_mask(set);
            }
        }
        let now = policy();
        match (restorable(p.policy), now) {
            (Some(want), Some(n)) if n != want && restorable(now).is_some() && set_policy(want) => {
                Some(want)
            }
            _ => now,
        }
    }

    pub(crate) fn whole_machine(base: &Placement, workers: usize) -> bool {
        let Some(set) = &base.mask else {
            return false;
        };
        let cpus = cpus(set).len();
        cpus > 0 && base.parallelism == Some(cpus) && workers >= cpus
    }

    /// Whether this thread may take the batch policy, tried on a thread of
    /// its own (for tests: a sandbox may refuse it).
    #[cfg(test)]
    pub(crate) fn batch_allowed() -> bool {
        std::thread::spawn(|| policy() == Some(libc::SCHED_OTHER) && set_policy(libc::SCHED_BATCH))
            .join()
            .unwrap_or(false)
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
mod imp {
    /// How the system runs a thread: its parallelism only, here.
    #[derive(Clone, Copy)]
    pub(crate) struct Placement {
        parallelism: Option<usize>,
    }

    impl Placement {
        pub(crate) fn parallelism(&self) -> Option<usize> {
            self.parallelism
        }
    }

    pub(crate) fn base() -> Placement {
        Placement {
            parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
        }
    }

    pub(crate) fn allowed_cpus(_base: &Placement) -> Vec<usize> {
        Vec::new()
    }

    pub(crate) fn place_hub(_base: Placement, _cpu: Option<usize>, _batch: bool) {}

    pub(crate) fn for_helper() -> Option<Placement> {
        None
    }

    pub(crate) fn pinned_cpu() -> Option<usize> {
        None
    }

    pub(crate) fn apply(_placement: Option<Placement>) {}

    pub(crate) fn whole_machine(_base: &Placement, _workers: usize) -> bool {
        false
    }
}

/// How the system runs a thread (see the module docs).
pub(crate) use imp::Placement;
/// The CPUs of `base`, in order (empty where unknown or unsupported).
pub(crate) use imp::allowed_cpus;
/// Run first on a helper thread, with what [`for_helper`] gave; best
/// effort.
pub(crate) use imp::apply;
/// The placement a runtime built on the calling thread starts its hubs
/// from: on a hub, its runtime's base; elsewhere the thread's own.
pub(crate) use imp::base;
/// Called where a helper thread is started: what to give it with
/// [`apply`] (on a hub, the hub's base; elsewhere `None`, as the helper
/// inherits a placement no runtime changed).
pub(crate) use imp::for_helper;
/// The CPU the calling hub thread was pinned to by [`place_hub`]; `None`
/// on other threads, on hubs not pinned, and where pinning was refused.
pub(crate) use imp::pinned_cpu;
/// Run first on a new hub thread: notes `base` as the hub's, gives the
/// thread `base`'s mask and policy where they differ from those it
/// inherited, then pins it to `cpu` and gives it the batch policy (only
/// from the normal one), as asked. Best effort throughout.
pub(crate) use imp::place_hub;
/// Whether `workers` hubs can each have a CPU of their own that the
/// process is entitled to: `base` may run on exactly as many CPUs as
/// `available_parallelism` reported for it (no CPU quota below its mask,
/// as containers often have) and there are at least that many hubs.
pub(crate) use imp::whole_machine;

#[cfg(all(test, target_os = "linux", not(miri)))]
mod tests {
    use super::*;

    /// Runs `f` on a hub-like thread placed from this thread's base,
    /// pinned to `cpu` and batched as asked, and returns what it gives.
    fn on_placed<T: Send + 'static>(
        cpu: Option<usize>,
        batch: bool,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let base = base();
        std::thread::spawn(move || {
            place_hub(base, cpu, batch);
            f()
        })
        .join()
        .unwrap()
    }

    /// What a helper started on the calling thread would run with.
    fn in_helper<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let placement = for_helper();
        std::thread::spawn(move || {
            apply(placement);
            f()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_pinned_thread_runs_on_its_cpu_and_its_helpers_do_not() {
        let cpus = allowed_cpus(&base());
        assert!(!cpus.is_empty(), "a thread runs on at least one CPU");
        let first = cpus[0];
        let (pinned, helper) = on_placed(Some(first), false, || {
            (imp::current_cpus(), in_helper(imp::current_cpus))
        });
        assert_eq!(pinned, [first]);
        assert_eq!(helper, cpus);
        assert!(!imp::pin(usize::MAX));
        // A thread no runtime placed gives its helpers nothing to undo.
        assert!(for_helper().is_none());
    }

    #[test]
    fn pin_workers_puts_each_hub_on_a_cpu_of_its_own() {
        let cpus = allowed_cpus(&base());
        let rt = crate::Runtime::builder()
            .workers(2)
            .pin_workers(true)
            .max_blocking_time(None)
            .build()
            .unwrap();
        for hub in 0..2 {
            let on = rt
                .spawn_on(hub, async { imp::current_cpus() })
                .get_blocking()
                .unwrap()
                .unwrap();
            assert_eq!(on, [cpus[hub % cpus.len()]], "hub {hub}");
        }
        // The blocking pool's threads are not held to their hub's CPU.
        let helper = rt
            .spawn_on(0, async { crate::spawn_blocking(imp::current_cpus).await })
            .get_blocking()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(helper, cpus);
        // Unpinned hubs keep the whole mask, also when their runtime is
        // built on a pinned hub.
        let rt1 = crate::Runtime::builder().workers(1).build().unwrap();
        assert_eq!(
            rt1.spawn_on(0, async { imp::current_cpus() })
                .get_blocking()
                .unwrap()
                .unwrap(),
            cpus
        );
        let nested = rt
            .spawn_on(0, async {
                let inner = crate::Runtime::builder()
                    .workers(1)
                    .max_blocking_time(None)
                    .build()
                    .unwrap();
                inner
                    .spawn_on(0, async { imp::current_cpus() })
                    .get_blocking()
                    .unwrap()
                    .unwrap()
            })
            .get_blocking()
            .unwrap()
            .unwrap();
        assert_eq!(nested, cpus);
    }

    #[test]
    fn a_runtime_built_on_a_pinned_hub_spreads_over_the_cpus_it_had() {
        let cpus = allowed_cpus(&base());
        let (spread, own) = on_placed(Some(cpus[0]), false, || {
            (allowed_cpus(&base()), imp::current_cpus())
        });
        assert_eq!(own, [cpus[0]]);
        assert_eq!(spread, cpus);
        // And it judges the machine as the thread that built that hub's
        // runtime would.
        let n = cpus.len();
        let here = (whole_machine(&base(), n), base().parallelism());
        let there = on_placed(Some(cpus[0]), false, move || {
            (whole_machine(&base(), n), base().parallelism())
        });
        assert_eq!(there, here);
    }

    #[test]
    fn batch_scheduling_gives_the_hubs_the_batch_policy_and_not_their_helpers() {
        let mine = imp::policy().expect("a thread has a policy");
        if mine != libc::SCHED_OTHER || !imp::batch_allowed() {
            eprintln!(
                "skipped: this thread runs under policy {mine}, or the system refuses SCHED_BATCH"
            );
            return;
        }
        let rt = crate::Runtime::builder()
            .workers(2)
            .batch_scheduling(true)
            .max_blocking_time(None)
            .build()
            .unwrap();
        for hub in 0..2 {
            let on = rt
                .spawn_on(hub, async { imp::policy() })
                .get_blocking()
                .unwrap()
                .unwrap();
            assert_eq!(on, Some(libc::SCHED_BATCH), "hub {hub}");
        }
        // Helpers do not run as batch threads: the blocking pool's, and
        // any other a batch hub starts the same way.
        let helper = rt
            .spawn_on(0, async { crate::spawn_blocking(imp::policy).await })
            .get_blocking()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(helper, Some(mine));
        let monitor = on_placed(None, true, || in_helper(imp::policy));
        assert_eq!(monitor, Some(mine));
        // A runtime built on a batch hub takes its own setting: batch
        // hubs when asked, normal ones by default; the helpers of either
        // are normal threads.
        let nested = |batch: bool| {
            rt.spawn_on(0, async move {
                let inner = crate::Runtime::builder()
                    .workers(1)
                    .batch_scheduling(batch)
                    .max_blocking_time(None)
                    .build()
                    .unwrap();
                let hub = inner.spawn_on(0, async { imp::policy() });
                let helper = inner.spawn_on(0, async { crate::spawn_blocking(imp::policy).await });
                (
                    hub.get_blocking().unwrap().unwrap(),
                    helper.get_blocking().unwrap().unwrap().unwrap(),
                )
            })
            .get_blocking()
            .unwrap()
            .unwrap()
        };
        assert_eq!(nested(true), (Some(libc::SCHED_BATCH), Some(mine)));
        assert_eq!(nested(false), (Some(mine), Some(mine)));
        // Off by default.
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        assert_eq!(
            rt.spawn_on(0, async { imp::policy() })
                .get_blocking()
                .unwrap()
                .unwrap(),
            Some(mine)
        );
    }

    #[test]
    fn whole_machine_needs_a_hub_for_every_cpu_the_process_is_entitled_to() {
        let cpus = imp::current_cpus().len();
        let entitled = std::thread::available_parallelism().map_or(0, |n| n.get());
        let b = base();
        assert_eq!(b.parallelism(), Some(entitled));
        assert_eq!(whole_machine(&b, cpus), entitled == cpus);
        assert_eq!(whole_machine(&b, cpus + 1), entitled == cpus);
        assert!(!whole_machine(&b, cpus - 1) || cpus == 1 && entitled == 1);
        // A thread held to one CPU is entitled to that one.
        let alone = std::thread::spawn(move || {
            assert!(imp::pin(imp::current_cpus()[0]));
            let b = base();
            (whole_machine(&b, 1), whole_machine(&b, 0))
        })
        .join()
        .unwrap();
        assert_eq!(alone, (true, false));
    }
}
