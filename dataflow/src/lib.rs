//! The engine core: the `Batch` container, plans (serialisable data), the SQL planner,
//! the compiler from plans to timely dataflows, and the query runner. This is the only
//! crate whose public types mention timely.
#![warn(missing_docs)]

mod affinity;
pub mod batch;
pub mod cluster;
pub mod compile;
pub mod error;
pub mod plan;
pub mod profile;
pub mod registry;
pub mod server;
pub mod sql;
pub mod system;
pub mod view;
pub mod worker;

pub use batch::Batch;
pub use cluster::{ClusterOptions, Connected, Shipped, connect};
pub use compile::{BatchStream, QueryErrors, QueryMetrics, RenderContext, Renderer};
pub use error::{PlanError, RunError};
pub use plan::Plan;
pub use registry::CatalogSet;
pub use server::{Canceller, Progress, QueryEvent, QueryHandle, Server, Waited};
pub use sql::{PlanOptions, Planned, plan_sql};
pub use worker::{ExecOptions, QueryStats, run_query};

/// Re-exported so operator crates name the same timely.
pub use timely;
