//! A helper server run as a child process that prints `{"port": N}` once it
//! listens and exits when its stdin closes (our launchers in `scripts/` do
//! both). Dropping the handle stops it; so does the test process dying.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

#[derive(Debug)]
pub struct PortChild {
    child: Child,
    /// Held open: its closing tells the server to exit.
    _stdin: ChildStdin,
    pub port: u16,
}

impl PortChild {
    /// Spawns `cmd` and waits for its port line. Panics with `hint` (what to
    /// run to install it) when it does not start.
    pub fn spawn(cmd: Command, hint: &str) -> Self {
        Self::try_spawn(cmd).unwrap_or_else(|e| panic!("{e}: {hint}"))
    }

    /// [`PortChild::spawn`], returning why it did not start instead of
    /// panicking (a fixed port may be taken: the caller tries another).
    pub fn try_spawn(mut cmd: Command) -> Result<Self, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = read
            .ok()
            .and_then(|_| serde_json::from_str::<serde_json::Value>(&line).ok())
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
                let status = child.wait();
                Err(format!(
                    "{cmd:?} did not start (status {status:?}, said {line:?})"
                ))
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
