//! Record decoding under arbitrary DynamoDB items (issue 8's "Bad input"):
//! any item, whatever its attribute names and types, decodes to a record or
//! to `MissingKey` (naming the key), never a panic; a record written by
//! `to_item` reads back equal, also with foreign attributes beside it.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use proptest::prelude::*;
use wsadmin_core::{ConnectionRecord, TableConfig};

/// The names our records use, so random items hit them often.
const KNOWN: &[&str] = &[
    "connectionId",
    "connectedAt",
    "sourceIp",
    "userAgent",
    "domainName",
    "stage",
    "expiresAt",
    "meta",
];

/// What DynamoDB may hold in a number: integers, decimals, exponents, and
/// (from a careless writer) anything.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("1e400".to_owned()),
        Just("-0.0".to_owned()),
        Just("NaN".to_owned()),
        any::<String>(),
    ]
}

fn attribute() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttributeValue::S),
        number_text().prop_map(AttributeValue::N),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| AttributeValue::B(Blob::new(b))),
        any::<bool>().prop_map(AttributeValue::Bool),
        any::<bool>().prop_map(AttributeValue::Null),
        prop::collection::vec(any::<String>(), 0..4).prop_map(AttributeValue::Ss),
        prop::collection::vec(number_text(), 0..4).prop_map(AttributeValue::Ns),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..3)
            .prop_map(|bs| AttributeValue::Bs(bs.into_iter().map(Blob::new).collect())),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            prop::collection::hash_map(name(), inner, 0..5).prop_map(AttributeValue::M),
        ]
    })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(KNOWN).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn item() -> impl Strategy<Value = HashMap<String, AttributeValue>> {
    prop::collection::hash_map(name(), attribute(), 0..10)
}

fn text() -> impl Strategy<Value = Option<String>> {
    // `to_item` leaves empty strings out (DynamoDB refuses them).
    prop::option::of(any::<String>().prop_filter("not empty", |s| !s.is_empty()))
}

fn record() -> impl Strategy<Value = ConnectionRecord> {
    (
        // Ids API Gateway could issue (others are not connections).
        "[A-Za-z0-9+=_-]{1,64}",
        prop::option::of(any::<i64>()),
        prop::option::of(any::<i64>()),
        (text(), text(), text(), text()),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..5),
    )
        .prop_map(
            |(id, connected_at, expires_at, (ip, ua, domain, stage), meta)| {
                let mut r = ConnectionRecord::new(id);
                r.connected_at = connected_at;
                r.expires_at = expires_at;
                r.source_ip = ip;
                r.user_agent = ua;
                r.domain_name = domain;
                r.stage = stage;
                r.meta = meta;
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any item: a record exactly when the key is a string that could be
    /// a connection id, else `MissingKey` naming the key. Never a panic.
    #[test]
    fn any_item_decodes_or_names_the_missing_key(item in item()) {
        let table = TableConfig::default();
        let id_like = |id: &str| wsadmin_core::record::validate_connection_id(id).is_ok();
        match (ConnectionRecord::from_item(&item, &table), item.get(table.key())) {
            (Ok(r), Some(AttributeValue::S(id))) => prop_assert_eq!(&r.connection_id, id),
            (Err(e), Some(AttributeValue::S(id))) if id_like(id) => {
                prop_assert!(false, "a string key must decode: {e}");
            }
            (Ok(r), _) => prop_assert!(false, "decoded without a string key: {r:?}"),
            (Err(e), _) => {
                prop_assert_eq!(e.key.as_str(), table.key());
                prop_assert!(e.to_string().contains("connectionId"), "{e}");
            }
        }
    }

    /// Another stack's key name: the same rule.
    #[test]
    fn any_key_name_is_honoured(item in item(), key in name()) {
        let table = TableConfig::default().with_key(key.clone());
        let decoded = ConnectionRecord::from_item(&item, &table);
        let id_like = |id: &str| wsadmin_core::record::validate_connection_id(id).is_ok();
        prop_assert_eq!(decoded.is_ok(), matches!(item.get(&key), Some(AttributeValue::S(id)) if id_like(id)));
    }

    /// Written by `to_item`, read back equal.
    #[test]
    fn records_round_trip(r in record()) {
        let table = TableConfig::default();
        let back = ConnectionRecord::from_item(&r.to_item(&table), &table);
        prop_assert_eq!(back, Ok(r));
    }

    /// Attributes another writer added beside ours change nothing.
    #[test]
    fn foreign_attributes_are_ignored(
        r in record(),
        extra in prop::collection::hash_map(any::<String>(), attribute(), 0..6),
    ) {
        let table = TableConfig::default();
        let mut item = r.to_item(&table);
        for (k, v) in extra {
            if !KNOWN.contains(&k.as_str()) && !item.contains_key(&k) {
                item.insert(k, v);
            }
        }
        let back = ConnectionRecord::from_item(&item, &table);
        prop_assert_eq!(back, Ok(r));
    }
}
