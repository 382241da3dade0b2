//! Many clients at once, each recording in the background every text
//! message it receives ([`Listener`]), and waiting for a condition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Harness;

/// A client whose task records every text message it receives.
#[derive(Debug)]
pub struct Listener {
    pub agent: String,
    pub id: String,
    pub received: Arc<Mutex<Vec<String>>>,
    close: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
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

impl Harness {
    /// Connects `n` listeners named `{prefix}-{i}`, `parallel` at a time,
    /// and learns their ids from one scan. About 2% of ids start with `-`,
    /// as on AWS: the tools must take them as they come.
    pub async fn clients(&self, prefix: &str, n: usize, parallel: usize) -> Vec<Listener> {
        let url = self.stack.websocket_url();
        let mut clients: Vec<Listener> = futures::stream::iter(0..n)
            .map(|i| listen(url.clone(), format!("{prefix}-{i}")))
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
        clients
    }
}

async fn listen(url: String, agent: String) -> Listener {
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
    Listener {
        agent,
        id: String::new(),
        received,
        close: Some(tx),
        task,
    }
}

/// Waits (up to `secs`) until `check` holds; returns whether it did (a
/// bound against hangs, not a timing assertion).
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// [`eventually`] for a check that has to wait for something itself.
pub async fn eventually_async<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
