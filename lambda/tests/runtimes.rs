//! Each runtime as a developer meets it: Node (CommonJS, ES modules,
//! callbacks), Python (a directory and inline code), `provided` (a
//! `bootstrap` speaking the Runtime API itself), the context and the
//! environment a function sees. Real processes only.

mod common;

use std::collections::BTreeMap;

use common::{code, json, spec, start, start_with};
use wsadmin_core::function::{FunctionCode, FunctionSpec};

#[tokio::test]
async fn a_node_commonjs_async_handler_answers_with_lambdas_context() {
    let dir = code(&[(
        "index.js",
        r#"
        exports.handler = async (event, context) => {
          console.log("hello");
          console.error("on stderr");
          return {
            event,
            requestId: context.awsRequestId,
            functionName: context.functionName,
            functionVersion: context.functionVersion,
            memory: context.memoryLimitInMB,
            arn: context.invokedFunctionArn,
            logGroup: context.logGroupName,
            logStream: context.logStreamName,
            waits: context.callbackWaitsForEmptyEventLoop,
            remaining: context.getRemainingTimeInMillis(),
            trace: process.env._X_AMZN_TRACE_ID,
          };
        };
        "#,
    )]);
    let mut f = spec("echo", "nodejs20.x", "index.handler", dir.path());
    f.timeout_seconds = 7;
    f.memory_mb = 256;
    let mut fx = start(vec![f]).await;
    let answer = json(
        &fx.host
            .invoke("echo", r#"{"say":"hi"}"#.into())
            .await
            .expect("the handler answers"),
    );
    assert_eq!(answer["event"], json(r#"{"say":"hi"}"#));
    assert_eq!(answer["functionName"], "echo");
    assert_eq!(answer["functionVersion"], "$LATEST");
    assert_eq!(answer["memory"], "256");
    assert_eq!(
        answer["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:echo"
    );
    assert_eq!(answer["logGroup"], "/aws/lambda/echo");
    assert!(
        answer["logStream"]
            .as_str()
            .is_some_and(|s| s.contains("/[$LATEST]")),
        "{answer}"
    );
    assert_eq!(answer["waits"], true);
    let remaining = answer["remaining"].as_i64().expect("a number");
    assert!((1..=7000).contains(&remaining), "{remaining}");
    assert!(
        answer["trace"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-")),
        "{answer}"
    );
    let id = answer["requestId"].as_str().expect("a request id");
    fx.logs
        .wait_for(&format!("[echo] START RequestId: {id} Version: $LATEST"))
        .await;
    fx.logs.wait_for("[echo] hello").await;
    fx.logs.wait_for("[echo] on stderr").await;
    fx.logs
        .wait_for(&format!("[echo] END RequestId: {id}"))
        .await;
    let report = fx.logs.wait_for("[echo] REPORT RequestId: ").await;
    assert!(report.contains("\tMemory Size: 256 MB\t"), "{report}");
    let lines = fx.logs.drain().to_vec();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:?}"))
    };
    assert!(
        at("START") < at("hello") && at("hello") < at("END") && at("END") < at("REPORT"),
        "{lines:#?}"
    );
    fx.host.stop().await;
}

#[tokio::test]
async fn node_es_modules_load_from_mjs_and_from_type_module_packages() {
    let mjs = code(&[(
        "app.mjs",
        "export const handler = async (event) => ({ kind: 'mjs', n: event.n + 1 });",
    )]);
    let typed = code(&[
        ("package.json", r#"{"type":"module"}"#),
        (
            "src/app.js",
            "import { helper } from './helper.js';\n\
             export async function handler(event) { return { kind: helper(), n: event.n * 2 }; }",
        ),
        (
            "src/helper.js",
            "export const helper = () => 'type-module';",
        ),
    ]);
    let fx = start(vec![
        spec("mjs", "nodejs20.x", "app.handler", mjs.path()),
        spec("typed", "nodejs20.x", "src/app.handler", typed.path()),
    ])
    .await;
    let a = json(
        &fx.host
            .invoke("mjs", r#"{"n":1}"#.into())
            .await
            .expect("mjs"),
    );
    assert_eq!(a, json(r#"{"kind":"mjs","n":2}"#));
    let b = json(
        &fx.host
            .invoke("typed", r#"{"n":21}"#.into())
            .await
            .expect("type module"),
    );
    assert_eq!(b, json(r#"{"kind":"type-module","n":42}"#));
    fx.host.stop().await;
}

#[tokio::test]
async fn a_node_callback_handler_answers_when_its_event_loop_empties_or_at_once_if_told() {
    let dir = code(&[(
        "index.js",
        r#"
        exports.waits = (event, context, callback) => {
          setTimeout(() => { globalThis.late = true; }, 300);
          callback(null, { at: Date.now() });
        };
        exports.now = (event, context, callback) => {
          context.callbackWaitsForEmptyEventLoop = false;
          setTimeout(() => {}, 60000);
          callback(null, { at: Date.now() });
        };
        exports.fails = (event, context, callback) => callback(new TypeError("bad callback"));
        exports.silent = () => { setTimeout(() => {}, 50); };
        "#,
    )]);
    let fx = start(vec![
        spec("waits", "nodejs20.x", "index.waits", dir.path()),
        spec("now", "nodejs20.x", "index.now", dir.path()),
        spec("fails", "nodejs20.x", "index.fails", dir.path()),
        spec("silent", "nodejs20.x", "index.silent", dir.path()),
    ])
    .await;
    let t = std::time::Instant::now();
    fx.host.invoke("waits", "{}".into()).await.expect("waits");
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(300),
        "the answer came before the event loop emptied: {:?}",
        t.elapsed()
    );
    let t = std::time::Instant::now();
    fx.host.invoke("now", "{}".into()).await.expect("now");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "the answer waited for the timer: {:?}",
        t.elapsed()
    );
    let e = fx.host.invoke("fails", "{}".into()).await.unwrap_err();
    assert!(
        matches!(&e, wsadmin_lambda::InvokeFailure::Function { error_type, message, .. }
            if error_type == "TypeError" && message == "bad callback"),
        "{e:?}"
    );
    // Neither a promise nor a callback: null once the event loop is empty.
    let answer = fx.host.invoke("silent", "{}".into()).await.expect("silent");
    assert_eq!(answer, "null");
    fx.host.stop().await;
}

#[tokio::test]
async fn python_handlers_run_from_a_directory_and_from_inline_code() {
    let dir = code(&[
        (
            "app/main.py",
            r#"
import helper

def handler(event, context):
    print("py says hi")
    return {
        "n": helper.double(event["n"]),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
    }
"#,
        ),
        ("helper.py", "def double(n):\n    return n * 2\n"),
    ]);
    let inline = FunctionSpec::new(
        "inline",
        "python3.11",
        "index.handler",
        FunctionCode::Inline("def handler(event, context):\n    return {'inline': event}\n".into()),
    );
    let mut fx = start(vec![
        spec("py", "python3.11", "app/main.handler", dir.path()),
        inline,
    ])
    .await;
    let a = json(&fx.host.invoke("py", r#"{"n":4}"#.into()).await.expect("py"));
    assert_eq!(a["n"], 8);
    assert_eq!(a["function_name"], "py");
    assert_eq!(a["version"], "$LATEST");
    assert_eq!(a["memory"], "128");
    assert_eq!(
        a["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:py"
    );
    assert_eq!(a["log_group"], "/aws/lambda/py");
    let remaining = a["remaining"].as_i64().expect("a number");
    assert!((1..=3000).contains(&remaining), "{remaining}");
    fx.logs.wait_for("[py] py says hi").await;
    let b = json(
        &fx.host
            .invoke("inline", r#"[1,"two"]"#.into())
            .await
            .expect("inline"),
    );
    assert_eq!(b, json(r#"{"inline":[1,"two"]}"#));
    assert!(
        fx.work.path().join("functions/inline/index.py").is_file(),
        "inline code is written as index.py"
    );
    fx.host.stop().await;
}

#[tokio::test]
async fn inline_node_code_is_written_as_index_js() {
    let inline = FunctionSpec::new(
        "inline",
        "nodejs20.x",
        "index.handler",
        FunctionCode::Inline("exports.handler = async (e) => ({ inline: e });".into()),
    );
    let fx = start(vec![inline]).await;
    let a = json(&fx.host.invoke("inline", "7".into()).await.expect("inline"));
    assert_eq!(a, json(r#"{"inline":7}"#));
    fx.host.stop().await;
}

/// A `bootstrap` that speaks the Runtime API itself: the contract any
/// `provided` runtime relies on, including the 4xx for a wrong request id.
#[tokio::test]
async fn a_provided_bootstrap_speaks_the_runtime_api() {
    let bootstrap = format!(
        r#"#!{python}
import json, os, urllib.request, urllib.error
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        headers = dict(r.headers)
        event = json.loads(r.read())
    rid = headers["Lambda-Runtime-Aws-Request-Id"]
    try:
        urllib.request.urlopen(urllib.request.Request(api + "/invocation/not-the-id/response", data=b"{{}}", method="POST"))
        wrong = None
    except urllib.error.HTTPError as e:
        wrong = [e.code, json.loads(e.read())]
    try:
        urllib.request.urlopen(api + "/nowhere")
        unknown = None
    except urllib.error.HTTPError as e:
        unknown = e.code
    print("bootstrap got", event, flush=True)
    answer = json.dumps({{
        "event": event, "headers": headers, "wrong": wrong, "unknown": unknown,
        "handler": os.environ["_HANDLER"], "root": os.environ["LAMBDA_TASK_ROOT"],
        "cwd": os.getcwd(),
    }}).encode()
    urllib.request.urlopen(urllib.request.Request(api + "/invocation/" + rid + "/response", data=answer, method="POST"))
"#,
        python = common::python()
    );
    let dir = code(&[("bootstrap", &bootstrap)]);
    let path = dir.path().join("bootstrap");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut fx = start(vec![spec(
        "custom",
        "provided.al2023",
        "my.handler",
        dir.path(),
    )])
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis();
    let answer = fx.host.invoke("custom", r#"{"x":1}"#.into()).await;
    let a = json(&answer.unwrap_or_else(|e| panic!("{e}; logs: {:#?}", fx.logs.drain())));
    assert_eq!(a["event"], json(r#"{"x":1}"#));
    let headers = &a["headers"];
    let id = headers["Lambda-Runtime-Aws-Request-Id"]
        .as_str()
        .expect("id");
    assert_eq!(id.len(), 36, "{id}");
    let deadline: u128 = headers["Lambda-Runtime-Deadline-Ms"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("a deadline");
    assert!(
        deadline > before + 2000 && deadline <= before + 3000 + 5000,
        "deadline {deadline} vs now {before} with a 3 s timeout"
    );
    assert_eq!(
        headers["Lambda-Runtime-Invoked-Function-Arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:custom"
    );
    assert!(
        headers["Lambda-Runtime-Trace-Id"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-")),
        "{headers}"
    );
    assert_eq!(a["wrong"][0], 400);
    assert_eq!(a["wrong"][1]["errorType"], "InvalidRequestID");
    assert_eq!(a["unknown"], 404);
    assert_eq!(a["handler"], "my.handler");
    assert_eq!(a["root"], dir.path().display().to_string());
    let real = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(a["cwd"], real.display().to_string());
    fx.logs.wait_for("[custom] bootstrap got {'x': 1}").await;
    fx.host.stop().await;
}

#[tokio::test]
async fn the_function_sees_its_environment_and_not_the_hosts_other_variables() {
    // Cargo sets this for the test process; the function must not see it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let dir = code(&[(
        "index.py",
        "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
    )]);
    let mut f = spec("env", "python3.11", "index.handler", dir.path());
    f.environment = BTreeMap::from([
        ("GREETING".into(), "hi".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), "http://fn-wins".into()),
    ]);
    let fx = start_with(vec![f], |c| {
        c.region = "eu-west-3".into();
        c.session_token = Some("token".into());
        c.extra_env = BTreeMap::from([
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), "http://host".into()),
            ("NODE_PATH".into(), "/opt/nodejs".into()),
        ]);
    })
    .await;
    let env = json(&fx.host.invoke("env", "{}".into()).await.expect("env"));
    let var = |k: &str| env[k].as_str().unwrap_or_else(|| panic!("no {k} in {env}"));
    assert_eq!(var("GREETING"), "hi");
    assert_eq!(var("AWS_ENDPOINT_URL_DYNAMODB"), "http://fn-wins");
    assert_eq!(var("NODE_PATH"), "/opt/nodejs");
    assert_eq!(var("AWS_REGION"), "eu-west-3");
    assert_eq!(var("AWS_DEFAULT_REGION"), "eu-west-3");
    assert_eq!(var("AWS_ACCESS_KEY_ID"), "AKIDLOCALTEST");
    assert_eq!(var("AWS_SECRET_ACCESS_KEY"), "local-test-secret");
    assert_eq!(var("AWS_SESSION_TOKEN"), "token");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_NAME"), "env");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "128");
    assert_eq!(var("AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/env");
    assert!(var("AWS_LAMBDA_LOG_STREAM_NAME").contains("[$LATEST]"));
    assert!(var("AWS_LAMBDA_RUNTIME_API").starts_with("127.0.0.1:"));
    assert_eq!(var("_HANDLER"), "index.handler");
    assert_eq!(var("TZ"), ":UTC");
    assert!(!var("PATH").is_empty());
    assert!(env.get("CARGO_MANIFEST_DIR").is_none(), "{env}");
    assert!(env.get("CARGO_PKG_NAME").is_none(), "{env}");
    fx.host.stop().await;
}

/// What the local stack's `Functions` needs: a host shared across tasks,
/// and an invocation that can run on any of them.
#[test]
fn the_host_is_shareable_and_its_invocations_are_send() {
    fn shareable<T: Send + Sync + std::fmt::Debug + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shareable::<wsadmin_lambda::LambdaHost>();
    let host: Option<wsadmin_lambda::LambdaHost> = None;
    if let Some(host) = &host {
        send(&host.invoke("f", String::new()));
    }
}
