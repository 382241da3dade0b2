//! Helpers for the host's tests: code directories, a host whose logs go to
//! a channel, waiting for log lines, and whether a process is alive.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::mpsc::UnboundedReceiver;
use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_lambda::{HostConfig, LambdaHost, LogSink};

/// A running host, its log lines and its work directory.
pub struct Fixture {
    pub host: LambdaHost,
    pub logs: Logs,
    pub work: TempDir,
}

pub struct Logs {
    rx: UnboundedReceiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Logs {
    /// Waits (up to 5 s) for a line containing `needle`; returns it.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                _ => panic!(
                    "no log line with {needle:?} within 5 s; lines:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Takes whatever has arrived so far.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }
}

/// A directory holding `files` (path, contents).
pub fn code(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
    }
    dir
}

pub fn spec(name: &str, runtime: &str, handler: &str, dir: &Path) -> FunctionSpec {
    FunctionSpec::new(name, runtime, handler, FunctionCode::Dir(dir.to_owned()))
}

pub async fn start(functions: Vec<FunctionSpec>) -> Fixture {
    start_with(functions, |_| {}).await
}

pub async fn start_with(
    functions: Vec<FunctionSpec>,
    tweak: impl FnOnce(&mut HostConfig),
) -> Fixture {
    let work = tempfile::tempdir().expect("tempdir");
    let (sink, rx) = LogSink::channel();
    let mut config = HostConfig::new(work.path());
    config.logs = sink;
    tweak(&mut config);
    let host = LambdaHost::start(functions, config)
        .await
        .expect("the host starts");
    Fixture {
        host,
        logs: Logs {
            rx,
            seen: Vec::new(),
        },
        work,
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// Waits (up to 3 s) for `pid` to be gone.
pub async fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The real python3 executable (for a `bootstrap`'s shebang).
pub fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}
