//! The connection record: one DynamoDB item per registered connection.
//!
//! Owns the item schema (attribute names and types) and the conversion both
//! ways. Reading is lenient: items written by other stacks may carry only the
//! key attribute (the seed article's handlers write nothing else), and an
//! attribute of an unexpected type reads as absent rather than failing the
//! whole scan. Writing is exact.

use std::collections::BTreeMap;
#[cfg(feature = "registry")]
use std::collections::HashMap;
use std::fmt;

#[cfg(feature = "registry")]
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::registry::Mapping;

/// A DynamoDB item as the SDK hands it over.
#[cfg(feature = "registry")]
pub type Item = HashMap<String, AttributeValue>;

/// API Gateway's maximum connection duration.
pub const MAX_CONNECTION_SECS: i64 = 2 * 60 * 60;
/// Slack added to the maximum duration before DynamoDB TTL may sweep a record.
pub const TTL_MARGIN_SECS: i64 = 15 * 60;

pub const ATTR_CONNECTED_AT: &str = "connectedAt";
pub const ATTR_SOURCE_IP: &str = "sourceIp";
pub const ATTR_USER_AGENT: &str = "userAgent";
pub const ATTR_DOMAIN_NAME: &str = "domainName";
pub const ATTR_STAGE: &str = "stage";
pub const ATTR_EXPIRES_AT: &str = "expiresAt";
pub const ATTR_META: &str = "meta";
/// Set by wsadmin on a record without `connectedAt` the first time its
/// connection answered 410 (see [`crate::stale`]).
pub const ATTR_GONE_SEEN_AT: &str = "goneSeenAt";

/// Where the registry lives and how it holds connections: configuration,
/// never constants, since other stacks name their table, key and
/// attributes differently ([`Mapping`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub name: String,
    pub mapping: Mapping,
}

impl TableConfig {
    pub const DEFAULT_NAME: &str = "WS_CONNECTIONS";
    pub const DEFAULT_KEY: &str = "connectionId";

    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mapping: Mapping::default(),
        }
    }

    /// Our own schema with the connection id in `key` (`--table-key`, the
    /// table's hash key). A mapping of another shape names where its ids
    /// are, which need not be the hash key (`pk` a room's, `sk` the
    /// connection's): it is kept as it is, never read from `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        if self.mapping.is_ours() {
            self.mapping = Mapping::ours(&key.into());
        }
        self
    }

    pub fn with_mapping(mut self, mapping: Mapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// The attribute holding the connection id.
    pub fn key(&self) -> &str {
        &self.mapping.id.attribute
    }
}

/// A key attribute's value, as read from an item (S, N or B).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    S(String),
    N(String),
    B(Vec<u8>),
}

impl Default for TableConfig {
    fn default() -> Self {
        Self::new(Self::DEFAULT_NAME)
    }
}

/// One registered connection. Every field but the id is optional because
/// foreign stacks may not write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRecord {
    pub connection_id: String,
    /// Epoch milliseconds, as API Gateway reports `requestContext.connectedAt`.
    pub connected_at: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub domain_name: Option<String>,
    pub stage: Option<String>,
    /// Epoch seconds after which DynamoDB TTL may delete the record.
    pub expires_at: Option<i64>,
    /// The `$connect` query-string parameters (`?user=ana&room=7`).
    pub meta: BTreeMap<String, String>,
    /// Epoch milliseconds (on AWS's clock) when a sweep first found this
    /// record's connection answering 410; only records without
    /// `connected_at` get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gone_seen_at: Option<i64>,
    /// The item's key attributes as read (hash, then range), for the
    /// conditional writes on exactly this item; `None` for a record not
    /// read from the table.
    #[serde(skip)]
    pub key: ReadKey,
}

/// The key attributes of the item a record was read from (hash, then
/// range). Where a record came from, not what it says: records compare
/// equal whatever their keys.
#[derive(Debug, Clone, Default)]
pub struct ReadKey(pub Option<Vec<(String, KeyValue)>>);

impl ReadKey {
    pub fn get(&self) -> Option<&[(String, KeyValue)]> {
        self.0.as_deref()
    }

    /// Whether the item has a range key: one connection may have several.
    pub fn has_range(&self) -> bool {
        self.0.as_ref().is_some_and(|k| k.len() > 1)
    }
}

impl PartialEq for ReadKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ReadKey {}

/// An item that cannot be a connection record at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item has no string attribute \"{key}\" (is the key attribute name right?)")]
pub struct MissingKey {
    pub key: String,
}

/// A connection id that API Gateway could never have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection id {}: {reason}", crate::text::cut_quoted(id, 64))]
pub struct InvalidConnectionId {
    pub id: String,
    pub reason: &'static str,
}

/// Whether `id` has the shape of the ids API Gateway issues: 16 characters,
/// 15 of URL-safe base64 then `=` (`L0SM9cOFvHcCIhw=`, `-VHk2mNq8sT0bXw=`),
/// whatever their case.
pub fn issued_by_api_gateway(id: &str) -> bool {
    id.len() == 16
        && id.ends_with('=')
        && id[..15]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a connection id before it is put in a URL or a key. API Gateway ids
/// are short base64-like strings (`L0SM9cOFvHcCIhw=`).
pub fn validate_connection_id(id: &str) -> Result<(), InvalidConnectionId> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > 256 {
        "it is longer than 256 bytes"
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "it contains whitespace or control characters"
    } else if id.contains(['/', '?', '#', '%']) {
        "it contains one of / ? # %"
    } else {
        return Ok(());
    };
    Err(InvalidConnectionId {
        id: id.to_owned(),
        reason,
    })
}

impl ConnectionRecord {
    /// A record with only the id set.
    pub fn new(connection_id: impl Into<String>) -> Self {
        Self {
            connection_id: connection_id.into(),
            connected_at: None,
            source_ip: None,
            user_agent: None,
            domain_name: None,
            stage: None,
            expires_at: None,
            meta: BTreeMap::new(),
            gone_seen_at: None,
            key: ReadKey::default(),
        }
    }

    /// The TTL for a connection opened at `connected_at_ms`: the maximum
    /// connection duration plus a margin, in epoch seconds.
    pub fn expiry_for(connected_at_ms: i64) -> i64 {
        connected_at_ms.div_euclid(1000) + MAX_CONNECTION_SECS + TTL_MARGIN_SECS
    }

    /// Sets `connected_at` and the matching TTL.
    pub fn connected_at(mut self, epoch_ms: i64) -> Self {
        self.connected_at = Some(epoch_ms);
        self.expires_at = Some(Self::expiry_for(epoch_ms));
        self
    }
}

/// The item schema both ways (the SDK's types: feature `registry`).
#[cfg(feature = "registry")]
impl ConnectionRecord {
    /// The item for this record in `table`'s registry, each fact under the
    /// attribute the mapping names (facts it has no attribute for are not
    /// written). Times are written as our schema has them: epoch
    /// milliseconds, the expiry in epoch seconds.
    pub fn to_item(&self, table: &TableConfig) -> Item {
        let m = &table.mapping;
        let mut item = Item::new();
        item.insert(
            m.id.attribute.clone(),
            AttributeValue::S(m.id.pattern.render(&self.connection_id)),
        );
        let mut put_n = |name: &Option<String>, v: Option<i64>| {
            if let (Some(name), Some(v)) = (name, v) {
                item.insert(name.clone(), AttributeValue::N(v.to_string()));
            }
        };
        put_n(&m.connected_at, self.connected_at);
        put_n(&m.expires_at, self.expires_at);
        put_n(&m.gone_mark, self.gone_seen_at);
        for (name, v) in [
            (&m.source_ip, &self.source_ip),
            (&m.user_agent, &self.user_agent),
            (&m.domain_name, &self.domain_name),
            (&m.stage, &self.stage),
        ] {
            // DynamoDB refuses empty strings in non-key attributes: skip them.
            if let (Some(name), Some(v)) = (name, v.as_ref().filter(|v| !v.is_empty())) {
                item.insert(name.clone(), AttributeValue::S(v.clone()));
            }
        }
        if let Some(map) = &m.meta_map
            && !self.meta.is_empty()
        {
            let meta = self
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect();
            item.insert(map.clone(), AttributeValue::M(meta));
        }
        item
    }

    /// The record an item holds, through `table`'s mapping (its key schema
    /// unknown: the record carries no key).
    pub fn from_item(item: &Item, table: &TableConfig) -> Result<Self, MissingKey> {
        let keys = crate::registry::KeySchema::hash_only(table.key());
        let mut record = table.mapping.record(item, &keys).map_err(|_| MissingKey {
            key: table.key().to_owned(),
        })?;
        record.key = ReadKey::default();
        Ok(record)
    }
}

impl fmt::Display for ConnectionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.connection_id)
    }
}

#[cfg(all(test, feature = "registry"))]
mod tests {
    use super::*;

    fn full() -> ConnectionRecord {
        let mut r = ConnectionRecord::new("L0SM9cOFvHcCIhw=").connected_at(1_700_000_000_123);
        r.source_ip = Some("203.0.113.9".into());
        r.user_agent = Some("Mozilla/5.0".into());
        r.domain_name = Some("abc.execute-api.us-east-1.amazonaws.com".into());
        r.stage = Some("dev".into());
        r.meta.insert("user".into(), "ana".into());
        r.meta.insert("room".into(), "7".into());
        r
    }

    #[test]
    fn round_trips_through_an_item() {
        let table = TableConfig::default();
        let r = full();
        let item = r.to_item(&table);
        assert_eq!(
            item["connectionId"],
            AttributeValue::S("L0SM9cOFvHcCIhw=".into())
        );
        assert_eq!(
            item["connectedAt"],
            AttributeValue::N("1700000000123".into())
        );
        assert_eq!(ConnectionRecord::from_item(&item, &table), Ok(r));
    }

    #[test]
    fn ttl_is_two_hours_plus_margin_in_seconds() {
        let r = ConnectionRecord::new("x").connected_at(1_700_000_000_999);
        assert_eq!(r.expires_at, Some(1_700_000_000 + 7200 + 900));
    }

    #[test]
    fn key_attribute_name_is_configuration() {
        let table = TableConfig::new("t").with_key("id");
        let item = full().to_item(&table);
        assert!(item.contains_key("id") && !item.contains_key("connectionId"));
        assert_eq!(
            ConnectionRecord::from_item(&item, &TableConfig::default()),
            Err(MissingKey {
                key: "connectionId".into()
            })
        );
    }

    /// A registry keyed by room (`pk`) holding connections in `sk`: the
    /// table's key given as well must not move where ids are read from
    /// (ids were read from `pk`: a user-keyed table's `u1` was posted to,
    /// its 410 taken as gone, and the stale rule could delete the item of a
    /// live connection).
    #[test]
    fn the_table_key_never_moves_another_shapes_ids() {
        let mapping = Mapping::bare(
            crate::registry::AttributeField::parse("sk=CONN#{id}", "id").expect("field"),
        );
        let table = TableConfig::new("t")
            .with_mapping(mapping.clone())
            .with_key("pk");
        assert_eq!(table.mapping, mapping);
        assert_eq!(table.key(), "sk");
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("ROOM#7".into()));
        item.insert("sk".into(), AttributeValue::S("CONN#abc=".into()));
        assert_eq!(
            ConnectionRecord::from_item(&item, &table).map(|r| r.connection_id),
            Ok("abc=".to_owned())
        );
        // Our own schema still takes its key from it.
        assert_eq!(TableConfig::new("t").with_key("id").key(), "id");
    }

    #[test]
    fn reads_items_with_only_the_key_or_odd_types() {
        let table = TableConfig::default();
        let mut item = Item::new();
        item.insert("connectionId".into(), AttributeValue::S("abc=".into()));
        assert_eq!(
            ConnectionRecord::from_item(&item, &table),
            Ok(ConnectionRecord::new("abc="))
        );
        item.insert("connectedAt".into(), AttributeValue::S("yesterday".into()));
        item.insert("expiresAt".into(), AttributeValue::N("1700000000.5".into()));
        item.insert("meta".into(), AttributeValue::S("not a map".into()));
        let r = ConnectionRecord::from_item(&item, &table).expect("lenient read");
        assert_eq!(r.connected_at, None);
        assert_eq!(r.expires_at, Some(1_700_000_000));
        assert!(r.meta.is_empty());
    }

    #[test]
    fn empty_strings_are_not_written() {
        let mut r = ConnectionRecord::new("a");
        r.user_agent = Some(String::new());
        assert!(!r.to_item(&TableConfig::default()).contains_key("userAgent"));
    }

    #[test]
    fn connection_ids_are_checked() {
        assert!(validate_connection_id("L0SM9cOFvHcCIhw=").is_ok());
        for bad in ["", " ", "a/b", "a\nb", "a?b", &"x".repeat(300)] {
            let err = validate_connection_id(bad).expect_err(bad);
            assert!(
                err.to_string().starts_with("invalid connection id"),
                "{err}"
            );
        }
    }
}
