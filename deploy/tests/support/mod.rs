//! The harness of the local-stack tests: a real dynalite, the real local
//! stack on a free port, real WebSocket clients, raw HTTP for requests no
//! SDK would send.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsadmin_core::ConnectionRecord;
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
    /// The id of the record `$connect` wrote for the client named `name`
    /// (its user agent); waits up to 10 s.
    pub async fn record_of(&self, name: &str) -> String {
        for _ in 0..500 {
            if let Some(r) = self
                .records()
                .await
                .into_iter()
                .find(|r| r.user_agent.as_deref() == Some(name))
            {
                return r.connection_id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("$connect never wrote a record for {name}");
    }

    pub async fn stop(self) {
        self.stack.stop().await.expect("clean stop");
    }

    /// Connects with a unique user agent, then finds its id in the registry
    /// (`$connect` registers before the handshake completes).
    pub async fn client(&self, name: &str) -> Client {
        self.client_with(name, "", WebSocketConfig::default()).await
    }

    pub async fn client_with(&self, name: &str, query: &str, config: WebSocketConfig) -> Client {
        let url = format!("{}{query}", self.stack.websocket_url());
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("User-Agent", HeaderValue::from_str(name).expect("header"));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
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
        use futures::TryStreamExt;
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

    /// The official Management API client, signed with the stack's
    /// credentials, its own retries off so tests see every answer.
    pub fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.stack.sdk_config())
            .endpoint_url(self.stack.management_endpoint())
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }

    pub fn addr(&self) -> SocketAddr {
        self.stack.addr()
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

/// Nothing arrives within `wait`.
pub async fn assert_silent(ws: &mut Ws, wait: Duration) {
    if let Ok(Some(msg)) = tokio::time::timeout(wait, ws.next()).await {
        panic!("expected silence, got {msg:?}");
    }
}

/// The close frame the server sends; panics after `wait`.
pub async fn recv_close(ws: &mut Ws, wait: Duration) -> Option<CloseFrame> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("expected a close frame, got error {e}"),
            Ok(None) => panic!("stream ended without a close frame"),
            Err(_) => panic!("no close frame within {wait:?}"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// One raw HTTP/1.1 request; returns status, headers (lowercased) and body.
pub async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    // The server may answer (413) before reading the whole body.
    let _ = s.write_all(&req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, head.to_lowercase(), body.to_owned())
}
