//! The Management API client and the sweep engine (broadcast, prune)
//! against a stand-in server speaking AWS's wire format, with the registry
//! in a real dynalite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wsadmin_core::sdk::{static_config, static_config_at};
use wsadmin_testkit::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;
use wsadmin_core::clock::system_now_ms;
use wsadmin_core::fanout::broadcast;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::stale::RecordFate;
use wsadmin_core::store::{Fields, ScanOptions, ScanProgress};
use wsadmin_core::sweep::Stop;
use wsadmin_core::{
    ConnectionRecord, ConnectionStore, Gateway, GatewayError, MAX_PAYLOAD_BYTES,
    ManagementEndpoint, Outcome, RetryPolicy, Sweep, SweepConfig, SweepReport, TableConfig,
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
        "stuck" => 429,
        "forbidden" => 403,
        _ => 400,
    }
}

fn gateway(endpoint: &str) -> Gateway {
    let endpoint = ManagementEndpoint::parse(endpoint).expect("endpoint");
    Gateway::new(
        &static_config(TEST_REGION, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY),
        endpoint,
    )
    .expect("gateway")
}

const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(40),
    max_delay: Duration::from_millis(200),
    max_backpressure_attempts: 3,
};

fn sweep(concurrency: usize) -> Sweep {
    Sweep::new(SweepConfig {
        concurrency,
        retry: RETRY,
        ..SweepConfig::default()
    })
}

fn ids(list: &[&str]) -> impl futures::Stream<Item = Result<String, String>> + use<> {
    let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    stream::iter(list.into_iter().map(Ok))
}

/// An hour ago: far past any `$connect`.
/// `x` broadcast to `ids` through the stand-in by `engine`, no registry.
async fn broadcast_x(engine: &Sweep, server: &StandIn, ids: &[String]) -> SweepReport {
    broadcast(
        engine,
        &gateway(&server.endpoint()),
        None,
        stream::iter(ids.iter().cloned().map(Ok::<_, String>)),
        Bytes::from_static(b"x"),
        |_, _| {},
    )
    .await
    .expect("run")
}

fn an_hour_ago() -> i64 {
    system_now_ms() - 3_600_000
}

async fn registry() -> (Dynalite, ConnectionStore) {
    let db = Dynalite::start();
    let sdk = static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        db.endpoint(),
    );
    let store = ConnectionStore::from_conf(&sdk, TableConfig::default());
    store.create_table().await.expect("create table");
    (db, store)
}

/// A scan for decisions reads the keys, the id, when it connected and the
/// gone mark, and nothing a record only shows.
#[tokio::test]
async fn a_scan_for_decisions_reads_only_what_decides() {
    let (_db, store) = registry().await;
    let mut full = ConnectionRecord::new("abc=").connected_at(an_hour_ago());
    full.user_agent = Some("ua/1".into());
    full.source_ip = Some("203.0.113.7".into());
    full.meta.insert("room".into(), "7".into());
    full.gone_seen_at = Some(an_hour_ago());
    store.put(&full).await.expect("put");
    let read = |fields| {
        let store = store.clone();
        async move {
            let scan = ScanOptions::default().reading(fields);
            let records: Vec<ConnectionRecord> =
                store.scan(scan).map(|r| r.expect("record")).collect().await;
            assert_eq!(records.len(), 1);
            records.into_iter().next().expect("one")
        }
    };
    assert_eq!(read(Fields::All).await, full);
    let decided = read(Fields::Decisions).await;
    assert_eq!(decided.connection_id, "abc=");
    assert_eq!(decided.connected_at, full.connected_at);
    assert_eq!(decided.gone_seen_at, full.gone_seen_at);
    assert!(
        decided.key.get().is_some(),
        "its key, for conditional deletes"
    );
    assert_eq!(
        (decided.user_agent, decided.source_ip, decided.meta.len()),
        (None, None, 0)
    );
}

#[tokio::test]
async fn every_target_ends_in_exactly_one_outcome_and_only_gone_records_are_deleted() {
    let (_db, store) = registry().await;
    let server = StandIn::start("dev", Duration::from_millis(15), Arc::new(scripted)).await;

    let mut ids = Vec::new();
    for kind in ["ok", "gone", "throttle", "flaky", "down"] {
        for i in 0..40 {
            ids.push(format!("{kind}-{i:03}Q="));
        }
    }
    let records: Vec<_> = ids
        .iter()
        .map(|id| ConnectionRecord::new(id.clone()).connected_at(an_hour_ago()))
        .collect();
    store.put_batch(&records).await.expect("seed registry");

    let mut progress = Vec::new();
    let report = broadcast(
        &sweep(8),
        &gateway(&server.endpoint()),
        Some(&store),
        // As a broadcast to everyone reads: only what decides (the stale
        // rule below works on these records).
        store.scan(ScanOptions {
            segments: 3,
            page_size: Some(17),
            query: None,
            fields: Fields::Decisions,
        }),
        Bytes::from_static(b"hello everyone"),
        |done, so_far| progress.push((done.id.clone(), done.outcome.clone(), so_far.targeted)),
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
    assert_eq!(report.failed, 40);
    assert_eq!(report.source_errors.total, 0);
    assert_eq!(report.cleanup_failed, 0);
    assert!(!report.is_complete());
    // The report is bounded: every failure counted, the first few kept.
    assert_eq!(report.failures.total, 40);
    assert_eq!(report.failures.by_kind.get("transient"), Some(&40));
    assert_eq!(report.failures.first.len(), 20);
    for f in &report.failures.first {
        assert!(f.connection_id.starts_with("down-"), "{}", f.connection_id);
        assert!(
            f.reason
                .contains("answered 500 InternalServerErrorException"),
            "{}",
            f.reason
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
            "gone" => assert_eq!(outcome, &Outcome::Gone(RecordFate::Removed)),
            "down" => assert!(matches!(
                outcome,
                Outcome::Failed {
                    kind: "transient",
                    ..
                }
            )),
            _ => assert_eq!(outcome, &Outcome::Delivered),
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
async fn a_410_deletes_a_record_only_past_its_connect_window() {
    let (_db, store) = registry().await;
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let now = system_now_ms();
    let young = ConnectionRecord::new("gone-young=").connected_at(now - 2_000);
    let old = ConnectionRecord::new("gone-old=").connected_at(an_hour_ago());
    // Another stack's record: only its key.
    let foreign = ConnectionRecord::new("gone-foreign=");
    store.put_batch(&[young, old, foreign]).await.expect("seed");
    let gw = gateway(&server.endpoint());
    let run = |grace: Duration| {
        let sweep = Sweep::new(SweepConfig {
            grace,
            retry: RETRY,
            ..SweepConfig::default()
        })
        .with_clock(gw.clock().clone());
        let store = store.clone();
        let gw = gw.clone();
        async move {
            broadcast(
                &sweep,
                &gw,
                Some(&store),
                store.scan(ScanOptions::default()),
                Bytes::from_static(b"x"),
                |_, _| {},
            )
            .await
            .expect("run")
        }
    };
    let first = run(Duration::from_secs(30)).await;
    assert_eq!(
        (first.gone, first.connecting, first.marked),
        (1, 1, 1),
        "{first:?}"
    );
    assert!(first.is_complete(), "a kept record is no failure");
    assert!(store.get("gone-old=").await.expect("get").is_none());
    assert!(
        store.get("gone-young=").await.expect("get").is_some(),
        "still in its $connect window: kept"
    );
    let marked = store
        .get("gone-foreign=")
        .await
        .expect("get")
        .expect("kept");
    assert!(marked.gone_seen_at.is_some(), "the first 410 only marks it");
    assert!(
        gw.clock().offset_ms().is_some(),
        "the gateway read the answers' Date"
    );

    // Two 410s at least the grace apart: now it goes, and so does the
    // young one once it is past the (shorter) grace.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = run(Duration::from_secs(1)).await;
    assert_eq!(second.records_removed, 2, "{second:?}");
    assert_eq!(store.scan_ids(ScanOptions::default()).count().await, 0);

    // The delete is conditional on the rule itself: a record read when it
    // looked old is not deleted once rewritten young.
    let rewritten = ConnectionRecord::new("gone-again=").connected_at(system_now_ms());
    store.put(&rewritten).await.expect("put");
    let cutoff = system_now_ms() - 30_000;
    assert!(
        !store
            .delete_stale(&ConnectionRecord::new("gone-again="), cutoff)
            .await
            .expect("delete")
    );
    assert!(store.get("gone-again=").await.expect("get").is_some());
}

#[tokio::test]
async fn clients_that_do_not_read_back_off_alone() {
    let server = StandIn::start("dev", Duration::from_millis(2), Arc::new(scripted)).await;
    let mut list: Vec<String> = (0..300).map(|i| format!("ok-{i:03}=")).collect();
    for i in 0..5 {
        list.insert(i * 60 + 7, format!("stuck-{i}="));
    }
    let report = broadcast_x(&sweep(16), &server, &list).await;
    assert_eq!(report.delivered, 300);
    assert_eq!(report.failed, 5);
    assert_eq!(report.failures.by_kind.get("client_backpressure"), Some(&5));
    assert_eq!(
        report.throttled, 0,
        "one client's full buffer is not the account's throttle"
    );
    // Few attempts: enough 429s in a row that the account, refusing
    // nobody else, would not have refused them (3 to 5), far from the
    // patient bound of a throttle (4 × max_attempts).
    for i in 0..5 {
        let attempts = server.attempts(&format!("stuck-{i}="));
        assert!(
            (RETRY.max_backpressure_attempts..=5).contains(&attempts),
            "stuck-{i}: {attempts} attempts"
        );
    }
}

#[tokio::test]
async fn the_account_throttle_slows_the_run_and_everyone_is_reached() {
    let server = StandIn::start("dev", Duration::from_millis(2), Arc::new(scripted)).await;
    let list: Vec<String> = (0..60).map(|i| format!("throttle-{i:03}=")).collect();
    let report = broadcast_x(&sweep(16), &server, &list).await;
    assert_eq!(report.delivered, 60, "{report:?}");
    assert!(report.throttled > 0, "429s everywhere are the account's");
}

#[tokio::test]
async fn an_endpoint_failing_for_everyone_stops_the_run_early() {
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let list: Vec<String> = (0..2_000).map(|i| format!("down-{i:04}=")).collect();
    let report = broadcast_x(&sweep(8), &server, &list).await;
    assert!(
        matches!(&report.stopped, Some(Stop::CircuitBreaker(why)) if why.contains("500")),
        "{:?}",
        report.stopped
    );
    assert!(
        server.request_count() < 200,
        "stopped after {} requests, not after walking 2,000 targets",
        server.request_count()
    );
    assert!(!report.is_complete());
}

#[tokio::test]
async fn cancelling_drains_what_is_in_flight_and_reports_it() {
    let server =
        Arc::new(StandIn::start("dev", Duration::from_millis(20), Arc::new(scripted)).await);
    let list: Vec<String> = (0..2_000).map(|i| format!("ok-{i:04}=")).collect();
    let cancel = CancellationToken::new();
    let engine = sweep(8).with_cancel(cancel.clone());
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel();
        })
    };
    let report = broadcast_x(&engine, &server, &list).await;
    stopper.await.expect("stopper");
    assert_eq!(report.stopped, Some(Stop::Interrupted));
    let received = list
        .iter()
        .filter(|id| !server.delivered(id).is_empty())
        .count() as u64;
    assert!(received > 0 && received < 2_000, "{received}");
    assert_eq!(
        report.delivered, received,
        "the partial report counts exactly what was delivered"
    );
}

#[tokio::test]
async fn a_scan_says_how_far_it_got_whole_or_stopped() {
    let (_db, store) = registry().await;
    let records: Vec<ConnectionRecord> = (0..400)
        .map(|i| ConnectionRecord::new(format!("ok-{i:03}=")).connected_at(an_hour_ago()))
        .collect();
    store.put_batch(&records).await.expect("seed");
    let opts = ScanOptions {
        segments: 4,
        page_size: Some(25),
        ..ScanOptions::default()
    };

    // Read to its end: complete, nothing left.
    let progress = ScanProgress::new();
    let n = store.scan_tracked(opts, &progress).count().await;
    assert_eq!(n, 400);
    let whole = store.scan_report(&progress).await;
    assert!(whole.complete, "{whole:?}");
    assert_eq!((whole.segments, whole.segments_done), (4, 4));
    assert!(whole.pages >= 16, "{whole:?}");
    assert_eq!((whole.records_read, whole.records_examined), (400, 400));
    assert_eq!(
        (whole.records_unexamined, whole.estimated),
        (Some(0), false)
    );

    // A broadcast over it, stopped once 50 are delivered: the report says
    // how far the scan got and, when a segment was read whole (one 1 MB
    // page each), about how many records it never examined; with small
    // pages, none was, and it says it cannot tell (dynalite's item count
    // is always 0).
    let server = StandIn::start("dev", Duration::from_millis(5), Arc::new(scripted)).await;
    for page_size in [None, Some(25)] {
        let opts = ScanOptions {
            segments: 4,
            page_size,
            ..ScanOptions::default()
        };
        let cancel = CancellationToken::new();
        let engine = sweep(4).with_cancel(cancel.clone());
        let progress = ScanProgress::new();
        let mut report = broadcast(
            &engine,
            &gateway(&server.endpoint()),
            None,
            store.scan_tracked(opts, &progress),
            Bytes::from_static(b"x"),
            |_, so_far| {
                if so_far.delivered >= 50 {
                    cancel.cancel();
                }
            },
        )
        .await
        .expect("run");
        report.scan = Some(store.scan_report(&progress).await);
        assert_eq!(report.stopped, Some(Stop::Interrupted));
        // Those in flight at the stop drain.
        assert!((50..60).contains(&report.delivered), "{report:?}");
        assert!(!report.is_complete());
        let scan = report.scan.expect("scan");
        assert!(!scan.complete && scan.estimated, "{scan:?}");
        assert!(scan.segments_done < 4 && scan.pages >= 1, "{scan:?}");
        assert!(
            report.targeted <= scan.records_examined && scan.records_examined < 400,
            "{report:?}"
        );
        match page_size {
            None => {
                let unexamined = scan.records_unexamined.expect("estimated");
                let total = scan.records_examined + unexamined;
                assert!(total.abs_diff(400) <= 400 / 3, "{scan:?}");
            }
            Some(_) => assert_eq!(scan.records_unexamined, None, "{scan:?}"),
        }
    }
}

#[tokio::test]
async fn prune_probes_and_settles_by_the_same_rule() {
    let (_db, store) = registry().await;
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let now = system_now_ms();
    store
        .put_batch(&[
            ConnectionRecord::new("ok-1=").connected_at(an_hour_ago()),
            ConnectionRecord::new("gone-1=").connected_at(an_hour_ago()),
            ConnectionRecord::new("gone-2=").connected_at(now),
        ])
        .await
        .expect("seed");
    let gw = gateway(&server.endpoint());
    let dry = prune::prune(
        &sweep(4),
        &store,
        &gw,
        store.scan(ScanOptions::default()),
        PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        },
        |_, _| {},
    )
    .await;
    assert_eq!((dry.live, dry.gone, dry.connecting), (1, 1, 1));
    assert_eq!(dry.records_removed, 0, "a dry run changes nothing");
    assert_eq!(store.scan_ids(ScanOptions::default()).count().await, 3);
    let real = prune::prune(
        &sweep(4),
        &store,
        &gw,
        store.scan(ScanOptions::default()),
        PruneOptions::default(),
        |_, _| {},
    )
    .await;
    assert_eq!(
        (real.live, real.records_removed, real.connecting),
        (1, 1, 1)
    );
    assert!(store.get("gone-2=").await.expect("get").is_some());
    // Ids given by hand: the record is read before the rule is applied.
    let by_hand = prune::prune(
        &sweep(4),
        &store,
        &gw,
        ids(&["gone-2="]),
        PruneOptions::default(),
        |_, _| {},
    )
    .await;
    assert_eq!(by_hand.connecting, 1, "{by_hand:?}");
}

#[tokio::test]
async fn retries_back_off_between_attempts() {
    let server = StandIn::start("dev", Duration::ZERO, Arc::new(scripted)).await;
    let report = broadcast(
        &sweep(4),
        &gateway(&server.endpoint()),
        None,
        ids(&["down-1Q=", "down-2Q="]),
        Bytes::from_static(b"x"),
        |_, _| {},
    )
    .await
    .expect("run");
    assert_eq!(report.failed, 2);
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
    let gw = gateway(&server.endpoint());
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
        broadcast(
            &sweep(64),
            &gw,
            None,
            targets,
            Bytes::from_static(b"p"),
            |_, _| {},
        ),
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
    let targets = stream::iter(vec![
        Ok("a=".to_owned()),
        Err("Scan page failed: throttled".to_owned()),
        Ok("b=".to_owned()),
    ]);
    let report = broadcast(
        &sweep(64),
        &gateway(&server.endpoint()),
        None,
        targets,
        Bytes::from_static(b"p"),
        |_, _| {},
    )
    .await
    .expect("run");
    assert_eq!((report.targeted, report.delivered), (2, 2));
    assert_eq!(report.source_errors.total, 1);
    assert_eq!(
        report.source_errors.first[0].reason,
        "Scan page failed: throttled"
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
    let err = broadcast(&sweep(4), &gw, None, ids(&["abc="]), big, |_, _| {})
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
