//! The harness of the worker tests: a real dynalite, the real local stack
//! on a free port, real WebSocket clients, and a `Target` on them built the
//! way `wsadmin` builds one.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsadmin_core::{ConnectionRecord, Gateway, ManagementEndpoint, Target};
use wsadmin_deploy::emulator::EmulatorConfig;
use wsadmin_deploy::local::LocalStack;
use wsadmin_testkit::dynalite::Dynalite;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Harness {
    pub db: Dynalite,
    pub stack: LocalStack,
}

pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    let db = Dynalite::start();
    let mut config = EmulatorConfig::default();
    tweak(&mut config);
    let stack = LocalStack::start(
        config,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &db.endpoint(),
    )
    .await
    .expect("local stack starts");
    Harness { db, stack }
}

/// A client, and the connection id the stack registered for it.
pub struct Client {
    pub ws: Ws,
    pub id: String,
}

impl Harness {
    pub async fn stop(self) {
        self.stack.stop().await.expect("clean stop");
    }

    pub fn target(&self) -> Target {
        let endpoint =
            ManagementEndpoint::parse(&self.stack.management_endpoint()).expect("endpoint");
        Target {
            context: None,
            region: self.stack.config().region.clone(),
            store: self.stack.store(),
            gateway: Gateway::new(&self.stack.sdk_config(), endpoint).expect("gateway"),
        }
    }

    /// Connects with `name` as its user agent, then finds its id in the
    /// registry (`$connect` registers before the handshake completes).
    pub async fn client(&self, name: &str) -> Client {
        let url = self.stack.websocket_url();
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("User-Agent", HeaderValue::from_str(name).expect("header"));
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("handshake accepted");
        let id = self
            .records()
            .await
            .into_iter()
            .find(|r| r.user_agent.as_deref() == Some(name))
            .map(|r| r.connection_id)
            .expect("registered on $connect");
        Client { ws, id }
    }

    pub async fn records(&self) -> Vec<ConnectionRecord> {
        self.stack
            .store()
            .scan(Default::default())
            .try_collect()
            .await
            .expect("scan")
    }

    pub async fn ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .records()
            .await
            .into_iter()
            .map(|r| r.connection_id)
            .collect();
        ids.sort();
        ids
    }

    /// Waits (up to 10 s) until the registry holds exactly `expected`.
    pub async fn wait_for_ids(&self, expected: &[&str]) {
        let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        for _ in 0..200 {
            if self.ids().await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            self.ids().await,
            want,
            "registry never reached the expected ids"
        );
    }
}

/// The next text message, skipping pings; panics after 5 s.
pub async fn recv_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Waits (up to 5 s) for the server to close the connection.
pub async fn recv_close(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(_))) | None) => return,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("expected a close frame, got error {e}"),
            Err(_) => panic!("no close within 5 s"),
        }
    }
}

/// Closes from the client side and waits for the server's answer.
pub async fn close(mut client: Client) {
    client.ws.send(Message::Close(None)).await.expect("close");
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await
    {
    }
}
