//! `--api-id ID --stage NAME` resolved through the API Gateway v2 control
//! plane (moto, on loopback), with the registry in dynalite. Only commands
//! that make no Management API call run here: the resolved endpoint is an
//! `execute-api.amazonaws.com` host, and tests never leave this machine.

use crate::support;

use aws_sdk_apigatewayv2::types::ProtocolType;
use support::{fails_with, json, run, wsadmin_in};
use wsadmin_core::sdk::static_config_at;
use wsadmin_core::{ConnectionRecord, ConnectionStore, TableConfig};
use wsadmin_testkit::dynalite::Dynalite;
use wsadmin_testkit::moto::Moto;
use wsadmin_testkit::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

async fn api(moto: &Moto, name: &str, protocol: ProtocolType) -> String {
    let v2 = aws_sdk_apigatewayv2::Client::new(&static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        moto.endpoint(),
    ));
    let out = v2
        .create_api()
        .name(name)
        .protocol_type(protocol)
        .route_selection_expression("$request.body.type")
        .send()
        .await
        .expect("CreateApi");
    out.api_id().expect("api id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_id_resolves_through_get_api() {
    let moto = Moto::start();
    let db = Dynalite::start();
    let store = ConnectionStore::from_conf(
        &static_config_at(
            TEST_REGION,
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
            db.endpoint(),
        ),
        TableConfig::default(),
    );
    store.create_table().await.expect("create table");
    let records: Vec<_> = ["aaaaaaaaaaaaaaa=", "bbbbbbbbbbbbbbb="]
        .map(|id| ConnectionRecord::new(id).connected_at(1_700_000_000_000))
        .to_vec();
    store.put_batch(&records).await.expect("seed");

    let ws_api = api(&moto, "wsadmin-ws", ProtocolType::Websocket).await;
    let http_api = api(&moto, "wsadmin-http", ProtocolType::Http).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let wsadmin = |api_id: &str, args: &[&str]| {
        let mut cmd = wsadmin_in(dir.path());
        cmd.env("AWS_ENDPOINT_URL_APIGATEWAYV2", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", wsadmin_testkit::TEST_ACCESS_KEY_ID)
            .env(
                "AWS_SECRET_ACCESS_KEY",
                wsadmin_testkit::TEST_SECRET_ACCESS_KEY,
            )
            .env("AWS_REGION", "us-east-1")
            .args(["--api-id", api_id, "--stage", "dev"])
            .args(["--dynamodb-endpoint", &db.endpoint()])
            .args(args);
        cmd
    };

    let listed = json(
        &run(wsadmin(&ws_api, &["-o", "json", "list"]))
            .await
            .success(),
    );
    let mut ids: Vec<_> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["connectionId"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["aaaaaaaaaaaaaaa=", "bbbbbbbbbbbbbbb="]);

    let err = fails_with(run(wsadmin("nosuchapi", &["list"])).await, 1, "not found");
    assert!(
        err.contains("\"nosuchapi\"") && err.contains("us-east-1"),
        "{err}"
    );
    fails_with(
        run(wsadmin(&http_api, &["list"])).await,
        1,
        "is not a WebSocket API",
    );
    fails_with(run(wsadmin("bad/id", &["list"])).await, 2, "invalid API id");
    // Unreachable: one sentence naming the region, the call and the cause.
    let mut unreachable = wsadmin(&ws_api, &["list"]);
    unreachable.env("AWS_ENDPOINT_URL_APIGATEWAYV2", "http://127.0.0.1:1");
    let err = fails_with(
        run(unreachable).await,
        1,
        "cannot reach the API Gateway control plane in us-east-1 (GetApi)",
    );
    assert!(
        !err.contains("DispatchFailure") && !err.contains("ConnectorError"),
        "{err}"
    );
}

/// `status` with `--api-id` (the control plane: moto) and `--endpoint` (a
/// custom domain in front of it: here the local stack's Management API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_the_api_from_the_control_plane() {
    use aws_sdk_apigatewayv2::types::IntegrationType;
    let moto = Moto::start();
    let h = support::start(|_| {}).await;
    let v2 = aws_sdk_apigatewayv2::Client::new(&static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        moto.endpoint(),
    ));
    let api_id = api(&moto, "wsadmin-status", ProtocolType::Websocket).await;
    for (route, function) in [
        ("$connect", "ws-connect"),
        ("$disconnect", "ws-disconnect"),
        ("$default", "ws-default"),
        ("message", "ws-message"),
    ] {
        let integration = v2
            .create_integration()
            .api_id(&api_id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:{function}/invocations"
            ))
            .send()
            .await
            .expect("CreateIntegration");
        v2.create_route()
            .api_id(&api_id)
            .route_key(route)
            .target(format!(
                "integrations/{}",
                integration.integration_id().expect("id")
            ))
            .send()
            .await
            .expect("CreateRoute");
    }
    v2.create_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .expect("CreateStage");

    let c = h.stack.config();
    let mut cmd = wsadmin_in(&h.home());
    cmd.env("AWS_ENDPOINT_URL_APIGATEWAYV2", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key)
        .env("AWS_REGION", &c.region)
        .args([
            "--api-id",
            &api_id,
            "--endpoint",
            &h.stack.management_endpoint(),
        ])
        .args(["--dynamodb-endpoint", h.stack.dynamodb_endpoint()])
        .args(["-o", "json", "status"]);
    let v = json(&run(cmd).await.success());
    let api = &v["api"];
    assert_eq!(api["source"], "apigatewayv2", "{v}");
    assert_eq!(api["protocol"], "WEBSOCKET", "{v}");
    assert_eq!(api["routeSelectionExpression"], "$request.body.type");
    let routes = api["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 4, "{v}");
    for key in ["$connect", "$disconnect", "$default", "message"] {
        assert!(
            routes
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.starts_with(key))),
            "{key} in {routes:?}"
        );
    }
    assert!(
        routes
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains("ws-message"))),
        "{routes:?}"
    );
    assert_eq!(api["stages"], serde_json::json!(["dev"]), "{v}");
    assert_eq!(v["table"]["exists"], true, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    h.stop().await;
}
