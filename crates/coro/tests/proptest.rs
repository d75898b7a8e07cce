//! Properties: a generator yields exactly what its body yields and
//! receives exactly what is sent, however the work is split across
//! delegations; dropping or closing a generator at any point runs each
//! destructor exactly once.

use std::cell::Cell;
use std::rc::Rc;

use coro::{Gen, GenState};
use proptest::prelude::*;

/// Yields `ys` in order and returns what was sent at each yield.
fn echo(ys: Vec<u32>) -> Gen<u32, Vec<u32>, u32> {
    Gen::new(move |co| async move {
        let mut got = Vec::with_capacity(ys.len());
        for y in ys {
            got.push(co.yield_(y).await);
        }
        got
    })
}

/// Yields `ys` by delegating each chunk to an `echo` generator.
fn chunked(ys: Vec<u32>, cuts: Vec<usize>) -> Gen<u32, Vec<u32>, u32> {
    Gen::new(move |co| async move {
        let mut got = Vec::new();
        let mut rest = &ys[..];
        for cut in cuts {
            let (now, later) = rest.split_at(cut.min(rest.len()));
            got.extend(co.yield_from(echo(now.to_vec())).await);
            rest = later;
        }
        got.extend(co.yield_from(echo(rest.to_vec())).await);
        got
    })
}

/// Drives `g` with `sends`, returning what it yielded and what it returned.
fn drive(mut g: Gen<u32, Vec<u32>, u32>, sends: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut yielded = Vec::new();
    let mut step = g.start();
    let mut sends = sends.iter();
    loop {
        match step {
            Ok(GenState::Yielded(y)) => {
                yielded.push(y);
                step = g.send(*sends.next().expect("one send per yield"));
            }
            Ok(GenState::Complete(r)) => return (yielded, r),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

struct Tracked {
    counts: Rc<Vec<Cell<u32>>>,
    i: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let c = &self.counts[self.i];
        c.set(c.get() + 1);
    }
}

/// The default configuration (which reads `PROPTEST_CASES`), without the
/// failure file under miri, whose isolation forbids reading the current
/// directory.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if cfg!(miri) {
        config.failure_persistence = None;
        config.cases = config.cases.min(4);
    }
    config
}

/// The longest sequences tried: shorter under miri, an interpreter
/// thousands of times slower.
const MAX_LEN: usize = if cfg!(miri) { 8 } else { 64 };

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yields_and_sends_are_exactly_the_sequences(pairs in proptest::collection::vec(any::<(u32, u32)>(), 0..MAX_LEN)) {
        let (ys, sends): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
        let (yielded, returned) = drive(echo(ys.clone()), &sends);
        prop_assert_eq!(yielded, ys);
        prop_assert_eq!(returned, sends);
    }

    #[test]
    fn delegation_changes_nothing(
        pairs in proptest::collection::vec(any::<(u32, u32)>(), 0..MAX_LEN),
        cuts in proptest::collection::vec(0usize..8, 0..MAX_LEN.min(8)),
    ) {
        let (ys, sends): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
        let (yielded, returned) = drive(chunked(ys.clone(), cuts), &sends);
        prop_assert_eq!(yielded, ys);
        prop_assert_eq!(returned, sends);
    }

    #[test]
    fn dropping_or_closing_at_any_point_runs_each_destructor_once(
        n in 1usize..16,
        keep in proptest::collection::vec(any::<bool>(), 16),
        resumes in 0usize..20,
        close in any::<bool>(),
        delegate in any::<bool>(),
    ) {
        let counts: Rc<Vec<Cell<u32>>> = Rc::new((0..=n).map(|_| Cell::new(0)).collect());
        let created = Rc::new(Cell::new(0usize));
        let captured = Tracked { counts: counts.clone(), i: 0 };
        created.set(1);
        let (c, made) = (counts.clone(), created.clone());
        // Values made between yields; some kept to the end, some dropped
        // at once; optionally inside a delegated generator.
        let body = move |co: coro::Co<u32>| async move {
            let _captured = captured;
            let mut kept = Vec::new();
            for (i, keep) in keep.into_iter().enumerate().take(n + 1).skip(1) {
                let t = Tracked { counts: c.clone(), i };
                made.set(made.get() + 1);
                co.yield_(i as u32).await;
                if keep {
                    kept.push(t);
                }
            }
        };
        let mut g: Gen<u32> = if delegate {
            Gen::new(move |co| async move { co.yield_from(Gen::new(body)).await })
        } else {
            Gen::new(body)
        };
        for _ in 0..resumes {
            if g.next().is_none() {
                break;
            }
        }
        if close {
            g.close();
            prop_assert!(g.is_complete());
            prop_assert_eq!(g.next(), None);
        }
        drop(g);
        for (i, count) in counts.iter().enumerate() {
            let expected = u32::from(i < created.get());
            prop_assert_eq!(count.get(), expected, "value {} of {}", i, created.get());
        }
    }
}
