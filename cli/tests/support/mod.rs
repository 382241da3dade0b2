//! The harness of the CLI tests: the shared local-stack harness
//! (`wsadmin-harness`), plus what is the CLI's own: the stack's state file
//! where the `local` context reads it, and the real `wsadmin` binary run
//! with an environment that lets nothing of this machine in.

#![allow(dead_code, unused_imports)]

pub mod tmux;

use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::assert::{Assert, OutputAssertExt};
use serde_json::Value;
use wsadmin_emulator::EmulatorConfig;
use wsadmin_testkit::dynalite::Dynalite;

pub use wsadmin_harness::{Listener as Client, eventually};

/// A fixed clock for reproducible ages: 2023-11-14T22:13:20Z.
pub const NOW_MS: i64 = 1_700_000_000_000;

pub struct Harness {
    /// The shared harness: `h.stack`, `h.db`, `h.records()`… reach it.
    inner: wsadmin_harness::Harness,
    /// HOME, the config file and the state file live here.
    pub dir: tempfile::TempDir,
}

impl Deref for Harness {
    type Target = wsadmin_harness::Harness;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    start_on(Dynalite::start(), tweak).await
}

/// [`start`] over a dynalite the test made (a persistent one it can kill
/// and restart).
pub async fn start_on(db: Dynalite, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    let h = wsadmin_harness::start_on(db, tweak).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stack = &h.stack;
    stack
        .info()
        .write(&dir.path().join("local-stack.json"))
        .expect("state file");
    Harness { inner: h, dir }
}

/// The environment of every run: nothing inherited but what is set here.
pub fn wsadmin_in(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsadmin"));
    cmd.env_clear()
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("WSADMIN_CONFIG", dir.join("config.toml"))
        .env("WSADMIN_LOCAL_STATE", dir.join("local-stack.json"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    // Debugging a test: RUST_LOG=wsadmin_core=debug cargo test …
    if let Some(log) = std::env::var_os("RUST_LOG") {
        cmd.env("RUST_LOG", log);
    }
    cmd
}

impl Harness {
    pub async fn stop(self) {
        self.inner.stop().await;
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn cmd(&self) -> Command {
        wsadmin_in(self.dir.path())
    }

    /// `wsadmin --context local ARGS…` (a shell word list) in a
    /// `cols`×`rows` tmux terminal, with the harness's environment, `env`
    /// (`NAME=value` words) and nothing else of this machine's. With
    /// `stay`, the pane stays open after it exits and shows `EXIT=<status>`;
    /// without, the pane is wsadmin itself and ends with it.
    pub fn in_terminal(
        &self,
        cols: u16,
        rows: u16,
        env: &str,
        args: &str,
        stay: bool,
    ) -> tmux::Tmux {
        let (run, after) = if stay {
            ("", "; echo EXIT=$?; sleep 60")
        } else {
            ("exec ", "")
        };
        let script = format!(
            "{run}env -i HOME={dir} WSADMIN_CONFIG={dir}/config.toml WSADMIN_LOCAL_STATE={dir}/local-stack.json \
             AWS_EC2_METADATA_DISABLED=true TERM=xterm-256color {env} {bin} --context local {args}{after}",
            dir = self.dir.path().display(),
            bin = env!("CARGO_BIN_EXE_wsadmin"),
        );
        tmux::Tmux::start(cols, rows, &["sh".to_owned(), "-c".to_owned(), script])
    }

    /// `wsadmin --context local ARGS…`, run off the runtime's threads.
    pub async fn local(&self, args: &[&str]) -> Assert {
        let mut cmd = self.cmd();
        cmd.arg("--context").arg("local").args(args);
        run(cmd).await
    }
}

/// Runs a prepared command on a blocking thread.
pub async fn run(mut cmd: Command) -> Assert {
    let output: Output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("wsadmin runs");
    output.assert()
}

pub fn stdout(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

pub fn stderr(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

pub fn json(a: &Assert) -> serde_json::Value {
    serde_json::from_slice(&a.get_output().stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(a)))
}

/// The one-line error discipline: exit code, one `wsadmin: ` line naming
/// `needle`, no panic or backtrace.
pub fn fails_with(a: Assert, code: i32, needle: &str) -> String {
    let err = stderr(&a);
    let a = a.code(code);
    let lines: Vec<&str> = err.lines().collect();
    assert!(err.contains(needle), "stderr should name {needle:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    if code != 2 {
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].starts_with("wsadmin: "), "{err}");
    }
    let _ = a;
    err
}

/// A `wsadmin` running in the background, its output collected as it comes.
pub struct Running {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<String>>,
}

/// A test that fails leaves nothing running.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn start(h: &Harness, args: &[&str]) -> Self {
        let mut cmd = h.cmd();
        cmd.arg("--context").arg("local").args(args);
        Self::spawn(cmd)
    }

    pub fn spawn(mut cmd: std::process::Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("wsadmin starts");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let lines = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let text = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut t = text.lock().expect("lock");
                t.push_str(&line);
                t.push('\n');
            }
        });
        Self { child, out, err }
    }

    pub fn lines(&self) -> Vec<String> {
        self.out.lock().expect("lock").clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().expect("lock").clone()
    }

    pub fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until a line satisfies `check`; panics after `secs`.
    pub async fn wait_for(&self, secs: u64, what: &str, check: impl Fn(&str) -> bool) -> Duration {
        let started = Instant::now();
        let found = eventually(secs, || self.lines().iter().any(|l| check(l))).await;
        assert!(
            found,
            "no line {what} within {secs}s: {:?} {}",
            self.lines(),
            self.stderr()
        );
        started.elapsed()
    }

    /// The process id (to send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(mut self) -> (Vec<String>, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        (self.lines(), self.stderr())
    }

    /// Waits (up to `secs`) for the process to exit on its own.
    pub async fn exit(mut self, secs: u64) -> (i32, Vec<String>, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "wsadmin did not exit within {secs}s: {:?} {}",
                    self.lines(),
                    self.err.lock().expect("lock")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The readers drain what is left.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let err = self.err.lock().expect("lock").clone();
        (status.code().unwrap_or(-1), self.lines(), err)
    }
}
