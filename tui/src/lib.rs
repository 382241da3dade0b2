//! wsadmin-tui: the live connections dashboard, run by `wsadmin tui`.
//!
//! - [`app`]: the state and `App::update`, pure.
//! - [`event`]: everything that can happen, one closed enum.
//! - [`command`]: background work the app asks for.
//! - [`ui`]: drawing, which only reads the app.
//! - [`worker`]: runs commands against the deployment, reports events.
//! - [`terminal`]: raw mode and the alternate screen, restored whatever
//!   happens.
//! - [`sanitize`]: client-supplied text made safe for the terminal.
//!
//! This is the only crate that knows ratatui and crossterm.

pub mod app;
pub mod command;
pub mod event;
pub mod sanitize;
pub mod ui;

pub use app::App;
pub use command::Command;
pub use event::Event;
