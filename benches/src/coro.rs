//! `coro`: generators against genawaiter (`rc`, `sync`, `stack`) and a
//! hand-written state machine.

use std::hint::black_box;

use coro::{Gen, GenState};
use genawaiter::GeneratorState;

use crate::harness::{Table, per_op};

/// The floor: the same echoing generator written by hand as a state
/// machine behind a call that is not inlined (as a generator's body is).
struct Echo {
    state: u8,
    acc: u64,
}

impl Echo {
    #[inline(never)]
    fn resume(&mut self, sent: Option<u64>) -> GenState<u64, u64> {
        match (self.state, sent) {
            (0, _) => {
                self.state = 1;
                GenState::Yielded(self.acc)
            }
            (_, Some(s)) => {
                self.acc = self.acc.wrapping_add(s);
                GenState::Yielded(self.acc)
            }
            (_, None) => GenState::Complete(self.acc),
        }
    }
}

/// The protocol of a resumable object, for the floor behind a `dyn` call
/// (as a `Gen`'s type-erased body is).
trait Resume {
    fn resume(&mut self, sent: Option<u64>) -> GenState<u64, u64>;
}

impl Resume for Echo {
    fn resume(&mut self, sent: Option<u64>) -> GenState<u64, u64> {
        Echo::resume(self, sent)
    }
}

/// The hand-written ten-yield generator.
struct Ten {
    i: u64,
}

impl Ten {
    #[inline(never)]
    fn resume(&mut self) -> GenState<u64, ()> {
        if self.i < 10 {
            self.i += 1;
            GenState::Yielded(self.i)
        } else {
            GenState::Complete(())
        }
    }
}

fn drain_hand() -> u64 {
    let mut g = black_box(Ten { i: 0 });
    let mut sum = 0;
    while let GenState::Yielded(y) = g.resume() {
        sum += y;
    }
    sum
}

pub(crate) fn run() -> String {
    let mut out = String::from(
        "## coro: generators\n\nMedians of 7 samples; lower is better; the ratio column compares each \
         row with the row named in its header.\n\n",
    );
    const N: u64 = 20_000_000;

    eprintln!("send round trip");
    let mut t = Table::new(
        "One `send` round trip (value in, yielded value out)",
        "ns/op",
    );
    let mut hand = Echo { state: 0, acc: 0 };
    hand.resume(None);
    t.row(
        "hand-written state machine",
        per_op(N, || {
            black_box(hand.resume(Some(black_box(1))));
        }),
    );

    // `black_box` hides the concrete type, so the call stays virtual.
    let mut boxed: Box<dyn Resume> = black_box(Box::new(Echo { state: 0, acc: 0 }));
    boxed.resume(None);
    t.row(
        "hand-written state machine, boxed as `dyn`",
        per_op(N, || {
            black_box(boxed.resume(Some(black_box(1))));
        }),
    );

    let mut ours: Gen<u64, (), u64> = Gen::new(|co| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    let _ = ours.start();
    t.row(
        "coro::Gen",
        per_op(N, || {
            black_box(ours.send(black_box(1)).ok());
        }),
    );

    let mut inline = Gen::new_inline(|co: coro::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    let _ = inline.start();
    t.row(
        "coro::Gen::new_inline",
        per_op(N, || {
            black_box(inline.send(black_box(1)).ok());
        }),
    );

    let mut rc = genawaiter::rc::Gen::new(|co: genawaiter::rc::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    rc.resume_with(0);
    t.row(
        "genawaiter rc",
        per_op(N, || {
            black_box(rc.resume_with(black_box(1)));
        }),
    );

    let mut sync = genawaiter::sync::Gen::new(|co: genawaiter::sync::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    sync.resume_with(0);
    t.row(
        "genawaiter sync",
        per_op(N, || {
            black_box(sync.resume_with(black_box(1)));
        }),
    );

    genawaiter::stack::let_gen_using!(
        stack,
        |co: genawaiter::stack::Co<'_, u64, u64>| async move {
            let mut acc = 0u64;
            loop {
                acc = acc.wrapping_add(co.yield_(acc).await);
            }
        }
    );
    stack.resume_with(0);
    t.row(
        "genawaiter stack",
        per_op(N, || {
            black_box(stack.resume_with(black_box(1)));
        }),
    );
    out += &t.render("hand-written state machine");

    eprintln!("create + 10 yields");
    let mut t = Table::new(
        "Create a generator and run its 10 yields to completion",
        "ns/op",
    );
    const M: u64 = 2_000_000;
    t.row(
        "hand-written state machine",
        per_op(M, || {
            black_box(drain_hand());
        }),
    );
    t.row(
        "coro::Gen",
        per_op(M, || {
            let g: Gen<u64> = Gen::new(|co| async move {
                for i in 1..=10u64 {
                    co.yield_(i).await;
                }
            });
            black_box(g.sum::<u64>());
        }),
    );
    t.row(
        "coro::Gen::new_inline",
        per_op(M, || {
            let g = Gen::new_inline(|co: coro::Co<u64>| async move {
                for i in 1..=10u64 {
                    co.yield_(i).await;
                }
            });
            black_box(g.sum::<u64>());
        }),
    );
    t.row(
        "genawaiter rc",
        per_op(M, || {
            let g = genawaiter::rc::Gen::new(|co: genawaiter::rc::Co<u64>| async move {
                for i in 1..=10u64 {
                    co.yield_(i).await;
                }
            });
            black_box(g.into_iter().sum::<u64>());
        }),
    );
    t.row(
        "genawaiter sync",
        per_op(M, || {
            let g = genawaiter::sync::Gen::new(|co: genawaiter::sync::Co<u64>| async move {
                for i in 1..=10u64 {
                    co.yield_(i).await;
                }
            });
            black_box(g.into_iter().sum::<u64>());
        }),
    );
    t.row(
        "genawaiter stack",
        per_op(M, || {
            genawaiter::stack::let_gen_using!(g, |co: genawaiter::stack::Co<'_, u64>| async move {
                for i in 1..=10u64 {
                    co.yield_(i).await;
                }
            });
            let mut sum = 0;
            while let GeneratorState::Yielded(y) = g.resume() {
                sum += y;
            }
            black_box(sum);
        }),
    );
    out += &t.render("genawaiter stack");
    out
}
