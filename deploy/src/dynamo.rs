//! The local DynamoDB: the project's pinned dynalite, run by node through
//! `scripts/dynalite-server.js`. The child exits when its stdin closes, so it
//! dies with wsstack however wsstack ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

const SCRIPT: &str = "scripts/dynalite-server.js";

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error(
        "cannot find {SCRIPT}: run wsstack from the wsadmin checkout, or set WSSTACK_HOME to it"
    )]
    NoScript,
    #[error("cannot run node ({0}): install Node.js 20 or newer")]
    NoNode(std::io::Error),
    #[error("dynalite did not start{0}: run scripts/setup (it installs dynalite with npm ci)")]
    NotStarted(String),
}

#[derive(Debug)]
pub struct LocalDynamo {
    child: Child,
    /// Held open: closing it tells dynalite to exit.
    _stdin: ChildStdin,
    port: u16,
}

/// The checkout holding `scripts/dynalite-server.js`: `WSSTACK_HOME`, or a
/// parent of the running binary (`target/debug/wsstack`), or of the current
/// directory.
pub fn project_dir() -> Option<PathBuf> {
    let has_script = |d: &Path| d.join(SCRIPT).is_file();
    if let Some(home) = std::env::var_os("WSSTACK_HOME").map(PathBuf::from) {
        return has_script(&home).then_some(home);
    }
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    [exe, cwd]
        .into_iter()
        .flatten()
        .flat_map(|start| start.ancestors().map(Path::to_path_buf).collect::<Vec<_>>())
        .find(|d| has_script(d))
}

impl LocalDynamo {
    /// Starts dynalite on 127.0.0.1 (`port` 0 picks a free one), in memory or
    /// in `data_dir`.
    pub async fn start(port: u16, data_dir: Option<&Path>) -> Result<Self, DynamoError> {
        let dir = project_dir().ok_or(DynamoError::NoScript)?;
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(SCRIPT))
            .arg("--port")
            .arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(d) = data_dir {
            cmd.arg("--path").arg(d);
        }
        let mut child = cmd.spawn().map_err(DynamoError::NoNode)?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| DynamoError::NotStarted(String::new()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| DynamoError::NotStarted(String::new()))?;
        let mut line = String::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let port = match read {
            Ok(Ok(_)) => serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok()),
            _ => None,
        };
        match port {
            Some(port) => Ok(Self {
                child,
                _stdin: stdin,
                port,
            }),
            None => {
                let _ = child.kill().await;
                let status = child.try_wait().ok().flatten();
                Err(DynamoError::NotStarted(
                    status.map(|s| format!(" ({s})")).unwrap_or_default(),
                ))
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
