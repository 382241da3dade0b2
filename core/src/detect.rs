//! Proposing a registry's [`Mapping`] from what its table holds: its key
//! schema, its TTL attribute and a bounded sample of items. Pure: the
//! store reads the table ([`crate::store::ConnectionStore::sample`]); this
//! looks at the items and says why it chose what it chose, one sentence of
//! evidence per choice, so that an operator can check it before it is
//! saved.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::record::{Item, issued_by_api_gateway, validate_connection_id};
use crate::registry::{
    AttributeField, KeySchema, Mapping, Template, parse_iso8601, time_ms_from_number,
};

/// What detection proposes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub mapping: Mapping,
    /// One sentence per choice (and per item type left out).
    pub evidence: Vec<String>,
    /// Items sampled, and how many are connections.
    pub sampled: usize,
    pub connections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error(
        "table {table:?} is empty: there is nothing to detect a mapping from (connect a client first, or give the mapping with --registry-id)"
    )]
    Empty { table: String },
    #[error(
        "no attribute of table {table:?} looks like a connection id (API Gateway's are 16 base64 characters ending in =, e.g. L0SM9cOFvHcCIhw=) in {sampled} sampled items; {seen} (give the mapping with --registry-id ATTR=PATTERN if the ids are elsewhere)"
    )]
    NoIdAttribute {
        table: String,
        sampled: usize,
        seen: String,
    },
}

/// Whether `text` could be an id API Gateway issued: 16 characters of
/// base64 ending in `=`, whatever their case (one id in about 2,500 has no
/// lowercase letter); 12 to 24 are allowed for other issuers, but never a
/// plain word or number.
pub fn id_like(text: &str) -> bool {
    let len = text.len();
    let base64 = text
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_'));
    let api_gateways = issued_by_api_gateway(text) && text.bytes().any(|c| c.is_ascii_alphabetic());
    let mixed = (12..=24).contains(&len)
        && text
            .bytes()
            .any(|c| c.is_ascii_digit() || c == b'=' || c.is_ascii_uppercase())
        && text.bytes().any(|c| c.is_ascii_lowercase())
        && !text.contains("__");
    validate_connection_id(text).is_ok() && base64 && (api_gateways || mixed)
}

/// `CONN#` of `CONN#abc`: the text up to and including the last `#`
/// (empty without one).
fn prefix_of(value: &str) -> &str {
    value.rfind('#').map_or("", |i| &value[..=i])
}

/// `room` of `ROOM#`: the prefix as a field name.
fn field_name(prefix: &str) -> String {
    let word: String = prefix
        .trim_end_matches('#')
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if word.is_empty() {
        "value".to_owned()
    } else {
        word.to_ascii_lowercase()
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Proposes a mapping for `table` from its key schema, its TTL attribute
/// (if TTL is on) and `items`, a sample of it.
pub fn propose(
    table: &str,
    keys: &KeySchema,
    ttl: Option<&str>,
    items: &[Item],
) -> Result<Proposal, DetectError> {
    if items.is_empty() {
        return Err(DetectError::Empty {
            table: table.to_owned(),
        });
    }
    let mut evidence = Vec::new();
    let (id, connections) = choose_id(table, keys, items, &mut evidence)?;
    let conn: Vec<&Item> = items
        .iter()
        .filter(|item| match item.get(&id.attribute) {
            Some(AttributeValue::S(v)) => id.pattern.extract(v).is_some_and(id_like),
            _ => false,
        })
        .collect();
    debug_assert_eq!(conn.len(), connections);
    let n = conn.len();
    let mut used: BTreeSet<String> = BTreeSet::from([id.attribute.clone()]);
    let mut mapping = Mapping::bare(id);

    // Fields inside the other key attributes: `pk=ROOM#{room}`.
    for key in std::iter::once(&keys.hash).chain(keys.range.as_ref()) {
        if used.contains(key) {
            continue;
        }
        used.insert(key.clone());
        let values: Vec<&str> = conn
            .iter()
            .filter_map(|item| match item.get(key) {
                Some(AttributeValue::S(v)) => Some(v.as_str()),
                _ => None,
            })
            .collect();
        let prefixes: BTreeSet<&str> = values.iter().map(|v| prefix_of(v)).collect();
        let distinct: BTreeSet<&str> = values.iter().copied().collect();
        if let [prefix] = prefixes.into_iter().collect::<Vec<_>>()[..]
            && !prefix.is_empty()
            && distinct.len() > 1
            && !values.iter().any(|v| id_like(&v[prefix.len()..]))
        {
            let name = field_name(prefix);
            let field = AttributeField {
                attribute: key.clone(),
                pattern: Template::parse(&format!("{prefix}{{{name}}}"))
                    .expect("a prefix and a field name make a pattern"),
            };
            evidence.push(format!(
                "`{key}` holds `{prefix}` + a value in {} of {n}: shown and selected on as `{name}` (`--where {name}=...` reads one partition)",
                values.len()
            ));
            mapping.key_fields.push(field);
        } else if distinct.len() == 1 {
            evidence.push(format!(
                "`{key}` is `{}` in every connection item: nothing to show",
                crate::text::cut_quoted(distinct.first().copied().unwrap_or_default(), 24)
            ));
        }
    }

    // Every other top-level attribute of the connection items.
    let mut attrs: BTreeMap<&str, Vec<&AttributeValue>> = BTreeMap::new();
    for item in &conn {
        for (name, value) in item.iter() {
            if !used.contains(name) {
                attrs.entry(name.as_str()).or_default().push(value);
            }
        }
    }
    let share = |count: usize| format!("{count} of {n}");

    // The TTL attribute, as DynamoDB says, else a name that says it.
    let ttl_name = ttl.map(str::to_owned).or_else(|| {
        attrs
            .keys()
            .find(|a| {
                let l = a.to_ascii_lowercase();
                l == "ttl" || l.starts_with("expire")
            })
            .map(|a| (*a).to_owned())
    });
    if let Some(name) = ttl_name.filter(|n| attrs.contains_key(n.as_str())) {
        evidence.push(match ttl {
            Some(_) => {
                format!("`{name}` is the table's TTL attribute (DescribeTimeToLive): the expiry")
            }
            None => format!("`{name}` is named as an expiry (TTL is off): the expiry"),
        });
        used.insert(name.clone());
        mapping.expires_at = Some(name);
    }

    // Times: epoch seconds, milliseconds or ISO-8601, in most items.
    let time_kind = |v: &AttributeValue| -> Option<&'static str> {
        match v {
            AttributeValue::N(n) => {
                let f: f64 = n.parse().ok()?;
                if (1e9..1e10).contains(&f) {
                    Some("epoch seconds")
                } else if (1e12..1e13).contains(&f) {
                    Some("epoch milliseconds")
                } else {
                    None
                }
                .filter(|_| time_ms_from_number(f).is_some())
            }
            AttributeValue::S(s) => parse_iso8601(s).map(|_| "ISO-8601 times"),
            _ => None,
        }
    };
    let mut times: Vec<(&str, usize, &'static str)> = attrs
        .iter()
        .filter(|(name, _)| !used.contains(**name))
        .filter_map(|(name, values)| {
            let kinds: Vec<_> = values.iter().filter_map(|v| time_kind(v)).collect();
            (kinds.len() * 2 > n).then(|| (*name, kinds.len(), kinds[0]))
        })
        .collect();
    let rank = |name: &str| {
        let l = name.to_ascii_lowercase();
        if l.contains("connect") {
            0
        } else if l.contains("created") || l.contains("joined") || l.contains("since") {
            1
        } else if l.contains("seen") || l.contains("gone") || l.contains("updated") {
            3
        } else {
            2
        }
    };
    times.sort_by_key(|(name, count, _)| (rank(name), usize::MAX - count));
    if let Some(&(name, count, kind)) = times.first() {
        evidence.push(format!(
            "`{name}` holds {kind} in {}: when it connected",
            share(count)
        ));
        used.insert(name.to_owned());
        mapping.connected_at = Some(name.to_owned());
    } else {
        evidence.push(
            "no attribute holds a connect time: a record that answers 410 is marked first and deleted on a later run, the marks kept on this machine (not written into the table)".to_owned(),
        );
    }

    for (name, values) in &attrs {
        if used.contains(*name) {
            continue;
        }
        let strings: Vec<&str> = values
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let lower = name.to_ascii_lowercase();
        let ips = strings
            .iter()
            .filter(|s| s.parse::<IpAddr>().is_ok())
            .count();
        if mapping.source_ip.is_none() && ips * 2 > n {
            evidence.push(format!(
                "`{name}` holds IP addresses in {}: the source IP",
                share(ips)
            ));
            mapping.source_ip = Some((*name).to_owned());
        } else if mapping.user_agent.is_none() && lower.contains("agent") && !strings.is_empty() {
            evidence.push(format!("`{name}` is named as the user agent"));
            mapping.user_agent = Some((*name).to_owned());
        } else if mapping.domain_name.is_none() && lower == "domainname" {
            mapping.domain_name = Some((*name).to_owned());
        } else if mapping.stage.is_none() && lower == "stage" {
            mapping.stage = Some((*name).to_owned());
        } else if mapping.meta_map.is_none()
            && values.iter().all(|v| matches!(v, AttributeValue::M(_)))
        {
            evidence.push(format!(
                "`{name}` is a map in {}: its entries are meta",
                share(values.len())
            ));
            mapping.meta_map = Some((*name).to_owned());
        } else if values.iter().all(|v| {
            matches!(
                v,
                AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::Bool(_)
            )
        }) {
            mapping.meta.push((*name).to_owned());
        } else {
            continue;
        }
    }
    if !mapping.meta.is_empty() {
        let names: Vec<String> = mapping.meta.iter().map(|m| format!("`{m}`")).collect();
        evidence.push(format!(
            "{} shown and selected on as meta (`--where {}=...`)",
            names.join(", "),
            mapping.meta[0]
        ));
    }
    for (what, attribute) in mapping.attributes() {
        if what == "meta"
            && let Some(index) = keys.index_on(attribute)
        {
            evidence.push(format!(
                "index `{index}` is keyed by `{attribute}`: `--where {attribute}=...` queries it"
            ));
        }
    }
    if mapping.connected_at.is_some()
        && mapping.source_ip.is_some()
        && Mapping::ours(&mapping.id.attribute).connected_at == mapping.connected_at
        && mapping.meta_map.is_some()
        && mapping.id.pattern.is_whole()
        && keys.range.is_none()
    {
        // Our own schema: keep writing our marks as we always did.
        mapping = Mapping::ours(&mapping.id.attribute);
        evidence.push("this is wsadmin's own schema".to_owned());
    }
    Ok(Proposal {
        mapping,
        evidence,
        sampled: items.len(),
        connections,
    })
}

/// The attribute and pattern of the id: the string attribute whose values
/// (after a common `PREFIX#`) look like connection ids in the most items;
/// key attributes first on a tie.
fn choose_id(
    table: &str,
    keys: &KeySchema,
    items: &[Item],
    evidence: &mut Vec<String>,
) -> Result<(AttributeField, usize), DetectError> {
    // attribute -> prefix -> items whose value is prefix + an id.
    let mut found: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for item in items {
        for (name, value) in item {
            let AttributeValue::S(v) = value else {
                continue;
            };
            seen.entry(name.as_str()).or_insert(v.as_str());
            let prefix = prefix_of(v);
            if id_like(&v[prefix.len()..]) {
                *found.entry(name).or_default().entry(prefix).or_default() += 1;
            }
        }
    }
    let key_rank = |name: &str| {
        if keys.hash == name {
            0
        } else if keys.range.as_deref() == Some(name) {
            1
        } else if name.to_ascii_lowercase().contains("conn") {
            2
        } else {
            3
        }
    };
    let best = found
        .iter()
        .flat_map(|(name, prefixes)| prefixes.iter().map(move |(p, c)| (*name, *p, *c)))
        .max_by_key(|(name, prefix, count)| {
            (
                *count,
                std::cmp::Reverse(key_rank(name)),
                std::cmp::Reverse(prefix.len()),
            )
        });
    let Some((attribute, prefix, count)) = best else {
        let seen = seen
            .iter()
            .take(8)
            .map(|(n, v)| format!("`{n}` (e.g. {})", crate::text::cut_quoted(v, 24)))
            .collect::<Vec<_>>();
        return Err(DetectError::NoIdAttribute {
            table: table.to_owned(),
            sampled: items.len(),
            seen: if seen.is_empty() {
                "no string attribute at all".to_owned()
            } else {
                format!("string attributes seen: {}", seen.join(", "))
            },
        });
    };
    let pattern = Template::parse(&format!("{prefix}{{id}}")).expect("a prefix makes a pattern");
    let lens: BTreeSet<usize> = items
        .iter()
        .filter_map(|item| match item.get(attribute) {
            Some(AttributeValue::S(v)) => pattern.extract(v).filter(|id| id_like(id)).map(str::len),
            _ => None,
        })
        .collect();
    let len = match (lens.first(), lens.last()) {
        (Some(a), Some(b)) if a == b => format!("{a}-character"),
        (Some(a), Some(b)) => format!("{a}- to {b}-character"),
        _ => String::new(),
    };
    let what = if prefix.is_empty() {
        format!("a {len} base64 id")
    } else {
        format!("`{prefix}` + a {len} base64 id")
    };
    let role = if keys.hash == attribute {
        " (the hash key)"
    } else if keys.range.as_deref() == Some(attribute) {
        " (the range key: one connection may have several items)"
    } else {
        ""
    };
    evidence.push(format!(
        "`{attribute}`{role} holds {what} in {count} of {}",
        plural(items.len(), "sampled item")
    ));
    // The other item types, by their prefix.
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        match item.get(attribute) {
            Some(AttributeValue::S(v)) if pattern.extract(v).is_some_and(id_like) => {}
            Some(AttributeValue::S(v)) => {
                let p = prefix_of(v);
                let shape = if p.is_empty() {
                    crate::text::cut_quoted(v, 24).to_string()
                } else {
                    format!("`{p}...`")
                };
                *others.entry(shape).or_default() += 1;
            }
            _ => *others.entry(format!("without `{attribute}`")).or_default() += 1,
        }
    }
    for (shape, n) in others.iter().take(6) {
        let are = if *n == 1 { "item is" } else { "items are" };
        evidence.push(format!("{n} {are} {shape}: not connections, never touched"));
    }
    Ok((
        AttributeField {
            attribute: attribute.to_owned(),
            pattern,
        },
        count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }
    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }
    fn n(v: i64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    #[test]
    fn ids_look_like_api_gateways() {
        assert!(id_like("L0SM9cOFvHcCIhw="));
        // Random ids without a lowercase letter (seen in a test run), or
        // without an uppercase one.
        assert!(id_like("CHJLLULKT8IRAF4="));
        assert!(id_like("chjllulkt8iraf4="));
        for not in [
            "u1",
            "room-7",
            "META",
            "ROOM_MEMBERSHIP",
            "123456789012345=",
            "ABCDEFGHIJKLMN==",
            "1700000000000",
            "ana@example.com",
            "hello world foo",
        ] {
            assert!(!id_like(not), "{not}");
        }
    }

    #[test]
    fn a_single_table_is_read_by_its_prefix() {
        let keys = KeySchema {
            hash: "pk".into(),
            range: Some("sk".into()),
            indexes: vec![],
        };
        let mut items: Vec<Item> = (0..48)
            .map(|i| {
                let id = format!("L0SM9cOFvHcC{i:03}=");
                item(&[
                    ("pk", s(&format!("CONN#{id}"))),
                    ("sk", s("META")),
                    ("createdAt", n(1_700_000_000 + i)),
                    ("userId", s(&format!("u{i}"))),
                ])
            })
            .collect();
        items.push(item(&[("pk", s("USER#u1")), ("sk", s("PROFILE"))]));
        items.push(item(&[("pk", s("USER#u2")), ("sk", s("PROFILE"))]));
        let p = propose("t", &keys, None, &items).unwrap();
        assert_eq!(p.mapping.id.to_string(), "pk=CONN#{id}");
        assert_eq!(p.mapping.connected_at.as_deref(), Some("createdAt"));
        assert_eq!(p.mapping.meta, vec!["userId".to_owned()]);
        assert_eq!(p.mapping.gone_mark, None);
        assert_eq!(p.connections, 48);
        let text = p.evidence.join("\n");
        assert!(text.contains("`pk` (the hash key) holds `CONN#` + a 16-character base64 id in 48 of 50 sampled items"), "{text}");
        assert!(
            text.contains("2 items are `USER#...`: not connections"),
            "{text}"
        );
    }

    #[test]
    fn room_partitions_give_a_key_field() {
        let keys = KeySchema {
            hash: "pk".into(),
            range: Some("sk".into()),
            indexes: vec![],
        };
        let items: Vec<Item> = (0..10)
            .map(|i| {
                item(&[
                    ("pk", s(&format!("ROOM#{}", i % 3))),
                    ("sk", s(&format!("AbCdEfGhIjK{i:03}="))),
                    ("joinedAt", s("2026-12-03T10:00:00Z")),
                ])
            })
            .collect();
        let p = propose("t", &keys, None, &items).unwrap();
        assert_eq!(p.mapping.id.to_string(), "sk={id}");
        assert_eq!(p.mapping.key_fields[0].to_string(), "pk=ROOM#{room}");
        assert_eq!(p.mapping.connected_at.as_deref(), Some("joinedAt"));
    }

    #[test]
    fn a_table_without_ids_is_refused_with_what_was_seen() {
        let keys = KeySchema::hash_only("userId");
        let items = vec![item(&[("userId", s("u1")), ("name", s("Ana"))])];
        let e = propose("t", &keys, None, &items).unwrap_err();
        assert!(
            e.to_string()
                .contains("no attribute of table \"t\" looks like a connection id"),
            "{e}"
        );
        assert!(e.to_string().contains("`userId` (e.g. \"u1\")"), "{e}");
        assert!(matches!(
            propose("t", &keys, None, &[]),
            Err(DetectError::Empty { .. })
        ));
    }
}
