//! `wsstack local --template FILE`: the local stack started from the
//! template `wsstack template` writes, so the artifact that goes to AWS is
//! the one proven end to end: real processes (`wsstack template`, then
//! `wsstack local` with its dynalite) and real WebSocket clients. A bad
//! template, hand-written or not, is refused in one line before anything
//! starts.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::{Ws, assert_silent, recv_text, send_text};

fn wsstack(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsstack"));
    cmd.env("XDG_STATE_HOME", state)
        .env("WSADMIN_LOCAL_STATE", state.join("local-stack.json"))
        .env_remove("WSSTACK_PORT");
    cmd
}

/// The template of `wsstack template --format json` with `args`, in `dir`.
fn template(dir: &Path, args: &[&str]) -> PathBuf {
    let path = dir.join("stack.template.json");
    let out = wsstack(dir)
        .args(["template", "--format", "json", "--out"])
        .arg(&path)
        .args(args)
        .output()
        .expect("wsstack template runs");
    assert!(out.status.success(), "{}", stderr(&out));
    path
}

/// A running `wsstack local --template`, stopped with SIGTERM on drop.
struct Local {
    child: Option<Child>,
    url: String,
    banner: String,
}

impl Local {
    fn start(dir: &Path, template: &Path) -> Local {
        let mut child = wsstack(dir)
            .args(["local", "--port", "0", "--dynamodb-port", "0", "--template"])
            .arg(template)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wsstack local runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = String::new();
        let mut url = None;
        for line in lines.by_ref().map_while(Result::ok) {
            banner.push_str(&line);
            banner.push('\n');
            if let Some(u) = line.trim().strip_prefix("WebSocket") {
                url = Some(u.trim().to_owned());
            }
            if line.trim().starts_with("Credentials") {
                break;
            }
        }
        // Read the rest, so the banner never meets a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let url = url.unwrap_or_else(|| panic!("the banner names the WebSocket URL: {banner}"));
        Local {
            child: Some(child),
            url,
            banner,
        }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let child = self.child.take().expect("running");
        terminate(&child);
        child.wait_with_output().expect("wsstack exits").status
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            let _ = child.wait();
        }
    }
}

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("handshake within 10 s")
    .expect("handshake");
    ws
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_seed_walkthrough_on_the_stack_started_from_its_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = template(dir.path(), &[]);
    let local = Local::start(dir.path(), &file);
    assert!(local.url.ends_with("/dev"), "{}", local.banner);
    assert!(
        local.banner.contains("table WS_CONNECTIONS"),
        "{}",
        local.banner
    );

    // The handshake returns once $connect registered the connection, so
    // both are in the table before the broadcast scans it.
    let mut a = connect(&local.url).await;
    let mut b = connect(&local.url).await;

    send_text(&mut a, "Marko?").await;
    assert_eq!(recv_text(&mut a).await, "Polo!", "$default answers");
    assert_silent(&mut b, Duration::from_millis(300)).await;

    send_text(&mut a, r#"{"type":"message","data":"Hello World!"}"#).await;
    assert_eq!(recv_text(&mut a).await, "Hello World!");
    assert_eq!(recv_text(&mut b).await, "Hello World!");
    // The message route has no route response: nothing else arrives.
    assert_silent(&mut a, Duration::from_millis(300)).await;

    send_text(&mut b, r#"{"type":"chat","data":1}"#).await;
    assert_eq!(
        recv_text(&mut b).await,
        "Marko?",
        "an unknown type goes to $default"
    );

    a.close(None).await.expect("close");
    b.close(None).await.expect("close");
    assert!(local.stop().success(), "SIGTERM stops it cleanly");
}

#[tokio::test]
async fn the_yaml_form_starts_the_stack_with_its_stage_and_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("stack.yaml");
    let out = wsstack(dir.path())
        .args([
            "template",
            "--stage",
            "prod",
            "--table",
            "CHAT_CONNECTIONS",
            "--out",
        ])
        .arg(&file)
        .output()
        .expect("wsstack template runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let local = Local::start(dir.path(), &file);
    assert!(local.url.ends_with("/prod"), "{}", local.banner);
    assert!(
        local.banner.contains("table CHAT_CONNECTIONS"),
        "{}",
        local.banner
    );
    let mut a = connect(&local.url).await;
    send_text(&mut a, "Marko?").await;
    assert_eq!(recv_text(&mut a).await, "Polo!");
    assert!(local.stop().success());
}

/// Runs `wsstack local --template` on `file`, expecting a refusal before
/// anything starts, and returns its one line.
fn refused(dir: &Path, file: &Path) -> String {
    let out = wsstack(dir)
        .args(["local", "--port", "0", "--template"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("wsstack runs");
    assert!(!out.status.success(), "accepted {}", file.display());
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.ends_with('\n'), "{err:?}");
    err.trim_end().to_owned()
}

#[test]
fn a_file_that_is_not_a_template_is_refused_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("package.json");
    std::fs::write(&file, r#"{"name": "not-a-stack", "version": "1.0.0"}"#).expect("write");
    assert_eq!(
        refused(dir.path(), &file),
        format!(
            "wsstack: template file \"{}\": not a CloudFormation template: it has no \
             Resources (generate one with wsstack template)",
            file.display()
        )
    );
}

#[test]
fn a_hand_written_template_with_a_runtime_we_cannot_run_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hand-written.yaml");
    std::fs::write(
        &file,
        "Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: !Sub '${AWS::StackName}-api', ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.type }
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref Api, StageName: dev }
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: $default, Target: !Sub 'integrations/${Integration}' }
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn.Arn }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: java17
      Handler: app.Handler::handleRequest
      InlineCode: class Handler {}
",
    )
    .expect("write");
    assert_eq!(
        refused(dir.path(), &file),
        format!(
            "wsstack: template file \"{}\": resource \"Fn\", property Runtime, line 18: \
             function \"Fn\" has runtime \"java17\", which the local stack cannot run (it runs \
             provided.al2023, provided.al2, nodejs18.x to nodejs24.x, python3.9 to python3.13)",
            file.display()
        )
    );
}

#[test]
fn bad_parameter_and_code_flags_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (flag, value, expected) in [
        ("--parameter", "Stage", "expected KEY=VALUE"),
        ("--parameter", "my-stage=dev", "is not a parameter name"),
        ("--code", "EchoFunction", "expected LOGICAL_ID=DIR"),
    ] {
        let out = wsstack(dir.path())
            .args(["local", "--template", "t.yaml", flag, value])
            .output()
            .expect("wsstack runs");
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
}

#[test]
fn a_template_with_a_function_we_do_not_run_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = template(dir.path(), &[]);
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    value["Resources"]["MessageFunction"]["Metadata"]["wsstack:handler"] =
        serde_json::json!("ws-echo");
    std::fs::write(&file, value.to_string()).expect("write");
    assert_eq!(
        refused(dir.path(), &file),
        format!(
            "wsstack: template file \"{}\": function \"MessageFunction\": handler \"ws-echo\" \
             is not one the local stack runs (use ws-connect, ws-disconnect, ws-default or \
             ws-message as wsstack:handler, or leave the metadata out to run the function's own \
             code)",
            file.display()
        )
    );
}

#[test]
fn a_missing_template_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nowhere.json");
    let err = refused(dir.path(), &file);
    assert!(
        err.starts_with(&format!(
            "wsstack: template file \"{}\": cannot read it: ",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn template_and_stack_together_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = wsstack(dir.path())
        .args(["local", "--template", "a.json", "--stack", "b.toml"])
        .output()
        .expect("wsstack runs");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_template_whose_connect_has_a_request_authorizer_runs_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/templates/token-authorizer.yaml");
    let local = Local::start(dir.path(), &file);
    assert!(local.url.ends_with("/live"), "{}", local.banner);
    assert!(
        local
            .banner
            .contains(", authorizer token (wsstack-local-auth)"),
        "{}",
        local.banner
    );
    let refused = |query: &str| {
        let url = format!("{}{query}", local.url);
        async move {
            match tokio_tungstenite::connect_async(url).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
                other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
            }
        }
    };
    assert_eq!(refused("").await, 401, "no token");
    assert_eq!(refused("?token=no").await, 403, "denied");
    let mut ws = connect(&format!("{}?token=ok", local.url)).await;
    send_text(&mut ws, "who").await;
    let authorizer: serde_json::Value =
        serde_json::from_str(&recv_text(&mut ws).await).expect("JSON");
    assert_eq!(
        authorizer,
        serde_json::json!({"principalId": "user-ok", "plan": "pro", "seats": "3"})
    );
    drop(ws);
    assert!(local.stop().success());
}
