//! Contexts: saved deployments, like kubectl's. Offline commands (an
//! existing name is never replaced without `--force`, `set` changes only
//! what it is given, `local` is built in, a broken file is pointed at),
//! then a saved context (not the built-in `local`) used against the local
//! stack through the standard AWS credential chain.

use crate::support;

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
}

/// Runs `wsadmin` in `dir`: its exit code, stdout and stderr.
fn wsadmin_out(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = wsadmin_in(dir).args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn no_panic(err: &str) {
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
}

#[test]
fn add_refuses_an_existing_name_force_replaces_it_and_set_changes_only_what_is_given() {
    let dir = tempfile::tempdir().expect("dir");
    let file = || std::fs::read_to_string(dir.path().join("config.toml")).expect("file");
    let endpoint = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod";
    let (code, _, err) = wsadmin_out(
        dir.path(),
        &[
            "context",
            "add",
            "prod",
            "--endpoint",
            endpoint,
            "--table",
            "T",
            "--profile",
            "ops",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let saved = file();

    // Adding the name again, as when one meant to change the table only.
    let (code, _, err) = wsadmin_out(dir.path(), &["context", "add", "prod", "--table", "T2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("context \"prod\" already exists")
            && err.contains("--force")
            && err.contains("wsadmin context set prod"),
        "{err}"
    );
    no_panic(&err);
    assert_eq!(file(), saved, "a refused add changes nothing");

    // `set` changes the table and keeps the endpoint and the profile.
    let (code, out, err) = wsadmin_out(dir.path(), &["context", "set", "prod", "--table", "T2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("updated context \"prod\""), "{out}");
    let (_, shown, _) = wsadmin_out(dir.path(), &["context", "show", "prod"]);
    assert!(
        shown.contains("table = \"T2\"")
            && shown.contains("profile = \"ops\"")
            && shown.contains(endpoint),
        "{shown}"
    );
    let (code, _, err) = wsadmin_out(
        dir.path(),
        &["context", "set", "prod", "--unset", "profile"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!file().contains("ops"), "{}", file());

    // --force replaces it whole: the table goes with it.
    let (code, out, err) = wsadmin_out(
        dir.path(),
        &["context", "add", "prod", "--force", "--endpoint", endpoint],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("replaced context \"prod\""), "{out}");
    assert!(!file().contains("T2"), "{}", file());

    // What set refuses, each with what to do instead.
    for (args, code, needle) in [
        (&["context", "set", "prod"][..], 2, "nothing to change"),
        (
            &["context", "set", "nope", "--table", "T"],
            1,
            "unknown context \"nope\"",
        ),
        (
            &["context", "set", "prod", "--unset", "endpoint"],
            2,
            "a context needs a target",
        ),
        (
            &["context", "set", "prod", "--unset", "colour"],
            2,
            "unknown setting \"colour\"",
        ),
        (
            &["context", "set", "local", "--table", "T"],
            2,
            "cannot be set",
        ),
    ] {
        let (got, _, err) = wsadmin_out(dir.path(), args);
        assert_eq!(got, Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?}: {err}");
        no_panic(&err);
    }
    assert!(file().contains(endpoint), "a refused set changes nothing");
}

#[test]
fn the_built_in_local_context_cannot_be_removed_and_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let (code, _, err) = wsadmin_out(dir.path(), &["context", "remove", "local"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"local\" is the built-in context")
            && err.contains("cannot be removed")
            && err.contains("wsadmin context use NAME"),
        "{err}"
    );
    assert!(!err.contains("unknown context"), "no contradiction: {err}");
    no_panic(&err);
    // Still listed, still usable.
    let (code, listed, _) = wsadmin_out(dir.path(), &["context", "list", "-o", "json"]);
    assert_eq!(code, Some(0));
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(listed[0]["name"], "local", "{listed}");
    let (code, _, err) = wsadmin_out(dir.path(), &["context", "use", "local"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_malformed_config_file_names_its_line_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("config.toml");
    for (text, line, column) in [
        ("current = 1\n", 1, 11),
        (
            "current = \"prod\"\n\n[contexts.prod]\nendpoint = \"https://x/dev\"\ntable = [\n",
            5,
            10,
        ),
        ("[contexts.prod]\nendpont = \"https://x/dev\"\n", 2, 1),
    ] {
        std::fs::write(&path, text).expect("write");
        for args in [&["context", "list"][..], &["list"]] {
            let (code, _, err) = wsadmin_out(dir.path(), args);
            assert_eq!(code, Some(1), "{args:?} {text:?}: {err}");
            let want = format!(
                "config file {}: line {line}, column {column}: ",
                path.display()
            );
            assert!(err.contains(&want), "{text:?}: want {want:?} in: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
            no_panic(&err);
        }
    }
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
