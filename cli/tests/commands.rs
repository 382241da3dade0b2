//! Every command against the local stack, with real WebSocket clients:
//! what an operator sees in tables (snapshots, with a fixed clock and seeded
//! records so nothing is volatile) and what scripts read (JSON, parsed).

mod support;

use std::time::Duration;

use support::{NOW_MS, eventually, json, run, start, stderr, stdout};
use wsadmin_core::ConnectionRecord;

/// Records with fixed ids and times, as a foreign stack might hold: their
/// connections do not exist, so the Management API answers 410 for them.
fn seeded() -> Vec<ConnectionRecord> {
    let mut a = ConnectionRecord::new("AAAAAAAAAAAAAAA=").connected_at(NOW_MS - 90_000);
    a.source_ip = Some("203.0.113.9".into());
    a.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    a.meta.insert("user".into(), "ana".into());
    a.meta.insert("room".into(), "7".into());
    let mut b = ConnectionRecord::new("BBBBBBBBBBBBBBB=").connected_at(NOW_MS - 3 * 3_600_000);
    b.source_ip = Some("198.51.100.4".into());
    b.user_agent = Some("\x1b[31mEVIL\x1b]0;pwned\x07".into());
    b.meta.insert("user".into(), "bob".into());
    let c = ConnectionRecord::new("CCCCCCCCCCCCCCC=");
    vec![a, b, c]
}

fn now() -> String {
    NOW_MS.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_prints_tables_json_ndjson_and_ids_and_filters() {
    let h = start(|_| {}).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");

    let mut cmd = h.cmd();
    cmd.env("WSADMIN_NOW", now())
        .args(["--context", "local", "list", "--sort", "age"]);
    let a = run(cmd).await.success();
    let table = stdout(&a);
    assert!(
        !table.contains('\x1b'),
        "escape sequences reach the terminal: {table:?}"
    );
    insta::assert_snapshot!("list_table", table);

    let mut cmd = h.cmd();
    cmd.env("WSADMIN_NOW", now())
        .args(["--context", "local", "list", "--live", "--sort", "age"]);
    insta::assert_snapshot!("list_live_table", stdout(&run(cmd).await.success()));

    // JSON stays exact: the raw user agent, control characters and all.
    let v = json(&h.local(&["list", "-o", "json"]).await.success());
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    let evil = rows
        .iter()
        .find(|r| r["connectionId"] == "BBBBBBBBBBBBBBB=")
        .expect("row");
    assert_eq!(evil["userAgent"], "\x1b[31mEVIL\x1b]0;pwned\x07");
    assert_eq!(evil["meta"]["user"], "bob");
    assert_eq!(evil["connectedAt"], NOW_MS - 3 * 3_600_000);

    let nd = stdout(&h.local(&["list", "-o", "ndjson"]).await.success());
    let lines: Vec<serde_json::Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), 3);

    let ids = stdout(
        &h.local(&["list", "-o", "ids", "--where", "user=ana"])
            .await
            .success(),
    );
    assert_eq!(ids, "AAAAAAAAAAAAAAA=\n");
    let ids = stdout(
        &h.local(&["list", "-o", "ids", "--where", "userAgent=EVIL"])
            .await
            .success(),
    );
    assert_eq!(ids, "BBBBBBBBBBBBBBB=\n");
    let mut cmd = h.cmd();
    cmd.env("WSADMIN_NOW", now()).args([
        "--context",
        "local",
        "list",
        "-o",
        "ids",
        "--older-than",
        "1h",
    ]);
    assert_eq!(stdout(&run(cmd).await.success()), "BBBBBBBBBBBBBBB=\n");
    let two = stdout(
        &h.local(&["list", "-o", "ids", "--limit", "2"])
            .await
            .success(),
    );
    assert_eq!(two.lines().count(), 2);
    let empty = h
        .local(&["list", "-o", "json", "--where", "user=nobody"])
        .await
        .success();
    assert_eq!(json(&empty), serde_json::json!([]));

    // A real client shows as live, with its idle time.
    let clients = h.clients("lister", 1, 1).await;
    let v = json(
        &h.local(&[
            "list",
            "--live",
            "-o",
            "json",
            "--where",
            "userAgent=lister",
        ])
        .await
        .success(),
    );
    assert_eq!(v[0]["connectionId"], clients[0].id.as_str());
    assert_eq!(v[0]["state"], "live");
    assert!(v[0]["idleMs"].as_u64().is_some(), "{v}");
    // --idle-over implies --live: a fresh client is not idle for an hour.
    let v = json(
        &h.local(&["list", "--idle-over", "1h", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(v, serde_json::json!([]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_record_and_connection_side_by_side() {
    let h = start(|_| {}).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");
    let clients = h.clients("inspected/1.0", 1, 1).await;
    let id = clients[0].id.clone();

    let a = h.local(&["inspect", &id]).await.success();
    let text = stdout(&a);
    assert!(text.starts_with(&format!("{id}  live\n")), "{text}");
    assert!(text.contains("FIELD         RECORD"), "{text}");
    assert!(text.contains("inspected/1.0"), "{text}");

    let v = json(&h.local(&["inspect", &id, "-o", "json"]).await.success());
    assert_eq!(v["state"], "live");
    assert_eq!(v["record"]["userAgent"], "inspected/1.0-0");
    assert_eq!(v["connection"]["sourceIp"], "127.0.0.1");
    assert!(v["connection"]["lastActiveAt"].as_i64().is_some());

    let v = json(
        &h.local(&[
            "inspect",
            "BBBBBBBBBBBBBBB=",
            "NOTREGISTERED0=",
            "-o",
            "json",
        ])
        .await
        .success(),
    );
    assert_eq!(v[0]["state"], "gone", "a record without a connection");
    assert_eq!(v[1]["state"], "not registered");
    assert_eq!(v[1]["record"], serde_json::Value::Null);

    insta::assert_snapshot!(
        "inspect_gone_table",
        stdout(&h.local(&["inspect", "BBBBBBBBBBBBBBB="]).await.success())
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_and_reports_a_result_per_id() {
    let h = start(|_| {}).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");
    let clients = h.clients("receiver", 2, 2).await;
    let (a, b) = (&clients[0], &clients[1]);

    let out = h
        .local(&["send", &a.id, &b.id, "--data", "hello \u{1b}[2J there"])
        .await
        .success();
    let text = stdout(&out);
    assert!(text.contains("delivered"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(eventually(5, || a.messages().len() == 1 && b.messages().len() == 1).await);
    assert_eq!(a.messages(), vec!["hello \u{1b}[2J there".to_owned()]);

    // From a file and from stdin.
    let file = h.dir.path().join("msg.txt");
    std::fs::write(&file, "from a file").expect("write");
    h.local(&["send", &a.id, "--file", file.to_str().expect("utf8")])
        .await
        .success();
    let mut cmd = h.cmd();
    cmd.args(["--context", "local", "send", &a.id, "-"])
        .stdin(std::process::Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"from stdin")
            .expect("write");
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(eventually(5, || a.messages().len() == 3).await);
    assert_eq!(a.messages()[1..], ["from a file", "from stdin"]);

    // One live, one gone: a partial failure (3) with a result per id.
    let out = h
        .local(&[
            "send",
            &a.id,
            "AAAAAAAAAAAAAAA=",
            "--data",
            "x",
            "-o",
            "json",
        ])
        .await
        .code(3);
    let v = json(&out);
    assert_eq!(v[0]["result"], "delivered");
    assert_eq!(v[1]["result"], "gone");
    assert_eq!(v[1]["connectionId"], "AAAAAAAAAAAAAAA=");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_everyone_prunes_gone_records_and_reports() {
    let h = start(|_| {}).await;
    let clients = h.clients("fan", 20, 10).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");

    let v = json(
        &h.local(&["broadcast", "--data", "hi all", "--dry-run", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(
        (v["dryRun"].as_bool(), v["targeted"].as_u64()),
        (Some(true), Some(23))
    );
    assert!(
        clients.iter().all(|c| c.messages().is_empty()),
        "dry run sends nothing"
    );

    let out = h
        .local(&["broadcast", "--data", "hi all", "-o", "json"])
        .await;
    let v = json(&out);
    out.code(0);
    assert_eq!(v["targeted"], 23);
    assert_eq!(v["delivered"], 20);
    assert_eq!(v["gone"], 2);
    assert_eq!(v["recordsRemoved"], 2, "gone records pruned");
    assert_eq!(
        v["marked"], 1,
        "a record without connectedAt is only marked on its first 410"
    );
    assert_eq!(v["failed"], 0);
    assert!(eventually(5, || clients.iter().all(|c| c.messages() == ["hi all"])).await);
    assert_eq!(h.ids().await.len(), 21);

    // Filters, and the summary a person reads.
    let out = h
        .local(&[
            "broadcast",
            "--data",
            "only fan-3",
            "--where",
            "userAgent=fan-3",
        ])
        .await
        .success();
    let text = stdout(&out);
    assert!(
        text.starts_with("broadcast 10 bytes to 1 connections"),
        "{text}"
    );
    assert!(text.contains("delivered    1"), "{text}");
    assert!(
        stderr(&out).is_empty(),
        "no progress bar when not a terminal"
    );
    assert!(eventually(5, || clients[3].messages().len() == 2).await);
    assert_eq!(clients[4].messages().len(), 1);

    // --no-prune leaves a gone record; --rate caps the pace.
    h.stack.store().put(&seeded()[0]).await.expect("seed");
    let v = json(
        &h.local(&[
            "broadcast",
            "--data",
            "x",
            "--no-prune",
            "--rate",
            "50",
            "-o",
            "json",
        ])
        .await
        .success(),
    );
    assert_eq!(
        (v["gone"].as_u64(), v["recordsRemoved"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(
        v["elapsedMs"].as_u64().expect("ms") >= 350,
        "21 requests at 50/s: {v}"
    );
    assert!(h.ids().await.contains(&"AAAAAAAAAAAAAAA=".to_owned()));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_closes_connections_and_removes_records() {
    let h = start(|_| {}).await;
    let clients = h.clients("closing", 4, 4).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");

    let out = h
        .local(&[
            "disconnect",
            &clients[0].id,
            "AAAAAAAAAAAAAAA=",
            "-o",
            "json",
        ])
        .await
        .success();
    let v = json(&out);
    assert_eq!(v[0]["result"], "disconnected");
    assert_eq!(v[1]["result"], "gone");
    assert_eq!(v[1]["recordRemoved"], true, "a gone id's record goes too");
    assert!(
        eventually(5, || clients[0].closed()).await,
        "the client was closed"
    );
    assert!(!clients[1].closed());

    // --all refuses without --yes when not on a terminal, changing nothing.
    let before = h.ids().await;
    let out = h.local(&["disconnect", "--all"]).await;
    support::fails_with(out, 2, "without --yes");
    assert_eq!(h.ids().await, before);

    let out = h.local(&["disconnect", "--all", "--yes"]).await.success();
    assert!(stdout(&out).contains("disconnected"));
    assert!(eventually(5, || clients.iter().all(|c| c.closed())).await);
    // Only the record without connectedAt stays: its first 410 marks it.
    assert_eq!(h.ids().await, ["CCCCCCCCCCCCCCC="]);
    let c = h
        .stack
        .store()
        .get("CCCCCCCCCCCCCCC=")
        .await
        .expect("get")
        .expect("kept");
    assert!(c.gone_seen_at.is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_stale_records_and_closes_idle_ones() {
    let h = start(|_| {}).await;
    let mut clients = h.clients("pruned", 3, 3).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");
    let live: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();

    let out = h.local(&["prune", "--dry-run"]).await.success();
    let text = stdout(&out);
    assert!(text.contains("(dry run): 6 records checked"), "{text}");
    assert!(
        text.contains("would delete record  AAAAAAAAAAAAAAA="),
        "{text}"
    );
    assert_eq!(h.ids().await.len(), 6, "a dry run changes nothing");

    let v = json(&h.local(&["prune", "-o", "json"]).await.success());
    assert_eq!(v["targeted"], 6);
    assert_eq!(v["live"], 3);
    assert_eq!(v["recordsRemoved"], 2);
    assert_eq!(v["marked"], 1, "no connectedAt: marked on its first 410");
    assert_eq!(h.ids().await.len(), 4);
    // A second 410 at least the grace later deletes it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let v = json(
        &h.local(&["prune", "--grace", "1s", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(v["recordsRemoved"], 1, "{v}");
    let mut remaining = h.ids().await;
    remaining.sort();
    let mut want = live.clone();
    want.sort();
    assert_eq!(remaining, want, "exactly the live records are kept");

    let v = json(&h.local(&["prune", "-o", "json"]).await.success());
    assert_eq!(
        (v["recordsRemoved"].as_u64(), v["live"].as_u64()),
        (Some(0), Some(3))
    );

    // Idle over a limit: disconnected (fresh clients are idle a few ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    clients[0].close().await;
    let v = json(
        &h.local(&["prune", "--idle-over", "200ms", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(v["disconnected"], 2, "{v}");
    assert!(eventually(5, || clients[1].closed() && clients[2].closed()).await);
    assert!(h.ids().await.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_describes_the_local_stack_and_gives_a_verdict() {
    let h = start(|_| {}).await;
    let out = h.local(&["status"]).await.success();
    let text = stdout(&out);
    assert!(text.contains("no API Gateway control plane"), "{text}");
    assert!(text.contains("WS_CONNECTIONS"), "{text}");
    assert!(text.contains("connectionId (HASH)"), "{text}");
    assert!(text.contains("  ttl        "), "{text}");
    assert!(
        text.lines().last().expect("verdict").starts_with("ok: "),
        "{text}"
    );

    let v = json(&h.local(&["status", "-o", "json"]).await.success());
    assert_eq!(v["ok"], true);
    assert_eq!(v["api"]["source"], "local");
    assert_eq!(v["table"]["exists"], true);
    assert_eq!(v["management"]["reachable"], true);

    // A missing table and a wrong stage are problems: exit 1, verdict says so.
    let endpoint = format!("http://{}/prod", h.stack.addr());
    let out = h
        .local(&["status", "--table", "NOPE", "--endpoint", &endpoint])
        .await
        .code(1);
    let text = stdout(&out);
    let verdict = text.lines().last().expect("verdict");
    assert!(verdict.starts_with("problem: "), "{text}");
    assert!(verdict.contains("table \"NOPE\" not found"), "{verdict}");
    assert!(verdict.contains("forbidden"), "{verdict}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_into_a_closed_pipe_exits_quietly() {
    let h = start(|_| {}).await;
    let many: Vec<ConnectionRecord> = (0..3000)
        .map(|i| ConnectionRecord::new(format!("pipe{i:011}=")).connected_at(NOW_MS))
        .collect();
    h.stack.store().put_batch(&many).await.expect("seed");
    let mut cmd = h.cmd();
    cmd.args(["--context", "local", "list", "-o", "ndjson"]);
    let (status, err) = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = [0u8; 64];
        child
            .stdout
            .as_mut()
            .expect("stdout")
            .read_exact(&mut first)
            .expect("read");
        drop(child.stdout.take()); // `head` has what it wanted
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        (child.wait().expect("wait"), err)
    })
    .await
    .expect("join");
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(err, "", "quiet on a broken pipe");
    h.stop().await;
}

#[test]
fn completions_and_man_page_come_from_the_definition() {
    let dir = tempfile::tempdir().expect("dir");
    for shell in ["bash", "zsh", "fish"] {
        let out = support::wsadmin_in(dir.path())
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("broadcast") && text.contains("idle-over"),
            "{shell}"
        );
    }
    let out = support::wsadmin_in(dir.path())
        .arg("man")
        .output()
        .expect("runs");
    let roff = String::from_utf8_lossy(&out.stdout);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH wsadmin"),
        "{roff}"
    );
    assert!(roff.contains("prune"), "{roff}");
    let help = support::wsadmin_in(dir.path())
        .arg("--help")
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("3  partial failure"),
        "exit codes in --help: {help}"
    );
}
