//! A broadcast's checkpoint: a file that lets a broadcast stopped half-way
//! (Ctrl-C, a killed process, a lost shell) be finished later without
//! posting to anyone twice.
//!
//! It owns the file and the bookkeeping; the broadcast stays the one sweep
//! ([`crate::fanout::broadcast_with`]): the checkpoint is told of each page
//! the scan reads ([`Checkpoint::page`]), of each post about to be made
//! ([`Checkpoint::posting`]) and of each subject's outcome
//! ([`Checkpoint::finished`]).
//!
//! What it keeps is bounded: per scan segment, the position (DynamoDB's
//! LastEvaluatedKey) after the last page whose every record is finished,
//! and the ids finished in the pages past it (pages in flight); the ids
//! whose post was begun but never ended (in doubt); and cumulative counts.
//!
//! The file is JSON lines, append-only between snapshots. Line 1 is a
//! snapshot (the format's version, what makes a run the same broadcast,
//! the state); each later line one event (`post`, `done`, `undone`,
//! `commit`). An event is one `write(2)` of one whole line, made before the
//! post it announces: a process killed at any point (SIGKILL included)
//! leaves whole lines in the page cache, which outlive it. Every
//! [`COMPACT_EVERY`] events, and at the end, the state is written as a new
//! snapshot to `FILE.tmp`, fsync'd and renamed over `FILE` (atomic), so the
//! file stays bounded; a machine crash loses at most the events since the
//! last snapshot (a line cut short is then refused, never guessed at).
//!
//! A post announced but never ended is *in doubt*: the request may have
//! reached API Gateway. Its `post` event carries the time it was made
//! (this machine's clock), and a snapshot keeps the posts in flight with
//! theirs. A resume settles each before posting anything
//! ([`Resuming::doubts`], [`judge`], [`Resuming::settle`]): GetConnection
//! says when the connection was last active, and API Gateway counts a
//! message sent to the client as activity. Active at or after the post:
//! delivered. Live and quiet since, or gone: posted again by the resumed
//! sweep (a gone one is then settled by the stale rule). No time, no
//! answer: left in doubt and never posted again (a message is never sent
//! twice on a guess); the report counts and lists them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::clock::system_now_ms;
use crate::gateway::ConnectionInfo;
use crate::record::ConnectionRecord;
use crate::stale::RecordFate;
use crate::store::{Cursor, Page};
use crate::sweep::{Outcome, SweepReport};

/// The format this code writes; it reads this one and the earlier ones
/// (format 1's posts carry no time: in doubt they stay in doubt), and
/// refuses a later one. Format 2 added the post's time and the snapshot's
/// posts in flight.
pub const VERSION: u32 = 2;

/// The first line's marker: what the file is, and its format's version.
const MAGIC: &str = "wsadminBroadcastCheckpoint";

/// Events between snapshots.
pub const COMPACT_EVERY: u64 = 10_000;

/// In-doubt ids kept by name (all are counted).
const KEEP_IN_DOUBT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {what} checkpoint {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "checkpoint {0} already exists (finish it with --resume {0}, or remove it)",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("checkpoint {} is damaged at line {line}: {why} (it cannot be resumed safely)", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("checkpoint {} was written by a newer wsadmin (format {found}, this one reads {VERSION})", path.display())]
    Newer { path: PathBuf, found: u64 },
    #[error("checkpoint {} is for a different broadcast: {what}", path.display())]
    Mismatch { path: PathBuf, what: String },
    #[error(
        "cannot checkpoint a scan position: key attribute {attribute:?} is not a string, number or binary"
    )]
    Key { attribute: String },
}

/// What makes two runs the same broadcast; a resume must match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// SHA-256 of the message, hex.
    pub message_sha256: String,
    pub message_bytes: usize,
    /// The selection as the flags said it (`""`: everyone).
    pub selector: String,
    pub table: String,
    /// The DynamoDB endpoint the registry was read at.
    pub dynamodb: String,
    /// The Management API endpoint posted to.
    pub endpoint: String,
    /// Scan segments (a position is per segment: a resume keeps them).
    pub segments: u32,
    /// Keep every finished connection id for the whole run, not just those
    /// of pages in flight: for registries where one connection has several
    /// items (a connection must be posted once however many it has). Off,
    /// the state is bounded by the pages in flight; on, by the connections.
    #[serde(default)]
    pub whole_run_ids: bool,
}

impl Identity {
    pub fn message_hash(message: &[u8]) -> String {
        Sha256::digest(message)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The first difference from `other` (the checkpoint's), in words.
    fn difference(&self, saved: &Identity) -> Option<String> {
        let differs = |what: &str, now: &str, then: &str| {
            Some(format!(
                "{what} {now:?} differs from the checkpoint's {then:?}"
            ))
        };
        if self.message_sha256 != saved.message_sha256 || self.message_bytes != saved.message_bytes
        {
            return Some(format!(
                "the message differs ({} bytes, sha256 {}…; the checkpoint's: {} bytes, sha256 {}…)",
                self.message_bytes,
                &self.message_sha256[..12.min(self.message_sha256.len())],
                saved.message_bytes,
                &saved.message_sha256[..12.min(saved.message_sha256.len())],
            ));
        }
        if self.selector != saved.selector {
            let show = |s: &str| {
                if s.is_empty() {
                    "every connection".to_owned()
                } else {
                    s.to_owned()
                }
            };
            return Some(format!(
                "the selection {:?} differs from the checkpoint's {:?}",
                show(&self.selector),
                show(&saved.selector)
            ));
        }
        if self.table != saved.table {
            return differs("table", &self.table, &saved.table);
        }
        if self.dynamodb != saved.dynamodb {
            return differs("DynamoDB endpoint", &self.dynamodb, &saved.dynamodb);
        }
        if self.endpoint != saved.endpoint {
            return differs("Management API endpoint", &self.endpoint, &saved.endpoint);
        }
        None
    }
}

/// Counts of finished subjects across every run of one broadcast, as the
/// report counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub delivered: u64,
    pub gone: u64,
    pub connecting: u64,
    pub marked: u64,
    pub failed: u64,
    pub cleanup_failed: u64,
    #[serde(default)]
    pub repeats: u64,
    pub records_removed: u64,
    pub already_removed: u64,
    /// Failures by kind.
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
    /// Posts begun by a run that never told how they ended (killed): never
    /// posted again.
    pub in_doubt: u64,
    /// The first in-doubt ids.
    #[serde(default)]
    pub in_doubt_ids: Vec<String>,
    /// Posts in doubt a resume settled as delivered: the connection was
    /// active at or after the post (counted in `delivered` too).
    #[serde(default)]
    pub settled_delivered: u64,
    /// Posts in doubt a resume posted again: the connection was quiet
    /// since, or gone (counted by how that post ended).
    #[serde(default)]
    pub settled_again: u64,
    /// Runs before this one, and their time (killed runs' time is lost).
    pub runs: u32,
    pub elapsed_ms: u64,
}

impl Totals {
    fn add(&mut self, done: &Done) {
        match done {
            Done::Delivered => self.delivered += 1,
            Done::Removed => {
                self.gone += 1;
                self.records_removed += 1;
            }
            Done::AlreadyRemoved => {
                self.gone += 1;
                self.already_removed += 1;
            }
            Done::Gone => self.gone += 1,
            Done::Connecting => self.connecting += 1,
            Done::Marked => self.marked += 1,
            Done::Failed(kind) => {
                self.failed += 1;
                *self.failures.entry(kind.clone()).or_insert(0) += 1;
            }
            Done::CleanupFailed(kind) => {
                self.cleanup_failed += 1;
                *self.failures.entry(kind.clone()).or_insert(0) += 1;
            }
            Done::Repeat { removed } => {
                self.repeats += 1;
                self.records_removed += u64::from(*removed);
            }
        }
    }

    fn in_doubt(&mut self, id: &str) {
        self.in_doubt += 1;
        if self.in_doubt_ids.len() < KEEP_IN_DOUBT {
            self.in_doubt_ids.push(id.to_owned());
        }
    }

    /// Adds the earlier runs' counts to this run's report: the report then
    /// tells the whole broadcast.
    pub fn add_to(&self, report: &mut SweepReport) {
        let finished = self.delivered
            + self.gone
            + self.connecting
            + self.marked
            + self.failed
            + self.cleanup_failed
            + self.repeats;
        report.targeted += finished;
        report.delivered += self.delivered;
        report.gone += self.gone;
        report.connecting += self.connecting;
        report.marked += self.marked;
        report.failed += self.failed;
        report.cleanup_failed += self.cleanup_failed;
        report.repeats += self.repeats;
        report.records_removed += self.records_removed;
        report.already_removed += self.already_removed;
        report.elapsed_ms += self.elapsed_ms;
        for (kind, n) in &self.failures {
            report.failures.total += n;
            // Kinds are the few static names of `failure.rs`; one leaked
            // copy per kind and run is what a `&'static str` key costs.
            let kind: &'static str = Box::leak(kind.clone().into_boxed_str());
            *report.failures.by_kind.entry(kind).or_insert(0) += n;
        }
    }
}

/// How one subject ended, as the file says it (only outcomes that end a
/// subject for good: a subject not attempted is done by a later run).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Done {
    Delivered,
    Removed,
    AlreadyRemoved,
    /// Gone, its record left (a dry run or no cleanup).
    Gone,
    Connecting,
    Marked,
    Failed(String),
    CleanupFailed(String),
    /// Another item of a connection already acted on.
    Repeat {
        removed: bool,
    },
}

impl Done {
    fn of(outcome: &Outcome) -> Option<Self> {
        Some(match outcome {
            Outcome::Delivered => Done::Delivered,
            Outcome::Gone(RecordFate::Removed) => Done::Removed,
            Outcome::Gone(RecordFate::AlreadyRemoved) => Done::AlreadyRemoved,
            Outcome::Gone(RecordFate::WouldRemove) => Done::Gone,
            Outcome::Gone(RecordFate::Connecting) => Done::Connecting,
            Outcome::Gone(RecordFate::Marked) => Done::Marked,
            Outcome::Failed { kind, .. } => Done::Failed((*kind).to_owned()),
            Outcome::CleanupFailed { kind, .. } => Done::CleanupFailed((*kind).to_owned()),
            Outcome::Repeat { removed } => Done::Repeat { removed: *removed },
            Outcome::NotAttempted
            | Outcome::Live(_)
            | Outcome::Disconnected { .. }
            | Outcome::WouldDisconnect => return None,
        })
    }

    fn code(&self) -> String {
        match self {
            Done::Delivered => "delivered".into(),
            Done::Removed => "removed".into(),
            Done::AlreadyRemoved => "already_removed".into(),
            Done::Gone => "gone".into(),
            Done::Connecting => "connecting".into(),
            Done::Marked => "marked".into(),
            Done::Failed(kind) => format!("failed:{kind}"),
            Done::CleanupFailed(kind) => format!("cleanup_failed:{kind}"),
            Done::Repeat { removed: false } => "repeat".into(),
            Done::Repeat { removed: true } => "repeat_removed".into(),
        }
    }

    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "delivered" => Done::Delivered,
            "removed" => Done::Removed,
            "already_removed" => Done::AlreadyRemoved,
            "gone" => Done::Gone,
            "connecting" => Done::Connecting,
            "marked" => Done::Marked,
            "repeat" => Done::Repeat { removed: false },
            "repeat_removed" => Done::Repeat { removed: true },
            other => match other.split_once(':') {
                Some(("failed", kind)) => Done::Failed(kind.to_owned()),
                Some(("cleanup_failed", kind)) => Done::CleanupFailed(kind.to_owned()),
                _ => return None,
            },
        })
    }
}

/// Where a segment's scan stands.
#[derive(Debug, Clone, PartialEq)]
enum Position {
    Start,
    After(HashMap<String, AttributeValue>),
    Done,
}

impl Position {
    fn of(after: Option<&HashMap<String, AttributeValue>>) -> Self {
        after.map_or(Position::Done, |k| Position::After(k.clone()))
    }

    fn cursor(&self) -> Option<Cursor> {
        match self {
            Position::Start => Some(Cursor::Start),
            Position::After(k) => Some(Cursor::After(k.clone())),
            Position::Done => None,
        }
    }

    fn to_json(&self) -> Result<Value, CheckpointError> {
        Ok(match self {
            Position::Start => Value::from("start"),
            Position::Done => Value::from("done"),
            Position::After(key) => serde_json::json!({ "after": key_to_json(key)? }),
        })
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        match v {
            Value::String(s) if s == "start" => Ok(Position::Start),
            Value::String(s) if s == "done" => Ok(Position::Done),
            Value::Object(o) => match o.get("after") {
                Some(key) => Ok(Position::After(key_from_json(key)?)),
                None => Err("a position is \"start\", \"done\" or {\"after\": KEY}".into()),
            },
            _ => Err("a position is \"start\", \"done\" or {\"after\": KEY}".into()),
        }
    }
}

/// A key in DynamoDB's JSON (`{"connectionId": {"S": "abc"}}`).
fn key_to_json(key: &HashMap<String, AttributeValue>) -> Result<Value, CheckpointError> {
    let mut out = Map::new();
    for (name, value) in key {
        let typed = match value {
            AttributeValue::S(s) => serde_json::json!({ "S": s }),
            AttributeValue::N(n) => serde_json::json!({ "N": n }),
            AttributeValue::B(b) => {
                serde_json::json!({ "B": aws_smithy_types::base64::encode(b.as_ref()) })
            }
            _ => {
                return Err(CheckpointError::Key {
                    attribute: name.clone(),
                });
            }
        };
        out.insert(name.clone(), typed);
    }
    Ok(Value::Object(out))
}

fn key_from_json(v: &Value) -> Result<HashMap<String, AttributeValue>, String> {
    let bad = || "a key is {\"NAME\": {\"S\"|\"N\"|\"B\": \"...\"}}".to_owned();
    let Value::Object(o) = v else {
        return Err(bad());
    };
    let mut key = HashMap::new();
    for (name, typed) in o {
        let (ty, value) = typed
            .as_object()
            .filter(|t| t.len() == 1)
            .and_then(|t| t.iter().next())
            .ok_or_else(bad)?;
        let value = value.as_str().ok_or_else(bad)?;
        let value = match ty.as_str() {
            "S" => AttributeValue::S(value.to_owned()),
            "N" => AttributeValue::N(value.to_owned()),
            "B" => AttributeValue::B(aws_smithy_types::Blob::new(
                aws_smithy_types::base64::decode(value).map_err(|_| bad())?,
            )),
            _ => return Err(bad()),
        };
        key.insert(name.clone(), value);
    }
    if key.is_empty() {
        return Err(bad());
    }
    Ok(key)
}

/// The first line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    #[serde(rename = "wsadminBroadcastCheckpoint")]
    version: u64,
    identity: Identity,
    totals: Totals,
    segments: Vec<SavedSegment>,
    /// Every connection posted to (or otherwise finished) in the whole
    /// broadcast, when [`Identity::whole_run_ids`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    posted: Vec<String>,
    /// Posts begun and not ended when the snapshot was taken (their
    /// `post` events are not in the file any more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    in_flight: Vec<InFlight>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedSegment {
    at: Value,
    /// Ids finished (or in doubt) past `at`: skipped when read again.
    #[serde(default)]
    finished: Vec<String>,
}

/// One event line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    post: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    undone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seg: Option<u32>,
    /// A post's time: epoch milliseconds on this machine's clock, taken
    /// just before the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
}

impl Event {
    fn empty() -> Self {
        Self {
            post: None,
            done: None,
            undone: None,
            outcome: None,
            commit: None,
            seg: None,
            at: None,
        }
    }
}

/// A post begun and not yet ended, as a snapshot keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InFlight {
    id: String,
    seg: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
}

/// A segment in this process.
#[derive(Debug)]
struct Segment {
    position: Position,
    /// Ids finished or in doubt past `position`.
    finished: HashSet<String>,
    /// Pages read and not yet finished, in scan order; the first is
    /// `first_page`.
    pages: VecDeque<PageState>,
    first_page: u64,
}

#[derive(Debug)]
struct PageState {
    after: Option<HashMap<String, AttributeValue>>,
    /// Subjects of the page handed to the sweep and not finished.
    pending: usize,
    /// Every id of the page (to forget them once it is passed).
    ids: Vec<String>,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    identity: Identity,
    segments: Vec<Segment>,
    /// Where each subject handed out came from: (segment, page).
    handed: HashMap<String, (u32, u64)>,
    /// Every finished id, when the identity asks.
    posted: HashSet<String>,
    /// Posts begun and not ended: (segment, time).
    begun: HashMap<String, (u32, i64)>,
    totals: Totals,
    file: File,
    events: u64,
    /// The first write that failed: nothing is posted after it.
    broken: Option<String>,
}

/// A checkpoint being written.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    state: Mutex<State>,
    /// The counts of the runs before this one, as it was opened.
    previous: Totals,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Checkpoint {
    /// A new checkpoint at `path` (which must not exist), for a broadcast
    /// starting from the beginning.
    pub fn create(path: &Path, identity: Identity) -> Result<Self, CheckpointError> {
        if path.exists() {
            return Err(CheckpointError::Exists {
                path: path.to_owned(),
            });
        }
        let segments = (0..identity.segments)
            .map(|_| Segment::new(Position::Start, HashSet::new()))
            .collect();
        Self::begin(path, identity, segments, HashSet::new(), Totals::default())
    }

    /// Opens a checkpoint to finish its broadcast, if `now` is the same
    /// broadcast (its segments are the checkpoint's, whatever `now` says):
    /// every event replayed. Nothing is written until the posts in doubt
    /// are settled ([`Resuming::settle`]); a refusal leaves the file as it
    /// was.
    pub fn resume(path: &Path, now: &Identity) -> Result<Resuming, CheckpointError> {
        let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
            what: "read",
            path: path.to_owned(),
            source,
        })?;
        let (identity, segments, posted, totals) = read(&bytes).map_err(|e| e.at(path))?;
        if let Some(what) = now.difference(&identity) {
            return Err(CheckpointError::Mismatch {
                path: path.to_owned(),
                what,
            });
        }
        Ok(Resuming {
            path: path.to_owned(),
            identity,
            segments,
            posted,
            totals,
        })
    }

    fn begin(
        path: &Path,
        identity: Identity,
        segments: Vec<Segment>,
        posted: HashSet<String>,
        totals: Totals,
    ) -> Result<Self, CheckpointError> {
        let previous = totals.clone();
        let begun = HashMap::new();
        let file = write_snapshot(
            path,
            &snapshot_of(&identity, &segments, &posted, &begun, &totals)?,
        )?;
        Ok(Self {
            path: path.to_owned(),
            previous,
            state: Mutex::new(State {
                path: path.to_owned(),
                identity,
                segments,
                handed: HashMap::new(),
                posted,
                begun,
                totals,
                file,
                events: 0,
                broken: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The broadcast this checkpoint is for.
    pub fn identity(&self) -> Identity {
        lock(&self.state).identity.clone()
    }

    /// The earlier runs' counts (none for a new checkpoint).
    pub fn previous(&self) -> &Totals {
        &self.previous
    }

    /// Where each segment's scan starts (`None`: read to its end).
    pub fn starts(&self) -> Vec<Option<Cursor>> {
        lock(&self.state)
            .segments
            .iter()
            .map(|s| s.position.cursor())
            .collect()
    }

    /// Takes in a page the scan read; returns the records to post: those
    /// `select` keeps that no run finished (or began) yet.
    pub fn page(
        &self,
        page: Page,
        select: impl Fn(&ConnectionRecord) -> bool,
    ) -> Vec<ConnectionRecord> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let Some(segment) = state.segments.get_mut(page.segment as usize) else {
            return Vec::new();
        };
        let number = segment.first_page + segment.pages.len() as u64;
        let ids = page
            .records
            .iter()
            .map(|r| r.connection_id.clone())
            .collect();
        let mut subjects = Vec::new();
        for record in page.records {
            let id = &record.connection_id;
            let skip = segment.finished.contains(id)
                || state.posted.contains(id)
                || state.handed.contains_key(id)
                || !select(&record);
            if !skip {
                state.handed.insert(id.clone(), (page.segment, number));
                subjects.push(record);
            }
        }
        segment.pages.push_back(PageState {
            after: page.after,
            pending: subjects.len(),
            ids,
        });
        state.commit(page.segment);
        subjects
    }

    /// Says a post to `id` is about to be made: written before it is.
    /// An error means it must not be made.
    pub fn posting(&self, id: &str) -> Result<(), String> {
        let mut state = lock(&self.state);
        // Only subjects of this checkpoint's pages are its business.
        let Some(&(seg, _)) = state.handed.get(id) else {
            return Ok(());
        };
        let at = system_now_ms();
        let event = Event {
            post: Some(id.to_owned()),
            seg: Some(seg),
            at: Some(at),
            ..Event::empty()
        };
        state.append(&event)?;
        state.begun.insert(id.to_owned(), (seg, at));
        Ok(())
    }

    /// Takes in how a subject ended.
    pub fn finished(&self, id: &str, outcome: &Outcome) {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let Some((seg, page)) = state.handed.remove(id) else {
            return;
        };
        state.begun.remove(id);
        let done = Done::of(outcome);
        let event = match &done {
            Some(done) => Event {
                done: Some(id.to_owned()),
                outcome: Some(done.code()),
                seg: Some(seg),
                ..Event::empty()
            },
            None => Event {
                undone: Some(id.to_owned()),
                seg: Some(seg),
                ..Event::empty()
            },
        };
        if let Some(done) = &done {
            state.totals.add(done);
            let segment = &mut state.segments[seg as usize];
            segment.finished.insert(id.to_owned());
            if state.identity.whole_run_ids {
                state.posted.insert(id.to_owned());
            }
        }
        // A write that fails is kept: `close` reports it.
        let _ = state.append(&event);
        if done.is_none() {
            // Not attempted: its page stays unfinished, for a later run.
            return;
        }
        let segment = &mut state.segments[seg as usize];
        if let Some(p) = page
            .checked_sub(segment.first_page)
            .and_then(|i| segment.pages.get_mut(i as usize))
        {
            p.pending = p.pending.saturating_sub(1);
        }
        state.commit(seg);
        if state.events >= COMPACT_EVERY {
            let _ = state.compact();
        }
    }

    /// Ends this run: a last snapshot, with this run's time. Every segment
    /// read to its end: the broadcast is complete.
    pub fn close(&self, elapsed_ms: u64) -> Result<Totals, CheckpointError> {
        let mut state = lock(&self.state);
        state.totals.elapsed_ms += elapsed_ms;
        if let Some(why) = state.broken.take() {
            return Err(CheckpointError::Io {
                what: "write",
                path: self.path.clone(),
                source: io::Error::other(why),
            });
        }
        state.compact()?;
        Ok(state.totals.clone())
    }

    /// Whether every segment was read to its end and every subject ended.
    pub fn is_complete(&self) -> bool {
        let state = lock(&self.state);
        state.handed.is_empty() && state.segments.iter().all(|s| s.position == Position::Done)
    }
}

/// A checkpoint read for a resume, its posts in doubt not yet settled.
#[derive(Debug)]
pub struct Resuming {
    path: PathBuf,
    identity: Identity,
    segments: Vec<ReadSegment>,
    posted: HashSet<String>,
    totals: Totals,
}

/// A post a killed run began and never saw end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    pub id: String,
    /// When it was made, epoch milliseconds on the killed run's machine
    /// clock (`None` in a format 1 file).
    pub at: Option<i64>,
}

/// How a post in doubt is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It reached the client: counted delivered, not posted again.
    Delivered,
    /// It did not (the connection was quiet since, or is gone): the
    /// resumed sweep posts it like any other.
    Again,
    /// Cannot tell: never posted again, counted and listed in doubt.
    InDoubt,
}

/// Settles a post in doubt from what GetConnection said of its connection
/// (`None`: gone, 410) and AWS's clock minus this machine's (`offset_ms`,
/// a lower bound, see [`crate::clock`]).
///
/// API Gateway counts a message sent to a client as activity (it resets
/// the idle timeout), so a `lastActiveAt` at or after the post's time says
/// the post reached the client. Every doubt resolves toward "delivered",
/// never toward a second copy: the post's time is taken before the request
/// and the offset errs early, and a `lastActiveAt` in whole seconds (no
/// fraction) is compared with the post's second. The price: a client that
/// sent a message of its own after the post reads as delivered (the report
/// counts these as settled, not as certain).
pub fn judge(doubt: &Doubt, live: Option<&ConnectionInfo>, offset_ms: i64) -> Verdict {
    let Some(info) = live else {
        // Gone: no client to have a second copy; posting again settles its
        // record by the stale rule.
        return Verdict::Again;
    };
    let (Some(at), Some(active)) = (doubt.at, info.last_active_at) else {
        return Verdict::InDoubt;
    };
    let mut posted = at.saturating_add(offset_ms);
    if active.rem_euclid(1000) == 0 {
        posted = posted.div_euclid(1000) * 1000;
    }
    if active >= posted {
        Verdict::Delivered
    } else {
        Verdict::Again
    }
}

impl Resuming {
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The posts in doubt, in the order they were made.
    pub fn doubts(&self) -> Vec<Doubt> {
        self.segments
            .iter()
            .flat_map(|s| &s.begun)
            .map(|(id, at)| Doubt {
                id: id.clone(),
                at: *at,
            })
            .collect()
    }

    /// Settles every post in doubt by `verdict` and opens the checkpoint
    /// for this run: a fresh snapshot is written.
    pub fn settle(
        self,
        verdict: impl Fn(&Doubt) -> Verdict,
    ) -> Result<Checkpoint, CheckpointError> {
        let Resuming {
            path,
            identity,
            segments,
            mut posted,
            mut totals,
        } = self;
        let mut open = Vec::with_capacity(segments.len());
        for mut segment in segments {
            for (id, at) in std::mem::take(&mut segment.begun) {
                let doubt = Doubt { id, at };
                match verdict(&doubt) {
                    Verdict::Delivered => {
                        totals.add(&Done::Delivered);
                        totals.settled_delivered += 1;
                    }
                    Verdict::Again => {
                        totals.settled_again += 1;
                        continue;
                    }
                    Verdict::InDoubt => totals.in_doubt(&doubt.id),
                }
                // Skipped from now on, through any of its items too.
                if identity.whole_run_ids {
                    posted.insert(doubt.id.clone());
                }
                segment.finished.insert(doubt.id);
            }
            open.push(Segment::new(segment.position, segment.finished));
        }
        totals.runs += 1;
        Checkpoint::begin(&path, identity, open, posted, totals)
    }
}

impl Segment {
    fn new(position: Position, finished: HashSet<String>) -> Self {
        Self {
            position,
            finished,
            pages: VecDeque::new(),
            first_page: 0,
        }
    }
}

impl State {
    /// Moves a segment's position past its finished pages at the front.
    fn commit(&mut self, seg: u32) {
        let segment = &mut self.segments[seg as usize];
        let mut moved = false;
        while segment.pages.front().is_some_and(|p| p.pending == 0) {
            let Some(page) = segment.pages.pop_front() else {
                break;
            };
            segment.first_page += 1;
            for id in &page.ids {
                segment.finished.remove(id);
            }
            segment.position = Position::of(page.after.as_ref());
            moved = true;
        }
        if !moved {
            return;
        }
        if segment.position == Position::Done {
            segment.finished.clear();
        }
        let commit = match segment.position.to_json() {
            Ok(v) => v,
            Err(e) => {
                self.broken.get_or_insert(e.to_string());
                return;
            }
        };
        let event = Event {
            commit: Some(commit),
            seg: Some(seg),
            ..Event::empty()
        };
        let _ = self.append(&event);
    }

    fn append(&mut self, event: &Event) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        let mut line = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        line.push(b'\n');
        // One write of one whole line: a killed process leaves whole lines.
        if let Err(e) = self.file.write_all(&line) {
            let why = format!("cannot write checkpoint {}: {e}", self.path.display());
            self.broken = Some(why.clone());
            return Err(why);
        }
        self.events += 1;
        Ok(())
    }

    fn compact(&mut self) -> Result<(), CheckpointError> {
        let snapshot = snapshot_of(
            &self.identity,
            &self.segments,
            &self.posted,
            &self.begun,
            &self.totals,
        )?;
        match write_snapshot(&self.path, &snapshot) {
            Ok(file) => {
                self.file = file;
                self.events = 0;
                Ok(())
            }
            Err(e) => {
                self.broken.get_or_insert(e.to_string());
                Err(e)
            }
        }
    }
}

fn snapshot_of(
    identity: &Identity,
    segments: &[Segment],
    posted: &HashSet<String>,
    begun: &HashMap<String, (u32, i64)>,
    totals: &Totals,
) -> Result<Snapshot, CheckpointError> {
    let segments = segments
        .iter()
        .map(|s| {
            let mut finished: Vec<String> = s.finished.iter().cloned().collect();
            finished.sort();
            Ok(SavedSegment {
                at: s.position.to_json()?,
                finished,
            })
        })
        .collect::<Result<_, CheckpointError>>()?;
    let mut posted: Vec<String> = posted.iter().cloned().collect();
    posted.sort();
    let mut in_flight: Vec<InFlight> = begun
        .iter()
        .map(|(id, &(seg, at))| InFlight {
            id: id.clone(),
            seg,
            at: Some(at),
        })
        .collect();
    in_flight.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(Snapshot {
        version: u64::from(VERSION),
        identity: identity.clone(),
        totals: totals.clone(),
        segments,
        posted,
        in_flight,
    })
}

/// Writes `FILE.tmp`, fsyncs it, renames it over `FILE`, fsyncs the
/// directory; returns `FILE` open for appending.
fn write_snapshot(path: &Path, snapshot: &Snapshot) -> Result<File, CheckpointError> {
    let io = |what: &'static str| {
        let path = path.to_owned();
        move |source| CheckpointError::Io { what, path, source }
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut line = serde_json::to_vec(snapshot).map_err(|e| io("write")(io::Error::other(e)))?;
    line.push(b'\n');
    {
        let mut f = File::create(&tmp).map_err(io("write"))?;
        f.write_all(&line).map_err(io("write"))?;
        f.sync_all().map_err(io("write"))?;
    }
    fs::rename(&tmp, path).map_err(io("write"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io("write"))
}

/// A segment as read from the file.
#[derive(Debug)]
struct ReadSegment {
    position: Position,
    finished: HashSet<String>,
    /// Posts announced and not ended, with their time when the file has
    /// it.
    begun: Vec<(String, Option<i64>)>,
}

/// Why a file cannot be read, before its path is known.
struct Bad {
    line: usize,
    why: String,
    newer: Option<u64>,
}

impl Bad {
    fn at(self, path: &Path) -> CheckpointError {
        if let Some(found) = self.newer {
            return CheckpointError::Newer {
                path: path.to_owned(),
                found,
            };
        }
        CheckpointError::Corrupt {
            path: path.to_owned(),
            line: self.line,
            why: self.why,
        }
    }
}

type Read = (Identity, Vec<ReadSegment>, HashSet<String>, Totals);

/// Reads a whole file (a snapshot and at most [`COMPACT_EVERY`] events
/// plus those of one page's worth of commits: small).
fn read(bytes: &[u8]) -> Result<Read, Bad> {
    let bad = |line: usize, why: String| Bad {
        line,
        why,
        newer: None,
    };
    if bytes.is_empty() {
        return Err(bad(1, "the file is empty".into()));
    }
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // Whole lines end with a newline: the last piece is empty.
    let cut = !lines.last().is_some_and(|l| l.is_empty());
    if !cut {
        lines.pop();
    }
    let first = lines.first().copied().unwrap_or_default();
    let header: Value = serde_json::from_slice(first).map_err(|_| {
        bad(
            1,
            if lines.len() <= 1 && cut {
                "not a wsadmin broadcast checkpoint, or cut short".into()
            } else {
                "not a wsadmin broadcast checkpoint".into()
            },
        )
    })?;
    let version = header
        .get(MAGIC)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(1, "not a wsadmin broadcast checkpoint".into()))?;
    if version > u64::from(VERSION) {
        return Err(Bad {
            line: 1,
            why: String::new(),
            newer: Some(version),
        });
    }
    if cut {
        return Err(bad(
            lines.len(),
            "cut short (its last line has no end)".into(),
        ));
    }
    let snapshot: Snapshot =
        serde_json::from_value(header).map_err(|e| bad(1, format!("its snapshot: {e}")))?;
    let identity = snapshot.identity;
    if snapshot.segments.len() != identity.segments as usize || identity.segments == 0 {
        return Err(bad(
            1,
            format!(
                "{} segment positions for {} segments",
                snapshot.segments.len(),
                identity.segments
            ),
        ));
    }
    let mut segments = snapshot
        .segments
        .into_iter()
        .map(|s| {
            Ok(ReadSegment {
                position: Position::from_json(&s.at).map_err(|e| bad(1, e))?,
                finished: s.finished.into_iter().collect(),
                begun: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, Bad>>()?;
    let mut posted: HashSet<String> = snapshot.posted.into_iter().collect();
    let mut totals = snapshot.totals;
    // Posts announced and not ended, with their segment and time, in order.
    let mut begun: BTreeMap<String, (u32, Option<i64>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for f in snapshot.in_flight {
        if f.seg as usize >= segments.len() {
            return Err(bad(1, format!("a post in flight in segment {}", f.seg)));
        }
        if seen.insert(f.id.clone()) {
            order.push(f.id.clone());
        }
        begun.insert(f.id, (f.seg, f.at));
    }
    for (i, raw) in lines.iter().enumerate().skip(1) {
        let n = i + 1;
        let event: Event =
            serde_json::from_slice(raw).map_err(|e| bad(n, format!("not an event ({e})")))?;
        let seg = event
            .seg
            .filter(|s| (*s as usize) < segments.len())
            .ok_or_else(|| bad(n, "no segment, or one out of range".into()))?;
        let segment = &mut segments[seg as usize];
        match event {
            Event {
                post: Some(id), at, ..
            } => {
                if seen.insert(id.clone()) {
                    order.push(id.clone());
                }
                begun.insert(id, (seg, at));
            }
            Event {
                done: Some(id),
                outcome: Some(code),
                ..
            } => {
                let done = Done::parse(&code)
                    .ok_or_else(|| bad(n, format!("unknown outcome {code:?}")))?;
                begun.remove(&id);
                totals.add(&done);
                if identity.whole_run_ids {
                    posted.insert(id.clone());
                }
                segment.finished.insert(id);
            }
            Event {
                undone: Some(id), ..
            } => {
                begun.remove(&id);
            }
            Event {
                commit: Some(at), ..
            } => {
                segment.position = Position::from_json(&at).map_err(|e| bad(n, e))?;
                if segment.position == Position::Done {
                    segment.finished.clear();
                }
            }
            _ => return Err(bad(n, "not an event".into())),
        }
    }
    for id in order {
        if let Some((seg, at)) = begun.remove(&id) {
            segments[seg as usize].begun.push((id, at));
        }
    }
    Ok((identity, segments, posted, totals))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's file, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("wsadmin-checkpoint-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("broadcast.checkpoint")
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn identity(message: &str, selector: &str) -> Identity {
        Identity {
            message_sha256: Identity::message_hash(message.as_bytes()),
            message_bytes: message.len(),
            selector: selector.into(),
            table: "WS_CONNECTIONS".into(),
            dynamodb: "http://127.0.0.1:1".into(),
            endpoint: "http://127.0.0.1:2/dev".into(),
            segments: 2,
            whole_run_ids: false,
        }
    }

    fn key(id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("connectionId".to_owned(), AttributeValue::S(id.into()))])
    }

    fn page(segment: u32, ids: &[&str], after: Option<&str>) -> Page {
        Page {
            segment,
            records: ids.iter().map(|id| ConnectionRecord::new(*id)).collect(),
            after: after.map(key),
        }
    }

    fn ids(records: &[ConnectionRecord]) -> Vec<&str> {
        records.iter().map(|r| r.connection_id.as_str()).collect()
    }

    fn all(_: &ConnectionRecord) -> bool {
        true
    }

    /// A resume that settles nothing: every post in doubt stays in doubt.
    fn reopen(path: &Path, now: &Identity) -> Checkpoint {
        Checkpoint::resume(path, now)
            .expect("resume")
            .settle(|_| Verdict::InDoubt)
            .expect("settle")
    }

    #[test]
    fn a_resumed_run_starts_past_finished_pages_and_skips_what_was_done_or_begun() {
        let dir = Dir::new("resume");
        let first = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        assert_eq!(
            first.starts(),
            vec![Some(Cursor::Start), Some(Cursor::Start)]
        );
        // Segment 0: page A finished whole, page B half; segment 1 ended
        // with one page, finished.
        let a = first.page(page(0, &["a1", "a2"], Some("a2")), all);
        assert_eq!(ids(&a), ["a1", "a2"]);
        let b = first.page(page(0, &["b1", "b2", "b3", "b4"], Some("b4")), all);
        assert_eq!(ids(&b).len(), 4);
        let c = first.page(page(1, &["c1"], None), all);
        assert_eq!(ids(&c), ["c1"]);
        for id in ["a2", "b3", "a1", "c1"] {
            first.posting(id).expect("write");
            first.finished(id, &Outcome::Delivered);
        }
        // b1 was posted to and never answered (killed); b2 not attempted
        // (stopped); b4 never taken.
        first.posting("b1").expect("write");
        first.finished("b2", &Outcome::NotAttempted);
        assert!(!first.is_complete());
        drop(first); // as a killed process: no close

        let second = reopen(&dir.file(), &identity("hi", ""));
        assert_eq!(second.previous().delivered, 4);
        assert_eq!(second.previous().in_doubt, 1);
        assert_eq!(second.previous().in_doubt_ids, ["b1"]);
        assert_eq!(second.previous().runs, 1);
        // Segment 0 resumes after page A; segment 1 is done.
        assert_eq!(second.starts(), vec![Some(Cursor::After(key("a2"))), None]);
        // Page B read again (a connection joined it meanwhile): b3 was
        // delivered, b1 is in doubt; the rest are posted.
        let again = second.page(page(0, &["b1", "b2", "b3", "b4", "b5"], None), all);
        assert_eq!(ids(&again), ["b2", "b4", "b5"]);
        for id in ["b2", "b4", "b5"] {
            second.posting(id).expect("write");
            second.finished(id, &Outcome::Gone(RecordFate::Removed));
        }
        assert!(second.is_complete());
        let totals = second.close(1000).expect("close");
        assert_eq!(
            (totals.delivered, totals.gone, totals.records_removed),
            (4, 3, 3)
        );

        // A third run has nothing left to do, and says so.
        let third = reopen(&dir.file(), &identity("hi", ""));
        assert_eq!(third.starts(), vec![None, None]);
        assert_eq!(third.previous().runs, 2);
        assert_eq!(third.previous().elapsed_ms, 1000);
        let mut report = SweepReport::default();
        third.previous().add_to(&mut report);
        assert_eq!((report.targeted, report.delivered, report.gone), (7, 4, 3));
    }

    #[test]
    fn a_page_is_passed_only_once_every_page_before_it_is() {
        let dir = Dir::new("order");
        let cp = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        cp.page(page(0, &["p1"], Some("p1")), all);
        cp.page(page(0, &["q1"], Some("q1")), all);
        // Nothing selected on the third page: finished as read, but after
        // the unfinished ones.
        cp.page(page(0, &["r1"], Some("r1")), |_| false);
        cp.finished("q1", &Outcome::Delivered);
        drop(cp);
        let cp = reopen(&dir.file(), &identity("hi", ""));
        assert_eq!(cp.starts()[0], Some(Cursor::Start));
        // q1 is skipped when read again; p1 is not.
        assert_eq!(
            ids(&cp.page(page(0, &["p1", "q1"], Some("q1")), all)),
            ["p1"]
        );
        cp.finished("p1", &Outcome::Delivered);
        cp.close(0).expect("close");
        let cp = reopen(&dir.file(), &identity("hi", ""));
        assert_eq!(cp.starts()[0], Some(Cursor::After(key("q1"))));
    }

    #[test]
    fn a_different_broadcast_is_refused_and_the_file_left_as_it_was() {
        let dir = Dir::new("mismatch");
        Checkpoint::create(&dir.file(), identity("hi", "room=7"))
            .expect("create")
            .close(0)
            .expect("close");
        let before = fs::read(dir.file()).expect("read");
        let e = Checkpoint::resume(&dir.file(), &identity("hello", "room=7")).unwrap_err();
        assert!(e.to_string().contains("the message differs"), "{e}");
        let e = Checkpoint::resume(&dir.file(), &identity("hi", "room=8")).unwrap_err();
        assert!(
            e.to_string()
                .contains("the selection \"room=8\" differs from the checkpoint's \"room=7\""),
            "{e}"
        );
        let mut other = identity("hi", "room=7");
        other.table = "OTHER".into();
        let e = Checkpoint::resume(&dir.file(), &other).unwrap_err();
        assert!(e.to_string().contains("table \"OTHER\""), "{e}");
        assert_eq!(fs::read(dir.file()).expect("read"), before);
        // And a new checkpoint never replaces one.
        let e = Checkpoint::create(&dir.file(), identity("hi", "room=7")).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
    }

    #[test]
    fn damaged_files_are_refused_with_where_and_why() {
        let dir = Dir::new("damaged");
        let cp = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        cp.page(page(0, &["a", "b"], Some("b")), all);
        cp.posting("a").expect("write");
        cp.finished("a", &Outcome::Delivered);
        drop(cp);
        let whole = fs::read(dir.file()).expect("read");
        let refused = |bytes: &[u8]| {
            fs::write(dir.file(), bytes).expect("write");
            Checkpoint::resume(&dir.file(), &identity("hi", ""))
                .unwrap_err()
                .to_string()
        };
        let cut = refused(&whole[..whole.len() - 3]);
        assert!(cut.contains("damaged at line 3: cut short"), "{cut}");
        let cut = refused(&whole[..40]);
        assert!(cut.contains("line 1"), "{cut}");
        assert!(refused(b"").contains("the file is empty"));
        assert!(refused(b"{\"some\": \"json\"}\n").contains("not a wsadmin broadcast checkpoint"));
        let mut garbled = whole.clone();
        let at = whole.len() - 10;
        garbled[at] = b'}';
        let g = refused(&garbled);
        assert!(g.contains("damaged at line 3: not an event"), "{g}");
        let newer = String::from_utf8(whole.clone()).expect("utf8").replacen(
            "\"wsadminBroadcastCheckpoint\":2",
            "\"wsadminBroadcastCheckpoint\":3",
            1,
        );
        let n = refused(newer.as_bytes());
        assert!(n.contains("written by a newer wsadmin (format 3"), "{n}");
        // The whole file still resumes.
        fs::write(dir.file(), &whole).expect("write");
        reopen(&dir.file(), &identity("hi", ""));
    }

    /// Posts [`COMPACT_EVERY`] ids in segment 1 (`id{page}-{i}`, 50 a
    /// page), each delivered: a snapshot is taken on the way. Returns how
    /// many.
    fn post_enough_for_a_snapshot(cp: &Checkpoint) -> usize {
        let n = COMPACT_EVERY as usize;
        for p in 0..n / 50 {
            let ids: Vec<String> = (0..50).map(|i| format!("id{p}-{i}")).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let after = format!("id{p}-49");
            cp.page(page(1, &refs, Some(&after)), all);
            for id in &refs {
                cp.posting(id).expect("write");
                cp.finished(id, &Outcome::Delivered);
            }
        }
        n
    }

    #[test]
    fn the_file_stays_bounded_and_keeps_its_state_across_snapshots() {
        let dir = Dir::new("bounded");
        let cp = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        let n = post_enough_for_a_snapshot(&cp);
        drop(cp);
        let lines = fs::read_to_string(dir.file())
            .expect("read")
            .lines()
            .count();
        assert!(lines < n, "compacted: {lines} lines after {} posts", n);
        let cp = reopen(&dir.file(), &identity("hi", ""));
        assert_eq!(cp.previous().delivered, n as u64);
        let last = format!("id{}-49", n / 50 - 1);
        assert_eq!(cp.starts()[1], Some(Cursor::After(key(&last))));
    }

    fn info(last_active_at: Option<i64>) -> ConnectionInfo {
        ConnectionInfo {
            connected_at: Some(1_000),
            last_active_at,
            source_ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn a_post_in_doubt_is_judged_by_the_connections_last_activity() {
        let at = |ms| Doubt {
            id: "x".into(),
            at: Some(ms),
        };
        let live = |ms| Some(info(Some(ms)));
        // Active at or after the post: delivered; before it: post again.
        assert_eq!(
            judge(&at(5_250), live(5_251).as_ref(), 0),
            Verdict::Delivered
        );
        assert_eq!(
            judge(&at(5_250), live(5_250).as_ref(), 0),
            Verdict::Delivered
        );
        assert_eq!(judge(&at(5_250), live(5_249).as_ref(), 0), Verdict::Again);
        // lastActiveAt in whole seconds: compared with the post's second
        // (a delivery at 5.7 s reads 5 s), never toward a second copy.
        assert_eq!(
            judge(&at(5_250), live(5_000).as_ref(), 0),
            Verdict::Delivered
        );
        assert_eq!(judge(&at(5_250), live(4_000).as_ref(), 0), Verdict::Again);
        // AWS's clock 2 s ahead of ours: the post was at AWS's 7.25 s.
        assert_eq!(
            judge(&at(5_250), live(7_300).as_ref(), 2_000),
            Verdict::Delivered
        );
        assert_eq!(
            judge(&at(5_250), live(6_500).as_ref(), 2_000),
            Verdict::Again
        );
        // Gone: posting again only settles its record.
        assert_eq!(judge(&at(5_250), None, 0), Verdict::Again);
        // No time (a format 1 file) or no lastActiveAt: cannot tell.
        let untimed = Doubt {
            id: "x".into(),
            at: None,
        };
        assert_eq!(judge(&untimed, live(9_999).as_ref(), 0), Verdict::InDoubt);
        assert_eq!(
            judge(&at(5_250), Some(info(None)).as_ref(), 0),
            Verdict::InDoubt
        );
    }

    #[test]
    fn settled_doubts_are_counted_delivered_posted_again_or_kept_in_doubt() {
        let dir = Dir::new("settle");
        let first = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        let before = system_now_ms();
        let got = first.page(page(0, &["d", "a", "u", "n"], Some("n")), all);
        assert_eq!(got.len(), 4);
        for id in ["d", "a", "u"] {
            first.posting(id).expect("write");
        }
        first.posting("n").expect("write");
        first.finished("n", &Outcome::Delivered);
        drop(first);

        let resuming = Checkpoint::resume(&dir.file(), &identity("hi", "")).expect("resume");
        let doubts = resuming.doubts();
        assert_eq!(
            doubts.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["d", "a", "u"]
        );
        assert!(
            doubts
                .iter()
                .all(|d| d.at.is_some_and(|at| at >= before && at <= system_now_ms())),
            "each post carries its time: {doubts:?}"
        );
        let second = resuming
            .settle(|d| match d.id.as_str() {
                "d" => Verdict::Delivered,
                "a" => Verdict::Again,
                _ => Verdict::InDoubt,
            })
            .expect("settle");
        let p = second.previous();
        assert_eq!(
            (
                p.delivered,
                p.settled_delivered,
                p.settled_again,
                p.in_doubt
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(p.in_doubt_ids, ["u"]);
        // The page is read again: only the one to post again is handed out.
        assert_eq!(
            ids(&second.page(page(0, &["d", "a", "u", "n"], None), all)),
            ["a"]
        );
        second.posting("a").expect("write");
        second.finished("a", &Outcome::Delivered);
        assert!(second.page(page(1, &[], None), all).is_empty());
        assert!(second.is_complete());
        let totals = second.close(0).expect("close");
        assert_eq!((totals.delivered, totals.in_doubt), (3, 1));
    }

    #[test]
    fn a_snapshot_keeps_the_posts_in_flight_with_their_time() {
        let dir = Dir::new("in-flight");
        let cp = Checkpoint::create(&dir.file(), identity("hi", "")).expect("create");
        cp.page(page(0, &["slow"], Some("slow")), all);
        cp.posting("slow").expect("write");
        // Enough other posts to take a snapshot while "slow" is in flight.
        post_enough_for_a_snapshot(&cp);
        drop(cp);
        let text = fs::read_to_string(dir.file()).expect("read");
        assert!(
            !text.contains("{\"post\":\"slow\""),
            "its post event went with the snapshot"
        );
        let resuming = Checkpoint::resume(&dir.file(), &identity("hi", "")).expect("resume");
        let doubts = resuming.doubts();
        assert_eq!(doubts.len(), 1, "{doubts:?}");
        assert_eq!(doubts[0].id, "slow");
        assert!(doubts[0].at.is_some());
        // Left in doubt: never handed out again.
        let cp = resuming.settle(|_| Verdict::InDoubt).expect("settle");
        assert!(cp.page(page(0, &["slow"], None), all).is_empty());
    }

    #[test]
    fn a_format_1_file_resumes_its_untimed_doubts_stay_in_doubt() {
        let dir = Dir::new("format-1");
        let snapshot = serde_json::json!({
            "wsadminBroadcastCheckpoint": 1,
            "identity": identity("hi", ""),
            "totals": Totals::default(),
            "segments": [{"at": "start"}, {"at": "done"}],
        });
        let text = format!("{snapshot}\n{{\"post\":\"old\",\"seg\":0}}\n");
        fs::write(dir.file(), text).expect("write");
        let resuming = Checkpoint::resume(&dir.file(), &identity("hi", "")).expect("resume");
        assert_eq!(
            resuming.doubts(),
            [Doubt {
                id: "old".into(),
                at: None
            }]
        );
        assert_eq!(
            judge(&resuming.doubts()[0], Some(&info(Some(i64::MAX))), 0),
            Verdict::InDoubt
        );
    }

    #[test]
    fn keys_of_every_type_survive_the_file() {
        let k = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("ROOM#7".into())),
            ("sk".to_owned(), AttributeValue::N("12".into())),
            (
                "b".to_owned(),
                AttributeValue::B(aws_smithy_types::Blob::new(vec![0, 255, 7])),
            ),
        ]);
        let json = key_to_json(&k).expect("json");
        assert_eq!(key_from_json(&json).expect("key"), k);
        let bool_key = HashMap::from([("pk".to_owned(), AttributeValue::Bool(true))]);
        assert!(key_to_json(&bool_key).is_err());
    }
}
