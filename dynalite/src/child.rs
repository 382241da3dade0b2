//! A helper server run as a child process that prints `{"port": N}` once it
//! listens and exits when its stdin closes (dynalite's launcher and the test
//! servers in `scripts/` do both). Dropping the handle stops it; so does our
//! process dying any way at all, since its stdin then closes.
//!
//! Its standard output is read to its end, which comes when the child
//! exits: [`PortChild::on_exit`] tells a parent that outlives it at once.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a child may take to say its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct PortChild {
    child: Child,
    /// Held open: its closing tells the server to exit.
    _stdin: ChildStdin,
    pub port: u16,
    /// Whether its output ended, and who to tell when it does.
    exit: Arc<Mutex<ExitWatch>>,
}

/// What runs when a child's output ends.
type OnExit = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct ExitWatch {
    ended: bool,
    waiting: Vec<OnExit>,
}

impl std::fmt::Debug for ExitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitWatch")
            .field("ended", &self.ended)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl ExitWatch {
    /// The child's output ended: runs (outside the lock) what waited.
    fn end(watch: &Mutex<ExitWatch>) {
        let waiting = {
            let mut w = watch.lock().unwrap_or_else(|p| p.into_inner());
            w.ended = true;
            std::mem::take(&mut w.waiting)
        };
        for f in waiting {
            f();
        }
    }
}

/// Why a child did not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot run {program}")]
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
        // Read on a thread, so a child that never speaks cannot hang us;
        // then to the end, which comes when the child exits.
        let (tx, rx) = mpsc::channel();
        let exit = Arc::new(Mutex::new(ExitWatch::default()));
        let watch = exit.clone();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            let mut rest = Vec::new();
            while stdout.read_until(b'\n', &mut rest).is_ok_and(|n| n > 0) {
                rest.clear();
            }
            ExitWatch::end(&watch);
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
                exit,
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

    /// Runs `f` once the child has exited (its output ended), whether it
    /// died or was stopped by dropping this handle: on the thread that
    /// reads its output, or at once on this one if it already has.
    pub fn on_exit(&self, f: impl FnOnce() + Send + 'static) {
        let mut w = self.exit.lock().unwrap_or_else(|p| p.into_inner());
        if w.ended {
            drop(w);
            f();
        } else {
            w.waiting.push(Box::new(f));
        }
    }

    /// How it ended, once it has (waiting up to `within` for the exit its
    /// closed output announced); `None` while it runs.
    pub fn exit_status(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
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
