//! The mark a test puts in each message it sends, so receipts can be
//! counted per message and timed: `wsload:<run>:<seq>:<sent_at_ms>`. It is
//! plain text, so it survives any route (a `wsadmin broadcast` argument, the
//! `message` route's `data`, or a field of a JSON object), and a shell can
//! make one: `wsload:myrun:1:$(date +%s%3N)`. Pure.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::{LoadError, now_ms};

pub const TAG_PREFIX: &str = "wsload:";

/// One message's identity and the time it was sent (epoch milliseconds, the
/// clock receipts are stamped with: same machine, so latencies are exact to
/// the millisecond).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub run: String,
    pub seq: u64,
    pub sent_at_ms: u64,
}

impl Tag {
    /// A tag stamped now.
    pub fn new(run: &str, seq: u64) -> Self {
        Self {
            run: run.to_owned(),
            seq,
            sent_at_ms: now_ms(),
        }
    }

    /// The first tag in `text`, wherever it is (bare, in a JSON string...).
    pub fn find(text: &str) -> Option<Self> {
        let mut rest = text;
        while let Some(at) = rest.find(TAG_PREFIX) {
            rest = &rest[at + TAG_PREFIX.len()..];
            if let Some(tag) = Self::parse_fields(rest) {
                return Some(tag);
            }
        }
        None
    }

    /// `run:seq:ms`, followed by anything that cannot continue a number.
    fn parse_fields(s: &str) -> Option<Self> {
        let (run, rest) = s.split_once(':')?;
        if !valid_run(run) {
            return None;
        }
        let (seq, rest) = rest.split_once(':')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        Some(Self {
            run: run.to_owned(),
            seq: seq.parse().ok()?,
            sent_at_ms: rest[..digits].parse().ok()?,
        })
    }

    /// The body the stack's `message` route broadcasts: `{"type": "message",
    /// "data": "<tag>"}`.
    pub fn message_route_body(&self) -> String {
        serde_json::json!({"type": "message", "data": self.to_string()}).to_string()
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG_PREFIX}{}:{}:{}",
            self.run, self.seq, self.sent_at_ms
        )
    }
}

/// 1 to 32 of `[A-Za-z0-9_-]`: safe in a tag, a user agent and a terminal.
pub fn valid_run(run: &str) -> bool {
    (1..=32).contains(&run.len())
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A run's tags, numbered from 1.
#[derive(Debug)]
pub struct Tagger {
    run: String,
    next: AtomicU64,
}

impl Tagger {
    pub fn new(run: &str) -> Result<Self, LoadError> {
        if !valid_run(run) {
            return Err(LoadError::Run {
                input: run.to_owned(),
            });
        }
        Ok(Self {
            run: run.to_owned(),
            next: AtomicU64::new(1),
        })
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    /// The next tag, stamped now.
    pub fn next(&self) -> Tag {
        Tag::new(&self.run, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// A fresh run name, like `r3k9x2a`: unique enough to tell runs apart in a
/// registry that other runs used.
pub fn random_run() -> String {
    let mut n = fastrand::u64(..) ^ now_ms();
    let mut s = String::from("r");
    for _ in 0..8 {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_reads_back_wherever_it_is() {
        let tag = Tag {
            run: "r1".into(),
            seq: 7,
            sent_at_ms: 1_700_000_000_123,
        };
        let text = tag.to_string();
        assert_eq!(text, "wsload:r1:7:1700000000123");
        assert_eq!(Tag::find(&text), Some(tag.clone()));
        assert_eq!(
            Tag::find(&format!(r#"{{"tag":"{text}","pad":"xx"}}"#)),
            Some(tag.clone())
        );
        let body: serde_json::Value =
            serde_json::from_str(&tag.message_route_body()).expect("json");
        assert_eq!(body["type"], "message");
        assert_eq!(body["data"], text.as_str());
    }

    #[test]
    fn broken_tags_are_skipped() {
        assert_eq!(Tag::find("hello"), None);
        assert_eq!(Tag::find("wsload:"), None);
        assert_eq!(Tag::find("wsload:r1:x:5"), None);
        assert_eq!(Tag::find("wsload:r1:1:"), None);
        assert_eq!(Tag::find("wsload:bad run:1:2"), None);
        // A broken one does not hide a good one after it.
        assert_eq!(
            Tag::find("wsload:r1 wsload:r2:3:4").map(|t| t.run),
            Some("r2".into())
        );
    }

    #[test]
    fn taggers_number_their_messages() {
        let t = Tagger::new("run-1").expect("run");
        assert_eq!(t.next().seq, 1);
        assert_eq!(t.next().seq, 2);
        assert!(Tagger::new("").is_err());
        assert!(Tagger::new("a:b").is_err());
        assert!(Tagger::new(&"x".repeat(33)).is_err());
        assert!(valid_run(&random_run()));
    }
}
