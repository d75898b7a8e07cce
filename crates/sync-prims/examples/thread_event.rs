//! The notes' lesson on `threading.Event`: one thread waits on an `Event`
//! that another sets. The second event carries the answer back. The first
//! two lines may come in either order; the events fix the order of the
//! rest.
//!
//! `cargo run -p sync-prims --example thread_event`

use std::sync::Arc;

use sync_prims::{Event, Lock, Thread};

fn main() {
    let request = Arc::new(Event::new());
    let answered = Arc::new(Event::new());
    let mailbox = Arc::new(Lock::new(String::new()));

    let waiter = {
        let (request, answered, mailbox) = (request.clone(), answered.clone(), mailbox.clone());
        Thread::builder()
            .name("waiter")
            .spawn(move || {
                println!("waiter: waiting for the event");
                request.wait();
                println!("waiter: woken, message = {:?}", *mailbox.acquire());
                *mailbox.acquire() = "thanks".into();
                answered.set();
            })
            .expect("spawn thread")
    };

    let setter = {
        let (request, answered, mailbox) = (request.clone(), answered.clone(), mailbox.clone());
        Thread::builder()
            .name("setter")
            .spawn(move || {
                *mailbox.acquire() = "hello from the setter".into();
                println!("setter: setting the event");
                request.set();
                answered.wait();
                println!("setter: got the answer {:?}", *mailbox.acquire());
            })
            .expect("spawn thread")
    };

    setter.join().expect("setter panicked");
    waiter.join().expect("waiter panicked");
    println!("both threads done; event is_set = {}", request.is_set());
}
