//! Demo clients for `wsstack local --demo-clients N`: real WebSocket clients
//! that give the dashboard life. Each one connects with its own user agent
//! and `?user=…&room=…`, chats now and then (through the `message` route,
//! `Marko?` through `$default`), and after a while either leaves cleanly or
//! vanishes without a close frame, then comes back as a new connection.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "okhttp/4.12.0",
    "websocat/1.13.0",
    "python-websockets/13.1",
];
const USERS: [&str; 8] = [
    "ana", "ben", "chen", "dara", "eli", "farah", "goran", "hana",
];

/// How lively the demo is.
#[derive(Debug, Clone, Copy)]
pub struct DemoPace {
    /// A connection lives between these bounds before leaving.
    pub lifetime: (Duration, Duration),
    /// Pause between two messages of one client.
    pub chatter: (Duration, Duration),
    /// Fraction of departures that vanish without a close frame.
    pub vanish_rate: f64,
}

impl Default for DemoPace {
    fn default() -> Self {
        Self {
            lifetime: (Duration::from_secs(20), Duration::from_secs(180)),
            chatter: (Duration::from_secs(8), Duration::from_secs(40)),
            vanish_rate: 0.3,
        }
    }
}

fn between(range: (Duration, Duration)) -> Duration {
    let (lo, hi) = (
        range.0.as_millis() as u64,
        range.1.as_millis().max(range.0.as_millis() + 1) as u64,
    );
    Duration::from_millis(fastrand::u64(lo..hi))
}

/// Runs `count` demo clients against `url` until `stop` turns true.
pub async fn run(url: String, count: usize, pace: DemoPace, stop: watch::Receiver<bool>) {
    let tasks: Vec<_> = (0..count)
        .map(|n| tokio::spawn(client(url.clone(), n, pace, stop.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn client(url: String, n: usize, pace: DemoPace, mut stop: watch::Receiver<bool>) {
    // Spread the first connections over a second or two.
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1500))).await;
    let user = USERS[n % USERS.len()];
    let agent = AGENTS[n % AGENTS.len()];
    let mut round = 0u32;
    while !*stop.borrow() {
        round += 1;
        let full = format!("{url}?user={user}{n}&room={}", n % 5 + 1);
        let Ok(mut request) = full.as_str().into_client_request() else {
            return;
        };
        request
            .headers_mut()
            .insert("User-Agent", HeaderValue::from_static(agent));
        let Ok((ws, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        let (mut tx, mut rx) = ws.split();
        let leave_at = tokio::time::Instant::now() + between(pace.lifetime);
        let mut said = 0u32;
        let vanished = loop {
            let next = tokio::time::sleep(between(pace.chatter));
            tokio::select! {
                _ = stop.changed() => break false,
                _ = tokio::time::sleep_until(leave_at) => break fastrand::f64() < pace.vanish_rate,
                incoming = rx.next() => match incoming {
                    Some(Ok(_)) => continue,
                    _ => break true,
                },
                _ = next => {
                    said += 1;
                    let text = match fastrand::u8(0..10) {
                        0..=1 => format!(r#"{{"type":"message","data":"{user}{n}: hello #{said} (round {round})"}}"#),
                        2..=5 => "Marko?".to_owned(),
                        _ => r#"{"type":"ping"}"#.to_owned(),
                    };
                    if tx.send(Message::text(text)).await.is_err() {
                        break true;
                    }
                }
            }
        };
        if !vanished {
            let _ = tx.send(Message::Close(None)).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = rx.next().await {}
            })
            .await;
        }
        // Vanishing: drop both halves, the TCP connection closes without a
        // close frame.
        drop((tx, rx));
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(500..4000))).await;
    }
}
