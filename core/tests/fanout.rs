//! The Management API client and the fan-out engine against a stand-in
//! server speaking AWS's wire format, with the registry in a real dynalite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use wsadmin_core::fanout::Failure;
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{
    ConnectionRecord, ConnectionStore, Fanout, FanoutConfig, Gateway, GatewayError,
    MAX_PAYLOAD_BYTES, ManagementEndpoint, Outcome, RetryPolicy, TableConfig,
};
use wsadmin_testkit::dynalite::Dynalite;
use wsadmin_testkit::standin::StandIn;

/// Scripts by id prefix: the patterns the issue names.
fn scripted(id: &str, attempt: u32) -> u16 {
    match id.split('-').next().unwrap_or("") {
        "ok" => 200,
        "gone" => 410,
        "throttle" => {
            if attempt == 1 {
                429
            } else {
                200
            }
        }
        "flaky" => {
            if attempt == 1 {
                500
            } else {
                200
            }
        }
        "down" => 500,
        "forbidden" => 403,
        _ => 400,
    }
}

fn gateway(endpoint: &str) -> Gateway {
    let endpoint = ManagementEndpoint::parse(endpoint).expect("endpoint");
    Gateway::new(&wsadmin_testkit::sdk_config(None), endpoint).expect("gateway")
}

const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(40),
    max_delay: Duration::from_millis(200),
};

#[tokio::test]
async fn every_target_ends_in_exactly_one_outcome_and_only_gone_records_are_deleted() {
    let db = Dynalite::start();
    db.create_table("WS_CONNECTIONS", "connectionId").await;
    let store = ConnectionStore::from_conf(&db.sdk_config(), TableConfig::default());
    let server = StandIn::start("dev", Duration::from_millis(15), Arc::new(scripted)).await;

    let mut ids = Vec::new();
    for kind in ["ok", "gone", "throttle", "flaky", "down"] {
        for i in 0..40 {
            ids.push(format!("{kind}-{i:03}Q="));
        }
    }
    let records: Vec<_> = ids
        .iter()
        .map(|id| ConnectionRecord::new(id.clone()))
        .collect();
    store.put_batch(&records).await.expect("seed registry");

    let config = FanoutConfig {
        concurrency: 8,
        retry: RETRY,
        prune_gone: true,
    };
    let fanout = Fanout::new(gateway(&server.endpoint()), config).with_store(store.clone());
    let mut progress = Vec::new();
    let report = fanout
        .run(
            store.scan_ids(ScanOptions {
                segments: 3,
                page_size: Some(17),
            }),
            Bytes::from_static(b"hello everyone"),
            |p| progress.push((p.connection_id.to_owned(), p.outcome.clone(), p.done)),
        )
        .await
        .expect("payload accepted");

    assert_eq!(report.targeted, 200);
    assert_eq!(
        report.delivered, 120,
        "ok, throttle-then-ok and 500-then-ok all delivered"
    );
    assert_eq!(report.gone, 40);
    assert_eq!(report.records_removed, 40);
    assert_eq!(report.failed.len(), 40);
    assert!(report.source_errors.is_empty() && report.cleanup_errors.is_empty());
    assert_eq!(
        report.targeted,
        report.delivered + report.gone + report.failed.len() as u64
    );
    assert!(!report.is_complete());
    for Failure {
        connection_id,
        kind,
        attempts,
        reason,
    } in &report.failed
    {
        assert!(connection_id.starts_with("down-"), "{connection_id}");
        assert_eq!((*kind, *attempts), ("transient", 4));
        assert!(
            reason.contains("answered 500 InternalServerErrorException"),
            "{reason}"
        );
    }
    // 40 throttled + 40 flaky retried once, 40 down retried three times.
    assert_eq!(report.retries, 40 + 40 + 40 * 3);

    // Exactly one outcome per id, and one progress event per id.
    let mut seen: Vec<_> = progress.iter().map(|(id, _, _)| id.clone()).collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(progress.last().map(|p| p.2), Some(200));

    for id in &ids {
        let kind = id.split('-').next().unwrap_or_default();
        let (attempts, deliveries) = (server.attempts(id), server.delivered(id).len());
        match kind {
            "ok" => assert_eq!((attempts, deliveries), (1, 1), "{id}"),
            "throttle" | "flaky" => assert_eq!((attempts, deliveries), (2, 1), "{id}"),
            "gone" => assert_eq!((attempts, deliveries), (1, 0), "{id}"),
            "down" => assert_eq!((attempts, deliveries), (4, 0), "{id}: attempts are bounded"),
            _ => unreachable!(),
        }
        let present = store.get(id).await.expect("get").is_some();
        assert_eq!(
            present,
            kind != "gone",
            "{id}: only gone records are deleted"
        );
        let outcome = &progress.iter().find(|p| &p.0 == id).expect("progress").1;
        match kind {
            "gone" => assert_eq!(
                outcome,
                &Outcome::Gone {
                    record_removed: true,
                    attempts: 1
                }
            ),
            "down" => assert!(matches!(outcome, Outcome::Failed { attempts: 4, .. })),
            _ => assert!(matches!(outcome, Outcome::Delivered { .. })),
        }
    }
    for d in server.delivered("ok-000Q=") {
        assert_eq!(&d[..], b"hello everyone");
    }

    let max = server.max_in_flight();
    assert!(max <= 8, "in flight {max} exceeds the bound of 8");
    assert!(
        max >= 2,
        "posting is concurrent (saw at most {max} in flight)"
    );
}

#[tokio::test]
async fn retries_back_off_between_attempts() {
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let fanout = Fanout::new(
        gateway(&server.endpoint()),
        FanoutConfig {
            concurrency: 4,
            retry: RETRY,
            prune_gone: true,
        },
    );
    let targets = stream::iter(["down-1Q=", "down-2Q="].map(|s| Ok::<_, String>(s.to_owned())));
    let report = fanout
        .run(targets, Bytes::from_static(b"x"), |_| {})
        .await
        .expect("run");
    assert_eq!(report.failed.len(), 2);
    for id in ["down-1Q=", "down-2Q="] {
        let times: Vec<_> = server
            .seen()
            .into_iter()
            .filter(|s| s.connection_id == id)
            .map(|s| s.at)
            .collect();
        assert_eq!(times.len(), 4);
        for (n, pair) in times.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let floor = RETRY.delay(n as u32 + 1, 0.0);
            assert!(
                gap >= floor,
                "{id}: gap {gap:?} before attempt {} is under {floor:?}",
                n + 2
            );
        }
    }
}

#[tokio::test]
async fn posting_starts_while_the_source_is_still_producing() {
    let server = StandIn::always_ok("dev").await;
    let fanout = Fanout::new(gateway(&server.endpoint()), FanoutConfig::default());
    let first_arrived = Arc::new(AtomicBool::new(false));
    let server = Arc::new(server);
    // The second target is only produced once the first was delivered: a
    // collect-then-send engine would wait forever (and time out here).
    let (s, flag) = (server.clone(), first_arrived.clone());
    let targets = stream::iter(0..2).then(move |i| {
        let (s, flag) = (s.clone(), flag.clone());
        async move {
            if i == 1 {
                while s.delivered("first=").is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                flag.store(true, Ordering::SeqCst);
                return Ok::<_, String>("second=".to_owned());
            }
            Ok("first=".to_owned())
        }
    });
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        fanout.run(targets, Bytes::from_static(b"p"), |_| {}),
    )
    .await
    .expect("pipelined: the first post went out before the source ended")
    .expect("run");
    assert!(first_arrived.load(Ordering::SeqCst));
    assert_eq!(report.delivered, 2);
}

#[tokio::test]
async fn source_errors_are_reported_and_the_rest_still_delivered() {
    let server = StandIn::always_ok("dev").await;
    let fanout = Fanout::new(gateway(&server.endpoint()), FanoutConfig::default());
    let targets = stream::iter(vec![
        Ok("a=".to_owned()),
        Err("Scan page failed: throttled".to_owned()),
        Ok("b=".to_owned()),
    ]);
    let report = fanout
        .run(targets, Bytes::from_static(b"p"), |_| {})
        .await
        .expect("run");
    assert_eq!((report.targeted, report.delivered), (2, 2));
    assert_eq!(
        report.source_errors,
        vec!["Scan page failed: throttled".to_owned()]
    );
    assert!(!report.is_complete());
}

#[tokio::test]
async fn oversized_payloads_are_refused_before_any_request() {
    let server = StandIn::always_ok("dev").await;
    let gw = gateway(&server.endpoint());
    let big = Bytes::from(vec![b'x'; MAX_PAYLOAD_BYTES + 1]);
    let err = gw.post("abc=", big.clone()).await.expect_err("too big");
    assert!(
        matches!(err, GatewayError::PayloadTooLarge { .. }),
        "{err:?}"
    );
    let fanout = Fanout::new(gw.clone(), FanoutConfig::default());
    let err = fanout
        .run(
            stream::iter([Ok::<_, String>("abc=".to_owned())]),
            big,
            |_| {},
        )
        .await
        .expect_err("too big for a broadcast");
    assert_eq!(err.kind(), "payload_too_large");
    assert_eq!(server.request_count(), 0, "nothing was sent");
    // Exactly at the limit is fine.
    gw.post("abc=", vec![b'y'; MAX_PAYLOAD_BYTES])
        .await
        .expect("128 KiB exactly");
}

#[tokio::test]
async fn single_calls_are_classified_with_readable_messages() {
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let gw = gateway(&server.endpoint());

    gw.post("ok-1=", "text").await.expect("post text");
    gw.post("ok-1=", vec![0u8, 159, 146, 150])
        .await
        .expect("post bytes");
    let info = gw.get("ok-2=").await.expect("get");
    assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(info.user_agent.as_deref(), Some("standin-agent/1.0"));
    assert_eq!(info.connected_at, Some(1_795_593_600_000));
    assert_eq!(info.last_active_at, Some(1_795_593_930_250));
    gw.delete("ok-3=").await.expect("delete");

    let err = gw.post("gone-1=", "x").await.expect_err("410");
    assert_eq!(
        err,
        GatewayError::Gone {
            id: "gone-1=".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "connection gone-1= is gone (410 GoneException)"
    );
    assert!(matches!(
        gw.get("gone-2=").await,
        Err(GatewayError::Gone { .. })
    ));
    assert!(matches!(
        gw.delete("gone-3=").await,
        Err(GatewayError::Gone { .. })
    ));

    let err = gw.post("throttle-1=", "x").await.expect_err("429");
    assert!(err.is_retryable() && err.kind() == "throttled", "{err:?}");
    let err = gw.post("forbidden-1=", "x").await.expect_err("403");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("403 ForbiddenException"), "{err}");
    assert!(err.to_string().contains("check the credentials"), "{err}");
    let err = gw.post("down-1=", "x").await.expect_err("500");
    assert_eq!(err.kind(), "transient");

    // ids the SDK must escape arrive intact
    gw.post("ok-abc=", "x").await.expect("post");
    assert_eq!(server.delivered("ok-abc=").len(), 1);

    let before = server.request_count();
    let err = gw.post("", "x").await.expect_err("empty id");
    assert_eq!(err.to_string(), "invalid connection id \"\": it is empty");
    assert!(gw.get("a/b").await.is_err());
    assert_eq!(
        server.request_count(),
        before,
        "invalid ids never leave the process"
    );
}

#[tokio::test]
async fn a_wrong_stage_is_forbidden_as_on_aws() {
    let server = StandIn::always_ok("dev").await;
    let wrong = server.endpoint().replace("/dev", "/prod");
    let err = gateway(&wrong)
        .post("abc=", "x")
        .await
        .expect_err("wrong stage");
    assert_eq!(err.kind(), "forbidden");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable_and_named() {
    let endpoint = format!("http://127.0.0.1:{}/dev", wsadmin_testkit::closed_port());
    let err = gateway(&endpoint)
        .post("abc=", "x")
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind(), "unreachable");
    assert!(err.is_retryable() && err.is_about_the_target(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach {endpoint}: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn gateway_needs_a_region_it_can_find() {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let local = ManagementEndpoint::parse("http://127.0.0.1:9/dev").expect("endpoint");
    let err = Gateway::new(&sdk, local).expect_err("no region");
    assert!(err.to_string().contains("set AWS_REGION"), "{err}");
    let aws = ManagementEndpoint::for_api("abc", "eu-west-2", "dev").expect("endpoint");
    assert!(
        Gateway::new(&sdk, aws).is_ok(),
        "the execute-api host names its region"
    );
}
