//! The worker against the real local stack (dynalite, the API Gateway
//! emulator, the handlers) with real WebSocket clients: what the dashboard
//! asks for really happens, and the events it gets back say so.

mod support;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use support::{Client, Harness, assert_silent, close, recv_close, recv_text, start};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wsadmin_tui::app::TargetInfo;
use wsadmin_tui::event::{Event, IdleCheck, LiveCheck, Task};
use wsadmin_tui::row::ConnectionRow;
use wsadmin_tui::worker::Worker;
use wsadmin_tui::{App, Command};

fn worker(h: &Harness) -> (Worker, UnboundedReceiver<Event>) {
    let (tx, rx) = unbounded_channel();
    (Worker::new(h.target(), tx), rx)
}

/// The next event, within 10 s.
async fn next(rx: &mut UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("channel open")
}

async fn refresh(w: &mut Worker, rx: &mut UnboundedReceiver<Event>) -> (Vec<ConnectionRow>, i64) {
    w.start(Command::Refresh);
    match next(rx).await {
        Event::Refreshed { records, at_ms } => (records, at_ms),
        other => panic!("expected Refreshed, got {other:?}"),
    }
}

fn ids(records: &[ConnectionRow]) -> Vec<String> {
    let mut ids: Vec<_> = records.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_refresh_sees_connects_and_disconnects() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let mut app = App::new(TargetInfo::of(&h.target()), 2000);

    let (records, at_ms) = refresh(&mut w, &mut rx).await;
    assert!(records.is_empty());
    app.update(Event::Refreshed { records, at_ms });

    let a = h.client("client-a").await;
    let b = h.client("client-b").await;
    let (records, at_ms) = refresh(&mut w, &mut rx).await;
    assert_eq!(ids(&records), sorted(&[&a.id, &b.id]));
    let ua = records.iter().find(|r| *r.id == *a.id).unwrap();
    assert_eq!(ua.user_agent.as_deref(), Some("client-a"));
    app.update(Event::Refreshed { records, at_ms });
    let log: Vec<String> = app.log.iter().map(|e| e.text.clone()).collect();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("+ {}", a.id)) && l.contains("client-a")),
        "{log:?}"
    );

    let gone = b.id.clone();
    close(b).await;
    h.wait_for_ids(&[&a.id]).await;
    let (records, at_ms) = refresh(&mut w, &mut rx).await;
    assert_eq!(ids(&records), sorted(&[&a.id]));
    app.update(Event::Refreshed { records, at_ms });
    assert_eq!(app.log.back().unwrap().text, format!("- {gone} went away"));
    h.stop().await;
}

#[tokio::test]
async fn a_broadcast_reaches_every_client_and_reports_progress() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let mut clients = Vec::new();
    for i in 0..12 {
        clients.push(h.client(&format!("client-{i}")).await);
    }
    w.start(Command::Broadcast {
        text: "maintenance at noon".into(),
        expected: 12,
        ids: None,
    });
    let mut progress = Vec::new();
    let report = loop {
        match next(&mut rx).await {
            Event::BroadcastProgress { done, total } => progress.push((done, total)),
            Event::BroadcastDone(report) => break report,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((report.targeted, report.delivered), (12, 12), "{report:?}");
    assert!(report.is_complete(), "{report:?}");
    assert!(!progress.is_empty(), "at least the first progress event");
    assert!(
        progress
            .iter()
            .all(|&(done, total)| done <= total && total == 12)
    );
    for c in &mut clients {
        assert_eq!(recv_text(&mut c.ws).await, "maintenance at noon");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_message_reaches_only_its_connection() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let mut a = h.client("client-a").await;
    let _b = h.client("client-b").await;
    w.start(Command::Send {
        id: a.id.clone(),
        text: "just you".into(),
    });
    assert!(matches!(next(&mut rx).await, Event::Sent { id } if id == a.id));
    assert_eq!(recv_text(&mut a.ws).await, "just you");
    h.stop().await;
}

#[tokio::test]
async fn disconnect_closes_a_real_client_and_inspect_then_says_gone() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let mut a = h.client("client-a").await;
    let b = h.client("client-b").await;

    w.start(Command::Probe { id: a.id.clone() });
    match next(&mut rx).await {
        Event::Probed {
            id,
            record,
            live: LiveCheck::Live(info),
        } => {
            assert_eq!(id, a.id);
            let record = record.expect("still registered");
            assert_eq!(record.user_agent.as_deref(), Some("client-a"));
            assert!(record.domain_name.is_some() && record.expires_at.is_some());
            assert_eq!(info.user_agent.as_deref(), Some("client-a"));
        }
        other => panic!("expected a live probe, got {other:?}"),
    }

    w.start(Command::Disconnect { id: a.id.clone() });
    match next(&mut rx).await {
        Event::Disconnected { id, was_gone } => assert_eq!((id, was_gone), (a.id.clone(), false)),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    recv_close(&mut a.ws, Duration::from_secs(5)).await;
    h.wait_for_ids(&[&b.id]).await;

    w.start(Command::Probe { id: a.id.clone() });
    assert!(matches!(
        next(&mut rx).await,
        Event::Probed {
            live: LiveCheck::Gone,
            ..
        }
    ));
    w.start(Command::Send {
        id: a.id.clone(),
        text: "anyone?".into(),
    });
    match next(&mut rx).await {
        Event::Failed {
            task: Task::Send { id },
            message,
        } => {
            assert_eq!(id, a.id);
            assert!(message.contains("gone"), "{message}");
        }
        other => panic!("expected a failed send, got {other:?}"),
    }
    h.stop().await;
}

#[tokio::test]
async fn the_prune_plan_lists_exactly_the_stale_records_and_prune_deletes_them() {
    // Every `$disconnect` is dropped: closed clients leave stale records.
    let h = start(|c| c.drop_disconnect_rate = 1.0).await;
    let (mut w, mut rx) = worker(&h);
    let live = h.client("live").await;
    let stale1 = h.client("stale-1").await;
    let stale2 = h.client("stale-2").await;
    let stale_ids = sorted(&[&stale1.id, &stale2.id]);
    close(stale1).await;
    close(stale2).await;
    assert_eq!(h.ids().await.len(), 3, "the records stay behind");

    // Inside the default grace a 410 may be a client still in `$connect`:
    // the plan deletes nothing yet.
    w.start(Command::PlanPrune);
    let plan = loop {
        if let Event::PrunePlanned(plan) = next(&mut rx).await {
            break plan;
        }
    };
    assert!(plan.stale.is_empty(), "{plan:?}");

    // Past a short grace they are stale.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (tx, mut rx) = unbounded_channel();
    let mut w = Worker::new(h.target(), tx).with_grace(Duration::from_secs(1));
    w.start(Command::PlanPrune);
    let plan = loop {
        match next(&mut rx).await {
            Event::PruneProgress { checked, total } => assert!(checked <= total && total == 3),
            Event::PrunePlanned(plan) => break plan,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(plan.stale, stale_ids);
    assert_eq!((plan.checked, plan.unknown), (3, 0));
    assert_eq!(h.ids().await.len(), 3, "a dry run changes nothing");

    w.start(Command::Prune { ids: plan.stale });
    match next(&mut rx).await {
        Event::Pruned(report) => {
            assert_eq!((report.removed, report.already_removed), (2, 0));
            assert!(report.errors.is_empty(), "{report:?}");
        }
        other => panic!("expected Pruned, got {other:?}"),
    }
    assert_eq!(h.ids().await, sorted(&[&live.id]));
    h.stop().await;
}

#[tokio::test]
async fn an_unreachable_registry_is_a_failed_refresh_not_a_crash() {
    let h = start(|_| {}).await;
    let mut target = h.target();
    let bogus = wsadmin_local::sdk_config(h.stack.config(), "http://127.0.0.1:1");
    target.store = wsadmin_core::ConnectionStore::from_conf(&bogus, target.table().clone());
    let (tx, mut rx) = unbounded_channel();
    let mut w = Worker::new(target, tx);
    w.start(Command::Refresh);
    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(Event::Failed {
            task: Task::Refresh,
            message,
        })) => assert!(message.contains("DynamoDB"), "{message}"),
        other => panic!("expected a failed refresh, got {other:?}"),
    }
    h.stop().await;
}

/// The operator's keys, through the app; what it asks for goes to the worker.
fn keys(app: &mut App, w: &mut Worker, keys: &[KeyCode]) {
    for &code in keys {
        if let Some(command) = app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))) {
            w.start(command);
        }
    }
}

fn typed(text: &str) -> Vec<KeyCode> {
    text.chars().map(KeyCode::Char).collect()
}

async fn in_room(h: &Harness, name: &str, room: u8) -> Client {
    h.client_with(name, &format!("?room={room}"), WebSocketConfig::default())
        .await
}

#[tokio::test]
async fn filtered_broadcast_and_disconnect_touch_only_the_rows_matching_the_selector() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let mut room7 = Vec::new();
    for i in 0..3 {
        room7.push(in_room(&h, &format!("seven-{i}"), 7).await);
    }
    let mut room8 = Vec::new();
    for i in 0..2 {
        room8.push(in_room(&h, &format!("eight-{i}"), 8).await);
    }
    let records_of_8 = |records: Vec<wsadmin_core::ConnectionRecord>| {
        let mut r: Vec<_> = records
            .into_iter()
            .filter(|r| r.meta.get("room").map(String::as_str) == Some("8"))
            .collect();
        r.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        r
    };
    let before = records_of_8(h.records().await);
    assert_eq!(before.len(), 2);

    let mut app = App::new(TargetInfo::of(&h.target()), 2000);
    let (records, at_ms) = refresh(&mut w, &mut rx).await;
    app.update(Event::Refreshed { records, at_ms });
    keys(&mut app, &mut w, &[KeyCode::Char('/')]);
    keys(&mut app, &mut w, &typed("room=7"));
    keys(&mut app, &mut w, &[KeyCode::Enter]);
    assert_eq!(app.visible_len(), 3);

    // b, the message, Enter, y: a broadcast to the three rows.
    keys(&mut app, &mut w, &[KeyCode::Char('b')]);
    keys(&mut app, &mut w, &typed("room 7 only"));
    keys(&mut app, &mut w, &[KeyCode::Enter, KeyCode::Char('y')]);
    let report = loop {
        match next(&mut rx).await {
            Event::BroadcastProgress { done, total } => assert!(done <= total && total == 3),
            Event::BroadcastDone(report) => break report,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((report.targeted, report.delivered), (3, 3), "{report:?}");
    for c in &mut room7 {
        assert_eq!(recv_text(&mut c.ws).await, "room 7 only");
    }
    for c in &mut room8 {
        assert_silent(&mut c.ws, Duration::from_millis(300)).await;
    }
    app.update(Event::BroadcastDone(report));

    // D, y: the three rows are closed, the others stay.
    keys(&mut app, &mut w, &[KeyCode::Char('D'), KeyCode::Char('y')]);
    let report = loop {
        match next(&mut rx).await {
            // The refresh the broadcast's end asked for.
            Event::Refreshed { .. } => continue,
            Event::DisconnectedRows(report) => break report,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((report.targeted, report.disconnected), (3, 3), "{report:?}");
    assert!(report.is_complete(), "{report:?}");
    for c in &mut room7 {
        recv_close(&mut c.ws, Duration::from_secs(5)).await;
    }
    let eight: Vec<&str> = room8.iter().map(|c| c.id.as_str()).collect();
    h.wait_for_ids(&eight).await;
    assert_eq!(
        records_of_8(h.records().await),
        before,
        "room 8's records intact"
    );
    for c in &mut room8 {
        assert_silent(&mut c.ws, Duration::from_millis(300)).await;
    }
    // And their connections are open: a message still reaches them.
    for c in &mut room8 {
        w.start(Command::Send {
            id: c.id.clone(),
            text: "still here".into(),
        });
        loop {
            if let Event::Sent { id } = next(&mut rx).await {
                assert_eq!(id, c.id);
                break;
            }
        }
        assert_eq!(recv_text(&mut c.ws).await, "still here");
    }
    h.stop().await;
}

#[tokio::test]
async fn idle_probes_report_last_activity_of_live_and_gone_connections() {
    let h = start(|_| {}).await;
    let (mut w, mut rx) = worker(&h);
    let a = h.client("client-a").await;
    let b = h.client("client-b").await;
    let gone = b.id.clone();
    close(b).await;
    h.wait_for_ids(&[&a.id]).await;
    w.start(Command::ProbeIdle {
        ids: vec![a.id.clone(), gone.clone()],
    });
    match next(&mut rx).await {
        Event::IdleProbed { results } => {
            assert_eq!(results.len(), 2);
            assert!(
                matches!(&results[0], (id, IdleCheck::Live { last_active_at: Some(_) }) if *id == a.id),
                "{results:?}"
            );
            assert_eq!(results[1], (gone, IdleCheck::Gone));
        }
        other => panic!("expected IdleProbed, got {other:?}"),
    }
    h.stop().await;
}

/// A failure shows with its causes, as the binaries print them: the
/// dashboard says why the registry could not be read, not only that.
#[tokio::test]
async fn a_failed_refresh_says_why_with_its_causes() {
    let h = start(|_| {}).await;
    let _c = h.clients("keyed", 1, 1).await;
    let mut target = h.target();
    let wrong_key = target.table().clone().with_key("id");
    let conf = wsadmin_local::sdk_config(h.stack.config(), h.stack.dynamodb_endpoint());
    target.store = wsadmin_core::ConnectionStore::from_conf(&conf, wrong_key);
    let (tx, mut rx) = unbounded_channel();
    let mut w = Worker::new(target, tx);
    w.start(Command::Refresh);
    match next(&mut rx).await {
        Event::Failed {
            task: Task::Refresh,
            message,
        } => assert!(
            message.contains("not a connection record")
                && message.contains("item has no string attribute \"id\""),
            "{message}"
        ),
        other => panic!("expected a failed refresh, got {other:?}"),
    }
    h.stop().await;
}

/// The dashboard reads a team's registry through its mapping: a
/// room-partitioned table (`pk = ROOM#<room>`, `sk = <id>`, an item per
/// room joined) beside a user item, in the stack's DynamoDB. Each item is a
/// row with its room; the user item is none; a broadcast from the
/// dashboard reaches each connection once.
#[tokio::test]
async fn a_room_partitioned_registry_is_listed_by_room_and_broadcast_once() {
    use wsadmin_core::registry::{AttributeField, Mapping};
    use wsadmin_core::stack::{KeyAttribute, TableKeys};
    use wsadmin_core::{ConnectionRecord, ConnectionStore, TableConfig};

    let h = start(|_| {}).await;
    let mut a = h.client("client-a").await;
    let mut b = h.client("client-b").await;
    let mut mapping = Mapping::bare(AttributeField::parse("sk", "id").expect("id"));
    mapping
        .key_fields
        .push(AttributeField::parse("pk=ROOM#{room}", "room").expect("field"));
    let table = TableConfig::new("Rooms").with_mapping(mapping);
    let rooms = ConnectionStore::at(
        &h.stack.sdk_config(),
        Some(h.stack.dynamodb_endpoint()),
        table.clone(),
    );
    let key = |name: &str| KeyAttribute {
        name: name.into(),
        kind: "S".into(),
    };
    rooms
        .create_table_with(Some(&TableKeys {
            hash: key("pk"),
            range: Some(key("sk")),
            indexes: vec![],
        }))
        .await
        .expect("create the table");
    let mut items = Vec::new();
    for (id, room) in [(&a.id, "1"), (&a.id, "7"), (&b.id, "7")] {
        let mut item = ConnectionRecord::new(id.as_str()).to_item(&table);
        item.insert(
            "pk".into(),
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ROOM#{room}")),
        );
        items.push(item);
    }
    let user = [("pk", "USER#ana"), ("sk", "PROFILE")].map(|(k, v)| {
        (
            k.to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::S(v.into()),
        )
    });
    items.push(user.into_iter().collect());
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&h.stack.sdk_config())
            .endpoint_url(h.stack.dynamodb_endpoint())
            .build(),
    );
    for item in items {
        client
            .put_item()
            .table_name("Rooms")
            .set_item(Some(item))
            .send()
            .await
            .expect("put");
    }
    let mut target = h.target();
    target.store = rooms;
    let (tx, mut rx) = unbounded_channel();
    let mut w = Worker::new(target, tx);

    let (records, _) = refresh(&mut w, &mut rx).await;
    let mut rows: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let room = r.meta.iter().find(|(k, _)| &**k == "room");
            (
                r.id.to_string(),
                room.map(|(_, v)| v.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    rows.sort();
    let mut want = vec![
        (a.id.clone(), "1".to_owned()),
        (a.id.clone(), "7".to_owned()),
        (b.id.clone(), "7".to_owned()),
    ];
    want.sort();
    assert_eq!(rows, want, "one row per room joined, the user item none");

    w.start(Command::Broadcast {
        text: "once each".into(),
        expected: 3,
        ids: None,
    });
    let report = loop {
        match next(&mut rx).await {
            Event::BroadcastProgress { .. } => {}
            Event::BroadcastDone(report) => break report,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((report.delivered, report.repeats), (2, 1), "{report:?}");
    assert_eq!(recv_text(&mut a.ws).await, "once each");
    assert_eq!(recv_text(&mut b.ws).await, "once each");
    assert_silent(&mut a.ws, Duration::from_millis(300)).await;
    h.stop().await;
}
