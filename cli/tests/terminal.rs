//! What `wsadmin` does only on a terminal (tmux gives it a real one): the
//! confirmations of `disconnect --all` and `broadcast`, and the broadcast
//! progress bar.

use crate::support;

use std::time::Duration;

use support::start;
use support::tmux::Tmux;

/// `wsadmin ARGS…` in a 120×30 terminal; the pane stays open after it
/// exits and shows `EXIT=<status>`.
fn in_terminal(h: &support::Harness, args: &str) -> Tmux {
    h.in_terminal(120, 30, "", args, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_all_asks_on_a_terminal_and_no_changes_nothing() {
    let h = start(|_| {}).await;
    let clients = h.clients("asked", 3, 3).await;

    let t = in_terminal(&h, "disconnect --all");
    t.until("the question", 10, |s| {
        s.contains(
            "about to disconnect every registered connection: 3 connections.\nProceed? [y/N]",
        )
    })
    .await;
    t.text("n");
    t.keys(&["Enter"]);
    let screen = t.until("the refusal", 10, |s| s.contains("EXIT=")).await;
    assert!(
        screen.contains("not confirmed: nothing was changed"),
        "{screen}"
    );
    assert!(screen.contains("EXIT=1"), "{screen}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        clients.iter().all(|c| !c.closed()),
        "nobody was disconnected"
    );
    drop(t);

    let t = in_terminal(&h, "disconnect --all");
    t.until("the question", 10, |s| s.contains("[y/N]")).await;
    t.text("y");
    t.keys(&["Enter"]);
    let screen = t.until("the result", 10, |s| s.contains("EXIT=")).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    for c in &clients {
        assert!(
            support::eventually(5, || c.closed()).await,
            "{} closed",
            c.agent
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_shows_a_progress_bar_on_a_terminal_only() {
    let h = start(|_| {}).await;
    let clients = h.clients("watched", 200, 50).await;

    // 200 targets at 80/s: about 2.5 s, long enough to see the bar.
    // To everyone: asked first, with the count.
    let t = in_terminal(&h, "broadcast --data progress --rate 80");
    t.until("the question", 10, |s| {
        s.contains("about to broadcast 8 bytes to every registered connection: 200 connections")
    })
    .await;
    t.text("y");
    t.keys(&["Enter"]);
    let screen = t
        .until("a bar with position, rate and ETA", 10, |s| {
            s.contains("/200") && s.contains("eta")
        })
        .await;
    assert!(
        !screen.contains("EXIT="),
        "still running while the bar shows"
    );
    let screen = t.until("the summary", 20, |s| s.contains("EXIT=")).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("to 200 connections"), "{screen}");
    for c in &clients {
        assert!(
            support::eventually(5, || c.messages().iter().any(|m| m == "progress")).await,
            "{} received it",
            c.agent
        );
    }

    // Piped: no bar, no control sequences, the summary only.
    let piped = h
        .local(&["broadcast", "--yes", "--data", "piped"])
        .await
        .success();
    let err = support::stderr(&piped);
    assert!(!err.contains("eta") && !err.contains('\x1b'), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_idle_connections_asks_with_the_count_and_touches_only_those() {
    let h = start(|_| {}).await;
    let idle = h.clients("idler", 3, 3).await;
    // Well past the limit: an answer that reaches a loaded machine late
    // makes wsadmin's estimate of AWS's clock err early (by design), and a
    // connection idle just past 200ms could then read as live and be left.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let t = in_terminal(&h, "disconnect --idle-over 200ms");
    t.until("the question with the count", 10, |s| {
        s.contains("about to close the connections idle over 200ms: 3 connections.\nProceed? [y/N]")
    })
    .await;
    // Arrived after the count: not among what the operator agreed to.
    let late = h.clients("late", 1, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.text("y");
    t.keys(&["Enter"]);
    let screen = t.until("the result", 10, |s| s.contains("EXIT=")).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    for c in &idle {
        assert!(
            support::eventually(5, || c.closed()).await,
            "{} closed",
            c.agent
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late[0].closed(),
        "the late client was not counted, so not closed"
    );
    assert_eq!(h.ids().await, [late[0].id.clone()]);
    h.stop().await;
}

/// At 80 columns a long question wraps between words, never inside one,
/// and asks on a line of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_confirmation_wraps_at_words_on_80_columns() {
    let h = start(|_| {}).await;
    let _clients = h.clients("wrapped", 2, 2).await;
    let selector = "userAgent in (wrapped-0,wrapped-1),room notin (alpha,beta,gamma,delta)";
    let t = h.in_terminal(
        80,
        24,
        "",
        &format!("disconnect --where '{selector}'"),
        true,
    );
    let screen = t.until("the question", 10, |s| s.contains("[y/N]")).await;
    let question = "about to disconnect the connections matching";
    let text: String = screen
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    let start = text.find(question).unwrap_or_else(|| panic!("{screen}"));
    let asked = &text[start..text.find("Proceed? [y/N]").expect("asked")];
    for word in selector.split([' ', ',']).filter(|w| w.len() > 3) {
        assert!(asked.contains(word), "{word:?} whole in {asked:?}");
    }
    assert!(asked.lines().all(|l| l.chars().count() <= 80), "{asked}");
    assert!(asked.ends_with("2 connections.\n"), "{asked:?}");
    t.text("n");
    t.keys(&["Enter"]);
    t.until("the refusal", 10, |s| s.contains("EXIT=1")).await;
    h.stop().await;
}
