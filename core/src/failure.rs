//! Failure kinds: the stable, machine-readable names reports give failures
//! ([`GatewayError::kind`], [`StoreError::kind`], and the sweep's own
//! `client_backpressure`), and the one decision made on a kind alone:
//! whether it is about the target (credentials, endpoint, table) rather
//! than one connection. When every failure of a run is, the run failed as
//! a whole (the CLI exits 1, not 3), and the breaker counts it.
//!
//! [`GatewayError::kind`]: crate::GatewayError::kind
//! [`StoreError::kind`]: crate::StoreError::kind

/// The kinds that say nothing about one connection and everything about
/// the target.
const ABOUT_THE_TARGET: [&str; 4] = [
    "forbidden",
    "no_credentials",
    "unreachable",
    "table_not_found",
];

/// Whether a failure of this kind is about the target rather than one
/// connection.
pub fn is_about_the_target(kind: &str) -> bool {
    ABOUT_THE_TARGET.contains(&kind)
}
