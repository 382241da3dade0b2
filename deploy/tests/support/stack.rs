//! A `wsstack local --template` as the tests run it (a real process with
//! its dynalite and functions), and `wsadmin` against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsadmin_core::local::LocalStackInfo;

use super::Ws;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The directory of this build's binaries (`wsstack`, `wsadmin`, the
/// handlers' Lambda binaries), brought up to date once per test process by
/// the very build `scripts/test` runs (`cargo test --no-run --workspace
/// --all-features`), so within the suite this is a no-op. A package's tests
/// can name only its own binaries; one merely present may predate the
/// sources, and a test would then check old code. A narrower build (`-p
/// wsadmin`) would resolve the dependencies' features differently and
/// compile a second copy of all of them: minutes, and gigabytes of target/
/// (CI once ran out of disk on it).
pub fn binaries() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_BIN_EXE_wsstack"))
                .parent()
                .expect("the binaries' directory")
                .to_owned();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args([
                "test",
                "--no-run",
                "--locked",
                "-q",
                "--workspace",
                "--all-features",
            ]);
            if dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo builds the workspace's binaries");
            assert!(status.success(), "building the workspace's binaries failed");
            dir
        })
        .clone()
}

/// The `wsadmin` binary of this build (see [`binaries`]).
pub fn wsadmin_bin() -> PathBuf {
    binaries().join("wsadmin")
}

pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("local-stack.json")
}

/// A running `wsstack local --template`, stopped with SIGTERM on drop; what
/// it printed on standard error (the functions' logs) kept for asserts.
pub struct Local {
    child: Option<Child>,
    pub info: LocalStackInfo,
    log: Arc<Mutex<String>>,
}

impl Local {
    pub fn start(dir: &Path, template: &Path) -> Local {
        Self::start_with_path(dir, template, None)
    }

    /// With `PATH` set to `path` (which interpreters the stack finds).
    pub fn start_with_path(dir: &Path, template: &Path, path: Option<&Path>) -> Local {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsstack"));
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .env("XDG_STATE_HOME", dir)
            .env("WSADMIN_LOCAL_STATE", state_file(dir))
            .env_remove("WSSTACK_PORT")
            .args([
                "local",
                "--port",
                "0",
                "--tls-port",
                "0",
                "--dynamodb-port",
                "0",
                "--template",
            ])
            .arg(template)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wsstack local runs");
        let log = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut log = log.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        for _ in 0..600 {
            if let Ok(text) = std::fs::read_to_string(state_file(dir))
                && let Ok(info) = serde_json::from_str(&text)
            {
                return Local {
                    child: Some(child),
                    info,
                    log,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "wsstack local exited ({status}): {}",
                    log.lock().expect("log")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("wsstack local wrote no state file in 60 s");
    }

    pub fn url(&self) -> String {
        self.info.websocket_url.clone()
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    pub fn wsadmin(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(wsadmin_bin())
            .env("WSADMIN_LOCAL_STATE", state_file(dir))
            .env("XDG_CONFIG_HOME", dir)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .args(["--context", "local"])
            .args(args)
            .output()
            .expect("wsadmin runs")
    }
}

impl Local {
    /// `wsadmin` with the local stack's credentials in the environment and
    /// a config file of its own in `dir`, the target given by `args` (a
    /// context saved there, or flags): as an operator runs it against a
    /// deployment that is not `--context local`.
    pub fn wsadmin_as_operator(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(wsadmin_bin())
            .env("WSADMIN_CONFIG", dir.join("config.toml"))
            .env("WSADMIN_MARKS_DIR", dir.join("marks"))
            .env("AWS_ACCESS_KEY_ID", &self.info.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.info.secret_access_key)
            .env("AWS_REGION", &self.info.region)
            .env_remove("AWS_PROFILE")
            .env_remove("WSADMIN_CONTEXT")
            .args(args)
            .output()
            .expect("wsadmin runs")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("the handshake completes within 30 s (a cold start included)")
    .expect("the handshake is accepted");
    ws
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
