//! Requests for slow work, which [`App::update`](crate::app::App::update)
//! returns and the worker carries out. Pure data: deciding to do something
//! is the app's business, doing it is the worker's.

/// One piece of background work. Each ends in one or more
/// [`Event`](crate::event::Event)s sent back to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Scan the registry.
    Refresh,
    /// GetConnection for the details pane.
    Probe { id: String },
    /// GetConnection for the IDLE column: a few visible rows, read only,
    /// one attempt each (a failure is asked again later, not retried).
    ProbeIdle { ids: Vec<String> },
    /// PostToConnection to one connection.
    Send { id: String, text: String },
    /// Post to every registered connection (`ids: None`, a fresh scan), or
    /// to these connections: the filtered rows the operator confirmed.
    /// `expected` is how many, as the app knew it, the denominator of the
    /// progress gauge until the run knows better.
    Broadcast {
        text: String,
        expected: u64,
        ids: Option<Vec<String>>,
    },
    /// DeleteConnection.
    Disconnect { id: String },
    /// Close these connections (the filtered rows the operator confirmed)
    /// through the sweep engine, records settled as one disconnect's are.
    DisconnectRows { ids: Vec<String> },
    /// The dry run of a prune: which records belong to gone connections.
    PlanPrune,
    /// Delete these records (conditionally).
    Prune { ids: Vec<String> },
}
