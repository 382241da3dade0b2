//! wsadmin operates the registries teams already have (issue 17): for each
//! shape, a stack whose real Node.js `$connect`/`$disconnect` handlers
//! write and delete that shape (`tests/fixtures/registries`) runs on
//! `wsstack local` with real clients (the flat one with a global secondary
//! index on `userId`); `wsadmin context add --detect`
//! proposes the mapping and saves it; then `list`, `stats --by`,
//! `broadcast` (exactly once per live client, nothing to other item
//! types), `broadcast --where` (a Query where the selector names a
//! partition), `prune` (only gone connections' items, every one of them)
//! and `disconnect --where` work through it.

use crate::support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use support::Ws;
use support::stack::{Local, connect, fixture, stdout};
use tokio_tungstenite::tungstenite::Message;

/// The template for `shape`, with its key schema, and the handlers, in
/// `dir`.
fn stack_for(dir: &Path, shape: &str) -> std::path::PathBuf {
    let keys = match shape {
        "flat" => {
            "      AttributeDefinitions:\n        - { AttributeName: ConnectionId, AttributeType: S }\n        - { AttributeName: userId, AttributeType: S }\n      KeySchema: [{ AttributeName: ConnectionId, KeyType: HASH }]\n      GlobalSecondaryIndexes:\n        - IndexName: byUser\n          KeySchema: [{ AttributeName: userId, KeyType: HASH }]\n          Projection: { ProjectionType: ALL }"
        }
        _ => {
            "      AttributeDefinitions:\n        - { AttributeName: pk, AttributeType: S }\n        - { AttributeName: sk, AttributeType: S }\n      KeySchema:\n        - { AttributeName: pk, KeyType: HASH }\n        - { AttributeName: sk, KeyType: RANGE }"
        }
    };
    let template = std::fs::read_to_string(fixture("registries/template.yaml"))
        .expect("template")
        .replace("__SHAPE__", shape)
        .replace("__KEYS__", keys);
    let code = dir.join("functions/registry");
    std::fs::create_dir_all(&code).expect("code dir");
    std::fs::copy(
        fixture("registries/functions/registry/index.js"),
        code.join("index.js"),
    )
    .expect("copy the handlers");
    let path = dir.join("template.yaml");
    std::fs::write(&path, template).expect("write the template");
    path
}

/// Every text message `ws` receives within `wait`.
async fn drain(ws: &mut Ws, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(wait, ws.next()).await {
        if let Message::Text(t) = msg {
            got.push(t.to_string());
        }
    }
    got
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).expect("JSON output")
}

async fn dynamodb(local: &Local) -> aws_sdk_dynamodb::Client {
    let info = &local.info;
    let creds = aws_sdk_dynamodb::config::Credentials::new(
        &info.access_key_id,
        &info.secret_access_key,
        None,
        None,
        "test",
    );
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(info.region.clone()))
            .credentials_provider(creds)
            .endpoint_url(&info.dynamodb_endpoint)
            .build(),
    )
}

async fn all_items(local: &Local) -> Vec<HashMap<String, AttributeValue>> {
    dynamodb(local)
        .await
        .scan()
        .table_name("Chat")
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}

async fn put(local: &Local, item: &[(&str, AttributeValue)]) {
    dynamodb(local)
        .await
        .put_item()
        .table_name("Chat")
        .set_item(Some(
            item.iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        ))
        .send()
        .await
        .expect("put");
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// `context add chat --detect --yes` on the stack: the evidence printed,
/// the mapping saved.
fn detect(local: &Local, dir: &Path) -> String {
    let info = &local.info;
    let out = local.wsadmin_as_operator(
        dir,
        &[
            "context",
            "add",
            "chat",
            "--endpoint",
            &info.management_endpoint,
            "--table",
            "Chat",
            "--dynamodb-endpoint",
            &info.dynamodb_endpoint,
            "--detect",
            "--yes",
        ],
    );
    let text = stdout(&out);
    local.wsadmin_as_operator(dir, &["context", "use", "chat"]);
    // The saved mapping shows with the context, as `registry show` shows it.
    let context = json(&local.wsadmin_as_operator(dir, &["context", "show", "-o", "json"]));
    let registry = json(&local.wsadmin_as_operator(dir, &["registry", "show", "-o", "json"]));
    assert!(context["registry"].is_object(), "{context}");
    assert_eq!(context["registry"], registry["mapping"], "{context}");
    text
}

/// Connects `queries.len()` clients, one per query string.
async fn clients(local: &Local, queries: &[&str]) -> Vec<Ws> {
    let mut out = Vec::new();
    for q in queries {
        out.push(connect(&format!("{}?{q}", local.url())).await);
    }
    out
}

/// Broadcasts `data` (with `args`) and returns the report; each client of
/// `expect` must get it exactly once, the others never.
async fn broadcast_once(
    local: &Local,
    dir: &Path,
    all: &mut [Ws],
    args: &[&str],
    data: &str,
    expect: &[usize],
) -> serde_json::Value {
    let mut argv = vec!["broadcast", "--data", data, "--yes", "-o", "json"];
    argv.extend_from_slice(args);
    let report = json(&local.wsadmin_as_operator(dir, &argv));
    for (i, ws) in all.iter_mut().enumerate() {
        let got = drain(ws, Duration::from_millis(300)).await;
        let n = got.iter().filter(|m| *m == data).count();
        let want = usize::from(expect.contains(&i));
        assert_eq!(n, want, "client {i} got {data:?} {n} times: {report}");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flat_registry_of_other_names_is_detected_and_operated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &stack_for(dir.path(), "flat"));
    let mut all = clients(
        &local,
        &["user=u1&room=7", "user=u2&room=7", "user=u3&room=8"],
    )
    .await;

    let text = detect(&local, dir.path());
    assert!(
        text.contains("`ConnectionId` (the hash key) holds a 16-character base64 id in 3 of 3"),
        "{text}"
    );
    assert!(text.contains("`createdAt` holds epoch seconds"), "{text}");
    assert!(text.contains("`ttl` is named as an expiry"), "{text}");
    assert!(
        text.contains("index `byUser` is keyed by `userId`"),
        "{text}"
    );

    let listed = json(&local.wsadmin_as_operator(dir.path(), &["list", "-o", "json"]));
    let rows = listed.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        rows.iter()
            .all(|r| r["connectedAt"].as_i64().is_some_and(|t| t % 1000 == 0)),
        "epoch seconds read as milliseconds: {listed}"
    );
    let stats =
        json(&local.wsadmin_as_operator(dir.path(), &["stats", "--by", "roomId", "-o", "json"]));
    assert!(stats.to_string().contains("\"7\""), "{stats}");

    let report = broadcast_once(&local, dir.path(), &mut all, &[], "hi all", &[0, 1, 2]).await;
    assert_eq!(report["delivered"], 3, "{report}");
    broadcast_once(
        &local,
        dir.path(),
        &mut all,
        &["--where", "roomId=7"],
        "room 7",
        &[0, 1],
    )
    .await;
    // A user's connections: a Query on the index keyed by userId.
    let report = broadcast_once(
        &local,
        dir.path(),
        &mut all,
        &["--where", "userId=u2"],
        "just u2",
        &[1],
    )
    .await;
    assert_eq!(report["scan"]["queried"], true, "{report}");
    assert_eq!(report["scan"]["recordsRead"], 1, "{report}");

    // A gone connection's record (connected long ago): prune deletes it,
    // and only it.
    put(
        &local,
        &[
            ("ConnectionId", s("GoneGoneGone00A=")),
            ("createdAt", AttributeValue::N("1700000000".into())),
            ("userId", s("ghost")),
        ],
    )
    .await;
    let pruned = json(&local.wsadmin_as_operator(dir.path(), &["prune", "--yes", "-o", "json"]));
    assert_eq!(pruned["recordsRemoved"], 1, "{pruned}");
    assert_eq!(all_items(&local).await.len(), 3);

    let closed = json(&local.wsadmin_as_operator(
        dir.path(),
        &["disconnect", "--where", "userId=u3", "--yes", "-o", "json"],
    ));
    assert_eq!(closed["disconnected"], 1, "{closed}");
    let left = drain(&mut all[2], Duration::from_millis(500)).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_table_registry_leaves_other_item_types_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &stack_for(dir.path(), "single"));
    let mut all = clients(&local, &["user=ana", "user=bo", "user=cy"]).await;
    // Other item types of the same table: a room and a message.
    put(
        &local,
        &[("pk", s("ROOM#7")), ("sk", s("META")), ("name", s("seven"))],
    )
    .await;
    put(
        &local,
        &[
            ("pk", s("ROOM#7")),
            ("sk", s("MSG#0001")),
            ("text", s("hello")),
        ],
    )
    .await;

    let text = detect(&local, dir.path());
    assert!(
        text.contains("`pk` (the hash key) holds `CONN#` + a 16-character base64 id in 3 of 8"),
        "{text}"
    );
    assert!(text.contains("not connections, never touched"), "{text}");
    assert!(text.contains("`createdAt` holds ISO-8601 times"), "{text}");

    let listed = json(&local.wsadmin_as_operator(dir.path(), &["list", "-o", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let report = broadcast_once(&local, dir.path(), &mut all, &[], "hello", &[0, 1, 2]).await;
    assert_eq!(report["delivered"], 3, "{report}");

    // A gone connection (connected long ago) and its item: pruned; the
    // users, the room and its message stay.
    put(
        &local,
        &[
            ("pk", s("CONN#GoneGoneGone00A=")),
            ("sk", s("META")),
            ("createdAt", s("2023-11-14T22:13:20Z")),
        ],
    )
    .await;
    let before = all_items(&local).await.len();
    let pruned = json(&local.wsadmin_as_operator(dir.path(), &["prune", "--yes", "-o", "json"]));
    assert_eq!(pruned["recordsRemoved"], 1, "{pruned}");
    let after = all_items(&local).await;
    assert_eq!(after.len(), before - 1);
    for kind in ["USER#ana", "ROOM#7"] {
        assert!(
            after.iter().any(|i| i["pk"] == s(kind)),
            "{kind} untouched: {after:?}"
        );
    }
    let closed = json(&local.wsadmin_as_operator(
        dir.path(),
        &["disconnect", "--where", "userId=bo", "--yes", "-o", "json"],
    ));
    assert_eq!(closed["disconnected"], 1, "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_partitioned_registry_posts_once_per_connection_and_queries_a_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &stack_for(dir.path(), "rooms"));
    let mut all = clients(&local, &["rooms=1,7", "rooms=7", "rooms=1,2,3"]).await;

    let text = detect(&local, dir.path());
    assert!(
        text.contains("`sk` (the range key: one connection may have several items) holds a 16-character base64 id in 6 of 6"),
        "{text}"
    );
    assert!(text.contains("`pk` holds `ROOM#` + a value"), "{text}");

    // One row per item (a connection per room it joined)...
    let listed = json(&local.wsadmin_as_operator(dir.path(), &["list", "-o", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(6), "{listed}");
    // ...but a broadcast posts once per connection.
    let report = broadcast_once(&local, dir.path(), &mut all, &[], "everyone", &[0, 1, 2]).await;
    assert_eq!(report["delivered"], 3, "{report}");
    assert_eq!(report["repeats"], 3, "{report}");
    // A room: one Query of its partition.
    let report = broadcast_once(
        &local,
        dir.path(),
        &mut all,
        &["--where", "room=7"],
        "room seven",
        &[0, 1],
    )
    .await;
    assert_eq!(report["scan"]["queried"], true, "{report}");
    assert_eq!(report["scan"]["pages"], 1, "{report}");
    assert_eq!(report["scan"]["recordsRead"], 2, "{report}");

    // A gone connection in two rooms: prune removes both its items.
    for room in ["1", "9"] {
        put(
            &local,
            &[
                ("pk", s(&format!("ROOM#{room}"))),
                ("sk", s("GoneGoneGone00A=")),
                ("joinedAt", AttributeValue::N("1700000000000".into())),
            ],
        )
        .await;
    }
    let pruned = json(&local.wsadmin_as_operator(dir.path(), &["prune", "--yes", "-o", "json"]));
    assert_eq!(pruned["recordsRemoved"], 2, "{pruned}");
    let items = all_items(&local).await;
    assert_eq!(
        items.len(),
        6,
        "only the gone connection's items: {items:?}"
    );
}

/// `--context local` on a stack whose table has its own shape (the state
/// file names its key, not a mapping): the mapping is detected as the
/// command starts, so the ids are the connections', a broadcast reaches
/// each once, and prune removes nothing live. Our own schema read in its
/// place would take `ROOM#7` for a connection id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_context_on_a_stack_of_another_shape_detects_its_mapping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &stack_for(dir.path(), "rooms"));
    let mut all = clients(&local, &["rooms=1,7", "rooms=7", "rooms=1,2,3"]).await;
    let ids = json(&local.wsadmin(dir.path(), &["list", "-o", "json"]));
    let ids: Vec<&str> = ids
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["connectionId"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert!(ids.iter().all(|id| !id.starts_with("ROOM#")), "{ids:?}");
    let out = local.wsadmin(
        dir.path(),
        &["broadcast", "--yes", "--data", "local", "-o", "json"],
    );
    let report = json(&out);
    assert_eq!(
        (report["delivered"].as_u64(), report["repeats"].as_u64()),
        (Some(3), Some(3)),
        "{report}"
    );
    for ws in all.iter_mut() {
        assert_eq!(drain(ws, Duration::from_millis(500)).await, ["local"]);
    }
    // `list -o ids` prints a line per item (per room joined); piped into
    // `send -`, each connection still gets the message once.
    let listed = stdout(&local.wsadmin(dir.path(), &["list", "-o", "ids"]));
    assert_eq!(listed.lines().count(), 6, "{listed}");
    let mut send = std::process::Command::new(support::stack::wsadmin_bin())
        .env(
            "WSADMIN_LOCAL_STATE",
            support::stack::state_file(dir.path()),
        )
        .env("XDG_CONFIG_HOME", dir.path())
        .args([
            "--context",
            "local",
            "send",
            "-",
            "--data",
            "piped",
            "-o",
            "json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wsadmin send runs");
    {
        use std::io::Write as _;
        let mut stdin = send.stdin.take().expect("stdin");
        stdin.write_all(listed.as_bytes()).expect("ids written");
    }
    let sent = send.wait_with_output().expect("wsadmin send ends");
    let sent = json(&sent);
    let results = sent.as_array().expect("a result per connection");
    assert_eq!(results.len(), 3, "{sent}");
    assert!(results.iter().all(|r| r["result"] == "delivered"), "{sent}");
    for ws in all.iter_mut() {
        assert_eq!(drain(ws, Duration::from_millis(500)).await, ["piped"]);
    }
    let before = all_items(&local).await;
    let pruned = json(&local.wsadmin(dir.path(), &["prune", "--yes", "-o", "json"]));
    assert_eq!(pruned["recordsRemoved"], 0, "{pruned}");
    assert_eq!(all_items(&local).await, before, "nothing touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mappings_are_refused_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &stack_for(dir.path(), "flat"));
    let info = &local.info;
    let target = [
        "--endpoint",
        info.management_endpoint.as_str(),
        "--table",
        "Chat",
        "--dynamodb-endpoint",
        info.dynamodb_endpoint.as_str(),
    ];
    let run = |args: &[&str]| {
        let mut argv: Vec<&str> = target.to_vec();
        argv.extend_from_slice(args);
        local.wsadmin_as_operator(dir.path(), &argv)
    };
    // No connection-like attribute: only users in the table.
    put(
        &local,
        &[("ConnectionId", s("user-ana")), ("name", s("Ana"))],
    )
    .await;
    let out = run(&["registry", "detect"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no attribute of table \"Chat\" looks like a connection id"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A pattern that matches nothing: no connections, nothing touched.
    let out = run(&[
        "--registry-id",
        "ConnectionId=CONN#{id}",
        "list",
        "-o",
        "json",
    ]);
    assert_eq!(json(&out), serde_json::json!([]));
    // A malformed pattern: a usage error before any request.
    let out = run(&["--registry-id", "ConnectionId=CONN#", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid pattern"));
    // A mapping naming an attribute no item has: said in one line.
    let out = run(&["--registry-id", "nosuch", "list", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("item has no string attribute \"nosuch\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A context from an older version (no mapping) still works: ours.
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "current = \"old\"\n[contexts.old]\nendpoint = \"{}\"\ntable = \"Chat\"\ntable-key = \"ConnectionId\"\ndynamodb-endpoint = \"{}\"\n",
            info.management_endpoint, info.dynamodb_endpoint
        ),
    )
    .expect("config");
    let shown = stdout(&local.wsadmin_as_operator(dir.path(), &["registry", "show"]));
    assert!(shown.contains("wsadmin's own schema"), "{shown}");
    // As JSON, its keys camelCase as every JSON key of ours.
    let shown = json(&local.wsadmin_as_operator(dir.path(), &["registry", "show", "-o", "json"]));
    assert_eq!(shown["mapping"]["connectedAt"], "connectedAt", "{shown}");
    assert_eq!(shown["mapping"]["goneMark"], "goneSeenAt", "{shown}");
}

/// Clients connect and leave while `prune` and `broadcast` run, on the
/// single-table and the room-partitioned shapes: no live client loses an
/// item, and none is sent a message twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_coming_and_going_during_prune_and_broadcast_keep_their_items() {
    for shape in ["single", "rooms"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = Local::start(dir.path(), &stack_for(dir.path(), shape));
        let query = if shape == "rooms" {
            "rooms=1,7"
        } else {
            "user=ana"
        };
        let mut stable = clients(&local, &[query; 4]).await;
        detect(&local, dir.path());
        let url = format!("{}?{query}", local.url());
        let churn = tokio::spawn(async move {
            for _ in 0..20 {
                let mut ws = connect(&url).await;
                tokio::time::sleep(Duration::from_millis(40)).await;
                let _ = ws.close(None).await;
            }
        });
        for round in 0..3 {
            stdout(&local.wsadmin_as_operator(dir.path(), &["prune", "--yes", "--grace", "1s"]));
            let data = format!("round {round}");
            stdout(
                &local.wsadmin_as_operator(dir.path(), &["broadcast", "--data", &data, "--yes"]),
            );
        }
        churn.await.expect("churn");
        let items = all_items(&local).await;
        for ws in &mut stable {
            support::send_text(ws, "whoami").await;
            let mut id = String::new();
            let mut rounds = Vec::new();
            for msg in drain(ws, Duration::from_millis(500)).await {
                if msg.starts_with("round ") {
                    rounds.push(msg);
                } else {
                    id = msg;
                }
            }
            assert_eq!(
                rounds,
                ["round 0", "round 1", "round 2"],
                "{shape}: each broadcast once"
            );
            assert!(!id.is_empty(), "{shape}: the client answered whoami");
            let held = items
                .iter()
                .filter(|i| {
                    i.values()
                        .any(|v| *v == s(&id) || *v == s(&format!("CONN#{id}")))
                })
                .count();
            let want = if shape == "rooms" { 2 } else { 1 };
            assert_eq!(held, want, "{shape}: live {id} kept its items");
        }
    }
}
