//! wsadmin-dynalite: the project's pinned dynalite (a DynamoDB API in
//! Node.js) as a child process on 127.0.0.1. The one launcher: `wsstack
//! local` and every test start it here.
//!
//! [`Home`] is where the pinned dynalite is installed: the checkout (where
//! `scripts/setup` ran `npm ci`) or, for an installed `wsstack`, the user's
//! data directory, installed there on first use from the lock file this
//! crate carries.
//!
//! The child exits when its stdin closes ([`child::PortChild`]): dropping a
//! [`Dynalite`] stops it, and so does our process dying any other way.
//! [`Dynalite::launch`] keeps the tables in memory or in a directory.
//! [`Dynalite::start_persistent`] keeps them on disk on a fixed port, so a
//! test can [`kill`](Dynalite::kill) it (SIGKILL, as a crash) and
//! [`restart`](Dynalite::restart) it where its clients expect it, tables
//! and items intact.
//!
//! [`Dynalite::on_exit`] tells its parent at once when it dies. It runs in
//! its own process group, so a terminal's Ctrl-C reaches only the parent,
//! which stops it last.
//!
//! Knows nothing of our other crates; uses no AWS SDK.

pub mod child;
mod home;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

pub use home::{Home, HomeError};

use crate::child::{ChildError, PortChild};

const HINT: &str = "install Node.js 20, then run scripts/setup";

#[derive(Debug, thiserror::Error)]
pub enum DynaliteError {
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error("install Node.js 20 or newer to run dynalite")]
    NoNode(#[source] ChildError),
    #[error("dynalite did not start")]
    NotStarted(#[source] ChildError),
}

#[derive(Debug)]
pub struct Dynalite {
    /// `None` while killed.
    child: Option<PortChild>,
    port: u16,
    /// Where a persistent instance keeps its tables (LevelDB files).
    path: Option<PathBuf>,
    home: Home,
}

impl Dynalite {
    /// Starts dynalite from `home` on 127.0.0.1 (`port` 0 picks a free
    /// one), with its tables in memory or in `data_dir`, and waits until it
    /// listens.
    pub fn launch(home: &Home, port: u16, data_dir: Option<&Path>) -> Result<Self, DynaliteError> {
        let child = PortChild::try_spawn(home.command(data_dir, Some(port))).map_err(|e| {
            if e.is_missing_program() {
                DynaliteError::NoNode(e)
            } else {
                DynaliteError::NotStarted(e)
            }
        })?;
        Ok(Self {
            port: child.port,
            child: Some(child),
            path: data_dir.map(Path::to_owned),
            home: home.clone(),
        })
    }

    /// For tests: starts the checkout's dynalite in memory on a free port.
    /// Panics with what to do when node or the pinned install is missing.
    pub fn start() -> Self {
        Self::launch(&Home::checkout(), 0, None).unwrap_or_else(|e| panic!("{e} ({HINT})"))
    }

    /// For tests: starts the checkout's dynalite keeping its data in `dir`,
    /// on a free port outside the kernel's ephemeral range: once killed, its
    /// port cannot be taken by some outgoing connection, so a restart gets
    /// it back.
    pub fn start_persistent(dir: &Path) -> Self {
        let range = fixed_port_range();
        let home = Home::checkout();
        let mut last = String::new();
        for _ in 0..20 {
            let port = random_port(&range);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            match Self::launch(&home, port, Some(dir)) {
                Ok(db) => return db,
                Err(e) => last = e.to_string(),
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
            match PortChild::try_spawn(self.home.command(Some(&dir), Some(self.port))) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dynalite did not restart on port {}: {last}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(PortChild::pid)
    }

    /// Runs `f` once the running process exits, however it ends (see
    /// [`PortChild::on_exit`]): how `wsstack local` learns at once that its
    /// DynamoDB died. Nothing runs for a killed instance.
    pub fn on_exit(&self, f: impl FnOnce() + Send + 'static) {
        if let Some(child) = &self.child {
            child.on_exit(f);
        }
    }

    /// How the process ended, once it has (waiting up to `within` after
    /// [`Dynalite::on_exit`] told); `None` while it runs.
    pub fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        self.child.as_mut()?.exit_status(within)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
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
