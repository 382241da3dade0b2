//! Churn against the real local stack: clients leave (some without a close
//! frame) and join while a broadcast goes out; afterwards the fleet's open
//! set is the stack's live set, and every client connected throughout the
//! broadcast got it exactly once.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use wsadmin_load::{Churn, CloseHow, Fleet, FleetConfig, Rate, Tagger, now_ms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_churn_the_open_clients_are_the_stacks_live_connections() {
    let stack = support::start().await;
    let n = 100;
    let fleet = Fleet::open(FleetConfig {
        deadline: Duration::from_secs(60),
        ..FleetConfig::new(stack.url(), n)
    })
    .await
    .expect("clients open");
    let churning = fleet
        .churn(Churn {
            rate: Rate::parse("60/s").expect("rate"),
            drop_fraction: 0.3,
            duration: Duration::from_millis(1500),
        })
        .expect("churn starts");

    // A broadcast in the middle of the churn.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tag = Tagger::new(fleet.run()).expect("run").next();
    support::post_to_all(&stack, &tag).await;
    // A client owed the message is one connected from its sending until
    // every post was answered.
    let settle = Duration::from_millis(now_ms() - tag.sent_at_ms + 50);

    let summary = churning.finished().await.expect("churn ends by itself");
    eprintln!("churn: {summary:?}");
    assert_eq!(summary.join_failures, 0, "{summary:?}");
    assert!(
        summary.left_clean > 0 && summary.left_dropped > 0,
        "{summary:?}"
    );
    assert!(summary.ended_at_ms >= summary.started_at_ms);

    // Lifetimes: newcomers replaced every client that left.
    let clients = fleet.clients();
    let closed: Vec<_> = clients.iter().filter(|c| !c.is_open()).collect();
    assert_eq!(closed.len(), summary.left_clean + summary.left_dropped);
    assert_eq!(clients.len(), n + summary.joined);
    assert_eq!(fleet.open_clients().len(), n);
    for c in &closed {
        let how = &c.closed.as_ref().expect("closed").how;
        assert!(
            matches!(how, CloseHow::Clean | CloseHow::Dropped),
            "{how:?}"
        );
        assert!(c.closed.as_ref().expect("closed").at_ms >= c.connected_at_ms);
    }
    let dropped = closed
        .iter()
        .filter(|c| {
            c.closed
                .as_ref()
                .is_some_and(|x| x.how == CloseHow::Dropped)
        })
        .count();
    assert_eq!(dropped, summary.left_dropped);

    // The stack's live set converges to the fleet's open set.
    let open: BTreeSet<String> = fleet
        .open_clients()
        .into_iter()
        .map(|c| c.user_agent)
        .collect();
    let converged = support::eventually(Duration::from_secs(10), || async {
        stack.stack.connection_count() == open.len()
            && support::ids_by_agent(&stack)
                .await
                .into_keys()
                .collect::<BTreeSet<_>>()
                == open
    })
    .await;
    assert!(
        converged,
        "stack has {} live connections and {} records for {} open clients",
        stack.stack.connection_count(),
        stack.records().await.len(),
        open.len()
    );
    // And each open client is live for the Management API.
    let management = stack.management();
    for (agent, id) in support::ids_by_agent(&stack).await {
        let info = management
            .get_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{agent} ({id}) is live: {e:?}"));
        assert_eq!(
            info.identity().and_then(|i| i.user_agent()),
            Some(agent.as_str())
        );
    }

    // Completeness of the mid-churn broadcast among those connected
    // throughout its window.
    let report = fleet.report(std::slice::from_ref(&tag), settle);
    let m = report.message(&tag).expect("reported");
    assert!(m.settled);
    assert!(m.connected_throughout > 0);
    assert_eq!((m.missing, m.duplicated), (0, 0), "{m:?}");
    assert_eq!(m.exactly_once, m.connected_throughout);
    let throughout =
        fleet.connected_throughout(tag.sent_at_ms, tag.sent_at_ms + settle.as_millis() as u64);
    assert_eq!(throughout.len(), m.connected_throughout);

    fleet.close().await;
    stack.stop().await;
}
