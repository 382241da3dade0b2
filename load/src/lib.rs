//! wsload: real WebSocket clients in numbers, for load and reliability tests
//! against the local stack (`wsstack local`, or `LocalStack` in a test).
//!
//! - [`Fleet`] opens N clients to a loopback `ws://` URL, each with a unique
//!   User-Agent (`wsload/<run>/<index>`, to find its record in the registry)
//!   and optional query-string meta; it records every message each client
//!   receives, with the time it arrived; it can hold clients that never read,
//!   churn (clients leave, with or without a close frame, and others join),
//!   and close everything.
//! - [`Tag`] marks a message (`wsload:<run>:<seq>:<sent_at_ms>`) so that
//!   [`report()`] can say, per message, which clients connected throughout
//!   got it exactly once, missed it or got it twice, and how long it took.
//!
//! Bounded by construction: at most [`MAX_CLIENTS`] clients, loopback
//! addresses only, every fleet has a deadline after which it closes itself,
//! and dropping a [`Fleet`] stops every task it started. It does not know
//! DynamoDB or the Management API: tests post through their own clients.

pub mod churn;
pub mod client;
pub mod fleet;
pub mod rate;
pub mod report;
pub mod tag;
pub mod target;

use std::time::{SystemTime, UNIX_EPOCH};

pub use churn::{Churn, ChurnSummary, Churning};
pub use client::{ClientLog, CloseHow, Closed, Leave, Received};
pub use fleet::{Fleet, FleetConfig, FleetStats};
pub use rate::{Rate, RateError};
pub use report::{ClientCounts, Latency, MessageReport, Report, report};
pub use tag::{Tag, Tagger};
pub use target::Target;

/// The most clients one fleet opens: a little over what two loopback source
/// addresses' ephemeral ports allow, and about as many descriptors as a
/// process is usually allowed.
pub const MAX_CLIENTS: usize = 60_000;

/// Why a fleet could not be built or driven. Input errors name the input.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "refusing url {url:?}: host {host:?} is not a loopback address (wsload only connects to 127.0.0.0/8, ::1 or localhost)"
    )]
    NotLoopback { url: String, host: String },
    #[error("the number of clients must be at least 1, not 0")]
    NoClients,
    #[error("{requested} clients is too many: wsload opens at most {max} (run several fleets)")]
    TooManyClients { requested: usize, max: usize },
    #[error(
        "{requested} clients need more local ports than one IPv6 loopback address has: use at most {max}, or an IPv4 url (127.0.0.1)"
    )]
    TooManyForIpv6 { requested: usize, max: usize },
    #[error(
        "{requested} source addresses are too few or too many for {clients} clients: use {needed} to {max} (or 0 for as many as needed)"
    )]
    Sources {
        requested: usize,
        clients: usize,
        needed: usize,
        max: usize,
    },
    #[error("{never_read} never-read clients is more than the {clients} clients")]
    NeverRead { never_read: usize, clients: usize },
    #[error("the handshake concurrency must be at least 1, not 0")]
    NoConcurrency,
    #[error("{name} must be longer than zero")]
    ZeroDuration { name: &'static str },
    #[error("invalid meta {input:?}: {reason} (use key=value, like room=7 or user=c{{i}})")]
    Meta { input: String, reason: &'static str },
    #[error("invalid run tag {input:?}: use 1 to 32 letters, digits, '-' or '_'")]
    Run { input: String },
    #[error("invalid drop fraction {value}: use a number between 0 and 1")]
    DropFraction { value: f64 },
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error("client {index} could not connect to {url}: {reason}")]
    Connect {
        index: usize,
        url: String,
        reason: String,
    },
    #[error("no client {index} in this fleet")]
    NoSuchClient { index: usize },
    #[error("client {index} is closed")]
    ClientClosed { index: usize },
    #[error("the fleet is closed")]
    FleetClosed,
}

impl LoadError {
    /// True when the error is about the input (a bad URL, count, rate...),
    /// false when something failed while running.
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            LoadError::Connect { .. }
                | LoadError::NoSuchClient { .. }
                | LoadError::ClientClosed { .. }
                | LoadError::FleetClosed
        )
    }
}

/// Milliseconds since the Unix epoch, the clock of tags and receipts.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
