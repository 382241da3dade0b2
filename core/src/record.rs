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

/// Where the registry lives: configuration, never constants, since other
/// stacks name their table and key differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub name: String,
    /// The hash key attribute holding the connection id.
    pub key: String,
}

impl TableConfig {
    pub const DEFAULT_NAME: &str = "WS_CONNECTIONS";
    pub const DEFAULT_KEY: &str = "connectionId";

    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            key: Self::DEFAULT_KEY.to_owned(),
        }
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }
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
}

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
    pub fn to_item(&self, table: &TableConfig) -> Item {
        let mut item = Item::new();
        item.insert(
            table.key.clone(),
            AttributeValue::S(self.connection_id.clone()),
        );
        let mut put_n = |name: &str, v: Option<i64>| {
            if let Some(v) = v {
                item.insert(name.to_owned(), AttributeValue::N(v.to_string()));
            }
        };
        put_n(ATTR_CONNECTED_AT, self.connected_at);
        put_n(ATTR_EXPIRES_AT, self.expires_at);
        put_n(ATTR_GONE_SEEN_AT, self.gone_seen_at);
        for (name, v) in [
            (ATTR_SOURCE_IP, &self.source_ip),
            (ATTR_USER_AGENT, &self.user_agent),
            (ATTR_DOMAIN_NAME, &self.domain_name),
            (ATTR_STAGE, &self.stage),
        ] {
            // DynamoDB refuses empty strings in non-key attributes: skip them.
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                item.insert(name.to_owned(), AttributeValue::S(v.clone()));
            }
        }
        if !self.meta.is_empty() {
            let meta = self
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect();
            item.insert(ATTR_META.to_owned(), AttributeValue::M(meta));
        }
        item
    }

    pub fn from_item(item: &Item, table: &TableConfig) -> Result<Self, MissingKey> {
        let connection_id = match item.get(&table.key) {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => {
                return Err(MissingKey {
                    key: table.key.clone(),
                });
            }
        };
        let s = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let n = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => parse_number(v),
            _ => None,
        };
        let meta = match item.get(ATTR_META) {
            Some(AttributeValue::M(m)) => m
                .iter()
                .filter_map(|(k, v)| match v {
                    AttributeValue::S(s) => Some((k.clone(), s.clone())),
                    AttributeValue::N(n) => Some((k.clone(), n.clone())),
                    AttributeValue::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Self {
            connection_id,
            connected_at: n(ATTR_CONNECTED_AT),
            source_ip: s(ATTR_SOURCE_IP),
            user_agent: s(ATTR_USER_AGENT),
            domain_name: s(ATTR_DOMAIN_NAME),
            stage: s(ATTR_STAGE),
            expires_at: n(ATTR_EXPIRES_AT),
            meta,
            gone_seen_at: n(ATTR_GONE_SEEN_AT),
        })
    }
}

/// DynamoDB numbers are decimal strings; ours are integers, but a foreign
/// writer may have stored `1700000000000.0` or seconds as a float.
#[cfg(feature = "registry")]
fn parse_number(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
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
