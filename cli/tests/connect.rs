//! `wsadmin connect`, the test client, against the real local stack: the
//! seed walkthrough (Marko? → Polo!, a broadcast received), the `$connect`
//! meta from `--param`, close codes, refused handshakes, a signed
//! handshake, and every bad input as one line.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Running, eventually, fails_with, run, start, stderr, stdout, wsadmin_in};
use wsadmin_harness::send_text;

const AGENT: &str = concat!("wsadmin/", env!("CARGO_PKG_VERSION"));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_sends_and_prints_the_answer_with_its_time() {
    let h = start(|_| {}).await;
    let a = h
        .local(&["connect", "--execute", "Marko?", "--wait", "2s"])
        .await
        .success();
    let out = stdout(&a);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    // 2026-11-26T02:41:07.123Z  > Marko?
    assert!(lines[0].ends_with("Z  > Marko?"), "{out}");
    assert!(lines[1].ends_with("Z  < Polo!"), "{out}");
    assert_eq!(lines[1].find('T'), Some(10), "{out}");
    assert!(
        stderr(&a).contains(&format!("connected to {} (HTTP 101)", h.url())),
        "{}",
        stderr(&a)
    );

    // Two messages, in order; NDJSON for scripts.
    let a = h
        .local(&[
            "connect", "-o", "ndjson", "-x", "Marko?", "-x", "hello", "--wait", "2s",
        ])
        .await
        .success();
    let events: Vec<serde_json::Value> = stdout(&a)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                e["data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        summary[..2],
        [pair("sent", "Marko?"), pair("sent", "hello")]
    );
    let mut received = summary[2..].to_vec();
    received.sort();
    assert_eq!(
        received,
        [pair("received", "Marko?"), pair("received", "Polo!")]
    );
    assert!(events.iter().all(|e| e["at"].as_i64().is_some()));

    // A deployment named by its stage URL (as a context holds it): the
    // WebSocket URL is its ws:// form.
    let mut cmd = h.cmd();
    cmd.args([
        "--endpoint",
        &h.stack.management_endpoint(),
        "connect",
        "-x",
        "Marko?",
        "--wait",
        "2s",
    ]);
    let a = run(cmd).await.success();
    assert!(stdout(&a).contains("< Polo!"), "{}", stdout(&a));
    assert!(stderr(&a).contains(&h.url()), "{}", stderr(&a));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_from_a_pipe_are_sent_and_answered() {
    let h = start(|_| {}).await;
    let mut cmd = h.cmd();
    cmd.args(["--context", "local", "connect", "--wait", "2s"]);
    let assert = tokio::task::spawn_blocking(move || {
        use assert_cmd::assert::OutputAssertExt;
        use std::io::Write;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "Marko?").expect("write");
        writeln!(stdin, "Marko?").expect("write");
        drop(stdin);
        child.wait_with_output().expect("output").assert()
    })
    .await
    .expect("join")
    .success();
    let out = stdout(&assert);
    assert_eq!(out.matches("> Marko?").count(), 2, "{out}");
    assert_eq!(out.matches("< Polo!").count(), 2, "{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_is_the_connect_meta_and_broadcasts_and_deletes_reach_it() {
    let h = start(|_| {}).await;
    let running = Running::start(
        &h,
        &[
            "connect",
            "--param",
            "room=7",
            "--param",
            "user=ana maría",
            "-H",
            "User-Agent: meta-test",
            "--wait",
            "30s",
        ],
    );
    // -H replaced the default user agent.
    let id = h.record_of("meta-test").await;
    let record = h.record(&id).await.expect("record");
    assert_eq!(record.meta.get("room").map(String::as_str), Some("7"));
    assert_eq!(
        record.meta.get("user").map(String::as_str),
        Some("ana maría")
    );

    // Another client broadcasts through the stack's message route.
    let mut other = h.client("broadcaster").await;
    send_text(
        &mut other.ws,
        r#"{"type":"message","data":"meeting in room 7"}"#,
    )
    .await;
    assert!(
        eventually(10, || running
            .lines()
            .iter()
            .any(|l| l.ends_with("< meeting in room 7")))
        .await,
        "{:?}",
        running.lines()
    );

    // The server closes it: the code and reason are shown, exit 0.
    h.management()
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("delete");
    let (code, lines, err) = running.exit(10).await;
    assert_eq!(code, 0, "{lines:?} {err}");
    let last = lines.last().expect("a line");
    assert!(
        last.ends_with("closed by the server: 1000 Connection deleted"),
        "{lines:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_close_is_shown_with_its_code() {
    let h = start(|c| c.idle_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let a = h
        .local(&["connect", "-o", "ndjson", "--wait", "20s"])
        .await
        .success();
    assert!(started.elapsed() < Duration::from_secs(15), "waited it out");
    let out = stdout(&a);
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("a line")).expect("json");
    assert_eq!(last["event"], "closed", "{out}");
    assert_eq!(last["code"], 1001, "{out}");
    assert_eq!(last["reason"], "Going away", "{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_exits_1_naming_the_status() {
    let h = start(|_| {}).await;
    h.drop_table().await;
    let a = h.local(&["connect", "--execute", "Marko?"]).await;
    let err = fails_with(a, 1, "HTTP 500");
    assert!(err.contains("refused the handshake"), "{err}");

    // No subprotocol chosen by $connect: the client says so.
    let h2 = start(|_| {}).await;
    let a = h2
        .local(&["connect", "--subprotocol", "chat.v1", "-x", "Marko?"])
        .await;
    let err = fails_with(a, 1, "accepted none of the subprotocols");
    assert!(err.contains("chat.v1"), "{err}");
    h2.stop().await;
    h.stop().await;
}

#[test]
fn a_signed_handshake_carries_sigv4_in_its_query() {
    // A bare socket sees the handshake exactly as sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = wsadmin_in(dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDSIGNTEST")
        .env("AWS_SECRET_ACCESS_KEY", "sign-test-secret")
        .args([
            "--region",
            "eu-west-1",
            "connect",
            "--sign",
            "--param",
            "room=7",
        ])
        .arg(format!("ws://127.0.0.1:{port}/dev"))
        .args(["-x", "hi", "--wait", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("wsadmin starts");
    // Accept on a thread, so a client that never connects fails the test
    // instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept());
    });
    let Ok(Ok((socket, _))) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wsadmin exits");
        panic!(
            "wsadmin never connected: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut request_line = String::new();
    BufReader::new(&socket)
        .read_line(&mut request_line)
        .expect("request line");
    drop(socket);
    let out = child.wait_with_output().expect("wsadmin exits");
    let target = request_line
        .split_whitespace()
        .nth(1)
        .expect("a request target");
    let query: std::collections::HashMap<String, String> = target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/")))
        .collect();
    assert_eq!(query.get("room").map(String::as_str), Some("7"), "{target}");
    assert_eq!(
        query.get("X-Amz-Algorithm").map(String::as_str),
        Some("AWS4-HMAC-SHA256"),
        "{target}"
    );
    let credential = query.get("X-Amz-Credential").expect("credential");
    assert!(
        credential.starts_with("AKIDSIGNTEST/")
            && credential.ends_with("/eu-west-1/execute-api/aws4_request"),
        "{credential}"
    );
    assert_eq!(query.get("X-Amz-Signature").map(String::len), Some(64));
    // The handshake failed (the socket closed): one line, and it never
    // shows the signed query (a credential for minutes).
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("X-Amz-Signature"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_handshake_leaves_only_the_applications_meta() {
    let h = start(|_| {}).await;
    let running = Running::start(
        &h,
        &[
            "connect", "--sign", "--param", "room=7", "-x", "Marko?", "--wait", "3s",
        ],
    );
    let id = h.record_of(AGENT).await;
    let record = h.record(&id).await.expect("record");
    // $connect keeps the query string as the meta, but never the
    // signature, credential or token of a signed handshake.
    assert_eq!(
        record.meta,
        std::collections::BTreeMap::from([("room".to_owned(), "7".to_owned())])
    );
    let (code, lines, err) = running.exit(15).await;
    assert_eq!(code, 0, "{err}");
    assert!(lines.iter().any(|l| l.ends_with("< Polo!")), "{lines:?}");
    assert!(!err.contains("X-Amz-Signature"), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_one_line_each() {
    let dir = tempfile::tempdir().expect("dir");
    let wsadmin = |args: &[&str]| {
        let mut cmd = wsadmin_in(dir.path());
        cmd.args(args);
        run(cmd)
    };
    let one_line = |a: assert_cmd::assert::Assert, code: i32, needle: &str| {
        let err = fails_with(a, code, needle);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("wsadmin: "), "{err}");
    };
    let url = "ws://127.0.0.1:9/dev";
    one_line(
        wsadmin(&["connect", url, "-H", "nocolon"]).await,
        2,
        "invalid header \"nocolon\"",
    );
    one_line(
        wsadmin(&["connect", url, "--param", "noequals"]).await,
        2,
        "invalid query parameter \"noequals\"",
    );
    one_line(
        wsadmin(&["connect", "http://127.0.0.1:9/dev"]).await,
        2,
        "invalid WebSocket URL",
    );
    one_line(
        wsadmin(&["connect", "127.0.0.1:9/dev"]).await,
        2,
        "invalid WebSocket URL",
    );
    one_line(wsadmin(&["connect"]).await, 2, "no URL to connect to");
    one_line(
        wsadmin(&["--api-id", "abc123", "--stage", "dev", "connect"]).await,
        1,
        "no region",
    );
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let closed = format!("ws://127.0.0.1:{port}/dev");
    one_line(
        wsadmin(&["connect", &closed, "-x", "hi"]).await,
        1,
        &format!("cannot connect to {closed}"),
    );
    // TLS to a server that speaks none.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let tls = format!("wss://localhost:{}/dev", addr.port());
    one_line(
        wsadmin(&["connect", &tls]).await,
        1,
        &format!("cannot connect to {tls}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_in_a_real_terminal() {
    let h = start(|_| {}).await;
    let tmux = h.in_terminal(120, 30, "", "connect --param room=7", false);
    tmux.until("the connection is announced", 15, |s| {
        s.contains("connected to") && s.contains("Ctrl-D")
    })
    .await;
    tmux.text("Marko?");
    tmux.keys(&["Enter"]);
    tmux.until("Polo! arrives", 10, |s| s.contains("< Polo!"))
        .await;
    // A broadcast from another client reaches the terminal too.
    let mut other = h.client("broadcaster").await;
    send_text(&mut other.ws, r#"{"type":"message","data":"hello room"}"#).await;
    tmux.until("the broadcast arrives", 10, |s| s.contains("< hello room"))
        .await;
    // Ctrl-D closes it and wsadmin exits.
    tmux.keys(&["C-d"]);
    assert!(eventually(10, || !tmux.alive()).await, "{}", tmux.screen());
    // Its record went with it ($disconnect ran).
    let mut gone = false;
    for _ in 0..100 {
        if h.find_record_of(AGENT).await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the record stayed");
    h.stop().await;
}

/// `wss://` to the local stack's TLS endpoint: its CA trusted from the
/// state file, or from `--ca`; refused without either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_the_local_stack_trusts_its_ca_from_the_state_file_or_ca() {
    let certs = tempfile::tempdir().expect("dir");
    let h = wsadmin_harness::start_tls(certs.path(), |_| {}).await;
    let wss = h.wss_url();
    let home = tempfile::tempdir().expect("dir");
    let marko = ["connect", &wss, "-x", "Marko?", "--wait", "2s"];

    // No state file, no --ca: the system's roots do not know this CA.
    let a = run({
        let mut cmd = wsadmin_in(home.path());
        cmd.args(marko);
        cmd
    })
    .await;
    let err = fails_with(a, 1, "TLS handshake with");
    assert!(err.contains(&wss), "{err}");

    // --ca names it.
    let ca = h.stack.ca_file().expect("CA");
    let a = run({
        let mut cmd = wsadmin_in(home.path());
        cmd.args(marko).arg("--ca").arg(&ca);
        cmd
    })
    .await
    .success();
    assert!(stdout(&a).contains("< Polo!"), "{}", stdout(&a));

    // The state file of `wsstack local` names it.
    h.stack
        .info()
        .write(&home.path().join("local-stack.json"))
        .expect("state file");
    let a = run({
        let mut cmd = wsadmin_in(home.path());
        cmd.args(marko);
        cmd
    })
    .await
    .success();
    assert!(stdout(&a).contains("< Polo!"), "{}", stdout(&a));
    assert!(
        stderr(&a).contains(&format!("connected to {wss} (HTTP 101)")),
        "{}",
        stderr(&a)
    );
    h.stop().await;
}

/// The Management API at the stack's `https://` endpoint, through the lean
/// client's own TLS connections: its CA trusted through `SSL_CERT_FILE` (as
/// the SDK's client trusts one), refused without it; `send` posts and
/// `disconnect` deletes over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_over_https_sends_and_disconnects() {
    let certs = tempfile::tempdir().expect("dir");
    let h = wsadmin_harness::start_tls(certs.path(), |_| {}).await;
    let mut c = h.wss_client("lean-over-https/1.0").await;
    let home = tempfile::tempdir().expect("dir");
    let config = h.stack.config();
    let endpoint = h.stack.https_management_endpoint().expect("https");
    let ca = h.stack.ca_file().expect("CA");
    let wsadmin = |trust: bool, args: &[&str]| {
        let mut cmd = wsadmin_in(home.path());
        cmd.env("AWS_ACCESS_KEY_ID", &config.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &config.secret_access_key)
            .env("AWS_REGION", &config.region)
            .args(["--endpoint", &endpoint, "--table", &config.stack.table])
            .args(["--dynamodb-endpoint", h.stack.dynamodb_endpoint()])
            .args(args);
        if trust {
            cmd.env("SSL_CERT_FILE", &ca);
        }
        cmd
    };

    // The system's roots do not know this CA.
    let a = run(wsadmin(
        false,
        &["send", "--data", "untrusted", "--", &c.id],
    ))
    .await;
    let err = stderr(&a);
    assert!(!a.get_output().status.success(), "{err}");
    assert!(
        err.contains(&endpoint) && err.contains("certificate"),
        "{err}"
    );

    let a = run(wsadmin(
        true,
        &["send", "--data", "over https", "--", &c.id],
    ))
    .await
    .success();
    assert!(stdout(&a).contains("delivered"), "{}", stdout(&a));
    assert_eq!(wsadmin_harness::recv_text(&mut c.ws).await, "over https");

    run(wsadmin(true, &["disconnect", "--yes", "--", &c.id]))
        .await
        .success();
    assert!(
        wsadmin_harness::recv_close(&mut c.ws, Duration::from_secs(5))
            .await
            .is_some(),
        "closed by DeleteConnection"
    );
    h.stop().await;
}

/// A forward proxy on 127.0.0.1 for plain-HTTP targets: it reads each
/// connection's first request head (absolute-form, as clients send to a
/// proxy), writes its target down, then relays both ways to the host the
/// target names.
async fn forward_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                log.lock().expect("log").push(target.clone());
                let Some(authority) = target
                    .strip_prefix("http://")
                    .and_then(|rest| rest.split('/').next())
                else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(authority).await else {
                    return;
                };
                if server.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (url, seen)
}

/// A proxy in the environment (`HTTP_PROXY`, as for the local stack's
/// plain endpoint; `HTTPS_PROXY` on AWS) is honoured: the lean client
/// connects directly, so wsadmin sends the Management API's requests
/// through the SDK's client instead and says so; `NO_PROXY` naming the
/// host, or `WSADMIN_GATEWAY_CLIENT=lean`, goes direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_in_the_environment_carries_the_management_api_requests() {
    let h = start(|_| {}).await;
    let mut c = h.client("behind-a-proxy").await;
    let (proxy, seen) = forward_proxy().await;
    let send = |data: &str, env: &[(&str, &str)]| {
        let mut cmd = h.cmd();
        cmd.env("HTTP_PROXY", &proxy)
            .envs(env.iter().copied())
            .args([
                "-v",
                "--context",
                "local",
                "send",
                "--data",
                data,
                "--",
                &c.id,
            ]);
        run(cmd)
    };
    let posts = |seen: &Mutex<Vec<String>>| {
        seen.lock()
            .expect("log")
            .iter()
            .filter(|t| t.contains("/@connections/"))
            .count()
    };

    let a = send("via the proxy", &[]).await.success();
    assert_eq!(wsadmin_harness::recv_text(&mut c.ws).await, "via the proxy");
    assert!(posts(&seen) >= 1, "{:?}", seen.lock().expect("log"));
    let err = stderr(&a);
    assert!(
        err.contains("go through the AWS SDK's client") && err.contains(&proxy["http://".len()..]),
        "{err}"
    );

    for (data, env) in [
        ("no proxy for it", ("NO_PROXY", "127.0.0.1")),
        ("lean, as asked", ("WSADMIN_GATEWAY_CLIENT", "lean")),
    ] {
        let before = posts(&seen);
        let a = send(data, &[env]).await.success();
        assert_eq!(wsadmin_harness::recv_text(&mut c.ws).await, data);
        assert_eq!(posts(&seen), before, "{env:?}: not through the proxy");
        assert!(!stderr(&a).contains("AWS SDK's client"), "{}", stderr(&a));
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_passes_an_iam_authorized_connect_that_refuses_the_unsigned() {
    let h = start(|c| {
        c.stack.routes[0] =
            wsadmin_core::stack::RouteSpec::new("$connect", "ws-connect").with_iam();
    })
    .await;
    let err = fails_with(
        h.local(&["connect", "-x", "Marko?", "--wait", "1s"]).await,
        1,
        "refused the handshake: HTTP 403 Forbidden",
    );
    assert!(err.contains("--sign"), "{err}");
    let ok = h
        .local(&["connect", "--sign", "-x", "Marko?", "--wait", "2s"])
        .await
        .success();
    assert!(
        stdout(&ok).lines().any(|l| l.ends_with("< Polo!")),
        "{}",
        stdout(&ok)
    );
    h.stop().await;
}
