//! Hubs: one per thread, each with its run queue, registry, timers and driver.

pub(crate) mod deadlock;
mod edges;
mod local;
mod registry;
mod shared;

pub(crate) use self::edges::Edge;
pub(crate) use self::local::{Hub, ROOT_ID, next_task_id, schedule, with_current};
pub(crate) use self::shared::{Config, HubShared};
