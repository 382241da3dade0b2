//! The safety issue's reliability acceptance, over real processes: the real
//! `wsadmin` binary against the local stack (emulator and handlers
//! in-process, a real dynalite) with fleets of real WebSocket clients
//! (`wsadmin-load`) joining, leaving, dropping their sockets and refusing
//! to read.
//!
//! Scaled to fit CI on 2 cores (the figures in brackets): the race
//! with 150 churning clients over 3 rounds; churn with 600 clients [2,000];
//! back-pressure with 300 reading clients + 5 that never read [900 + 5];
//! the drain with 600 clients [1,000]; DynamoDB killed and restarted with
//! 100 clients, and killed mid-sweep with 50 clients and 100 stale records.
//! Assertions are what an operator would see (exit codes,
//! reports, messages received, records kept); times are printed, never
//! asserted.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use support::{Harness, start, start_on, wsadmin_in};
use tokio::task::JoinHandle;
use wsadmin_core::{ConnectionRecord, Gateway, GatewayError, ManagementEndpoint};
use wsadmin_emulator::Throttle;
use wsadmin_load::{Churn, Fleet, FleetConfig, Rate, Tag, Tagger, now_ms};
use wsadmin_testkit::dynalite::Dynalite;

/// No `wsadmin` run may take longer: a hang fails the test, it does not
/// stall the suite.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Running the binary

/// One finished `wsadmin --context local …` run.
#[derive(Debug)]
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The tag it broadcast, if it did.
    tag: Option<Tag>,
    took: Duration,
    ended_ms: u64,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "wsadmin {:?}: stdout is not JSON ({e}): {}\nstderr: {}",
                self.args, self.stdout, self.stderr
            )
        })
    }

    fn count(&self, field: &str) -> u64 {
        let v = self.json();
        v[field]
            .as_u64()
            .unwrap_or_else(|| panic!("no {field} in {v}"))
    }
}

/// A parameterised test's cases: one `#[tokio::test]` each (its own
/// stack, its own name in the report), `check(arg)` their one body.
macro_rules! cases {
    ($check:ident: $($name:ident => $arg:literal,)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $check($arg).await;
            }
        )+
    };
}

fn local_command(home: &std::path::Path, args: &[String]) -> tokio::process::Command {
    let mut cmd = wsadmin_in(home);
    cmd.arg("--context").arg("local").args(args);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `wsadmin --context local ARGS` to its end, failing the test if it
/// takes longer than [`RUN_LIMIT`].
async fn wsadmin(home: &std::path::Path, args: &[String], tag: Option<Tag>) -> Run {
    let started = Instant::now();
    let child = local_command(home, args).spawn().expect("wsadmin starts");
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("wsadmin {args:?} still running after {RUN_LIMIT:?}"))
        .expect("wsadmin runs");
    Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        tag,
        took: started.elapsed(),
        ended_ms: now_ms(),
    }
}

/// `broadcast --yes --data TAG -o json`: a tagged message to everyone, its
/// report as JSON.
fn broadcast_json(tag: &Tag) -> Vec<String> {
    strings(&[
        "broadcast",
        "--yes",
        "--data",
        &tag.to_string(),
        "-o",
        "json",
    ])
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// A command run back to back until stopped, as a cron job or an
/// impatient operator would.
struct CliLoop {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Run>>,
}

impl CliLoop {
    /// `next` gives each run's arguments, and the tag it sends if any.
    fn start(
        home: PathBuf,
        mut next: impl FnMut() -> (Vec<String>, Option<Tag>) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut runs = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let (args, tag) = next();
                runs.push(wsadmin(&home, &args, tag).await);
            }
            runs
        });
        Self { stop, task }
    }

    /// Stops after the run in progress and returns every run.
    async fn finish(self) -> Vec<Run> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the loop ran")
    }
}

/// Exit statuses of `runs`, for messages: `{0: 12, 3: 1}`.
fn codes(runs: &[Run]) -> BTreeMap<Option<i32>, usize> {
    let mut m = BTreeMap::new();
    for r in runs {
        *m.entry(r.code).or_default() += 1;
    }
    m
}

/// Every run exited 0; otherwise the first that did not, whole.
fn all_succeeded(what: &str, runs: &[Run]) {
    if let Some(bad) = runs.iter().find(|r| r.code != Some(0)) {
        panic!(
            "{what}: {:?} of {} runs; first failure {:?} exited {:?}\nstdout: {}\nstderr: {}",
            codes(runs),
            runs.len(),
            bad.args,
            bad.code,
            bad.stdout,
            bad.stderr
        );
    }
}

/// `field` summed over the JSON reports of `runs` (runs without one count
/// 0: their exit status tells their story).
fn total(runs: &[Run], field: &str) -> u64 {
    runs.iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.stdout).ok()?[field].as_u64())
        .sum()
}

fn took_range(runs: &[Run]) -> String {
    let ms: Vec<u128> = runs.iter().map(|r| r.took.as_millis()).collect();
    format!(
        "{}-{} ms",
        ms.iter().min().copied().unwrap_or(0),
        ms.iter().max().copied().unwrap_or(0)
    )
}

// ---------------------------------------------------------------------------
// Fleets and the registry

async fn open_fleet(h: &Harness, clients: usize, never_read: usize) -> Fleet {
    Fleet::open(FleetConfig {
        never_read,
        deadline: Duration::from_secs(240),
        ..FleetConfig::new(h.stack.websocket_url(), clients)
    })
    .await
    .unwrap_or_else(|e| panic!("{clients} clients open: {e}"))
}

/// User agents of every record in the registry.
async fn registered(h: &Harness) -> BTreeSet<String> {
    h.records()
        .await
        .into_iter()
        .filter_map(|r| r.user_agent)
        .collect()
}

fn open_agents(fleet: &Fleet) -> BTreeSet<String> {
    fleet
        .open_clients()
        .into_iter()
        .map(|c| c.user_agent)
        .collect()
}

/// Open clients without a record: invisible to every command, never sent
/// another broadcast. A candidate must still be open, still without a
/// record, a second later (so a client the server has just closed is not
/// taken for one).
async fn orphans(h: &Harness, fleet: &Fleet) -> BTreeSet<String> {
    let candidates: BTreeSet<String> = open_agents(fleet)
        .difference(&registered(h).await)
        .cloned()
        .collect();
    if candidates.is_empty() {
        return candidates;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = open_agents(fleet);
    let registered = registered(h).await;
    candidates
        .into_iter()
        .filter(|a| open.contains(a) && !registered.contains(a))
        .collect()
}

/// Connection ids by user agent.
async fn ids_of(h: &Harness, agents: &[String]) -> Vec<String> {
    let records = h.records().await;
    agents
        .iter()
        .map(|agent| {
            records
                .iter()
                .find(|r| r.user_agent.as_deref() == Some(agent))
                .map(|r| r.connection_id.clone())
                .unwrap_or_else(|| panic!("{agent} is registered"))
        })
        .collect()
}

/// How many of `fleet`'s clients received `tag`, and how many of them
/// more than once.
fn receivers(fleet: &Fleet, tag: &Tag) -> (usize, usize) {
    let mut got = 0;
    let mut twice = 0;
    for c in fleet.clients() {
        let n = c
            .received
            .iter()
            .filter(|r| r.tag.as_ref() == Some(tag))
            .count();
        got += usize::from(n > 0);
        twice += usize::from(n > 1);
    }
    (got, twice)
}

/// Waits until the number of clients that received `tag` has not changed
/// for `quiet`, and returns it (with the number that got it twice).
/// [`settled_receivers`] once every reading client has `tag` (10 s at
/// most: a test that waits longer has failed).
async fn received_then_settled(fleet: &Fleet, tag: &Tag) -> (usize, usize) {
    assert!(
        fleet
            .wait_received(std::slice::from_ref(tag), Duration::from_secs(10))
            .await,
        "every reading client received {tag:?}"
    );
    settled_receivers(fleet, tag, Duration::from_millis(300)).await
}

async fn settled_receivers(fleet: &Fleet, tag: &Tag, quiet: Duration) -> (usize, usize) {
    let mut last = receivers(fleet, tag);
    let mut since = Instant::now();
    let until = Instant::now() + Duration::from_secs(20);
    while since.elapsed() < quiet && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = receivers(fleet, tag);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

// ---------------------------------------------------------------------------
// The race

/// What one round of the race saw.
#[derive(Debug)]
struct RaceRound {
    orphans: BTreeSet<String>,
    open: usize,
    joined: usize,
    left: usize,
    message_route_sends: usize,
    prunes: Vec<Run>,
    broadcasts: Vec<Run>,
}

/// Clients join continuously (150 kept open, 40 leaving a second, 30% of
/// them dropping their socket) while `prune` and `broadcast` loop and some
/// clients broadcast through the `message` route; `grace` is passed to the
/// CLI when given.
async fn race_round(h: &Harness, grace: Option<&str>, churn_for: Duration) -> RaceRound {
    let fleet = open_fleet(h, 150, 0).await;
    let churning = fleet
        .churn(Churn {
            rate: Rate::parse("40/s").expect("rate"),
            drop_fraction: 0.3,
            duration: churn_for,
        })
        .expect("churn starts");
    let tagger = Arc::new(Tagger::new(fleet.run()).expect("run"));
    let grace: Vec<String> = grace.map(|g| strings(&["--grace", g])).unwrap_or_default();

    let prune_args = [strings(&["prune", "-o", "json"]), grace.clone()].concat();
    let prunes = CliLoop::start(h.home(), move || (prune_args.clone(), None));
    let broadcasts = CliLoop::start(h.home(), {
        let tagger = tagger.clone();
        move || {
            let tag = tagger.next();
            let args = [broadcast_json(&tag), grace.clone()].concat();
            (args, Some(tag))
        }
    });

    // The `message` route: a random open client broadcasts every 150 ms.
    let until = Instant::now() + churn_for;
    let mut message_route_sends = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let open = fleet.open_clients();
        if open.is_empty() {
            continue;
        }
        let sender = open[random_index(open.len())].index;
        let body = tagger.next().message_route_body();
        if fleet.send(sender, body).await.is_ok() {
            message_route_sends += 1;
        }
    }

    // Churn ends; newcomers mid-handshake finish; the loops end their
    // current run. Nothing can delete a record after this.
    let summary = churning.finished().await.expect("churn ends by itself");
    assert_eq!(summary.join_failures, 0, "{summary:?}");
    let prunes = prunes.finish().await;
    let broadcasts = broadcasts.finish().await;

    let orphans = orphans(h, &fleet).await;
    let round = RaceRound {
        orphans,
        open: fleet.open_clients().len(),
        joined: summary.joined,
        left: summary.left_clean + summary.left_dropped,
        message_route_sends,
        prunes,
        broadcasts,
    };
    fleet.close().await;
    round
}

/// A random index below `len` (std's hasher keys are random per call).
fn random_index(len: usize) -> usize {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(len) % len as u64) as usize
}

fn describe(round: &RaceRound) -> String {
    format!(
        "{} orphans of {} open clients ({} joined, {} left); \
         prune ×{} {:?} ({}, kept {} young records that answered 410, removed {}); \
         broadcast ×{} {:?} ({}, kept {} young records that answered 410); message route ×{}",
        round.orphans.len(),
        round.open,
        round.joined,
        round.left,
        round.prunes.len(),
        codes(&round.prunes),
        took_range(&round.prunes),
        total(&round.prunes, "connecting"),
        total(&round.prunes, "recordsRemoved"),
        round.broadcasts.len(),
        codes(&round.broadcasts),
        took_range(&round.broadcasts),
        total(&round.broadcasts, "connecting"),
        round.message_route_sends,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_race_prune_and_broadcast_loops_never_orphan_a_connecting_client() {
    let h = start(|c| c.connect_delay = Duration::from_millis(300)).await;
    for n in 1..=3 {
        let round = race_round(&h, None, Duration::from_secs(5)).await;
        eprintln!("the race, round {n}: {}", describe(&round));
        all_succeeded("prune", &round.prunes);
        all_succeeded("broadcast", &round.broadcasts);
        // The loops ran into the window: young records (clients in
        // $connect, or just gone) answered 410 and were kept.
        let connecting =
            total(&round.prunes, "connecting") + total(&round.broadcasts, "connecting");
        assert!(
            connecting > 0,
            "no run met a young record: {}",
            describe(&round)
        );
        assert!(round.message_route_sends > 0, "{}", describe(&round));
        assert!(
            round.orphans.is_empty(),
            "round {n}: open clients without a record: {:?}",
            round.orphans
        );
    }
    h.stop().await;
}

/// By hand, to show the race test can see orphans: a grace (1 s) shorter
/// than `$connect` (1.5 s) lets prune and broadcast delete the records of
/// clients still connecting. Not in the suite: it proves the test, not the
/// code. `cargo nextest run -p wsadmin --test suite --run-ignored only reliability::`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "by hand: shows the race test detects orphans when the grace is too short"]
async fn the_race_with_a_grace_shorter_than_connect_orphans_clients() {
    let h = start(|c| c.connect_delay = Duration::from_millis(1500)).await;
    let mut total = 0;
    for n in 1..=3 {
        let round = race_round(&h, Some("1s"), Duration::from_secs(5)).await;
        eprintln!("grace 1s < $connect 1.5s, round {n}: {}", describe(&round));
        total += round.orphans.len();
    }
    assert!(total > 0, "the test saw no orphan");
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Churn

/// A message posted before its broadcast ended reaches its client within
/// this long after (a bound for the report's window, not a latency claim).
const SETTLE_MS: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_every_client_connected_throughout_a_broadcast_gets_it_once_and_a_final_prune_leaves_the_live_set()
 {
    // A fifth of $disconnects are lost, so stale records pile up for the
    // final prune to find.
    let h = start(|c| c.drop_disconnect_rate = 0.2).await;
    let fleet = open_fleet(&h, 600, 0).await;
    let churning = fleet
        .churn(Churn {
            rate: Rate::parse("60/s").expect("rate"),
            drop_fraction: 0.3,
            duration: Duration::from_secs(8),
        })
        .expect("churn starts");
    let tagger = Arc::new(Tagger::new(fleet.run()).expect("run"));
    let prunes = CliLoop::start(h.home(), || (strings(&["prune", "-o", "json"]), None));
    let broadcasts = CliLoop::start(h.home(), move || {
        let tag = tagger.next();
        let args = broadcast_json(&tag);
        (args, Some(tag))
    });
    let summary = churning.finished().await.expect("churn ends by itself");
    let prunes = prunes.finish().await;
    let broadcasts = broadcasts.finish().await;
    eprintln!(
        "churn: {summary:?}; prune ×{} ({}); broadcast ×{} ({})",
        prunes.len(),
        took_range(&prunes),
        broadcasts.len(),
        took_range(&broadcasts)
    );
    assert_eq!(summary.join_failures, 0, "{summary:?}");
    assert!(summary.left_dropped > 0 && summary.left_clean > 0);
    all_succeeded("prune", &prunes);
    all_succeeded("broadcast", &broadcasts);
    assert!(broadcasts.len() >= 2, "{}", broadcasts.len());

    // Each broadcast, among the clients connected from before it started
    // until after it ended (and half a second more for the last bytes to
    // arrive): each got it exactly once.
    let last_window = broadcasts.iter().map(|r| r.ended_ms + SETTLE_MS).max();
    tokio::time::sleep(Duration::from_millis(
        last_window.unwrap_or(0).saturating_sub(now_ms()) + 50,
    ))
    .await;
    for run in &broadcasts {
        let tag = run.tag.as_ref().expect("tagged");
        let settle = Duration::from_millis(run.ended_ms + SETTLE_MS - tag.sent_at_ms);
        let report = fleet.report(std::slice::from_ref(tag), settle);
        let m = report.message(tag).expect("reported");
        let v = run.json();
        eprintln!(
            "  broadcast #{}: {} connected throughout, delivered {}, connecting {}, {} ms",
            tag.seq,
            m.connected_throughout,
            v["delivered"],
            v["connecting"],
            run.took.as_millis()
        );
        assert!(m.settled, "{m:?}");
        assert!(m.connected_throughout > 0, "{m:?}");
        assert_eq!((m.missing, m.duplicated), (0, 0), "{m:?}");
        assert_eq!(m.exactly_once, m.connected_throughout, "{m:?}");
        assert!(
            v["delivered"].as_u64() >= Some(m.exactly_once as u64),
            "{v}"
        );
    }

    // Churn is over. Once the stack has seen every departure and every
    // record is older than the 1 s grace, a final prune leaves exactly the
    // open clients.
    let open = open_agents(&fleet);
    let seen = support::eventually(10, || h.stack.connection_count() == open.len()).await;
    assert!(seen, "{} live on the stack", h.stack.connection_count());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = h.records().await.len();
    let last = wsadmin(
        h.dir.path(),
        &strings(&["prune", "--grace", "1s", "-o", "json"]),
        None,
    )
    .await;
    all_succeeded("the final prune", std::slice::from_ref(&last));
    eprintln!(
        "final prune: {before} records, {} removed, {} ms",
        last.count("recordsRemoved"),
        last.took.as_millis()
    );
    assert!(before > open.len(), "lost $disconnects left stale records");
    assert_eq!(registered(&h).await, open, "the registry is the live set");
    assert_eq!(h.records().await.len(), open.len());

    fleet.close().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Back-pressure

/// Posts to `id` (a client that never reads) until even a small message
/// is refused with 429: 128 KB messages until one is refused, then halves
/// the size on each refusal down to 64 bytes. Its socket buffers and its
/// queue on the stack are then full. Returns the bytes it took.
async fn fill(gateway: &Gateway, id: &str) -> usize {
    let mut size = 128 * 1024;
    let mut taken = 0;
    for _ in 0..1_000 {
        match gateway.post(id, Bytes::from(vec![b'x'; size])).await {
            Ok(()) => taken += size,
            Err(GatewayError::Throttled { .. }) if size <= 64 => return taken,
            Err(GatewayError::Throttled { .. }) => size /= 2,
            Err(e) => panic!("filling {id}: {e}"),
        }
    }
    panic!("{id} still takes messages after {taken} bytes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_five_clients_that_never_read_fail_alone_and_the_rest_get_it_once() {
    let h = start(|_| {}).await;
    let fleet = open_fleet(&h, 305, 5).await;
    let tagger = Tagger::new(fleet.run()).expect("run");
    let stuck: Vec<String> = (0..5)
        .map(|i| Fleet::user_agent_for(fleet.run(), i))
        .collect();
    let stuck_ids = ids_of(&h, &stuck).await;

    // Before: nobody is stuck (the 5 take one small message still).
    let tag = tagger.next();
    let before = wsadmin(h.dir.path(), &broadcast_json(&tag), Some(tag)).await;
    all_succeeded("broadcast before", std::slice::from_ref(&before));
    assert_eq!(before.count("delivered"), 305);

    // Fill the 5's buffers until the stack answers 429 for them.
    let gateway = Gateway::new(
        &h.stack.sdk_config(),
        ManagementEndpoint::parse(&h.stack.management_endpoint()).expect("endpoint"),
    )
    .expect("gateway");
    let filled = futures::future::join_all(stuck_ids.iter().map(|id| fill(&gateway, id))).await;

    let tag = tagger.next();
    let args = broadcast_json(&tag);
    let stuck_run = wsadmin(h.dir.path(), &args, Some(tag.clone())).await;
    let v = stuck_run.json();
    eprintln!(
        "back-pressure: bytes taken by each stuck client before 429 {filled:?}; broadcast to 305 \
         with none stuck {} ms (elapsedMs), with 5 stuck {} ms (elapsedMs; {} backpressure \
         429s, {} retries); process {} ms vs {} ms",
        before.count("elapsedMs"),
        stuck_run.count("elapsedMs"),
        v["backpressure"],
        v["retries"],
        before.took.as_millis(),
        stuck_run.took.as_millis(),
    );
    assert_eq!(stuck_run.code, Some(3), "partial: {}", stuck_run.stderr);
    assert_eq!(v["targeted"], 305, "{v}");
    assert_eq!(v["delivered"], 300, "{v}");
    assert_eq!(v["failed"], 5, "{v}");
    assert_eq!(v["failures"]["byKind"]["client_backpressure"], 5, "{v}");
    assert_eq!(v["throttled"], 0, "no account-level cut: {v}");
    let failed: BTreeSet<&str> = v["failures"]["first"]
        .as_array()
        .expect("first failures")
        .iter()
        .filter_map(|f| f["connectionId"].as_str())
        .collect();
    let want: BTreeSet<&str> = stuck_ids.iter().map(String::as_str).collect();
    assert_eq!(failed, want, "the failures are the 5 stuck clients");
    assert_eq!(h.records().await.len(), 305, "nobody's record was removed");

    // Every reading client got it exactly once.
    let m = fleet
        .settled(&tag, Duration::from_secs(10), Duration::from_millis(300))
        .await
        .expect("every reading client received it");
    assert_eq!(m.connected_throughout, 305, "{m:?}");
    assert_eq!(m.exactly_once, 300, "{m:?}");
    assert_eq!((m.missing, m.missing_never_read), (5, 5), "{m:?}");
    assert_eq!(m.duplicated, 0, "{m:?}");

    fleet.close().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Drain

/// Broadcasts `tag` to a throttled stack and sends `signal` once some
/// clients have it; checks the partial report against what they received.
async fn broadcast_interrupted(h: &Harness, fleet: &Fleet, tag: &Tag, signal: &str) {
    let args = broadcast_json(tag);
    let child = local_command(h.dir.path(), &args)
        .spawn()
        .expect("wsadmin starts");
    let pid = child.id().expect("running");
    let some = support::eventually(30, || receivers(fleet, tag).0 >= 100).await;
    assert!(some, "the broadcast is under way");
    let signalled = Instant::now();
    let received_at_signal = receivers(fleet, tag).0;
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("wsadmin still running {RUN_LIMIT:?} after SIG{signal}"))
        .expect("wsadmin runs");
    let drained = signalled.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "SIG{signal}: {stderr}");
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("a JSON report after SIG{signal} ({e}): {stdout:?}"));
    assert_eq!(v["stopped"]["reason"], "interrupted", "{v}");
    assert!(
        stderr.contains("wsadmin: stopping"),
        "the notice on stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (got, twice) = settled_receivers(fleet, tag, Duration::from_millis(500)).await;
    eprintln!(
        "drain on SIG{signal}: {received_at_signal} had it at the signal, exit {drained:?} later; \
         delivered {} (targeted {}, notAttempted {}, failed {} {}), {got} clients got it, \
         elapsedMs {}",
        v["delivered"],
        v["targeted"],
        v["notAttempted"],
        v["failed"],
        v["failures"]["byKind"],
        v["elapsedMs"]
    );
    assert_eq!(twice, 0, "no client got it twice");
    assert_eq!(
        v["delivered"].as_u64(),
        Some(got as u64),
        "the report's delivered is what the clients received: {v}"
    );
    assert!(got < 600, "stopped before the end: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_sigint_and_sigterm_mid_broadcast_print_a_report_true_to_what_clients_received() {
    // 150 posts a second: a broadcast to 600 takes about 4 s.
    let h = start(|c| {
        c.throttle = Some(Throttle {
            rps: 150.0,
            burst: 50.0,
        })
    })
    .await;
    let fleet = open_fleet(&h, 600, 0).await;
    let tagger = Tagger::new(fleet.run()).expect("run");
    broadcast_interrupted(&h, &fleet, &tagger.next(), "INT").await;
    broadcast_interrupted(&h, &fleet, &tagger.next(), "TERM").await;
    assert_eq!(h.records().await.len(), 600, "no record removed");
    fleet.close().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------
// Faults: DynamoDB down

/// What an error about DynamoDB being down must say: its URL, the one the
/// command was configured with.
fn dynamodb_named(h: &Harness) -> String {
    format!("cannot reach DynamoDB at {}", h.db.endpoint())
}

/// Runs `args` while DynamoDB is down: exit 1, one line naming its URL.
async fn fails_naming_dynamodb(h: &Harness, args: &[&str]) -> Duration {
    let run = wsadmin(h.dir.path(), &strings(args), None).await;
    let needle = dynamodb_named(h);
    assert_eq!(run.code, Some(1), "{args:?}: {}{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    assert!(lines[0].starts_with("wsadmin: "), "{}", run.stderr);
    assert!(lines[0].contains(&needle), "{needle:?} in {}", run.stderr);
    run.took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_dynamodb_killed_commands_fail_naming_it_and_succeed_once_it_is_back() {
    let data = tempfile::tempdir().expect("dynalite's data dir");
    let mut h = start_on(Dynalite::start_persistent(data.path()), |_| {}).await;
    let fleet = open_fleet(&h, 100, 0).await;
    let agents = open_agents(&fleet);
    assert_eq!(registered(&h).await, agents);

    h.db.kill();
    let broadcast = fails_naming_dynamodb(&h, &["broadcast", "--yes", "--data", "x"]).await;
    let prune = fails_naming_dynamodb(&h, &["prune"]).await;
    eprintln!("DynamoDB down: broadcast failed in {broadcast:?}, prune in {prune:?}");
    assert!(
        fleet.clients().iter().all(|c| c.received.is_empty()),
        "nothing was sent"
    );

    h.db.restart();
    let tag = Tagger::new(fleet.run()).expect("run").next();
    let v = wsadmin(h.dir.path(), &broadcast_json(&tag), Some(tag.clone())).await;
    all_succeeded("broadcast once DynamoDB is back", std::slice::from_ref(&v));
    assert_eq!(v.count("delivered"), 100);
    let p = wsadmin(h.dir.path(), &strings(&["prune", "-o", "json"]), None).await;
    all_succeeded("prune once DynamoDB is back", std::slice::from_ref(&p));
    assert_eq!(p.count("live"), 100);
    assert_eq!(registered(&h).await, agents, "every record is still there");
    let (got, twice) = received_then_settled(&fleet, &tag).await;
    assert_eq!((got, twice), (100, 0));

    fleet.close().await;
    h.stop().await;
}

/// Records of connections that left an hour ago without their
/// `$disconnect`: the Management API answers 410 for them, and past any
/// grace a prune (or a broadcast) deletes them.
fn stale_records(n: usize) -> Vec<ConnectionRecord> {
    let an_hour_ago = now_ms() as i64 - 3_600_000;
    (0..n)
        .map(|i| ConnectionRecord::new(format!("STALE{i:010}=")).connected_at(an_hour_ago))
        .collect()
}

/// Starts a sweep (`prune` or `broadcast`) over 50 live clients and 100
/// stale records on a throttled stack, kills DynamoDB once it has deleted
/// some stale ones, and checks the run ends badly and says where to look;
/// then restarts DynamoDB and checks nothing live was lost.
async fn dynamodb_killed_mid(sweep: &str) {
    let data = tempfile::tempdir().expect("dynalite's data dir");
    // 40 requests a second: a sweep of 150 records takes about 4 s.
    let mut h = start_on(Dynalite::start_persistent(data.path()), |c| {
        c.throttle = Some(Throttle {
            rps: 40.0,
            burst: 10.0,
        })
    })
    .await;
    let fleet = open_fleet(&h, 50, 0).await;
    let agents = open_agents(&fleet);
    h.stack
        .store()
        .put_batch(&stale_records(100))
        .await
        .expect("seed");
    assert_eq!(h.records().await.len(), 150);

    let tag = Tagger::new(fleet.run()).expect("run").next();
    let args = match sweep {
        "broadcast" => strings(&["broadcast", "--yes", "--data", &tag.to_string()]),
        _ => strings(&[sweep]),
    };
    let child = local_command(h.dir.path(), &args)
        .spawn()
        .expect("wsadmin starts");
    // Kill DynamoDB once the run has deleted some stale records.
    let mut removed = 0;
    for _ in 0..400 {
        removed = 150 - h.records().await.len();
        if removed >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(removed >= 10, "the {sweep} is deleting stale records");
    h.db.kill();
    let killed = Instant::now();
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{sweep} still running {RUN_LIMIT:?} after DynamoDB died"))
        .expect("wsadmin runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "DynamoDB killed mid-{sweep} after {removed} removals: exit {:?}, {:?} after the kill\n{said}",
        out.status.code(),
        killed.elapsed()
    );
    // Not a success, not an interruption: the run failed (1) or is
    // partial (3), and says which endpoint to look at.
    assert!(
        matches!(out.status.code(), Some(1 | 3)),
        "exit {:?}: {said}",
        out.status.code()
    );
    assert!(said.contains(&dynamodb_named(&h)), "{said}");
    assert!(!said.contains("panicked"), "{said}");

    // Back: no live record was lost, and a prune completes the job.
    h.db.restart();
    assert!(
        registered(&h).await.is_superset(&agents),
        "live records kept"
    );
    let p = wsadmin(h.dir.path(), &strings(&["prune", "-o", "json"]), None).await;
    all_succeeded("prune once DynamoDB is back", std::slice::from_ref(&p));
    assert_eq!(p.count("live"), 50, "{}", p.stdout);
    assert_eq!(registered(&h).await, agents, "the registry is the live set");
    assert_eq!(h.records().await.len(), 50);
    let (_, twice) = settled_receivers(&fleet, &tag, Duration::from_millis(300)).await;
    assert_eq!(twice, 0, "nobody got the broadcast twice");

    fleet.close().await;
    h.stop().await;
}

cases! {
    dynamodb_killed_mid:
    faults_dynamodb_killed_mid_prune_the_prune_fails_naming_it_and_no_live_record_is_lost => "prune",
    faults_dynamodb_killed_mid_broadcast_it_fails_naming_it_and_no_live_record_is_lost => "broadcast",
}

/// DynamoDB stalls (SIGSTOP: connections are accepted, never answered).
/// Every DynamoDB call has a timeout, so `prune` ends with an error naming
/// the endpoint instead of hanging. Not in the suite: with a 10 s attempt
/// timeout and its retries a run takes about a minute to give up, more than
/// CI's budget for it. Run by hand:
/// `cargo nextest run -p wsadmin --test suite --run-ignored only stalled`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow by design (a minute of DynamoDB timeouts): run by hand"]
async fn faults_dynamodb_stalled_prune_ends_with_an_error_naming_it() {
    let h = start(|_| {}).await;
    let fleet = open_fleet(&h, 10, 0).await;
    h.db.pause();
    let started = Instant::now();
    let child = local_command(h.dir.path(), &strings(&["prune"]))
        .spawn()
        .expect("wsadmin starts");
    let limit = Duration::from_secs(180);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("prune hangs on a stalled DynamoDB ({limit:?})"))
        .expect("wsadmin runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "DynamoDB stalled: prune exit {:?} after {:?}: {stderr}",
        out.status.code(),
        started.elapsed()
    );
    h.db.resume();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&dynamodb_named(&h)), "{stderr}");
    fleet.close().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------
// disconnect --where while clients come and go

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_disconnect_where_closes_the_selection_and_no_live_connection_loses_its_record() {
    let h = start(|_| {}).await;
    let mut room = Vec::new();
    for i in 0..30 {
        room.push(
            h.client_with(&format!("room7-{i}"), "?room=7", Default::default())
                .await,
        );
    }
    let stay = h.clients("stay", 30, 15).await;

    // Clients outside the selection connect and leave while it runs.
    let done = AtomicBool::new(false);
    let cli = async {
        let out = h
            .local(&["disconnect", "--where", "room=7", "--yes", "-o", "json"])
            .await;
        done.store(true, Ordering::SeqCst);
        out
    };
    let churn = async {
        let mut kept = Vec::new();
        let mut i = 0;
        while !done.load(Ordering::SeqCst) || i < 10 {
            let c = h.client(&format!("churn-{i}")).await;
            if i % 2 == 0 {
                wsadmin_harness::close(c).await;
            } else {
                kept.push(c);
            }
            i += 1;
        }
        kept
    };
    let (out, kept) = tokio::join!(cli, churn);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).expect("json report");
    assert_eq!(out.get_output().status.code(), Some(0), "{v}");
    assert_eq!(v["disconnected"], 30, "{v}");
    for c in &mut room {
        wsadmin_harness::recv_close(&mut c.ws, Duration::from_secs(5)).await;
    }
    let registered: BTreeSet<String> = h.ids().await.into_iter().collect();
    for c in &stay {
        assert!(!c.closed(), "{} was left open", c.agent);
        assert!(registered.contains(&c.id), "{} kept its record", c.agent);
    }
    for c in &kept {
        assert!(registered.contains(&c.id), "{} kept its record", c.id);
    }
    for c in &room {
        assert!(!registered.contains(&c.id), "{}'s record went", c.id);
    }
    h.stop().await;
}

// ---------------------------------------------------------------------------
// The account's throttle is not a client's buffer

/// Fails the test unless `run` exited 0 having met the account's throttle
/// (its rate was cut) without taking a single 429 for one client's full
/// buffer; returns its JSON report.
fn throttled_alone(what: &str, run: &Run) -> Value {
    all_succeeded(what, std::slice::from_ref(run));
    let v = run.json();
    eprintln!(
        "{what} under the account's throttle: {} ms, {} retries, {} 429s taken as the account's, {} as a client's",
        run.took.as_millis(),
        v["retries"],
        v["throttled"],
        v["backpressure"]
    );
    assert_eq!(v["failed"], 0, "{what}: {v}");
    assert_eq!(
        v["failures"]["byKind"].get("client_backpressure"),
        None,
        "{what}: {v}"
    );
    assert_eq!(v["backpressure"], 0, "{what}: no 429 is a client's: {v}");
    assert!(
        v["throttled"].as_u64() > Some(0),
        "{what} met the throttle: {v}"
    );
    v
}

/// The local stack throttled as `wsstack local --throttle-rps 50
/// --throttle-burst 25` (the issue saw it at 500 on a faster build; a debug
/// build on 2 shared cores makes a few hundred requests a second, and
/// closes connections slower still): prune (GetConnection), a small
/// broadcast (PostToConnection to clients that read) and a bulk disconnect
/// (DeleteConnection) over 200 real clients each outrun it. No 429 is taken
/// for a client's buffer, nobody fails, everyone is probed, delivered to
/// once and closed, and each run exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_the_accounts_429s_are_never_taken_for_a_clients_backpressure() {
    let h = start(|c| {
        c.throttle = Some(Throttle {
            rps: 50.0,
            burst: 25.0,
        });
        // No $disconnect: the bulk disconnect's own record deletes are the
        // only writes, so it too outruns the throttle.
        c.drop_disconnect_rate = 1.0;
    })
    .await;
    let fleet = open_fleet(&h, 200, 0).await;
    let home = h.dir.path();

    let prune = wsadmin(home, &strings(&["prune", "-o", "json"]), None).await;
    let v = throttled_alone("prune", &prune);
    assert_eq!(v["live"], 200, "everyone probed: {v}");

    let tag = Tagger::new(fleet.run()).expect("run").next();
    let args = broadcast_json(&tag);
    let run = wsadmin(home, &args, Some(tag.clone())).await;
    let v = throttled_alone("broadcast", &run);
    assert_eq!(v["delivered"], 200, "{v}");
    let (got, twice) = received_then_settled(&fleet, &tag).await;
    assert_eq!((got, twice), (200, 0), "everyone got it once");

    let disconnect = wsadmin(
        home,
        &strings(&["disconnect", "--all", "--yes", "-o", "json"]),
        None,
    )
    .await;
    let v = throttled_alone("disconnect", &disconnect);
    assert_eq!(v["disconnected"], 200, "{v}");
    let closed = support::eventually(10, || fleet.open_clients().is_empty()).await;
    assert!(closed, "{} clients still open", fleet.open_clients().len());

    fleet.close().await;
    h.stop().await;
}

// ---------------------------------------------------------------------------
// An interrupted sweep accounts for what its scan never examined

/// The selection of the interrupted sweeps: 150 live clients and 100 stale
/// records in room `big`, 100 clients elsewhere.
const BIG: u64 = 250;
const IN_TABLE: u64 = 350;

/// Records of `room` `big` whose connections left an hour ago: each sweep
/// deletes the ones it meets (the stale rule), which shows it under way.
fn stale_in_big(n: usize) -> Vec<ConnectionRecord> {
    stale_records(n)
        .into_iter()
        .map(|mut r| {
            r.meta.insert("room".to_owned(), "big".to_owned());
            r
        })
        .collect()
}

async fn stale_left(h: &Harness) -> usize {
    h.records()
        .await
        .iter()
        .filter(|r| r.connection_id.starts_with("STALE"))
        .count()
}

/// Runs `wsadmin --context local ARGS`, sends SIGINT once it has deleted
/// 5 stale records, and returns its exit status, stdout and stderr.
async fn interrupted_once_under_way(h: &Harness, args: &[String]) -> (Option<i32>, String, String) {
    let before = stale_left(h).await;
    let child = local_command(h.dir.path(), args)
        .spawn()
        .expect("wsadmin starts");
    let pid = child.id().expect("running");
    let mut under_way = false;
    for _ in 0..300 {
        if stale_left(h).await + 5 <= before {
            under_way = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(under_way, "wsadmin {args:?} is deleting stale records");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("wsadmin {args:?} still running {RUN_LIMIT:?} after SIGINT"))
        .expect("wsadmin runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `command` over room `big`, slowly (20 requests a second), interrupted
/// twice once under way: its report, as JSON (the last line of `-o
/// ndjson`) and as the summary, says the scan stopped early, how far it
/// got, and about how many records it never examined, so that every
/// selected connection is either a target or among those.
async fn interrupted_sweep_accounts_for_what_it_never_examined(command: &str) {
    let h = start(|_| {}).await;
    let big = Fleet::open(FleetConfig {
        meta: vec![("room".to_owned(), "big".to_owned())],
        deadline: Duration::from_secs(240),
        ..FleetConfig::new(h.stack.websocket_url(), 150)
    })
    .await
    .expect("room big opens");
    let small = Fleet::open(FleetConfig {
        meta: vec![("room".to_owned(), "small".to_owned())],
        deadline: Duration::from_secs(240),
        ..FleetConfig::new(h.stack.websocket_url(), 100)
    })
    .await
    .expect("room small opens");
    h.stack
        .store()
        .put_batch(&stale_in_big(100))
        .await
        .expect("seed");
    let args = |output: &str| {
        let mut args = strings(&[command]);
        if command == "broadcast" {
            args.extend(strings(&["--yes", "--data", "hello"]));
        }
        if command == "disconnect" {
            args.push("--yes".to_owned());
        }
        args.extend(strings(&[
            "--where",
            "room=big",
            "--rate",
            "20",
            "--concurrency",
            "8",
            "-o",
            output,
        ]));
        args
    };

    // -o ndjson: the targets as they end, then the report.
    let in_table = h.records().await.len() as u64;
    assert_eq!(in_table, IN_TABLE);
    let (code, stdout, stderr) = interrupted_once_under_way(&h, &args("ndjson")).await;
    assert_eq!(code, Some(130), "{command}: {stderr}");
    let v: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{command}: a report last: {stdout}"));
    eprintln!("{command} interrupted: {}", v["scan"]);
    assert_eq!(v["stopped"]["reason"], "interrupted", "{v}");
    let scan = &v["scan"];
    assert_eq!(scan["complete"], false, "{command}: {v}");
    assert_eq!(scan["segments"], 4, "{v}");
    let done = scan["segmentsDone"].as_u64().expect("segmentsDone");
    assert!((1..=4).contains(&done), "{v}");
    assert!(scan["pages"].as_u64() >= Some(1), "{v}");
    let examined = scan["recordsExamined"].as_u64().expect("recordsExamined");
    let read = scan["recordsRead"].as_u64().expect("recordsRead");
    assert!(examined < in_table && examined <= read, "{v}");
    let unexamined = scan["recordsUnexamined"]
        .as_u64()
        .unwrap_or_else(|| panic!("{command}: how many were never examined: {v}"));
    assert_eq!(scan["estimated"], done < 4, "{v}");
    // Exact when every segment was read whole; otherwise estimated from
    // those that were (segments are hash ranges: within a third).
    let total = examined + unexamined;
    if done == 4 {
        assert_eq!(total, in_table, "{v}");
    } else {
        assert!(total.abs_diff(in_table) <= in_table / 3, "{v}");
    }
    let targeted = v["targeted"].as_u64().expect("targeted");
    assert!(targeted <= examined && targeted < BIG, "{v}");
    // Every matching connection is accounted for: a target, or among the
    // records never examined.
    assert!(
        targeted + unexamined + in_table / 3 >= BIG,
        "{command}: {BIG} selected, {targeted} targeted, about {unexamined} never examined: {v}"
    );

    // The summary says it too.
    let (code, stdout, stderr) = interrupted_once_under_way(&h, &args("table")).await;
    assert_eq!(code, Some(130), "{command}: {stderr}");
    eprintln!("{command} interrupted, the summary:\n{stdout}");
    assert!(stdout.contains("interrupted: "), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("scan stopped early: "))
        .unwrap_or_else(|| panic!("{command}: the scan's line: {stdout}"));
    assert!(
        line.contains("records examined") && line.contains("never examined"),
        "{line}"
    );
    assert!(line.contains(" of 4 segments finished"), "{line}");
    assert!(
        stdout.contains("matching connections among the records not examined were not reached"),
        "{stdout}"
    );

    big.close().await;
    small.close().await;
    h.stop().await;
}

cases! {
    interrupted_sweep_accounts_for_what_it_never_examined:
    interrupted_broadcast_accounts_for_what_its_scan_never_examined => "broadcast",
    interrupted_prune_accounts_for_what_its_scan_never_examined => "prune",
    interrupted_disconnect_accounts_for_what_its_scan_never_examined => "disconnect",
}
