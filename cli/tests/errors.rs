//! Every bad input the issue names: one line saying what to do, the right
//! exit code, no panic, and nothing changed.

mod support;

use support::{fails_with, run, start, wsadmin_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_against_the_local_stack() {
    let h = start(|_| {}).await;
    let clients = h.clients("victim", 1, 1).await;
    let id = clients[0].id.clone();

    // Table not found.
    fails_with(
        h.local(&["list", "--table", "NOPE"]).await,
        1,
        "table \"NOPE\" not found",
    );
    // Endpoint unreachable.
    fails_with(
        h.local(&[
            "send",
            &id,
            "--data",
            "x",
            "--endpoint",
            "http://127.0.0.1:1/dev",
        ])
        .await,
        1,
        "cannot reach http://127.0.0.1:1/dev",
    );
    // Wrong stage: 403, as on AWS.
    let wrong = format!("http://{}/prod", h.stack.addr());
    fails_with(
        h.local(&["send", &id, "--data", "x", "--endpoint", &wrong])
            .await,
        1,
        "403 ForbiddenException",
    );
    // Malformed endpoint URL.
    fails_with(
        h.local(&["list", "--endpoint", "not a url"]).await,
        2,
        "malformed endpoint URL",
    );
    // Invalid connection id.
    fails_with(
        h.local(&["send", "a/b", "--data", "x"]).await,
        2,
        "invalid connection id \"a/b\"",
    );
    // Empty payload.
    fails_with(
        h.local(&["send", &id, "--data", ""]).await,
        2,
        "the message is empty",
    );
    // Over 128 KB: refused before sending.
    let big = h.dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 131_073]).expect("write");
    fails_with(
        h.local(&["send", &id, "--file", big.to_str().expect("utf8")])
            .await,
        2,
        "is 131073 bytes, over API Gateway's limit",
    );
    fails_with(
        h.local(&["broadcast", "--file", big.to_str().expect("utf8")])
            .await,
        2,
        "131073 bytes",
    );
    // An endless file is refused after one byte past the limit, not read
    // whole; a directory is named as one.
    fails_with(
        h.local(&["broadcast", "--file", "/dev/zero"]).await,
        2,
        "over API Gateway's limit of 131072 bytes",
    );
    fails_with(
        h.local(&["broadcast", "--file", h.dir.path().to_str().expect("utf8")])
            .await,
        2,
        "is a directory",
    );
    // A bad grace or rate is a usage error, before anything is read.
    fails_with(
        h.local(&["prune", "--grace", "0s"]).await,
        2,
        "invalid grace",
    );
    fails_with(h.local(&["prune", "--rate", "0"]).await, 2, "invalid rate");
    // Unreadable --file.
    fails_with(
        h.local(&["send", &id, "--file", "/nonexistent/msg.txt"])
            .await,
        1,
        "cannot read message file /nonexistent/msg.txt",
    );
    // No message at all.
    fails_with(h.local(&["broadcast"]).await, 2, "no message");
    // Bad duration (clap's usage error, exit 2).
    fails_with(
        h.local(&["list", "--older-than", "5x"]).await,
        2,
        "invalid duration \"5x\": unknown unit",
    );
    fails_with(
        h.local(&["list", "--where", "nokey"]).await,
        2,
        "use key=value",
    );
    // Unknown context.
    fails_with(
        run({
            let mut c = h.cmd();
            c.args(["--context", "nope", "list"]);
            c
        })
        .await,
        1,
        "unknown context \"nope\"",
    );
    assert!(
        clients[0].messages().is_empty(),
        "no bad input sent anything"
    );
    assert_eq!(h.ids().await, vec![id]);
    h.stop().await;
}

#[test]
fn credentials_profiles_and_nothing_configured() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| wsadmin_in(dir.path()).args(args).output().expect("runs");
    let check = |out: std::process::Output, code: i32, needle: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains(needle), "{needle:?} in {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("wsadmin: "), "{err}");
    };
    check(
        run(&["list"]),
        1,
        "no deployment selected: pass --endpoint URL",
    );
    check(
        run(&["--context", "local", "list"]),
        1,
        "no local stack is running",
    );
    let endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/dev";
    check(
        run(&["--endpoint", endpoint, "list"]),
        1,
        "no AWS credentials found: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
    check(
        run(&["--endpoint", endpoint, "--profile", "nope", "list"]),
        1,
        "AWS profile \"nope\" is not defined",
    );
    check(
        run(&["--endpoint", "http://127.0.0.1:9/dev", "list"]),
        1,
        "no AWS region: set --region or AWS_REGION",
    );
    check(
        run(&["--api-id", "abc", "list"]),
        2,
        "--api-id needs --stage NAME",
    );
}
