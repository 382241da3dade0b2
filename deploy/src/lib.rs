//! wsadmin-deploy: `wsstack`, which stands the WebSocket stack up, on AWS or
//! on one machine (the local stack: our API Gateway emulator, dynalite, and
//! the real handlers in-process).

pub mod demo;
pub mod dynamo;
pub mod emulator;
pub mod local;
