//! The local-stack tests' harness is the shared one.

#![allow(unused_imports)]

pub use wsadmin_harness::*;

pub mod stack;
