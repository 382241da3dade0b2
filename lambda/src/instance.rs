//! One execution environment: a process (and its process group) running a
//! function's runtime, its own Runtime API listener, and the task that
//! copies its output to the log sink, prefixed with the function's name.
//!
//! No orphans: every instance runs in its own process group under a
//! watchdog, a background `sh` subshell in that group that blocks reading a
//! pipe only we hold and kills the whole group (`kill -9 0`) when the pipe
//! closes: when the instance is killed or dropped, when the host stops, and
//! when our process dies any way at all. It must not decide when to kill
//! or which instance runs which event: the pool does.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::LogSink;
use crate::runtime_api::{self, Api, Delivery, HostLine};

/// `sh -c WATCHDOG PROGRAM ARGS...`: keeps the pipe on stdin as fd 3 for a
/// background subshell that kills the process group once it closes, then
/// becomes the runtime (same pid) with stdin on /dev/null.
const WATCHDOG: &str =
    "exec 3<&0 </dev/null; (read _ <&3; kill -9 0) >/dev/null 2>&1 & exec \"$@\" 3<&-";

/// How long a killed group may take to go before its leader is killed
/// directly.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// What to run for one instance.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
}

/// The process side of an instance, shared with the pool's list of live
/// processes so `stop` can reach instances that are busy.
#[derive(Debug)]
pub(crate) struct Process {
    pub pid: u32,
    /// The watchdog's pipe: dropping it kills the group.
    pipe: Mutex<Option<ChildStdin>>,
    /// How it exited (`exit status 1`, `signal: 9`), once it has.
    exit: watch::Receiver<Option<String>>,
    /// Kills the leader directly, if the watchdog is gone.
    force: Mutex<Option<oneshot::Sender<()>>>,
}

impl Process {
    /// Kills the process group (without waiting).
    pub(crate) fn kill(&self) {
        drop(self.pipe.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// Kills the process group and waits until its leader is reaped.
    pub(crate) async fn kill_and_wait(&self) {
        self.kill();
        let mut exit = self.exit.clone();
        if tokio::time::timeout(KILL_GRACE, exit.wait_for(Option::is_some))
            .await
            .is_err()
        {
            if let Some(force) = self.force.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = force.send(());
            }
            let _ = exit.wait_for(Option::is_some).await;
        }
    }

    pub(crate) fn exit(&self) -> watch::Receiver<Option<String>> {
        self.exit.clone()
    }

    pub(crate) fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Peak resident memory of the leader (`VmHWM`, kB).
    pub(crate) fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        crate::report::peak_rss_kb(&status)
    }
}

/// A running instance. Dropping it kills its processes.
#[derive(Debug)]
pub(crate) struct Instance {
    pub process: Arc<Process>,
    pub api: Arc<Api>,
    events: mpsc::Sender<Delivery>,
    /// Host lines (`END`, `REPORT`), written in order with the output.
    log: mpsc::UnboundedSender<HostLine>,
    server: JoinHandle<()>,
    pub spawned: Instant,
    /// Whether it has taken an event before (its init is behind it).
    pub warm: bool,
}

impl Instance {
    /// Binds its listener and starts the process; `env` is its whole
    /// environment but `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) async fn spawn(
        launch: &Launch,
        mut env: BTreeMap<String, String>,
        arn: String,
        function: &str,
        sink: LogSink,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}"));
        let (log, log_rx) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::channel(1);
        let api = Arc::new(Api::new(events_rx, log.clone(), arn));
        let server = runtime_api::serve(listener, api.clone());

        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&launch.program)
            .args(&launch.args)
            .env_clear()
            .envs(&env)
            .current_dir(&launch.cwd)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        let pid = child.id().unwrap_or(0);
        let pipe = child.stdin.take();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        tokio::spawn(copy_logs(
            format!("[{function}] "),
            stdout,
            stderr,
            log_rx,
            sink,
        ));
        let (exit_tx, exit) = watch::channel(None);
        let (force, forced) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = forced => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let said = status.map_or_else(|e| format!("unknown ({e})"), describe);
            exit_tx.send_replace(Some(said));
        });
        Ok(Self {
            process: Arc::new(Process {
                pid,
                pipe: Mutex::new(pipe),
                exit,
                force: Mutex::new(Some(force)),
            }),
            api,
            events,
            log,
            server,
            spawned,
            warm: false,
        })
    }

    /// Hands an event to the runtime (taken by its next `next`).
    pub(crate) fn deliver(&self, delivery: Delivery) -> bool {
        self.events.try_send(delivery).is_ok()
    }

    /// A line of the function's log, after what it printed so far.
    pub(crate) fn log(&self, line: String) {
        let _ = self.log.send(HostLine {
            text: line,
            after_output: true,
        });
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.process.kill();
        self.server.abort();
    }
}

/// As Lambda says it: `exit status 1`, `signal: killed`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".into(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Copies the instance's output to the sink line by line, prefixed; a host
/// line that follows output waits until the output already in the pipes
/// has been copied (until they are quiet for 2 ms).
async fn copy_logs(
    prefix: String,
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    mut host: mpsc::UnboundedReceiver<HostLine>,
    sink: LogSink,
) {
    let mut out = Stream::new(stdout);
    let mut err = Stream::new(stderr);
    let mut host_open = true;
    let emit = |line: &str| sink.line(format!("{prefix}{line}"));
    while out.open || err.open || host_open {
        tokio::select! {
            biased;
            line = out.line(), if out.open => if let Some(l) = line { emit(&l) },
            line = err.line(), if err.open => if let Some(l) = line { emit(&l) },
            msg = host.recv(), if host_open => match msg {
                Some(msg) => {
                    // What the runtime wrote before it answered is in the
                    // pipes already: copy it first.
                    if msg.after_output {
                        drain(&mut out, &mut err, &emit).await;
                    }
                    emit(&msg.text);
                }
                None => host_open = false,
            },
        }
    }
}

/// Copies what is in the pipes now, until they are quiet for 2 ms.
async fn drain<A: AsyncRead + Unpin, B: AsyncRead + Unpin>(
    out: &mut Stream<A>,
    err: &mut Stream<B>,
    emit: &impl Fn(&str),
) {
    loop {
        tokio::select! {
            biased;
            line = out.line(), if out.open => if let Some(l) = line { emit(&l) },
            line = err.line(), if err.open => if let Some(l) = line { emit(&l) },
            () = tokio::time::sleep(Duration::from_millis(2)) => break,
        }
    }
}

/// One of the instance's output pipes, read line by line (a partial line
/// stays in `buf` across cancelled reads).
struct Stream<R> {
    reader: Option<BufReader<R>>,
    buf: Vec<u8>,
    open: bool,
}

impl<R: AsyncRead + Unpin> Stream<R> {
    fn new(reader: Option<R>) -> Self {
        Self {
            open: reader.is_some(),
            reader: reader.map(BufReader::new),
            buf: Vec::new(),
        }
    }

    /// The next whole line; `None` (and closed) at the end.
    async fn line(&mut self) -> Option<String> {
        let reader = self.reader.as_mut()?;
        let n = reader.read_until(b'\n', &mut self.buf).await.unwrap_or(0);
        if n == 0 && self.buf.is_empty() {
            self.open = false;
            return None;
        }
        if n == 0 {
            self.open = false;
        }
        let line = String::from_utf8_lossy(&self.buf)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        self.buf.clear();
        Some(line)
    }
}
