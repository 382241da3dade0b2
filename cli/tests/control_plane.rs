//! `--api-id ID --stage NAME` resolved through the API Gateway v2 control
//! plane (moto, on loopback), with the registry in dynalite. Only commands
//! that make no Management API call run here: the resolved endpoint is an
//! `execute-api.amazonaws.com` host, and tests never leave this machine.

mod support;

use aws_sdk_apigatewayv2::types::ProtocolType;
use support::{fails_with, json, run, wsadmin_in};
use wsadmin_core::{ConnectionRecord, ConnectionStore, TableConfig};
use wsadmin_testkit::dynalite::Dynalite;
use wsadmin_testkit::moto::Moto;

async fn api(moto: &Moto, name: &str, protocol: ProtocolType) -> String {
    let v2 = aws_sdk_apigatewayv2::Client::new(&moto.sdk_config());
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
    db.create_table("WS_CONNECTIONS", "connectionId").await;
    let store = ConnectionStore::from_conf(&db.sdk_config(), TableConfig::default());
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
}
