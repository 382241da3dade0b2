//! Output that fits, against the local stack: tables fitted to a real
//! terminal (tmux) and whole in a pipe, `-o wide`, `--no-headers`,
//! `--query` (JMESPath) on JSON and NDJSON, ISO-8601 times beside epoch
//! ones, and every JSON key in camelCase.

use crate::support;

use support::tmux::Tmux;
use support::{fails_with, json, start, stdout};

/// A user agent longer than any terminal line.
const LONG_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0 \
     (an embedded browser with a very long product token list for testing)";

/// `wsadmin --context local ARGS…` in a terminal `width` columns wide; the
/// pane shows `EXIT=<status>` after it.
fn in_terminal(h: &support::Harness, width: u16, args: &str) -> Tmux {
    h.in_terminal(width, 24, "NO_COLOR=1", args, true)
}

/// Every key of `v`, outside `meta` (the client's own keys), in camelCase.
fn assert_camel_case(v: &serde_json::Value, at: &str) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, inner) in map {
                assert!(
                    !k.contains(['_', '-', ' '])
                        && k.chars().next().is_some_and(char::is_lowercase),
                    "key {k:?} at {at} is not camelCase"
                );
                // These hold values as keys: meta keys, --by keys, failure
                // kinds.
                if !["meta", "by", "byKind"].contains(&k.as_str()) {
                    assert_camel_case(inner, &format!("{at}.{k}"));
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                assert_camel_case(item, at);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_fit_the_terminal_and_json_is_queryable() {
    let h = start(|_| {}).await;
    let clients = h.clients(LONG_AGENT, 2, 2).await;
    let ids: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();

    // A pipe gets whole values: nothing shortened, whatever the width.
    let piped = stdout(&h.local(&["list"]).await.success());
    assert!(piped.contains(&format!("{LONG_AGENT}-0")), "{piped}");
    assert!(!piped.contains('…'), "{piped}");

    // --no-headers: rows only.
    let rows = stdout(&h.local(&["list", "--no-headers"]).await.success());
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(!rows.contains("USER AGENT"), "{rows}");

    // An 80-column terminal: each row on one line (the last column, META,
    // `-`, at its end), the user agent cut with an ellipsis, the id whole.
    let t = in_terminal(&h, 80, "list");
    let screen = t.until("the table", 10, |s| s.contains("EXIT=")).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("USER AGENT"), "{screen}");
    for id in &ids {
        let row = screen
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} whole in\n{screen}"));
        assert!(row.contains("Mozilla/5.0"), "{row:?}");
        assert!(row.contains('…'), "{row:?}");
        assert!(row.trim_end().ends_with("  -"), "{row:?} on one line");
    }
    drop(t);

    // -o wide on the same terminal: nothing shortened (lines wrap).
    let t = in_terminal(&h, 80, "-o wide list --no-headers");
    let screen = t.until("the table", 10, |s| s.contains("EXIT=")).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!screen.contains('…'), "{screen}");
    drop(t);

    // JSON: ISO-8601 beside the epoch times, every key camelCase.
    let listed = json(&h.local(&["list", "-o", "json"]).await.success());
    assert_camel_case(&listed, "list");
    let first = &listed[0];
    let at = first["connectedAt"].as_i64().expect("connectedAt");
    let iso = first["connectedTime"].as_str().expect("connectedTime");
    assert_eq!(
        chrono_like(at),
        iso,
        "connectedTime is connectedAt as ISO-8601"
    );
    assert!(first["expiresTime"].as_str().is_some(), "{first}");
    let inspected = json(
        &h.local(&["inspect", "-o", "json", "--", ids[0]])
            .await
            .success(),
    );
    assert_camel_case(&inspected, "inspect");
    assert!(
        inspected["connection"]["lastActiveTime"].as_str().is_some(),
        "{inspected}"
    );
    assert!(
        inspected["record"]["connectedTime"].as_str().is_some(),
        "{inspected}"
    );
    let status = json(&h.local(&["status", "-o", "json"]).await);
    assert_camel_case(&status, "status");
    let stats = json(
        &h.local(&["stats", "--by", "userAgent", "-o", "json"])
            .await
            .success(),
    );
    assert_camel_case(&stats, "stats");

    // --query on the whole JSON document…
    let queried = json(
        &h.local(&[
            "list",
            "-o",
            "json",
            "--query",
            "sort_by(@, &connectionId)[*].{id: connectionId, agent: userAgent}",
        ])
        .await
        .success(),
    );
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(queried[0]["id"], sorted[0], "{queried}");
    assert_eq!(
        queried[1]["agent"]
            .as_str()
            .map(|a| a.starts_with("Mozilla")),
        Some(true)
    );
    let count = stdout(
        &h.local(&["list", "-o", "json", "--query", "length(@)"])
            .await
            .success(),
    );
    assert_eq!(count.trim(), "2");
    let matching = json(
        &h.local(&[
            "list",
            "-o",
            "json",
            "--query",
            &format!("[?connectionId=='{}'].connectionId", ids[1]),
        ])
        .await
        .success(),
    );
    assert_eq!(matching, serde_json::json!([ids[1]]));
    // … on each NDJSON line, and on a report.
    let lines = stdout(
        &h.local(&["list", "-o", "ndjson", "--query", "connectionId"])
            .await
            .success(),
    );
    let mut got: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<String>(l).expect("a JSON string"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, sorted);
    let delivered = stdout(
        &h.local(&[
            "broadcast",
            "--data",
            "hi",
            "--yes",
            "-o",
            "json",
            "--query",
            "delivered",
        ])
        .await
        .success(),
    );
    assert_eq!(delivered.trim(), "2");

    // A query where it cannot apply, or one that does not parse: usage
    // errors, one line.
    fails_with(
        h.local(&["list", "--query", "connectionId"]).await,
        2,
        "--query applies to -o json and -o ndjson",
    );
    let err = fails_with(
        h.local(&["list", "-o", "json", "--query", "[?a=="]).await,
        2,
        "invalid --query \"[?a==\"",
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    h.stop().await;
}

/// `connectedTime` as the CLI writes it: milliseconds always.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[test]
fn context_json_is_camel_case() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        support::wsadmin_in(dir.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let added = run(&[
        "context",
        "add",
        "prod",
        "--api-id",
        "abc123",
        "--stage",
        "prod",
        "--table-key",
        "pk",
        "--dynamodb-endpoint",
        "http://127.0.0.1:9",
    ]);
    assert!(added.status.success(), "{added:?}");
    let listed = run(&["context", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_camel_case(&v, "context list");
    assert_eq!(v[0]["apiId"], "abc123", "{v}");
    assert_eq!(v[0]["tableKey"], "pk", "{v}");
    assert_eq!(v[0]["dynamodbEndpoint"], "http://127.0.0.1:9", "{v}");
    let shown = run(&["context", "show", "prod", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_camel_case(&v, "context show");
}
