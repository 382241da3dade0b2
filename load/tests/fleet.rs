//! Fleets against the real local stack: completeness of broadcasts, clients
//! that never read, meta and user agents as the registry sees them, and a
//! fleet that stops by itself and leaves nothing behind.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use wsadmin_load::{CloseHow, Fleet, FleetConfig, Tagger};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_client_exactly_once() {
    let stack = support::start().await;
    let fleet = Fleet::open(FleetConfig {
        meta: vec![("room".into(), "7".into()), ("user".into(), "c{i}".into())],
        ..FleetConfig::new(stack.url(), 200)
    })
    .await
    .expect("200 clients open");

    // Every client is in the registry under its user agent, with its meta.
    let records = stack.records().await;
    assert_eq!(records.len(), 200);
    for client in fleet.clients() {
        let record = records
            .iter()
            .find(|r| r.user_agent.as_deref() == Some(client.user_agent.as_str()))
            .unwrap_or_else(|| panic!("{} is registered", client.user_agent));
        assert_eq!(record.meta.get("room").map(String::as_str), Some("7"));
        assert_eq!(record.meta.get("user"), Some(&format!("c{}", client.index)));
    }

    let tag = Tagger::new(fleet.run()).expect("run").next();
    assert_eq!(support::post_to_all(&stack, &tag).await, 200);
    // Anything arriving twice would arrive while it settles.
    let m = fleet
        .settled(&tag, Duration::from_secs(10), Duration::from_millis(300))
        .await
        .expect("everyone received it");
    assert_eq!(m.connected_throughout, 200);
    assert_eq!(m.exactly_once, 200, "{m:?}");
    assert_eq!((m.missing, m.duplicated), (0, 0), "{m:?}");
    let latency = m.latency.expect("latency measured");
    assert_eq!(latency.count, 200);
    assert!(latency.p50_ms <= latency.p90_ms && latency.p99_ms <= latency.max_ms);
    assert!(m.settled, "settled, so none missed and none twice: {m:?}");
    eprintln!("200 clients, one broadcast: latency {latency:?}");

    fleet.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_reported_missing_while_the_others_receive() {
    let stack = support::start().await;
    let fleet = Fleet::open(FleetConfig {
        never_read: 1,
        ..FleetConfig::new(stack.url(), 20)
    })
    .await
    .expect("clients open");
    assert!(fleet.client(0).expect("client 0").never_reads);

    // Client 5 broadcasts through the stack's `message` route.
    let tagger = Tagger::new(fleet.run()).expect("run");
    let tags = [tagger.next(), tagger.next()];
    for tag in &tags {
        fleet.send(5, tag.message_route_body()).await.expect("sent");
    }
    assert!(fleet.wait_received(&tags, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let report = fleet.report(&tags, Duration::from_millis(300));
    for tag in &tags {
        let m = report.message(tag).expect("reported");
        assert_eq!(m.connected_throughout, 20);
        assert_eq!(m.exactly_once, 19, "{m:?}");
        assert_eq!(m.missing, 1);
        assert_eq!(m.missing_never_read, 1);
        assert_eq!(m.missing_clients, vec![0]);
        assert_eq!(m.duplicated, 0);
    }
    // Missing by a client that never reads is expected, not a loss.
    assert!(!report.has_losses());
    assert_eq!(fleet.client(5).expect("sender").sent, 2);

    fleet.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_every_client_cleanly_and_the_stack_sees_them_go() {
    let stack = support::start().await;
    let fleet = Fleet::open(FleetConfig::new(stack.url(), 30))
        .await
        .expect("clients open");
    assert_eq!(stack.stack.connection_count(), 30);
    assert_eq!(fleet.open_clients().len(), 30);

    fleet.close().await;
    assert!(fleet.open_clients().is_empty());
    for c in fleet.clients() {
        let closed = c.closed.expect("closed");
        assert_eq!(closed.how, CloseHow::Clean);
        assert!(closed.at_ms >= c.connected_at_ms);
    }
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            stack.stack.connection_count() == 0 && stack.records().await.is_empty()
        })
        .await,
        "the stack still holds {} connections",
        stack.stack.connection_count()
    );
    assert!(fleet.send(0, "late").await.is_err());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_stops_at_its_deadline_and_dropping_one_leaves_nothing_open() {
    let stack = support::start().await;
    let fleet = Fleet::open(FleetConfig {
        deadline: Duration::from_millis(500),
        ..FleetConfig::new(stack.url(), 10)
    })
    .await
    .expect("clients open");
    tokio::time::timeout(Duration::from_secs(10), fleet.stopped())
        .await
        .expect("the fleet stops by itself");
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            fleet.open_clients().is_empty()
        })
        .await
    );

    let dropped = Fleet::open(FleetConfig::new(stack.url(), 10))
        .await
        .expect("clients open");
    let agents: BTreeSet<String> = dropped
        .clients()
        .into_iter()
        .map(|c| c.user_agent)
        .collect();
    assert_eq!(stack.stack.connection_count(), 10);
    drop(dropped);
    assert!(
        support::eventually(Duration::from_secs(5), || async {
            stack.stack.connection_count() == 0
        })
        .await,
        "dropping the fleet left {} connections open",
        stack.stack.connection_count()
    );
    let registered: BTreeSet<String> = support::ids_by_agent(&stack).await.into_keys().collect();
    assert!(registered.is_disjoint(&agents), "{registered:?}");
    stack.stop().await;
}

#[tokio::test]
async fn bad_fleets_are_refused_with_the_input_named() {
    let e = Fleet::open(FleetConfig::new("ws://192.0.2.1:3001/dev", 1))
        .await
        .expect_err("not loopback")
        .to_string();
    assert!(
        e.contains("\"192.0.2.1\"") && e.contains("not a loopback"),
        "{e}"
    );
    let e = Fleet::open(FleetConfig::new("ws://127.0.0.1:9/dev", 0))
        .await
        .expect_err("zero")
        .to_string();
    assert!(e.contains("at least 1"), "{e}");
    let e = Fleet::open(FleetConfig::new("ws://127.0.0.1:9/dev", 60_001))
        .await
        .expect_err("too many")
        .to_string();
    assert!(e.contains("60001 clients is too many"), "{e}");
    // Nothing listens there: the error names the client and the URL.
    let e = Fleet::open(FleetConfig::new("ws://127.0.0.1:9/dev", 3))
        .await
        .expect_err("refused");
    assert!(!e.is_input());
    let e = e.to_string();
    assert!(
        e.contains("could not connect to ws://127.0.0.1:9/dev"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spread_over_loopback_source_addresses() {
    let stack = support::start().await;
    let fleet = Fleet::open(FleetConfig {
        source_addresses: 3,
        ..FleetConfig::new(stack.url(), 6)
    })
    .await
    .expect("clients open");
    // The stack sees each client's source address, in turn.
    let records = stack.records().await;
    for c in fleet.clients() {
        let record = records
            .iter()
            .find(|r| r.user_agent.as_deref() == Some(c.user_agent.as_str()))
            .expect("registered");
        let want = format!("127.0.0.{}", c.index % 3 + 1);
        assert_eq!(record.source_ip.as_deref(), Some(want.as_str()));
    }
    fleet.close().await;
    stack.stop().await;
}
