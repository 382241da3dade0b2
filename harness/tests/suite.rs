//! The integration tests of this package, one module per file, linked
//! into one test binary: each binary links every dependency again (about
//! 60 MB each in a debug build, and a link step), so one instead of
//! 10 keeps `target/` and CI small (ARCHITECTURE.md, Cross-cutting, Set-up).

mod authorizers;
mod bad_input;
mod connect_window;
mod fidelity;
mod flood;
mod functions;
mod local_stack;
mod management_api;
mod metrics;
mod tls;
