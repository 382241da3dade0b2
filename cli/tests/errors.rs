//! Every bad input the issue names: one line saying what to do, the right
//! exit code, no panic, and nothing changed.

use crate::support;

use support::{fails_with, run, start, stderr, stdout, wsadmin_in};

/// An id starting with `-` before `--` is a usage error saying where it
/// goes, even when clap would read its start as a flag that ends the run:
/// `-V…` printed the version and exited 0 (seen with a real id, 1 in 32
/// of those starting with `-`), `-h…` the help. After `--` it is an id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_starting_with_dash_v_or_h_is_not_taken_for_a_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["inspect", "-VHk2mNq8sT0bXw="][..],
        &["send", "--data", "x", "-hHk2mNq8sT0bXw="],
        &["disconnect", "-L0SM9cOFvHcCIh=", "--yes"],
    ] {
        let mut cmd = wsadmin_in(dir.path());
        cmd.args(args);
        let out = run(cmd).await;
        let err = fails_with(out, 2, "goes after `--`");
        let id = args.iter().find(|a| a.ends_with('=')).expect("an id");
        assert!(err.contains(&format!("'{id}'")), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // After `--`, the same id is taken as one (and then not found: no
    // deployment is configured here).
    let mut cmd = wsadmin_in(dir.path());
    cmd.args(["inspect", "--", "-VHk2mNq8sT0bXw="]);
    let out = run(cmd).await;
    let err = stderr(&out);
    assert!(!err.contains("goes after `--`"), "{err}");
    assert!(
        !stdout(&out).contains("wsadmin-inspect"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_against_the_local_stack() {
    let h = start(|_| {}).await;
    let clients = h.clients("victim", 1, 1).await;
    let id = clients[0].id.clone();

    // Table not found: the hint names commands `wsstack` has.
    fails_with(
        h.local(&["list", "--table", "NOPE"]).await,
        1,
        "table \"NOPE\" not found in us-east-1 (deploy the stack with `wsstack up`, or run `wsstack local`; or name another table)",
    );
    // The wrong key attribute: the cause once, not twice.
    let err = fails_with(
        h.local(&["list", "--table-key", "id"]).await,
        1,
        "holds an item that is not a connection record: item has no string attribute \"id\"",
    );
    assert_eq!(err.matches("has no string attribute").count(), 1, "{err}");
    // An unreachable DynamoDB is named by its URL.
    fails_with(
        h.local(&["list", "--dynamodb-endpoint", "http://127.0.0.1:1"])
            .await,
        1,
        "cannot reach DynamoDB at http://127.0.0.1:1",
    );
    // Endpoint unreachable.
    fails_with(
        h.local(&[
            "send",
            "--data",
            "x",
            "--endpoint",
            "http://127.0.0.1:1/dev",
            "--",
            &id,
        ])
        .await,
        1,
        "cannot reach http://127.0.0.1:1/dev",
    );
    // Wrong stage: 403, as on AWS.
    let wrong = format!("http://{}/prod", h.stack.addr());
    fails_with(
        h.local(&["send", "--data", "x", "--endpoint", &wrong, "--", &id])
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
    // An overlong id (a log line pasted by mistake) is cut in the message.
    let long = "x".repeat(10_000);
    let err = fails_with(
        h.local(&["send", "--data", "x", "--", &long]).await,
        2,
        "… (10000 bytes): it is longer than 256 bytes",
    );
    assert!(err.len() < 300, "{err}");
    // Empty payload.
    fails_with(
        h.local(&["send", "--data", "", "--", &id]).await,
        2,
        "the message is empty",
    );
    // Over 128 KB: refused before sending.
    let big = h.dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 131_073]).expect("write");
    fails_with(
        h.local(&["send", "--file", big.to_str().expect("utf8"), "--", &id])
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
        h.local(&["send", "--file", "/nonexistent/msg.txt", "--", &id])
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
        h.local(&["list", "--where", "room!3"]).await,
        2,
        "invalid selector \"room!3\"",
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
    // A malformed state file: its cause once, not twice.
    std::fs::write(dir.path().join("local-stack.json"), "{bad").expect("write");
    let out = run(&["--context", "local", "list"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    check(
        out,
        1,
        "is not a local stack description (delete it and restart `wsstack local`): key must be a string at line 1 column 2",
    );
    assert_eq!(err.matches("key must be a string").count(), 1, "{err}");
    // The dashboard without a terminal says so, before anything else.
    check(
        run(&["--context", "local", "tui"]),
        2,
        "the dashboard needs a terminal",
    );
}

/// An AWS config with SSO profiles (no token cached: never logged in) and
/// a profile assuming a role with static source credentials.
const AWS_CONFIG: &str = "\
[profile sso]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = Admin
region = eu-west-1

[profile sso-session]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin
region = eu-west-1

[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1

[profile source]
aws_access_key_id = AKIDEXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
region = eu-west-1

[profile ops]
role_arn = arn:aws:iam::123456789012:role/ops
source_profile = source
region = eu-west-1
";

/// STS refusing every AssumeRole, as AWS does for a role that does not
/// trust the caller: a canned 403 on loopback.
async fn refusing_sts() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The request: headers, then Content-Length bytes of body.
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                    <Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/source \
                    is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ops\
                    </Message></Error><RequestId>r1</RequestId></ErrorResponse>";
                let response = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_and_assume_role_failures_name_the_cause() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("aws-config");
    std::fs::write(&config, AWS_CONFIG).expect("config");
    let sts = refusing_sts().await;
    let endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/dev";
    let wsadmin = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = wsadmin_in(dir.path());
        c.env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .args(["--endpoint", endpoint])
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c)
    };
    // SSO, never logged in: the command that logs in, for that profile.
    fails_with(
        wsadmin(&[], &["--profile", "sso", "list"]).await,
        1,
        "AWS profile \"sso\" uses SSO and has no valid token (none is cached): run `aws sso login --profile sso`",
    );
    fails_with(
        wsadmin(&[], &["--profile", "sso-session", "list"]).await,
        1,
        "run `aws sso login --profile sso-session`",
    );
    fails_with(
        wsadmin(&[("AWS_PROFILE", "sso")], &["status"]).await,
        1,
        "run `aws sso login --profile sso`",
    );
    // A role whose STS cannot be reached: the role and the cause.
    fails_with(
        wsadmin(
            &[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1")],
            &["--profile", "ops", "list"],
        )
        .await,
        1,
        "cannot assume role arn:aws:iam::123456789012:role/ops for AWS profile \"ops\": Connection refused",
    );
    // A role STS refuses: the role and STS's own words.
    fails_with(
        wsadmin(
            &[("AWS_ENDPOINT_URL_STS", &sts)],
            &["--profile", "ops", "list"],
        )
        .await,
        1,
        "cannot assume role arn:aws:iam::123456789012:role/ops for AWS profile \"ops\": AccessDenied: User: arn:aws:iam::123456789012:user/source is not authorized to perform: sts:AssumeRole",
    );
}

/// The region in an execute-api endpoint decides, whatever `AWS_REGION`
/// says: the registry must be that deployment's. A `--region` that
/// disagrees is a usage error naming both; `-v` says which is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_region_wins_over_aws_region() {
    let h = start(|_| {}).await;
    let local = wsadmin_core::local::LocalStackInfo::read(&h.home().join("local-stack.json"))
        .expect("state file");
    let endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod";
    let wsadmin = |args: &[&str]| {
        let mut cmd = h.cmd();
        cmd.env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", &local.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &local.secret_access_key)
            .args(["--endpoint", endpoint])
            .args(["--dynamodb-endpoint", &local.dynamodb_endpoint])
            .args(args);
        run(cmd)
    };
    // The table is looked for in the endpoint's region.
    fails_with(
        wsadmin(&["--table", "NOPE", "list"]).await,
        1,
        "table \"NOPE\" not found in eu-west-1",
    );
    let ok = wsadmin(&["-v", "--table", &local.table, "list"])
        .await
        .success();
    let err = support::stderr(&ok);
    assert!(
        err.contains("region eu-west-1 (named by the endpoint)"),
        "{err}"
    );
    // An explicit --region that disagrees: usage, both named, nothing read.
    let err = fails_with(
        wsadmin(&["--region", "us-east-1", "list"]).await,
        2,
        "--region us-east-1 disagrees with the endpoint's region eu-west-1",
    );
    assert!(!err.contains("not found"), "{err}");
    // One that agrees is fine.
    wsadmin(&["--region", "eu-west-1", "--table", &local.table, "list"])
        .await
        .success();
    h.stop().await;
}

/// `-o ids` where a command has no connection ids is a usage error, not an
/// empty output that reads as "no connections".
#[test]
fn ids_output_on_commands_without_ids_is_a_usage_error() {
    use assert_cmd::assert::OutputAssertExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["stats"][..],
        &["status"],
        &["context", "list"],
        &["completions", "bash"],
    ] {
        let a = wsadmin_in(dir.path())
            .args(["--endpoint", "http://127.0.0.1:1/dev", "-o", "ids"])
            .args(args)
            .output()
            .expect("runs")
            .assert();
        let err = fails_with(a, 2, "-o ids prints connection ids");
        assert!(err.contains(&format!("`wsadmin {}`", args[0])), "{err}");
    }
}

/// A mistyped selector is a usage error showing the grammar, never a key
/// named `room>2`: `!room>2` would otherwise select, and close, everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_selector_is_refused_and_closes_nothing() {
    let h = start(|_| {}).await;
    let clients = h.clients("kept", 3, 3).await;
    for args in [
        &["list", "--where", "room>2"][..],
        &["disconnect", "--where", "!room>2", "--yes"],
        &["broadcast", "--where", "!room>2", "--data", "x", "--yes"],
        &["prune", "--where", "ro*m=1"],
        &["stats", "--where", "\"room\"=1"],
    ] {
        let err = fails_with(h.local(args).await, 2, "invalid selector");
        assert!(
            err.contains(r#"name="Ana Maria""#) && err.contains("key notin (v1,v2)"),
            "the grammar, with quoting: {err}"
        );
    }
    let mut ids = h.ids().await;
    ids.sort();
    let mut ours: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();
    ours.sort();
    assert_eq!(ids, ours, "every record kept");
    assert!(
        clients
            .iter()
            .all(|c| !c.closed() && c.messages().is_empty()),
        "no client closed or written to"
    );
    h.stop().await;
}
