//! Contexts: saved deployments, like kubectl's. Offline commands, then a
//! saved context (not the built-in `local`) used against the local stack
//! through the standard AWS credential chain.

mod support;

use support::{json, run, start, stdout, wsadmin_in};
use wsadmin_emulator::{LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};

#[test]
fn add_use_list_show_remove() {
    let dir = tempfile::tempdir().expect("dir");
    let ok = |args: &[&str]| {
        let out = wsadmin_in(dir.path()).args(args).output().expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let added = ok(&[
        "context",
        "add",
        "prod",
        "--endpoint",
        "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "--table",
        "PROD_CONNECTIONS",
    ]);
    assert!(
        added.contains("added context \"prod\"") && added.contains("(now current)"),
        "{added}"
    );
    ok(&[
        "context",
        "add",
        "stage",
        "--api-id",
        "def456",
        "--stage",
        "stage",
        "--region",
        "us-west-2",
    ]);
    let listed = ok(&["context", "list"]);
    insta::assert_snapshot!("context_list", listed);
    ok(&["context", "use", "stage"]);
    let shown = ok(&["context", "show"]);
    assert!(shown.contains("api-id = \"def456\""), "{shown}");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["context", "list", "-o", "json"])).expect("json");
    assert_eq!(v[1]["name"], "stage");
    assert_eq!(v[1]["current"], true);
    ok(&["context", "remove", "stage"]);
    let file = std::fs::read_to_string(dir.path().join("config.toml")).expect("file");
    assert!(
        !file.contains("def456") && !file.contains("current"),
        "{file}"
    );

    let fail = |args: &[&str], code: i32, needle: &str| {
        let out = wsadmin_in(dir.path()).args(args).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{needle:?}: {err}");
    };
    fail(
        &["context", "use", "nope"],
        1,
        "unknown context \"nope\" (known: prod, local",
    );
    fail(
        &["context", "add", "local", "--endpoint", "http://x/dev"],
        2,
        "built-in context",
    );
    fail(&["context", "add", "x"], 2, "a context needs a target");
    fail(
        &["context", "add", "x", "--endpoint", "ftp://x/dev"],
        2,
        "malformed endpoint URL",
    );
    std::fs::write(dir.path().join("config.toml"), "current = 1\n").expect("write");
    fail(&["context", "list"], 1, "is not a valid wsadmin config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_context_reaches_the_stack_with_standard_credentials() {
    let h = start(|_| {}).await;
    let clients = h.clients("ctx", 2, 2).await;
    let endpoint = h.stack.management_endpoint();
    let mut add = h.cmd();
    add.args([
        "context",
        "add",
        "dev",
        "--endpoint",
        &endpoint,
        "--dynamodb-endpoint",
        h.stack.dynamodb_endpoint(),
        "--region",
        "us-east-1",
    ]);
    run(add).await.success();
    let with_keys = |args: &[&str]| {
        let mut c = h.cmd();
        c.env("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY)
            .args(args);
        c
    };
    // The current context, no flags.
    let v = json(&run(with_keys(&["list", "-o", "json"])).await.success());
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    let out = run(with_keys(&["status"])).await.success();
    assert!(stdout(&out).contains("API id unknown"), "{}", stdout(&out));
    // Wrong keys: the Management API refuses them (403), one line.
    let mut bad = with_keys(&["send", "--data", "x", "--", &clients[0].id]);
    bad.env("AWS_SECRET_ACCESS_KEY", "wrong");
    support::fails_with(run(bad).await, 1, "forbidden");
    h.stop().await;
}
