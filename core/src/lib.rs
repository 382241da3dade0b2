//! wsadmin-core: everything `wsadmin`, its dashboard, the handlers and the
//! deploy tool share about a live API Gateway WebSocket deployment.
//!
//! - [`record`]: the DynamoDB item that registers one connection.
//! - [`store`]: the connection registry over DynamoDB (put, get, conditional
//!   delete, a paged parallel scan as a stream).
//! - [`gateway`]: the Management API (`@connections`) client and its errors.
//! - [`retry`]: the backoff policy, a pure function.
//! - [`fanout`]: one payload to a stream of targets, bounded and retried.
//!
//! This crate knows AWS SDK types; it knows nothing of terminals, clap or
//! the Lambda runtime.

pub mod fanout;
pub mod gateway;
pub mod record;
pub mod retry;
pub mod store;

mod sdk_error;

pub use fanout::{Fanout, FanoutConfig, FanoutReport, Outcome, Progress};
pub use gateway::{ConnectionInfo, Gateway, GatewayError, ManagementEndpoint};
pub use record::{ConnectionRecord, TableConfig};
pub use retry::RetryPolicy;
pub use store::{ConnectionStore, ScanOptions, StoreError};

/// API Gateway's limit on one message posted to a connection: 128 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 131_072;
