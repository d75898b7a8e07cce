//! `coro::greenlet`: symmetric switching with a trampoline.

use std::cell::RefCell;
use std::rc::Rc;

use coro::GenError;
use coro::greenlet::{GreenletError, GreenletId, Greenlets};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn the_notes_interleaving_12_56_34_78() {
    let out = log();
    let mut hub = Greenlets::new();
    let (gr1, gr2) = (hub.reserve(), hub.reserve());
    let o = out.clone();
    hub.bind(gr1, move |g, ()| async move {
        o.borrow_mut().push("12".into());
        g.switch(gr2, ()).await;
        o.borrow_mut().push("34".into());
        g.switch(gr2, ()).await;
        o.borrow_mut().push("never".into());
    })
    .unwrap();
    let o = out.clone();
    hub.bind(gr2, move |g, ()| async move {
        o.borrow_mut().push("56".into());
        g.switch(gr1, ()).await;
        o.borrow_mut().push("78".into());
    })
    .unwrap();
    assert_eq!(hub.switch(gr1, ()), Ok(()));
    assert_eq!(*out.borrow(), ["12", "56", "34", "78"]);
    assert!(hub.is_dead(gr2));
    assert!(
        !hub.is_dead(gr1),
        "gr1 is still suspended at its second switch"
    );
}

#[test]
fn values_travel_with_switches_and_the_first_one_is_the_argument() {
    let mut hub: Greenlets<i64> = Greenlets::new();
    let (ping, pong) = (hub.reserve(), hub.reserve());
    hub.bind(ping, move |g, first| async move {
        let mut v = first;
        for _ in 0..3 {
            v = g.switch(pong, v + 1).await;
        }
        v
    })
    .unwrap();
    hub.bind(pong, move |g, first| async move {
        let mut v = first;
        loop {
            v = g.switch(ping, v * 10).await;
        }
    })
    .unwrap();
    // 1 -> ping +1 = 2 -> pong *10 = 20 -> +1 = 21 -> 210 -> 211 -> 2110 -> ping returns 2110.
    assert_eq!(hub.switch(ping, 1), Ok(2110));
    assert!(hub.is_dead(ping) && !hub.is_dead(pong));
}

#[test]
fn a_switch_to_main_returns_and_main_can_switch_back() {
    let mut hub: Greenlets<u32> = Greenlets::new();
    let worker = hub.spawn(|g, first| async move {
        let second = g.switch(GreenletId::MAIN, first * 2).await;
        second + 1
    });
    assert_eq!(hub.switch(worker, 5), Ok(10));
    assert!(!hub.is_dead(worker));
    assert_eq!(hub.switch(worker, 7), Ok(8));
    assert!(hub.is_dead(worker));
}

#[test]
fn a_finished_greenlet_returns_to_its_parent_and_switches_to_it_go_there() {
    let out = log();
    let mut hub: Greenlets<String> = Greenlets::new();
    let parent = hub.reserve();
    let child = hub.reserve();
    hub.set_parent(child, parent).unwrap();
    assert_eq!(hub.parent(child), Some(parent));
    let o = out.clone();
    hub.bind(parent, move |g, s| async move {
        o.borrow_mut().push(format!("parent got {s}"));
        let back = g.switch(child, "hello".into()).await;
        o.borrow_mut().push(format!("parent got {back}"));
        // The child is dead: a switch to it goes to its parent, i.e. here.
        let again = g.switch(child, "ignored?".into()).await;
        o.borrow_mut().push(format!("parent got {again}"));
        "parent done".into()
    })
    .unwrap();
    hub.bind(
        child,
        move |_g, s| async move { format!("child returns {s}") },
    )
    .unwrap();
    assert_eq!(hub.switch(parent, "start".into()), Ok("parent done".into()));
    assert_eq!(
        *out.borrow(),
        [
            "parent got start",
            "parent got child returns hello",
            "parent got ignored?"
        ]
    );
    // Both dead: a switch to either lands in main with the value.
    assert_eq!(hub.switch(child, "to main".into()), Ok("to main".into()));
}

#[test]
fn a_greenlet_may_switch_to_itself() {
    let mut hub: Greenlets<u8> = Greenlets::new();
    let me = hub.reserve();
    hub.bind(me, move |g, v| async move {
        assert_eq!(g.id(), me);
        g.switch(me, v + 1).await
    })
    .unwrap();
    assert_eq!(hub.switch(me, 1), Ok(2));
}

#[test]
fn errors_are_values() {
    let mut hub: Greenlets<u8> = Greenlets::new();
    let (bogus, stranger) = {
        // Ids of another set: one this set never reaches, and one whose
        // number this set is about to have (an id is not a number only).
        let mut other: Greenlets<u8> = Greenlets::new();
        let first = other.spawn(|_g, v| async move { v });
        ((0..100).map(|_| other.reserve()).last().unwrap(), first)
    };
    assert_eq!(hub.switch(bogus, 0), Err(GreenletError::Unknown(bogus)));
    let empty = hub.reserve();
    assert_eq!(hub.switch(empty, 0), Err(GreenletError::Unbound(empty)));
    hub.bind(empty, |_g, v| async move { v }).unwrap();
    assert_eq!(
        hub.bind(empty, |_g, v| async move { v }),
        Err(GreenletError::AlreadyBound(empty))
    );
    assert_eq!(
        hub.set_parent(empty, empty),
        Err(GreenletError::ParentCycle(empty))
    );
    let a = hub.spawn(|_g, v| async move { v });
    assert_ne!(a, stranger);
    assert_eq!(
        hub.switch(stranger, 0),
        Err(GreenletError::Unknown(stranger))
    );
    assert!(!hub.is_dead(stranger) && hub.parent(stranger).is_none());
    hub.set_parent(a, empty).unwrap();
    assert_eq!(
        hub.set_parent(empty, a),
        Err(GreenletError::ParentCycle(empty))
    );
    assert_eq!(
        hub.set_parent(GreenletId::MAIN, a),
        Err(GreenletError::Unknown(GreenletId::MAIN))
    );
    // A body switching to a greenlet that does not exist.
    let lost = hub.spawn(move |g, v| async move { g.switch(bogus, v).await });
    assert_eq!(hub.switch(lost, 3), Err(GreenletError::Unknown(bogus)));
    // A body that awaits something that is not a switch.
    let stuck = hub.spawn(|_g, v| async move {
        std::future::pending::<()>().await;
        v
    });
    assert_eq!(
        hub.switch(stuck, 1),
        Err(GreenletError::Failed(stuck, GenError::Blocked))
    );
    assert!(hub.is_dead(stuck));
    // Each error says which greenlet, and a failure why.
    for e in [
        GreenletError::Unknown(a),
        GreenletError::Unbound(a),
        GreenletError::AlreadyBound(a),
        GreenletError::ParentCycle(a),
        GreenletError::Failed(a, GenError::Blocked),
    ] {
        assert!(e.to_string().contains(&a.to_string()), "{e}");
    }
    let failed = GreenletError::Failed(a, GenError::Blocked).to_string();
    assert!(failed.contains(&GenError::Blocked.to_string()), "{failed}");
    // One entry per greenlet of the set, with its state.
    let debug = format!("{hub:?}");
    assert_eq!(debug.matches("GreenletId").count(), 4, "{debug}");
    assert!(debug.contains("finished"), "{debug}");
}

#[test]
fn long_switch_chains_use_no_stack() {
    // Two greenlets bouncing a counter a million times: a trampoline, not
    // recursion, so this cannot overflow the stack. (Fewer under miri,
    // which is far slower; the point there is soundness, not depth.)
    let rounds: u32 = if cfg!(miri) { 1_000 } else { 1_000_000 };
    let mut hub: Greenlets<u32> = Greenlets::new();
    let (a, b) = (hub.reserve(), hub.reserve());
    for (me, other) in [(a, b), (b, a)] {
        hub.bind(me, move |g, mut v| async move {
            while v < rounds {
                v = g.switch(other, v + 1).await;
            }
            v
        })
        .unwrap();
    }
    assert_eq!(hub.switch(a, 0), Ok(rounds));
}

#[test]
fn a_panicking_greenlet_propagates_to_the_switcher_and_is_dead() {
    let mut hub: Greenlets<u8> = Greenlets::new();
    let bad = hub.spawn(|_g, v| async move {
        assert!(v == 0, "greenlet failed on {v}");
        v
    });
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hub.switch(bad, 9)));
    assert!(caught.is_err());
    assert!(hub.is_dead(bad));
    assert_eq!(
        hub.switch(bad, 1),
        Ok(1),
        "a switch to the dead greenlet goes to main"
    );
}
