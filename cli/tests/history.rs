//! A connection's history (`inspect ID --history`) and the stage's access
//! log (`logs`): on the local stack, whose emulator writes API Gateway's
//! access log lines to the file its state file names; and against
//! CloudWatch Logs (moto), the group found from the stage's
//! AccessLogSettings (moto's apigatewayv2), with lines put by the test.

use crate::support;

use std::time::Duration;

use aws_sdk_apigatewayv2::types::{AccessLogSettings, ProtocolType};
use futures::SinkExt;
use serde_json::Value;
use support::{eventually, fails_with, json, run, start, wsadmin_in};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsadmin_core::sdk::static_config_at;
use wsadmin_harness::{recv_text, send_text};
use wsadmin_testkit::moto::Moto;
use wsadmin_testkit::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

/// The access-log events of a history, as `EVENT ROUTE STATUS [close N]`.
fn logged(v: &Value) -> Vec<String> {
    v["history"]
        .as_array()
        .expect("a history")
        .iter()
        .filter(|e| e["source"] == "access log")
        .map(|e| e["what"].as_str().expect("what").to_owned())
        .collect()
}

fn times(v: &Value) -> Vec<i64> {
    v["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|e| e["atMs"].as_i64().expect("atMs"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_history_on_the_local_stack_shows_each_event_in_order() {
    let logs = tempfile::tempdir().expect("temp dir");
    let log = logs.path().join("access.log");
    let path = log.clone();
    let h = start(move |c| c.access_log = Some(path)).await;
    let mut client = h.client("history-1").await;
    let id = client.id.clone();
    send_text(&mut client.ws, r#"{"type":"message","data":"hello"}"#).await;
    // The message route broadcasts it (to this client too).
    assert_eq!(recv_text(&mut client.ws).await, "hello");
    send_text(&mut client.ws, "Marko?").await;
    assert_eq!(recv_text(&mut client.ws).await, "Polo!");
    h.local(&["send", &id, "--data", "a post"]).await.success();
    assert_eq!(recv_text(&mut client.ws).await, "a post");

    // Live: the record, GetConnection (lastActiveAt: the post) and the log.
    let live = json(
        &h.local(&["inspect", "--history", "-o", "json", "--", &id])
            .await
            .success(),
    );
    assert_eq!(live["state"], "live", "{live}");
    assert_eq!(
        logged(&live),
        [
            "CONNECT $connect 200",
            "MESSAGE message 200",
            "MESSAGE $default 200"
        ],
        "{live}"
    );
    let whats: Vec<&str> = live["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["what"].as_str().expect("what"))
        .collect();
    assert!(
        whats.iter().any(|w| w.starts_with("last active")),
        "GetConnection's lastActiveAt: {live}"
    );
    let t = times(&live);
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in time order: {live}");

    // It leaves with a close code of its own.
    client
        .ws
        .close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye now".into(),
        }))
        .await
        .expect("close");
    let _ = client.ws.flush().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        use futures::StreamExt;
        while let Some(Ok(m)) = client.ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let left = |text: &str| text.contains("\"DISCONNECT\"");
    assert!(
        eventually(10, || std::fs::read_to_string(&log).is_ok_and(|t| left(&t))).await,
        "the DISCONNECT line is written"
    );
    let gone = h
        .local(&["inspect", "--history", "-o", "json", "--", &id])
        .await
        .success();
    let gone = json(&gone);
    assert_eq!(gone["state"], "not registered", "{gone}");
    assert_eq!(
        logged(&gone),
        [
            "CONNECT $connect 200",
            "MESSAGE message 200",
            "MESSAGE $default 200",
            "DISCONNECT $disconnect 200 close 4001"
        ],
        "{gone}"
    );
    let t = times(&gone);
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in time order: {gone}");

    // As people read it.
    let text = support::stdout(
        &h.local(&["inspect", "--history", "--", &id])
            .await
            .success(),
    );
    let order: Vec<usize> = [
        "CONNECT",
        "MESSAGE message",
        "MESSAGE $default",
        "DISCONNECT",
    ]
    .iter()
    .map(|w| text.find(w).unwrap_or_else(|| panic!("{w} in {text}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains(&log.display().to_string()), "{text}");

    // The whole API's log, selected.
    let out = h
        .local(&["logs", "--where", "eventType=DISCONNECT", "-o", "json"])
        .await
        .success();
    let lines = json(&out);
    let lines = lines.as_array().expect("an array");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["connectionId"], id.as_str());
    assert_eq!(lines[0]["disconnectStatusCode"], "4001");
    let all = json(&h.local(&["logs", "-o", "json"]).await.success());
    assert_eq!(all.as_array().expect("an array").len(), 4, "{all}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_prints_lines_as_they_come() {
    let logs = tempfile::tempdir().expect("temp dir");
    let path = logs.path().join("access.log");
    let h = start(move |c| c.access_log = Some(path)).await;
    let run = support::Running::start(
        &h,
        &["logs", "--follow", "--interval", "100ms", "-o", "ndjson"],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = h.client("follow-1").await;
    let id = client.id.clone();
    run.wait_for(10, "the CONNECT line", |l| {
        l.contains("CONNECT") && l.contains(&id)
    })
    .await;
    wsadmin_harness::close(client).await;
    run.wait_for(10, "the DISCONNECT line", |l| {
        l.contains("DISCONNECT") && l.contains(&id)
    })
    .await;
    let (lines, _) = run.kill();
    let events: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("ndjson")["eventType"].to_string())
        .collect();
    assert_eq!(
        events,
        ["\"CONNECT\"", "\"DISCONNECT\""],
        "each once: {lines:?}"
    );
    h.stop().await;
}

/// The group of a stage on AWS (moto): found from GetStage, read with
/// FilterLogEvents; the lines are those API Gateway would have put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_from_cloudwatch_logs_found_through_the_stage() {
    let moto = Moto::start();
    let h = start(|_| {}).await;
    let sdk = static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        moto.endpoint(),
    );
    let v2 = aws_sdk_apigatewayv2::Client::new(&sdk);
    let api_id = v2
        .create_api()
        .name("wsadmin-history")
        .protocol_type(ProtocolType::Websocket)
        .route_selection_expression("$request.body.type")
        .send()
        .await
        .expect("CreateApi")
        .api_id()
        .expect("id")
        .to_owned();
    let group = "/aws/apigateway/wsadmin-history-access";
    v2.create_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .access_log_settings(
            AccessLogSettings::builder()
                .destination_arn(format!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:{group}"
                ))
                .format("{}")
                .build(),
        )
        .send()
        .await
        .expect("CreateStage");
    // A stage without access logging, for the refusal.
    v2.create_stage()
        .api_id(&api_id)
        .stage_name("quiet")
        .send()
        .await
        .expect("CreateStage");

    // A real connection on the local stack (its record and GetConnection),
    // and the lines API Gateway would have written for it, and another's.
    let client = h.client("cw-1").await;
    let id = client.id.clone();
    let cw = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    cw.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("CreateLogGroup");
    cw.create_log_stream()
        .log_group_name(group)
        .log_stream_name("stage-dev")
        .send()
        .await
        .expect("CreateLogStream");
    let now = wsadmin_core::clock::Clock::system().live_ms();
    let line = |at: i64, event: &str, route: &str, who: &str, code: &str| {
        serde_json::json!({
            "requestId": format!("r{at}"),
            "requestTime": "-",
            "requestTimeEpoch": at.to_string(),
            "eventType": event,
            "routeKey": route,
            "connectionId": who,
            "status": "200",
            "sourceIp": "127.0.0.1",
            "error": "-",
            "integrationErrorMessage": "-",
            "disconnectStatusCode": code,
        })
        .to_string()
    };
    let events = [
        (now - 4000, "CONNECT", "$connect", id.as_str(), "-"),
        (now - 3500, "CONNECT", "$connect", "someoneElse=", "-"),
        (now - 3000, "MESSAGE", "message", id.as_str(), "-"),
        (now - 2000, "MESSAGE", "$default", id.as_str(), "-"),
        (now - 1000, "DISCONNECT", "$disconnect", id.as_str(), "1001"),
    ];
    let mut put = cw
        .put_log_events()
        .log_group_name(group)
        .log_stream_name("stage-dev");
    for (at, event, route, who, code) in events {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(at)
                .message(line(at, event, route, who, code))
                .build()
                .expect("event"),
        );
    }
    put.send().await.expect("PutLogEvents");

    let c = h.stack.config();
    let wsadmin = |stage_endpoint: &str, args: &[&str]| {
        let mut cmd = wsadmin_in(&h.home());
        cmd.env("AWS_ENDPOINT_URL_APIGATEWAYV2", moto.endpoint())
            .env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key)
            .env("AWS_REGION", &c.region)
            .args(["--api-id", &api_id, "--endpoint", stage_endpoint])
            .args(["--dynamodb-endpoint", h.stack.dynamodb_endpoint()])
            .args(args);
        cmd
    };
    let endpoint = h.stack.management_endpoint();
    let v = json(
        &run(wsadmin(
            &endpoint,
            &["inspect", "--history", "-o", "json", "--", &id],
        ))
        .await
        .success(),
    );
    assert_eq!(v["state"], "live", "{v}");
    assert_eq!(
        logged(&v),
        [
            "CONNECT $connect 200",
            "MESSAGE message 200",
            "MESSAGE $default 200",
            "DISCONNECT $disconnect 200 close 1001"
        ],
        "{v}"
    );
    let t = times(&v);
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in time order: {v}");

    // The whole stage's log, selected.
    let all = json(
        &run(wsadmin(
            &endpoint,
            &["logs", "--where", "eventType=CONNECT", "-o", "json"],
        ))
        .await
        .success(),
    );
    assert_eq!(all.as_array().expect("array").len(), 2, "{all}");

    // A stage that does not log; a group that does not exist: one line each.
    let quiet = endpoint.replace("/dev", "/quiet");
    fails_with(
        run(wsadmin(&quiet, &["logs"])).await,
        1,
        "stage \"quiet\" of API",
    );
    fails_with(
        run(wsadmin(&endpoint, &["logs", "--log-group", "nosuchgroup"])).await,
        1,
        "log group \"nosuchgroup\" not found",
    );
    drop(client);
    h.stop().await;
}

/// A local stack whose state file names no access log (one started before
/// it had one): one line saying so, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_stack_without_an_access_log_says_so() {
    let h = start(|_| {}).await;
    let client = h.client("no-log-1").await;
    let id = client.id.clone();
    fails_with(
        h.local(&["inspect", "--history", "--", &id]).await,
        1,
        "the local stack has no access log",
    );
    fails_with(h.local(&["logs"]).await, 1, "restart `wsstack local`");
    // Without --history, inspect needs no log.
    // `--`: a random id may start with `-`.
    h.local(&["inspect", "--", &id]).await.success();
    wsadmin_harness::close(client).await;
    h.stop().await;
}
