//! An installed `wsstack` (the binary alone, outside the checkout) starts
//! its local stack: it installs the pinned dynalite into the user's data
//! directory on first use (npm ci, from npm's cache: the tests reach
//! nothing but loopback), reuses it afterwards, and says what to do when
//! npm is missing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// `wsstack` copied out of the build tree, as `cargo install` leaves it.
fn installed(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let to = bin.join("wsstack");
    std::fs::copy(env!("CARGO_BIN_EXE_wsstack"), &to).expect("copy wsstack");
    to
}

fn wsstack(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("WSADMIN_LOCAL_STATE", home.join("state/local-stack.json"))
        // npm ci from its cache only: no traffic beyond loopback.
        .env("npm_config_offline", "true")
        .env("npm_config_update_notifier", "false")
        .args(["local", "--port", "0", "--dynamodb-port", "0"]);
    cmd
}

/// Starts it, waits for the banner, and returns the child, its WebSocket
/// URL and what it said on stderr before.
fn start(mut cmd: Command) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsstack runs");
    let stderr = child.stderr.take().expect("stderr");
    let said = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = stdout
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim()
                .strip_prefix("WebSocket")
                .map(|u| u.trim().to_owned())
        })
        .expect("the banner names the WebSocket URL");
    // Read the rest, so the banner never meets a closed pipe.
    std::thread::spawn(move || stdout.for_each(drop));
    (child, url, said)
}

fn stop(child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    child.wait_with_output().expect("wsstack exits").status
}

async fn marko_polo(url: &str) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake");
    ws.send(Message::text("Marko?")).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer within 10 s");
    match reply {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "Polo!"),
        other => panic!("expected Polo!, got {other:?}"),
    }
}

#[tokio::test]
async fn an_installed_wsstack_installs_dynalite_once_and_runs_outside_the_checkout() {
    let home = tempfile::tempdir().expect("temp dir");
    let bin = installed(home.path());

    let (child, url, said) = start(wsstack(&bin, home.path()));
    marko_polo(&url).await;
    assert!(stop(child).success());
    let said = said.join().expect("stderr");
    assert!(
        said.contains("installing the pinned dynalite into"),
        "first use says it installs: {said}"
    );
    let installs: Vec<_> = std::fs::read_dir(home.path().join("data/wsstack"))
        .expect("the data directory holds the install")
        .map_while(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(installs.len(), 1, "one install, no leftovers: {installs:?}");
    assert!(installs[0].starts_with("dynalite-"), "{installs:?}");

    let (child, url, said) = start(wsstack(&bin, home.path()));
    marko_polo(&url).await;
    assert!(stop(child).success());
    let said = said.join().expect("stderr");
    assert!(
        !said.contains("installing"),
        "the second run reuses the install: {said}"
    );
}

#[test]
fn without_npm_it_says_what_to_install_and_leaves_nothing_behind() {
    let home = tempfile::tempdir().expect("temp dir");
    let bin = installed(home.path());
    // A PATH with node but no npm.
    let path_dir = home.path().join("path");
    std::fs::create_dir_all(&path_dir).expect("path dir");
    let node = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v node"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("utf-8");
    std::os::unix::fs::symlink(node.trim(), path_dir.join("node")).expect("link node");

    let out = wsstack(&bin, home.path())
        .env("PATH", &path_dir)
        .output()
        .expect("wsstack runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot run npm") && err.contains("--dynamodb-endpoint"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(home.path().join("data/wsstack"))
        .map(|d| d.map_while(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no half-done install stays: {left:?}");
}
