//! Completeness and latency per tagged message, from client logs. Pure: a
//! function over snapshots and a clock reading.
//!
//! A message tagged T was owed to every client *connected throughout* its
//! window: connected at or before T's `sent_at_ms` and not closed before
//! `sent_at_ms + settle`. Among those, each got it exactly once, never
//! (missing) or more than once (duplicated). Clients outside the window that
//! got it anyway are counted apart: they prove nothing either way. Latency
//! is from `sent_at_ms` to each owed client's first receipt.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use crate::client::{ClientLog, CloseHow};
use crate::tag::Tag;

/// At most this many client numbers are listed per message and outcome.
pub const LISTED_CLIENTS: usize = 100;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Every expected tag and every tag some client received, in order.
    pub messages: Vec<MessageReport>,
    /// Latency over every message's owed receipts.
    pub latency: Option<Latency>,
    pub clients: ClientCounts,
    /// Messages received without a tag (error frames, other traffic).
    pub untagged: u64,
}

impl Report {
    pub fn message(&self, tag: &Tag) -> Option<&MessageReport> {
        self.messages.iter().find(|m| &m.tag == tag)
    }

    /// True when some settled message was missed by a client that reads, or
    /// duplicated: what a reliability run must not see.
    pub fn has_losses(&self) -> bool {
        self.messages
            .iter()
            .any(|m| m.settled && (m.missing > m.missing_never_read || m.duplicated > 0))
    }
}

/// One message's fate across the fleet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageReport {
    pub tag: Tag,
    /// Clients connected throughout its window: those that were owed it.
    pub connected_throughout: usize,
    pub exactly_once: usize,
    pub missing: usize,
    /// Of `missing`, clients that never read (expected to miss).
    pub missing_never_read: usize,
    pub duplicated: usize,
    /// Clients not connected throughout that received it anyway.
    pub received_outside: usize,
    /// Its window has ended: `missing` is final.
    pub settled: bool,
    /// The first [`LISTED_CLIENTS`] client numbers that missed it.
    pub missing_clients: Vec<usize>,
    /// The first [`LISTED_CLIENTS`] client numbers that got it twice or more.
    pub duplicated_clients: Vec<usize>,
    pub latency: Option<Latency>,
}

/// Delivery latency in milliseconds, nearest-rank percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub count: usize,
    pub p50_ms: u64,
    pub p90_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

impl Latency {
    /// `None` for no samples.
    pub fn of(mut samples: Vec<u64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let k = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[k.clamp(1, samples.len()) - 1]
        };
        Some(Self {
            count: samples.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: samples[samples.len() - 1],
        })
    }
}

/// The fleet's clients by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCounts {
    /// Every client that completed its handshake.
    pub opened: usize,
    pub open: usize,
    pub closed_clean: usize,
    pub dropped: usize,
    pub closed_by_server: usize,
    pub failed: usize,
}

impl ClientCounts {
    pub fn of(clients: &[ClientLog]) -> Self {
        let mut c = Self {
            opened: clients.len(),
            ..Self::default()
        };
        for client in clients {
            match client.closed.as_ref().map(|c| &c.how) {
                None => c.open += 1,
                Some(CloseHow::Clean) => c.closed_clean += 1,
                Some(CloseHow::Dropped) => c.dropped += 1,
                Some(CloseHow::ByServer { .. }) => c.closed_by_server += 1,
                Some(CloseHow::Failed { .. }) => c.failed += 1,
            }
        }
        c
    }
}

/// The report of `clients` at `now_ms`, for the tags they received plus
/// `expected` (so a message nobody got still shows, all missing).
pub fn report(clients: &[ClientLog], expected: &[Tag], settle: Duration, now_ms: u64) -> Report {
    let settle_ms = settle.as_millis() as u64;
    let mut tags: BTreeMap<&Tag, Acc> = expected.iter().map(|t| (t, Acc::default())).collect();
    let mut untagged = 0;
    for client in clients {
        for r in &client.received {
            match &r.tag {
                Some(tag) => {
                    tags.entry(tag).or_default();
                }
                None => untagged += 1,
            }
        }
    }
    let mut all_latencies = Vec::new();
    for client in clients {
        // This client's receipts per tag: how many, and the first's time.
        let mut got: HashMap<&Tag, (usize, u64)> = HashMap::new();
        for r in &client.received {
            if let Some(tag) = &r.tag {
                let e = got.entry(tag).or_insert((0, r.at_ms));
                e.0 += 1;
                e.1 = e.1.min(r.at_ms);
            }
        }
        for (tag, acc) in tags.iter_mut() {
            let owed = client.open_throughout(tag.sent_at_ms, tag.sent_at_ms + settle_ms);
            let (count, first_at) = got.get(tag).copied().unwrap_or((0, 0));
            if !owed {
                acc.outside += usize::from(count > 0);
                continue;
            }
            acc.owed += 1;
            match count {
                0 => {
                    acc.missing += 1;
                    acc.missing_never_read += usize::from(client.never_reads);
                    push_listed(&mut acc.missing_clients, client.index);
                }
                1 => acc.once += 1,
                _ => {
                    acc.duplicated += 1;
                    push_listed(&mut acc.duplicated_clients, client.index);
                }
            }
            if count > 0 {
                acc.latencies.push(first_at.saturating_sub(tag.sent_at_ms));
            }
        }
    }
    let messages = tags
        .into_iter()
        .map(|(tag, acc)| {
            all_latencies.extend_from_slice(&acc.latencies);
            MessageReport {
                tag: tag.clone(),
                connected_throughout: acc.owed,
                exactly_once: acc.once,
                missing: acc.missing,
                missing_never_read: acc.missing_never_read,
                duplicated: acc.duplicated,
                received_outside: acc.outside,
                settled: now_ms >= tag.sent_at_ms + settle_ms,
                missing_clients: acc.missing_clients,
                duplicated_clients: acc.duplicated_clients,
                latency: Latency::of(acc.latencies),
            }
        })
        .collect();
    Report {
        messages,
        latency: Latency::of(all_latencies),
        clients: ClientCounts::of(clients),
        untagged,
    }
}

#[derive(Debug, Default)]
struct Acc {
    owed: usize,
    once: usize,
    missing: usize,
    missing_never_read: usize,
    duplicated: usize,
    outside: usize,
    missing_clients: Vec<usize>,
    duplicated_clients: Vec<usize>,
    latencies: Vec<u64>,
}

fn push_listed(list: &mut Vec<usize>, index: usize) {
    if list.len() < LISTED_CLIENTS {
        list.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Closed, Received};

    fn tag(seq: u64, sent_at_ms: u64) -> Tag {
        Tag {
            run: "t".into(),
            seq,
            sent_at_ms,
        }
    }

    fn client(index: usize, connected_at_ms: u64, closed_at: Option<u64>) -> ClientLog {
        ClientLog {
            index,
            user_agent: format!("wsload/t/{index}"),
            never_reads: false,
            connected_at_ms,
            closed: closed_at.map(|at_ms| Closed {
                at_ms,
                how: CloseHow::Dropped,
            }),
            received: vec![],
            sent: 0,
        }
    }

    fn got(c: &mut ClientLog, tag: &Tag, at_ms: u64) {
        c.received.push(Received {
            at_ms,
            len: 10,
            tag: Some(tag.clone()),
            text: None,
        });
    }

    #[test]
    fn owed_clients_are_counted_once_missing_or_duplicated() {
        let t = tag(1, 1_000);
        let mut once = client(0, 500, None);
        got(&mut once, &t, 1_004);
        let missing = client(1, 500, None);
        let mut twice = client(2, 500, Some(5_000));
        got(&mut twice, &t, 1_002);
        got(&mut twice, &t, 1_010);
        let mut never = client(3, 500, None);
        never.never_reads = true;
        // Joined after it was sent, got it anyway: outside, not owed.
        let mut late = client(4, 1_001, None);
        got(&mut late, &t, 1_003);
        // Left during the settle window: not owed either.
        let left = client(5, 500, Some(1_500));

        let r = report(
            &[once, missing, twice, never, late, left],
            &[],
            Duration::from_secs(1),
            3_000,
        );
        assert_eq!(r.messages.len(), 1);
        let m = &r.messages[0];
        assert_eq!(m.tag, t);
        assert_eq!(m.connected_throughout, 4);
        assert_eq!(m.exactly_once, 1);
        assert_eq!(m.missing, 2);
        assert_eq!(m.missing_never_read, 1);
        assert_eq!(m.missing_clients, vec![1, 3]);
        assert_eq!(m.duplicated, 1);
        assert_eq!(m.duplicated_clients, vec![2]);
        assert_eq!(m.received_outside, 1);
        assert!(m.settled);
        // Latency from the first receipt of each owed client: 4 ms and 2 ms.
        let l = m.latency.expect("latency");
        assert_eq!((l.count, l.p50_ms, l.max_ms), (2, 2, 4));
        assert!(r.has_losses());
        assert_eq!(r.clients.open, 4);
        assert_eq!(r.clients.dropped, 2);
    }

    #[test]
    fn an_expected_message_nobody_got_is_all_missing_and_unsettled_until_its_window_ends() {
        let t = tag(9, 1_000);
        let clients = [client(0, 0, None), client(1, 0, None)];
        let r = report(
            &clients,
            std::slice::from_ref(&t),
            Duration::from_secs(2),
            2_999,
        );
        let m = r.message(&t).expect("listed");
        assert_eq!((m.connected_throughout, m.missing), (2, 2));
        assert!(!m.settled);
        assert!(m.latency.is_none());
        // Unsettled losses are not yet losses.
        assert!(!r.has_losses());
        let r = report(
            &clients,
            std::slice::from_ref(&t),
            Duration::from_secs(2),
            3_000,
        );
        assert!(r.has_losses());
    }

    #[test]
    fn never_read_clients_missing_is_not_a_loss() {
        let t = tag(1, 1_000);
        let mut reader = client(0, 0, None);
        got(&mut reader, &t, 1_001);
        let mut never = client(1, 0, None);
        never.never_reads = true;
        let r = report(&[reader, never], &[], Duration::ZERO, 5_000);
        assert_eq!(r.messages[0].missing_never_read, 1);
        assert!(!r.has_losses());
    }

    #[test]
    fn untagged_messages_are_counted_apart() {
        let mut c = client(0, 0, None);
        c.received.push(Received {
            at_ms: 1,
            len: 5,
            tag: None,
            text: Some("hello".into()),
        });
        let r = report(&[c], &[], Duration::ZERO, 5);
        assert!(r.messages.is_empty());
        assert_eq!(r.untagged, 1);
        assert!(r.latency.is_none());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).collect()).expect("samples");
        assert_eq!((l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms), (50, 90, 99, 100));
        let l = Latency::of(vec![7]).expect("samples");
        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (7, 7, 7));
        assert_eq!(Latency::of(vec![]), None);
    }
}
