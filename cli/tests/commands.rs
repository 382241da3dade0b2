//! Every command against the local stack, with real WebSocket clients:
//! what an operator sees in tables (snapshots, with a fixed clock and seeded
//! records so nothing is volatile) and what scripts read (JSON, parsed).

use crate::support;

use std::time::Duration;

use assert_cmd::assert::{Assert, OutputAssertExt};
use support::{Harness, NOW_MS, eventually, json, run, start, stderr, stdout};
use wsadmin_core::ConnectionRecord;
use wsadmin_harness::{assert_silent, recv_close, recv_text};

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
    // Idleness is GetConnection's: --sort idle probes, as --live does.
    let v = json(
        &h.local(&["list", "--sort", "idle", "-o", "json"])
            .await
            .success(),
    );
    let states: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["state"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(states, ["gone", "gone", "gone"], "{v}");

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
        &h.local(&["list", "-o", "ids", "--where", "userAgent=*evil*"])
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
            "userAgent=lister-*",
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

    let a = h.local(&["inspect", "--", &id]).await.success();
    let text = stdout(&a);
    assert!(text.starts_with(&format!("{id}  live\n")), "{text}");
    assert!(text.contains("FIELD         RECORD"), "{text}");
    assert!(text.contains("inspected/1.0"), "{text}");

    let v = json(
        &h.local(&["inspect", "-o", "json", "--", &id])
            .await
            .success(),
    );
    assert_eq!(v["state"], "live");
    assert_eq!(v["record"]["userAgent"], "inspected/1.0-0");
    assert_eq!(v["connection"]["sourceIp"], "127.0.0.1");
    assert!(v["connection"]["lastActiveAt"].as_i64().is_some());

    // An id nobody knows: the report says so, stderr says so, exit 1.
    let a = h
        .local(&[
            "inspect",
            "BBBBBBBBBBBBBBB=",
            "NOTREGISTERED0=",
            "-o",
            "json",
        ])
        .await
        .code(1);
    let v = json(&a);
    assert_eq!(v[0]["state"], "gone", "a record without a connection");
    assert_eq!(v[1]["state"], "not registered");
    assert_eq!(v[1]["record"], serde_json::Value::Null);
    assert_eq!(
        stderr(&a).trim(),
        "wsadmin: NOTREGISTERED0=: not registered, and API Gateway has no such connection (410)"
    );

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
        .local(&[
            "send",
            "--data",
            "hello \u{1b}[2J there",
            "--",
            &a.id,
            &b.id,
        ])
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
    h.local(&["send", "--file", file.to_str().expect("utf8"), "--", &a.id])
        .await
        .success();
    let mut cmd = h.cmd();
    cmd.args(["--context", "local", "send", "--file", "-", "--", &a.id])
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
            "--data",
            "x",
            "-o",
            "json",
            "--",
            &a.id,
            "AAAAAAAAAAAAAAA=",
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
    // Who would receive it needs no message.
    let out = h
        .local(&["broadcast", "--dry-run", "--where", "userAgent=fan-1*"])
        .await
        .success();
    assert!(
        stdout(&out).contains("dry run: would broadcast to 11 connections"),
        "{}",
        stdout(&out)
    );

    let out = h
        .local(&["broadcast", "--yes", "--data", "hi all", "-o", "json"])
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
        text.starts_with("broadcast 10 bytes to 1 connection in ") && text.contains("delivered/s)"),
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
            "--yes",
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
            "-o",
            "json",
            "--",
            &clients[0].id,
            "AAAAAAAAAAAAAAA=",
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
    let text = stdout(&out);
    assert!(
        text.starts_with("disconnect: ") && text.contains(" closed, "),
        "{text}"
    );
    assert!(
        !text.contains("idle"),
        "no idle filter, no idle wording: {text}"
    );
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

    // Idle over a limit: disconnected. Idle is measured on AWS's clock as
    // wsadmin knows it from `Date` headers (whole seconds, read late), which
    // errs early by up to a second and an answer's delay: the clients must
    // be idle well past the limit for that.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    clients[0].close().await;
    let v = json(
        &h.local(&["prune", "--idle-over", "200ms", "--yes", "-o", "json"])
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

/// `wsadmin --context local ARGS…` with `input` on standard input.
async fn piped(h: &Harness, args: &[&str], input: String) -> Assert {
    let mut cmd = h.cmd();
    cmd.arg("--context")
        .arg("local")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        // A command refusing early may not read it all.
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join")
    .assert()
}

fn sorted(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_a_leading_dash_and_ids_from_standard_input() {
    let h = start(|_| {}).await;
    // 1 id in 64 starts with '-': connect until one does.
    let mut clients = Vec::new();
    let dashed = loop {
        let round = clients.len() / 64;
        assert!(
            round < 10,
            "no id starting with '-' in {} ids",
            clients.len()
        );
        clients.extend(h.clients(&format!("dash{round}"), 64, 32).await);
        if let Some(i) = clients.iter().position(|c| c.id.starts_with('-')) {
            break i;
        }
    };
    let id = clients[dashed].id.clone();
    let others: Vec<usize> = (0..clients.len())
        .filter(|&i| i != dashed)
        .take(4)
        .collect();

    // After `--` it is an id; without, a usage error that says so.
    let v = json(
        &h.local(&["inspect", "-o", "json", "--", &id])
            .await
            .success(),
    );
    assert_eq!(v["state"], "live", "{v}");
    let out = h.local(&["inspect", &id]).await.code(2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("'{id}'")) && err.contains("goes after `--`"),
        "{err}"
    );
    let v = json(
        &h.local(&["send", "--data", "to the dash", "-o", "json", "--", &id])
            .await
            .success(),
    );
    assert_eq!(v[0]["result"], "delivered", "{v}");
    assert!(eventually(5, || clients[dashed].messages() == ["to the dash"]).await);

    // A bad id on standard input: a usage error naming it, nothing sent.
    let a = &clients[others[0]];
    let out = piped(
        &h,
        &["send", "--data", "never", "-"],
        format!("{}\n\nbad id\n", a.id),
    )
    .await
    .code(2);
    assert!(stderr(&out).contains("\"bad id\""), "{}", stderr(&out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.messages().is_empty(), "nothing was sent");
    // Nothing on standard input is no id, not an id named "-".
    let out = piped(&h, &["disconnect", "-"], "\n\n".to_owned())
        .await
        .code(2);
    assert!(
        stderr(&out).contains("no connection id on standard input"),
        "{}",
        stderr(&out)
    );

    // One per line, blank lines skipped, ids with a leading dash too.
    let v = json(
        &piped(
            &h,
            &["disconnect", "-o", "json", "-"],
            format!("\n{id}\n\n{}\n", a.id),
        )
        .await
        .success(),
    );
    assert_eq!(v[0]["connectionId"], id.as_str());
    assert_eq!(
        (v[0]["result"].as_str(), v[1]["result"].as_str()),
        (Some("disconnected"), Some("disconnected")),
        "{v}"
    );
    assert!(eventually(5, || clients[dashed].closed() && a.closed()).await);

    // The pipeline of the issue: list's ids into disconnect.
    let (b, c) = (&clients[others[1]], &clients[others[2]]);
    let selector = format!("userAgent in ({},{})", b.agent, c.agent);
    let ids = stdout(
        &h.local(&["list", "--where", &selector, "-o", "ids"])
            .await
            .success(),
    );
    assert_eq!(sorted(&ids), sorted(&format!("{}\n{}\n", b.id, c.id)));
    piped(&h, &["disconnect", "-", "--yes"], ids)
        .await
        .success();
    assert!(eventually(5, || b.closed() && c.closed()).await);
    assert!(!clients[others[3]].closed());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_like_kubectl_and_unparseable_ones_show_the_grammar() {
    let h = start(|_| {}).await;
    h.stack.store().put_batch(&seeded()).await.expect("seed");
    let select = |selector: &'static str| {
        let h = &h;
        async move {
            let out = h
                .local(&["list", "-o", "ids", "--where", selector])
                .await
                .success();
            sorted(&stdout(&out))
        }
    };
    let (a, b, c) = ("AAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBB=", "CCCCCCCCCCCCCCC=");
    assert_eq!(select("room=7,user!=bob").await, [a]);
    assert_eq!(select("room!=3").await, [a, b, c], "absent is not 3");
    assert_eq!(select("room in (1,7)").await, [a]);
    assert_eq!(select("room notin (7)").await, [b, c]);
    assert_eq!(select("user").await, [a, b]);
    assert_eq!(select("!user").await, [c]);
    assert_eq!(select("userAgent=*x11*").await, [a], "ignoring case");
    assert_eq!(select("sourceIp=198.51.*").await, [b]);
    // Repeated flags all hold.
    let out = h
        .local(&["list", "-o", "ids", "--where", "user", "--where", "room=7"])
        .await
        .success();
    assert_eq!(stdout(&out), format!("{a}\n"));

    // The same selector on prune (a dry run: gone records it would delete).
    let out = h
        .local(&["prune", "--where", "user=bob", "--dry-run", "-o", "ids"])
        .await
        .success();
    assert_eq!(stdout(&out), format!("{b}\n"));
    assert_eq!(h.ids().await.len(), 3);

    for bad in ["room!", "a=1,", "room in (1", "user ana"] {
        let out = h.local(&["list", "--where", bad]).await.code(2);
        let err = stderr(&out);
        assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        assert!(err.contains("key notin (v1,v2)"), "{bad}: {err}");
        for cmd in [
            &["broadcast", "--data", "x", "--where", bad][..],
            &["disconnect", "--where", bad, "--yes"],
            &["prune", "--where", bad],
        ] {
            h.local(cmd).await.code(2);
        }
    }
    assert_eq!(h.ids().await.len(), 3, "nothing changed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_commands_refuse_without_a_terminal_and_dry_runs_list_the_targets() {
    let h = start(|_| {}).await;
    let mut room = Vec::new();
    for i in 0..3 {
        let config = Default::default();
        room.push(
            h.client_with(&format!("roomer-{i}"), "?room=7", config)
                .await,
        );
    }
    let others = h.clients("elsewhere", 2, 2).await;
    let room_ids: Vec<String> = sorted(
        &room
            .iter()
            .map(|c| format!("{}\n", c.id))
            .collect::<String>(),
    );
    let all = h.ids().await;
    assert_eq!(all.len(), 5);

    // Without a terminal and without --yes: exit 2, one line, nothing done.
    for cmd in [
        &["disconnect", "--where", "room=7"][..],
        &["disconnect", "--all"],
        &["disconnect", "--idle-over", "0s"],
        &["prune", "--idle-over", "0s"],
        &["broadcast", "--data", "to all"],
    ] {
        let out = h.local(cmd).await;
        let err = support::fails_with(out, 2, "without --yes");
        assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
        assert!(err.contains("pass --yes"), "{err}");
    }
    assert_eq!(h.ids().await, all);

    // Dry runs: exactly the targets on stdout with -o ids, the sentence on
    // stderr, nothing changed.
    let out = h
        .local(&["disconnect", "--where", "room=7", "--dry-run", "-o", "ids"])
        .await
        .success();
    assert_eq!(sorted(&stdout(&out)), room_ids);
    assert!(
        stderr(&out).contains("dry run: would disconnect 3 connections"),
        "{}",
        stderr(&out)
    );
    let out = h
        .local(&["broadcast", "--data", "to all", "--dry-run", "-o", "ids"])
        .await
        .success();
    assert_eq!(sorted(&stdout(&out)), all);
    assert!(stderr(&out).contains("would broadcast 6 bytes to 5 connections"));
    // Idle on AWS's clock as `Date` headers tell it (whole seconds, read
    // late): it errs early by up to a second and an answer's delay, so a
    // client is surely idle over 0s only once it is older than that.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let out = h
        .local(&["prune", "--idle-over", "0s", "--dry-run", "-o", "ids"])
        .await
        .success();
    assert_eq!(
        sorted(&stdout(&out)),
        all,
        "every fresh client is idle over 0s"
    );
    let out = h
        .local(&[
            "disconnect",
            "--idle-over",
            "0s",
            "--where",
            "room=7",
            "--dry-run",
            "-o",
            "ids",
        ])
        .await
        .success();
    assert_eq!(sorted(&stdout(&out)), room_ids);
    let text = stdout(
        &h.local(&["disconnect", "--all", "--dry-run"])
            .await
            .success(),
    );
    for id in &all {
        assert!(text.contains(&format!("would disconnect {id}")), "{text}");
    }
    assert_eq!(h.ids().await, all, "dry runs change nothing");
    assert!(
        others
            .iter()
            .all(|c| c.messages().is_empty() && !c.closed())
    );
    for c in &mut room {
        assert_silent(&mut c.ws, Duration::from_millis(100)).await;
    }

    // A selector is no broadcast to everyone: no question.
    h.local(&["broadcast", "--data", "room only", "--where", "room=7"])
        .await
        .success();
    for c in &mut room {
        assert_eq!(recv_text(&mut c.ws).await, "room only");
    }

    // --yes proceeds: the room closed, the others untouched.
    let v = json(
        &h.local(&["disconnect", "--where", "room=7", "--yes", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(v["disconnected"], 3, "{v}");
    for c in &mut room {
        recv_close(&mut c.ws, Duration::from_secs(5)).await;
    }
    let mut rest: Vec<String> = others.iter().map(|c| c.id.clone()).collect();
    rest.sort();
    assert_eq!(h.ids().await, rest);
    assert!(others.iter().all(|c| !c.closed()));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_by_meta_key_user_agent_family_and_age_and_status_counts() {
    let h = start(|_| {}).await;
    let mut records = seeded();
    let mut d = ConnectionRecord::new("DDDDDDDDDDDDDDD=").connected_at(NOW_MS - 30_000);
    d.user_agent = Some("Mozilla/5.0 (X11; rv:120.0) Gecko/20100101 Firefox/120.0".into());
    d.meta.insert("room".into(), "7".into());
    records.push(d);
    h.stack.store().put_batch(&records).await.expect("seed");
    let stats = |args: &[&str]| {
        let mut cmd = h.cmd();
        cmd.env("WSADMIN_NOW", now())
            .args(["--context", "local", "stats"])
            .args(args);
        run(cmd)
    };

    let v = json(
        &stats(&["--by", "room", "--by", "userAgent", "-o", "json"])
            .await
            .success(),
    );
    assert_eq!(v["registered"], 4, "{v}");
    assert_eq!(
        v["by"]["room"],
        serde_json::json!([{"value": "(none)", "count": 2}, {"value": "7", "count": 2}])
    );
    let families = v["by"]["userAgent"].as_array().expect("groups");
    assert!(
        families.contains(&serde_json::json!({"value": "Firefox", "count": 1})),
        "{v}"
    );
    let age = |bucket: &str| {
        v["age"]
            .as_array()
            .expect("age")
            .iter()
            .find(|g| g["value"] == bucket)
            .map(|g| g["count"].clone())
    };
    assert_eq!(age("<1m"), Some(1.into()));
    assert_eq!(age("1m-10m"), Some(1.into()));
    assert_eq!(age("1h-6h"), Some(1.into()));
    assert_eq!(age("unknown"), Some(1.into()));

    // The same selector as everywhere.
    let v = json(&stats(&["--where", "room=7", "-o", "json"]).await.success());
    assert_eq!(v["registered"], 2);
    let text = stdout(&stats(&["--by", "user"]).await.success());
    assert!(text.starts_with("registered 4\n"), "{text}");
    assert!(text.contains("by user") && text.contains("ana"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");

    // status: the registered count, and how it was had.
    let text = stdout(&h.local(&["status"]).await.success());
    assert!(text.contains("registered 4 (counted now)"), "{text}");
    let v = json(&h.local(&["status", "-o", "json"]).await.success());
    assert_eq!(v["table"]["registered"]["count"], 4);
    assert_eq!(v["table"]["registered"]["source"], "count");
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
