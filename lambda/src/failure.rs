//! Why the host did not start ([`HostError`]) and why an invocation
//! produced no answer ([`InvokeFailure`]), each a one-line reason naming the
//! function and what to do. It must not decide anything: the host and its
//! pools choose which failure it was.

use std::path::PathBuf;

/// Why [`LambdaHost::start`](crate::LambdaHost::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A function breaks one of Lambda's rules.
    #[error(transparent)]
    Function(#[from] wsadmin_core::function::FunctionError),
    #[error("function \"{0}\" is declared twice (give each function its own name)")]
    Duplicate(String),
    #[error(
        "function \"{function}\": its code directory {} is not a directory (build the code or fix the path)",
        dir.display()
    )]
    CodeDir { function: String, dir: PathBuf },
    #[error("cannot write {} (check the host's work directory)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why an invocation failed, as Lambda would have said it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeFailure {
    #[error("no function named \"{function}\" (the host runs: {known})")]
    UnknownFunction { function: String, known: String },
    /// The event is not JSON (Lambda's `InvalidRequestContentException`).
    #[error("function \"{function}\" was not invoked: the event is not JSON ({reason})")]
    InvalidEvent { function: String, reason: String },
    /// The function's runtime cannot run on this machine (its interpreter is
    /// missing); `reason` says what to install.
    #[error("function \"{function}\" cannot run: {reason}")]
    Unavailable { function: String, reason: String },
    /// The instance did not finish before its deadline and was killed.
    #[error(
        "function \"{function}\" timed out: Task timed out after {seconds}.00 seconds (raise its timeout or make it faster)"
    )]
    Timeout { function: String, seconds: u32 },
    /// The cold start failed: the runtime posted `/init/error`, exited
    /// before asking for its first event, or took too long.
    #[error("function \"{function}\" failed to start: {error_type}: {message}")]
    Init {
        function: String,
        error_type: String,
        message: String,
    },
    /// The function answered with an error (`/invocation/ID/error`).
    #[error("function \"{function}\" failed: {error_type}: {message}")]
    Function {
        function: String,
        error_type: String,
        message: String,
        /// The error's stack, as the runtime sent it.
        stack_trace: Vec<String>,
    },
    /// The process exited while it handled the event.
    #[error(
        "function \"{function}\" failed: Runtime exited with error: {status} (Runtime.ExitError; see its log above)"
    )]
    RuntimeExited { function: String, status: String },
    /// The host stopped before the function answered.
    #[error("function \"{function}\" did not answer: the lambda host stopped")]
    Stopped { function: String },
}

impl InvokeFailure {
    /// The function this failure is about.
    pub fn function(&self) -> &str {
        match self {
            Self::UnknownFunction { function, .. }
            | Self::InvalidEvent { function, .. }
            | Self::Unavailable { function, .. }
            | Self::Timeout { function, .. }
            | Self::Init { function, .. }
            | Self::Function { function, .. }
            | Self::RuntimeExited { function, .. }
            | Self::Stopped { function } => function,
        }
    }
}
