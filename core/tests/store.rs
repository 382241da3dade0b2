//! The connection store against a real dynalite.

use std::collections::HashMap;
use wsadmin_core::sdk::static_config_at;
use wsadmin_testkit::{TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};
use wsadmin_core::store::ScanOptions;
use wsadmin_core::{ConnectionRecord, ConnectionStore, StoreError, TableConfig, Ttl};
use wsadmin_testkit::dynalite::Dynalite;

/// The test credentials, DynamoDB at `db`.
fn sdk(db: &Dynalite) -> aws_config::SdkConfig {
    static_config_at(
        TEST_REGION,
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        db.endpoint(),
    )
}

async fn store_with_table(db: &Dynalite, table: TableConfig) -> ConnectionStore {
    let store = ConnectionStore::from_conf(&sdk(db), table);
    store.create_table().await.expect("create table");
    store
}

fn record(i: usize) -> ConnectionRecord {
    let mut r = ConnectionRecord::new(format!("conn{i:06}AAAA="))
        .connected_at(1_764_000_000_000 + i as i64);
    r.source_ip = Some(format!("10.0.{}.{}", i / 250, i % 250));
    r.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) wsadmin-test".to_owned());
    r.domain_name = Some("abc123.execute-api.us-east-1.amazonaws.com".to_owned());
    r.stage = Some("dev".to_owned());
    r.meta.insert("user".into(), format!("user{i}"));
    r
}

#[tokio::test]
async fn ten_thousand_records_stream_exactly_once_with_1_and_4_segments() {
    let db = Dynalite::start();
    let store = store_with_table(&db, TableConfig::default()).await;
    let records: Vec<_> = (0..10_000).map(record).collect();
    store.put_batch(&records).await.expect("batch write");

    for segments in [1, 4] {
        let mut pages = 0;
        let mut segments_seen = std::collections::BTreeSet::new();
        let mut seen: HashMap<String, ConnectionRecord> = HashMap::new();
        let mut stream = store.scan_pages(ScanOptions::segments(segments));
        while let Some(page) = stream.next().await {
            let page = page.expect("scan page");
            pages += 1;
            segments_seen.insert(page.segment);
            for r in page.records {
                let id = r.connection_id.clone();
                assert!(
                    seen.insert(id.clone(), r).is_none(),
                    "{id} seen twice with {segments} segments"
                );
            }
        }
        assert_eq!(seen.len(), 10_000, "{segments} segments");
        // ~2.3 MB of records: one segment must follow LastEvaluatedKey.
        let min_pages = if segments == 1 { 2 } else { segments as usize };
        assert!(
            pages >= min_pages,
            "{segments} segments gave only {pages} pages"
        );
        assert_eq!(segments_seen.len(), segments as usize);
        for r in &records {
            assert_eq!(
                seen.get(&r.connection_id),
                Some(r),
                "record read back unchanged"
            );
        }
    }

    // Small pages: many LastEvaluatedKey hops, still exactly once.
    let opts = ScanOptions {
        segments: 4,
        page_size: Some(333),
        ..ScanOptions::default()
    };
    let ids: Vec<String> = store.scan_ids(opts).try_collect().await.expect("scan ids");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (10_000, 10_000));
    assert_eq!(store.count(1).await.expect("count"), 10_000);
    assert_eq!(store.count(3).await.expect("count"), 10_000);
}

#[tokio::test]
async fn items_with_only_the_key_read_fine() {
    let db = Dynalite::start();
    let table = TableConfig::new("SeedConnections");
    let store = store_with_table(&db, table).await;
    // What the seed article's $connect writes: the id and nothing else.
    aws_sdk_dynamodb::Client::new(&sdk(&db))
        .put_item()
        .table_name("SeedConnections")
        .item("connectionId", AttributeValue::S("ToxbhduCIAMCEjw=".into()))
        .send()
        .await
        .expect("raw put");
    let got = store.get("ToxbhduCIAMCEjw=").await.expect("get");
    assert_eq!(got, Some(ConnectionRecord::new("ToxbhduCIAMCEjw=")));
    let all: Vec<_> = store
        .scan(ScanOptions::default())
        .try_collect()
        .await
        .expect("scan");
    assert_eq!(all, vec![ConnectionRecord::new("ToxbhduCIAMCEjw=")]);
}

#[tokio::test]
async fn a_custom_key_attribute_is_honoured() {
    let db = Dynalite::start();
    let store = store_with_table(&db, TableConfig::new("Other").with_key("id")).await;
    store.put(&record(1)).await.expect("put");
    assert_eq!(
        store.get(&record(1).connection_id).await.expect("get"),
        Some(record(1))
    );
    assert!(
        store
            .delete(&record(1).connection_id)
            .await
            .expect("delete")
    );
}

#[tokio::test]
async fn delete_reports_whether_the_record_existed_and_never_resurrects() {
    let db = Dynalite::start();
    let store = store_with_table(&db, TableConfig::default()).await;
    store.put_batch(&[record(1), record(2)]).await.expect("put");

    assert!(!store.delete("missingAAAA=").await.expect("delete missing"));
    assert_eq!(
        store.count(1).await.expect("count"),
        2,
        "a missing delete changes nothing"
    );
    assert_eq!(
        store.get("missingAAAA=").await.expect("get"),
        None,
        "and writes nothing"
    );

    assert!(
        store
            .delete(&record(1).connection_id)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete(&record(1).connection_id)
            .await
            .expect("delete again")
    );
    assert_eq!(store.count(1).await.expect("count"), 1);
    assert_eq!(
        store.get(&record(2).connection_id).await.expect("get"),
        Some(record(2))
    );
}

#[tokio::test]
async fn a_missing_table_is_named_with_what_to_do() {
    let db = Dynalite::start();
    let store = ConnectionStore::from_conf(&sdk(&db), TableConfig::new("NoSuchTable"));
    let err = store.get("abc=").await.expect_err("no table");
    assert!(matches!(err, StoreError::TableNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "table \"NoSuchTable\" not found in us-east-1 (deploy the stack with `wsstack up`, or run `wsstack local`; or name another table)"
    );
    let scan_err = store
        .scan(ScanOptions::default())
        .try_collect::<Vec<_>>()
        .await
        .expect_err("scan of no table");
    assert!(
        matches!(scan_err, StoreError::TableNotFound { .. }),
        "{scan_err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_a_clear_error() {
    let endpoint = format!("http://127.0.0.1:{}", wsadmin_testkit::closed_port());
    let store = ConnectionStore::from_conf(
        &static_config_at(
            TEST_REGION,
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
            endpoint.clone(),
        ),
        TableConfig::default(),
    );
    let err = store.count(1).await.expect_err("nothing listens");
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach DynamoDB at {endpoint}: ")),
        "names the endpoint: {text}"
    );
    assert!(text.contains("is it running"), "{text}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn bad_inputs_are_refused_before_any_request() {
    let db = Dynalite::start();
    let store = store_with_table(&db, TableConfig::default()).await;
    let err = store.delete("").await.expect_err("empty id");
    assert_eq!(err.to_string(), "invalid connection id \"\": it is empty");
    assert!(store.put(&ConnectionRecord::new("")).await.is_err());
    let err = store
        .scan(ScanOptions {
            segments: 0,
            ..ScanOptions::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .expect_err("zero segments");
    assert!(
        err.to_string().contains("segments must be between 1"),
        "{err}"
    );
}

#[tokio::test]
async fn create_table_is_idempotent_and_tolerates_missing_ttl_support() {
    let db = Dynalite::start();
    let store = ConnectionStore::from_conf(&sdk(&db), TableConfig::new("Fresh"));
    assert!(store.create_table().await.expect("create"));
    assert!(!store.create_table().await.expect("create again"));
    // dynalite has no TTL: reported, not an error.
    assert!(!store.enable_ttl().await.expect("ttl"));
    store.put(&record(7)).await.expect("usable");
}

#[tokio::test]
async fn describe_says_what_status_shows_with_typed_errors() {
    let db = Dynalite::start();
    let store = store_with_table(&db, TableConfig::default()).await;
    let desc = store.describe().await.expect("describe");
    assert_eq!(desc.status.as_deref(), Some("ACTIVE"));
    assert_eq!(
        desc.key_schema,
        vec![("connectionId".to_owned(), "HASH".to_owned())]
    );
    assert!(desc.has_key("connectionId") && !desc.has_key("id"));
    // dynalite describes TTL (off) though it cannot turn it on.
    assert_eq!(
        store.describe_ttl().await.expect("ttl"),
        Ttl::Described {
            status: "DISABLED".to_owned(),
            attribute: None
        }
    );

    let missing = ConnectionStore::from_conf(&sdk(&db), TableConfig::new("NoSuchTable"));
    let err = missing.describe().await.expect_err("no table");
    assert!(matches!(err, StoreError::TableNotFound { .. }), "{err:?}");
}
