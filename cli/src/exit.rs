//! How a run ends: the exit codes `--help` documents, and the error that
//! marks a bad command line or input (exit 2) apart from a failure (exit 1).

use std::fmt;
use std::process::ExitCode;

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Some targets failed (exit 3).
    Partial,
    /// The command ran but found a problem it reports (exit 1).
    Failed,
    /// Stopped by Ctrl-C or SIGTERM after its partial report (exit 130).
    Interrupted,
    /// The dashboard stopped by a signal: 128 + its number, as a shell
    /// reports a process a signal ended (143 for SIGTERM, 129 for SIGHUP).
    Signal(u8),
}

impl Status {
    pub fn code(self) -> ExitCode {
        match self {
            Status::Ok => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(1),
            Status::Partial => ExitCode::from(3),
            Status::Interrupted => ExitCode::from(130),
            Status::Signal(code) => ExitCode::from(code),
        }
    }
}

pub const USAGE: u8 = 2;

/// A bad flag value or input, refused before anything was done.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(message: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.to_string()))
}

pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<UsageError>())
}

/// `wsadmin list | head`: the reader left, which is no error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
