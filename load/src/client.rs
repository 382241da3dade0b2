//! One client: its handshake, the task that owns its socket, and its log
//! (when it connected, what it received and when, how it ended).
//!
//! The task is the only owner of the socket; the fleet talks to it through
//! a command channel (send, leave) and a shared stop signal. A client made
//! never to read never polls its socket, so what the server sends piles up
//! in the kernel's buffers and then in the server's queue.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::now_ms;
use crate::tag::Tag;
use crate::target::Target;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// A never-read client's receive buffer: small, so the server's side backs
/// up after little data rather than after the kernel's megabytes.
const NEVER_READ_RECV_BUFFER: u32 = 4 * 1024;
/// How long a clean close waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Untagged messages keep at most this many bytes of their text.
const TEXT_KEPT: usize = 256;

/// Everything known about one client, as a snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientLog {
    /// Its number in the fleet, from 0; churn's newcomers get fresh ones.
    pub index: usize,
    /// `wsload/<run>/<index>`: how a test finds its record in the registry.
    pub user_agent: String,
    /// Made never to read its socket.
    pub never_reads: bool,
    /// When the handshake completed (epoch ms): `$connect` had run.
    pub connected_at_ms: u64,
    /// `None` while it is open.
    pub closed: Option<Closed>,
    pub received: Vec<Received>,
    /// Messages it sent (the `send` mode).
    pub sent: u64,
}

impl ClientLog {
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// Connected at or before `from_ms` and not closed before `to_ms`.
    pub fn open_throughout(&self, from_ms: u64, to_ms: u64) -> bool {
        self.connected_at_ms <= from_ms && self.closed.as_ref().is_none_or(|c| c.at_ms >= to_ms)
    }
}

/// One message a client received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    /// When it was read off the socket (epoch ms).
    pub at_ms: u64,
    /// Its size in bytes.
    pub len: usize,
    pub tag: Option<Tag>,
    /// For an untagged message, its first 256 bytes (error frames, route
    /// responses); `None` for a tagged one, to keep big fleets small.
    pub text: Option<String>,
}

/// How and when a client ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    /// When it started closing, or noticed the server had (epoch ms).
    pub at_ms: u64,
    pub how: CloseHow,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CloseHow {
    /// It sent a close frame (1000).
    Clean,
    /// It dropped its TCP socket without a close frame.
    Dropped,
    /// The server closed it; `code` is `None` without a close frame.
    ByServer { code: Option<u16>, reason: String },
    /// Its socket failed.
    Failed { error: String },
}

/// How a client is told to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// With a close frame, waiting (briefly) for the server's.
    Close,
    /// Dropping the TCP socket, no close frame: a vanished client.
    Drop,
}

#[derive(Debug)]
pub(crate) enum Command {
    Send(String),
}

/// What every client of a fleet shares: shared for live summaries, and
/// the limit on clean closes in flight.
#[derive(Debug)]
pub(crate) struct Shared {
    pub open: AtomicUsize,
    pub received: AtomicU64,
    /// Clean closes in flight. Closing thousands at once would make the
    /// stack run as many `$disconnect`s at once: beyond its Lambda
    /// concurrency they are throttled and records are left behind.
    closing: Semaphore,
}

impl Shared {
    pub fn new(concurrency: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            closing: Semaphore::new(concurrency),
        }
    }
}

/// A client as the fleet holds it: its log, and the way to reach its task.
#[derive(Debug)]
pub(crate) struct Slot {
    pub index: usize,
    pub never_reads: bool,
    log: Mutex<ClientLog>,
    commands: mpsc::Sender<Command>,
    /// Taken when the client is told to leave: churn does not pick it again.
    leave: Mutex<Option<oneshot::Sender<Leave>>>,
}

impl Slot {
    pub fn log(&self) -> MutexGuard<'_, ClientLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> ClientLog {
        self.log().clone()
    }

    pub fn is_open(&self) -> bool {
        self.log().is_open()
    }

    /// Queues a command; false when the client's task has ended.
    pub async fn command(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Tells the client to leave; false when it had already been told, or
    /// its task has ended.
    pub fn leave(&self, how: Leave) -> bool {
        let tx = self
            .leave
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        tx.is_some_and(|tx| tx.send(how).is_ok())
    }

    /// Told to leave and not closed yet (its task has yet to take the
    /// order, or a clean close waits its turn).
    pub fn is_leaving(&self) -> bool {
        self.leave
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
            && self.is_open()
    }

    /// Open and not told to leave.
    pub fn is_staying(&self) -> bool {
        self.leave
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
            && self.is_open()
    }

    fn record(&self, text: &str, shared: &Shared) {
        let tag = Tag::find(text);
        let received = Received {
            at_ms: now_ms(),
            len: text.len(),
            text: tag.is_none().then(|| head(text, TEXT_KEPT).to_owned()),
            tag,
        };
        self.log().received.push(received);
        shared.received.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&self, how: CloseHow) {
        let mut log = self.log();
        if log.closed.is_none() {
            log.closed = Some(Closed {
                at_ms: now_ms(),
                how,
            });
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What a new client is: its number, its URL (with meta) and user agent,
/// and where it connects from.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub index: usize,
    pub url: String,
    pub user_agent: String,
    pub source: Option<SocketAddr>,
    pub never_reads: bool,
}

/// Connects and completes the handshake within `timeout`. The error is a
/// sentence for [`crate::LoadError::Connect`].
pub(crate) async fn connect(target: &Target, spec: &Spec, timeout: Duration) -> Result<Ws, String> {
    let attempt = async {
        let socket = if target.addr().is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(io_reason)?;
        if let Some(source) = spec.source {
            socket.bind(source).map_err(|e| {
                format!(
                    "cannot bind source address {}: {}",
                    source.ip(),
                    io_reason(e)
                )
            })?;
        }
        if spec.never_reads {
            socket
                .set_recv_buffer_size(NEVER_READ_RECV_BUFFER)
                .map_err(io_reason)?;
        }
        let stream = socket.connect(target.addr()).await.map_err(io_reason)?;
        stream.set_nodelay(true).map_err(io_reason)?;
        let mut req = spec
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let agent = HeaderValue::from_str(&spec.user_agent).map_err(|e| e.to_string())?;
        req.headers_mut().insert("User-Agent", agent);
        // A small initial read buffer: a fleet of idle clients stays cheap.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
        Ok(ws)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no handshake within {timeout:?}")),
    }
}

fn io_reason(e: std::io::Error) -> String {
    match e.raw_os_error() {
        Some(24) => format!("{e} (raise the open-file limit: ulimit -n)"),
        Some(99) => format!("{e} (out of local ports: use fewer clients)"),
        Some(111) => format!("{e} (is the stack running? start it with `wsstack local`)"),
        _ => e.to_string(),
    }
}

/// Starts the task that owns `ws`; returns the client's slot.
pub(crate) fn start(
    ws: Ws,
    spec: Spec,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Arc<Slot> {
    let (tx, rx) = mpsc::channel(64);
    let (leave_tx, leave_rx) = oneshot::channel();
    let slot = Arc::new(Slot {
        index: spec.index,
        never_reads: spec.never_reads,
        log: Mutex::new(ClientLog {
            index: spec.index,
            user_agent: spec.user_agent,
            never_reads: spec.never_reads,
            connected_at_ms: now_ms(),
            closed: None,
            received: Vec::new(),
            sent: 0,
        }),
        commands: tx,
        leave: Mutex::new(Some(leave_tx)),
    });
    shared.open.fetch_add(1, Ordering::Relaxed);
    tasks.spawn(drive(ws, slot.clone(), rx, leave_rx, shared, stop));
    slot
}

/// The client's life: read (unless it never reads), obey commands, close
/// cleanly when the fleet stops.
async fn drive(
    mut ws: Ws,
    slot: Arc<Slot>,
    mut commands: mpsc::Receiver<Command>,
    mut leave: oneshot::Receiver<Leave>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let reads = !slot.never_reads;
    loop {
        tokio::select! {
            msg = ws.next(), if reads => match msg {
                Some(Ok(Message::Text(text))) => slot.record(text.as_str(), &shared),
                Some(Ok(Message::Binary(data))) => {
                    slot.record(&String::from_utf8_lossy(&data), &shared);
                }
                Some(Ok(Message::Close(frame))) => {
                    slot.close(CloseHow::ByServer {
                        code: frame.as_ref().map(|f| f.code.into()),
                        reason: frame.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                    });
                    // Answer the close (tungstenite queued the reply).
                    let _ = tokio::time::timeout(CLOSE_WAIT, ws.flush()).await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    slot.close(CloseHow::Failed { error: e.to_string() });
                    break;
                }
                None => {
                    slot.close(CloseHow::ByServer { code: None, reason: String::new() });
                    break;
                }
            },
            Some(Command::Send(text)) = commands.recv() => {
                if let Err(e) = ws.send(Message::text(text)).await {
                    slot.close(CloseHow::Failed { error: e.to_string() });
                    break;
                }
                slot.log().sent += 1;
            }
            how = &mut leave => match how {
                Ok(Leave::Drop) => {
                    slot.close(CloseHow::Dropped);
                    break;
                }
                Ok(Leave::Close) | Err(_) => {
                    close(&mut ws, &slot, &shared).await;
                    break;
                }
            },
            _ = stop.cancelled() => {
                close(&mut ws, &slot, &shared).await;
                break;
            }
        }
    }
    drop(ws);
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

/// Sends a close frame and, for a reading client, waits briefly for the
/// server's, recording what arrives meanwhile; at most the fleet's
/// concurrency of clients do so at once.
async fn close(ws: &mut Ws, slot: &Slot, shared: &Shared) {
    // The semaphore is never closed; without a permit, close anyway.
    let _permit = shared.closing.acquire().await.ok();
    slot.close(CloseHow::Clean);
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if ws.close(None).await.is_err() || slot.never_reads {
            return;
        }
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(text) => slot.record(text.as_str(), shared),
                Message::Binary(data) => slot.record(&String::from_utf8_lossy(&data), shared),
                _ => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_cuts_on_a_character_boundary() {
        assert_eq!(head("abc", 5), "abc");
        assert_eq!(head("abcdef", 3), "abc");
        assert_eq!(head("ééé", 3), "é");
    }

    #[test]
    fn open_throughout_is_inclusive_at_both_ends() {
        let mut log = ClientLog {
            index: 0,
            user_agent: "ua".into(),
            never_reads: false,
            connected_at_ms: 100,
            closed: None,
            received: vec![],
            sent: 0,
        };
        assert!(log.open_throughout(100, 1_000));
        assert!(!log.open_throughout(99, 1_000));
        log.closed = Some(Closed {
            at_ms: 200,
            how: CloseHow::Dropped,
        });
        assert!(log.open_throughout(150, 200));
        assert!(!log.open_throughout(150, 201));
    }
}
