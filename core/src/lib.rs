//! wsadmin-core: everything `wsadmin`, its dashboard, the handlers and the
//! deploy tool share about a live API Gateway WebSocket deployment.
//!
//! - [`duration`]: durations as operators type and read them.
//! - [`filter`]: which connections a command selects (age, idleness, meta).
//! - [`local`]: how a running `wsstack local` describes itself to the tools.
//! - [`record`]: the DynamoDB item that registers one connection.
//! - [`store`]: the connection registry over DynamoDB (put, get, conditional
//!   delete, a paged parallel scan as a stream).
//! - [`gateway`]: the Management API (`@connections`) client and its errors.
//! - [`retry`]: the backoff policy, a pure function.
//! - [`rate`]: the fan-out's pacing: a cap, and AIMD on 429s. Pure.
//! - [`prune`]: which records are stale (a pure plan) and the run that
//!   probes, deletes and disconnects.
//! - [`target`]: a resolved deployment (store + gateway) that commands and
//!   the dashboard operate.
//! - [`text`]: outside text made safe for a terminal.
//! - [`fanout`]: one payload to a stream of targets, bounded and retried.
//! - [`stack`]: the one description of the stack (routes, stage, table)
//!   that the local stack and the AWS deploy both build from.
//!
//! This crate knows AWS SDK types; it knows nothing of terminals, clap or
//! the Lambda runtime.

pub mod duration;
pub mod fanout;
pub mod filter;
pub mod gateway;
pub mod local;
pub mod prune;
pub mod rate;
pub mod record;
pub mod retry;
pub mod stack;
pub mod store;
pub mod target;
pub mod text;

mod sdk_error;

pub use fanout::{Fanout, FanoutConfig, FanoutReport, Outcome, Progress};
pub use gateway::{ConnectionInfo, Gateway, GatewayError, ManagementEndpoint};
pub use record::{ConnectionRecord, TableConfig};
pub use retry::RetryPolicy;
pub use stack::{RouteSpec, StackError, StackSpec};
pub use store::{ConnectionStore, ScanOptions, StoreError};
pub use target::Target;

/// API Gateway's limit on one message posted to a connection: 128 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 131_072;
