//! Seeing the registry change: the difference between two scans of it
//! ([`Snapshot::diff`]), what each change means for a connection's life
//! ([`Lifecycle`]), what a scan costs in read capacity
//! ([`scan_read_units`]), and what one DynamoDB Stream record says
//! ([`stream_change`]). Pure: the polling belongs to the caller.
//!
//! A scan diff sees states, not events: a connection that came and went
//! between two polls is never seen, and a removed record cannot tell a
//! `$disconnect` from a TTL expiry. A record that a sweep had marked gone
//! (`goneSeenAt`) and that then disappears was pruned.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::record::{ConnectionRecord, Item, TableConfig};

/// The registry at one poll, by connection id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    records: BTreeMap<String, ConnectionRecord>,
}

/// One record's difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(ConnectionRecord),
    Removed(ConnectionRecord),
    Changed {
        /// Boxed: the variants stay about one record's size.
        before: Box<ConnectionRecord>,
        after: ConnectionRecord,
    },
}

/// What a [`Change`] means for the connection it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// A new record: `$connect` registered the connection.
    Connected,
    /// The record went away (`$disconnect`, a wsadmin disconnect, or TTL).
    Disconnected,
    /// A sweep found the connection gone (410) and marked its record.
    FoundGone,
    /// A record marked gone was deleted.
    Pruned,
    /// Any other change to a record.
    Updated,
    /// DynamoDB's TTL deleted the record (a stream tells; a scan cannot).
    Expired,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Connected => "connected",
            Lifecycle::Disconnected => "disconnected",
            Lifecycle::FoundGone => "gone",
            Lifecycle::Pruned => "pruned",
            Lifecycle::Updated => "updated",
            Lifecycle::Expired => "expired",
        }
    }
}

impl Change {
    /// `added`, `removed` or `changed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Added(_) => "added",
            Change::Removed(_) => "removed",
            Change::Changed { .. } => "changed",
        }
    }

    /// The record as it is now (as it was last seen, if removed).
    pub fn record(&self) -> &ConnectionRecord {
        match self {
            Change::Added(r) | Change::Removed(r) => r,
            Change::Changed { after, .. } => after,
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        match self {
            Change::Added(_) => Lifecycle::Connected,
            Change::Removed(r) if r.gone_seen_at.is_some() => Lifecycle::Pruned,
            Change::Removed(_) => Lifecycle::Disconnected,
            Change::Changed { before, after }
                if before.gone_seen_at.is_none() && after.gone_seen_at.is_some() =>
            {
                Lifecycle::FoundGone
            }
            Change::Changed { .. } => Lifecycle::Updated,
        }
    }
}

impl Snapshot {
    pub fn new(records: impl IntoIterator<Item = ConnectionRecord>) -> Self {
        Self {
            records: records
                .into_iter()
                .map(|r| (r.connection_id.clone(), r))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, connection_id: &str) -> Option<&ConnectionRecord> {
        self.records.get(connection_id)
    }

    /// The records, oldest connection first (records without `connectedAt`
    /// last, then by id).
    pub fn oldest_first(&self) -> Vec<&ConnectionRecord> {
        let mut v: Vec<&ConnectionRecord> = self.records.values().collect();
        v.sort_by_key(|r| (r.connected_at.unwrap_or(i64::MAX), r.connection_id.clone()));
        v
    }

    /// What changed from `self` to `next`: removals first (by id), then
    /// changes (by id), then additions (oldest connection first), so a
    /// reader sees an id leave before a new one arrives.
    pub fn diff(&self, next: &Snapshot) -> Vec<Change> {
        let mut changes = Vec::new();
        for (id, before) in &self.records {
            if !next.records.contains_key(id) {
                changes.push(Change::Removed(before.clone()));
            }
        }
        for (id, after) in &next.records {
            if let Some(before) = self.records.get(id)
                && before != after
            {
                changes.push(Change::Changed {
                    before: Box::new(before.clone()),
                    after: after.clone(),
                });
            }
        }
        let added: Vec<&ConnectionRecord> = next
            .oldest_first()
            .into_iter()
            .filter(|r| !self.records.contains_key(&r.connection_id))
            .collect();
        changes.extend(added.into_iter().cloned().map(Change::Added));
        changes
    }

    /// The items' size as DynamoDB counts it (attribute names and values),
    /// approximately.
    pub fn item_bytes(&self, table: &TableConfig) -> u64 {
        self.records
            .values()
            .map(|r| {
                r.to_item(table)
                    .iter()
                    .map(|(name, v)| (name.len() + value_bytes(v)) as u64)
                    .sum::<u64>()
            })
            .sum()
    }
}

/// A DynamoDB Stream record's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOp {
    Insert,
    Modify,
    Remove,
}

/// The change one stream record describes, from its images (whichever the
/// stream's view type carries: without them, the record is its keys).
/// `None` for an item that is no connection record (no key attribute).
pub fn stream_change(
    op: StreamOp,
    keys: Option<&Item>,
    old: Option<&Item>,
    new: Option<&Item>,
    table: &TableConfig,
) -> Option<Change> {
    let read = |item: Option<&Item>| item.and_then(|i| ConnectionRecord::from_item(i, table).ok());
    let (old, new, keys) = (read(old), read(new), read(keys));
    match op {
        StreamOp::Insert => new.or(keys).map(Change::Added),
        StreamOp::Remove => old.or(keys).map(Change::Removed),
        StreamOp::Modify => {
            let after = new.or_else(|| keys.clone())?;
            let before = old
                .or(keys)
                .unwrap_or_else(|| ConnectionRecord::new(after.connection_id.clone()));
            Some(Change::Changed {
                before: Box::new(before),
                after,
            })
        }
    }
}

/// Read capacity units one full scan of `item_bytes` costs with `segments`
/// parallel segments: eventually consistent reads cost 0.5 RCU per 4 KB,
/// rounded up per page, and every segment reads at least one page.
pub fn scan_read_units(item_bytes: u64, segments: u32) -> f64 {
    let units = item_bytes.div_ceil(4096).max(u64::from(segments.max(1)));
    units as f64 * 0.5
}

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        // About one byte per two significant digits, plus one.
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_bytes(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_bytes(v) + 1).sum::<usize>(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, at: i64) -> ConnectionRecord {
        ConnectionRecord::new(id).connected_at(at)
    }

    #[test]
    fn nothing_changed_is_no_change() {
        let a = Snapshot::new([rec("a", 1), rec("b", 2)]);
        assert!(a.diff(&a.clone()).is_empty());
        assert!(Snapshot::default().diff(&Snapshot::default()).is_empty());
    }

    #[test]
    fn removals_then_changes_then_additions_oldest_first() {
        let before = Snapshot::new([rec("gone", 1), rec("same", 2), rec("edited", 3)]);
        let mut edited = rec("edited", 3);
        edited.meta.insert("room".into(), "7".into());
        let after = Snapshot::new([
            rec("same", 2),
            edited.clone(),
            rec("new-late", 20),
            rec("new-early", 10),
        ]);
        let changes = before.diff(&after);
        let summary: Vec<(&str, &str, &str)> = changes
            .iter()
            .map(|c| {
                (
                    c.kind(),
                    c.lifecycle().as_str(),
                    c.record().connection_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("removed", "disconnected", "gone"),
                ("changed", "updated", "edited"),
                ("added", "connected", "new-early"),
                ("added", "connected", "new-late"),
            ]
        );
        assert_eq!(changes[1].record(), &edited);
    }

    #[test]
    fn a_marked_record_is_found_gone_then_pruned() {
        let plain = ConnectionRecord::new("x");
        let mut marked = plain.clone();
        marked.gone_seen_at = Some(5);
        let s0 = Snapshot::new([plain.clone()]);
        let s1 = Snapshot::new([marked.clone()]);
        let s2 = Snapshot::default();
        assert_eq!(s0.diff(&s1)[0].lifecycle(), Lifecycle::FoundGone);
        assert_eq!(s1.diff(&s2)[0].lifecycle(), Lifecycle::Pruned);
        // Unmarked, a removal is a disconnect.
        assert_eq!(s0.diff(&s2)[0].lifecycle(), Lifecycle::Disconnected);
    }

    #[test]
    fn oldest_first_puts_records_without_a_time_last() {
        let s = Snapshot::new([ConnectionRecord::new("none"), rec("b", 2), rec("a", 1)]);
        let ids: Vec<&str> = s
            .oldest_first()
            .iter()
            .map(|r| r.connection_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "none"]);
    }

    #[test]
    fn stream_records_read_as_changes() {
        let table = TableConfig::default();
        let mut r = rec("abc", 1);
        r.meta.insert("room".into(), "7".into());
        let item = r.to_item(&table);
        let keys = ConnectionRecord::new("abc").to_item(&table);
        let mut marked = r.clone();
        marked.gone_seen_at = Some(9);
        let marked_item = marked.to_item(&table);
        let change = |op, old: Option<&Item>, new: Option<&Item>| {
            stream_change(op, Some(&keys), old, new, &table).expect("a change")
        };
        assert_eq!(
            change(StreamOp::Insert, None, Some(&item)),
            Change::Added(r.clone())
        );
        assert_eq!(
            change(StreamOp::Remove, Some(&item), None),
            Change::Removed(r.clone())
        );
        let found = change(StreamOp::Modify, Some(&item), Some(&marked_item));
        assert_eq!(found.lifecycle(), Lifecycle::FoundGone);
        assert_eq!(
            change(StreamOp::Remove, Some(&marked_item), None).lifecycle(),
            Lifecycle::Pruned
        );
        // KEYS_ONLY streams: the id alone.
        assert_eq!(
            change(StreamOp::Remove, None, None),
            Change::Removed(ConnectionRecord::new("abc"))
        );
        // An item of another shape is no connection.
        let other: Item = [("pk".to_owned(), AttributeValue::S("x".into()))]
            .into_iter()
            .collect();
        assert!(
            stream_change(StreamOp::Insert, Some(&other), None, Some(&other), &table).is_none()
        );
    }

    #[test]
    fn read_capacity_of_a_scan() {
        // Every segment reads at least one page: 4 segments, 0.5 RCU each.
        assert_eq!(scan_read_units(0, 4), 2.0);
        // 100,000 records of ~200 bytes: 20 MB, 4,883 units of 4 KB.
        assert_eq!(scan_read_units(20_000_000, 4), 2441.5);
        let table = TableConfig::default();
        let mut r = rec("L0SM9cOFvHcCIhw=", 1_700_000_000_000);
        r.meta.insert("room".into(), "7".into());
        let bytes = Snapshot::new([r]).item_bytes(&table);
        // connectionId(12)+16, connectedAt(11)+8, expiresAt(9)+6, meta(4)+3+(4+1+1)
        assert_eq!(bytes, 28 + 19 + 15 + 13);
    }
}
