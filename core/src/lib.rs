//! wsadmin-core: everything `wsadmin`, its dashboard, the handlers and the
//! deploy tool share about a live API Gateway WebSocket deployment.
//!
//! - [`clock`]: the one clock, on AWS's time as its answers tell it.
//! - [`connection`]: one connection at a time: GetConnection (`probe`),
//!   and closing connections (`disconnect`, a sweep).
//! - `control_plane` (feature `control-plane`): the API Gateway v2 reads
//!   of `--api-id` and `status`.
//! - [`context`]: the contexts file (named deployments) that `wsadmin`
//!   reads and `wsstack up` writes.
//! - [`duration`]: durations as operators type and read them.
//! - [`files`]: the error of a file core reads or writes.
//! - [`filter`]: which connections a command selects (age, idleness, meta).
//! - [`local`]: how a running `wsstack local` describes itself to the tools.
//! - [`record`]: the DynamoDB item that registers one connection.
//! - [`registry`]: how a team's table holds its connections (the mapping
//!   every command reads through); `marks`: gone marks kept locally for
//!   tables wsadmin must not write into.
//! - [`store`]: the connection registry over DynamoDB (put, get, conditional
//!   delete, a paged parallel scan as a stream).
//! - [`gateway`]: the Management API (`@connections`) client and its errors.
//! - [`retry`]: the backoff policy, a pure function.
//! - [`rate`]: the fan-out's pacing: a cap, and AIMD on 429s. Pure.
//! - [`prune`]: which records are stale (a pure plan) and the run that
//!   probes, deletes and closes idle connections.
//! - [`failure`]: failure kinds, and which are about the target.
//! - [`sdk`]: SDK configuration from static credentials.
//! - [`target`]: a resolved deployment (store + gateway) that commands and
//!   the dashboard operate.
//! - [`text`]: outside text made safe for a terminal.
//! - [`stale`]: whether the record of a connection that answered 410 may
//!   be deleted: the one decision.
//! - [`sweep`]: the engine of every bulk operation (concurrency, pacing,
//!   retries, back-pressure, breaker, cancellation, bounded reports).
//! - [`fanout`]: broadcast, as a sweep.
//! - [`stack`]: the one description of the stack (routes, stage, table)
//!   that the local stack and the AWS deploy both build from.
//! - `stream` (feature `streams`): the registry table's DynamoDB Stream,
//!   read across shards with in-memory checkpoints (`wsadmin events`).
//! - [`watch`]: the registry's changes between two scans, as connection
//!   lifecycle events. Pure.
//!
//! This crate knows AWS SDK types; it knows nothing of terminals, clap or
//! the Lambda runtime. The registry, the Management API and everything on
//! them (the SDK clients) sit behind the default feature `registry`; without
//! it the crate is the stack description, the record's shape, durations and
//! the other pure parts (what the emulator needs: it links no DynamoDB).

#[cfg(feature = "registry")]
pub mod access_log;
pub mod api_metrics;
#[cfg(feature = "registry")]
pub mod checkpoint;
pub mod clock;
#[cfg(feature = "registry")]
pub mod connection;
pub mod context;
#[cfg(feature = "control-plane")]
pub mod control_plane;
#[cfg(feature = "registry")]
pub mod detect;
pub mod duration;
pub mod failure;
#[cfg(feature = "registry")]
pub mod fanout;
pub mod files;
#[cfg(feature = "registry")]
pub mod filter;
pub mod function;
#[cfg(feature = "registry")]
pub mod gateway;
pub mod local;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "registry")]
pub mod marks;
#[cfg(feature = "registry")]
pub mod prune;
pub mod rate;
pub mod record;
pub mod registry;
pub mod retry;
#[cfg(feature = "registry")]
pub mod sdk;
pub mod stack;
#[cfg(feature = "registry")]
pub mod stale;
#[cfg(feature = "registry")]
pub mod store;
#[cfg(feature = "streams")]
pub mod stream;
#[cfg(feature = "registry")]
pub mod sweep;
#[cfg(feature = "registry")]
pub mod target;
pub mod text;
#[cfg(feature = "registry")]
pub mod watch;

#[cfg(feature = "registry")]
pub mod sdk_error;

#[cfg(feature = "registry")]
pub use gateway::{ConnectionInfo, Gateway, GatewayClient, GatewayError, ManagementEndpoint};
pub use record::{ConnectionRecord, TableConfig};
pub use retry::RetryPolicy;
pub use stack::{RouteSpec, StackError, StackSpec};
#[cfg(feature = "registry")]
pub use store::{ConnectionStore, ScanOptions, StoreError, TableDescription, Ttl};
#[cfg(feature = "registry")]
pub use sweep::{Finished, Outcome, Subject, Sweep, SweepConfig, SweepReport};
#[cfg(feature = "registry")]
pub use target::Target;

/// API Gateway's limit on one message posted to a connection: 128 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 131_072;
