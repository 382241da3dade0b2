//! A real dynalite process on 127.0.0.1.
//!
//! Started through `scripts/dynalite-server.js`, which exits when its stdin
//! closes: dropping the fixture stops it, and so does the test process dying
//! any other way. Nothing is left running.
//!
//! [`Dynalite::start`] keeps its tables in memory on a port the OS picked.
//! [`Dynalite::start_persistent`] keeps them on disk on a fixed port, so a
//! test can [`kill`](Dynalite::kill) it (SIGKILL, as a crash) and
//! [`restart`](Dynalite::restart) it where its clients expect it, tables
//! and items intact.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::child::PortChild;

const HINT: &str = "install Node.js 20, then run scripts/setup";

#[derive(Debug)]
pub struct Dynalite {
    /// `None` while killed.
    child: Option<PortChild>,
    port: u16,
    /// Where a persistent instance keeps its tables (LevelDB files).
    path: Option<PathBuf>,
}

impl Dynalite {
    /// Starts dynalite and waits until it listens. Panics with what to do
    /// when node or the pinned install is missing.
    pub fn start() -> Self {
        let child = PortChild::spawn(command(None, None), HINT);
        Self {
            port: child.port,
            child: Some(child),
            path: None,
        }
    }

    /// Starts dynalite keeping its data in `dir`, on a free port outside the
    /// kernel's ephemeral range: once killed, its port cannot be taken by
    /// some outgoing connection, so a restart gets it back.
    pub fn start_persistent(dir: &Path) -> Self {
        let range = fixed_port_range();
        let mut last = String::new();
        for _ in 0..20 {
            let port = random_port(&range);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            match PortChild::try_spawn(command(Some(dir), Some(port))) {
                Ok(child) => {
                    return Self {
                        port: child.port,
                        child: Some(child),
                        path: Some(dir.to_owned()),
                    };
                }
                Err(e) => last = e,
            }
        }
        panic!("dynalite found no free port in {range:?}: {last} ({HINT})")
    }

    /// Kills the process (SIGKILL: no chance to flush or say goodbye) and
    /// waits for it to exit. Clients now find nothing listening.
    pub fn kill(&mut self) {
        // Dropping the child kills it and reaps it.
        self.child = None;
    }

    /// Stops the process (SIGSTOP) without killing it: its port still
    /// accepts connections (the kernel's backlog) but nothing is answered,
    /// as with a DynamoDB that stalls. [`Dynalite::resume`] undoes it.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Continues a [`Dynalite::pause`]d process (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("dynalite is running");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill -{name}: {e}"));
        assert!(status.success(), "kill -{name} {}: {status}", child.pid());
    }

    /// Whether it is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it again on the same port with the same data (killing it
    /// first if it runs) and waits until it listens. Panics for an
    /// in-memory instance, whose data died with it.
    pub fn restart(&mut self) {
        let dir = self
            .path
            .clone()
            .expect("only a persistent dynalite (start_persistent) can be restarted");
        self.kill();
        // The old process's sockets may linger a moment (TIME_WAIT is fine:
        // node listens with SO_REUSEADDR); retry briefly for anything else.
        let mut last = String::new();
        for _ in 0..50 {
            match PortChild::try_spawn(command(Some(&dir), Some(self.port))) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dynalite did not restart on port {}: {last}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Test SDK configuration pointing DynamoDB here.
    pub fn sdk_config(&self) -> SdkConfig {
        crate::sdk_config(Some(&self.endpoint()))
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    /// Creates a table with a string hash key, as the stack does.
    pub async fn create_table(&self, name: &str, key: &str) {
        self.client()
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
    }
}

fn command(path: Option<&Path>, port: Option<u16>) -> Command {
    let root = crate::repo_root();
    let mut cmd = Command::new("node");
    cmd.arg(root.join("scripts").join("dynalite-server.js"))
        .current_dir(&root);
    if let Some(path) = path {
        cmd.arg("--path").arg(path);
    }
    if let Some(port) = port {
        cmd.arg("--port").arg(port.to_string());
    }
    cmd
}

/// Ports below the kernel's ephemeral range (`ip_local_port_range`), where
/// outgoing connections never take their local port.
fn fixed_port_range() -> Range<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    10_000..low.max(10_001)
}

/// A random port in `range` (std's hasher keys are random per process and
/// differ on every call).
fn random_port(range: &Range<u16>) -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let x = RandomState::new().hash_one(range.start);
    let span = u64::from(range.end - range.start);
    range.start + (x % span) as u16
}
