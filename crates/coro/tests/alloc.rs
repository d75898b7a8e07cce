//! A counting global allocator proves the cost model: one allocation per
//! generator (its boxed body), none per resume.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use coro::{AsyncGen, Gen, GenState};
use futures_core::Stream;

/// Counts the allocations made by the current thread (tests run on
/// several threads at once; each counts only its own).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` unchanged; counting touches a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCS.with(Cell::get);
    let out = f();
    (out, ALLOCS.with(Cell::get) - before)
}

fn echo() -> Gen<u64, (), u64> {
    Gen::new(|co| async move {
        let mut acc = [0u64; 8];
        loop {
            let s = co.yield_(acc[0]).await;
            acc[(s % 8) as usize] += s;
        }
    })
}

#[test]
fn a_generator_costs_one_allocation_and_its_resumes_none() {
    let (mut g, n) = allocations(echo);
    assert_eq!(n, 1, "making a generator");
    let (_, n) = allocations(|| {
        assert_eq!(g.start(), Ok(GenState::Yielded(0)));
        for i in 0..10_000 {
            assert!(matches!(g.send(i), Ok(GenState::Yielded(_))));
        }
    });
    assert_eq!(n, 0, "10,001 resumes");
    let (_, n) = allocations(|| g.close());
    assert_eq!(n, 0);
}

#[test]
fn create_and_run_ten_yields_is_one_allocation() {
    let (sum, n) = allocations(|| {
        let g: Gen<u64> = Gen::new(|co| async move {
            for i in 1..=10 {
                co.yield_(i).await;
            }
        });
        g.sum::<u64>()
    });
    assert_eq!(sum, 55);
    assert_eq!(n, 1);
}

#[test]
fn delegation_allocates_nothing_per_resume() {
    let (mut outer, n) = allocations(|| {
        let inner = echo();
        let outer: Gen<u64, (), u64> =
            Gen::new(move |co| async move { co.yield_from(inner).await });
        outer
    });
    assert_eq!(n, 2, "two generators");
    let (_, n) = allocations(|| {
        outer.start().unwrap();
        for i in 0..1_000 {
            outer.send(i).unwrap();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn async_generators_and_their_streams_allocate_nothing_per_resume() {
    let (mut g, n) = allocations(|| {
        AsyncGen::<u64, (), u64>::new(|co| async move {
            let mut x = 0;
            loop {
                x += co.yield_(x).await;
            }
        })
    });
    assert_eq!(n, 1);
    let mut cx = Context::from_waker(Waker::noop());
    let (_, n) = allocations(|| {
        assert!(matches!(
            pin!(g.start()).poll(&mut cx),
            Poll::Ready(Ok(GenState::Yielded(0)))
        ));
        for i in 0..1_000 {
            assert!(matches!(pin!(g.send(i)).poll(&mut cx), Poll::Ready(Ok(_))));
        }
    });
    assert_eq!(n, 0);

    let (mut s, n) = allocations(|| {
        AsyncGen::<u64>::new(|co| async move {
            for i in 0..1_000 {
                co.yield_(i).await;
            }
        })
    });
    assert_eq!(n, 1);
    let (count, n) = allocations(|| {
        let mut count = 0;
        while let Poll::Ready(Some(_)) = pin!(&mut s).poll_next(&mut cx) {
            count += 1;
        }
        count
    });
    assert_eq!((count, n), (1_000, 0));
}
