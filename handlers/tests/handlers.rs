//! The four handlers, called directly with real API Gateway WebSocket event
//! fixtures, against a real dynalite and a Management API stand-in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wsadmin_core::ConnectionStore;
use wsadmin_core::sdk::{static_config, static_config_at};
use wsadmin_testkit::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

use aws_lambda_events::encodings::Body;
use futures::StreamExt;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{ConnectionRecord, ManagementEndpoint, RetryPolicy, SweepConfig, TableConfig};
use wsadmin_handlers::{ConfigError, Event, Handlers, Response, Route, parse_event};
use wsadmin_testkit::dynalite::Dynalite;
use wsadmin_testkit::standin::StandIn;

fn fixture(name: &str) -> Event {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).expect("fixture");
    parse_event(&json).expect("fixture parses")
}

fn body(res: &Response) -> &str {
    match &res.body {
        Some(Body::Text(t)) => t,
        other => panic!("expected a text body, got {other:?}"),
    }
}

struct Stack {
    db: Dynalite,
    handlers: Handlers,
}

/// The test credentials, DynamoDB at `db`.
fn sdk(db: &Dynalite) -> aws_config::SdkConfig {
    static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        db.endpoint(),
    )
}

impl Stack {
    /// The registry's record of `id`, if there is one.
    async fn record(&self, id: &str) -> Option<ConnectionRecord> {
        self.handlers.store().get(id).await.expect("get")
    }
}

async fn stack(endpoint: Option<&str>) -> Stack {
    let db = Dynalite::start();
    ConnectionStore::from_conf(&sdk(&db), TableConfig::default())
        .create_table()
        .await
        .expect("create table");
    let endpoint = endpoint.map(|e| ManagementEndpoint::parse(e).expect("endpoint"));
    let handlers = Handlers::new(sdk(&db), TableConfig::default(), endpoint);
    Stack { db, handlers }
}

#[tokio::test]
async fn connect_registers_identity_ttl_and_query_meta() {
    let s = stack(None).await;
    let res = s.handlers.handle(Route::Connect, fixture("connect")).await;
    assert_eq!((res.status_code, body(&res)), (200, "Connected."));
    let record = s.record("SyNUdcQAoAMCJsg=").await.expect("registered");
    let mut expected = ConnectionRecord::new("SyNUdcQAoAMCJsg=").connected_at(1707502303419);
    expected.source_ip = Some("203.0.113.9".into());
    expected.user_agent =
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0".into());
    expected.domain_name = Some("abc123.execute-api.us-east-1.amazonaws.com".into());
    expected.stage = Some("dev".into());
    expected.meta = BTreeMap::from([("room".into(), "7".into()), ("user".into(), "ana".into())]);
    assert_eq!(record, expected);
    assert_eq!(record.expires_at, Some(1707502303 + 2 * 3600 + 900));
}

#[tokio::test]
async fn a_signed_handshakes_credentials_never_reach_the_meta() {
    let s = stack(None).await;
    let mut event = fixture("connect");
    let mut query = serde_json::json!({ "room": "7" });
    for key in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "x-amz-security-token",
    ] {
        query[key] = serde_json::json!("secret-ish");
    }
    event.query_string_parameters = serde_json::from_value(query).expect("query map");
    let res = s.handlers.handle(Route::Connect, event).await;
    assert_eq!(res.status_code, 200);
    let record = s.record("SyNUdcQAoAMCJsg=").await.expect("registered");
    assert_eq!(
        record.meta,
        BTreeMap::from([("room".into(), "7".into())]),
        "only the application's parameters are kept"
    );
}

#[tokio::test]
async fn connect_with_only_a_source_ip_registers() {
    let s = stack(None).await;
    let res = s.handlers.connect(fixture("connect-ip-only")).await;
    assert_eq!(res.status_code, 200);
    let record = s.record("SyNVxeJ0IAMCJsg=").await.expect("registered");
    assert_eq!(record.source_ip.as_deref(), Some("198.51.100.4"));
    assert_eq!(record.user_agent, None);
    assert!(record.meta.is_empty());
}

#[tokio::test]
async fn connect_answers_500_when_the_store_fails_so_the_handshake_is_refused() {
    let db = Dynalite::start(); // no table created
    let handlers = Handlers::new(sdk(&db), TableConfig::default(), None);
    let res = handlers.connect(fixture("connect")).await;
    assert_eq!((res.status_code, body(&res)), (500, "Failed to connect."));
}

#[tokio::test]
async fn events_without_a_connection_id_answer_400() {
    let s = stack(None).await;
    for route in [Route::Connect, Route::Disconnect] {
        let mut event = fixture("connect");
        event.request_context.connection_id = Some(String::new());
        let res = s.handlers.handle(route, event).await;
        assert_eq!(res.status_code, 400, "{route:?}");
        assert_eq!(body(&res), "the event has no requestContext.connectionId");
    }
    assert_eq!(
        s.handlers.store().count(1).await.expect("count"),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn disconnect_removes_the_record_and_tolerates_it_being_gone() {
    let s = stack(None).await;
    assert_eq!(
        s.handlers.connect(fixture("connect")).await.status_code,
        200
    );
    assert_eq!(
        s.handlers
            .connect(fixture("connect-ip-only"))
            .await
            .status_code,
        200
    );
    let res = s
        .handlers
        .handle(Route::Disconnect, fixture("disconnect"))
        .await;
    assert_eq!((res.status_code, body(&res)), (200, "Disconnected."));
    assert_eq!(s.record("SyNUdcQAoAMCJsg=").await, None);
    assert!(s.record("SyNVxeJ0IAMCJsg=").await.is_some(), "others stay");
    let again = s.handlers.disconnect(fixture("disconnect")).await;
    assert_eq!(again.status_code, 200, "already gone is fine");
}

#[tokio::test]
async fn disconnect_answers_500_when_the_table_is_missing() {
    let db = Dynalite::start();
    let handlers = Handlers::new(sdk(&db), TableConfig::new("Missing"), None);
    assert_eq!(
        handlers.disconnect(fixture("disconnect")).await.status_code,
        500
    );
}

#[tokio::test]
async fn default_plays_marko_polo() {
    let s = stack(None).await;
    let res = s
        .handlers
        .handle(Route::Default, fixture("default-not-json"))
        .await;
    assert_eq!((res.status_code, body(&res)), (200, "Polo!"));
    for other in [Some("marko?"), Some("{\"type\":\"chat\"}"), Some(""), None] {
        let mut event = fixture("default-not-json");
        event.body = other.map(str::to_owned);
        let res = s.handlers.default_route(event).await;
        assert_eq!((res.status_code, body(&res)), (200, "Marko?"), "{other:?}");
    }
}

#[tokio::test]
async fn message_broadcasts_data_to_every_connection() {
    let server = StandIn::always_ok("dev").await;
    let s = stack(Some(&server.endpoint())).await;
    s.handlers.connect(fixture("connect")).await;
    s.handlers.connect(fixture("connect-ip-only")).await;
    let res = s.handlers.handle(Route::Message, fixture("message")).await;
    assert_eq!(res.status_code, 200, "{}", body(&res));
    assert!(
        body(&res).starts_with("delivered 2 of 2; gone 0; connecting 0; failed 0"),
        "a one-line summary: {}",
        body(&res)
    );
    for id in ["SyNUdcQAoAMCJsg=", "SyNVxeJ0IAMCJsg="] {
        assert_eq!(
            server.delivered(id),
            vec![bytes::Bytes::from("Hello World!")],
            "{id}"
        );
    }

    // Non-string data goes as its JSON text.
    let mut event = fixture("message");
    event.body = Some(r#"{"type":"message","data":{"n":1}}"#.into());
    assert_eq!(s.handlers.message(event).await.status_code, 200);
    assert_eq!(
        server.delivered("SyNUdcQAoAMCJsg=")[1],
        bytes::Bytes::from(r#"{"n":1}"#)
    );
}

#[tokio::test]
async fn message_reaches_every_record_of_a_table_larger_than_one_scan_page() {
    let server = StandIn::always_ok("dev").await;
    let s = stack(Some(&server.endpoint())).await;
    let padding = "p".repeat(300);
    let records: Vec<_> = (0..5_000)
        .map(|i| {
            let mut r =
                ConnectionRecord::new(format!("c{i:05}Aw=")).connected_at(1_707_502_303_419);
            r.meta.insert("note".into(), padding.clone());
            r
        })
        .collect();
    s.handlers.store().put_batch(&records).await.expect("seed");
    let pages = s
        .handlers
        .store()
        .scan_pages(ScanOptions::segments(1))
        .count()
        .await;
    assert!(
        pages >= 2,
        "the table must span more than one 1 MB Scan page, got {pages}"
    );

    let handlers = Handlers::new(
        sdk(&s.db),
        TableConfig::default(),
        Some(ManagementEndpoint::parse(&server.endpoint()).expect("endpoint")),
    )
    .with_scan(ScanOptions::segments(1));
    let res = handlers.message(fixture("message")).await;
    assert_eq!(res.status_code, 200, "{}", body(&res));
    for r in &records {
        assert_eq!(
            server.delivered(&r.connection_id).len(),
            1,
            "{} got it once",
            r.connection_id
        );
    }
    assert_eq!(server.request_count(), 5_000);
}

#[tokio::test]
async fn message_prunes_gone_targets_and_keeps_the_sender() {
    let server = StandIn::start(
        "dev",
        Duration::ZERO,
        Arc::new(|id: &str, _| if id.starts_with("stale") { 410 } else { 200 }),
    )
    .await;
    let s = stack(Some(&server.endpoint())).await;
    s.handlers.connect(fixture("connect")).await;
    let store = s.handlers.store();
    let now = wsadmin_core::clock::system_now_ms();
    for record in [
        ConnectionRecord::new("staleOld=").connected_at(now - 3_600_000),
        // Answering 410 while its $connect may still run: not gone yet.
        ConnectionRecord::new("staleYoung=").connected_at(now - 1_000),
        // Another stack's record: the first 410 only marks it.
        ConnectionRecord::new("staleForeign="),
    ] {
        store.put(&record).await.expect("put");
    }
    let res = s.handlers.message(fixture("message")).await;
    assert_eq!(res.status_code, 200, "{}", body(&res));
    assert!(
        body(&res).contains("gone 1; connecting 1"),
        "{}",
        body(&res)
    );
    assert_eq!(
        store.get("staleOld=").await.expect("get"),
        None,
        "the stale id is deleted"
    );
    assert!(
        store.get("staleYoung=").await.expect("get").is_some(),
        "a connecting client keeps its record"
    );
    let foreign = store
        .get("staleForeign=")
        .await
        .expect("get")
        .expect("kept");
    assert!(foreign.gone_seen_at.is_some(), "marked for a later run");
    assert!(
        s.record("SyNUdcQAoAMCJsg=").await.is_some(),
        "not the sender"
    );
}

#[tokio::test]
async fn message_refuses_bad_bodies_with_400_and_sends_nothing() {
    let server = StandIn::always_ok("dev").await;
    let s = stack(Some(&server.endpoint())).await;
    s.handlers.connect(fixture("connect")).await;
    let big = format!(r#"{{"type":"message","data":"{}"}}"#, "x".repeat(131_073));
    for (input, needle) in [
        ("Marko?", "the body is not JSON"),
        ("{\"type\": \"message\"", "the body is not JSON"),
        ("{\"type\": \"message\"}", "\"data\" is missing"),
        (big.as_str(), "over API Gateway's limit of 131072 bytes"),
    ] {
        let mut event = fixture("message");
        event.body = Some(input.to_owned());
        let res = s.handlers.message(event).await;
        assert_eq!(res.status_code, 400);
        assert!(
            body(&res).contains(needle),
            "{}: {}",
            &input[..input.len().min(30)],
            body(&res)
        );
    }
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn message_to_an_unreachable_endpoint_answers_500_with_the_reason() {
    let endpoint = format!("http://127.0.0.1:{}/dev", wsadmin_testkit::closed_port());
    let s = stack(Some(&endpoint)).await;
    s.handlers.connect(fixture("connect")).await;
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let handlers = Handlers::new(
        sdk(&s.db),
        TableConfig::default(),
        Some(ManagementEndpoint::parse(&endpoint).expect("endpoint")),
    )
    .with_sweep(SweepConfig {
        retry,
        ..SweepConfig::default()
    });
    let res = handlers.message(fixture("message")).await;
    assert_eq!(res.status_code, 500);
    assert!(body(&res).contains("cannot reach"), "{}", body(&res));
    assert!(
        s.record("SyNUdcQAoAMCJsg=").await.is_some(),
        "nothing deleted"
    );
}

#[tokio::test]
async fn message_on_a_missing_table_answers_500() {
    let server = StandIn::always_ok("dev").await;
    let db = Dynalite::start();
    let endpoint = ManagementEndpoint::parse(&server.endpoint()).expect("endpoint");
    let handlers = Handlers::new(sdk(&db), TableConfig::default(), Some(endpoint));
    let res = handlers.message(fixture("message")).await;
    assert_eq!(res.status_code, 500);
    assert!(body(&res).contains("not found"), "{}", body(&res));
}

#[test]
fn malformed_events_are_clear_errors() {
    let err = parse_event("{").expect_err("truncated");
    assert!(
        err.to_string()
            .starts_with("not an API Gateway WebSocket event: "),
        "{err}"
    );
    // connectedAt and requestTimeEpoch are required by the event type.
    let err =
        parse_event(r#"{"requestContext": {"connectionId": "abc="}}"#).expect_err("missing fields");
    assert!(err.to_string().contains("connectedAt"), "{err}");
    let err = parse_event(r#"{"requestContext": 7}"#).expect_err("wrong type");
    assert!(
        err.to_string()
            .starts_with("not an API Gateway WebSocket event"),
        "{err}"
    );
}

#[test]
fn configuration_comes_from_the_environment_with_clear_errors() {
    let sdk = static_config(TEST_REGION, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let err = Handlers::from_vars(sdk.clone(), vars(&[])).expect_err("no table");
    assert!(matches!(err, ConfigError::MissingTable));
    assert_eq!(
        err.to_string(),
        "CONNECTIONS_TABLE is not set: name the DynamoDB table that registers connections"
    );
    let err = Handlers::from_vars(
        sdk.clone(),
        vars(&[
            ("CONNECTIONS_TABLE", "T"),
            ("MANAGEMENT_ENDPOINT_URL", "http://127.0.0.1:3001"),
        ]),
    )
    .expect_err("no stage");
    assert!(
        err.to_string()
            .starts_with("MANAGEMENT_ENDPOINT_URL: endpoint URL"),
        "{err}"
    );
    assert!(err.to_string().contains("has no stage"), "{err}");
    let err = Handlers::from_vars(
        sdk.clone(),
        vars(&[
            ("CONNECTIONS_TABLE", "T"),
            ("BROADCAST_CONCURRENCY", "lots"),
        ]),
    )
    .expect_err("bad number");
    assert!(err.to_string().contains("\"lots\""), "{err}");
    let ok = Handlers::from_vars(
        sdk,
        vars(&[
            ("CONNECTIONS_TABLE", "T"),
            ("CONNECTIONS_TABLE_KEY", "id"),
            ("MANAGEMENT_ENDPOINT_URL", "ws://127.0.0.1:3001/dev"),
        ]),
    )
    .expect("valid");
    assert_eq!(ok.store().table(), &TableConfig::new("T").with_key("id"));
}

#[test]
fn routes_are_named_like_their_binaries() {
    for r in Route::ALL {
        assert_eq!(Route::from_function_name(r.function_name()), Some(r));
    }
    assert_eq!(Route::from_function_name("ws-nope"), None);
}
