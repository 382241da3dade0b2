//! `wsstack local` as a process, around what outlives or surrounds it: the
//! state file `wsadmin --context local` reads (one stack per file: a second
//! is refused and the first keeps its entry; one killed leaves it to the
//! next) and the dynalite under it (when it dies, the stack says so and
//! stops, closing its clients, instead of answering every `$connect` with
//! 500).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long a stack may take to stop once it should: a bound on the test,
/// not a measure of it.
const STOP_BOUND: Duration = Duration::from_secs(15);

fn wsstack(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsstack"));
    cmd.env("WSADMIN_LOCAL_STATE", state)
        .env_remove("WSSTACK_PORT")
        .env_remove("RUST_LOG")
        .args(["local", "--port", "0", "--dynamodb-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A `wsstack local` running in the background.
struct Stack {
    child: Child,
    /// Its WebSocket URL, from the banner.
    url: String,
    /// Everything it says on stderr, once it exits.
    stderr: Option<JoinHandle<String>>,
}

/// Reads a stream to its end on a thread.
fn collect(stream: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

/// Starts `wsstack local`: `Ok` once its banner is out, `Err` with its exit
/// status and stderr when it ends without one.
fn try_start(state: &Path) -> Result<Stack, (ExitStatus, String)> {
    let mut child = wsstack(state).spawn().expect("wsstack runs");
    let stderr = collect(child.stderr.take().expect("stderr"));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = stdout.by_ref().map_while(Result::ok).find_map(|l| {
        l.trim()
            .strip_prefix("WebSocket")
            .map(|u| u.trim().to_owned())
    });
    match url {
        Some(url) => {
            // Read the rest, so the banner never meets a closed pipe.
            std::thread::spawn(move || stdout.for_each(drop));
            Ok(Stack {
                child,
                url,
                stderr: Some(stderr),
            })
        }
        None => {
            let status = child.wait().expect("wsstack exits");
            Err((status, stderr.join().expect("stderr")))
        }
    }
}

fn start(state: &Path) -> Stack {
    try_start(state).unwrap_or_else(|(status, err)| panic!("wsstack local: {status}: {err}"))
}

impl Stack {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// Waits for it to exit by itself (killing it past [`STOP_BOUND`], and
    /// failing with `why`): its status and stderr.
    fn exited(mut self, why: &str) -> (ExitStatus, String) {
        let deadline = Instant::now() + STOP_BOUND;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.said();
                panic!("wsstack still ran {STOP_BOUND:?} after {why}; it said: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, self.said())
    }

    /// Its stderr, once it has exited.
    fn said(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }

    /// SIGTERM, as `kill` or a service manager stops it.
    fn stop(self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.exited("SIGTERM")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}: {status}");
}

fn state_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("state file {}: {e}", path.display()));
    serde_json::from_str(&text).expect("state file is JSON")
}

/// The children of process `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .map_while(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // pid (comm) state ppid …: comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = &stat[stat.rfind(')')? + 1..];
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

async fn marko_polo(ws: &mut Ws) {
    ws.send(Message::text("Marko?")).await.expect("send");
    match tokio::time::timeout(STOP_BOUND, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), "Polo!"),
        other => panic!("expected Polo!, got {other:?}"),
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("local-stack.json")
}

#[test]
fn a_second_stack_with_the_same_state_file_is_refused_and_the_first_keeps_its_entry() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state_path(&dir);
    let first = start(&state);
    let entry = state_json(&state);
    assert_eq!(entry["pid"], first.pid(), "{entry}");

    let (status, err) = match try_start(&state) {
        Ok(second) => {
            let url = second.url.clone();
            drop(second);
            panic!("a second stack started ({url}) with the state file of the first");
        }
        Err(refused) => refused,
    };
    assert_eq!(status.code(), Some(1), "{err}");
    let want = format!(
        "wsstack: another `wsstack local` is running (pid {}, {}) and recorded with the state file {}",
        first.pid(),
        first.url,
        state.display()
    );
    assert!(err.contains(&want), "want {want:?} in: {err}");
    assert!(
        err.contains("WSADMIN_LOCAL_STATE"),
        "says what to do: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(state_json(&state), entry, "the first keeps its entry");

    let (status, err) = first.stop();
    assert!(status.success(), "{err}");
    assert!(!state.exists(), "the first removes its own entry on stop");
}

#[test]
fn a_killed_stack_leaves_its_entry_to_the_next() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state_path(&dir);
    let killed = start(&state);
    killed.signal("KILL");
    let (status, _) = killed.exited("SIGKILL");
    assert!(!status.success());
    assert!(state.exists(), "SIGKILL leaves the entry behind");

    let next = start(&state);
    assert_eq!(state_json(&state)["pid"], next.pid());
    assert_eq!(state_json(&state)["websocketUrl"], next.url.as_str());
    let (status, err) = next.stop();
    assert!(status.success(), "{err}");
    assert!(!state.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_dynalite_dies_the_stack_says_so_and_stops() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state_path(&dir);
    let stack = start(&state);
    let (mut ws, _) = tokio_tungstenite::connect_async(stack.url.as_str())
        .await
        .expect("handshake");
    marko_polo(&mut ws).await;

    let dynalite = children(stack.pid());
    assert_eq!(dynalite.len(), 1, "one child, dynalite: {dynalite:?}");
    signal(dynalite[0], "KILL");

    // The client is closed as at any stop: 1001.
    let close = tokio::time::timeout(STOP_BOUND, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the client was not closed {STOP_BOUND:?} after dynalite died"));
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));

    let (status, err) = tokio::task::block_in_place(|| stack.exited("dynalite died (SIGKILL)"));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("wsstack: dynalite, the local DynamoDB on port")
            && err.contains("exited (signal: 9")
            && err.contains("stopping, since no $connect can succeed without it"),
        "says so at once: {err}"
    );
    assert!(
        err.contains("wsstack: stopped because the local DynamoDB exited"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!state.exists(), "its entry goes with it");
}

/// A port already taken: one line, the address, what to do, and the
/// operating system's reason once (the error's chain, printed as `{:#}`).
#[test]
fn a_busy_port_is_one_line_naming_the_cause_once() {
    let dir = tempfile::tempdir().expect("dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_wsstack"))
        .env("WSADMIN_LOCAL_STATE", state_path(&dir))
        .env_remove("RUST_LOG")
        .args(["local", "--port", &port, "--dynamodb-port", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("wsstack runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "wsstack: cannot listen on 127.0.0.1:{port} (is another wsstack running? pick another --port, or 0 for a free one): Address already in use (os error 98)"
        ),
        "{err}"
    );
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    assert!(!state_path(&dir).exists(), "nothing recorded");
}
