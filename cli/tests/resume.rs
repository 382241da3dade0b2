//! Resumable broadcasts (`broadcast --checkpoint FILE`, `--resume FILE`):
//! a broadcast to 5,000 real clients stopped at about half (SIGKILL, then
//! SIGINT) and finished by a second run: every client has the message
//! exactly once and the report adds up; and the resumes that must be
//! refused (another message, another selection, a damaged file).

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use support::{Client, Harness, Running, eventually, fails_with, json, start};

const CLIENTS: usize = 5_000;

fn received(clients: &[Client]) -> usize {
    clients.iter().filter(|c| !c.messages().is_empty()).count()
}

/// Starts a broadcast of `message` to everyone, paced so that stopping it
/// at about half is reachable, and waits until about half have it.
async fn start_and_wait_for_half(
    h: &Harness,
    clients: &[Client],
    message: &str,
    file: &Path,
) -> Running {
    let file = file.to_str().expect("utf-8 path");
    let run = Running::start(
        h,
        &[
            "broadcast",
            "--yes",
            "--data",
            message,
            "--checkpoint",
            file,
            "--rate",
            "500",
            "-o",
            "json",
        ],
    );
    let half = eventually(60, || received(clients) >= CLIENTS / 2).await;
    assert!(half, "half the clients got it: {}", run.stderr());
    run
}

/// Resumes, then checks every client got `message` once (a post a killed
/// run began and never saw end is not sent again: such a client may lack
/// it, and must be listed); returns the report.
async fn resume_and_check(
    h: &Harness,
    clients: &[Client],
    message: &str,
    file: &Path,
) -> serde_json::Value {
    let file = file.to_str().expect("utf-8 path");
    let out = h
        .local(&[
            "broadcast",
            "--yes",
            "--data",
            message,
            "--resume",
            file,
            "-o",
            "json",
        ])
        .await
        .success();
    let v = json(&out);
    let in_doubt: HashSet<String> = v["checkpoint"]["inDoubtIds"]
        .as_array()
        .expect("inDoubtIds")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    let expected = CLIENTS - in_doubt.len();
    assert!(
        eventually(30, || received(clients) >= expected).await,
        "{} of {expected} got it: {v}",
        received(clients)
    );
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in clients {
        let got = c.messages();
        if in_doubt.contains(&c.id) {
            assert!(
                got.len() <= 1,
                "{} in doubt, got it {} times",
                c.agent,
                got.len()
            );
        } else {
            assert_eq!(got, [message], "{} ({}) exactly once", c.agent, c.id);
        }
    }
    // The report is the whole broadcast's: both runs added up.
    let delivered = v["delivered"].as_u64().expect("delivered");
    let doubt = v["checkpoint"]["inDoubt"].as_u64().expect("inDoubt");
    assert_eq!(delivered + doubt, CLIENTS as u64, "{v}");
    assert_eq!(v["targeted"].as_u64(), Some(delivered), "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["checkpoint"]["runs"], 2, "{v}");
    assert_eq!(v["checkpoint"]["complete"], true, "{v}");
    let doubted_got_it = clients
        .iter()
        .filter(|c| in_doubt.contains(&c.id) && !c.messages().is_empty())
        .count();
    eprintln!(
        "resumed: delivered {delivered} over both runs, {doubt} in doubt ({doubted_got_it} of \
         them had it from the killed run), this run's scan {}",
        v["scan"]
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_killed_at_half_then_resumed_reaches_every_client_once() {
    let h = start(|_| {}).await;
    let clients = h.clients("kill", CLIENTS, 64).await;
    let file = h.home().join("killed.checkpoint");
    let run = start_and_wait_for_half(&h, &clients, "killed at half", &file).await;
    let (_, stderr) = run.kill(); // SIGKILL
    let at_kill = received(&clients);
    eprintln!("SIGKILL with {at_kill} of {CLIENTS} reached");
    assert!(at_kill < CLIENTS, "stopped before the end: {stderr}");
    resume_and_check(&h, &clients, "killed at half", &file).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_interrupted_at_half_then_resumed_reaches_every_client_once() {
    let h = start(|_| {}).await;
    let clients = h.clients("int", CLIENTS, 64).await;
    let file = h.home().join("interrupted.checkpoint");
    let run = start_and_wait_for_half(&h, &clients, "interrupted at half", &file).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let (code, lines, stderr) = run.exit(30).await;
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains(&format!("progress saved in {}", file.display())),
        "{stderr}"
    );
    let first: serde_json::Value = serde_json::from_str(&lines.join("\n"))
        .unwrap_or_else(|e| panic!("one JSON report ({e}): {lines:?}"));
    assert_eq!(first["checkpoint"]["complete"], false, "{first}");
    assert_eq!(
        first["checkpoint"]["inDoubt"], 0,
        "a drained stop leaves nothing in doubt: {first}"
    );
    eprintln!(
        "SIGINT: first run delivered {}, {} reached",
        first["delivered"],
        received(&clients)
    );
    let v = resume_and_check(&h, &clients, "interrupted at half", &file).await;
    assert_eq!(v["checkpoint"]["inDoubt"], 0, "{v}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_of_another_broadcast_or_a_damaged_file_are_refused() {
    let h = start(|_| {}).await;
    let clients = h.clients("refuse", 20, 20).await;
    let file = h.home().join("b.checkpoint");
    let path = file.to_str().expect("utf-8 path");
    let out = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "one",
            "--checkpoint",
            path,
            "-o",
            "json",
        ])
        .await
        .success();
    assert_eq!(json(&out)["checkpoint"]["complete"], true);
    assert!(eventually(10, || received(&clients) == 20).await);
    let saved = std::fs::read(&file).expect("checkpoint");

    let other_message = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "two",
            "--resume",
            path,
        ])
        .await;
    fails_with(
        other_message,
        1,
        "is for a different broadcast: the message differs",
    );
    let other_selection = h
        .local(&[
            "broadcast",
            "--where",
            "room=7",
            "--data",
            "one",
            "--resume",
            path,
        ])
        .await;
    fails_with(
        other_selection,
        1,
        "the selection \"matching room=7\" differs",
    );
    let everyone = h
        .local(&["broadcast", "--yes", "--data", "one", "--resume", path])
        .await;
    fails_with(everyone, 1, "the selection \"every connection\" differs");
    let again = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "one",
            "--checkpoint",
            path,
        ])
        .await;
    fails_with(again, 1, "already exists (finish it with --resume");
    assert_eq!(
        std::fs::read(&file).expect("checkpoint"),
        saved,
        "refusals change nothing"
    );

    std::fs::write(&file, &saved[..saved.len() / 2]).expect("truncate");
    let truncated = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "one",
            "--resume",
            path,
        ])
        .await;
    fails_with(truncated, 1, "cannot be resumed safely");
    std::fs::write(&file, b"{\"hello\": 1}\n").expect("garble");
    let foreign = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "one",
            "--resume",
            path,
        ])
        .await;
    fails_with(foreign, 1, "not a wsadmin broadcast checkpoint");
    let missing = h
        .local(&[
            "broadcast",
            "--where",
            "room!=7",
            "--data",
            "one",
            "--resume",
            "/nonexistent/x",
        ])
        .await;
    fails_with(missing, 1, "cannot read checkpoint /nonexistent/x");
    let dry = h
        .local(&[
            "broadcast",
            "--dry-run",
            "--data",
            "one",
            "--checkpoint",
            path,
        ])
        .await;
    fails_with(dry, 2, "--dry-run sends nothing");

    // Nothing was sent by any of them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(clients.iter().all(|c| c.messages() == ["one"]));
    h.stop().await;
}
