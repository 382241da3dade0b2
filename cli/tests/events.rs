//! `wsadmin events` and `wsadmin list --watch` against the real local
//! stack: real clients connect and leave while the command runs as its own
//! process, and its lines show exactly those connects and disconnects.

use crate::support;

use std::time::Duration;

use support::{Running, eventually, start, stdout};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_shows_exactly_the_connects_and_disconnects_of_real_clients() {
    let h = start(|_| {}).await;
    let running = Running::start(
        &h,
        &["events", "--follow", "-o", "ndjson", "--interval", "200ms"],
    );
    // The first poll has run once the cost is said.
    assert!(
        eventually(10, || running.stderr().contains("RCU per poll")).await,
        "{}",
        running.stderr()
    );
    let alpha = h.client("alpha").await;
    let beta = h
        .client_with("beta", "?room=7", WebSocketConfig::default())
        .await;
    let (alpha_id, beta_id) = (alpha.id.clone(), beta.id.clone());
    running
        .wait_for(10, "for both connects", |l| l.contains(&beta_id))
        .await;
    running
        .wait_for(10, "for alpha's connect", |l| l.contains(&alpha_id))
        .await;
    wsadmin_harness::close(alpha).await;
    // Within about one interval (plus the scan) of the record going away.
    let took = running
        .wait_for(10, "for alpha's disconnect", |l| {
            l.contains("disconnected") && l.contains(&alpha_id)
        })
        .await;
    // Latency is measured, not asserted (BENCHMARKS.md): the wait's own
    // bound guards against a hang.
    eprintln!("latency: scan source (200ms interval), disconnect seen after {took:?}");
    let events = running.json();
    let (_, err) = running.kill();
    assert!(
        err.contains("each poll scans the whole table \"WS_CONNECTIONS\": ~2 RCU per poll"),
        "{err}"
    );

    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["connectionId"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    let mut connects: Vec<&(String, String)> =
        summary.iter().filter(|(k, _)| k == "connected").collect();
    connects.sort_by_key(|(_, id)| id.clone());
    let mut want = vec![
        ("connected".to_owned(), alpha_id.clone()),
        ("connected".to_owned(), beta_id.clone()),
    ];
    want.sort_by_key(|(_, id)| id.clone());
    assert_eq!(
        connects.into_iter().cloned().collect::<Vec<_>>(),
        want,
        "{events:?}"
    );
    assert_eq!(
        summary.len(),
        3,
        "exactly 2 connects and 1 disconnect: {events:?}"
    );
    assert_eq!(summary[2], ("disconnected".to_owned(), alpha_id.clone()));
    let beta_event = events
        .iter()
        .find(|e| e["connectionId"] == beta_id.as_str())
        .expect("beta");
    assert_eq!(beta_event["userAgent"], "beta");
    assert_eq!(beta_event["meta"]["room"], "7");
    assert_eq!(beta_event["sourceIp"], "127.0.0.1");
    assert!(beta_event["at"].as_i64().is_some() && beta_event["time"].is_string());
    drop(beta);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_follow_lists_who_connected_oldest_first() {
    let h = start(|_| {}).await;
    let first = h.client("first").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = h
        .client_with("second", "?room=7", WebSocketConfig::default())
        .await;
    let a = h.local(&["events"]).await.success();
    let out = stdout(&a);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("TIME"), "{out}");
    for (line, (id, agent)) in lines[1..]
        .iter()
        .zip([(&first.id, "first"), (&second.id, "second")])
    {
        assert!(line.contains("  connected  "), "{line}");
        assert!(line.contains(id.as_str()) && line.contains(agent), "{line}");
    }
    assert!(lines[2].ends_with("room=7"), "{out}");

    // --where selects.
    let a = h
        .local(&["events", "-o", "ndjson", "--where", "room=7"])
        .await
        .success();
    let out = stdout(&a);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(&second.id), "{out}");

    // dynalite's tables have no stream: asked for one, it says so.
    let a = h.local(&["events", "-f", "--source", "stream"]).await;
    support::fails_with(a, 2, "table \"WS_CONNECTIONS\" has no stream");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_watch_prints_one_line_per_change() {
    let h = start(|_| {}).await;
    let early = h.client("early").await;
    let running = Running::start(
        &h,
        &["list", "--watch", "-o", "ndjson", "--interval", "200ms"],
    );
    running
        .wait_for(10, "for the registry as it is", |l| l.contains(&early.id))
        .await;
    let late = h.client("late").await;
    running
        .wait_for(10, "for the new one", |l| l.contains(&late.id))
        .await;
    let late_id = late.id.clone();
    wsadmin_harness::close(late).await;
    running
        .wait_for(10, "for its removal", |l| {
            l.contains("\"removed\"") && l.contains(&late_id)
        })
        .await;
    let lines = running.json();
    let (_, err) = running.kill();
    let summary: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["change"].as_str().expect("change"),
                l["connectionId"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("added", early.id.as_str()),
            ("added", late_id.as_str()),
            ("removed", late_id.as_str())
        ],
        "{err}"
    );
    assert_eq!(lines[1]["userAgent"], "late");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_watch_reprints_the_table_on_change() {
    let h = start(|_| {}).await;
    let running = Running::start(&h, &["list", "-w", "--interval", "200ms"]);
    running
        .wait_for(10, "saying the registry is empty", |l| {
            l == "no connections"
        })
        .await;
    let client = h.client("watched").await;
    running
        .wait_for(10, "with the new connection", |l| {
            l.starts_with(&client.id) && l.contains("watched")
        })
        .await;
    let lines = running.lines();
    let (_, err) = running.kill();
    assert!(lines.iter().any(|l| l.starts_with("ID ")), "{lines:?}");
    // Re-printed only on change: one empty table, one with the client.
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ID ")).count(),
        1,
        "{lines:?} {err}"
    );

    // --watch with --live would probe every connection on every poll.
    let a = h.local(&["list", "--watch", "--live"]).await;
    support::fails_with(a, 2, "--watch does not combine with --live");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_shows_as_gone_then_pruned() {
    let h = start(|_| {}).await;
    // Another stack's record (no connectedAt) of a connection that is gone.
    let foreign = wsadmin_core::ConnectionRecord::new("FOREIGNFOREIGN0=");
    h.stack.store().put(&foreign).await.expect("seed");
    let running = Running::start(&h, &["events", "-f", "-o", "ndjson", "--interval", "200ms"]);
    running
        .wait_for(10, "for the foreign record", |l| {
            l.contains("FOREIGNFOREIGN0=")
        })
        .await;
    // The first prune finds it gone and marks it; a later one deletes it.
    h.local(&["prune", "--grace", "1s"]).await.success();
    running
        .wait_for(10, "for it to be found gone", |l| l.contains("\"gone\""))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.local(&["prune", "--grace", "1s"]).await.success();
    running
        .wait_for(10, "for it to be pruned", |l| l.contains("\"pruned\""))
        .await;
    let events = running.json();
    let (_, err) = running.kill();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(kinds, ["connected", "gone", "pruned"], "{events:?} {err}");
    assert!(
        events
            .iter()
            .all(|e| e["connectionId"] == "FOREIGNFOREIGN0="),
        "{events:?}"
    );
    h.stop().await;
}

/// The local stack over moto's DynamoDB, whose tables can have streams
/// (dynalite's cannot), with the state file `--context local` reads.
async fn stack_on_moto(
    moto: &wsadmin_testkit::moto::Moto,
) -> (wsadmin_local::LocalStack, tempfile::TempDir) {
    let stack = wsadmin_local::LocalStack::start(
        wsadmin_emulator::EmulatorConfig::default(),
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        &moto.endpoint(),
    )
    .await
    .expect("local stack on moto");
    let dir = tempfile::tempdir().expect("dir");
    stack
        .info()
        .write(&dir.path().join("local-stack.json"))
        .expect("state file");
    (stack, dir)
}

/// A client named `agent` (its user agent); its id, from the registry.
async fn connect_as(
    stack: &wsadmin_local::LocalStack,
    agent: &str,
    query: &str,
) -> (wsadmin_harness::Ws, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}{query}", stack.websocket_url())
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("User-Agent", agent.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("handshake");
    let records: Vec<wsadmin_core::ConnectionRecord> =
        futures::TryStreamExt::try_collect(stack.store().scan(Default::default()))
            .await
            .expect("scan");
    let id = records
        .into_iter()
        .find(|r| r.user_agent.as_deref() == Some(agent))
        .expect("registered")
        .connection_id;
    (ws, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reads_the_table_stream_when_it_has_one() {
    let moto = wsadmin_testkit::moto::Moto::start();
    let (stack, dir) = stack_on_moto(&moto).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&stack.sdk_config())
        .endpoint_url(moto.endpoint())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
        .update_table()
        .table_name("WS_CONNECTIONS")
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("stream enabled");
    let (_early_ws, early) = connect_as(&stack, "early", "").await;

    let mut cmd = support::wsadmin_in(dir.path());
    cmd.args(["--context", "local", "events", "-f", "-o", "ndjson"]);
    let running = Running::spawn(cmd);
    assert!(
        eventually(15, || running
            .stderr()
            .contains("following the stream of table"))
        .await,
        "{}",
        running.stderr()
    );
    running
        .wait_for(10, "for the registry as it was", |l| l.contains(&early))
        .await;
    let (mut ws, id) = connect_as(&stack, "streamed", "?room=7").await;
    let took = running
        .wait_for(10, "for the connect", |l| l.contains(&id))
        .await;
    eprintln!("latency: stream source, connect seen after {took:?}");
    futures::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::Close(None),
    )
    .await
    .expect("close");
    drop(ws);
    let took = running
        .wait_for(10, "for the disconnect", |l| {
            l.contains("disconnected") && l.contains(&id)
        })
        .await;
    eprintln!("latency: stream source, disconnect seen after {took:?}");
    let events = running.json();
    let (_, err) = running.kill();
    assert!(!err.contains("RCU"), "no scans: {err}");
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event"),
                e["connectionId"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("connected", early.as_str()),
            ("connected", id.as_str()),
            ("disconnected", id.as_str())
        ],
        "{err}"
    );
    assert_eq!(events[1]["meta"]["room"], "7");
    assert_eq!(events[2]["userAgent"], "streamed", "the old image");

    stack.stop().await.expect("stop");
}
