//! The integration tests of this package, one module per file, linked
//! into one test binary: each binary links every dependency again (about
//! 60 MB each in a debug build, and a link step), so one instead of
//! 17 keeps `target/` and CI small (ARCHITECTURE.md, Cross-cutting, Set-up).

mod acceptance;
mod commands;
mod connect;
mod contexts;
mod control_plane;
mod dashboard;
mod dashboard_signals;
mod errors;
mod events;
mod help;
mod history;
mod output;
mod pipes;
mod reliability;
mod resume;
mod status_metrics;
mod support;
mod terminal;
