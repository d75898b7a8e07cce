//! Compile-time `Send`/`Sync` guarantees of the public types.

use std::cell::Cell;
use std::rc::Rc;

use sync_prims::futures::{EventWait, LockAcquire};
use sync_prims::{Event, Lock, LockGuard, Panicked, Thread};

fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn public_types_are_send_and_sync_where_they_should_be() {
    send::<Lock<u8>>();
    sync::<Lock<u8>>();
    // A Lock makes a Send-but-not-Sync value shareable, like Mutex.
    sync::<Lock<Cell<u8>>>();
    // A guard may move to another thread (Python's Lock is not owner-bound).
    send::<LockGuard<'static, u8>>();
    sync::<LockGuard<'static, u8>>();
    send::<LockAcquire<'static, u8>>();
    send::<Event>();
    sync::<Event>();
    send::<EventWait<'static>>();
    send::<Thread<u8>>();
    send::<Panicked>();
    sync::<Panicked>();
}

/// The guard of a lock over a `Cell` must not be `Sync` (sharing it would
/// share `&Cell` between threads), and a lock over an `Rc` is neither.
#[test]
fn unsound_combinations_are_rejected() {
    trait NotSync {
        const NOT_SYNC: bool = true;
    }
    impl<T: ?Sized> NotSync for T {}
    struct Probe<T: ?Sized>(std::marker::PhantomData<T>);
    #[allow(dead_code, reason = "only the constant is read")]
    impl<T: ?Sized + Sync> Probe<T> {
        const NOT_SYNC: bool = false;
    }
    #[allow(dead_code, reason = "only the constant is read")]
    struct SendProbe<T: ?Sized>(std::marker::PhantomData<T>);
    trait NotSend {
        const NOT_SEND: bool = true;
    }
    impl<T: ?Sized> NotSend for T {}
    #[allow(dead_code, reason = "only the constant is read")]
    impl<T: ?Sized + Send> SendProbe<T> {
        const NOT_SEND: bool = false;
    }
    const { assert!(<Probe<LockGuard<'static, Cell<u8>>>>::NOT_SYNC) };
    const { assert!(<Probe<Lock<Rc<u8>>>>::NOT_SYNC) };
    const { assert!(<SendProbe<Lock<Rc<u8>>>>::NOT_SEND) };
    const { assert!(!<Probe<Lock<u8>>>::NOT_SYNC) };
}
