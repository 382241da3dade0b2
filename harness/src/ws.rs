//! One WebSocket client a test drives by hand (send, receive, close), and
//! raw HTTP for requests no SDK would send.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Harness;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client, and the connection id the stack registered for it.
#[derive(Debug)]
pub struct Client {
    pub ws: Ws,
    pub id: String,
}

impl Harness {
    /// Connects with a unique user agent, then finds its id in the registry
    /// (`$connect` registers before the handshake completes).
    pub async fn client(&self, name: &str) -> Client {
        self.client_with(name, "", WebSocketConfig::default()).await
    }

    /// [`Harness::client`] with a query string (`?k=v`, the `$connect`
    /// meta) and a client configuration.
    pub async fn client_with(&self, name: &str, query: &str, config: WebSocketConfig) -> Client {
        let req = self.handshake(name, query);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
            .await
            .expect("handshake accepted");
        let id = self
            .find_record_of(name)
            .await
            .expect("registered on $connect");
        Client { ws, id }
    }

    /// A handshake with a unique user agent, left running in the
    /// background: for a test that watches its `$connect` while it runs.
    pub fn connect_in_background(&self, name: &str) -> JoinHandle<Result<Ws, WsError>> {
        let req = self.handshake(name, "");
        tokio::spawn(async move {
            tokio_tungstenite::connect_async(req)
                .await
                .map(|(ws, _)| ws)
        })
    }

    /// The upgrade request of a client named `name` (its user agent).
    fn handshake(&self, name: &str, query: &str) -> Request {
        let url = format!("{}{query}", self.stack.websocket_url());
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("User-Agent", HeaderValue::from_str(name).expect("header"));
        req
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

/// The close frame the server sends (`None` for a close without one, or
/// the stream ending); panics after `wait`.
pub async fn recv_close(ws: &mut Ws, wait: Duration) -> Option<CloseFrame> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("expected a close frame, got error {e}"),
            Ok(None) => return None,
            Err(_) => panic!("no close frame within {wait:?}"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// Closes from the client side and waits (up to 5 s) for the server's
/// answer.
pub async fn close(mut client: Client) {
    client.ws.send(Message::Close(None)).await.expect("close");
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await
    {
    }
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
