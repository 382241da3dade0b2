//! `wsadmin … | head -c1`: every command that prints exits quietly when
//! its reader has gone, as `ripgrep` does: status 0, nothing on stderr, no
//! panic. The reader is closed before the command starts, so every write
//! fails with EPIPE, whatever the output's size.

use crate::support;

use std::process::Stdio;

use support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_exits_quietly_into_a_closed_pipe() {
    let h = start(|_| {}).await;
    let clients = h.clients("piped", 3, 3).await;
    let id = clients[0].id.clone();
    let commands: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["list", "--help"],
        vec!["--version"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["completions", "fish"],
        vec!["man"],
        vec!["context", "list"],
        vec!["--context", "local", "list"],
        vec!["--context", "local", "list", "-o", "json"],
        vec!["--context", "local", "list", "-o", "ndjson"],
        vec!["--context", "local", "list", "-o", "ids"],
        vec!["--context", "local", "list", "--live"],
        vec!["--context", "local", "inspect", "--", &id],
        vec!["--context", "local", "stats"],
        vec!["--context", "local", "events"],
        vec!["--context", "local", "status"],
        vec!["--context", "local", "prune", "--dry-run"],
        vec![
            "--context",
            "local",
            "broadcast",
            "--dry-run",
            "--data",
            "x",
        ],
        vec!["--context", "local", "disconnect", "--all", "--dry-run"],
    ];
    for args in commands {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = h.cmd();
        let out = tokio::task::spawn_blocking(move || {
            cmd.args(&args)
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(Stdio::piped())
                .output()
                .map(|o| (args, o))
        })
        .await
        .expect("join")
        .expect("wsadmin runs");
        let (args, out) = out;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.is_empty(),
            "wsadmin {}: {:?}, stderr: {err}",
            args.join(" "),
            out.status
        );
    }
    h.stop().await;
}
