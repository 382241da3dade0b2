//! The harness of the CLI tests: a real dynalite, the real local stack
//! in-process on a free port, its state file where the `local` context
//! reads it, real WebSocket clients, and the real `wsadmin` binary run with
//! an environment that lets nothing of this machine in.

#![allow(dead_code)]

pub mod tmux;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::assert::{Assert, OutputAssertExt};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wsadmin_core::ConnectionRecord;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_deploy::emulator::EmulatorConfig;
use wsadmin_deploy::local::LocalStack;
use wsadmin_testkit::dynalite::Dynalite;

/// A fixed clock for reproducible ages: 2023-11-14T22:13:20Z.
pub const NOW_MS: i64 = 1_700_000_000_000;

pub struct Harness {
    pub db: Dynalite,
    pub stack: LocalStack,
    /// HOME, the config file and the state file live here.
    pub dir: tempfile::TempDir,
}

pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    start_on(Dynalite::start(), tweak).await
}

/// [`start`] over a dynalite the test made (a persistent one it can kill
/// and restart).
pub async fn start_on(db: Dynalite, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    let mut config = EmulatorConfig::default();
    tweak(&mut config);
    let stack = LocalStack::start(
        config,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &db.endpoint(),
    )
    .await
    .expect("local stack starts");
    let dir = tempfile::tempdir().expect("temp dir");
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
    Harness { db, stack, dir }
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
        self.stack.stop().await.expect("clean stop");
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

    pub async fn records(&self) -> Vec<ConnectionRecord> {
        self.stack
            .store()
            .scan(Default::default())
            .try_collect()
            .await
            .expect("scan")
    }

    pub async fn ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .records()
            .await
            .into_iter()
            .map(|r| r.connection_id)
            .collect();
        ids.sort();
        ids
    }

    /// Connects `n` clients named `{prefix}-{i}`, `parallel` at a time, and
    /// learns their ids from one scan.
    pub async fn clients(&self, prefix: &str, n: usize, parallel: usize) -> Vec<Client> {
        let url = self.stack.websocket_url();
        let mut clients: Vec<Client> = futures::stream::iter(0..n)
            .map(|i| connect(url.clone(), format!("{prefix}-{i}")))
            .buffer_unordered(parallel)
            .collect()
            .await;
        let by_agent: HashMap<String, String> = self
            .records()
            .await
            .into_iter()
            .filter_map(|r| Some((r.user_agent?, r.connection_id)))
            .collect();
        clients.sort_by_key(|c| {
            c.agent
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        });
        for c in &mut clients {
            c.id = by_agent
                .get(&c.agent)
                .cloned()
                .unwrap_or_else(|| panic!("{} registered on $connect", c.agent));
        }
        // About 2% of ids start with `-`, which clap takes for a flag when
        // an id is passed on a command line (issue 11 makes them usable):
        // such a client is replaced by one with another id, same name.
        let mut retired: Vec<String> = Vec::new();
        for c in &mut clients {
            while c.id.starts_with('-') {
                retired.push(std::mem::take(&mut c.id));
                c.close().await;
                // Its record may stay (a dropped `$disconnect`): the new
                // client's is the one with its name and an id not retired.
                let mut fresh = connect(url.clone(), c.agent.clone()).await;
                fresh.id = self
                    .records()
                    .await
                    .into_iter()
                    .find(|r| {
                        r.user_agent.as_deref() == Some(&c.agent)
                            && !retired.contains(&r.connection_id)
                    })
                    .map(|r| r.connection_id)
                    .unwrap_or_else(|| panic!("{} registered on $connect", c.agent));
                *c = fresh;
            }
        }
        clients
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

/// A client whose task records every text message it receives.
pub struct Client {
    pub agent: String,
    pub id: String,
    pub received: Arc<Mutex<Vec<String>>>,
    close: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    pub fn messages(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }

    /// Closes the socket (a normal close: `$disconnect` runs, unless the
    /// stack drops it on purpose).
    pub async fn close(&mut self) {
        if let Some(tx) = self.close.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }

    /// Whether the server closed the socket.
    pub fn closed(&self) -> bool {
        self.task.is_finished()
    }
}

async fn connect(url: String, agent: String) -> Client {
    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut()
        .insert("User-Agent", HeaderValue::from_str(&agent).expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("handshake accepted");
    let received = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = oneshot::channel::<()>();
    let sink = received.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut rx => {
                    let _ = ws.close(None).await;
                    // Drain until the server's close arrives.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    }).await;
                    return;
                }
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => sink.lock().expect("lock").push(t.as_str().to_owned()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    });
    Client {
        agent,
        id: String::new(),
        received,
        close: Some(tx),
        task,
    }
}

/// Waits (up to `secs`) until `check` holds.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
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
