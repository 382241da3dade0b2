//! `wsadmin tui` leaving a real terminal (tmux) the way the shell had it:
//! SIGTERM, SIGHUP or SIGINT sent to the process in the middle of a
//! broadcast, and `q` during a broadcast (which asks first). Afterwards the
//! pane is back on the primary screen with the cursor shown, the tty is out
//! of raw mode (typed text echoes), and the exit status is 128 + the
//! signal's number (0 for `q`).
//!
//! The broadcast is kept running by the emulator's throttle (1 call a second
//! for 40 clients), so a signal that waited for it would be seen: clients
//! would all have the message.

use crate::support;

use std::path::Path;

use support::tmux::Tmux;
use support::{Client, Harness, start};
use wsadmin_emulator::Throttle;

const CLIENTS: usize = 40;

/// Runs `wsadmin --context local tui` in a pane under a shell that, once
/// it exits, prints its status, what tmux says of the pane (alternate
/// screen, cursor) and the tty's line modes, then waits. The dashboard's
/// pid (the inner shell `exec`s it) is written to `pidfile`.
fn dashboard(h: &Harness, pidfile: &Path) -> Tmux {
    let dir = h.home();
    let script = format!(
        "sh -c 'echo $$ > {pidfile}; exec env -i HOME={dir} WSADMIN_CONFIG={dir}/config.toml \
         WSADMIN_LOCAL_STATE={dir}/local-stack.json AWS_EC2_METADATA_DISABLED=true \
         TERM=xterm-256color {bin} --context local tui --interval 500ms'; \
         echo EXIT=$?; \
         echo ALT=$(tmux display -p '#{{alternate_on}}'); \
         echo CURSOR=$(tmux display -p '#{{cursor_flag}}'); \
         echo MODES=$(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig|iexten|opost|icrnl)'); \
         sleep 60",
        pidfile = pidfile.display(),
        dir = dir.display(),
        bin = env!("CARGO_BIN_EXE_wsadmin"),
    );
    Tmux::start(120, 30, &["sh".to_owned(), "-c".to_owned(), script])
}

/// Waits for the dashboard to list the clients, then broadcasts `text` and
/// waits for its progress gauge: the broadcast is running.
async fn broadcast_running(t: &Tmux, text: &str) {
    t.until("the dashboard with the registry", 20, |s| {
        s.contains("WS_CONNECTIONS") && s.contains(&format!("registered {CLIENTS}"))
    })
    .await;
    t.keys(&["b"]);
    t.text(text);
    t.keys(&["Enter"]);
    t.until("the broadcast confirmation", 5, |s| {
        s.contains("confirm broadcast")
    })
    .await;
    t.keys(&["y"]);
    t.until("the broadcast's gauge", 5, |s| {
        s.contains(&format!("/ {CLIENTS}")) && s.contains("broadcast ")
    })
    .await;
}

fn pid_in(pidfile: &Path) -> String {
    let pid = std::fs::read_to_string(pidfile).expect("the pid file");
    let pid = pid.trim();
    assert!(pid.parse::<u32>().is_ok(), "a pid: {pid:?}");
    pid.to_owned()
}

fn send(signal: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -s {signal} {pid}");
}

/// The value of `NAME=value`, a line the shell printed after the dashboard
/// ended.
fn after(screen: &str, name: &str) -> String {
    let prefix = format!("{name}=");
    screen
        .lines()
        .find_map(|l| l.trim().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}= line on the screen:\n{screen}"))
        .trim()
        .to_owned()
}

/// The terminal is as the shell left it: primary screen, cursor shown,
/// canonical mode with echo and signals (no raw mode), and it echoes what
/// is typed; the dashboard's screen is gone. Returns the exit status.
async fn restored(t: &Tmux) -> String {
    let screen = t
        .until("the dashboard ends and the shell reports", 15, |s| {
            s.contains("MODES=")
        })
        .await;
    assert_eq!(after(&screen, "ALT"), "0", "primary screen:\n{screen}");
    assert_eq!(after(&screen, "CURSOR"), "1", "cursor shown:\n{screen}");
    let modes = after(&screen, "MODES");
    let modes: Vec<&str> = modes.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig", "iexten", "opost", "icrnl"] {
        assert!(modes.contains(&mode), "{mode} is on: {modes:?}\n{screen}");
    }
    assert!(
        !screen.contains("WS_CONNECTIONS"),
        "the dashboard's screen is gone:\n{screen}"
    );
    t.text("typed-after-exit");
    t.until("typed text echoed by the tty", 5, |s| {
        s.contains("typed-after-exit")
    })
    .await;
    after(&screen, "EXIT")
}

fn received(clients: &[Client], text: &str) -> usize {
    clients
        .iter()
        .filter(|c| c.messages().iter().any(|m| m == text))
        .count()
}

async fn throttled_stack() -> (Harness, Vec<Client>) {
    let h = start(|c| {
        c.throttle = Some(Throttle {
            rps: 1.0,
            burst: 1.0,
        })
    })
    .await;
    let clients = h.clients("sig", CLIENTS, 8).await;
    (h, clients)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_a_broadcast_restores_the_terminal_and_exits_128_plus_its_number() {
    let (h, clients) = throttled_stack().await;
    for (signal, status) in [("TERM", "143"), ("HUP", "129"), ("INT", "130")] {
        let pidfile = h.home().join(format!("wsadmin-{signal}.pid"));
        let t = dashboard(&h, &pidfile);
        let text = format!("before SIG{signal}");
        broadcast_running(&t, &text).await;

        send(signal, &pid_in(&pidfile));
        let exit = restored(&t).await;
        assert_eq!(exit, status, "exit status after SIG{signal}");
        // It did not wait for the broadcast: most clients never got it.
        let got = received(&clients, &text);
        assert!(
            got < CLIENTS,
            "SIG{signal} ended the run before the broadcast did ({got} of {CLIENTS} received)"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_during_a_broadcast_asks_first_and_y_quits_with_the_terminal_restored() {
    let (h, clients) = throttled_stack().await;
    let pidfile = h.home().join("wsadmin-q.pid");
    let t = dashboard(&h, &pidfile);
    broadcast_running(&t, "before q").await;

    t.keys(&["q"]);
    t.until("the question", 5, |s| {
        s.contains("A broadcast is running") && s.contains("abandon")
    })
    .await;
    t.keys(&["n"]);
    t.until("back to the dashboard, the broadcast going on", 5, |s| {
        !s.contains("abandon") && s.contains(&format!("/ {CLIENTS}"))
    })
    .await;
    // Still running, and so is the broadcast: `q` asks again.
    t.keys(&["q"]);
    t.until("the question again", 5, |s| s.contains("abandon"))
        .await;
    t.keys(&["y"]);
    assert_eq!(restored(&t).await, "0");
    assert!(received(&clients, "before q") < CLIENTS);
    h.stop().await;
}
