//! The notes' `coroutine_yield.py`: a producer hands items to a consumer
//! coroutine with `send`, and the consumer answers each one.
//!
//! ```text
//! cargo run -p coro --example coroutine_yield
//! ```

use coro::{Gen, GenState};

fn main() {
    // def consumer():
    //     r = ''
    //     while True:
    //         n = yield r
    //         if not n: return
    //         print('[CONSUMER] Consuming %s...' % n)
    //         r = '200 OK'
    let mut consumer = Gen::new(|co| async move {
        let mut reply = String::new();
        let mut consumed = 0;
        loop {
            let n: Option<u32> = co.yield_(reply).await;
            let Some(n) = n else { return consumed };
            println!("[CONSUMER] Consuming {n}...");
            consumed += 1;
            reply = "200 OK".to_string();
        }
    });

    // c.send(None): run the consumer to its first `yield`.
    consumer.start().expect("a new generator starts");
    for n in 1..=5 {
        println!("[PRODUCER] Producing {n}...");
        match consumer.send(Some(n)) {
            Ok(GenState::Yielded(reply)) => println!("[PRODUCER] Consumer return: {reply}"),
            other => panic!("the consumer stopped early: {other:?}"),
        }
    }
    // Sending `None` makes the consumer return (StopIteration carries the count).
    match consumer.send(None) {
        Ok(GenState::Complete(count)) => {
            println!("[PRODUCER] Consumer finished after {count} items")
        }
        other => panic!("the consumer did not finish: {other:?}"),
    }
    consumer.close();
}
