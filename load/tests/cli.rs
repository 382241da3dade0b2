//! The `wsload` binary: bad input is one `wsload: ...` line and exit 2,
//! before any socket opens; a real `send` run against the local stack
//! reports every message received exactly once.

mod support;

use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn wsload() -> Command {
    let mut cmd = Command::cargo_bin("wsload").expect("wsload is built");
    cmd.env_remove("WSLOAD_URL")
        .timeout(Duration::from_secs(60));
    cmd
}

/// Exit 2, one line on stderr naming `needle`, nothing on stdout.
fn refused(args: &[&str], needle: &str) {
    let out = wsload().args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("wsload: "), "{stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let url = "ws://127.0.0.1:9/dev";
    refused(
        &["hold", "--url", "ws://example.com:3001/dev", "-n", "5"],
        "host \"example.com\" is not a loopback address",
    );
    refused(
        &["hold", "--url", "wss://127.0.0.1/dev"],
        "wss:// is not supported",
    );
    refused(&["hold", "--url", url, "-n", "0"], "at least 1, not 0");
    refused(
        &["hold", "--url", url, "-n", "60001"],
        "60001 clients is too many",
    );
    refused(&["hold", "--url", url, "-n", "many"], "'many'");
    refused(
        &["churn", "--url", url, "--rate", "fast"],
        "invalid rate \"fast\"",
    );
    refused(
        &["churn", "--url", url, "--rate", "0/s"],
        "invalid rate \"0/s\"",
    );
    refused(
        &[
            "churn",
            "--url",
            url,
            "--rate",
            "5/s",
            "--drop-fraction",
            "1.5",
        ],
        "invalid drop fraction 1.5",
    );
    refused(&["hold", "--url", url, "--duration", "soon"], "\"soon\"");
    refused(
        &["hold", "--url", url, "--duration", "0s"],
        "longer than zero",
    );
    refused(
        &["hold", "--url", url, "--meta", "room"],
        "invalid meta \"room\"",
    );
    refused(
        &["hold", "--url", url, "-n", "2", "--never-read", "3"],
        "3 never-read clients",
    );
    refused(
        &["hold", "--url", url, "--run", "a:b"],
        "invalid run tag \"a:b\"",
    );
    refused(&["hold"], "--url");
    refused(&["hold", "--url", url, "--bogus"], "'--bogus'");
}

#[test]
fn a_stack_that_is_not_there_is_a_failure_not_bad_input() {
    wsload()
        .args([
            "hold",
            "--url",
            "ws://127.0.0.1:9/dev",
            "-n",
            "2",
            "--duration",
            "1s",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(
            predicate::str::contains("wsload: client 0 could not connect to ws://127.0.0.1:9/dev")
                .or(predicate::str::contains(
                    "wsload: client 1 could not connect",
                )),
        );
}

#[test]
fn help_shows_examples() {
    wsload()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "wsload churn --url ws://127.0.0.1:3001/dev",
        ))
        .stdout(predicate::str::contains("Exit status"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_run_reports_every_message_received_exactly_once() {
    let stack = support::start().await;
    let url = stack.url();
    let out = tokio::task::spawn_blocking(move || {
        wsload()
            .args([
                "send",
                "--url",
                &url,
                "--clients",
                "3",
                "--rate",
                "20/s",
                "--duration",
                "1s",
                "--settle",
                "500ms",
                "--run",
                "clitest",
                "-o",
                "json",
            ])
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json report: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["run"], "clitest");
    assert_eq!(report["lossless"], true);
    let sent = report["sent"].as_u64().expect("sent");
    assert!(sent > 0);
    let messages = report["messages"].as_array().expect("messages");
    assert_eq!(messages.len() as u64, sent);
    for m in messages {
        assert_eq!(m["tag"]["run"], "clitest");
        assert_eq!(m["connectedThroughout"], 3, "{m}");
        assert_eq!(m["exactlyOnce"], 3, "{m}");
        assert_eq!(m["missing"], 0, "{m}");
        assert!(m["latency"]["p99Ms"].is_u64(), "{m}");
    }
    assert_eq!(report["clients"]["opened"], 3);
    assert!(report["latency"]["count"].as_u64() >= Some(3 * sent));
    // The senders left cleanly: the stack's registry empties.
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            stack.stack.connection_count() == 0
        })
        .await
    );
    stack.stop().await;
}
