//! wsadmin-deploy: `wsstack`, which stands the WebSocket stack up: on one
//! machine (`wsstack local`: the local stack of `wsadmin-local` over the
//! pinned dynalite of `wsadmin-dynalite`), and on AWS.
//!
//! For AWS, from the same stack description: `template` (the
//! CloudFormation template, a value; `yaml` writes its YAML form) and
//! `policy` (the IAM policy an operator needs to run `wsadmin` against a
//! deployment). Neither calls AWS. `from_template` reads a CloudFormation or
//! SAM template (ours, or one written by hand; JSON or YAML) into the
//! description `wsstack local --template` runs; `package` builds the
//! handlers' Lambda zips with cargo-lambda.
//!
//! On AWS, through CloudFormation: `up` (and `plan`, its dry run), `status`
//! and `down`, over `aws` (the SDK configuration, retries, errors; `error`
//! gathers every module's into `DeployError`),
//! `artifacts` (the zips in S3), `cloudformation` (change sets, events,
//! drift), `plan` (a change set as it prints) and `progress` (events on the
//! terminal).

pub mod artifacts;
pub mod aws;
pub mod cloudformation;
pub mod down;
pub mod error;
pub mod from_template;
pub mod package;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod status;
pub mod template;
pub mod up;
pub mod yaml;
