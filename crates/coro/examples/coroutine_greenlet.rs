//! The notes' `coroutine_greenlet.py`: two greenlets switching back and
//! forth by name.
//!
//! ```python
//! def test1():
//!     print(12); gr2.switch(); print(34); gr2.switch()
//! def test2():
//!     print(56); gr1.switch(); print(78)
//! gr1 = greenlet(test1); gr2 = greenlet(test2); gr1.switch()
//! ```
//!
//! ```text
//! cargo run -p coro --example coroutine_greenlet
//! ```

use coro::greenlet::Greenlets;

fn main() {
    let mut hub: Greenlets<()> = Greenlets::new();
    // Name both first, so that each body can switch to the other.
    let (gr1, gr2) = (hub.reserve(), hub.reserve());
    hub.bind(gr1, move |g, ()| async move {
        println!("12");
        g.switch(gr2, ()).await;
        println!("34");
        g.switch(gr2, ()).await;
        println!("never printed: gr2 finished and returned to main");
    })
    .expect("gr1 is reserved");
    hub.bind(gr2, move |g, ()| async move {
        println!("56");
        g.switch(gr1, ()).await;
        println!("78");
    })
    .expect("gr2 is reserved");

    hub.switch(gr1, ())
        .expect("the greenlets switch among themselves");
    println!(
        "back in main: gr1 dead = {}, gr2 dead = {}",
        hub.is_dead(gr1),
        hub.is_dead(gr2)
    );
}
