//! `wsadmin tui` in a real terminal (tmux), against the local stack with the
//! demo clients of `wsstack local --demo-clients` and our own real clients:
//! what the operator sees, and what the keys do to real connections.

use crate::support;

use std::time::{Duration, Instant};

use support::tmux::Tmux;
use support::{Harness, start};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wsadmin_harness::{assert_silent, recv_text};
use wsadmin_local::demo::{self, DemoPace};

/// `wsadmin --context local tui` in a `cols`×`rows` tmux terminal.
fn dashboard(h: &Harness, cols: u16, rows: u16) -> Tmux {
    h.in_terminal(cols, rows, "", "tui --interval 500ms", false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_broadcast_reaches_only_the_matching_rows() {
    let h = start(|_| {}).await;
    let config = WebSocketConfig::default();
    let mut sevens = vec![
        h.client_with("seven-a", "?room=7", config).await,
        h.client_with("seven-b", "?room=7", config).await,
    ];
    let mut eight = h.client_with("eight-a", "?room=8", config).await;
    let tmux = dashboard(&h, 80, 24);
    tmux.until("the three clients listed", 20, |s| {
        ["seven-a", "seven-b", "eight-a"]
            .iter()
            .all(|n| s.contains(n))
    })
    .await;

    tmux.keys(&["/"]);
    tmux.text("room=7");
    tmux.keys(&["Enter"]);
    tmux.until("the filter keeps room 7 only", 5, |s| {
        s.contains("seven-a") && s.contains("seven-b") && !s.contains("eight-a")
    })
    .await;
    tmux.keys(&["b"]);
    tmux.text("room seven only");
    tmux.keys(&["Enter"]);
    tmux.until("a confirmation naming the count and the filter", 5, |s| {
        s.contains("2 rows matching room=7")
    })
    .await;
    tmux.keys(&["y"]);
    for c in &mut sevens {
        assert_eq!(recv_text(&mut c.ws).await, "room seven only");
    }
    assert_silent(&mut eight.ws, Duration::from_secs(1)).await;

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!tmux.alive(), "wsadmin tui exited on q");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_and_acts_on_live_connections() {
    let h = start(|_| {}).await;
    let (stop_demo, stop_rx) = watch::channel(false);
    let demo = tokio::spawn(demo::run(
        h.stack.websocket_url(),
        3,
        DemoPace::default(),
        stop_rx,
    ));
    let mut ours = h.clients("e2e", 3, 3).await;

    let tmux = dashboard(&h, 140, 45);

    // It shows the connections: ours and the demo's.
    let screen = tmux
        .until("our three clients listed", 20, |s| {
            (0..3).all(|i| s.contains(&format!("e2e-{i}")))
        })
        .await;
    assert!(
        screen.contains("[local]") && screen.contains("WS_CONNECTIONS"),
        "{screen}"
    );

    // A client that connects appears, one that disconnects vanishes, each
    // within two refreshes (500 ms each; slack for a loaded machine).
    let late = h.clients("late", 1, 1).await;
    tmux.until("a new client appears", 3, |s| s.contains("late-0"))
        .await;
    ours[2].close().await;
    tmux.until("a closed client vanishes", 3, |s| !s.contains("e2e-2"))
        .await;

    // `d` on a row disconnects that client for real.
    tmux.keys(&["/"]);
    tmux.text("e2e-1");
    tmux.keys(&["Enter"]);
    tmux.until("the filter selects e2e-1", 3, |s| {
        s.contains(">") && s.contains("e2e-1") && !s.contains("e2e-0")
    })
    .await;
    tmux.keys(&["d"]);
    tmux.until("a disconnect confirmation", 3, |s| {
        s.contains("confirm disconnect")
    })
    .await;
    tmux.keys(&["y"]);
    assert!(
        support::eventually(5, || ours[1].closed()).await,
        "e2e-1 was closed by the server"
    );
    tmux.keys(&["Escape"]); // clear the filter
    // A key right after Esc would read as Alt+key.
    tokio::time::sleep(Duration::from_millis(400)).await;

    // `b` delivers to every real client.
    tmux.keys(&["b"]);
    tmux.text("dashboard says hi");
    tmux.keys(&["Enter"]);
    tmux.until("the broadcast confirmation with its target count", 3, |s| {
        s.contains("confirm broadcast") && s.contains("registered connections")
    })
    .await;
    tmux.keys(&["y"]);
    tmux.until("the broadcast report in the log", 10, |s| {
        s.contains("broadcast:") && s.contains("delivered")
    })
    .await;
    for c in [&ours[0], &late[0]] {
        assert!(
            support::eventually(5, || c.messages().iter().any(|m| m == "dashboard says hi")).await,
            "{} received the broadcast",
            c.agent
        );
    }
    assert!(
        !ours[1].messages().iter().any(|m| m == "dashboard says hi"),
        "not the closed client"
    );

    // `q` quits and the process ends.
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!tmux.alive(), "wsadmin tui exited on q");

    let _ = stop_demo.send(true);
    h.stop().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), demo).await;
}

/// `?name=…`, every byte but the unreserved ones percent-encoded.
fn name_query(name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect();
    format!("?name={encoded}")
}

/// The ids `wsadmin list --where SELECTOR` names, sorted.
async fn listed(h: &Harness, selector: &str) -> Vec<String> {
    let out = h.local(&["list", "--where", selector, "-o", "ids"]).await;
    let mut ids: Vec<String> = support::stdout(&out.success())
        .lines()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

/// Types `/SELECTOR` (replacing any filter) and waits for its row count.
async fn filter_to(tmux: &Tmux, selector: &str, rows: usize) {
    tmux.keys(&["/", "C-u"]);
    tmux.text(selector);
    tmux.keys(&["Enter"]);
    tmux.until(&format!("/{selector} shows {rows} rows"), 5, |s| {
        s.contains(&format!("{rows} shown"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_b_and_d_reach_exactly_the_clients_list_where_names() {
    let h = start(|_| {}).await;
    let config = WebSocketConfig::default();
    let names = wsadmin_testkit::AWKWARD_NAMES;
    let mut clients = Vec::new();
    for (i, name) in names.iter().enumerate() {
        clients.push(
            h.client_with(&format!("c{i}"), &name_query(name), config)
                .await,
        );
    }
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();
    let tmux = dashboard(&h, 100, 30);
    tmux.until("seven connections", 20, |s| s.contains("registered 7"))
        .await;

    // b to three names with spaces, `=` and non-ASCII: exactly the three.
    let selector = r#"name in ("Ana Maria", a=b, Zoë*)"#;
    let expected = vec![ids[1].clone(), ids[4].clone(), ids[5].clone()];
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(listed(&h, selector).await, sorted, "list --where");
    filter_to(&tmux, selector, 3).await;
    tmux.keys(&["b"]);
    tmux.text("to three");
    tmux.keys(&["Enter"]);
    tmux.until("a confirmation of 3 rows", 5, |s| {
        s.contains("3 rows matching")
    })
    .await;
    tmux.keys(&["y"]);
    for (i, c) in clients.iter_mut().enumerate() {
        if expected.contains(&c.id) {
            assert_eq!(recv_text(&mut c.ws).await, "to three", "{}", names[i]);
        }
    }
    for c in clients.iter_mut().filter(|c| !expected.contains(&c.id)) {
        assert_silent(&mut c.ws, Duration::from_millis(300)).await;
    }

    // D on name=Ana closes Ana, not "Ana Maria" nor "Ana, Maria"; then on
    // a quoted value with a comma, and one with quotes.
    for (selector, who) in [
        ("name=Ana", 0),
        (r#"name="Ana, Maria""#, 2),
        (r#"name="say \"hi\"""#, 3),
    ] {
        assert_eq!(listed(&h, selector).await, [ids[who].clone()], "{selector}");
        filter_to(&tmux, selector, 1).await;
        tmux.keys(&["D"]);
        tmux.until("a confirmation of 1 row", 5, |s| {
            s.contains("1 row matching")
        })
        .await;
        tmux.keys(&["y"]);
        assert!(
            wsadmin_harness::recv_close(&mut clients[who].ws, Duration::from_secs(5))
                .await
                .is_some(),
            "{selector} closed {}",
            names[who]
        );
    }
    let mut open = vec![
        ids[1].clone(),
        ids[4].clone(),
        ids[5].clone(),
        ids[6].clone(),
    ];
    open.sort();
    let mut left = h.ids().await;
    left.sort();
    assert_eq!(left, open, "the others are still connected and registered");
    for i in [1, 4, 5, 6] {
        assert_silent(&mut clients[i].ws, Duration::from_millis(200)).await;
    }

    tmux.keys(&["q"]);
    h.stop().await;
}
