//! `wsadmin status`'s Metrics (issue 19): the local stack's counts from its
//! `/metrics` after real traffic; a deployment's from CloudWatch
//! (GetMetricData over 5 minutes and an hour) with data points the test
//! put into moto; and, for credentials without `cloudwatch:GetMetricData`,
//! one line saying so.
//!
//! The Rust SDK speaks CloudWatch's Smithy RPC v2 CBOR protocol, which
//! moto (5.2) does not read; botocore speaks its JSON protocol, which moto
//! does. So the test's Python process runs moto (with IAM enforced, so a
//! denied call is moto's own answer) and, in front of it, a translator that
//! decodes the SDK's CBOR request with botocore's CBOR parser, makes the
//! same call through boto3 with the caller's own credentials, and encodes
//! moto's answer with botocore's CBOR serializer. The data and the
//! decision are moto's.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::{json, run, start, stdout, wsadmin_in};
use wsadmin_harness::{recv_text, send_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_local_stacks_counts() {
    let h = start(|_| {}).await;
    let mut a = h.client("metrics-a").await;
    let mut b = h.client("metrics-b").await;
    for ws in [&mut a.ws, &mut b.ws] {
        send_text(ws, "Marko?").await;
        assert_eq!(recv_text(ws).await, "Polo!");
    }
    send_text(&mut a.ws, "Marko?").await;
    assert_eq!(recv_text(&mut a.ws).await, "Polo!");

    let report = json(&h.local(&["-o", "json", "status"]).await.success());
    let m = &report["metrics"];
    assert_eq!(m["source"], "local", "{m}");
    assert_eq!(m["local"]["total"]["connectCount"], 2.0, "{m}");
    let default = m["local"]["routes"]
        .as_array()
        .and_then(|routes| routes.iter().find(|r| r["route"] == "$default"))
        .unwrap_or_else(|| panic!("a $default route: {m}"));
    assert_eq!(
        default["messageCount"], 6.0,
        "3 in, 3 route responses out: {m}"
    );
    assert_eq!(m["local"]["connectionsOpen"], 2.0, "{m}");

    let text = stdout(&h.local(&["status"]).await.success());
    let section = text
        .split("Metrics\n")
        .nth(1)
        .unwrap_or_else(|| panic!("a Metrics section: {text}"));
    assert!(
        section.contains("since start  connects 2  messages 6  integration errors 0"),
        "{text}"
    );
    assert!(section.contains("open         2 connections"), "{text}");
    h.stop().await;
}

/// moto with IAM enforced and the CBOR translator in front of its
/// CloudWatch; prints one JSON line (ports, an allowed and a denied user),
/// serves until its stdin closes.
const CLOUDWATCH: &str = r#"
import io, json, os, sys, threading, datetime
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "6"
import boto3
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.parsers import BaseCBORParser
from botocore.serialize import RpcV2CBORSerializer
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from moto.server import ThreadedMotoServer

moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
moto.start()
moto_url = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
def client(service, key="setup", secret="setup"):
    return boto3.client(service, endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)
iam = client("iam")
users = {}
# moto names CloudWatch's actions by its endpoint prefix, monitoring:.
for name, policy in [("reader", {"Effect": "Allow", "Action": ["cloudwatch:*", "monitoring:*", "apigateway:*"], "Resource": "*"}),
                     ("blind", {"Effect": "Allow", "Action": "apigateway:GET", "Resource": "*"})]:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [policy]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    users[name] = (key["AccessKeyId"], key["SecretAccessKey"])
secrets = dict(users.values())

now = datetime.datetime.now(datetime.timezone.utc)
dims = [{"Name": "ApiId", "Value": "abc123"}, {"Name": "Stage", "Value": "dev"}]
def point(name, value, unit="Count"):
    return {"MetricName": name, "Dimensions": dims, "Value": value, "Unit": unit,
            "Timestamp": now - datetime.timedelta(minutes=2)}
client("cloudwatch", *users["reader"]).put_metric_data(Namespace="AWS/ApiGateway", MetricData=[
    point("ConnectCount", 5), point("MessageCount", 12), point("ClientError", 1),
    point("IntegrationLatency", 20, "Milliseconds"), point("IntegrationLatency", 40, "Milliseconds")])

model = client("cloudwatch").meta.service_model
def cbor_text(s):
    b = s.encode()
    n = len(b)
    head = bytes([0x60 + n]) if n < 24 else bytes([0x78, n]) if n < 256 else bytes([0x79, n >> 8, n & 255])
    return head + b

class Translator(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        operation = self.path.rsplit("/", 1)[-1]
        key = self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[0]
        params = BaseCBORParser().parse_data_item(io.BufferedReader(io.BytesIO(body))) if body else {}
        method = getattr(client("cloudwatch", key, secrets.get(key, "unknown")), xform_name(operation))
        try:
            result = method(**params)
            result.pop("ResponseMetadata", None)
            out = bytearray()
            RpcV2CBORSerializer()._serialize_data_item(out, result, model.operation_model(operation).output_shape)
            status, payload = 200, bytes(out)
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            error = e.response["Error"]
            payload = bytes([0xa2]) + cbor_text("__type") + cbor_text(error.get("Code", "")) \
                + cbor_text("message") + cbor_text(error.get("Message", ""))
        self.send_response(status)
        self.send_header("Content-Type", "application/cbor")
        self.send_header("smithy-protocol", "rpc-v2-cbor")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

server = ThreadingHTTPServer(("127.0.0.1", 0), Translator)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(json.dumps({"cloudwatch": "http://127.0.0.1:%d" % server.server_address[1], "moto": moto_url,
                  "reader": users["reader"], "blind": users["blind"]}), flush=True)
sys.stdin.read()
server.shutdown()
moto.stop()
"#;

/// The Python process of [`CLOUDWATCH`], killed on drop.
struct CloudWatch {
    child: Child,
    info: Value,
}

impl Drop for CloudWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cloudwatch() -> CloudWatch {
    let python = wsadmin_testkit::repo_root().join(".venv/bin/python");
    let mut child = Command::new(&python)
        .args(["-c", CLOUDWATCH])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the first line");
    let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    CloudWatch { child, info }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_cloudwatch_and_says_when_it_may_not() {
    let cw = cloudwatch();
    let dir = tempfile::tempdir().expect("dir");
    let status = |user: &str, api_id: &str| {
        let (key, secret) = (
            cw.info[user][0].as_str().expect("key"),
            cw.info[user][1].as_str().expect("secret"),
        );
        let mut cmd = wsadmin_in(dir.path());
        cmd.env(
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            cw.info["cloudwatch"].as_str().expect("url"),
        )
        .env(
            "AWS_ENDPOINT_URL_APIGATEWAYV2",
            cw.info["moto"].as_str().expect("url"),
        )
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        // Nothing listens there: the Management API section fails fast.
        .args(["--endpoint", "http://127.0.0.1:9/dev", "--api-id", api_id])
        .args(["--dynamodb-endpoint", "http://127.0.0.1:9"]);
        cmd
    };
    let json_status = |user: &str, api_id: &str| {
        let mut cmd = status(user, api_id);
        cmd.args(["-o", "json", "status"]);
        run(cmd)
    };

    let report = json(&json_status("reader", "abc123").await);
    let m = &report["metrics"];
    assert_eq!(m["source"], "cloudwatch", "{m}");
    for window in ["last5Minutes", "lastHour"] {
        let c = &m[window];
        assert_eq!(c["connectCount"], 5.0, "{window}: {m}");
        assert_eq!(c["messageCount"], 12.0, "{window}: {m}");
        assert_eq!(c["clientError"], 1.0, "{window}: {m}");
        assert_eq!(c["integrationError"], 0.0, "{window}: {m}");
        assert_eq!(c["integrationLatencyMs"], 30.0, "{window}: {m}");
    }
    assert!(m["note"].is_null(), "{m}");

    let quiet = json(&json_status("reader", "quiet99").await);
    let note = quiet["metrics"]["note"].as_str().expect("a note");
    assert!(
        note.starts_with("no data points in CloudWatch for API quiet99"),
        "{note}"
    );

    let mut cmd = status("blind", "abc123");
    cmd.arg("status");
    let text = stdout(&run(cmd).await);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("CloudWatch metrics"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("no permission to read CloudWatch metrics")
            && lines[0].contains("grant cloudwatch:GetMetricData"),
        "{text}"
    );
}
