//! The local stack's Management API against the official Rust SDK (and raw
//! HTTP for what no SDK sends): it must not be able to tell it from AWS.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsadmin_core::clock::Clock;
use wsadmin_core::{Gateway, GatewayClient, GatewayError, ManagementEndpoint};
use wsadmin_harness::{recv_close, recv_text, start};

fn code<E: ProvideErrorMetadata>(
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
async fn post_get_delete_on_a_live_connection() {
    let h = start(|_| {}).await;
    let mut c = h.client("sdk-target/2.0").await;
    let api = h.management();

    api.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("hello from the SDK"))
        .send()
        .await
        .expect("post");
    assert_eq!(recv_text(&mut c.ws).await, "hello from the SDK");

    let got = api
        .get_connection()
        .connection_id(&c.id)
        .send()
        .await
        .expect("get");
    let identity = got.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("sdk-target/2.0"));
    let connected = got
        .connected_at()
        .expect("connectedAt")
        .to_millis()
        .expect("millis");
    let active = got
        .last_active_at()
        .expect("lastActiveAt")
        .to_millis()
        .expect("millis");
    assert!(active >= connected, "{active} < {connected}");
    let record = h.record(&c.id).await.expect("record");
    assert_eq!(
        record.connected_at,
        Some(connected),
        "GetConnection and the record agree"
    );

    api.delete_connection()
        .connection_id(&c.id)
        .send()
        .await
        .expect("delete");
    let frame = recv_close(&mut c.ws, Duration::from_secs(5))
        .await
        .expect("close frame");
    assert_eq!(frame.code, CloseCode::Normal);
    h.wait_for_ids(&[]).await; // $disconnect ran
    h.stop().await;
}

#[tokio::test]
async fn unknown_and_closed_ids_are_410_gone() {
    let h = start(|_| {}).await;
    let api = h.management();
    let mut c = h.client("soon-gone").await;
    let closed = c.id.clone();
    futures::SinkExt::close(&mut c.ws).await.expect("close");
    h.wait_for_ids(&[]).await;
    for id in ["AAAAAAAAAAAAAAA=", closed.as_str(), "abc=="] {
        let e = api
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new("x"))
            .send()
            .await
            .expect_err("gone");
        assert!(
            e.as_service_error().is_some_and(|s| s.is_gone_exception()),
            "{id}: {e:?}"
        );
        assert_eq!(code(&e), (410, "GoneException".into()));
        let e = api
            .get_connection()
            .connection_id(id)
            .send()
            .await
            .expect_err("gone");
        assert!(e.as_service_error().is_some_and(|s| s.is_gone_exception()));
        let e = api
            .delete_connection()
            .connection_id(id)
            .send()
            .await
            .expect_err("gone");
        assert!(e.as_service_error().is_some_and(|s| s.is_gone_exception()));
    }
    h.stop().await;
}

#[tokio::test]
async fn over_128_kb_is_413_and_100_kb_arrives_whole_in_small_frames() {
    let h = start(|_| {}).await;
    // The client refuses any frame over 32 KB: the message must be fragmented.
    let config = WebSocketConfig::default().max_frame_size(Some(32 * 1024));
    let mut c = h.client_with("framed", "", config).await;
    let api = h.management();

    let e = api
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(vec![b'z'; 131_073]))
        .send()
        .await
        .expect_err("413");
    assert!(
        e.as_service_error()
            .is_some_and(|s| s.is_payload_too_large_exception()),
        "{e:?}"
    );

    let text: String = (0..100 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    api.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(text.clone()))
        .send()
        .await
        .expect("post 100 KB");
    assert_eq!(recv_text(&mut c.ws).await, text);
    api.post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new(vec![b'q'; 131_072]))
        .send()
        .await
        .expect("128 KB exactly");
    assert_eq!(recv_text(&mut c.ws).await.len(), 131_072);
    h.stop().await;
}

#[tokio::test]
async fn the_throttle_knob_answers_429() {
    let h = start(|c| {
        c.throttle = Some(wsadmin_emulator::Throttle {
            rps: 5.0,
            burst: 5.0,
        })
    })
    .await;
    let c = h.client("throttled").await;
    let api = h.management();
    let mut throttled = 0;
    for _ in 0..30 {
        match api.get_connection().connection_id(&c.id).send().await {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(code(&e), (429, "LimitExceededException".into()));
                throttled += 1;
            }
        }
    }
    assert!(throttled >= 20, "only {throttled} of 30 throttled at 5 rps");
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_fills_its_queue_and_posts_get_429() {
    let h = start(|c| c.queue_limit_bytes = 256 * 1024).await;
    let stuck = h.client("never-reads").await;
    let api = h.management();
    let chunk = vec![b's'; 120 * 1024];
    let mut answered_429 = false;
    for _ in 0..2_000 {
        match api
            .post_to_connection()
            .connection_id(&stuck.id)
            .data(Blob::new(chunk.clone()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(code(&e), (429, "LimitExceededException".into()));
                answered_429 = true;
                break;
            }
        }
    }
    assert!(answered_429, "the queue never filled");
    // Another client is served as usual.
    let mut fine = h.client("reads").await;
    api.post_to_connection()
        .connection_id(&fine.id)
        .data(Blob::new("still here"))
        .send()
        .await
        .expect("post");
    assert_eq!(recv_text(&mut fine.ws).await, "still here");
    drop(stuck);
    h.stop().await;
}

#[tokio::test]
async fn unsigned_and_mis_signed_requests_are_403() {
    let h = start(|_| {}).await;
    let c = h.client("secured").await;

    let wrong = aws_sdk_apigatewaymanagement::config::Builder::from(&h.stack.sdk_config())
        .endpoint_url(h.stack.management_endpoint())
        .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
            wsadmin_emulator::LOCAL_ACCESS_KEY_ID,
            "not-the-secret",
            None,
            None,
            "test",
        ))
        .build();
    let e = aws_sdk_apigatewaymanagement::Client::from_conf(wrong)
        .post_to_connection()
        .connection_id(&c.id)
        .data(Blob::new("x"))
        .send()
        .await
        .expect_err("wrong secret");
    assert_eq!(code(&e), (403, "ForbiddenException".into()));
    assert!(
        e.as_service_error()
            .is_some_and(|s| s.is_forbidden_exception())
    );

    let path = format!(
        "POST /dev/@connections/{} HTTP/1.1",
        c.id.replace('=', "%3D")
    );
    let (status, head, body) = wsadmin_harness::raw_http(h.addr(), &path, b"unsigned").await;
    assert_eq!(status, 403);
    assert!(
        head.contains("x-amzn-errortype: forbiddenexception"),
        "{head}"
    );
    assert!(body.contains("\"message\""), "{body}");
    h.stop().await;
}

#[tokio::test]
async fn garbage_on_the_management_path_gets_aws_answers() {
    let h = start(|_| {}).await;
    let mut bystander = h.client("bystander").await;
    for (head, want) in [
        ("POST /prod/@connections/abc%3D HTTP/1.1", 403),
        ("PUT /dev/@connections/abc%3D HTTP/1.1", 403),
        ("POST /dev/@connections/ HTTP/1.1", 403),
        ("POST /dev/@connections HTTP/1.1", 403),
        ("GET /dev/nothing/here HTTP/1.1", 403),
    ] {
        let (status, head_out, _) = wsadmin_harness::raw_http(h.addr(), head, b"x").await;
        assert_eq!(status, want, "{head}");
        assert!(head_out.contains("x-amzn-errortype"), "{head}: {head_out}");
    }
    // Unsigned and too large: refused for the signature before the size is
    // looked at (signed and too large is 413: see the test above).
    let (status, head_out, _) = wsadmin_harness::raw_http(
        h.addr(),
        "POST /dev/@connections/abc%3D HTTP/1.1",
        &vec![b'b'; 131_073],
    )
    .await;
    assert_eq!(status, 403);
    assert!(head_out.contains("forbiddenexception"), "{head_out}");

    // The official client with an id no connection could have: AWS's 400.
    let e = h
        .management()
        .post_to_connection()
        .connection_id("%%%")
        .data(Blob::new("x"))
        .send()
        .await
        .expect_err("bad request");
    assert_eq!(code(&e), (400, "BadRequestException".into()));

    h.management()
        .post_to_connection()
        .connection_id(&bystander.id)
        .data(Blob::new("unaffected"))
        .send()
        .await
        .expect("post");
    assert_eq!(recv_text(&mut bystander.ws).await, "unaffected");
    h.stop().await;
}

#[tokio::test]
async fn our_gateway_client_works_against_it_too() {
    let h = start(|_| {}).await;
    let mut c = h.client("core-client").await;
    let endpoint = ManagementEndpoint::parse(&h.stack.management_endpoint()).expect("endpoint");
    let gw = Gateway::new(&h.stack.sdk_config(), endpoint).expect("gateway");
    gw.post(&c.id, "via core").await.expect("post");
    assert_eq!(recv_text(&mut c.ws).await, "via core");
    let info = gw.get(&c.id).await.expect("get");
    assert_eq!(info.user_agent.as_deref(), Some("core-client"));
    gw.delete(&c.id).await.expect("delete");
    assert!(matches!(c.ws.next().await, Some(Ok(Message::Close(_)))));
    assert!(matches!(
        gw.post(&c.id, "x").await,
        Err(GatewayError::Gone { .. })
    ));
    h.stop().await;
}

/// The gateway's two paths, side by side on the same stack: the same
/// answers, the same errors, the clock learned from `Date` either way.
#[tokio::test]
async fn both_gateway_paths_post_get_delete_alike() {
    let h = start(|_| {}).await;
    let endpoint = ManagementEndpoint::parse(&h.stack.management_endpoint()).expect("endpoint");
    for client in [GatewayClient::Lean, GatewayClient::Sdk] {
        let mut c = h.client(&format!("core-{client}")).await;
        let gw = Gateway::with_client(
            &h.stack.sdk_config(),
            endpoint.clone(),
            Clock::system(),
            client,
        )
        .expect("gateway");
        assert_eq!(gw.client(), client);
        assert_eq!(gw.clock().offset_ms(), None, "{client}: nothing heard yet");
        gw.post(&c.id, format!("via {client}")).await.expect("post");
        assert_eq!(recv_text(&mut c.ws).await, format!("via {client}"));
        assert!(gw.clock().offset_ms().is_some(), "{client}: Date read");
        gw.post(&c.id, vec![0u8, 159, 146, 150])
            .await
            .expect("post bytes");
        assert!(matches!(
            c.ws.next().await,
            Some(Ok(Message::Binary(b))) if b.as_ref() == [0u8, 159, 146, 150]
        ));
        let info = gw.get(&c.id).await.expect("get");
        assert_eq!(
            info.user_agent.as_deref(),
            Some(format!("core-{client}").as_str())
        );
        assert_eq!(info.source_ip.as_deref(), Some("127.0.0.1"));
        assert!(info.connected_at.is_some() && info.last_active_at.is_some());
        gw.delete(&c.id).await.expect("delete");
        assert!(matches!(c.ws.next().await, Some(Ok(Message::Close(_)))));
        let gone = gw.post(&c.id, "x").await.expect_err("gone");
        assert_eq!(gone, GatewayError::Gone { id: c.id.clone() }, "{client}");
        assert!(matches!(
            gw.get(&c.id).await,
            Err(GatewayError::Gone { .. })
        ));

        let wrong =
            ManagementEndpoint::parse(&h.stack.management_endpoint().replace("/dev", "/nope"))
                .expect("endpoint");
        let err = Gateway::with_client(&h.stack.sdk_config(), wrong, Clock::system(), client)
            .expect("gateway")
            .post("abc=", "x")
            .await
            .expect_err("wrong stage");
        assert_eq!(err.kind(), "forbidden", "{client}: {err}");

        let other = wsadmin_core::sdk::static_config(
            h.stack.sdk_config().region().expect("region").to_string(),
            "AKIDSOMEONEELSE",
            "another-secret",
        );
        let err = Gateway::with_client(&other, endpoint.clone(), Clock::system(), client)
            .expect("gateway")
            .post("abc=", "x")
            .await
            .expect_err("a stranger's key");
        assert_eq!(err.kind(), "forbidden", "{client}: {err}");
    }
    h.stop().await;
}
