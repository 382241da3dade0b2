//! Why a deploy command stopped: [`DeployError`], every module's errors
//! gathered, each one line that says what failed, on what, and what to do.

use wsadmin_core::sdk::LoadError;

use crate::artifacts::ArtifactError;
use crate::aws::AwsError;
use crate::template::TemplateError;

/// Why a deploy command stopped. Each message is one line that says what
/// failed, on what, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// No region, an invalid one, or no credentials (diagnosed as
    /// `wsadmin` does: the same loader).
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Context(#[from] wsadmin_core::context::ContextError),
    #[error(
        "invalid stack name {0:?}: use letters, digits and -, starting with a letter, at most 128 characters"
    )]
    InvalidName(String),
    #[error("stack name \"local\" is taken by `wsstack local`'s context: pick another name")]
    ReservedName,
    #[error(
        "stack \"{name}\" in {region} was not created by wsstack (no {tag} tag): wsstack leaves it alone"
    )]
    NotOurs {
        name: String,
        region: String,
        tag: String,
    },
    #[error("stack \"{name}\" is busy ({status}): wait for it to finish, then run this again")]
    Busy { name: String, status: String },
    #[error(
        "stack \"{name}\" is {status} (its first deploy failed and rolled back): remove it with `wsstack down --name {name}`, then run up again"
    )]
    NeedsDelete { name: String, status: String },
    #[error("change set of stack \"{name}\" failed: {reason}")]
    ChangeSetFailed { name: String, reason: String },
    #[error("{verb} of stack \"{name}\" failed: {failure}; {outcome}")]
    Failed {
        verb: &'static str,
        name: String,
        failure: String,
        outcome: String,
    },
    #[error("{what} needs confirmation and standard input is not a terminal: pass --yes")]
    NoTerminal { what: &'static str },
    #[error("cancelled: nothing was changed")]
    Cancelled,
    #[error("no stack \"{name}\" in {region}")]
    NoStack { name: String, region: String },
    #[error("{0}")]
    Choose(String),
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
}
