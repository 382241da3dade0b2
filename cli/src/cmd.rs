//! One module per subcommand. Each takes the resolved [`Deployment`] (or
//! nothing, for the offline ones), its arguments and the [`Output`], writes
//! its result and returns the [`Status`] that decides the exit code.
//!
//! [`Deployment`]: crate::deployment::Deployment
//! [`Output`]: crate::output::Output
//! [`Status`]: crate::exit::Status

pub mod broadcast;
pub mod context;
pub mod disconnect;
pub mod inspect;
pub mod list;
pub mod prune;
pub mod send;
pub mod status;

use wsadmin_core::GatewayError;
use wsadmin_core::record::validate_connection_id;

use crate::exit::usage;

/// Every id checked before any request.
pub fn check_ids(ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        validate_connection_id(id).map_err(usage)?;
    }
    Ok(())
}

/// Failures that say nothing about one connection and everything about the
/// target (credentials, stage, endpoint, table), by their `kind` in reports:
/// when nothing succeeded and every failure is one of these, the command
/// failed (exit 1) rather than partly failed (exit 3).
pub fn is_fatal(kind: &str) -> bool {
    matches!(
        kind,
        "forbidden" | "no_credentials" | "unreachable" | "table_not_found"
    )
}

pub fn gateway_fatal(e: &GatewayError) -> bool {
    e.is_about_the_target()
}
