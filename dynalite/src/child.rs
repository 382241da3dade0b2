//! A helper server run as a child process that prints `{"port": N}` once it
//! listens and exits when its stdin closes (dynalite's launcher and the test
//! servers in `scripts/` do both). Dropping the handle stops it; so does our
//! process dying any way at all, since its stdin then closes.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child may take to say its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct PortChild {
    child: Child,
    /// Held open: its closing tells the server to exit.
    _stdin: ChildStdin,
    pub port: u16,
}

/// Why a child did not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not start ({status}{said})")]
    Silent {
        program: String,
        status: String,
        said: String,
    },
}

impl ChildError {
    /// Whether the program itself is missing (not installed, not on PATH).
    pub fn is_missing_program(&self) -> bool {
        matches!(self, ChildError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl PortChild {
    /// Spawns `cmd` and waits for its port line. Panics with `hint` (what to
    /// run to install it) when it does not start: for tests.
    pub fn spawn(cmd: Command, hint: &str) -> Self {
        Self::try_spawn(cmd).unwrap_or_else(|e| panic!("{e}: {hint}"))
    }

    /// Spawns `cmd` and waits (up to 30 s) for its port line.
    pub fn try_spawn(mut cmd: Command) -> Result<Self, ChildError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| ChildError::Spawn {
                program: program.clone(),
                source,
            })?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => unreachable!("stdin and stdout are piped"),
        };
        // Read on a thread, so a child that never speaks cannot hang us.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let port = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok());
        match port {
            Some(port) => Ok(Self {
                child,
                _stdin: stdin,
                port,
            }),
            None => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                let said = line.trim();
                Err(ChildError::Silent {
                    program,
                    status,
                    said: if said.is_empty() {
                        String::new()
                    } else {
                        format!(", said {said:?}")
                    },
                })
            }
        }
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PortChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
