//! Who may connect (issue 19): a REQUEST Lambda authorizer on `$connect`,
//! in Node and in Python, run by the Lambda host in its own processes, and
//! IAM authorization of a SigV4-presigned handshake. Real processes, real
//! clients: a missing identity source is 401 (the authorizer never runs),
//! a `Deny` 403, an `Allow` connects and what the authorizer granted
//! (`principalId`, `context`) reaches the connection's later events,
//! `$disconnect` included; an authorizer that throws, times out or answers
//! nonsense is 500 to that client only.

use std::path::Path;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use wsadmin_core::function::{FunctionCode, FunctionSpec};
use wsadmin_core::stack::{AuthorizerSpec, RouteSpec, StackSpec};
use wsadmin_harness::{Harness, Ws, eventually, recv_text, send_text, start};

/// The Node authorizer: `?token=ok` is allowed; `crash` throws, `slow`
/// outlives its 1 s timeout, `nonsense` answers a string; anything else is
/// denied. Its context shows what its event held.
const NODE_AUTHORIZER: &str = r#"
exports.handler = async (event) => {
  const token = event.queryStringParameters.token;
  if (token === 'crash') throw new Error('the token service is down');
  if (token === 'slow') await new Promise((r) => setTimeout(r, 5000));
  if (token === 'nonsense') return 'Allow';
  return {
    principalId: 'user-' + token,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: token === 'ok' ? 'Allow' : 'Deny', Resource: event.methodArn }],
    },
    context: { user: 'ana', seats: 3, admin: true, type: event.type, arn: event.methodArn,
               route: event.requestContext.routeKey, agent: event.headers['User-Agent'] },
  };
};
"#;

const PYTHON_AUTHORIZER: &str = r#"
import time

def handler(event, context):
    token = event['queryStringParameters']['token']
    if token == 'crash':
        raise RuntimeError('the token service is down')
    if token == 'slow':
        time.sleep(5)
    if token == 'nonsense':
        return 'Allow'
    return {
        'principalId': 'user-' + token,
        'policyDocument': {
            'Version': '2012-10-17',
            'Statement': [{'Action': 'execute-api:Invoke',
                           'Effect': 'Allow' if token == 'ok' else 'Deny',
                           'Resource': event['methodArn']}],
        },
        'context': {'user': 'ana', 'seats': 3, 'admin': True, 'type': event['type'],
                    'arn': event['methodArn'], 'route': event['requestContext']['routeKey'],
                    'agent': event['headers']['User-Agent']},
    }
"#;

/// `message`: answers with what the event says of the connection.
const NODE_WHO: &str = r#"
exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({
  connectionId: event.requestContext.connectionId, authorizer: event.requestContext.authorizer }) });
"#;

const PYTHON_WHO: &str = r#"
import json

def handler(event, context):
    rc = event['requestContext']
    return {'statusCode': 200, 'body': json.dumps({'connectionId': rc['connectionId'],
                                                   'authorizer': rc.get('authorizer')})}
"#;

/// `$disconnect`: appends its request context to `$OUT/disconnects.jsonl`.
const NODE_BYE: &str = r#"
const fs = require('fs');
exports.handler = async (event) => {
  fs.appendFileSync(process.env.OUT + '/disconnects.jsonl', JSON.stringify(event.requestContext) + '\n');
  return { statusCode: 200 };
};
"#;

const PYTHON_BYE: &str = r#"
import json, os

def handler(event, context):
    with open(os.environ['OUT'] + '/disconnects.jsonl', 'a') as f:
        f.write(json.dumps(event['requestContext']) + '\n')
    return {'statusCode': 200}
"#;

const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:wsstacklocal/dev/$connect";

/// A stack whose `$connect` (our handler) is guarded by `auth`, whose
/// `message` and `$disconnect` are `who` and `bye`, all in `runtime`.
async fn guarded(runtime: &str, code: [&str; 3], out: &Path) -> Harness {
    let [auth, who, bye] = code;
    let mut authorizer = FunctionSpec::new(
        "auth",
        runtime,
        "index.handler",
        FunctionCode::Inline(auth.into()),
    );
    authorizer.timeout_seconds = 1;
    let mut bye = FunctionSpec::new(
        "bye",
        runtime,
        "index.handler",
        FunctionCode::Inline(bye.into()),
    );
    bye.environment
        .insert("OUT".into(), out.to_string_lossy().into_owned());
    let functions = vec![
        authorizer,
        FunctionSpec::new(
            "who",
            runtime,
            "index.handler",
            FunctionCode::Inline(who.into()),
        ),
        bye,
    ];
    start(|c| {
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect").with_authorizer(AuthorizerSpec {
                    name: "token".into(),
                    function: "auth".into(),
                    identity_source: vec!["route.request.querystring.token".into()],
                }),
                RouteSpec::new("$disconnect", "bye"),
                RouteSpec::new("message", "who").with_route_response(),
            ],
            functions,
            ..StackSpec::default()
        };
    })
    .await
}

/// A handshake with `query`: the socket, or the HTTP status it was refused
/// with.
async fn connect(h: &Harness, query: &str, agent: &str) -> Result<Ws, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}{query}", h.stack.websocket_url())
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("User-Agent", agent.parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("handshake failed below HTTP: {e}"),
    }
}

async fn who(ws: &mut Ws) -> Value {
    send_text(ws, r#"{"type":"message"}"#).await;
    serde_json::from_str(&recv_text(ws).await).expect("JSON")
}

fn disconnects(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("disconnects.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

async fn a_request_authorizer_decides_who_connects(runtime: &str, code: [&str; 3]) {
    let out = tempfile::tempdir().expect("tempdir");
    let h = guarded(runtime, code, out.path()).await;

    assert_eq!(connect(&h, "", "none").await.err(), Some(401), "no token");
    assert_eq!(connect(&h, "?token=", "empty").await.err(), Some(401));
    assert_eq!(
        h.stack.function_stats("auth").map(|s| s.invocations),
        Some(0),
        "a missing identity source never reaches the authorizer"
    );
    assert_eq!(connect(&h, "?token=wrong", "wrong").await.err(), Some(403));

    let mut ana = connect(&h, "?token=ok", "ana-agent")
        .await
        .expect("allowed");
    let seen = who(&mut ana).await;
    let granted = json!({
        "principalId": "user-ok", "user": "ana", "seats": "3", "admin": "true",
        "type": "REQUEST", "arn": METHOD_ARN, "route": "$connect", "agent": "ana-agent",
    });
    assert_eq!(seen["authorizer"], granted, "{seen}");
    let id = seen["connectionId"].as_str().expect("id").to_owned();

    // Failing authorizers: 500 to that client; ana is still served, and the
    // next allowed client connects.
    for token in ["crash", "slow", "nonsense"] {
        assert_eq!(
            connect(&h, &format!("?token={token}"), token).await.err(),
            Some(500),
            "{token}"
        );
        assert_eq!(who(&mut ana).await["connectionId"], id.as_str());
    }
    let mut bo = connect(&h, "?token=ok", "bo")
        .await
        .expect("allowed after failures");
    assert_eq!(who(&mut bo).await["authorizer"]["principalId"], "user-ok");

    wsadmin_harness::close(wsadmin_harness::Client {
        ws: ana,
        id: id.clone(),
    })
    .await;
    assert!(
        eventually(10, || disconnects(out.path())
            .iter()
            .any(|rc| rc["connectionId"] == id.as_str()))
        .await,
        "$disconnect ran"
    );
    let bye = disconnects(out.path())
        .into_iter()
        .find(|rc| rc["connectionId"] == id.as_str())
        .expect("ana's $disconnect");
    assert_eq!(bye["authorizer"], granted, "{bye}");
    assert_eq!(bye["eventType"], "DISCONNECT");
    drop(bo);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_authorizer_decides_who_connects() {
    a_request_authorizer_decides_who_connects("nodejs20.x", [NODE_AUTHORIZER, NODE_WHO, NODE_BYE])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_authorizer_decides_who_connects() {
    a_request_authorizer_decides_who_connects(
        "python3.12",
        [PYTHON_AUTHORIZER, PYTHON_WHO, PYTHON_BYE],
    )
    .await;
}

/// `$default`: answers with the event's `requestContext.identity`.
const NODE_IDENTITY: &str = r#"
exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify(event.requestContext.identity) });
"#;

/// A stack whose `$connect` needs a SigV4-presigned handshake.
async fn iam_guarded() -> Harness {
    start(|c| {
        c.stack = StackSpec {
            routes: vec![
                RouteSpec::new("$connect", "ws-connect").with_iam(),
                RouteSpec::new("$disconnect", "ws-disconnect"),
                RouteSpec::new("$default", "identity").with_route_response(),
            ],
            functions: vec![FunctionSpec::new(
                "identity",
                "nodejs20.x",
                "index.handler",
                FunctionCode::Inline(NODE_IDENTITY.into()),
            )],
            ..StackSpec::default()
        };
    })
    .await
}

/// `url` (http form) presigned for `execute-api` with `secret`, by the
/// Rust SDK's signer.
fn presign(url: &str, key: &str, secret: &str, region: &str) -> String {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(60));
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .expect("signable");
    let (instructions, _) = sign(request, &params).expect("signed").into_parts();
    let (_, query) = instructions.into_parts();
    let mut signed = url.to_owned();
    for (i, (k, v)) in query.iter().enumerate() {
        let v = v
            .replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D");
        signed.push(if i == 0 && !url.contains('?') {
            '?'
        } else {
            '&'
        });
        signed.push_str(&format!("{k}={v}"));
    }
    signed
}

/// `url` presigned by botocore (the project's `.venv`), as a Python client
/// of an IAM-authorized WebSocket API does it.
async fn botocore_presign(url: &str, key: &str, secret: &str, region: &str) -> String {
    let python = wsadmin_testkit::repo_root().join(".venv/bin/python");
    let script = r#"
import sys
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, key, secret, region = sys.argv[1:5]
request = AWSRequest(method="GET", url=url)
SigV4QueryAuth(Credentials(key, secret), "execute-api", region, expires=60).add_auth(request)
print(request.url)
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script, url, key, secret, region])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    assert!(
        out.status.success(),
        "botocore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_authorization_accepts_only_presigned_handshakes() {
    let h = iam_guarded().await;
    let config = h.stack.config().clone();
    let (key, secret, region) = (
        config.access_key_id.as_str(),
        config.secret_access_key.as_str(),
        config.region.as_str(),
    );
    let http = h.stack.websocket_url().replacen("ws://", "http://", 1);
    let ws_of = |signed: &str| signed.replacen("http://", "", 1);

    assert_eq!(connect(&h, "", "unsigned").await.err(), Some(403));
    let wrong_secret = presign(&http, key, "not-the-secret", region);
    let query = |signed: &str| signed[signed.find('?').expect("query")..].to_owned();
    assert_eq!(
        connect(&h, &query(&wrong_secret), "wrong-secret")
            .await
            .err(),
        Some(403)
    );
    let tampered = format!("{}&room=8", query(&presign(&http, key, secret, region)));
    assert_eq!(
        connect(&h, &tampered, "tampered").await.err(),
        Some(403),
        "a parameter added after signing"
    );
    let wrong_region = presign(&http, key, secret, "eu-west-1");
    assert_eq!(
        connect(&h, &query(&wrong_region), "wrong-region")
            .await
            .err(),
        Some(403)
    );

    let signed = presign(&http, key, secret, region);
    let mut rust = connect(&h, &query(&signed), "rust-signed")
        .await
        .expect("presigned by the SDK's signer");
    let by_boto = botocore_presign(&http, key, secret, region).await;
    assert!(by_boto.contains("X-Amz-Signature="), "{by_boto}");
    let mut boto = connect(&h, &query(&by_boto), "botocore-signed")
        .await
        .unwrap_or_else(|status| panic!("botocore's {} refused: {status}", ws_of(&by_boto)));
    for ws in [&mut rust, &mut boto] {
        send_text(ws, "who am I").await;
        let identity: Value = serde_json::from_str(&recv_text(ws).await).expect("JSON");
        assert_eq!(identity["accessKey"], key, "{identity}");
        assert_eq!(identity["caller"], key, "{identity}");
        assert_eq!(
            identity["userArn"], "arn:aws:iam::000000000000:user/wsstack-local",
            "{identity}"
        );
        assert_eq!(identity["sourceIp"], "127.0.0.1", "{identity}");
    }
    h.stop().await;
}
