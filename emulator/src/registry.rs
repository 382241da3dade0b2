//! The live connections: id to handle. A handle carries what GetConnection
//! reports, the bounded outbound queue, and the trigger that closes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// DeleteConnection.
    Deleted,
    IdleTimeout,
    MaxDuration,
    Shutdown,
}

/// Bookkeeping added to each queued message, so floods of tiny messages are
/// bounded too.
const PER_MESSAGE_OVERHEAD: usize = 64;

/// What `$connect`'s authorization established for a connection: every
/// later event carries it.
#[derive(Debug, Clone, Default)]
pub struct Granted {
    /// `requestContext.authorizer` (a REQUEST authorizer's `principalId`
    /// and `context`).
    pub authorizer: Option<serde_json::Value>,
    /// IAM fields of `requestContext.identity`.
    pub caller: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug)]
pub struct Conn {
    pub id: String,
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub granted: Granted,
    last_active_ms: AtomicI64,
    queued_bytes: AtomicUsize,
    queue_limit: usize,
    outbound: mpsc::UnboundedSender<Bytes>,
    close: Mutex<Option<oneshot::Sender<CloseCause>>>,
}

/// The queue was full: the client reads slower than it is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The receiving ends a connection's task owns.
#[derive(Debug)]
pub struct ConnEnds {
    pub outbound: mpsc::UnboundedReceiver<Bytes>,
    pub close: oneshot::Receiver<CloseCause>,
}

impl Conn {
    pub fn new(
        id: String,
        connected_at_ms: i64,
        source_ip: String,
        user_agent: Option<String>,
        granted: Granted,
        queue_limit: usize,
    ) -> (Arc<Self>, ConnEnds) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (close_tx, close_rx) = oneshot::channel();
        let conn = Arc::new(Self {
            id,
            connected_at_ms,
            source_ip,
            user_agent,
            granted,
            last_active_ms: AtomicI64::new(connected_at_ms),
            queued_bytes: AtomicUsize::new(0),
            queue_limit,
            outbound: tx,
            close: Mutex::new(Some(close_tx)),
        });
        let ends = ConnEnds {
            outbound: rx,
            close: close_rx,
        };
        (conn, ends)
    }

    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_active_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Queues one message for the client, or refuses when its queue is full.
    pub fn try_send(&self, data: Bytes) -> Result<(), QueueFull> {
        let cost = data.len() + PER_MESSAGE_OVERHEAD;
        let mut current = self.queued_bytes.load(Ordering::Relaxed);
        loop {
            if current + cost > self.queue_limit {
                return Err(QueueFull);
            }
            match self.queued_bytes.compare_exchange_weak(
                current,
                current + cost,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if self.outbound.send(data).is_err() {
            self.sent(cost - PER_MESSAGE_OVERHEAD);
            return Err(QueueFull);
        }
        Ok(())
    }

    /// Called by the writer once a message of `len` bytes left the queue.
    pub fn sent(&self, len: usize) {
        self.queued_bytes
            .fetch_sub(len + PER_MESSAGE_OVERHEAD, Ordering::AcqRel);
    }

    /// Asks the connection's task to close it. False if already closing.
    pub fn close(&self, cause: CloseCause) -> bool {
        let tx = self.close.lock().unwrap_or_else(|p| p.into_inner()).take();
        tx.is_some_and(|tx| tx.send(cause).is_ok())
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    conns: RwLock<HashMap<String, Arc<Conn>>>,
}

impl Registry {
    /// Adds a connection; false if its id is taken.
    pub fn insert(&self, conn: Arc<Conn>) -> bool {
        let mut map = self.conns.write().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(&conn.id) {
            return false;
        }
        map.insert(conn.id.clone(), conn);
        true
    }

    pub fn get(&self, id: &str) -> Option<Arc<Conn>> {
        self.conns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Conn>> {
        self.conns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.conns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.conns.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection; returns how many were asked to.
    pub fn close_all(&self, cause: CloseCause) -> usize {
        let all: Vec<_> = self
            .conns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.iter().filter(|c| c.close(cause)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_in_bytes_and_frees_as_it_drains() {
        let (conn, mut ends) = Conn::new(
            "a=".into(),
            0,
            "127.0.0.1".into(),
            None,
            Granted::default(),
            1000,
        );
        assert_eq!(conn.try_send(Bytes::from(vec![0; 400])), Ok(()));
        assert_eq!(conn.try_send(Bytes::from(vec![0; 400])), Ok(()));
        assert_eq!(conn.try_send(Bytes::from(vec![0; 100])), Err(QueueFull));
        let first = ends.outbound.try_recv().expect("queued");
        conn.sent(first.len());
        assert_eq!(conn.try_send(Bytes::from(vec![0; 100])), Ok(()));
    }

    #[test]
    fn close_fires_once() {
        let (conn, mut ends) = Conn::new(
            "a=".into(),
            0,
            "127.0.0.1".into(),
            None,
            Granted::default(),
            10,
        );
        assert!(conn.close(CloseCause::Deleted));
        assert!(!conn.close(CloseCause::Shutdown));
        assert_eq!(ends.close.try_recv(), Ok(CloseCause::Deleted));
    }
}
