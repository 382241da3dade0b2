//! The local stack end to end, with real WebSocket clients: the seed
//! article's walkthrough, API Gateway's limits and timers, the knobs, and
//! bad input that must not disturb anyone else.

use std::time::Duration;

use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use wsadmin_core::stack::{RouteSpec, StackSpec};
use wsadmin_harness::{all_records, assert_silent, recv_close, recv_text, send_text, start};

#[tokio::test]
async fn the_seed_walkthrough() {
    let h = start(|_| {}).await;
    let mut a = h.client("client-a").await;
    let mut b = h.client("client-b").await;
    h.wait_for_ids(&[&a.id, &b.id]).await;

    send_text(&mut a.ws, r#"{"type": "message", "data": "Hello World!"}"#).await;
    assert_eq!(recv_text(&mut a.ws).await, "Hello World!");
    assert_eq!(recv_text(&mut b.ws).await, "Hello World!");
    // The message route has no route response: nothing else arrives.
    assert_silent(&mut a.ws, Duration::from_millis(300)).await;

    send_text(&mut a.ws, "Marko?").await;
    assert_eq!(recv_text(&mut a.ws).await, "Polo!");
    assert_silent(&mut b.ws, Duration::from_millis(300)).await;

    send_text(&mut b.ws, r#"{"type": "chat", "data": 1}"#).await;
    assert_eq!(
        recv_text(&mut b.ws).await,
        "Marko?",
        "an unknown type goes to $default"
    );

    a.ws.close(None).await.expect("close");
    h.wait_for_ids(&[&b.id]).await;
    assert_eq!(
        h.stack.connection_count(),
        1,
        "the table holds exactly the live connections"
    );
    h.stop().await;
}

#[tokio::test]
async fn connect_meta_and_identity_reach_the_record() {
    let h = start(|_| {}).await;
    let c = h
        .client_with(
            "meta-client/1.0",
            "?user=ana&room=7",
            WebSocketConfig::default(),
        )
        .await;
    let record = h.record(&c.id).await.expect("registered");
    assert_eq!(record.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(record.stage.as_deref(), Some("dev"));
    assert_eq!(record.meta.get("user").map(String::as_str), Some("ana"));
    assert_eq!(record.meta.get("room").map(String::as_str), Some("7"));
    assert!(record.expires_at.is_some());
    assert_eq!(c.id.len(), 16, "ids look like API Gateway's: {}", c.id);
    assert!(c.id.ends_with('='));
    h.stop().await;
}

#[tokio::test]
async fn a_client_frame_over_32_kb_closes_with_1009_and_others_carry_on() {
    let h = start(|_| {}).await;
    let mut big = h.client("big-sender").await;
    let mut other = h.client("bystander").await;
    big.ws
        .send(Message::text("x".repeat(40 * 1024)))
        .await
        .expect("send");
    let frame = recv_close(&mut big.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(frame.code, CloseCode::Size);
    h.wait_for_ids(&[&other.id]).await;
    send_text(&mut other.ws, "Marko?").await;
    assert_eq!(recv_text(&mut other.ws).await, "Polo!");
    h.stop().await;
}

#[tokio::test]
async fn a_message_over_128_kb_in_small_frames_closes_with_1009() {
    let h = start(|_| {}).await;
    let mut c = h.client("fragmenter").await;
    let chunk = vec![b'y'; 30 * 1024];
    for i in 0..5 {
        let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
        let frame = Frame::message(chunk.clone(), opcode, i == 4);
        if c.ws.send(Message::Frame(frame)).await.is_err() {
            break;
        }
    }
    let frame = recv_close(&mut c.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(frame.code, CloseCode::Size);
    h.wait_for_ids(&[]).await;
    h.stop().await;
}

#[tokio::test]
async fn the_idle_timeout_closes_and_runs_disconnect() {
    let h = start(|c| c.idle_timeout = Duration::from_millis(800)).await;
    let mut quiet = h.client("quiet").await;
    let started = std::time::Instant::now();
    let frame = recv_close(&mut quiet.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    h.wait_for_ids(&[]).await;
    h.stop().await;
}

#[tokio::test]
async fn activity_keeps_a_connection_until_the_maximum_duration() {
    let h = start(|c| {
        c.idle_timeout = Duration::from_millis(600);
        c.max_duration = Duration::from_millis(2000);
    })
    .await;
    let mut chatty = h.client("chatty").await;
    let started = std::time::Instant::now();
    // Chatting every 200 ms beats the idle timeout, not the maximum duration.
    let frame = loop {
        send_text(&mut chatty.ws, "Marko?").await;
        match tokio::time::timeout(
            Duration::from_millis(200),
            futures::StreamExt::next(&mut chatty.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(6), "never closed");
    };
    let elapsed = started.elapsed();
    assert_eq!(frame.expect("close frame").code, CloseCode::Away);
    assert!(
        elapsed >= Duration::from_millis(1900),
        "closed by idle timeout after {elapsed:?}"
    );
    h.wait_for_ids(&[]).await;
    h.stop().await;
}

#[tokio::test]
async fn drop_disconnect_rate_1_leaves_exactly_the_closed_records() {
    let h = start(|c| c.drop_disconnect_rate = 1.0).await;
    let mut a = h.client("leaver-a").await;
    let b = h.client("leaver-b").await;
    let c = h.client("stayer").await;
    a.ws.close(None).await.expect("close");
    drop(b.ws); // vanishes without a close frame
    for _ in 0..100 {
        if h.stack.connection_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.stack.connection_count(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut want = vec![a.id.clone(), b.id.clone(), c.id.clone()];
    want.sort();
    assert_eq!(
        h.ids().await,
        want,
        "the two departed records stay behind, stale"
    );
    h.stop().await;
}

#[tokio::test]
async fn no_route_and_no_default_sends_the_forbidden_error_frame() {
    let h = start(|c| {
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect"),
                RouteSpec::new("$disconnect", "ws-disconnect"),
                RouteSpec::new("message", "ws-message"),
            ],
            ..StackSpec::default()
        };
    })
    .await;
    let mut c = h.client("lost").await;
    send_text(&mut c.ws, r#"{"type":"nope"}"#).await;
    let frame: serde_json::Value = serde_json::from_str(&recv_text(&mut c.ws).await).expect("json");
    assert_eq!(frame["message"], "Forbidden");
    assert_eq!(frame["connectionId"], c.id.as_str());
    assert!(frame["requestId"].is_string());
    h.stop().await;
}

#[tokio::test]
async fn a_failing_connect_handler_refuses_the_handshake() {
    let h = start(|_| {}).await;
    h.drop_table().await;
    let err = tokio_tungstenite::connect_async(h.stack.websocket_url())
        .await
        .expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 500),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    assert_eq!(h.stack.connection_count(), 0);
    h.stop().await;
}

#[tokio::test]
async fn bad_frames_get_clear_answers_and_disturb_no_one() {
    let h = start(|_| {}).await;
    let mut bystander = h.client("bystander").await;

    // A binary frame closes that connection with 1003, as API Gateway does.
    let mut bin = h.client("binary").await;
    bin.ws
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect("send");
    let close = recv_close(&mut bin.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(close.code, CloseCode::Unsupported);

    // An invalid UTF-8 text frame closes that connection with 1007.
    let mut bad = h.client("bad-utf8").await;
    let frame = Frame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
    bad.ws.send(Message::Frame(frame)).await.expect("send");
    let close = recv_close(&mut bad.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(close.code, CloseCode::Invalid);

    // A handshake to the wrong path is refused with 403.
    let wrong = format!("ws://{}/prod", h.addr());
    match tokio_tungstenite::connect_async(wrong).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // A plain GET on the endpoint asks for a WebSocket.
    let (status, _, _) = wsadmin_harness::raw_http(h.addr(), "GET /dev HTTP/1.1", b"").await;
    assert_eq!(status, 426);

    h.wait_for_ids(&[&bystander.id]).await;
    send_text(&mut bystander.ws, "Marko?").await;
    assert_eq!(recv_text(&mut bystander.ws).await, "Polo!");
    h.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_client_with_1001_and_runs_disconnect() {
    let h = start(|_| {}).await;
    let mut a = h.client("a").await;
    let mut b = h.client("b").await;
    let wsadmin_harness::Harness { db, stack } = h;
    let store = stack.store();
    stack.stop().await.expect("stop");
    for ws in [&mut a.ws, &mut b.ws] {
        let frame = recv_close(ws, Duration::from_secs(5))
            .await
            .expect("close frame");
        assert_eq!(frame.code, CloseCode::Away);
    }
    let left = all_records(&store).await;
    assert!(
        left.is_empty(),
        "every $disconnect ran before stop returned: {left:?}"
    );
    drop(db);
}
