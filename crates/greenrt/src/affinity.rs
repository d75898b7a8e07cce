//! Where and how the system runs hub threads: pinning to CPUs
//! ([`RuntimeBuilder::pin_workers`], through `sched_setaffinity`) and the
//! batch scheduling policy ([`RuntimeBuilder::batch_scheduling`], through
//! `sched_setscheduler`). On Linux only; elsewhere both do nothing.
//!
//! Threads inherit their creator's CPU mask and policy, so a helper thread
//! started by a hub (the blocking pool, the stall monitor) calls
//! [`release_current`] first: it gets the mask and the policy the process
//! had before any hub changed its own, and neither crowds its hub's CPU
//! nor waits as a batch thread does.
//!
//! [`RuntimeBuilder::pin_workers`]: crate::RuntimeBuilder::pin_workers
//! [`RuntimeBuilder::batch_scheduling`]: crate::RuntimeBuilder::batch_scheduling

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::Cell;
    use std::mem::{MaybeUninit, size_of};
    use std::sync::OnceLock;

    /// The mask of the thread that built the first pinned runtime, before
    /// any hub was pinned.
    static BEFORE: OnceLock<libc::cpu_set_t> = OnceLock::new();

    thread_local! {
        /// Set on a thread [`pin_current`] pinned: its own mask is one CPU,
        /// and a runtime built on it spreads its hubs over [`BEFORE`].
        static PINNED: Cell<bool> = const { Cell::new(false) };
        /// Set on a thread [`batch_current`] gave the batch policy.
        static BATCHED: Cell<bool> = const { Cell::new(false) };
    }

    /// The calling thread's CPU mask.
    fn current() -> Option<libc::cpu_set_t> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: `set` points to a writable `cpu_set_t` of the size
        // passed; pid 0 is the calling thread. On failure the set is not
        // used.
        let rc =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        // SAFETY: a `cpu_set_t` is an array of integers, for which the
        // zeroed value `set` started from is valid.
        (rc == 0).then(|| unsafe { set.assume_init() })
    }

    /// Makes `set` the calling thread's mask; false if refused.
    fn apply(set: &libc::cpu_set_t) -> bool {
        // SAFETY: `set` is a valid `cpu_set_t` of the size passed, only
        // read; pid 0 is the calling thread.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) == 0 }
    }

    pub(crate) fn allowed_cpus() -> Vec<usize> {
        let set = match BEFORE.get() {
            // A pinned hub building a runtime: the mask it had before.
            Some(before) if PINNED.get() => *before,
            _ => {
                let Some(set) = current() else {
                    return Vec::new();
                };
                let _ = BEFORE.set(set);
                set
            }
        };
        cpus(&set)
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
        current().map(|set| cpus(&set)).unwrap_or_default()
    }

    pub(crate) fn pin_current(cpu: usize) -> bool {
        let limit = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        if cpu >= limit {
            return false;
        }
        // SAFETY: an all-zero `cpu_set_t` is the empty set.
        let mut set: libc::cpu_set_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `cpu` is below `CPU_SETSIZE` (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        let pinned = apply(&set);
        PINNED.set(pinned);
        pinned
    }

    /// The policy of the thread that first asked for the batch policy,
    /// before it had it.
    static POLICY_BEFORE: OnceLock<libc::c_int> = OnceLock::new();

    /// The calling thread's scheduling policy, without the reset-on-fork
    /// flag; `None` if the system will not say.
    pub(super) fn policy() -> Option<libc::c_int> {
        // SAFETY: no pointer is passed; pid 0 is the calling thread.
        let p = unsafe { libc::sched_getscheduler(0) };
        (p >= 0).then_some(p & !libc::SCHED_RESET_ON_FORK)
    }

    /// Gives the calling thread `policy` at priority 0 (the only one the
    /// normal, batch and idle policies have); false if refused.
    fn set_policy(policy: libc::c_int) -> bool {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param`, only read; pid 0 is
        // the calling thread.
        unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
    }

    pub(crate) fn remember_policy() {
        // A batch hub building a runtime: the policy it had before is
        // already remembered (by the thread that built its own runtime).
        if BATCHED.get() {
            return;
        }
        if let Some(p) = policy() {
            let _ = POLICY_BEFORE.set(p);
        }
    }

    pub(crate) fn batch_current() -> bool {
        let batched = policy() == Some(libc::SCHED_OTHER) && set_policy(libc::SCHED_BATCH);
        BATCHED.set(batched);
        batched
    }

    pub(crate) fn release_current() {
        if let Some(set) = BEFORE.get() {
            // Best effort: a helper left on its hub's CPU still works.
            let _ = apply(set);
        }
        if let Some(&before) = POLICY_BEFORE.get() {
            if before == libc::SCHED_OTHER && policy() == Some(libc::SCHED_BATCH) {
                // Best effort, as above.
                let _ = set_policy(before);
            }
        }
    }

    pub(crate) fn whole_machine(workers: usize) -> bool {
        let Some(set) = current() else {
            return false;
        };
        let cpus = cpus(&set).len();
        let entitled = std::thread::available_parallelism().map_or(0, |n| n.get());
        cpus > 0 && entitled == cpus && workers >= cpus
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(crate) fn allowed_cpus() -> Vec<usize> {
        Vec::new()
    }

    pub(crate) fn pin_current(_cpu: usize) -> bool {
        false
    }

    pub(crate) fn remember_policy() {}

    pub(crate) fn batch_current() -> bool {
        false
    }

    pub(crate) fn release_current() {}

    pub(crate) fn whole_machine(_workers: usize) -> bool {
        false
    }
}

/// The CPUs the calling thread may run on, in order (empty where unknown
/// or unsupported), or, on a pinned hub, those it could run on before it
/// was pinned; the first call remembers them for [`release_current`].
pub(crate) use imp::allowed_cpus;
/// Gives the calling thread the batch policy if it has the normal one
/// (a real-time or idle thread keeps its own); false if it did not take
/// it.
pub(crate) use imp::batch_current;
/// Pins the calling thread to `cpu`; false if the system refused.
pub(crate) use imp::pin_current;
/// Gives the calling thread the mask the process had before hubs were
/// pinned, and the policy it had before hubs took the batch one (nothing
/// where neither changed).
pub(crate) use imp::release_current;
/// Remembers the calling thread's scheduling policy (the first call only)
/// for [`release_current`]: called by the thread that builds a runtime
/// whose hubs take the batch policy, before it starts them.
pub(crate) use imp::remember_policy;
/// Whether `workers` hubs can each have a CPU of their own that the
/// process is entitled to: the calling thread may run on exactly as many
/// CPUs as `available_parallelism` reports (no CPU quota below its mask, as
/// containers often have) and there are at least that many hubs.
pub(crate) use imp::whole_machine;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "system calls miri does not model")]
    fn a_pinned_thread_runs_on_its_cpu_and_its_helpers_do_not() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "a thread runs on at least one CPU");
        let first = cpus[0];
        let (pinned, helper) = std::thread::spawn(move || {
            assert!(pin_current(first));
            let pinned = imp::current_cpus();
            let helper = std::thread::spawn(|| {
                release_current();
                imp::current_cpus()
            })
            .join()
            .unwrap();
            (pinned, helper)
        })
        .join()
        .unwrap();
        assert_eq!(pinned, [first]);
        assert_eq!(helper, cpus);
        assert!(!pin_current(usize::MAX));
    }

    #[test]
    #[cfg_attr(miri, ignore = "system calls miri does not model")]
    fn pin_workers_puts_each_hub_on_a_cpu_of_its_own() {
        let cpus = allowed_cpus();
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
        // Unpinned hubs keep the whole mask.
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        assert_eq!(
            rt.spawn_on(0, async { imp::current_cpus() })
                .get_blocking()
                .unwrap()
                .unwrap(),
            cpus
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "system calls miri does not model")]
    fn batch_scheduling_gives_the_hubs_the_batch_policy_and_not_their_helpers() {
        let mine = imp::policy().expect("a thread has a policy");
        let rt = crate::Runtime::builder()
            .workers(2)
            .batch_scheduling(true)
            .max_blocking_time(None)
            .build()
            .unwrap();
        // A thread under the normal policy gets the batch one; any other
        // (the tests run under a real-time policy, say) is kept.
        let expected = if mine == libc::SCHED_OTHER {
            libc::SCHED_BATCH
        } else {
            mine
        };
        for hub in 0..2 {
            let on = rt
                .spawn_on(hub, async { imp::policy() })
                .get_blocking()
                .unwrap()
                .unwrap();
            assert_eq!(on, Some(expected), "hub {hub}");
        }
        // The blocking pool's threads are not batch threads.
        let helper = rt
            .spawn_on(0, async { crate::spawn_blocking(imp::policy).await })
            .get_blocking()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(helper, Some(mine));
        // A runtime built on a batch hub: its hubs are batch threads too,
        // and its helpers still get the policy from before.
        let nested = rt
            .spawn_on(0, async {
                let inner = crate::Runtime::builder()
                    .workers(1)
                    .batch_scheduling(true)
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
            .unwrap();
        assert_eq!(nested, (Some(expected), Some(mine)));
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
    #[cfg_attr(miri, ignore = "system calls miri does not model")]
    fn a_runtime_built_on_a_pinned_thread_spreads_over_the_cpus_it_had() {
        let cpus = allowed_cpus();
        let first = cpus[0];
        let (spread, own) = std::thread::spawn(move || {
            assert!(pin_current(first));
            (allowed_cpus(), imp::current_cpus())
        })
        .join()
        .unwrap();
        assert_eq!(own, [first]);
        assert_eq!(spread, cpus);
    }

    #[test]
    #[cfg_attr(miri, ignore = "system calls miri does not model")]
    fn whole_machine_needs_a_hub_for_every_cpu_the_process_is_entitled_to() {
        let cpus = imp::current_cpus().len();
        let entitled = std::thread::available_parallelism().map_or(0, |n| n.get());
        assert_eq!(whole_machine(cpus), entitled == cpus);
        assert_eq!(whole_machine(cpus + 1), entitled == cpus);
        assert!(!whole_machine(cpus - 1) || cpus == 1 && entitled == 1);
        // A thread held to one CPU is entitled to that one.
        let alone = std::thread::spawn(move || {
            assert!(pin_current(imp::current_cpus()[0]));
            (whole_machine(1), whole_machine(0))
        })
        .join()
        .unwrap();
        assert_eq!(alone, (true, false));
    }
}
