//! wsadmin-deploy: `wsstack`, which stands the WebSocket stack up: on one
//! machine (`wsstack local`: the local stack of `wsadmin-local` over the
//! pinned dynalite of `wsadmin-dynalite`), and on AWS.
//!
//! For AWS, from the same stack description: `template` (the
//! CloudFormation template, a value; `yaml` writes its YAML form) and
//! `policy` (the IAM policy an operator needs to run `wsadmin` against a
//! deployment). Neither calls AWS.

pub mod policy;
pub mod template;
pub mod yaml;
