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
    /// PostToConnection to one connection.
    Send { id: String, text: String },
    /// Post to every registered connection. `expected` is the registry size
    /// at the last refresh, the denominator of the progress gauge until the
    /// run knows better.
    Broadcast { text: String, expected: u64 },
    /// DeleteConnection.
    Disconnect { id: String },
    /// The dry run of a prune: which records belong to gone connections.
    PlanPrune,
    /// Delete these records (conditionally).
    Prune { ids: Vec<String> },
}
