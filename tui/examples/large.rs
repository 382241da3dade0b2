//! How the dashboard copes with a large registry, without a terminal or a
//! network: builds an app of N records (default 100,000), then times a
//! refresh (diff, filter, sort), frames on a 200x50 `TestBackend`, a filter
//! keystroke and a sort change, and prints the figures.
//!
//! `cargo run --release -p wsadmin-tui --example large [N]`

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use wsadmin_core::ConnectionRecord;
use wsadmin_tui::App;
use wsadmin_tui::app::TargetInfo;
use wsadmin_tui::event::Event;
use wsadmin_tui::row::ConnectionRow;

const NOW: i64 = 1_700_000_000_000;

fn records(n: usize, salt: usize) -> Vec<ConnectionRow> {
    (0..n)
        .map(|i| {
            let i = i + salt;
            let mut r =
                ConnectionRecord::new(format!("{i:015x}=")).connected_at(NOW - i as i64 * 37);
            r.source_ip = Some(format!("10.{}.{}.{}", i % 256, (i / 256) % 256, i % 7));
            r.user_agent = Some(format!("client/{} (load test)", i % 97));
            r.domain_name = Some("abc123.execute-api.eu-west-1.amazonaws.com".into());
            r.stage = Some("dev".into());
            r.meta.insert("user".into(), format!("u{i}"));
            ConnectionRow::from(r)
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut app = App::new(
        TargetInfo {
            context: None,
            endpoint: "https://abc123.execute-api.eu-west-1.amazonaws.com/dev".into(),
            table: "WS_CONNECTIONS".into(),
            region: "eu-west-1".into(),
        },
        2000,
    );
    app.update(Event::Tick { now_ms: NOW });
    app.update(Event::Resize {
        width: 200,
        height: 50,
    });
    let t = Instant::now();
    app.update(Event::Refreshed {
        records: records(n, 0),
        at_ms: NOW,
    });
    println!("first refresh of {n}: {:?}", t.elapsed());
    let next = records(n, n / 100);
    let t = Instant::now();
    app.update(Event::Refreshed {
        records: next,
        at_ms: NOW + 2000,
    });
    println!("refresh with 1% churn: {:?}", t.elapsed());

    let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("backend");
    let mut worst = std::time::Duration::ZERO;
    let frames = 200;
    let t = Instant::now();
    for i in 0..frames {
        let key = if i % 2 == 0 {
            KeyCode::PageDown
        } else {
            KeyCode::Down
        };
        app.update(Event::Key(KeyEvent::new(key, KeyModifiers::NONE)));
        let f = Instant::now();
        terminal
            .draw(|frame| frame.render_widget(&app, frame.area()))
            .expect("draw");
        worst = worst.max(f.elapsed());
    }
    println!(
        "frames: {:?} each on average, worst {worst:?}",
        t.elapsed() / frames
    );
    let t = Instant::now();
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('/'),
        KeyModifiers::NONE,
    )));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('9'),
        KeyModifiers::NONE,
    )));
    println!(
        "filter keystroke: {:?} ({} rows match)",
        t.elapsed(),
        app.visible_len()
    );
    let t = Instant::now();
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::NONE,
    )));
    println!("sort change: {:?}", t.elapsed());
}
