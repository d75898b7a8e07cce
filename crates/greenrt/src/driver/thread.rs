//! The driver of a hub without I/O: the hub's thread parks.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::sync::{Parker, Unparker};

use super::{Park, Unpark};

/// Parks the hub's thread; `unpark` leaves a token, so a wake-up that comes
/// just before the park is not lost.
#[derive(Debug, Default)]
pub(crate) struct ThreadPark {
    parker: Parker,
}

impl ThreadPark {
    pub(crate) fn new() -> Self {
        ThreadPark {
            parker: Parker::new(),
        }
    }
}

impl Park for ThreadPark {
    fn park(&mut self, timeout: Option<Duration>) {
        match timeout {
            Some(d) => self.parker.park_timeout(d),
            None => self.parker.park(),
        }
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        Arc::new(self.parker.unparker().clone())
    }
}

impl Unpark for Unparker {
    fn unpark(&self) {
        Unparker::unpark(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parks with a bound far beyond any scheduling delay; whether the park
    /// ended before it.
    fn park_ends_early(p: &mut ThreadPark) -> bool {
        let bound = Duration::from_secs(60);
        let start = std::time::Instant::now();
        p.park(Some(bound));
        start.elapsed() < bound
    }

    #[test]
    fn unpark_before_park_is_not_lost() {
        let mut p = ThreadPark::new();
        p.unparker().unpark();
        // Returns at once thanks to the token.
        assert!(park_ends_early(&mut p), "the wake-up was lost");
    }

    #[test]
    fn unpark_from_another_thread_ends_park() {
        let mut p = ThreadPark::new();
        let u = p.unparker();
        let t = std::thread::spawn(move || u.unpark());
        assert!(park_ends_early(&mut p), "the wake-up was lost");
        t.join().unwrap();
    }
}
