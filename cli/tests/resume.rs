//! Resumable broadcasts (`broadcast --checkpoint FILE`, `--resume FILE`):
//! a broadcast to 5,000 real clients stopped at about half (SIGKILL, then
//! SIGINT) and finished by a second run: every client has the message
//! exactly once (the posts a killed run left in doubt settled by
//! GetConnection) and the report adds up; each way a post in doubt is
//! settled; and the resumes that must be refused (another message, another
//! selection, a damaged file).

use crate::support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::assert::Assert;
use support::{Client, Harness, Running, eventually, fails_with, json, start, stdout};

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

/// `broadcast --yes --data MESSAGE --resume FILE` (and `extra`), succeeding.
async fn resume(h: &Harness, message: &str, file: &Path, extra: &[&str]) -> Assert {
    let file = file.to_str().expect("utf-8 path");
    let mut args = vec!["broadcast", "--yes", "--data", message, "--resume", file];
    args.extend_from_slice(extra);
    h.local(&args).await.success()
}

/// Resumes, then checks every client got `message` exactly once (the
/// posts a killed run left in doubt settled, none left in doubt); returns
/// the report.
async fn resume_and_check(
    h: &Harness,
    clients: &[Client],
    message: &str,
    file: &Path,
) -> serde_json::Value {
    let out = resume(h, message, file, &["-o", "json"]).await;
    let v = json(&out);
    assert!(
        eventually(30, || received(clients) >= CLIENTS).await,
        "{} of {CLIENTS} got it: {v}",
        received(clients)
    );
    // Anything sent twice would have arrived by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in clients {
        assert_eq!(
            c.messages(),
            [message],
            "{} ({}) exactly once",
            c.agent,
            c.id
        );
    }
    // The report is the whole broadcast's: both runs added up.
    assert_eq!(v["checkpoint"]["inDoubt"], 0, "{v}");
    assert_eq!(v["delivered"].as_u64(), Some(CLIENTS as u64), "{v}");
    assert_eq!(v["targeted"].as_u64(), Some(CLIENTS as u64), "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["checkpoint"]["runs"], 2, "{v}");
    assert_eq!(v["checkpoint"]["complete"], true, "{v}");
    eprintln!(
        "resumed: posts in doubt settled {} (delivered before the stop / posted again), this run's scan {}",
        v["checkpoint"]["settled"], v["scan"]
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
    assert_eq!(
        v["checkpoint"]["settled"],
        serde_json::json!({"delivered": 0, "again": 0}),
        "{v}"
    );
    h.stop().await;
}

/// Epoch milliseconds on this machine (the emulator's clock too).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Each way a post in doubt is settled, on a checkpoint written as a
/// killed run leaves one (its identity taken from a real run of the same
/// broadcast): a post that reached its client is not sent again, one that
/// did not is, and one to a gone connection is posted, found gone and its
/// record removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_left_in_doubt_are_settled_by_each_connections_last_activity() {
    let h = start(|_| {}).await;
    let message = "settle me";
    let blank = h.home().join("blank.checkpoint");
    let out = h
        .local(&[
            "broadcast",
            "--yes",
            "--data",
            message,
            "--segments",
            "1",
            "--checkpoint",
            blank.to_str().expect("utf-8 path"),
            "-o",
            "json",
        ])
        .await
        .success();
    assert_eq!(json(&out)["targeted"], 0, "nobody is connected yet");
    let mut snapshot: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&blank)
            .expect("checkpoint")
            .lines()
            .next()
            .expect("a snapshot"),
    )
    .expect("json");
    assert_eq!(
        snapshot["identity"]["segments"], 1,
        "one segment: every post below is in it"
    );
    snapshot["segments"] = serde_json::json!([{"at": "start"}]);
    snapshot["totals"] = serde_json::json!({
        "delivered": 0, "gone": 0, "connecting": 0, "marked": 0, "failed": 0,
        "cleanupFailed": 0, "recordsRemoved": 0, "alreadyRemoved": 0,
        "inDoubt": 0, "runs": 0, "elapsedMs": 0
    });

    let clients = h.clients("settle", 3, 3).await;
    let (reached, quiet, untouched) = (&clients[0], &clients[1], &clients[2]);
    // The killed run's post to `reached` got there: it was made, then the
    // message arrived.
    let reached_at = now_ms();
    h.local(&["send", &reached.id, "--data", message])
        .await
        .success();
    assert!(eventually(10, || reached.messages() == [message]).await);
    // Its post to `quiet` never left: nothing reached it since.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quiet_at = now_ms();
    // And one to a connection gone since (its record left behind).
    let gone =
        wsadmin_core::ConnectionRecord::new("GoneGoneGone0A=").connected_at(now_ms() - 3_600_000);
    h.stack.store().put(&gone).await.expect("seed");

    let file = h.home().join("killed.checkpoint");
    let post = |id: &str, at: i64| serde_json::json!({"post": id, "seg": 0, "at": at}).to_string();
    std::fs::write(
        &file,
        format!(
            "{snapshot}\n{}\n{}\n{}\n",
            post(&reached.id, reached_at),
            post(&quiet.id, quiet_at),
            post(&gone.connection_id, quiet_at)
        ),
    )
    .expect("write");
    let out = resume(&h, message, &file, &["-o", "json"]).await;
    let v = json(&out);
    assert!(
        eventually(10, || quiet.messages() == [message]
            && untouched.messages() == [message])
        .await,
        "{v}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in &clients {
        assert_eq!(c.messages(), [message], "{} exactly once: {v}", c.agent);
    }
    assert_eq!(
        v["checkpoint"]["settled"],
        serde_json::json!({"delivered": 1, "again": 2}),
        "{v}"
    );
    assert_eq!(v["checkpoint"]["inDoubt"], 0, "{v}");
    assert_eq!(
        (v["delivered"].as_u64(), v["gone"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert_eq!(v["recordsRemoved"], 1, "{v}");
    assert!(
        h.record(&gone.connection_id).await.is_none(),
        "the gone one's record removed"
    );
    let text = stdout(&resume(&h, message, &file, &[]).await);
    assert!(
        text.contains("settled      3 posts a killed run left in doubt: 1 had reached the client"),
        "{text}"
    );
    for c in &clients {
        assert_eq!(
            c.messages(),
            [message],
            "a finished broadcast's resume sends nothing"
        );
    }
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
