//! The registry mapping: how a team's table holds its connections.
//!
//! wsadmin reads every registry through one [`Mapping`]: which attribute
//! holds the connection id and in what pattern (`{id}`, `CONN#{id}`),
//! which attributes hold when it connected, its source IP, user agent and
//! expiry, and which are shown and selected on as meta (a `meta` map,
//! top-level attributes, and fields inside a key's value such as `room`
//! from `ROOM#7`). An item whose id attribute does not match the pattern is
//! not a connection (nor is one whose key field does not match its
//! pattern: `USER#ana` where rooms are `ROOM#{room}`): it is never listed,
//! posted to or deleted.
//!
//! The table's key schema is not part of the mapping: the store reads it
//! from DescribeTable ([`KeySchema`]). The mapping is saved in a context
//! (`[contexts.NAME.registry]`), proposed by `wsadmin registry detect`, and
//! given for one-off use by flags. The default is our own stack's schema.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::{
    ATTR_CONNECTED_AT, ATTR_DOMAIN_NAME, ATTR_EXPIRES_AT, ATTR_GONE_SEEN_AT, ATTR_META,
    ATTR_SOURCE_IP, ATTR_STAGE, ATTR_USER_AGENT, ConnectionRecord, validate_connection_id,
};

/// A value pattern with one named field: `CONN#{id}`, `ROOM#{room}`, `{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    prefix: String,
    field: String,
    suffix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid pattern {pattern:?}: {reason} (write it as PREFIX{{name}}SUFFIX, e.g. CONN#{{id}})"
)]
pub struct TemplateError {
    pub pattern: String,
    pub reason: &'static str,
}

impl Template {
    /// The plain pattern `{field}`: the whole value.
    pub fn whole(field: &str) -> Self {
        Self {
            prefix: String::new(),
            field: field.to_owned(),
            suffix: String::new(),
        }
    }

    pub fn parse(pattern: &str) -> Result<Self, TemplateError> {
        let err = |reason| TemplateError {
            pattern: pattern.to_owned(),
            reason,
        };
        let open = pattern.find('{').ok_or_else(|| err("it has no {field}"))?;
        let close = pattern[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| err("a { is not closed"))?;
        let field = &pattern[open + 1..close];
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(err("the field name must be letters, digits or _"));
        }
        let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
        if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
            return Err(err("it may hold one {field} only"));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            field: field.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    /// The text before the field.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the pattern is the whole value.
    pub fn is_whole(&self) -> bool {
        self.prefix.is_empty() && self.suffix.is_empty()
    }

    /// The field's value in `value`, when `value` has this shape.
    pub fn extract<'a>(&self, value: &'a str) -> Option<&'a str> {
        let rest = value.strip_prefix(self.prefix.as_str())?;
        let field = rest.strip_suffix(self.suffix.as_str())?;
        (!field.is_empty()).then_some(field)
    }

    /// The value this pattern gives the field `value`.
    pub fn render(&self, value: &str) -> String {
        format!("{}{value}{}", self.prefix, self.suffix)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{{}}}{}", self.prefix, self.field, self.suffix)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A field read from an attribute's value: `pk` = `ROOM#{room}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AttributeField {
    pub attribute: String,
    pub pattern: Template,
}

impl AttributeField {
    /// `ATTR=PATTERN` (`pk=ROOM#{room}`), or `ATTR` alone for `{ATTR}`...
    /// with `default_field` naming the whole value.
    pub fn parse(spec: &str, default_field: &str) -> Result<Self, TemplateError> {
        let (attribute, pattern) = match spec.split_once('=') {
            Some((a, p)) => (a.trim(), Template::parse(p.trim())?),
            None => (spec.trim(), Template::whole(default_field)),
        };
        if attribute.is_empty() {
            return Err(TemplateError {
                pattern: spec.to_owned(),
                reason: "the attribute name is empty",
            });
        }
        Ok(Self {
            attribute: attribute.to_owned(),
            pattern,
        })
    }
}

impl fmt::Display for AttributeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.attribute, self.pattern)
    }
}

/// How a registry holds its connections (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Mapping {
    /// Where the connection id is. Items whose attribute does not match
    /// the pattern are not connections.
    pub id: AttributeField,
    /// When it connected: epoch milliseconds, epoch seconds or ISO-8601,
    /// told apart value by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// When the record expires (DynamoDB TTL): epoch seconds, or as
    /// connected-at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// A map attribute whose entries are meta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_map: Option<String>,
    /// Top-level attributes shown and selected on as meta, by their name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meta: Vec<String>,
    /// Fields of key values shown as meta: `pk=ROOM#{room}` gives `room`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_fields: Vec<AttributeField>,
    /// Where wsadmin may write its mark on a record without connected-at
    /// that answered 410 (the owner agreed). Without it the marks are kept
    /// in local state (see [`crate::marks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_mark: Option<String>,
}

impl Default for Mapping {
    /// Our own stack's registry.
    fn default() -> Self {
        Self::ours(crate::record::TableConfig::DEFAULT_KEY)
    }
}

impl Mapping {
    /// Our own schema with the id under `key`.
    pub fn ours(key: &str) -> Self {
        Self {
            id: AttributeField {
                attribute: key.to_owned(),
                pattern: Template::whole("id"),
            },
            connected_at: Some(ATTR_CONNECTED_AT.to_owned()),
            source_ip: Some(ATTR_SOURCE_IP.to_owned()),
            user_agent: Some(ATTR_USER_AGENT.to_owned()),
            domain_name: Some(ATTR_DOMAIN_NAME.to_owned()),
            stage: Some(ATTR_STAGE.to_owned()),
            expires_at: Some(ATTR_EXPIRES_AT.to_owned()),
            meta_map: Some(ATTR_META.to_owned()),
            meta: Vec::new(),
            key_fields: Vec::new(),
            gone_mark: Some(ATTR_GONE_SEEN_AT.to_owned()),
        }
    }

    /// A registry that holds only the id (`attribute`, in `pattern`):
    /// everything else absent, marks in local state.
    pub fn bare(id: AttributeField) -> Self {
        Self {
            id,
            connected_at: None,
            source_ip: None,
            user_agent: None,
            domain_name: None,
            stage: None,
            expires_at: None,
            meta_map: None,
            meta: Vec::new(),
            key_fields: Vec::new(),
            gone_mark: None,
        }
    }

    /// Whether this is our own schema (records are written whole).
    pub fn is_ours(&self) -> bool {
        *self == Self::ours(&self.id.attribute)
    }

    /// Every attribute the mapping names, with what it is for.
    pub fn attributes(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("id", self.id.attribute.as_str())];
        let named = [
            ("connected-at", &self.connected_at),
            ("source-ip", &self.source_ip),
            ("user-agent", &self.user_agent),
            ("domain-name", &self.domain_name),
            ("stage", &self.stage),
            ("expires-at", &self.expires_at),
            ("meta-map", &self.meta_map),
            ("gone-mark", &self.gone_mark),
        ];
        out.extend(
            named
                .into_iter()
                .filter_map(|(what, a)| a.as_deref().map(|a| (what, a))),
        );
        out.extend(self.meta.iter().map(|a| ("meta", a.as_str())));
        out.extend(
            self.key_fields
                .iter()
                .map(|f| ("key-field", f.attribute.as_str())),
        );
        out
    }

    /// The meta name a key field or top-level attribute gives `name`
    /// (`room` is the field of `pk=ROOM#{room}`): the attribute and pattern
    /// behind it, for a Query.
    pub fn key_field(&self, name: &str) -> Option<&AttributeField> {
        self.key_fields.iter().find(|f| f.pattern.field() == name)
    }
}

/// A time from an attribute, in epoch milliseconds: numbers from 10^9 to
/// 10^11 are epoch seconds (2001 to 5138), others milliseconds; a
/// string is ISO-8601 (`2026-12-03T14:00:00Z`, offsets and fractions
/// allowed) or a number in a string.
pub fn time_ms_from_number(n: f64) -> Option<i64> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    // Seconds from 2001 to 5138; anything else is milliseconds.
    Some(if (1e9..1e11).contains(&n) {
        (n * 1000.0) as i64
    } else {
        n as i64
    })
}

/// [`time_ms_from_number`] for a string attribute.
pub fn time_ms_from_text(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return time_ms_from_number(n);
    }
    parse_iso8601(text)
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH[:]MM]` (no offset: UTC) to epoch
/// milliseconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(at) == Some(&b':') {
        second = num(at + 1, 2)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 {
                return None;
            }
            let frac = &text[at + 1..at + 1 + digits.min(3)];
            millis = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
            at += 1 + digits;
        }
    }
    let offset_min = match &text[at..] {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?)
        }
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A table's key attributes, as DescribeTable gives them, and the global
/// secondary indexes whose hash key a selector may Query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySchema {
    pub hash: String,
    pub range: Option<String>,
    /// `(index name, its hash key attribute)`, for indexes that project
    /// every attribute or at least the table's keys.
    pub indexes: Vec<(String, String)>,
}

impl KeySchema {
    /// Our own table: a hash key only.
    pub fn hash_only(hash: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            range: None,
            indexes: Vec::new(),
        }
    }

    pub fn is_key(&self, attribute: &str) -> bool {
        self.hash == attribute || self.range.as_deref() == Some(attribute)
    }

    /// Whether one connection may have several items: any table with a
    /// range key (a partition per connection may hold several items that
    /// match, or the id is the range key under room partitions).
    pub fn may_repeat(&self) -> bool {
        self.range.is_some()
    }

    /// The index whose hash key is `attribute`.
    pub fn index_on(&self, attribute: &str) -> Option<&str> {
        self.indexes
            .iter()
            .find(|(_, hash)| hash == attribute)
            .map(|(name, _)| name.as_str())
    }
}

/// Why an item is not a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAConnection {
    /// The id attribute is missing or not a string.
    NoId,
    /// The id attribute does not match the pattern (another item type).
    OtherType,
    /// It matches but the id could not be one API Gateway issued.
    BadId,
}

#[cfg(feature = "registry")]
mod items {
    use super::*;
    use crate::record::{Item, KeyValue};
    use aws_sdk_dynamodb::types::AttributeValue;

    fn scalar(v: &AttributeValue) -> Option<String> {
        match v {
            AttributeValue::S(s) => Some(s.clone()),
            AttributeValue::N(n) => Some(n.clone()),
            AttributeValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A time attribute: in our own schema exactly the number written
    /// (`exact`); in a team's, told apart by its value.
    fn time(v: Option<&AttributeValue>, exact: bool) -> Option<i64> {
        match (v?, exact) {
            (AttributeValue::N(n), true) => n.parse::<i64>().ok().or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
            }),
            (AttributeValue::N(n), false) => time_ms_from_number(n.parse().ok()?),
            (AttributeValue::S(s), false) => time_ms_from_text(s),
            _ => None,
        }
    }

    /// An attribute value usable as a key (S, N or B).
    pub fn key_value(v: &AttributeValue) -> Option<KeyValue> {
        match v {
            AttributeValue::S(s) => Some(KeyValue::S(s.clone())),
            AttributeValue::N(n) => Some(KeyValue::N(n.clone())),
            AttributeValue::B(b) => Some(KeyValue::B(b.as_ref().to_vec())),
            _ => None,
        }
    }

    pub fn attribute_value(v: &KeyValue) -> AttributeValue {
        match v {
            KeyValue::S(s) => AttributeValue::S(s.clone()),
            KeyValue::N(n) => AttributeValue::N(n.clone()),
            KeyValue::B(b) => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b.clone())),
        }
    }

    impl Mapping {
        /// The connection id an item holds, if it is a connection.
        pub fn id_of<'a>(&self, item: &'a Item) -> Result<&'a str, NotAConnection> {
            let Some(AttributeValue::S(value)) = item.get(&self.id.attribute) else {
                return Err(NotAConnection::NoId);
            };
            let id = self
                .id
                .pattern
                .extract(value)
                .ok_or(NotAConnection::OtherType)?;
            // A key field's attribute in another shape (`USER#ana` where
            // rooms are `ROOM#{room}`) is another item type too.
            for field in &self.key_fields {
                if let Some(AttributeValue::S(v)) = item.get(&field.attribute)
                    && field.pattern.extract(v).is_none()
                {
                    return Err(NotAConnection::OtherType);
                }
            }
            validate_connection_id(id).map_err(|_| NotAConnection::BadId)?;
            Ok(id)
        }

        /// The record an item holds, read through the mapping; its key (the
        /// attributes `keys` names) is kept for conditional writes.
        pub fn record(
            &self,
            item: &Item,
            keys: &KeySchema,
        ) -> Result<ConnectionRecord, NotAConnection> {
            self.record_with(item, keys, self.is_ours())
        }

        /// [`Mapping::record`], knowing whether this is our own schema
        /// (`ours`: times are exactly the numbers written).
        pub fn record_with(
            &self,
            item: &Item,
            keys: &KeySchema,
            ours: bool,
        ) -> Result<ConnectionRecord, NotAConnection> {
            let id = self.id_of(item)?;
            let s = |name: &Option<String>| match name.as_ref().and_then(|n| item.get(n)) {
                Some(AttributeValue::S(v)) if !v.is_empty() => Some(v.clone()),
                _ => None,
            };
            let t = |name: &Option<String>| time(name.as_ref().and_then(|n| item.get(n)), ours);
            let mut meta = BTreeMap::new();
            if let Some(AttributeValue::M(m)) = self.meta_map.as_ref().and_then(|n| item.get(n)) {
                meta.extend(m.iter().filter_map(|(k, v)| Some((k.clone(), scalar(v)?))));
            }
            for name in &self.meta {
                if let Some(v) = item.get(name).and_then(scalar) {
                    meta.insert(name.clone(), v);
                }
            }
            for field in &self.key_fields {
                if let Some(AttributeValue::S(v)) = item.get(&field.attribute)
                    && let Some(value) = field.pattern.extract(v)
                {
                    meta.insert(field.pattern.field().to_owned(), value.to_owned());
                }
            }
            let mut record = ConnectionRecord::new(id);
            record.connected_at = t(&self.connected_at);
            record.source_ip = s(&self.source_ip);
            record.user_agent = s(&self.user_agent);
            record.domain_name = s(&self.domain_name);
            record.stage = s(&self.stage);
            record.expires_at = if ours {
                t(&self.expires_at)
            } else {
                t(&self.expires_at).map(|ms| ms.div_euclid(1000))
            };
            record.gone_seen_at = time(self.gone_mark.as_ref().and_then(|n| item.get(n)), true);
            record.meta = meta;
            record.key = crate::record::ReadKey(
                std::iter::once(&keys.hash)
                    .chain(keys.range.as_ref())
                    .map(|name| Some((name.clone(), key_value(item.get(name)?)?)))
                    .collect::<Option<Vec<_>>>(),
            );
            Ok(record)
        }
    }
}

#[cfg(feature = "registry")]
pub use items::{attribute_value, key_value};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_extract_and_render() {
        let t = Template::parse("CONN#{id}").unwrap();
        assert_eq!(t.extract("CONN#abc="), Some("abc="));
        assert_eq!(t.extract("USER#abc"), None);
        assert_eq!(t.extract("CONN#"), None);
        assert_eq!(t.render("x"), "CONN#x");
        assert_eq!(t.to_string(), "CONN#{id}");
        assert!(Template::parse("{id}").unwrap().is_whole());
        for bad in ["CONN#", "{", "{}", "{a}{b}", "{a b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attribute_fields_parse() {
        let f = AttributeField::parse("pk=ROOM#{room}", "id").unwrap();
        assert_eq!((f.attribute.as_str(), f.pattern.field()), ("pk", "room"));
        let plain = AttributeField::parse("ConnectionId", "id").unwrap();
        assert_eq!(plain.pattern, Template::whole("id"));
        assert!(AttributeField::parse("=CONN#{id}", "id").is_err());
    }

    #[test]
    fn times_are_told_apart_by_their_values() {
        assert_eq!(
            time_ms_from_number(1_700_000_000.0),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            time_ms_from_number(1_700_000_000_123.0),
            Some(1_700_000_000_123)
        );
        assert_eq!(time_ms_from_text("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            time_ms_from_text("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            time_ms_from_text("2023-11-14T22:13:20.5+00:00"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            time_ms_from_text("2023-11-15T00:13:20.123+02:00"),
            Some(1_700_000_000_123)
        );
        assert_eq!(time_ms_from_text("yesterday"), None);
        assert_eq!(time_ms_from_text("2023-13-01T00:00:00Z"), None);
    }

    #[test]
    fn the_default_is_ours_and_round_trips_through_toml() {
        let m = Mapping::default();
        assert!(m.is_ours());
        let mut theirs = Mapping::bare(AttributeField::parse("pk=CONN#{id}", "id").unwrap());
        theirs.connected_at = Some("createdAt".into());
        theirs
            .key_fields
            .push(AttributeField::parse("pk=ROOM#{room}", "id").unwrap());
        let text = toml::to_string(&theirs).unwrap();
        assert!(text.contains("pattern = \"CONN#{id}\""), "{text}");
        assert_eq!(toml::from_str::<Mapping>(&text).unwrap(), theirs);
    }
}
