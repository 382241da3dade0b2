//! The `$connect` window, lengthened by `connect_delay`: the record is
//! written, yet the Management API answers 410 for the connection until its
//! handshake completes, as on AWS during a slow `$connect`. The window must
//! not leak records: a client that leaves during it, or a shutdown, still
//! runs its `$disconnect`.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsadmin_harness::{Harness, all_records, recv_text, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connecting_client_is_410_until_its_handshake_completes() {
    let h = start(|c| c.connect_delay = Duration::from_millis(500)).await;
    let api = h.management();
    let connecting = h.connect_in_background("slow-joiner");
    let id = h.record_of("slow-joiner").await;

    // The record exists, the connection is not reachable yet: 410 for all
    // three operations, exactly what AWS answers during `$connect`.
    let e = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("410 while connecting");
    assert!(
        e.as_service_error().is_some_and(|s| s.is_gone_exception()),
        "{e:?}"
    );
    let e = api
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("too early"))
        .send()
        .await
        .expect_err("410 while connecting");
    assert!(e.as_service_error().is_some_and(|s| s.is_gone_exception()));
    let e = api
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("410 while connecting");
    assert!(e.as_service_error().is_some_and(|s| s.is_gone_exception()));
    assert!(
        !connecting.is_finished(),
        "the 410s were answered while the client was still in its handshake"
    );
    assert!(
        h.record(&id).await.is_some(),
        "the record is in DynamoDB during the window"
    );

    let mut ws = connecting
        .await
        .expect("task")
        .expect("handshake accepted after the delay");
    let got = api
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("200 once the handshake completed");
    assert_eq!(
        got.identity().and_then(|i| i.user_agent()),
        Some("slow-joiner")
    );
    api.post_to_connection()
        .connection_id(&id)
        .data(Blob::new("welcome"))
        .send()
        .await
        .expect("post");
    assert_eq!(
        recv_text(&mut ws).await,
        "welcome",
        "the early post was not queued"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_during_the_window_still_gets_its_disconnect() {
    let h = start(|c| c.connect_delay = Duration::from_secs(2)).await;
    let mut tcp = TcpStream::connect(h.addr()).await.expect("connect");
    let request = format!(
        "GET /dev HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         User-Agent: quitter\r\n\r\n",
        h.addr()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let id = h.record_of("quitter").await;
    drop(tcp); // gone before the handshake completed
    h.wait_for_ids(&[]).await;
    assert_eq!(h.stack.connection_count(), 0, "{id} never became live");

    // The stack carries on.
    let mut c = h.client("after").await;
    wsadmin_harness::send_text(&mut c.ws, "Marko?").await;
    assert_eq!(recv_text(&mut c.ws).await, "Polo!");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_the_window_refuses_the_handshake_and_cleans_up() {
    let h = start(|c| c.connect_delay = Duration::from_secs(1)).await;
    let mut tcp = TcpStream::connect(h.addr()).await.expect("connect");
    let request = format!(
        "GET /dev HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         User-Agent: late\r\n\r\n",
        h.addr()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    h.record_of("late").await;
    let Harness { db, stack } = h;
    let store = stack.store();
    stack.stop().await.expect("stop");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "the handshake is refused: {answer:?}"
    );
    let left = all_records(&store).await;
    assert!(
        left.is_empty(),
        "its $disconnect ran before stop returned: {left:?}"
    );
    drop(db);
}
