//! Functions of any runtime on the local stack (issue 16): routes whose
//! function the stack declares with a runtime run through the Lambda host,
//! in their own Node and Python processes, beside our handlers in-process
//! (`$connect`/`$disconnect` here, so records exist). Real processes, real
//! clients. What a client sees when a function fails is what API Gateway
//! shows for a failed integration: the `Internal server error` frame to the
//! sender only, and everyone else keeps being served.

use std::path::Path;

use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_core::stack::{RouteSpec, StackSpec};
use wsadmin_harness::{Harness, Ws, recv_text, send_text, start};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write the function's code");
}

/// A directory holding `files` (name, contents): a function's code.
fn code_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn route(key: &str, function: &str) -> RouteSpec {
    RouteSpec::new(key, function).with_route_response()
}

/// Our `$connect`/`$disconnect`, and one route per function under test,
/// with `slots` Lambda execution slots.
async fn stack(slots: usize, functions: Vec<FunctionSpec>, routes: Vec<RouteSpec>) -> Harness {
    start(|c| {
        c.lambda_concurrency = slots;
        c.stack = StackSpec {
            routes: [
                vec![
                    RouteSpec::new("$connect", "ws-connect"),
                    RouteSpec::new("$disconnect", "ws-disconnect"),
                ],
                routes,
            ]
            .concat(),
            functions,
            ..StackSpec::default()
        };
    })
    .await
}

/// The frame API Gateway sends the sender when a route's integration fails.
async fn assert_integration_failure(ws: &mut Ws) {
    let frame: serde_json::Value =
        serde_json::from_str(&recv_text(ws).await).expect("a JSON error frame");
    assert_eq!(frame["message"], "Internal server error", "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_python_functions_answer_routes_in_their_own_processes() {
    let esm = code_dir(&[(
        "app.mjs",
        "export const handler = async (event) => ({ statusCode: 200, body: `esm ${JSON.parse(event.body).n} ${event.requestContext.routeKey}` });\n",
    )]);
    let callback = code_dir(&[(
        "index.js",
        "exports.handler = function (event, context, callback) {\n  callback(null, { statusCode: 200, body: 'callback ' + context.functionName + ' ' + (context.getRemainingTimeInMillis() > 0) });\n};\n",
    )]);
    let python = "import json\n\ndef handler(event, context):\n    return {'statusCode': 200, 'body': 'echo ' + event['body']}\n";
    let functions = vec![
        FunctionSpec::new(
            "esm-fn",
            "nodejs20.x",
            "app.handler",
            FunctionCode::Dir(esm.path().to_owned()),
        ),
        FunctionSpec::new(
            "callback-fn",
            "nodejs20.x",
            "index.handler",
            FunctionCode::Dir(callback.path().to_owned()),
        ),
        FunctionSpec::new(
            "echo",
            "python3.11",
            "index.handler",
            FunctionCode::Inline(python.into()),
        ),
    ];
    let h = stack(
        100,
        functions,
        vec![
            route("$default", "echo"),
            route("esm", "esm-fn"),
            route("callback", "callback-fn"),
        ],
    )
    .await;
    let mut a = h.client("a").await;
    send_text(&mut a.ws, "hello").await;
    assert_eq!(recv_text(&mut a.ws).await, "echo hello");
    send_text(&mut a.ws, r#"{"type":"esm","n":7}"#).await;
    assert_eq!(recv_text(&mut a.ws).await, "esm 7 esm");
    send_text(&mut a.ws, r#"{"type":"callback"}"#).await;
    assert_eq!(recv_text(&mut a.ws).await, "callback callback-fn true");
    // Warm now: the same instance answers again.
    send_text(&mut a.ws, "again").await;
    assert_eq!(recv_text(&mut a.ws).await, "echo again");
    let stats = h.stack.function_stats("echo").expect("echo is hosted");
    assert_eq!((stats.cold_starts, stats.invocations), (1, 2), "{stats:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_functions_show_what_api_gateway_shows_and_others_keep_serving() {
    let code = code_dir(&[
        (
            "broken.js",
            "throw new Error('cannot read config');\nexports.handler = async () => ({ statusCode: 200 });\n",
        ),
        (
            "slow.js",
            "exports.handler = () => new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200, body: 'late' }), 10000));\n",
        ),
        (
            "ok.js",
            "exports.handler = async (event) => ({ statusCode: 200, body: 'ok ' + event.body });\n",
        ),
    ]);
    let dir_code = || FunctionCode::Dir(code.path().to_owned());
    let mut slow = FunctionSpec::new("slow", "nodejs20.x", "slow.handler", dir_code());
    slow.timeout_seconds = 1;
    let functions = vec![
        FunctionSpec::new("broken", "nodejs20.x", "broken.handler", dir_code()),
        slow,
        FunctionSpec::new("ok", "nodejs20.x", "ok.handler", dir_code()),
    ];
    let h = stack(
        100,
        functions,
        vec![
            route("$default", "ok"),
            route("broken", "broken"),
            route("slow", "slow"),
        ],
    )
    .await;
    let mut a = h.client("a").await;
    let mut b = h.client("b").await;

    // An init failure: A sees the error frame; B is served.
    send_text(&mut a.ws, r#"{"type":"broken"}"#).await;
    assert_integration_failure(&mut a.ws).await;
    send_text(&mut b.ws, "b1").await;
    assert_eq!(recv_text(&mut b.ws).await, "ok b1");

    // Past its 1 s timeout: killed, A sees the error frame, B is served
    // meanwhile and after.
    send_text(&mut a.ws, r#"{"type":"slow"}"#).await;
    send_text(&mut b.ws, "b2").await;
    assert_eq!(recv_text(&mut b.ws).await, "ok b2");
    assert_integration_failure(&mut a.ws).await;
    let slow = h.stack.function_stats("slow").expect("slow is hosted");
    assert_eq!(slow.busy, 0, "the timed-out instance is gone: {slow:?}");
    send_text(&mut a.ws, "a3").await;
    assert_eq!(recv_text(&mut a.ws).await, "ok a3");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_concurrency_limit_is_throttled_as_api_gateway_shows_it() {
    let code = code_dir(&[(
        "hold.js",
        "exports.handler = () => new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200, body: 'held' }), 1500));\n",
    )]);
    let functions = vec![FunctionSpec::new(
        "hold",
        "nodejs20.x",
        "hold.handler",
        FunctionCode::Dir(code.path().to_owned()),
    )];
    let h = stack(2, functions, vec![route("$default", "hold")]).await;
    // Two execution slots: the clients connect one by one (their $connect is
    // in-process and quick), then send at once: two are run, one throttled.
    let mut clients = Vec::new();
    for name in ["a", "b", "c"] {
        clients.push(h.client(name).await);
    }
    futures::future::join_all(clients.iter_mut().map(|c| send_text(&mut c.ws, "x"))).await;
    let mut answers = Vec::new();
    for c in &mut clients {
        answers.push(recv_text(&mut c.ws).await);
    }
    answers.sort();
    assert_eq!(answers[..2], ["held", "held"], "{answers:?}");
    let frame: serde_json::Value = serde_json::from_str(&answers[2]).expect("an error frame");
    assert_eq!(frame["message"], "Internal server error", "{frame}");
    // Once the burst is over, every client is served again.
    send_text(&mut clients[2].ws, "y").await;
    assert_eq!(recv_text(&mut clients[2].ws).await, "held");
    h.stop().await;
}

/// A `$connect` function decides the handshake as on AWS: its non-2xx
/// status refuses with that status, and a throw refuses with 500; the
/// stack keeps letting others in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_function_refuses_or_fails_handshakes_as_api_gateway_does() {
    let code = code_dir(&[(
        "gate.py",
        "def handler(event, context):\n    q = event.get('queryStringParameters') or {}\n    if 'boom' in q:\n        raise ValueError('no token store')\n    if q.get('token') != 'ok':\n        return {'statusCode': 403}\n    return {'statusCode': 200}\n",
    )]);
    let functions = vec![FunctionSpec::new(
        "gate",
        "python3.11",
        "gate.handler",
        FunctionCode::Dir(code.path().to_owned()),
    )];
    let h = start(|c| {
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "gate"),
                RouteSpec::new("$default", "ws-default").with_route_response(),
            ],
            functions,
            ..StackSpec::default()
        };
    })
    .await;
    let refused = |query: &'static str| {
        let url = format!("{}?{query}", h.stack.websocket_url());
        async move {
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
                other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
            }
        }
    };
    assert_eq!(refused("token=bad").await, 403);
    assert_eq!(refused("boom=1").await, 500);
    let url = format!("{}?token=ok", h.stack.websocket_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("let in");
    send_text(&mut ws, "Marko?").await;
    assert_eq!(recv_text(&mut ws).await, "Polo!");
    h.stop().await;
}

/// Reserved concurrency (`ReservedConcurrentExecutions`) is counted per
/// function as Lambda counts it: beyond it that function is throttled while
/// the account still has slots for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_functions_reserved_concurrency_throttles_it_alone() {
    let code = code_dir(&[
        (
            "hold.js",
            "exports.handler = () => new Promise((resolve) => setTimeout(() => resolve({ statusCode: 200, body: 'held' }), 1500));\n",
        ),
        (
            "quick.js",
            "exports.handler = async () => ({ statusCode: 200, body: 'quick' });\n",
        ),
    ]);
    let mut hold = FunctionSpec::new(
        "hold",
        "nodejs20.x",
        "hold.handler",
        FunctionCode::Dir(code.path().to_owned()),
    );
    hold.reserved_concurrency = Some(1);
    let quick = FunctionSpec::new(
        "quick",
        "nodejs20.x",
        "quick.handler",
        FunctionCode::Dir(code.path().to_owned()),
    );
    let h = stack(
        100,
        vec![hold, quick],
        vec![route("$default", "hold"), route("quick", "quick")],
    )
    .await;
    let mut a = h.client("a").await;
    let mut b = h.client("b").await;
    send_text(&mut a.ws, "x").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    send_text(&mut b.ws, "x").await;
    assert_integration_failure(&mut b.ws).await;
    send_text(&mut b.ws, r#"{"type":"quick"}"#).await;
    assert_eq!(recv_text(&mut b.ws).await, "quick");
    assert_eq!(recv_text(&mut a.ws).await, "held");
    h.stop().await;
}
