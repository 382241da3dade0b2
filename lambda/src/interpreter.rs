//! Which program runs an instance of a function: the code's `bootstrap`
//! (`provided.*`), or `node`/`python3` with our shim. Each interpreter is
//! asked once, at start, for its version and its real executable (so a
//! version manager's shim is not run per cold start), and a missing one
//! becomes the one sentence every invocation of its functions fails with.
//! It must not start instances or read the functions' code.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use wsadmin_core::function::Runtime;

/// How long an interpreter may take to say its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Interpreter {
    Node,
    Python,
}

impl Interpreter {
    pub(crate) fn of(runtime: Runtime) -> Option<Self> {
        match runtime {
            Runtime::Provided => None,
            Runtime::Node { .. } => Some(Self::Node),
            Runtime::Python { .. } => Some(Self::Python),
        }
    }

    /// What to install for `runtime`, as a user would name it.
    fn product(runtime: Runtime) -> String {
        match runtime {
            Runtime::Node { major } => format!("Node.js {major}"),
            Runtime::Python { minor } => format!("Python 3.{minor}"),
            Runtime::Provided => "the bootstrap".into(),
        }
    }

    /// A program that prints the version on its first line and the real
    /// executable on its second.
    fn probe_args(self) -> [&'static str; 2] {
        match self {
            Self::Node => [
                "-e",
                "process.stdout.write(process.versions.node + '\\n' + process.execPath + '\\n')",
            ],
            Self::Python => [
                "-c",
                "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)",
            ],
        }
    }
}

/// An interpreter that answered.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// `20.11.1`, `3.12.4`.
    pub version: String,
    /// The executable itself (what instances run).
    pub executable: PathBuf,
}

/// Asks `program` for its version and executable; the reason it cannot
/// run otherwise (`python3 was not found on PATH`).
pub(crate) async fn probe(interpreter: Interpreter, program: &Path) -> Result<Found, String> {
    let shown = program.display();
    let mut cmd = Command::new(program);
    cmd.args(interpreter.probe_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            if program.components().count() > 1 {
                format!("{shown} was not found")
            } else {
                format!("{shown} was not found on PATH")
            }
        } else {
            format!("{shown} cannot be run ({e})")
        }
    })?;
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{shown} did not say its version within 10 s"))?
        .map_err(|e| format!("{shown} cannot be run ({e})"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    match (out.status.success(), lines.next(), lines.next()) {
        (true, Some(version), Some(executable)) if !version.is_empty() => Ok(Found {
            version: version.trim().to_owned(),
            executable: PathBuf::from(executable.trim()),
        }),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = stderr.lines().next().unwrap_or("").trim();
            Err(format!("{shown} did not run ({}: {said})", out.status))
        }
    }
}

/// Why a function whose interpreter is missing cannot run, and what to
/// install.
pub(crate) fn missing(runtime: Runtime, program: &Path, reason: &str) -> String {
    format!(
        "{reason}: install {} ({}) to run it",
        Interpreter::product(runtime),
        program.display()
    )
}

/// The warning for an interpreter of another version than the runtime's,
/// or `None` when it matches.
pub(crate) fn version_warning(runtime: Runtime, program: &Path, version: &str) -> Option<String> {
    let (declared, matches, what) = match runtime {
        Runtime::Node { major } => (
            major.to_string(),
            version.split('.').next() == Some(&major.to_string()),
            "Node.js",
        ),
        Runtime::Python { minor } => {
            let declared = format!("3.{minor}");
            let matches = version == declared || version.starts_with(&format!("{declared}."));
            (declared, matches, "Python")
        }
        Runtime::Provided => return None,
    };
    (!matches).then(|| {
        format!(
            "{} is {what} {version}, not {declared}; running it anyway",
            program.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compared_to_the_declared_runtime() {
        let node = Runtime::Node { major: 20 };
        assert_eq!(version_warning(node, Path::new("node"), "20.11.1"), None);
        assert_eq!(
            version_warning(node, Path::new("node"), "22.1.0").as_deref(),
            Some("node is Node.js 22.1.0, not 20; running it anyway")
        );
        let py = Runtime::Python { minor: 1 };
        assert!(version_warning(py, Path::new("python3"), "3.12.0").is_some());
        let py = Runtime::Python { minor: 12 };
        assert_eq!(version_warning(py, Path::new("python3"), "3.12.4"), None);
    }

    #[test]
    fn a_missing_interpreter_says_what_to_install() {
        assert_eq!(
            missing(
                Runtime::Python { minor: 12 },
                Path::new("python3"),
                "python3 was not found on PATH"
            ),
            "python3 was not found on PATH: install Python 3.12 (python3) to run it"
        );
    }
}
