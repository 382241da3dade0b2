//! What API Gateway does at the edges of a connection (issue 19), each
//! against AWS's documentation (ARCHITECTURE.md cites it): a subprotocol is
//! agreed only when `$connect`'s response carries `Sec-WebSocket-Protocol`;
//! a binary frame from a client closes it with 1003; `$disconnect` reports
//! how each connection ended (`disconnectStatusCode`, `disconnectReason`).
//! Real clients, a Node `$connect` and `$disconnect` on the Lambda host.

use std::path::Path;
use std::time::Duration;

use futures::SinkExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_core::stack::{RouteSpec, StackSpec};
use wsadmin_harness::{Harness, Ws, eventually, recv_close, send_text, start};

/// `$connect`: agrees to the first subprotocol offered only with `?agree`.
const CONNECT: &str = r#"
exports.handler = async (event) => {
  const q = event.queryStringParameters || {};
  const offered = event.headers['Sec-WebSocket-Protocol'];
  if (q.agree && offered) {
    return { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': offered.split(',')[0].trim() } };
  }
  return { statusCode: q.refuse ? 403 : 200 };
};
"#;

/// `$disconnect`: appends its request context to `$OUT/disconnects.jsonl`.
const BYE: &str = r#"
const fs = require('fs');
exports.handler = async (event) => {
  fs.appendFileSync(process.env.OUT + '/disconnects.jsonl', JSON.stringify(event.requestContext) + '\n');
  return { statusCode: 200 };
};
"#;

const ECHO: &str = "exports.handler = async (e) => ({ statusCode: 200, body: JSON.stringify({ id: e.requestContext.connectionId }) });";

async fn stack(out: &Path, idle: Duration, max: Duration) -> Harness {
    let code = |js: &str| FunctionCode::Inline(js.into());
    let mut bye = FunctionSpec::new("bye", "nodejs20.x", "index.handler", code(BYE));
    bye.environment
        .insert("OUT".into(), out.to_string_lossy().into_owned());
    start(|c| {
        c.idle_timeout = idle;
        c.max_duration = max;
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "hello"),
                RouteSpec::new("$disconnect", "bye"),
                RouteSpec::new("$default", "echo").with_route_response(),
            ],
            functions: vec![
                FunctionSpec::new("hello", "nodejs20.x", "index.handler", code(CONNECT)),
                bye,
                FunctionSpec::new("echo", "nodejs20.x", "index.handler", code(ECHO)),
            ],
            ..StackSpec::default()
        };
    })
    .await
}

async fn connect(h: &Harness) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(h.stack.websocket_url())
        .await
        .expect("connected");
    send_text(&mut ws, "who").await;
    let answer: Value =
        serde_json::from_str(&wsadmin_harness::recv_text(&mut ws).await).expect("JSON");
    let id = answer["id"].as_str().expect("id").to_owned();
    (ws, id)
}

/// `$disconnect`'s (status code, reason) for `id`, once it has run.
async fn ending(out: &Path, id: &str) -> (u64, String) {
    let find = || {
        std::fs::read_to_string(out.join("disconnects.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .find(|rc| rc["connectionId"] == id)
    };
    assert!(
        eventually(15, || find().is_some()).await,
        "$disconnect of {id}"
    );
    let rc = find().expect("found");
    (
        rc["disconnectStatusCode"].as_u64().expect("code"),
        rc["disconnectReason"].as_str().expect("reason").to_owned(),
    )
}

/// A raw upgrade offering `protocols`: the response's status line and
/// `Sec-WebSocket-Protocol`, if any.
async fn handshake(h: &Harness, query: &str, protocols: &str) -> (String, Option<String>) {
    let mut s = tokio::net::TcpStream::connect(h.addr())
        .await
        .expect("connect");
    let head = format!(
        "GET /dev{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocols}\r\n\r\n",
        h.addr()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer in 5 s")
            .expect("read");
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let protocol = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("sec-websocket-protocol")
            .then(|| v.trim().to_owned())
    });
    (status, protocol)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subprotocol_is_agreed_only_when_connect_answers_one() {
    let out = tempfile::tempdir().expect("dir");
    let h = stack(
        out.path(),
        Duration::from_secs(600),
        Duration::from_secs(7200),
    )
    .await;
    let (status, protocol) = handshake(&h, "?agree=1", "chat.v2, chat.v1").await;
    assert!(status.contains(" 101 "), "{status}");
    assert_eq!(protocol.as_deref(), Some("chat.v2"));
    let (status, protocol) = handshake(&h, "", "chat.v2, chat.v1").await;
    assert!(status.contains(" 101 "), "{status}");
    assert_eq!(
        protocol, None,
        "$connect answered no Sec-WebSocket-Protocol"
    );
    // $connect's refusal is the handshake's status.
    let (status, _) = handshake(&h, "?refuse=1", "chat.v1").await;
    assert!(status.contains(" 403 "), "{status}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reports_how_each_connection_ended() {
    let out = tempfile::tempdir().expect("dir");
    let (idle, max) = (Duration::from_secs(3), Duration::from_secs(6));
    let h = stack(out.path(), idle, max).await;

    let (mut by_code, by_code_id) = connect(&h).await;
    let (mut no_status, no_status_id) = connect(&h).await;
    let (_deleted, deleted_id) = connect(&h).await;
    let (mut binary, binary_id) = connect(&h).await;
    let (_idle, idle_id) = connect(&h).await;
    let (mut busy, busy_id) = connect(&h).await;

    by_code
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Library(4001),
            reason: "bye now".into(),
        })))
        .await
        .expect("close");
    no_status.send(Message::Close(None)).await.expect("close");
    h.management()
        .delete_connection()
        .connection_id(&deleted_id)
        .send()
        .await
        .expect("DeleteConnection");
    binary
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    let close = recv_close(&mut binary, Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!(close.code, CloseCode::Unsupported, "binary frames: 1003");

    // `busy` keeps talking past the idle timeout, up to the maximum duration.
    let talk = tokio::spawn(async move {
        for _ in 0..8 {
            if busy.send(Message::text("still here")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    assert_eq!(
        ending(out.path(), &by_code_id).await,
        (4001, "bye now".into())
    );
    assert_eq!(
        ending(out.path(), &no_status_id).await,
        (1005, "Client-side close frame status not set".into())
    );
    assert_eq!(
        ending(out.path(), &deleted_id).await,
        (1000, "Connection deleted".into())
    );
    assert_eq!(
        ending(out.path(), &binary_id).await,
        (1003, "Binary frames are not supported".into())
    );
    assert_eq!(
        ending(out.path(), &idle_id).await,
        (1001, "Going away".into())
    );
    assert_eq!(
        ending(out.path(), &busy_id).await,
        (1001, "Going away".into())
    );
    let _ = talk.await;
    h.stop().await;
}
