//! One module per subcommand. Each takes the resolved [`Deployment`] (or
//! nothing, for the offline ones), its arguments and the [`Output`],
//! produces its result as values that the output layer writes, and returns
//! the [`Status`] that decides the exit code.
//!
//! [`Deployment`]: crate::deployment::Deployment
//! [`Output`]: crate::output::Output
//! [`Status`]: crate::exit::Status

pub mod broadcast;
pub mod connect;
pub mod context;
pub mod disconnect;
pub mod events;
pub mod inspect;
pub mod list;
pub mod logs;
pub mod prune;
pub mod registry;
pub mod send;
pub mod stats;
pub mod status;
