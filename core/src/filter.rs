//! Which connections a command operates on: `--older-than`, `--idle-over`
//! and `--where key=value`, as a value matched against records (and, for
//! idleness, against what GetConnection says). Pure: the clock is a
//! parameter, so tests need neither sockets nor sleeps.

use std::time::Duration;

use crate::gateway::ConnectionInfo;
use crate::record::{ATTR_SOURCE_IP, ATTR_USER_AGENT, ConnectionRecord};

/// One `--where key=value` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid filter {input:?}: {reason} (use key=value, as in user=ana or sourceIp=203.0.113.9)"
)]
pub struct WhereError {
    pub input: String,
    pub reason: &'static str,
}

impl std::str::FromStr for Where {
    type Err = WhereError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| WhereError {
            input: input.to_owned(),
            reason,
        };
        let (key, value) = input.split_once('=').ok_or_else(|| err("it has no ="))?;
        if key.trim().is_empty() {
            return Err(err("the key is empty"));
        }
        Ok(Self {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        })
    }
}

impl Where {
    /// `sourceIp` matches exactly, `userAgent` as a substring, any other key
    /// names a `meta` entry (a `$connect` query parameter) matched exactly.
    pub fn matches(&self, record: &ConnectionRecord) -> bool {
        match self.key.as_str() {
            ATTR_SOURCE_IP => record.source_ip.as_deref() == Some(self.value.as_str()),
            ATTR_USER_AGENT => record
                .user_agent
                .as_deref()
                .is_some_and(|ua| ua.contains(&self.value)),
            key => record.meta.get(key) == Some(&self.value),
        }
    }
}

/// All clauses must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Connected longer ago than this (records without `connectedAt` never match).
    pub older_than: Option<Duration>,
    /// No message either way for longer than this (needs GetConnection).
    pub idle_over: Option<Duration>,
    pub wheres: Vec<Where>,
}

impl Filter {
    /// Whether matching needs the live view of each connection.
    pub fn needs_live(&self) -> bool {
        self.idle_over.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.idle_over.is_none() && self.wheres.is_empty()
    }

    /// The clauses a record alone decides. `now_ms` is epoch milliseconds.
    pub fn matches_record(&self, record: &ConnectionRecord, now_ms: i64) -> bool {
        if let Some(min) = self.older_than {
            match record.connected_at {
                Some(at) if age(at, now_ms) > min => {}
                _ => return false,
            }
        }
        self.wheres.iter().all(|w| w.matches(record))
    }

    /// The clauses that need GetConnection; `None` means the connection is
    /// not live, which never matches `--idle-over`.
    pub fn matches_live(&self, info: Option<&ConnectionInfo>, now_ms: i64) -> bool {
        match self.idle_over {
            None => true,
            Some(min) => info
                .and_then(|i| idle(i, now_ms))
                .is_some_and(|idle| idle > min),
        }
    }
}

/// Time since `at_ms`, zero for times in the future (clock skew).
pub fn age(at_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(at_ms).max(0) as u64)
}

/// Time since the last message either way (or since connecting, when the
/// service reports no activity).
pub fn idle(info: &ConnectionInfo, now_ms: i64) -> Option<Duration> {
    info.last_active_at
        .or(info.connected_at)
        .map(|at| age(at, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ConnectionRecord {
        let mut r = ConnectionRecord::new("abc=").connected_at(1_000_000);
        r.source_ip = Some("203.0.113.9".into());
        r.user_agent = Some("Mozilla/5.0 (X11)".into());
        r.meta.insert("user".into(), "ana".into());
        r
    }

    #[test]
    fn where_clauses_parse_and_match() {
        let w = |s: &str| s.parse::<Where>().expect(s);
        let r = record();
        assert!(w("user=ana").matches(&r));
        assert!(!w("user=bob").matches(&r));
        assert!(!w("room=7").matches(&r));
        assert!(w("sourceIp=203.0.113.9").matches(&r));
        assert!(!w("sourceIp=203.0.113").matches(&r), "IPs match exactly");
        assert!(w("userAgent=X11").matches(&r), "user agents by substring");
        assert!(w("user=").matches(&ConnectionRecord {
            meta: [("user".to_owned(), String::new())].into(),
            ..ConnectionRecord::new("x")
        }));
        for bad in ["user", "=ana", ""] {
            let e = bad.parse::<Where>().expect_err(bad);
            assert!(e.to_string().contains("use key=value"), "{e}");
        }
    }

    #[test]
    fn age_and_idleness_use_the_given_clock() {
        let f = Filter {
            older_than: Some(Duration::from_secs(60)),
            ..Filter::default()
        };
        assert!(!f.matches_record(&record(), 1_000_000 + 60_000));
        assert!(f.matches_record(&record(), 1_000_000 + 60_001));
        assert!(!f.matches_record(&ConnectionRecord::new("x"), i64::MAX));

        let f = Filter {
            idle_over: Some(Duration::from_secs(10)),
            ..Filter::default()
        };
        assert!(f.needs_live());
        let info = ConnectionInfo {
            connected_at: Some(0),
            last_active_at: Some(50_000),
            source_ip: None,
            user_agent: None,
        };
        assert!(!f.matches_live(Some(&info), 60_000));
        assert!(f.matches_live(Some(&info), 60_001));
        assert!(!f.matches_live(None, 60_001), "gone never counts as idle");
        assert_eq!(age(10, 5), Duration::ZERO);
    }
}
