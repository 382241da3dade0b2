//! Everything that can happen to the dashboard, as one closed enum: the
//! operator's keys, the clock, the terminal's size, a signal asking the
//! process to stop, and the results of background work.
//! [`App::update`](crate::app::App::update) is the only consumer.

use crossterm::event::KeyEvent;
use wsadmin_core::{ConnectionInfo, ConnectionRecord, SweepReport};

use crate::row::ConnectionRow;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// The terminal's new size in cells.
    Resize {
        width: u16,
        height: u16,
    },
    /// The clock, the only way time enters the app (epoch milliseconds).
    Tick {
        now_ms: i64,
    },
    /// The process was asked to stop: the dashboard ends at once, whatever
    /// runs or is open.
    Signal(Signal),
    /// The API's connects, messages and errors per minute (the local
    /// stack's `/metrics`, or CloudWatch), for the header's sparkline.
    Metrics(wsadmin_core::api_metrics::PerMinute),
    /// A whole scan of the registry finished.
    Refreshed {
        records: Vec<ConnectionRow>,
        at_ms: i64,
    },
    /// The details of `id`: its whole record (`None`: no longer registered)
    /// and what GetConnection said.
    Probed {
        id: String,
        record: Option<ConnectionRecord>,
        live: LiveCheck,
    },
    /// The access log lines of `id`, for the details pane (or why not).
    History {
        id: String,
        lines: Result<Vec<wsadmin_core::access_log::AccessEntry>, String>,
    },
    /// The IDLE column's answers for a batch of [`Command::ProbeIdle`](crate::Command::ProbeIdle).
    IdleProbed {
        results: Vec<(String, IdleCheck)>,
    },
    /// A message reached `id`.
    Sent {
        id: String,
    },
    /// `done` of about `total` broadcast targets have finished.
    BroadcastProgress {
        done: u64,
        total: u64,
    },
    BroadcastDone(SweepReport),
    /// DeleteConnection closed `id` (`was_gone`: it was already closed).
    Disconnected {
        id: String,
        was_gone: bool,
    },
    /// Closing the filtered rows ended.
    DisconnectedRows(SweepReport),
    /// The prune dry run has asked about `checked` of `total` records.
    PruneProgress {
        checked: u64,
        total: u64,
    },
    PrunePlanned(PrunePlan),
    Pruned(PruneSummary),
    /// A background task failed; the dashboard says so and goes on.
    Failed {
        task: Task,
        message: String,
    },
}

/// A signal that stops the dashboard. In raw mode Ctrl-C is a key, so these
/// come from outside: `kill`, a service manager, a terminal that closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT
    Interrupt,
    /// SIGTERM
    Terminate,
    /// SIGHUP
    Hangup,
}

impl Signal {
    /// Its number, the same on Linux and macOS.
    pub fn number(self) -> u8 {
        match self {
            Self::Hangup => 1,
            Self::Interrupt => 2,
            Self::Terminate => 15,
        }
    }
}

/// What GetConnection said about the connection in the details pane (a
/// failure arrives as [`Event::Failed`] instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveCheck {
    Live(ConnectionInfo),
    /// 410: the connection is closed (its record, if any, is stale).
    Gone,
}

/// What GetConnection said about one row, for the IDLE column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleCheck {
    /// Live; when it last sent or received (epoch ms), if API Gateway said.
    Live { last_active_at: Option<i64> },
    /// 410: closed.
    Gone,
    /// Not answered (throttled, an error): asked again later.
    Failed(String),
}

/// Which background task an [`Event::Failed`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Refresh,
    Probe { id: String },
    Send { id: String },
    Broadcast,
    Disconnect { id: String },
    PlanPrune,
    Prune,
}

/// The prune dry run: records whose connection answered 410.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Ids of records to delete, sorted.
    pub stale: Vec<String>,
    /// Records checked.
    pub checked: u64,
    /// Records whose connection could not be checked (throttled, errors):
    /// they are left alone.
    pub unknown: u64,
    /// The first failure among the unknown, to show why.
    pub first_error: Option<String>,
}

/// What deleting the planned records did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Records this run deleted.
    pub removed: u64,
    /// Records already gone when we came to delete them.
    pub already_removed: u64,
    pub errors: Vec<String>,
}
