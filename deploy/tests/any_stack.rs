//! `wsstack local` runs anyone's stack (issue 16). First, the seed
//! article's stack as people run it, four
//! Node.js functions on the JS SDK v3, unchanged, from a SAM template with
//! short-form tags and flow mappings (`tests/fixtures/article`), on
//! `wsstack local` (real processes: wsstack, its dynalite, one Node process
//! per function instance), driven by real WebSocket clients; then `wsadmin
//! --context local` operates that stack.
//!
//! The article's message function builds its Management endpoint as
//! `https://${domainName}/${stage}`: the broadcast reaching both clients
//! shows the TLS endpoint, `domainName` and the CA given to functions.
//!
//! Then other runtimes from plain CloudFormation JSON (inline Python and
//! Node), and a runtime whose interpreter is missing: named in one line,
//! its route failing as API Gateway shows a failed integration, the other
//! functions served.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::stack::{Local, connect, fixture, stdout};
use support::{recv_text, send_text};

/// The ids `wsadmin list` shows, sorted.
fn listed(local: &Local, dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = stdout(&local.wsadmin(dir, &["list", "-o", "ids"]))
        .lines()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_articles_node_stack_runs_unchanged_and_wsadmin_operates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &fixture("article/template.yaml"));
    walkthrough(&local, dir.path()).await;
}

/// Our four handlers built as `bootstrap` binaries (`provided.al2023`), run
/// through the Runtime API path like any Go or Rust function, from the same
/// template with only the runtime and code changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_handlers_as_bootstrap_binaries_pass_the_same_walkthrough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bins = support::stack::binaries();
    let template = std::fs::read_to_string(fixture("article/template.yaml")).expect("template");
    let template = template.replace("Runtime: nodejs20.x", "Runtime: provided.al2023");
    for (function, bin) in [
        ("ws-connect", "ws-connect"),
        ("ws-disconnect", "ws-disconnect"),
        ("ws-default", "ws-default"),
        ("ws-message", "ws-message"),
    ] {
        let code = dir.path().join("functions").join(function);
        std::fs::create_dir_all(&code).expect("code dir");
        std::fs::copy(bins.join(bin), code.join("bootstrap")).expect("copy the bootstrap");
    }
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, template).expect("write the template");
    let local = Local::start(dir.path(), &path);
    walkthrough(&local, dir.path()).await;
}

/// The article's walkthrough with two real clients, then `wsadmin --context
/// local` lists, broadcasts to and prunes the stack.
async fn walkthrough(local: &Local, dir: &Path) {
    let url = local.url();

    let mut a = connect(&url).await;
    let mut b = connect(&url).await;

    // The walkthrough: `Marko?` gets `Polo!` ($default, with its route
    // response), anything else on $default gets `Marko?`.
    send_text(&mut a, "Marko?").await;
    assert_eq!(recv_text(&mut a).await, "Polo!");
    send_text(&mut b, r#"{"type":"no-such-route"}"#).await;
    assert_eq!(recv_text(&mut b).await, "Marko?");

    // A `message` broadcast reaches both, through https://${domainName}/${stage}.
    send_text(&mut a, r#"{"type":"message","data":"Hello World!"}"#).await;
    assert_eq!(recv_text(&mut a).await, "Hello World!");
    assert_eq!(recv_text(&mut b).await, "Hello World!");

    // wsadmin operates the stack the template declared.
    let ids = listed(local, dir);
    assert_eq!(ids.len(), 2, "both clients are registered: {ids:?}");
    let out = local.wsadmin(dir, &["broadcast", "--data", "from the operator", "--yes"]);
    stdout(&out);
    assert_eq!(recv_text(&mut a).await, "from the operator");
    assert_eq!(recv_text(&mut b).await, "from the operator");

    // A record whose client is gone (its $disconnect never ran): prune
    // settles it under the stale rule, and only it.
    a.close(None).await.expect("close");
    drop(a);
    let mut left = ids.clone();
    for _ in 0..100 {
        left = listed(local, dir);
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left.len(), 1, "A's $disconnect (Node) deleted its record");
    let ghost = "R0GhostAAAAAAAA=";
    put_record(local, ghost).await;
    assert_eq!(listed(local, dir).len(), 2);
    // No connectedAt: the first 410 marks it, one at least the grace later
    // deletes it.
    stdout(&local.wsadmin(dir, &["prune", "--grace", "1s", "--yes"]));
    assert_eq!(listed(local, dir).len(), 2, "marked, not deleted");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stdout(&local.wsadmin(dir, &["prune", "--grace", "1s", "--yes"]));
    assert_eq!(listed(local, dir), left, "only the ghost was pruned");
    send_text(&mut b, "Marko?").await;
    assert_eq!(recv_text(&mut b).await, "Polo!", "B was never touched");

    // The functions' logs, as CloudWatch shows them.
    let log = local.log();
    for name in ["ConnectFunction", "DefaultFunction", "MessageFunction"] {
        assert!(
            log.lines()
                .any(|l| l.contains(name) && l.contains("REPORT RequestId:")),
            "a REPORT line of {name}: {log}"
        );
    }
    assert!(log.contains("Init Duration:"), "{log}");
}

/// Writes a record for a connection that does not exist, as the article's
/// `$connect` writes them (the connection id only).
async fn put_record(local: &Local, id: &str) {
    let info = &local.info;
    let creds = aws_sdk_dynamodb::config::Credentials::new(
        &info.access_key_id,
        &info.secret_access_key,
        None,
        None,
        "test",
    );
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(info.region.clone()))
        .credentials_provider(creds)
        .endpoint_url(&info.dynamodb_endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
        .put_item()
        .table_name(&info.table)
        .item(
            "connectionId",
            aws_sdk_dynamodb::types::AttributeValue::S(id.to_owned()),
        )
        .send()
        .await
        .expect("put a record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_python_and_node_functions_from_cloudformation_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path(), &fixture("templates/two-runtimes.json"));
    let mut ws = connect(&local.url()).await;
    send_text(&mut ws, "hello").await;
    assert_eq!(recv_text(&mut ws).await, "py hello");
    send_text(&mut ws, r#"{"action":"shout","text":"hi there"}"#).await;
    assert_eq!(recv_text(&mut ws).await, "HI THERE");
}

/// No `python3` on the stack's PATH (only `node`): the Python function is
/// named in one line with what to install; its route fails as a failed
/// integration; the Node function keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_interpreter_fails_only_its_functions_and_says_what_to_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let node = which("node");
    std::os::unix::fs::symlink(&node, bin.join("node")).expect("link node");
    let local = Local::start_with_path(
        dir.path(),
        &fixture("templates/two-runtimes.json"),
        Some(&bin),
    );
    let mut ws = connect(&local.url()).await;
    send_text(&mut ws, "hello").await;
    let frame: serde_json::Value =
        serde_json::from_str(&recv_text(&mut ws).await).expect("a JSON error frame");
    assert_eq!(frame["message"], "Internal server error", "{frame}");
    send_text(&mut ws, r#"{"action":"shout","text":"still here"}"#).await;
    assert_eq!(recv_text(&mut ws).await, "STILL HERE");
    let log = local.log();
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("python3") && l.contains("Echo") && l.contains("install"))
        .collect();
    assert!(!named.is_empty(), "the missing interpreter is named: {log}");
}

/// Where `program` is on this machine's PATH.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is on PATH"))
}
