//! `/metrics` (issue 19): the emulator counts what CloudWatch counts for a
//! WebSocket API, and what an operator of the emulator needs, and serves it
//! in the Prometheus text format. The test generates known traffic with
//! real clients (handshakes allowed and refused by a Node authorizer,
//! messages per route, failing functions, Management API calls), scrapes
//! `/metrics` over HTTP and reads it with a text-format parser: every count
//! equals the traffic.

use std::collections::BTreeMap;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use tokio_tungstenite::tungstenite::Error as WsError;
use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_core::stack::{AuthorizerSpec, RouteSpec, StackSpec};
use wsadmin_harness::{Harness, Ws, raw_http, recv_text, send_text, start};

const AUTHORIZER: &str = r#"
exports.handler = async (event) => ({
  principalId: 'p',
  policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke',
    Effect: event.queryStringParameters.token === 'ok' ? 'Allow' : 'Deny', Resource: event.methodArn }] },
});
"#;

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The Prometheus text format (0.0.4), as a scraper reads it: comments and
/// blank lines skipped, `name{label="value",...} value`, label values with
/// `\\`, `\"` and `\n` escapes. Panics on a line that is none of these.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name {name:?}"
        );
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let end = loop {
                let (i, c) = chars.next().unwrap_or_else(|| panic!("unclosed: {line}"));
                match c {
                    '}' => break i,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c) => value.push(c),
                                    None => panic!("bad escape: {line}"),
                                },
                                Some('"') => break,
                                Some(c) => value.push(c),
                                None => panic!("unclosed value: {line}"),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &body[end + 1..];
        }
        let value = rest.trim().split(' ').next().expect("value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

/// The value of the one sample of `name` with (at least) `labels`; 0 when
/// there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied().unwrap_or(0.0)
}

async fn scrape(h: &Harness) -> Vec<Sample> {
    let (status, head, body) = raw_http(h.addr(), "GET /metrics HTTP/1.1", b"").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body)
}

async fn connect(h: &Harness, query: &str) -> Result<Ws, u16> {
    match tokio_tungstenite::connect_async(format!("{}{query}", h.stack.websocket_url())).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("handshake failed below HTTP: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_traffic_generated() {
    let code = |js: &str| FunctionCode::Inline(js.into());
    let functions = vec![
        FunctionSpec::new("auth", "nodejs20.x", "index.handler", code(AUTHORIZER)),
        FunctionSpec::new(
            "boom",
            "nodejs20.x",
            "index.handler",
            code("exports.handler = async () => { throw new Error('boom'); };"),
        ),
        FunctionSpec::new(
            "bad",
            "nodejs20.x",
            "index.handler",
            code("exports.handler = async () => ({ statusCode: 500, body: 'bad' });"),
        ),
    ];
    let h = start(|c| {
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect").with_authorizer(AuthorizerSpec {
                    name: "token".into(),
                    function: "auth".into(),
                    identity_source: vec!["route.request.querystring.token".into()],
                }),
                RouteSpec::new("$disconnect", "ws-disconnect"),
                RouteSpec::new("$default", "ws-default").with_route_response(),
                RouteSpec::new("boom", "boom"),
                RouteSpec::new("bad", "bad").with_route_response(),
            ],
            functions,
            ..StackSpec::default()
        };
    })
    .await;

    let before = scrape(&h).await;
    assert_eq!(
        value(&before, "apigateway_connect_count_total", &[]),
        0.0,
        "nothing counted before any traffic"
    );

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&h, "?token=ok").await.expect("allowed"));
    }
    assert_eq!(connect(&h, "").await.err(), Some(401));
    assert_eq!(connect(&h, "?token=no").await.err(), Some(403));
    assert_eq!(connect(&h, "?token=no").await.err(), Some(403));

    let a = &mut clients[0];
    for _ in 0..4 {
        send_text(a, "Marko?").await;
        assert_eq!(recv_text(a).await, "Polo!");
    }
    for _ in 0..2 {
        send_text(a, r#"{"type":"boom"}"#).await;
        assert!(recv_text(a).await.contains("Internal server error"));
    }
    send_text(a, r#"{"type":"bad"}"#).await;
    assert_eq!(recv_text(a).await, "bad");

    let management = h.management();
    let id = h.ids().await.into_iter().next().expect("a record");
    for _ in 0..2 {
        management
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("hi"))
            .send()
            .await
            .expect("posted");
    }
    let gone = management
        .get_connection()
        .connection_id("Z29uZQ==")
        .send()
        .await;
    assert!(gone.is_err(), "no such connection");

    let m = scrape(&h).await;
    let api = [("api_id", "wsstacklocal"), ("stage", "dev")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        api.iter().chain(extra).copied().collect()
    };
    let route = |r: &'static str| with(&[("route", r)]);
    assert_eq!(
        value(&m, "apigateway_connect_count_total", &route("$connect")),
        3.0
    );
    assert_eq!(
        value(&m, "apigateway_client_error_total", &route("$connect")),
        3.0,
        "one 401 and two 403s"
    );
    let messages_in = |r| with(&[("route", r), ("direction", "in")]);
    assert_eq!(
        value(
            &m,
            "apigateway_message_count_total",
            &messages_in("$default")
        ),
        4.0
    );
    assert_eq!(
        value(&m, "apigateway_message_count_total", &messages_in("boom")),
        2.0
    );
    assert_eq!(
        value(&m, "apigateway_message_count_total", &messages_in("bad")),
        1.0
    );
    let out = |r| with(&[("route", r), ("direction", "out")]);
    assert_eq!(
        value(&m, "apigateway_message_count_total", &out("$default")),
        4.0,
        "the route responses"
    );
    assert_eq!(
        value(&m, "apigateway_message_count_total", &out("")),
        2.0,
        "the posts"
    );
    assert_eq!(
        value(&m, "apigateway_execution_error_total", &route("boom")),
        2.0
    );
    assert_eq!(
        value(&m, "apigateway_integration_error_total", &route("bad")),
        1.0
    );
    assert_eq!(
        value(&m, "apigateway_integration_error_total", &route("$default")),
        0.0
    );
    assert_eq!(
        value(
            &m,
            "apigateway_integration_latency_seconds_count",
            &route("$default")
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "apigateway_integration_latency_seconds_bucket",
            &with(&[("route", "$connect"), ("le", "+Inf")])
        ),
        3.0
    );
    assert_eq!(value(&m, "wsemulator_connections_open", &api), 3.0);
    let call = |op, status| with(&[("operation", op), ("status", status)]);
    assert_eq!(
        value(
            &m,
            "wsemulator_management_calls_total",
            &call("PostToConnection", "200")
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "wsemulator_management_calls_total",
            &call("GetConnection", "410")
        ),
        1.0
    );
    let warm = value(
        &m,
        "wsemulator_function_instances",
        &with(&[("function", "boom"), ("state", "warm")]),
    );
    let busy = value(
        &m,
        "wsemulator_function_instances",
        &with(&[("function", "boom"), ("state", "busy")]),
    );
    assert!(
        warm + busy >= 1.0,
        "boom's instance is alive: {warm} warm, {busy} busy"
    );
    drop(clients);
    h.stop().await;
}

#[test]
fn the_parser_reads_escapes_and_refuses_garbage() {
    let samples = parse("# HELP x y\nx{a=\"q\\\"\\n\\\\\",b=\"\"} 2\ny 3.5\n");
    assert_eq!(samples[0].1["a"], "q\"\n\\");
    assert_eq!(samples[1], ("y".to_owned(), BTreeMap::new(), 3.5));
    assert!(std::panic::catch_unwind(|| parse("x{a=\"1\"}")).is_err());
}
