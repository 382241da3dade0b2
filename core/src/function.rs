//! What a function of a stack is, when it is not one of our own handlers
//! run in-process: its Lambda runtime, handler, code, environment, timeout
//! and memory, as a template declares them. The local stack runs such a
//! function as Lambda does, in its own processes through the Lambda
//! Runtime API (crate `wsadmin-lambda`).
//!
//! It must not know how a function runs: no processes, no interpreters;
//! only the description and Lambda's rules for it ([`Runtime::parse`] is
//! the one list of runtimes the local stack can run).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Lambda's default timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3;
/// Lambda's default memory size, in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;

/// One Lambda function: the route's `handler` names it by [`name`](Self::name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// The function's name (a template's `FunctionName`, or its logical id).
    pub name: String,
    /// Lambda's runtime identifier: `nodejs20.x`, `python3.12`,
    /// `provided.al2023`, ... ([`Runtime::parse`]).
    pub runtime: String,
    /// `_HANDLER`: `index.handler` (Node: file and export; Python: module
    /// and function); for `provided.*` passed to `bootstrap` as it is.
    #[serde(default)]
    pub handler: String,
    /// Where the code is.
    pub code: FunctionCode,
    /// The function's own environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// `ReservedConcurrentExecutions`: at most this many invocations at
    /// once, throttled beyond (0 throttles every one); `None` shares the
    /// account's concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
}

fn default_timeout() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

fn default_memory() -> u32 {
    DEFAULT_MEMORY_MB
}

/// Where a function's code is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionCode {
    /// A directory (`LAMBDA_TASK_ROOT`): a SAM `CodeUri`, or `--code
    /// ID=DIR` for a function whose template names S3.
    Dir(PathBuf),
    /// CloudFormation's `Code.ZipFile`: the source of one file, which Lambda
    /// names `index.js` (Node) or `index.py` (Python).
    Inline(String),
}

impl FunctionSpec {
    /// A function with Lambda's defaults for timeout and memory and no
    /// environment.
    pub fn new(
        name: impl Into<String>,
        runtime: impl Into<String>,
        handler: impl Into<String>,
        code: FunctionCode,
    ) -> Self {
        Self {
            name: name.into(),
            runtime: runtime.into(),
            handler: handler.into(),
            code,
            environment: BTreeMap::new(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            memory_mb: DEFAULT_MEMORY_MB,
            reserved_concurrency: None,
        }
    }

    /// Checks the function against Lambda's rules.
    pub fn validate(&self) -> Result<(), FunctionError> {
        let err = |problem: String| FunctionError {
            function: self.name.clone(),
            problem,
        };
        if !is_function_name(&self.name) {
            return Err(err(
                "is not a function name (use 1 to 64 letters, digits, \"-\" or \"_\")".into(),
            ));
        }
        let runtime = Runtime::parse(&self.runtime).map_err(|e| err(e.to_string()))?;
        if !matches!(runtime, Runtime::Provided) && self.handler.is_empty() {
            return Err(err(format!(
                "has no handler (runtime {} needs one, e.g. \"index.handler\")",
                self.runtime
            )));
        }
        if let (FunctionCode::Inline(_), Runtime::Provided) = (&self.code, runtime) {
            return Err(err(format!(
                "has inline code, which Lambda allows only for Node.js and Python, not {}",
                self.runtime
            )));
        }
        if !(1..=900).contains(&self.timeout_seconds) {
            return Err(err(format!(
                "timeout {} s is out of Lambda's range (1 to 900)",
                self.timeout_seconds
            )));
        }
        if !(128..=10240).contains(&self.memory_mb) {
            return Err(err(format!(
                "memory size {} MB is out of Lambda's range (128 to 10240)",
                self.memory_mb
            )));
        }
        Ok(())
    }
}

/// A function that breaks one of Lambda's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function \"{function}\" {problem}")]
pub struct FunctionError {
    pub function: String,
    pub problem: String,
}

/// Lambda's rule for function names.
pub fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A Lambda runtime the local stack can run, with what is installed on the
/// machine: an executable `bootstrap`, `node`, or `python3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `provided`, `provided.al2`, `provided.al2023`: the code's `bootstrap`.
    Provided,
    /// `nodejs{major}.x`, 18 to 24.
    Node { major: u32 },
    /// `python3.{minor}`, 9 to 13.
    Python { minor: u32 },
}

/// The runtimes [`Runtime::parse`] accepts, for error messages.
pub const RUNTIMES: &str = "provided.al2023, provided.al2, nodejs18.x to nodejs24.x, \
     python3.9 to python3.13";

/// A runtime identifier the local stack cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("has runtime \"{0}\", which the local stack cannot run (it runs {RUNTIMES})")]
pub struct UnknownRuntime(pub String);

impl Runtime {
    pub fn parse(id: &str) -> Result<Self, UnknownRuntime> {
        let unknown = || UnknownRuntime(id.to_owned());
        if matches!(id, "provided" | "provided.al2" | "provided.al2023") {
            return Ok(Self::Provided);
        }
        if let Some(major) = id.strip_prefix("nodejs").and_then(|v| v.strip_suffix(".x")) {
            let major: u32 = major.parse().map_err(|_| unknown())?;
            return match major {
                18..=24 if major.is_multiple_of(2) => Ok(Self::Node { major }),
                _ => Err(unknown()),
            };
        }
        if let Some(minor) = id.strip_prefix("python3.") {
            let minor: u32 = minor.parse().map_err(|_| unknown())?;
            return match minor {
                9..=13 => Ok(Self::Python { minor }),
                _ => Err(unknown()),
            };
        }
        Err(unknown())
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provided => f.write_str("provided.al2023"),
            Self::Node { major } => write!(f, "nodejs{major}.x"),
            Self::Python { minor } => write!(f, "python3.{minor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_lambda_offers_parse_and_others_are_named() {
        for id in [
            "provided",
            "provided.al2",
            "provided.al2023",
            "nodejs18.x",
            "nodejs20.x",
            "nodejs22.x",
            "nodejs24.x",
            "python3.9",
            "python3.13",
        ] {
            assert!(Runtime::parse(id).is_ok(), "{id}");
        }
        for id in [
            "java17",
            "nodejs19.x",
            "nodejs16.x",
            "python3.8",
            "python3.14",
            "python2.7",
            "nodejs",
            "go1.x",
            "",
        ] {
            let e = Runtime::parse(id).unwrap_err().to_string();
            assert!(
                e.contains(&format!("\"{id}\"")) && e.contains("python3.9"),
                "{e}"
            );
        }
        assert_eq!(
            Runtime::parse("nodejs22.x").unwrap(),
            Runtime::Node { major: 22 }
        );
    }

    #[test]
    fn a_function_is_checked_against_lambdas_rules() {
        let ok = FunctionSpec::new(
            "echo",
            "python3.12",
            "index.handler",
            FunctionCode::Inline("def handler(e, c): return e".into()),
        );
        ok.validate().unwrap();
        let problem = |f: FunctionSpec| f.validate().unwrap_err().to_string();
        assert!(
            problem(FunctionSpec {
                name: "a b".into(),
                ..ok.clone()
            })
            .contains("function name")
        );
        assert!(
            problem(FunctionSpec {
                runtime: "java21".into(),
                ..ok.clone()
            })
            .contains("java21")
        );
        assert!(
            problem(FunctionSpec {
                handler: String::new(),
                ..ok.clone()
            })
            .contains("no handler")
        );
        assert!(
            problem(FunctionSpec {
                timeout_seconds: 901,
                ..ok.clone()
            })
            .contains("901")
        );
        assert!(
            problem(FunctionSpec {
                memory_mb: 64,
                ..ok.clone()
            })
            .contains("64 MB")
        );
        assert!(
            problem(FunctionSpec {
                runtime: "provided.al2023".into(),
                ..ok.clone()
            })
            .contains("inline code")
        );
        let bootstrap = FunctionSpec::new(
            "go",
            "provided.al2023",
            "",
            FunctionCode::Dir("/srv/fn".into()),
        );
        bootstrap.validate().unwrap();
    }
}
