//! The Lambda concurrency limit: every route's invocation takes one of
//! `lambda_concurrency` execution slots; beyond it the invocation is
//! throttled at once and the client sees what API Gateway shows for a failed
//! integration. One slot, held by a `$connect` in its delay, makes the limit
//! reachable on purpose.

use crate::support;

use std::process::Command;
use std::time::Duration;

use support::{recv_text, send_text, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_limit_every_route_is_throttled_as_api_gateway_shows_it() {
    let h = start(|c| {
        c.lambda_concurrency = 1;
        c.connect_delay = Duration::from_secs(3);
    })
    .await;
    let mut a = h.client("first").await;

    // B's `$connect` holds the only slot for its 3 s delay.
    let b = h.connect_in_background("slot-holder");
    h.record_of("slot-holder").await;

    // A message route: API Gateway's error frame, to the sender only.
    send_text(&mut a.ws, "Marko?").await;
    let frame: serde_json::Value =
        serde_json::from_str(&recv_text(&mut a.ws).await).expect("a JSON error frame");
    assert_eq!(frame["message"], "Internal server error");
    assert_eq!(frame["connectionId"], a.id.as_str());
    assert!(frame["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    // `$connect`: the handshake is refused with 500, as a failed integration.
    match tokio_tungstenite::connect_async(h.stack.websocket_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 500),
        other => panic!("expected a 500 refusal, got {:?}", other.map(|_| ())),
    }

    // `$disconnect`: skipped, so A's record stays behind (prune's job).
    futures::SinkExt::close(&mut a.ws).await.expect("close");
    for _ in 0..250 {
        if h.stack.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.stack.connection_count(), 0, "A left the gateway");

    // The slot frees once B's `$connect` ends: everything works again.
    let mut b = b.await.expect("task").expect("B's handshake completes");
    assert!(
        h.record(&a.id).await.is_some(),
        "A's $disconnect was throttled: its record stays"
    );
    send_text(&mut b, "Marko?").await;
    assert_eq!(recv_text(&mut b).await, "Polo!");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_limit_nothing_is_throttled() {
    let h = start(|c| c.lambda_concurrency = 4).await;
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(h.client(&format!("c{i}")).await);
    }
    for c in &mut clients {
        send_text(&mut c.ws, "Marko?").await;
    }
    for c in &mut clients {
        assert_eq!(recv_text(&mut c.ws).await, "Polo!");
    }
    assert_eq!(
        h.stack.invocations_running(),
        0,
        "slots are given back after each invocation"
    );
    h.stop().await;
}

#[test]
fn out_of_range_flags_are_refused_with_a_clear_error() {
    let wsstack = env!("CARGO_BIN_EXE_wsstack");
    for bad in ["0", "100001", "many", "-3"] {
        let out = Command::new(wsstack)
            .args(["local", &format!("--lambda-concurrency={bad}")])
            .output()
            .expect("run wsstack");
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--lambda-concurrency") && err.contains("from 1 to 100000"),
            "{bad}: {err}"
        );
    }
    let out = Command::new(wsstack)
        .args(["local", "--connect-delay", "soon"])
        .output()
        .expect("run wsstack");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--connect-delay") && err.contains("invalid duration"),
        "{err}"
    );

    let out = Command::new(wsstack)
        .args(["local", "--help"])
        .output()
        .expect("run wsstack");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--connect-delay <DUR>"), "{help}");
    assert!(help.contains("--lambda-concurrency <N>"), "{help}");
    assert!(help.contains("[default: 1000]"), "{help}");
}
