//! The integration tests of this package, one module per file, linked
//! into one test binary: each binary links every dependency again (about
//! 60 MB each in a debug build, and a link step), so one instead of
//! 11 keeps `target/` and CI small (ARCHITECTURE.md, Cross-cutting, Set-up).

mod any_stack;
mod aws;
mod credentials;
mod installed;
mod lambda_concurrency;
mod local_state;
mod local_template;
mod output;
mod package;
mod registries;
mod support;
mod template;
