//! `coro`: generators against genawaiter (`rc`, `sync`, `stack`) and a
//! hand-written state machine.

use std::hint::black_box;

use coro::{Gen, GenState};
use genawaiter::GeneratorState;

use crate::harness::{Table, medians_interleaved, sampler};

/// The generator protocol over `async`/`await` with nothing checked: no
/// state (a resume after the end polls a finished body), no error for a
/// foreign future, no misuse or type check beyond the waker's vtable. Not
/// a product: a reference row that shows what the language mechanism
/// itself costs, so that the price of `coro`'s checks can be read off
/// beside it.
mod bare {
    use std::cell::Cell;
    use std::future::Future;
    use std::mem::ManuallyDrop;
    use std::pin::Pin;
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

    /// The value in transit. One concrete type, so that a waker's data can
    /// never be a slot of another type.
    #[derive(Clone, Copy)]
    enum Slot {
        Empty,
        Sent(u64),
        Yielded(u64),
    }

    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_noop, ignore, ignore, ignore);

    fn clone_noop(_: *const ()) -> RawWaker {
        let noop = Waker::noop();
        RawWaker::new(noop.data(), noop.vtable())
    }

    fn ignore(_: *const ()) {}

    pub(super) struct Gen<F> {
        body: Pin<Box<F>>,
    }

    pub(super) struct Co;

    impl<F: Future> Gen<F> {
        pub(super) fn new(f: impl FnOnce(Co) -> F) -> Self {
            Gen {
                body: Box::pin(f(Co)),
            }
        }

        /// `None` starts the body; the yielded value, or `None` once the
        /// body returned or awaited something else.
        #[inline(always)]
        pub(super) fn resume(&mut self, sent: Option<u64>) -> Option<u64> {
            let slot = Cell::new(sent.map_or(Slot::Empty, Slot::Sent));
            // SAFETY: the vtable's functions never use the data pointer
            // (its clone is the no-op waker), and a `Yield` reads it only
            // while this poll borrows `slot`, through the waker it is
            // polled with (checked by its vtable, which only this module
            // uses, always with a `Cell<Slot>`).
            let waker = unsafe {
                Waker::from_raw(RawWaker::new(std::ptr::from_ref(&slot).cast(), &VTABLE))
            };
            let waker = ManuallyDrop::new(waker);
            match self.body.as_mut().poll(&mut Context::from_waker(&waker)) {
                Poll::Pending => match slot.get() {
                    Slot::Yielded(y) => Some(y),
                    Slot::Empty | Slot::Sent(_) => None,
                },
                Poll::Ready(_) => None,
            }
        }
    }

    impl Co {
        #[inline]
        pub(super) fn yield_(&self, value: u64) -> Yield {
            Yield { value: Some(value) }
        }
    }

    pub(super) struct Yield {
        value: Option<u64>,
    }

    impl Future for Yield {
        type Output = u64;

        #[inline(always)]
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            if !std::ptr::eq(cx.waker().vtable(), &VTABLE) {
                return Poll::Pending;
            }
            // SAFETY: a waker with this module's vtable is made only by
            // `Gen::resume`, whose data is its `Cell<Slot>`, alive for the
            // poll that `cx` is borrowed for.
            let slot = unsafe { &*cx.waker().data().cast::<Cell<Slot>>() };
            match self.value.take() {
                Some(y) => {
                    slot.set(Slot::Yielded(y));
                    Poll::Pending
                }
                None => match slot.replace(Slot::Empty) {
                    Slot::Sent(s) => Poll::Ready(s),
                    other => {
                        slot.set(other);
                        Poll::Pending
                    }
                },
            }
        }
    }
}

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

/// The hand-written ten-yield generator. Its resume may be inlined, as a
/// generator's body may be when it is created and drained in one place: a
/// floor that stays below every row.
struct Ten {
    i: u64,
    n: u64,
}

impl Ten {
    #[inline]
    fn resume(&mut self) -> GenState<u64, ()> {
        if self.i < self.n {
            self.i += 1;
            GenState::Yielded(self.i)
        } else {
            GenState::Complete(())
        }
    }
}

#[inline(never)]
fn drain_hand(n: u64) -> u64 {
    let mut g = Ten { i: 0, n };
    let mut sum = 0;
    while let GenState::Yielded(y) = g.resume() {
        sum += y;
    }
    sum
}

#[inline(never)]
fn ten_gen(n: u64) -> u64 {
    let g: Gen<u64> = Gen::new(|co| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    g.sum()
}

#[inline(never)]
fn ten_gen_inline(n: u64) -> u64 {
    let g = Gen::new_inline(|co: coro::Co<u64>| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    g.sum()
}

#[inline(never)]
fn ten_bare(n: u64) -> u64 {
    let mut g = bare::Gen::new(|co| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    let mut sum = 0;
    let mut sent = None;
    while let Some(y) = g.resume(sent) {
        sum += y;
        sent = Some(0);
    }
    sum
}

#[inline(never)]
fn ten_rc(n: u64) -> u64 {
    let g = genawaiter::rc::Gen::new(|co: genawaiter::rc::Co<u64>| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    g.into_iter().sum()
}

#[inline(never)]
fn ten_sync(n: u64) -> u64 {
    let g = genawaiter::sync::Gen::new(|co: genawaiter::sync::Co<u64>| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    g.into_iter().sum()
}

#[inline(never)]
fn ten_stack(n: u64) -> u64 {
    genawaiter::stack::let_gen_using!(g, |co: genawaiter::stack::Co<'_, u64>| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    });
    let mut sum = 0;
    while let GeneratorState::Yielded(y) = g.resume() {
        sum += y;
    }
    sum
}

/// A row of the create + 10 yields table: makes a generator yielding
/// `1..=n` and returns the sum of its yields.
type Drain = fn(u64) -> u64;

/// genawaiter's named generator type: the body boxed as a `dyn Future`.
type RcDyn = genawaiter::rc::Gen<u64, (), std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>;

/// As [`ten_behind_a_call`], for genawaiter.
#[inline(never)]
fn ten_rc_behind_a_call(n: u64) -> RcDyn {
    genawaiter::rc::Gen::new(move |co: genawaiter::rc::Co<u64>| {
        Box::pin(async move {
            for i in 1..=n {
                co.yield_(i).await;
            }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
    })
}

/// A generator made where its user cannot see it (returned by a function
/// of another module, say): nothing of it can be folded into the caller,
/// so it pays its allocation and a virtual call per resume.
#[inline(never)]
fn ten_behind_a_call(n: u64) -> Gen<u64> {
    Gen::new(move |co| async move {
        for i in 1..=n {
            co.yield_(i).await;
        }
    })
}

/// The name of the [`bare`] rows.
const BARE: &str = "reference: `async`/`await` with no checks";

pub(crate) fn run() -> String {
    let mut out = String::from(
        "## coro: generators\n\nMedians of 7 samples, taken in turn (each row's first sample, then \
         each row's second, ...), so that a machine slowed for a while slows every row alike; \
         lower is better; each ratio column compares a row with the row it names.\n\n",
    );
    const N: u64 = 20_000_000;

    eprintln!("send round trip");
    let mut t = Table::new(
        "One `send` round trip (value in, yielded value out)",
        "ns/op",
    );
    let mut hand = Echo { state: 0, acc: 0 };
    hand.resume(None);

    // `black_box` hides the concrete type, so the call stays virtual.
    let mut boxed: Box<dyn Resume> = black_box(Box::new(Echo { state: 0, acc: 0 }));
    boxed.resume(None);

    let mut ours: Gen<u64, (), u64> = Gen::new(|co| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    let _ = ours.start();

    let mut inline = Gen::new_inline(|co: coro::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    let _ = inline.start();

    let mut bare = bare::Gen::new(|co| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    bare.resume(None);

    let mut rc = genawaiter::rc::Gen::new(|co: genawaiter::rc::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    rc.resume_with(0);

    // genawaiter's way to name a generator's type (as `coro::Gen` is
    // named): the body boxed as a `dyn Future`, so resumes are virtual
    // calls, as `coro::Gen`'s are.
    type DynBody = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    let mut rc_dyn: genawaiter::rc::Gen<u64, u64, DynBody> =
        genawaiter::rc::Gen::new(|co: genawaiter::rc::Co<u64, u64>| -> DynBody {
            Box::pin(async move {
                let mut acc = 0u64;
                loop {
                    acc = acc.wrapping_add(co.yield_(acc).await);
                }
            })
        });
    rc_dyn.resume_with(0);

    let mut sync = genawaiter::sync::Gen::new(|co: genawaiter::sync::Co<u64, u64>| async move {
        let mut acc = 0u64;
        loop {
            acc = acc.wrapping_add(co.yield_(acc).await);
        }
    });
    sync.resume_with(0);

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

    let names = [
        "hand-written state machine",
        "hand-written state machine, boxed as `dyn`",
        "coro::Gen",
        "coro::Gen::new_inline",
        BARE,
        "genawaiter rc",
        "genawaiter rc, body boxed as `dyn`",
        "genawaiter sync",
        "genawaiter stack",
    ];
    let mut rows = [
        sampler(|| {
            black_box(hand.resume(Some(black_box(1))));
        }),
        sampler(|| {
            black_box(boxed.resume(Some(black_box(1))));
        }),
        sampler(|| {
            black_box(ours.send(black_box(1)).ok());
        }),
        sampler(|| {
            black_box(inline.send(black_box(1)).ok());
        }),
        sampler(|| {
            black_box(bare.resume(Some(black_box(1))));
        }),
        sampler(|| {
            black_box(rc.resume_with(black_box(1)));
        }),
        sampler(|| {
            black_box(rc_dyn.resume_with(black_box(1)));
        }),
        sampler(|| {
            black_box(sync.resume_with(black_box(1)));
        }),
        sampler(|| {
            black_box(stack.resume_with(black_box(1)));
        }),
    ];
    for (name, ns) in names.iter().zip(medians_interleaved(N, &mut rows)) {
        t.row(name, ns);
    }
    drop(rows);
    out += &t.render_against(&["hand-written state machine", "genawaiter rc"]);

    eprintln!("create + 10 yields");
    let mut t = Table::new(
        "Create a generator and run its 10 yields to completion",
        "ns/op",
    );
    const M: u64 = 2_000_000;
    // Each row is one call of a function of its own (so that no row's code
    // changes how the compiler treats another's) that runs to a bound it
    // cannot see. The compiler still sees through the first two rows: the
    // hand-written one becomes a closed formula, and the reference's body
    // a plain loop, its allocation gone. They are floors of the work (the
    // sum of the yields), not of a generator's mechanism, which the rows
    // of the libraries measure (several times these two, in every run).
    let table: [(&str, Drain); 9] = [
        ("hand-written state machine", drain_hand),
        (BARE, ten_bare),
        ("coro::Gen", ten_gen),
        ("coro::Gen, made by a function that is not inlined", |n| {
            ten_behind_a_call(n).sum()
        }),
        ("coro::Gen::new_inline", ten_gen_inline),
        ("genawaiter rc", ten_rc),
        ("genawaiter sync", ten_sync),
        ("genawaiter stack", ten_stack),
        (
            "genawaiter rc, made by a function that is not inlined",
            |n| ten_rc_behind_a_call(n).into_iter().sum(),
        ),
    ];
    let mut rows: Vec<_> = table
        .iter()
        .map(|&(_, f)| {
            sampler(move || {
                black_box(f(black_box(10)));
            })
        })
        .collect();
    for ((name, _), ns) in table.iter().zip(medians_interleaved(M, &mut rows)) {
        t.row(name, ns);
    }
    out += &t.render("genawaiter stack");
    out
}
