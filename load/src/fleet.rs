//! A fleet of clients against one loopback URL: opening them with bounded
//! handshake concurrency, finding them, driving them, reporting on them,
//! and stopping them. Every task a fleet starts (client sockets, churn, its
//! deadline) lives in its one `JoinSet`: [`Fleet::close`] ends them cleanly,
//! dropping the fleet aborts them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{self, ClientLog, Command, Leave, Shared, Slot, Spec};
use crate::report::{MessageReport, Report, report};
use crate::tag::{Tag, random_run, valid_run};
use crate::target::Target;
use crate::{LoadError, MAX_CLIENTS, now_ms};

/// Handshakes in flight at once, by default: the local stack connects
/// fastest at 16 to 32.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// A fleet closes itself this long after it opened, by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// What to open. Build with [`FleetConfig::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// A `ws://` URL on a loopback address.
    pub url: String,
    /// Clients to open (and, when churning, to keep open).
    pub clients: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Query-string parameters each client adds; `{i}` in a value becomes
    /// the client's number (`user=c{i}`).
    pub meta: Vec<(String, String)>,
    /// Names the run in user agents (`wsload/<run>/<index>`) and tags.
    pub run: String,
    /// Clients 0 to `never_read - 1` never read their socket.
    pub never_read: usize,
    /// Loopback source addresses (127.0.0.1, .2, ...) the clients are
    /// spread over, in turn; 0 for as many as they need for local ports
    /// (one per 20,000 clients). More makes their `sourceIp` differ.
    pub source_addresses: usize,
    /// The fleet closes every client this long after it opened, whatever
    /// else happens: no run outlives its budget.
    pub deadline: Duration,
    /// One handshake's limit.
    pub handshake_timeout: Duration,
}

impl FleetConfig {
    /// `clients` clients to `url`, a fresh run name, the defaults.
    pub fn new(url: impl Into<String>, clients: usize) -> Self {
        Self {
            url: url.into(),
            clients,
            concurrency: DEFAULT_CONCURRENCY,
            meta: Vec::new(),
            run: random_run(),
            never_read: 0,
            source_addresses: 0,
            deadline: DEFAULT_DEADLINE,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// Checks everything that can be checked without a socket.
    pub fn validate(&self) -> Result<Target, LoadError> {
        let target = Target::parse(&self.url)?;
        if self.clients == 0 {
            return Err(LoadError::NoClients);
        }
        if self.clients > MAX_CLIENTS {
            return Err(LoadError::TooManyClients {
                requested: self.clients,
                max: MAX_CLIENTS,
            });
        }
        target.sources_for(self.clients, self.source_addresses)?;
        if self.never_read > self.clients {
            return Err(LoadError::NeverRead {
                never_read: self.never_read,
                clients: self.clients,
            });
        }
        if self.concurrency == 0 {
            return Err(LoadError::NoConcurrency);
        }
        if self.deadline.is_zero() {
            return Err(LoadError::ZeroDuration {
                name: "the deadline",
            });
        }
        if self.handshake_timeout.is_zero() {
            return Err(LoadError::ZeroDuration {
                name: "the handshake timeout",
            });
        }
        if !valid_run(&self.run) {
            return Err(LoadError::Run {
                input: self.run.clone(),
            });
        }
        if let Some((key, _)) = self.meta.iter().find(|(k, _)| k.is_empty()) {
            return Err(LoadError::Meta {
                input: format!("{key}="),
                reason: "the key is empty",
            });
        }
        Ok(target)
    }
}

/// Live figures, cheap to read every second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetStats {
    /// Clients that completed their handshake so far.
    pub opened: usize,
    pub open: usize,
    /// Messages received by all clients.
    pub received: u64,
}

/// N real WebSocket clients. See the crate documentation.
#[derive(Debug)]
pub struct Fleet {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: FleetConfig,
    pub target: Target,
    /// Loopback source addresses the clients are spread over.
    sources: usize,
    pub deadline: Instant,
    /// Every client that completed its handshake, by number.
    slots: Mutex<BTreeMap<usize, Arc<Slot>>>,
    shared: Arc<Shared>,
    /// Cancelled at the deadline or by `close`: clients close, churn stops.
    pub stop: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
    handshakes: Arc<Semaphore>,
    next_index: AtomicUsize,
}

impl Fleet {
    /// Validates `config`, opens its clients (at most `concurrency`
    /// handshakes at once) and returns once all are open. If one cannot
    /// connect, the others are closed and the error names it.
    pub async fn open(config: FleetConfig) -> Result<Self, LoadError> {
        let target = config.validate()?;
        let sources = target.sources_for(config.clients, config.source_addresses)?;
        let inner = Arc::new(Inner {
            deadline: Instant::now() + config.deadline,
            handshakes: Arc::new(Semaphore::new(config.concurrency)),
            shared: Arc::new(Shared::new(config.concurrency)),
            next_index: AtomicUsize::new(config.clients),
            config,
            target,
            sources,
            slots: Mutex::new(BTreeMap::new()),
            stop: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
        });
        let fleet = Fleet {
            inner: inner.clone(),
        };
        let (stop, deadline) = (inner.stop.clone(), inner.deadline);
        inner.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => stop.cancel(),
                _ = stop.cancelled() => {}
            }
        });
        let never_read = inner.config.never_read;
        let mut opening = futures::stream::iter(0..inner.config.clients)
            .map(|i| inner.open_one(i, i < never_read))
            .buffer_unordered(inner.config.concurrency);
        while let Some(result) = opening.next().await {
            if let Err(e) = result {
                drop(opening);
                fleet.close().await;
                return Err(e);
            }
        }
        drop(opening);
        Ok(fleet)
    }

    pub fn run(&self) -> &str {
        &self.inner.config.run
    }

    pub fn config(&self) -> &FleetConfig {
        &self.inner.config
    }

    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// `wsload/<run>/<index>`, the User-Agent of client `index` of `run`.
    pub fn user_agent_for(run: &str, index: usize) -> String {
        format!("wsload/{run}/{index}")
    }

    pub fn stats(&self) -> FleetStats {
        FleetStats {
            opened: self.inner.slots().len(),
            open: self.inner.shared.open.load(Ordering::Relaxed),
            received: self.inner.shared.received.load(Ordering::Relaxed),
        }
    }

    /// Every client that opened, by number, open or not.
    pub fn clients(&self) -> Vec<ClientLog> {
        self.inner
            .slot_list()
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    pub fn client(&self, index: usize) -> Option<ClientLog> {
        self.inner.slots().get(&index).map(|s| s.snapshot())
    }

    /// The clients open now, by number (compare with the registry through
    /// their user agents).
    pub fn open_clients(&self) -> Vec<ClientLog> {
        self.clients().into_iter().filter(|c| c.is_open()).collect()
    }

    /// The numbers of the clients connected at or before `from_ms` and not
    /// closed before `to_ms` (epoch ms).
    pub fn connected_throughout(&self, from_ms: u64, to_ms: u64) -> Vec<usize> {
        self.inner
            .slot_list()
            .iter()
            .filter(|s| s.log().open_throughout(from_ms, to_ms))
            .map(|s| s.index)
            .collect()
    }

    /// Sends a text message from client `index`.
    pub async fn send(&self, index: usize, text: impl Into<String>) -> Result<(), LoadError> {
        let slot = self.inner.slot(index)?;
        if !slot.is_open() || !slot.command(Command::Send(text.into())).await {
            return Err(LoadError::ClientClosed { index });
        }
        Ok(())
    }

    /// Makes client `index` leave, with a close frame or by dropping its
    /// socket. Returns once it is told, not once it is gone.
    pub fn leave(&self, index: usize, how: Leave) -> Result<(), LoadError> {
        if self.inner.slot(index)?.leave(how) {
            Ok(())
        } else {
            Err(LoadError::ClientClosed { index })
        }
    }

    /// Completeness and latency of the tagged messages received so far,
    /// plus `expected` ones; see [`crate::report()`].
    pub fn report(&self, expected: &[Tag], settle: Duration) -> Report {
        report(&self.clients(), expected, settle, now_ms())
    }

    /// One message's fate once it has arrived: waits (up to `within`) until
    /// every reading client has it, then `settle` more for any copy that
    /// would arrive twice. `None` if someone still lacks it by then.
    pub async fn settled(
        &self,
        tag: &Tag,
        within: Duration,
        settle: Duration,
    ) -> Option<MessageReport> {
        let tags = std::slice::from_ref(tag);
        if !self.wait_received(tags, within).await {
            return None;
        }
        tokio::time::sleep(settle).await;
        self.report(tags, settle).message(tag).cloned()
    }

    /// Waits until every open client that reads has received each of
    /// `tags` at least once, or `within` passes. True if they all did.
    pub async fn wait_received(&self, tags: &[Tag], within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            let all = self.inner.slot_list().iter().all(|s| {
                let log = s.log();
                s.never_reads
                    || !log.is_open()
                    || tags
                        .iter()
                        .all(|t| log.received.iter().any(|r| r.tag.as_ref() == Some(t)))
            });
            if all {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resolves when the fleet stops: its deadline passed or it was closed.
    pub async fn stopped(&self) {
        self.inner.stop.cancelled().await;
    }

    /// Closes every client cleanly (close frames), stops churn and waits
    /// (briefly) for every task to end. The logs stay readable.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        loop {
            let mut tasks = std::mem::take(&mut *self.inner.tasks());
            if tasks.is_empty() {
                return;
            }
            // Closes go `concurrency` at a time: allow a millisecond each.
            let bound = Duration::from_secs(5) + Duration::from_millis(tasks.len() as u64);
            let joined =
                tokio::time::timeout(bound, async { while tasks.join_next().await.is_some() {} })
                    .await;
            if joined.is_err() {
                tasks.abort_all();
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.inner.stop.cancel();
        self.inner.tasks().abort_all();
    }
}

impl Inner {
    fn tasks(&self) -> MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<usize, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn slot_list(&self) -> Vec<Arc<Slot>> {
        self.slots().values().cloned().collect()
    }

    fn slot(&self, index: usize) -> Result<Arc<Slot>, LoadError> {
        self.slots()
            .get(&index)
            .cloned()
            .ok_or(LoadError::NoSuchClient { index })
    }

    /// The next number for a client that joins later (churn).
    pub(crate) fn next_index(&self) -> usize {
        self.next_index.fetch_add(1, Ordering::Relaxed)
    }

    /// Forgets the tasks that have ended (churn leaves many).
    pub(crate) fn reap(&self) {
        let mut tasks = self.tasks();
        while tasks.try_join_next().is_some() {}
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks().spawn(task);
    }

    /// Opens client `index` under the handshake limit and starts its task.
    pub(crate) async fn open_one(
        &self,
        index: usize,
        never_reads: bool,
    ) -> Result<Arc<Slot>, LoadError> {
        let spec = Spec {
            index,
            url: self.target.url_with_meta(&self.config.meta, index),
            user_agent: Fleet::user_agent_for(&self.config.run, index),
            source: self.target.source(index, self.sources),
            never_reads,
        };
        let _permit = self
            .handshakes
            .acquire()
            .await
            .map_err(|_| LoadError::FleetClosed)?;
        if self.stop.is_cancelled() {
            return Err(LoadError::FleetClosed);
        }
        let ws = client::connect(&self.target, &spec, self.config.handshake_timeout)
            .await
            .map_err(|reason| LoadError::Connect {
                index,
                url: spec.url.clone(),
                reason,
            })?;
        let slot = client::start(
            ws,
            spec,
            self.shared.clone(),
            self.stop.clone(),
            &mut self.tasks(),
        );
        self.slots().insert(index, slot.clone());
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(config: FleetConfig) -> String {
        config.validate().expect_err("invalid").to_string()
    }

    #[test]
    fn bad_configs_are_refused_before_any_socket() {
        let url = "ws://127.0.0.1:9/dev";
        assert!(FleetConfig::new(url, 1).validate().is_ok());
        assert!(err(FleetConfig::new(url, 0)).contains("at least 1"));
        assert!(err(FleetConfig::new(url, MAX_CLIENTS + 1)).contains("60001 clients is too many"));
        assert!(err(FleetConfig::new("ws://10.1.1.1/dev", 1)).contains("not a loopback"));
        assert!(
            err(FleetConfig {
                never_read: 3,
                ..FleetConfig::new(url, 2)
            })
            .contains("3 never-read clients")
        );
        assert!(
            err(FleetConfig {
                concurrency: 0,
                ..FleetConfig::new(url, 2)
            })
            .contains("concurrency")
        );
        assert!(
            err(FleetConfig {
                deadline: Duration::ZERO,
                ..FleetConfig::new(url, 2)
            })
            .contains("deadline")
        );
        assert!(
            err(FleetConfig {
                run: "a/b".into(),
                ..FleetConfig::new(url, 2)
            })
            .contains("run tag")
        );
        assert!(err(FleetConfig::new("ws://[::1]:9/dev", 30_000)).contains("IPv6"));
    }
}
