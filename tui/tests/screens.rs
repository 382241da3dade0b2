//! Snapshots of whole screens on a fixed-size `TestBackend`, from
//! deterministic data (fixed ids, a fixed clock). Each test drives the app
//! only through `App::update`, as the run loop does.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use wsadmin_core::access_log::AccessEntry;
use wsadmin_core::{ConnectionInfo, ConnectionRecord, SweepReport};
use wsadmin_tui::App;
use wsadmin_tui::app::TargetInfo;
use wsadmin_tui::event::{Event, IdleCheck, LiveCheck, PrunePlan, Task};
use wsadmin_tui::row::ConnectionRow;

/// 2023-11-14 22:13:20 UTC.
const NOW: i64 = 1_700_000_000_000;

fn app() -> App {
    let mut app = App::new(
        TargetInfo {
            context: Some("staging".into()),
            endpoint: "https://abc123.execute-api.eu-west-1.amazonaws.com/dev".into(),
            table: "WS_CONNECTIONS".into(),
            region: "eu-west-1".into(),
        },
        2000,
    );
    app.update(Event::Tick { now_ms: NOW });
    app
}

fn record(i: usize) -> ConnectionRecord {
    let mut r = ConnectionRecord::new(format!("Conn{i:04}Id-AbCd="))
        .connected_at(NOW - 1000 * (37 * i as i64 + 5));
    r.source_ip = Some(format!("203.0.113.{}", i % 250));
    r.user_agent = Some(match i % 3 {
        0 => "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0".into(),
        1 => "websocat/1.12".into(),
        _ => "evil\x1b[2J\x1b]0;pwned\x07client".into(),
    });
    r.domain_name = Some("abc123.execute-api.eu-west-1.amazonaws.com".into());
    r.stage = Some("dev".into());
    if i.is_multiple_of(2) {
        r.meta.insert("user".into(), format!("user{i}"));
        r.meta.insert("room".into(), format!("{}", i % 7));
    }
    r
}

fn records(n: usize) -> Vec<ConnectionRow> {
    (0..n).map(|i| record(i).into()).collect()
}

/// An app that has seen two refreshes: 20 records, then 21 with one gone.
fn populated() -> App {
    let mut app = app();
    app.update(Event::Refreshed {
        records: records(20),
        at_ms: NOW - 30_000,
    });
    let mut later = records(22);
    later.remove(3);
    app.update(Event::Refreshed {
        records: later,
        at_ms: NOW - 1000,
    });
    app
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn chars(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(key(KeyCode::Char(c)));
    }
}

/// `b`, `text`, Enter: the broadcast's confirmation.
fn ask_to_broadcast(app: &mut App, text: &str) {
    app.update(key(KeyCode::Char('b')));
    chars(app, text);
    app.update(key(KeyCode::Enter));
}

/// A populated app broadcasting "hi", confirmed, 7 of 21 done.
fn broadcasting() -> App {
    let mut app = populated();
    ask_to_broadcast(&mut app, "hi");
    app.update(key(KeyCode::Char('y')));
    app.update(Event::BroadcastProgress { done: 7, total: 21 });
    app
}

/// A populated app showing only the rows `selector` selects (typed after `/`).
fn filtered(selector: &str) -> App {
    let mut app = populated();
    app.update(key(KeyCode::Char('/')));
    chars(&mut app, selector);
    app.update(key(KeyCode::Enter));
    app
}

fn screen(app: &mut App, width: u16, height: u16) -> Terminal<TestBackend> {
    app.update(Event::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| f.render_widget(&*app, f.area())).unwrap();
    terminal
}

#[test]
fn empty_table() {
    let mut app = app();
    app.update(Event::Refreshed {
        records: vec![],
        at_ms: NOW - 1500,
    });
    assert_snapshot!(screen(&mut app, 100, 24).backend());
}

#[test]
fn populated_table() {
    let mut app = populated();
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    assert_snapshot!(screen(&mut app, 120, 30).backend());
}

#[test]
fn details_pane() {
    let mut app = populated();
    app.update(key(KeyCode::Down));
    let id = app.selected_record().unwrap().id.to_string();
    app.update(key(KeyCode::Enter));
    app.update(Event::Probed {
        id,
        record: Some(record(1)),
        live: LiveCheck::Live(ConnectionInfo {
            connected_at: Some(NOW - 42_000),
            last_active_at: Some(NOW - 7_000),
            source_ip: Some("203.0.113.1".into()),
            user_agent: Some("websocat/1.12".into()),
        }),
    });
    assert_snapshot!(screen(&mut app, 120, 30).backend());
}

/// The details pane with the connection's access log lines under it.
#[test]
fn details_pane_with_history() {
    let mut app = populated();
    app.update(key(KeyCode::Down));
    let id = app.selected_record().unwrap().id.to_string();
    app.update(key(KeyCode::Enter));
    app.update(Event::Probed {
        id: id.clone(),
        record: Some(record(1)),
        live: LiveCheck::Gone,
    });
    let line = |ago: i64, event: &str, route: &str, code: Option<&str>| AccessEntry {
        at_ms: NOW - ago,
        event_type: Some(event.into()),
        route_key: Some(route.into()),
        connection_id: Some(id.clone()),
        status: Some("200".into()),
        source_ip: Some("203.0.113.1".into()),
        error: None,
        integration_error_message: None,
        disconnect_status_code: code.map(Into::into),
        request_id: None,
    };
    app.update(Event::History {
        id: id.clone(),
        lines: Ok(vec![
            line(42_000, "CONNECT", "$connect", None),
            line(30_000, "MESSAGE", "message", None),
            line(20_000, "MESSAGE", "$default", None),
            line(7_000, "DISCONNECT", "$disconnect", Some("4001")),
        ]),
    });
    // Another connection's answer arriving late changes nothing.
    app.update(Event::History {
        id: "someone-else".into(),
        lines: Err("not this one".into()),
    });
    let terminal = screen(&mut app, 120, 34);
    let text = format!("{:?}", terminal.backend());
    assert!(
        text.contains("DISCONNECT $disconnect 200 close 4001"),
        "{text}"
    );
    assert!(!text.contains("not this one"), "{text}");
    assert_snapshot!(terminal.backend());
}

#[test]
fn help_overlay() {
    let mut app = populated();
    app.update(key(KeyCode::Char('?')));
    assert_snapshot!(screen(&mut app, 100, 30).backend());
}

#[test]
fn broadcast_confirmation() {
    let mut app = populated();
    ask_to_broadcast(&mut app, "maintenance in 5 minutes");
    assert_snapshot!(screen(&mut app, 100, 24).backend());
}

#[test]
fn broadcast_progress() {
    let mut app = broadcasting();
    assert_snapshot!(screen(&mut app, 100, 24).backend());
    app.update(Event::BroadcastDone(SweepReport {
        targeted: 21,
        delivered: 20,
        gone: 1,
        records_removed: 1,
        elapsed_ms: 230,
        ..SweepReport::default()
    }));
    assert_snapshot!("broadcast_done", screen(&mut app, 100, 24).backend());
}

#[test]
fn prune_plan() {
    let mut app = populated();
    app.update(key(KeyCode::Char('p')));
    app.update(Event::PruneProgress {
        checked: 9,
        total: 21,
    });
    assert_snapshot!("prune_planning", screen(&mut app, 100, 24).backend());
    app.update(Event::PrunePlanned(PrunePlan {
        stale: (0..14).map(|i| format!("Stale{i:02}Id-XyZ=")).collect(),
        checked: 21,
        unknown: 1,
        first_error: Some("throttled".into()),
    }));
    assert_snapshot!(screen(&mut app, 100, 24).backend());
}

#[test]
fn quit_confirmation() {
    let mut app = broadcasting();
    app.update(key(KeyCode::Char('q')));
    assert_snapshot!(screen(&mut app, 100, 24).backend());
    // The broadcast ends while the question is open: it says so.
    app.update(Event::BroadcastDone(SweepReport {
        targeted: 21,
        delivered: 21,
        elapsed_ms: 230,
        ..SweepReport::default()
    }));
    assert_snapshot!(
        "quit_confirmation_after_the_broadcast",
        screen(&mut app, 100, 24).backend()
    );
}

#[test]
fn error_state() {
    let mut app = populated();
    app.update(Event::Tick { now_ms: NOW + 4000 });
    app.update(Event::Failed {
        task: Task::Refresh,
        message: "cannot reach DynamoDB in eu-west-1: connection refused (is the endpoint right? AWS_ENDPOINT_URL_DYNAMODB overrides it)".into(),
    });
    assert_snapshot!(screen(&mut app, 100, 24).backend());
}

#[test]
fn tiny_terminal() {
    let mut app = populated();
    assert_snapshot!(screen(&mut app, 40, 10).backend());
    app.update(key(KeyCode::Char('?')));
    assert_snapshot!("tiny_terminal_help", screen(&mut app, 40, 10).backend());
}

#[test]
fn every_size_down_to_nothing_renders_without_panic() {
    let mut app = populated();
    app.update(key(KeyCode::Enter));
    for (w, h) in [
        (0, 0),
        (1, 1),
        (10, 3),
        (39, 9),
        (40, 10),
        (99, 20),
        (100, 40),
    ] {
        screen(&mut app, w, h);
    }
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Char('p')));
    for (w, h) in [(0, 0), (1, 1), (10, 3), (40, 10)] {
        screen(&mut app, w, h);
    }
}

#[test]
fn no_control_character_reaches_the_screen() {
    let mut app = populated();
    let terminal = screen(&mut app, 160, 40);
    let buffer = terminal.backend().buffer();
    for cell in &buffer.content {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "control character in {:?}",
            cell.symbol()
        );
    }
}

/// The IDLE column's answers for the first rows: live ones idle 3 s, 1 m,
/// 2 m…, one gone, one failed; the rest not asked yet.
fn with_idle(app: &mut App) {
    let ids: Vec<String> = (0..8)
        .filter_map(|i| app.row(i))
        .map(|r| r.id.to_string())
        .collect();
    let results = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let check = match i {
                5 => IdleCheck::Gone,
                6 => IdleCheck::Failed("throttled".into()),
                _ => IdleCheck::Live {
                    last_active_at: Some(NOW - 3_000 - 60_000 * i as i64),
                },
            };
            (id, check)
        })
        .collect();
    app.update(Event::IdleProbed { results });
}

#[test]
fn eighty_by_twenty_four() {
    let mut app = populated();
    with_idle(&mut app);
    assert_snapshot!(screen(&mut app, 80, 24).backend());
}

#[test]
fn eighty_by_twenty_four_sorted_by_idle() {
    let mut app = populated();
    with_idle(&mut app);
    app.update(key(KeyCode::Char('i')));
    assert_snapshot!(screen(&mut app, 80, 24).backend());
}

#[test]
fn two_hundred_by_fifty() {
    let mut app = populated();
    with_idle(&mut app);
    assert_snapshot!(screen(&mut app, 200, 50).backend());
}

#[test]
fn filtered_broadcast_confirmation_at_80x24() {
    let mut app = filtered("room=0");
    app.update(key(KeyCode::Char('b')));
    chars(&mut app, "room 0 closes at noon");
    assert_snapshot!(
        "filtered_broadcast_input_at_80x24",
        screen(&mut app, 80, 24).backend()
    );
    app.update(key(KeyCode::Enter));
    assert_snapshot!(screen(&mut app, 80, 24).backend());
}

#[test]
fn filtered_disconnect_confirmation() {
    let mut app = filtered("userAgent=websocat*");
    app.update(key(KeyCode::Char('D')));
    assert_snapshot!(screen(&mut app, 100, 24).backend());
}

/// The API's traffic per minute, last 15 minutes: a burst of connects,
/// steady messages, two minutes with errors.
fn with_metrics(app: &mut App) {
    let per_minute = |f: fn(usize) -> f64| (0..15).map(f).collect::<Vec<f64>>();
    app.update(Event::Metrics(wsadmin_core::api_metrics::PerMinute {
        connects: per_minute(|m| if (6..9).contains(&m) { 40.0 } else { 3.0 }),
        messages: per_minute(|m| 100.0 + 10.0 * m as f64),
        errors: per_minute(|m| if m == 4 || m == 13 { 5.0 } else { 0.0 }),
    }));
}

#[test]
fn header_sparkline_at_80x24() {
    let mut app = populated();
    with_metrics(&mut app);
    assert_snapshot!(screen(&mut app, 80, 24).backend());
}

#[test]
fn header_sparkline_at_200x50() {
    let mut app = populated();
    with_idle(&mut app);
    with_metrics(&mut app);
    assert_snapshot!(screen(&mut app, 200, 50).backend());
}
