//! The stack over TLS, as code written for AWS reaches it: the Management
//! API at `https://localhost:PORT/STAGE` from the official Rust SDK and
//! from boto3, WebSocket clients on `wss://`, events naming the TLS
//! endpoint as their `domainName`, a bad handshake costing nothing, and
//! one CA kept across starts.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsadmin_harness::{connect_wss, recv_close, recv_text, start_tls};
use wsadmin_local::tls::{CA_FILE, CA_KEY_FILE, KEY_FILE};

fn status_and_code<E: ProvideErrorMetadata>(
    e: &aws_sdk_apigatewaymanagement::error::SdkError<
        E,
        aws_sdk_apigatewaymanagement::config::http::HttpResponse,
    >,
) -> (u16, String) {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .unwrap_or("")
        .to_owned();
    (status, code)
}

#[tokio::test]
async fn the_sdk_over_https_posts_gets_deletes_and_is_refused_as_on_aws() {
    let dir = tempfile::tempdir().expect("dir");
    let h = start_tls(dir.path(), |_| {}).await;
    let mut c = h.wss_client("sdk-over-https/1.0").await;
    let api = h.management_https();

    api.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("hello over https"))
        .send()
        .await
        .expect("post");
    assert_eq!(recv_text(&mut c.ws).await, "hello over https");

    let got = api
        .get_connection()
        .connection_id(&c.id)
        .send()
        .await
        .expect("get");
    let identity = got.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("sdk-over-https/1.0"));

    // Signed with the wrong secret: AWS's 403, over TLS as over plain.
    let forged = aws_sdk_apigatewaymanagement::Client::from_conf(
        api.config()
            .to_builder()
            .credentials_provider(Credentials::new(
                h.stack.config().access_key_id.clone(),
                "not-the-secret",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let e = forged
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("forged"))
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(status_and_code(&e), (403, "ForbiddenException".into()));

    api.delete_connection()
        .connection_id(&c.id)
        .send()
        .await
        .expect("delete");
    let frame = recv_close(&mut c.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(frame.code, CloseCode::Normal);
    h.wait_for_ids(&[]).await;

    let e = api
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("too late"))
        .send()
        .await
        .expect_err("gone");
    assert_eq!(status_and_code(&e), (410, "GoneException".into()));
    h.stop().await;
}

#[tokio::test]
async fn a_wss_client_plays_marko_polo_and_events_name_the_tls_endpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let h = start_tls(dir.path(), |_| {}).await;
    let mut c = h.wss_client("wss-client/1.0").await;
    c.ws.send(Message::text("Marko?")).await.expect("send");
    assert_eq!(recv_text(&mut c.ws).await, "Polo!");

    // `$connect` wrote the event's requestContext.domainName: the TLS
    // endpoint, so `https://${domainName}/${stage}` reaches the stack.
    let port = h.stack.tls_addr().expect("TLS").port();
    let record = h.record(&c.id).await.expect("record");
    assert_eq!(record.domain_name, Some(format!("localhost:{port}")));
    assert_eq!(record.stage.as_deref(), Some("dev"));
    assert_eq!(
        h.stack.https_management_endpoint(),
        Some(format!("https://localhost:{port}/dev"))
    );

    // The plain endpoint is the same API.
    let mut plain = h.client("plain-client/1.0").await;
    plain.ws.send(Message::text("Marko?")).await.expect("send");
    assert_eq!(recv_text(&mut plain.ws).await, "Polo!");
    assert_eq!(h.stack.connection_count(), 2);
    h.stop().await;
}

#[tokio::test]
async fn boto3_posts_over_https_trusting_the_ca_through_aws_ca_bundle() {
    let dir = tempfile::tempdir().expect("dir");
    let h = start_tls(dir.path(), |_| {}).await;
    let mut c = h.wss_client("boto3-target/1.0").await;
    let python = wsadmin_testkit::repo_root().join(".venv/bin/python");
    let script = r#"
import sys, boto3
api = boto3.client("apigatewaymanagementapi", endpoint_url=sys.argv[1])
api.post_to_connection(ConnectionId=sys.argv[2], Data=b"hello from boto3")
print(api.get_connection(ConnectionId=sys.argv[2])["Identity"]["UserAgent"])
"#;
    let config = h.stack.config();
    let out = tokio::process::Command::new(&python)
        .args(["-c", script])
        .arg(h.stack.https_management_endpoint().expect("TLS"))
        .arg(&c.id)
        .env("AWS_CA_BUNDLE", h.stack.ca_file().expect("CA"))
        .env("AWS_ACCESS_KEY_ID", &config.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &config.secret_access_key)
        .env("AWS_DEFAULT_REGION", &config.region)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3 failed: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "boto3-target/1.0"
    );
    assert_eq!(recv_text(&mut c.ws).await, "hello from boto3");
    h.stop().await;
}

#[tokio::test]
async fn a_failed_or_stalled_handshake_never_stops_the_tls_endpoint() {
    let dir = tempfile::tempdir().expect("dir");
    let h = start_tls(dir.path(), |_| {}).await;
    let tls = h.stack.tls_addr().expect("TLS");

    // A client that connects and says nothing holds nobody up.
    let _silent = tokio::net::TcpStream::connect(tls).await.expect("connect");
    // Plain HTTP to the TLS port: the handshake fails, the socket closes.
    let mut plain = tokio::net::TcpStream::connect(tls).await.expect("connect");
    plain
        .write_all(b"GET /dev HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("closed within 5 s")
        .ok();
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP over the TLS port: {answer:?}"
    );
    // A client that does not trust the CA is refused, and costs nothing.
    let other = rcgen_free_ca();
    let err = connect_wss(&h.wss_url(), &other, "untrusting/1.0")
        .await
        .expect_err("an unknown issuer");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    let mut c = h.wss_client("after-the-failures/1.0").await;
    c.ws.send(Message::text("Marko?")).await.expect("send");
    assert_eq!(recv_text(&mut c.ws).await, "Polo!");
    h.stop().await;
}

#[tokio::test]
async fn the_ca_outlives_a_restart_and_its_key_is_the_users_only() {
    let dir = tempfile::tempdir().expect("dir");
    let first = start_tls(dir.path(), |_| {}).await;
    let ca = first.ca_pem().to_owned();
    assert_eq!(
        first.stack.ca_file(),
        Some(dir.path().join(CA_FILE)),
        "the CA file is where the stack says"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(CA_FILE)).expect("ca"),
        ca
    );
    first.stop().await;

    let second = start_tls(dir.path(), |_| {}).await;
    assert_eq!(second.ca_pem(), ca, "the same CA: trusted once");
    for key in [CA_KEY_FILE, KEY_FILE] {
        let mode = std::fs::metadata(dir.path().join(key))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // The new server certificate chains to the CA clients already trust.
    let mut c = connect_wss(&second.wss_url(), &ca, "after-restart/1.0")
        .await
        .expect("trusted with the first start's CA");
    c.send(Message::text("Marko?")).await.expect("send");
    assert_eq!(recv_text(&mut c).await, "Polo!");
    let info = second.stack.info();
    assert_eq!(info.ca_file, Some(dir.path().join(CA_FILE)));
    assert_eq!(info.wss_url, second.stack.wss_url());
    second.stop().await;
}

/// The CA of another directory: a stack this test never trusted.
fn rcgen_free_ca() -> String {
    let other = tempfile::tempdir().expect("dir");
    let certs = wsadmin_local::tls::Certificates::load_or_create(other.path()).expect("certs");
    certs.ca_pem().to_owned()
}
