//! The harness of the CLI tests: the shared local-stack harness
//! (`wsadmin-harness`), plus what is the CLI's own: the stack's state file
//! where the `local` context reads it, and the real `wsadmin` binary run
//! with an environment that lets nothing of this machine in.

#![allow(dead_code, unused_imports)]

pub mod tmux;

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Command, Output};

use assert_cmd::assert::{Assert, OutputAssertExt};
use wsadmin_core::local::LocalStackInfo;
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
    let c = stack.config();
    LocalStackInfo {
        websocket_url: stack.websocket_url(),
        management_endpoint: stack.management_endpoint(),
        dynamodb_endpoint: stack.dynamodb_endpoint().to_owned(),
        table: c.stack.table.clone(),
        region: c.region.clone(),
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        pid: std::process::id(),
    }
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
