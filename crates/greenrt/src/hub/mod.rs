//! Hubs: one per thread, each with its run queue, registry, timers and driver.

pub(crate) mod deadlock;
mod local;
mod shared;

pub(crate) use self::local::{Hub, ROOT_ID, next_task_id, schedule, with_current};
pub(crate) use self::shared::HubShared;

use std::sync::Arc;
use std::time::Duration;

use crate::monitor::StallReport;
use crate::time::Clock;

/// The settings a hub runs with (from the runtime's builder).
pub(crate) struct Config {
    pub(crate) clock: Clock,
    pub(crate) max_blocking_time: Option<Duration>,
    pub(crate) on_stall: Option<Arc<dyn Fn(&StallReport) + Send + Sync>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clock: Clock::Real,
            max_blocking_time: Some(Duration::from_millis(100)),
            on_stall: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("clock", &self.clock)
            .field("max_blocking_time", &self.max_blocking_time)
            .finish_non_exhaustive()
    }
}
