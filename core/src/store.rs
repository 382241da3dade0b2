//! The connection registry: one DynamoDB table, one item per connection.
//!
//! Owns every DynamoDB call wsadmin makes. Deletes are conditional on the item
//! existing, so a delete never resurrects, clobbers or double-counts a record
//! and concurrent pruners agree on who removed what. The scan is a stream:
//! pages (LastEvaluatedKey) of parallel segments (Segment/TotalSegments) are
//! yielded as they arrive, never collected first, so memory stays flat on any
//! table size; a [`ScanProgress`] says how far one got (a sweep stopped
//! early says what it never examined).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, Select, TableStatus, TimeToLiveSpecification, WriteRequest,
};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::filter::{Filter, Op};
use crate::marks::LocalMarks;
use crate::record::{
    ATTR_CONNECTED_AT, ATTR_EXPIRES_AT, ConnectionRecord, InvalidConnectionId, Item, MissingKey,
    TableConfig, validate_connection_id,
};
use crate::registry::{KeySchema, attribute_value};
use crate::retry::{RetryClass, RetryPolicy, Retryable};
use crate::sdk_error::{SdkFailure, classify};
use crate::stack::{KeyAttribute, TableKeys};

/// No TCP connection to DynamoDB within this long: unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of one call (a 1 MB scan page included) within this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// DynamoDB's limit on Scan TotalSegments.
pub const MAX_SEGMENTS: u32 = 1_000_000;
const BATCH_WRITE_MAX: usize = 25;
/// Our code for a batch write DynamoDB left partly unprocessed.
const UNPROCESSED: &str = "UnprocessedItems";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "table \"{table}\" not found in {region} (deploy the stack with `wsstack up`, or run `wsstack local`; or name another table)"
    )]
    TableNotFound { table: String, region: String },
    #[error(
        "no AWS credentials for DynamoDB: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error(
        "cannot reach DynamoDB at {endpoint}: {message} (is it running, and is the endpoint right? AWS_ENDPOINT_URL_DYNAMODB overrides it)"
    )]
    Unreachable { endpoint: String, message: String },
    #[error("DynamoDB {op} on table \"{table}\" failed: {message}")]
    Failed {
        op: &'static str,
        table: String,
        code: Option<String>,
        message: String,
    },
    #[error("table \"{table}\" holds an item that is not a connection record")]
    BadItem {
        table: String,
        #[source]
        source: MissingKey,
    },
    #[error(transparent)]
    InvalidId(#[from] InvalidConnectionId),
    #[error("invalid scan: {0}")]
    InvalidScan(&'static str),
}

impl StoreError {
    /// A stable, machine-readable name for reports; `unreachable`,
    /// `no_credentials` and `table_not_found` are about the target.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::TableNotFound { .. } => "table_not_found",
            StoreError::NoCredentials => "no_credentials",
            StoreError::Unreachable { .. } => "unreachable",
            StoreError::Failed { .. } => "store_failed",
            StoreError::BadItem { .. } => "bad_item",
            StoreError::InvalidId(_) => "invalid_connection_id",
            StoreError::InvalidScan(_) => "invalid_scan",
        }
    }

    /// Throttling and unreachable endpoints may pass; the rest will not.
    pub fn is_transient(&self) -> bool {
        self.retry_class() != RetryClass::Final
    }

    /// Whether the failure is about the table or its endpoint rather than
    /// one record. Decided by its kind ([`crate::failure`]).
    pub fn is_about_the_target(&self) -> bool {
        crate::failure::is_about_the_target(self.kind())
    }
}

impl Retryable for StoreError {
    fn retry_class(&self) -> RetryClass {
        match self {
            StoreError::Unreachable { .. } => RetryClass::Transient,
            StoreError::Failed { code, .. } => match code.as_deref() {
                Some(
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | UNPROCESSED,
                ) => RetryClass::Throttled,
                Some("InternalServerError" | "ServiceUnavailable" | "InternalFailure") => {
                    RetryClass::Transient
                }
                _ => RetryClass::Final,
            },
            _ => RetryClass::Final,
        }
    }
}

/// How to read the registry: a parallel Scan, or a Query on one partition
/// when a selector names it ([`ConnectionStore::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Parallel segments (DynamoDB TotalSegments), 1 to 1,000,000.
    pub segments: u32,
    /// Items per page (Scan `Limit`); `None` lets DynamoDB fill 1 MB pages.
    pub page_size: Option<u32>,
    /// Read one partition instead of the whole table (segments ignored).
    pub query: Option<Partition>,
    /// What of each item is read.
    pub fields: Fields,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            segments: 4,
            page_size: None,
            query: None,
            fields: Fields::All,
        }
    }
}

/// What a scan reads of each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fields {
    /// Every attribute: what is shown and selected on.
    #[default]
    All,
    /// Only what decides a connection's fate: the table's keys, the id,
    /// when it connected and the gone mark (a `ProjectionExpression`). For
    /// a run that selects on nothing and shows no record, as a broadcast
    /// to everyone: DynamoDB sends, and the SDK decodes, a fraction of each
    /// item. Records read so lack everything else.
    Decisions,
}

/// One partition: `attribute = value`, of the table or of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub index: Option<String>,
    pub attribute: String,
    pub value: String,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {:?}", self.attribute, self.value)?;
        if let Some(index) = &self.index {
            write!(f, " on index {index}")?;
        }
        Ok(())
    }
}

impl ScanOptions {
    /// Segments actually read: one for a Query.
    pub fn effective_segments(&self) -> u32 {
        if self.query.is_some() {
            1
        } else {
            self.segments
        }
    }

    pub fn segments(segments: u32) -> Self {
        Self {
            segments,
            ..Self::default()
        }
    }

    /// These options reading only `fields` of each item.
    pub fn reading(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }
}

/// One scan page: its records and how many items DynamoDB read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub segment: u32,
    pub records: Vec<ConnectionRecord>,
    /// Where its segment's scan stands after it (LastEvaluatedKey), for a
    /// scan resumed later ([`ConnectionStore::scan_pages_from`]); `None`:
    /// the segment ended with it.
    pub after: Option<HashMap<String, AttributeValue>>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// How far one scan got: pages and records read, segments read to their
/// end, records taken from it (examined by whoever reads the stream), and
/// whether it was read to its end. Updated by the scan as it goes; cheap to
/// clone, and its [`ScanProgress::report`] is valid at any time.
#[derive(Debug, Clone, Default)]
pub struct ScanProgress {
    inner: Arc<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    segments: AtomicU32,
    segments_done: AtomicU32,
    pages: AtomicU64,
    read: AtomicU64,
    /// Records read by the segments that were read to their end: what a
    /// segment holds, to estimate what the others did not read.
    read_in_done: AtomicU64,
    examined: AtomicU64,
    /// The stream was read to its end (every segment ended, read whole or
    /// failed).
    ended: AtomicBool,
    /// It read one partition with Query rather than scanning.
    queried: AtomicBool,
    /// Items read, connections or not, and those without the id attribute
    /// at all.
    items: AtomicU64,
    without_id: AtomicU64,
    /// The scan's end was checked for a mapping that fits nothing.
    checked: AtomicBool,
}

/// How far a scan got, as a report says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    /// Every segment was read to its end and every record examined.
    pub complete: bool,
    pub segments: u32,
    /// Segments read to their end.
    pub segments_done: u32,
    /// Pages read.
    pub pages: u64,
    pub records_read: u64,
    /// Records taken from the scan (matching the selection or not).
    pub records_examined: u64,
    /// Records never examined: read but left when the reader stopped, and
    /// those never read. Exact when every segment was read to its end,
    /// estimated (`estimated`) from the segments that were or DynamoDB's
    /// approximate item count otherwise; `None` when there is no telling.
    pub records_unexamined: Option<u64>,
    pub estimated: bool,
    /// One partition was read with Query (`pages` requests) instead of a
    /// Scan of the table.
    pub queried: bool,
}

impl ScanProgress {
    pub fn new() -> Self {
        Self::default()
    }

    /// How far the scan got, from what it read alone.
    pub fn report(&self) -> ScanReport {
        let p = &self.inner;
        let segments = p.segments.load(Ordering::Relaxed);
        let done = p.segments_done.load(Ordering::Relaxed);
        let read = p.read.load(Ordering::Relaxed);
        let examined = p.examined.load(Ordering::Relaxed);
        let left = read.saturating_sub(examined);
        let unfinished = segments.saturating_sub(done);
        // Segments are hash ranges of about one size: each unfinished one
        // holds about what a finished one did.
        let unread = (done > 0).then(|| {
            let per_segment = p.read_in_done.load(Ordering::Relaxed) as f64 / f64::from(done);
            let read_in_unfinished = read.saturating_sub(p.read_in_done.load(Ordering::Relaxed));
            ((per_segment * f64::from(unfinished)).round() as u64)
                .saturating_sub(read_in_unfinished)
        });
        ScanReport {
            complete: p.ended.load(Ordering::Relaxed) && segments > 0 && unfinished == 0,
            segments,
            segments_done: done,
            pages: p.pages.load(Ordering::Relaxed),
            records_read: read,
            records_examined: examined,
            records_unexamined: unread.map(|unread| left + unread),
            estimated: unfinished > 0,
            queried: p.queried.load(Ordering::Relaxed),
        }
    }

    fn started(&self, segments: u32) {
        self.inner.segments.store(segments, Ordering::Relaxed);
    }

    fn page(&self, records: usize) {
        self.inner.pages.fetch_add(1, Ordering::Relaxed);
        self.inner.read.fetch_add(records as u64, Ordering::Relaxed);
    }

    fn segment_done(&self, records: u64) {
        self.inner.segments_done.fetch_add(1, Ordering::Relaxed);
        self.inner
            .read_in_done
            .fetch_add(records, Ordering::Relaxed);
    }
}

/// What DescribeTable says about the registry's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDescription {
    /// `ACTIVE`, `CREATING`, …
    pub status: Option<String>,
    /// Each key attribute and its role: `("connectionId", "HASH")`.
    pub key_schema: Vec<(String, String)>,
    /// DynamoDB's approximate item count (refreshed every few hours).
    pub item_count: Option<i64>,
}

impl TableDescription {
    /// Whether `attribute` is one of the table's key attributes.
    pub fn has_key(&self, attribute: &str) -> bool {
        self.key_schema.iter().any(|(name, _)| name == attribute)
    }
}

/// Whether DynamoDB expires records itself (TTL on `expiresAt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ttl {
    /// What DescribeTimeToLive says: `ENABLED`, `DISABLED`, `ENABLING`, …
    /// and the attribute, when one is set.
    Described {
        status: String,
        attribute: Option<String>,
    },
    /// This DynamoDB has no TTL (dynalite): stale records wait for a prune.
    Unsupported,
}

#[derive(Debug, Clone)]
pub struct ConnectionStore {
    client: Client,
    table: TableConfig,
    /// The table's key schema, from DescribeTable on first need (or given).
    keys: Arc<tokio::sync::OnceCell<KeySchema>>,
    /// Gone marks for a registry wsadmin may not write them into.
    marks: Option<LocalMarks>,
    /// The mapping is our own schema (decided once, not per item).
    ours: bool,
    /// Where DynamoDB is, for error messages.
    endpoint: String,
    /// Every call retries throttling and transient failures with this (the
    /// SDK's own retries are off).
    retry: RetryPolicy,
}

/// What a DynamoDB operation's error is, whichever operation: its code
/// and message, as every error of the SDK has them.
trait ServiceError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {}

impl<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static> ServiceError for E {}

impl ConnectionStore {
    /// A store on a client built from shared SDK configuration (which honours
    /// `AWS_ENDPOINT_URL_DYNAMODB` for a local DynamoDB), with connect and
    /// read timeouts on every call, and our retry policy in place of the
    /// SDK's.
    pub fn from_conf(sdk: &aws_config::SdkConfig, table: TableConfig) -> Self {
        Self::at(sdk, None, table)
    }

    /// [`ConnectionStore::from_conf`] with DynamoDB at `endpoint` (a local
    /// DynamoDB), when given.
    pub fn at(sdk: &aws_config::SdkConfig, endpoint: Option<&str>, table: TableConfig) -> Self {
        let mut conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            );
        if let Some(url) = endpoint {
            conf = conf.endpoint_url(url);
        }
        // Where the calls surely go (given here or in code, not found in
        // the environment, which the SDK may be told to ignore).
        let set = sdk.get_origin("endpoint_url").is_client_config();
        let known = endpoint.or(sdk.endpoint_url().filter(|_| set));
        if let Some(http) = known.and_then(crate::sdk::http_client_for) {
            conf = conf.http_client(http);
        }
        let client = Client::from_conf(conf.build());
        // Named in errors: where the calls go.
        let endpoint = endpoint
            .or(sdk.endpoint_url())
            .map(str::to_owned)
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok())
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| match client.config().region() {
                Some(r) => format!("https://dynamodb.{r}.amazonaws.com"),
                None => "DynamoDB (no region)".to_owned(),
            });
        let marks = table
            .mapping
            .gone_mark
            .is_none()
            .then(|| LocalMarks::for_table(&table.name, &endpoint));
        Self {
            client,
            ours: table.mapping.is_ours(),
            table,
            keys: Arc::default(),
            marks,
            endpoint,
            retry: RetryPolicy::default(),
        }
    }

    /// The table's key schema, known (our own table, created by us): no
    /// DescribeTable is needed to learn it.
    pub fn with_key_schema(mut self, keys: KeySchema) -> Self {
        self.keys = Arc::new(tokio::sync::OnceCell::new_with(Some(keys)));
        self
    }

    /// Keeps local gone marks in `marks` (tests, and an operator's choice
    /// of place).
    pub fn with_local_marks(mut self, marks: LocalMarks) -> Self {
        if self.table.mapping.gone_mark.is_none() {
            self.marks = Some(marks);
        }
        self
    }

    /// Where gone marks are kept when not in the table.
    pub fn local_marks(&self) -> Option<&LocalMarks> {
        self.marks.as_ref()
    }

    /// The table's key attributes and its global secondary indexes, read
    /// with DescribeTable once.
    pub async fn keys(&self) -> Result<&KeySchema, StoreError> {
        self.keys
            .get_or_try_init(|| async {
                let out = self
                    .retry
                    .run(|_| async { self.describe_table().await })
                    .await?;
                let table = out.table.unwrap_or_else(|| {
                    aws_sdk_dynamodb::types::TableDescription::builder().build()
                });
                Ok(key_schema(&table, self.table.key()))
            })
            .await
    }

    /// Up to `limit` items as the table holds them, whatever they are (for
    /// [`crate::detect`]): a Scan in one segment, pages until enough.
    pub async fn sample(&self, limit: usize) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let want = (limit - items.len()).min(1000) as i32;
            let out = self
                .retry
                .run(|_| async {
                    self.client
                        .scan()
                        .table_name(&self.table.name)
                        .limit(want)
                        .set_exclusive_start_key(start.clone())
                        .send()
                        .await
                        .map_err(|e| self.error("Scan", e))
                })
                .await?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Whether one connection may have several items in this registry.
    pub async fn may_repeat(&self) -> Result<bool, StoreError> {
        Ok(self.keys().await?.may_repeat())
    }

    /// How to read the records `filter` selects: a Query on one partition
    /// when an equality requirement names a field of the table's hash key
    /// (`room=7` with `pk=ROOM#{room}`) or an index's hash key (`userId=u1`
    /// with an index on `userId`); otherwise `scan` unchanged. The filter
    /// still decides every record: a Query only reads less.
    pub async fn plan(&self, filter: &Filter, scan: ScanOptions) -> ScanOptions {
        let Ok(keys) = self.keys().await else {
            return scan;
        };
        let mapping = &self.table.mapping;
        let equals = filter
            .wheres
            .iter()
            .flat_map(|w| &w.requirements)
            .filter_map(|r| match &r.op {
                Op::Eq(p) => Some((r.key.as_str(), p.as_literal()?)),
                Op::In(ps) if ps.len() == 1 => Some((r.key.as_str(), ps[0].as_literal()?)),
                _ => None,
            });
        for (key, value) in equals {
            let by_field = mapping
                .key_field(key)
                .map(|f| (f.attribute.as_str(), f.pattern.render(value)));
            let by_attribute = mapping
                .meta
                .iter()
                .any(|m| m == key)
                .then(|| (key, value.to_owned()));
            for (attribute, value) in by_field.into_iter().chain(by_attribute) {
                let index = if keys.hash == attribute {
                    None
                } else if let Some(index) = keys.index_on(attribute) {
                    Some(index.to_owned())
                } else {
                    continue;
                };
                return ScanOptions {
                    query: Some(Partition {
                        index,
                        attribute: attribute.to_owned(),
                        value,
                    }),
                    ..scan
                };
            }
        }
        scan
    }

    /// Replaces the retry policy of every call.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Where DynamoDB is (as error messages name it).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The attributes [`Fields::Decisions`] reads: the table's keys (a
    /// record's `ReadKey`, for conditional deletes), the id, when it
    /// connected and the gone mark (the stale rule's facts).
    fn decision_attributes(&self, keys: &KeySchema) -> Vec<String> {
        let mapping = &self.table.mapping;
        let mut names: Vec<String> = [Some(&keys.hash), keys.range.as_ref()]
            .into_iter()
            .flatten()
            .chain([&mapping.id.attribute])
            .chain(mapping.connected_at.as_ref())
            .chain(mapping.gone_mark.as_ref())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn table(&self) -> &TableConfig {
        &self.table
    }

    fn region(&self) -> String {
        self.client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "no region".to_owned())
    }

    /// A conditional write's answer: whether it was made (`false`: its
    /// condition did not hold, which is no error).
    fn conditional<O, E>(
        &self,
        op: &'static str,
        res: Result<
            O,
            aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
        >,
    ) -> Result<bool, StoreError>
    where
        E: ServiceError,
    {
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error(op, e)),
        }
    }

    fn error<E>(
        &self,
        op: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ServiceError,
    {
        map_error(
            &self.table.name,
            &self.region(),
            &self.endpoint,
            op,
            classify(err),
        )
    }

    /// Writes (or overwrites) one record.
    pub async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        validate_connection_id(&record.connection_id)?;
        let item = record.to_item(&self.table);
        self.retry
            .run(|_| async {
                self.client
                    .put_item()
                    .table_name(&self.table.name)
                    .set_item(Some(item.clone()))
                    .send()
                    .await
                    .map_err(|e| self.error("PutItem", e))
            })
            .await?;
        Ok(())
    }

    /// Writes many records with BatchWriteItem (25 a call), retrying the
    /// unprocessed remainder with backoff.
    pub async fn put_batch(&self, records: &[ConnectionRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(BATCH_WRITE_MAX) {
            let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for record in chunk {
                validate_connection_id(&record.connection_id)?;
                let put = PutRequest::builder()
                    .set_item(Some(record.to_item(&self.table)))
                    .build()
                    .map_err(|e| StoreError::Failed {
                        op: "BatchWriteItem",
                        table: self.table.name.clone(),
                        code: None,
                        message: e.to_string(),
                    })?;
                pending.push(WriteRequest::builder().put_request(put).build());
            }
            // DynamoDB may leave part of a batch unprocessed (throttling):
            // that part is retried like any throttled call, by the policy.
            let pending = std::sync::Mutex::new(pending);
            let lock = || {
                pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            };
            self.retry
                .run(|_| async {
                    let batch = lock().clone();
                    let out = self
                        .client
                        .batch_write_item()
                        .request_items(&self.table.name, batch)
                        .send()
                        .await
                        .map_err(|e| self.error("BatchWriteItem", e))?;
                    let rest = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&self.table.name))
                        .unwrap_or_default();
                    let left = rest.len();
                    *lock() = rest;
                    if left == 0 {
                        Ok(())
                    } else {
                        Err(StoreError::Failed {
                            op: "BatchWriteItem",
                            table: self.table.name.clone(),
                            code: Some(UNPROCESSED.to_owned()),
                            message: format!("{left} items were left unprocessed (throttled)"),
                        })
                    }
                })
                .await?;
        }
        Ok(())
    }

    /// The record of a connection (its first item, when it has several).
    pub async fn get(&self, connection_id: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        Ok(self.items(connection_id).await?.into_iter().next())
    }

    /// Every item of a connection: a GetItem when its key is the id, a
    /// Query on its partition or on an index keyed by the id attribute, and
    /// otherwise a Scan filtered on the id (a table that neither keys nor
    /// indexes its connections by id).
    pub async fn items(&self, connection_id: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        validate_connection_id(connection_id)?;
        let keys = self.keys().await?;
        let mapping = &self.table.mapping;
        let attribute = mapping.id.attribute.as_str();
        let value = mapping.id.pattern.render(connection_id);
        if keys.hash == attribute && keys.range.is_none() {
            let out = self
                .retry
                .run(|_| async {
                    self.client
                        .get_item()
                        .table_name(&self.table.name)
                        .key(attribute, AttributeValue::S(value.clone()))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| self.error("GetItem", e))
                })
                .await?;
            return Ok(out
                .item
                .and_then(|item| self.record(&item, keys))
                .into_iter()
                .collect());
        }
        let index = (keys.hash != attribute)
            .then(|| keys.index_on(attribute).map(str::to_owned))
            .flatten();
        let opts = if keys.hash == attribute || index.is_some() {
            ScanOptions {
                segments: 1,
                query: Some(Partition {
                    index,
                    attribute: attribute.to_owned(),
                    value: value.clone(),
                }),
                ..ScanOptions::default()
            }
        } else {
            ScanOptions {
                segments: 1,
                ..ScanOptions::default()
            }
        };
        let mut found = Vec::new();
        let mut pages = self.filtered_pages(opts, Some((attribute.to_owned(), value)));
        while let Some(page) = pages.next().await {
            found.extend(
                page?
                    .records
                    .into_iter()
                    .filter(|r| r.connection_id == connection_id),
            );
        }
        Ok(found)
    }

    /// Deletes every item of a connection, each only if it exists. Returns
    /// whether any existed; a missing record is no error and nothing is
    /// written. For a connection this run closed itself, or whose
    /// `$disconnect` ran: a record after a mere 410 goes through
    /// [`ConnectionStore::delete_stale`].
    pub async fn delete(&self, connection_id: &str) -> Result<bool, StoreError> {
        validate_connection_id(connection_id)?;
        let keys = self.keys().await?;
        if keys.hash == self.table.key() && keys.range.is_none() {
            // The id is the whole key: one conditional delete.
            return self
                .delete_item(&ConnectionRecord::new(connection_id))
                .await;
        }
        let mut any = false;
        for record in self.items(connection_id).await? {
            any |= self.delete_item(&record).await?;
        }
        Ok(any)
    }

    /// Deletes this item of a connection (as read), only if it still
    /// exists and still holds this connection. For another item of a
    /// connection already found gone, or closed by this run.
    pub async fn delete_item(&self, record: &ConnectionRecord) -> Result<bool, StoreError> {
        self.delete_if(record, None).await
    }

    /// Deletes a record only if it exists and is stale by
    /// [`crate::stale`]'s rule. In our own table the condition is the rule
    /// itself (`connectedAt` or `goneSeenAt` before `cutoff_ms`), so a
    /// record read long ago is never deleted on stale facts; in a team's
    /// table, whose times may be seconds or text, the condition is that the
    /// item still holds this connection (ids are never reused, so its
    /// facts are the ones judged). Returns whether it was deleted (false:
    /// missing, or not stale after all).
    pub async fn delete_stale(
        &self,
        record: &ConnectionRecord,
        cutoff_ms: i64,
    ) -> Result<bool, StoreError> {
        self.delete_if(record, Some(cutoff_ms)).await
    }

    /// The key of the item a record was read from, or, for a record known
    /// only by its id, the key its id gives when the id is the whole key.
    fn item_key(&self, record: &ConnectionRecord) -> Result<Item, StoreError> {
        if let Some(key) = record.key.get() {
            return Ok(key
                .iter()
                .map(|(name, v)| (name.clone(), attribute_value(v)))
                .collect());
        }
        let mapping = &self.table.mapping;
        match self.keys.get() {
            Some(keys) if keys.hash == mapping.id.attribute && keys.range.is_none() => {}
            None if mapping.is_ours() => {}
            _ => {
                return Err(StoreError::Failed {
                    op: "DeleteItem",
                    table: self.table.name.clone(),
                    code: None,
                    message: format!(
                        "the record of {} was not read from the table, and its id alone is not its key",
                        record.connection_id
                    ),
                });
            }
        }
        Ok(Item::from([(
            mapping.id.attribute.clone(),
            AttributeValue::S(mapping.id.pattern.render(&record.connection_id)),
        )]))
    }

    async fn delete_if(
        &self,
        record: &ConnectionRecord,
        stale_before: Option<i64>,
    ) -> Result<bool, StoreError> {
        validate_connection_id(&record.connection_id)?;
        let key = self.item_key(record)?;
        let mapping = &self.table.mapping;
        let ours = mapping.is_ours();
        self.retry
            .run(|_| async {
                let mut req = self
                    .client
                    .delete_item()
                    .table_name(&self.table.name)
                    .set_key(Some(key.clone()))
                    .expression_attribute_names("#k", &mapping.id.attribute)
                    .expression_attribute_values(
                        ":id",
                        AttributeValue::S(mapping.id.pattern.render(&record.connection_id)),
                    );
                req = match (stale_before, ours, &mapping.gone_mark) {
                    (Some(cutoff), true, Some(mark)) => req
                        .condition_expression("#k = :id AND (#c < :cutoff OR #g < :cutoff)")
                        .expression_attribute_names("#c", ATTR_CONNECTED_AT)
                        .expression_attribute_names("#g", mark)
                        .expression_attribute_values(
                            ":cutoff",
                            AttributeValue::N(cutoff.to_string()),
                        ),
                    _ => req.condition_expression("#k = :id"),
                };
                self.conditional("DeleteItem", req.send().await)
            })
            .await
    }

    /// Marks the record of a connection that answered 410 for the first
    /// time, unless it is missing or already marked: in the table when the
    /// mapping names an attribute for it (ours: `goneSeenAt`), otherwise in
    /// local state ([`crate::marks`]). Returns whether this call marked it.
    pub async fn mark_gone(
        &self,
        record: &ConnectionRecord,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        validate_connection_id(&record.connection_id)?;
        let mapping = &self.table.mapping;
        let Some(mark) = &mapping.gone_mark else {
            let marks = self
                .marks
                .as_ref()
                .expect("local marks without a gone-mark attribute");
            return marks
                .mark(&record.connection_id, at_ms)
                .map_err(|e| StoreError::Failed {
                    op: "mark",
                    table: self.table.name.clone(),
                    code: None,
                    message: crate::sdk_error::chain(&e),
                });
        };
        let key = self.item_key(record)?;
        self.retry
            .run(|_| async {
                let res = self
                    .client
                    .update_item()
                    .table_name(&self.table.name)
                    .set_key(Some(key.clone()))
                    .update_expression("SET #g = :at")
                    .condition_expression("#k = :id AND attribute_not_exists(#g)")
                    .expression_attribute_names("#k", &mapping.id.attribute)
                    .expression_attribute_names("#g", mark)
                    .expression_attribute_values(
                        ":id",
                        AttributeValue::S(mapping.id.pattern.render(&record.connection_id)),
                    )
                    .expression_attribute_values(":at", AttributeValue::N(at_ms.to_string()))
                    .send()
                    .await;
                self.conditional("UpdateItem", res)
            })
            .await
    }

    /// The record an item holds through the mapping; `None` for an item
    /// that is not a connection (another item type of a single table).
    fn record(&self, item: &Item, keys: &KeySchema) -> Option<ConnectionRecord> {
        let mut record = self.table.mapping.record_with(item, keys, self.ours).ok()?;
        if let Some(marks) = &self.marks {
            record.gone_seen_at = marks.get(&record.connection_id);
        }
        Some(record)
    }

    /// Every page of every segment, as pages arrive. Segments are scanned
    /// concurrently; each segment follows LastEvaluatedKey to its end. An
    /// error ends its segment's stream (the others go on).
    pub fn scan_pages(&self, opts: ScanOptions) -> BoxStream<Result<Page, StoreError>> {
        self.pages(opts, &ScanProgress::new())
    }

    /// [`ConnectionStore::scan_pages`] from where an earlier scan stood:
    /// segment `i` starts at `from[i]` (`None`: it was read to its end, and
    /// counts as done). A page taken from the stream counts its records
    /// examined in `progress`; the scan is complete once the stream ends
    /// with every segment read whole. `from` must have one entry per
    /// segment.
    pub fn scan_pages_from(
        &self,
        opts: ScanOptions,
        from: Vec<Option<Cursor>>,
        progress: &ScanProgress,
    ) -> BoxStream<Result<Page, StoreError>> {
        if from.len() != opts.effective_segments() as usize {
            return Box::pin(stream::once(async {
                Err(StoreError::InvalidScan(
                    "a resumed scan needs one start per segment",
                ))
            }));
        }
        let examined = progress.clone();
        let ended = progress.clone();
        Box::pin(
            self.pages_from(opts, from, progress, None)
                .inspect_ok(move |page| {
                    examined
                        .inner
                        .examined
                        .fetch_add(page.records.len() as u64, Ordering::Relaxed);
                })
                .chain(stream::poll_fn(move |_| {
                    ended.inner.ended.store(true, Ordering::Relaxed);
                    Poll::Ready(None)
                })),
        )
    }

    fn pages(
        &self,
        opts: ScanOptions,
        progress: &ScanProgress,
    ) -> BoxStream<Result<Page, StoreError>> {
        let from = vec![Some(Cursor::Start); opts.effective_segments().min(MAX_SEGMENTS) as usize];
        self.pages_from(opts, from, progress, None)
    }

    /// [`ConnectionStore::scan_pages`] with DynamoDB filtering on
    /// `attribute = value` (a connection's items in a table that does not
    /// key them by id).
    fn filtered_pages(
        &self,
        opts: ScanOptions,
        only: Option<(String, String)>,
    ) -> BoxStream<Result<Page, StoreError>> {
        let from = vec![Some(Cursor::Start); opts.effective_segments().min(MAX_SEGMENTS) as usize];
        self.pages_from(opts, from, &ScanProgress::new(), only)
    }

    fn pages_from(
        &self,
        opts: ScanOptions,
        from: Vec<Option<Cursor>>,
        progress: &ScanProgress,
        only: Option<(String, String)>,
    ) -> BoxStream<Result<Page, StoreError>> {
        if opts.segments == 0 || opts.segments > MAX_SEGMENTS {
            return Box::pin(stream::once(async {
                Err(StoreError::InvalidScan(
                    "segments must be between 1 and 1,000,000",
                ))
            }));
        }
        if opts.page_size == Some(0) {
            return Box::pin(stream::once(async {
                Err(StoreError::InvalidScan("page size must be at least 1"))
            }));
        }
        let segments = opts.effective_segments();
        progress.started(segments);
        progress
            .inner
            .queried
            .store(opts.query.is_some(), Ordering::Relaxed);
        let segments = (0..segments).zip(from).filter_map(|(segment, start)| {
            let Some(start) = start else {
                progress.segment_done(0);
                return None;
            };
            let store = self.clone();
            let pages = segment_pages(
                store,
                segment,
                opts.clone(),
                only.clone(),
                start,
                progress.clone(),
            );
            Some(Box::pin(pages) as BoxStream<_>)
        });
        Box::pin(stream::select_all(segments))
    }

    /// Every record, as pages arrive.
    pub fn scan(&self, opts: ScanOptions) -> BoxStream<Result<ConnectionRecord, StoreError>> {
        self.scan_tracked(opts, &ScanProgress::new())
    }

    /// [`ConnectionStore::scan`], telling `progress` how far it got: a
    /// record taken from the stream is examined; the scan is complete once
    /// the stream has been read to its end with every segment read whole.
    pub fn scan_tracked(
        &self,
        opts: ScanOptions,
        progress: &ScanProgress,
    ) -> BoxStream<Result<ConnectionRecord, StoreError>> {
        let examined = progress.clone();
        let ended = progress.clone();
        let (table, key) = (self.table.name.clone(), self.table.key().to_owned());
        Box::pin(
            self.pages(opts, progress)
                .map_ok(|page| stream::iter(page.records.into_iter().map(Ok)))
                .try_flatten()
                .inspect_ok(move |_| {
                    examined.inner.examined.fetch_add(1, Ordering::Relaxed);
                })
                .chain(stream::poll_fn(move |_| {
                    let p = &ended.inner;
                    p.ended.store(true, Ordering::Relaxed);
                    // Items, and not one has the id attribute: the mapping
                    // names the wrong one. (Items that have it in another
                    // shape are other item types, no error.)
                    let items = p.items.load(Ordering::Relaxed);
                    if !p.checked.swap(true, Ordering::Relaxed)
                        && items > 0
                        && p.without_id.load(Ordering::Relaxed) == items
                    {
                        return Poll::Ready(Some(Err(StoreError::BadItem {
                            table: table.clone(),
                            source: MissingKey { key: key.clone() },
                        })));
                    }
                    Poll::Ready(None)
                })),
        )
    }

    /// How far a scan got ([`ScanProgress::report`]); when it stopped
    /// before any segment was read whole, DynamoDB's approximate item count
    /// (one DescribeTable, a failure ignored) estimates what it never
    /// examined, if it holds more than was read.
    pub async fn scan_report(&self, progress: &ScanProgress) -> ScanReport {
        let mut report = progress.report();
        if report.records_unexamined.is_none()
            && let Ok(TableDescription {
                item_count: Some(count),
                ..
            }) = self.describe().await
            && let Ok(count) = u64::try_from(count)
            && count > report.records_read
        {
            report.records_unexamined = Some(count - report.records_examined);
        }
        report
    }

    /// Every connection id, as pages arrive.
    pub fn scan_ids(&self, opts: ScanOptions) -> BoxStream<Result<String, StoreError>> {
        Box::pin(self.scan(opts).map_ok(|r| r.connection_id))
    }

    /// The exact number of records (a paged `Select=COUNT` scan of the
    /// items that have the id attribute, with the pattern's prefix).
    pub async fn count(&self, segments: u32) -> Result<u64, StoreError> {
        if segments == 0 || segments > MAX_SEGMENTS {
            return Err(StoreError::InvalidScan(
                "segments must be between 1 and 1,000,000",
            ));
        }
        let counts = (0..segments).map(|segment| {
            let store = self.clone();
            async move {
                let mut total = 0u64;
                let mut start: Option<Item> = None;
                loop {
                    let out = store
                        .retry
                        .run(|_| async {
                            let mut req = store
                                .client
                                .scan()
                                .table_name(&store.table.name)
                                .select(Select::Count)
                                .segment(segment as i32)
                                .total_segments(segments as i32)
                                .set_exclusive_start_key(start.clone());
                            // Only the items that are connections (a
                            // single table holds other types too).
                            let id = &store.table.mapping.id;
                            let prefix = id.pattern.prefix();
                            req = req.expression_attribute_names("#i", &id.attribute);
                            req = if !prefix.is_empty() {
                                req.filter_expression("begins_with(#i, :p)")
                                    .expression_attribute_values(
                                        ":p",
                                        AttributeValue::S(prefix.to_owned()),
                                    )
                            } else {
                                req.filter_expression("attribute_exists(#i)")
                            };
                            req.send().await.map_err(|e| store.error("Scan", e))
                        })
                        .await?;
                    total += out.count.max(0) as u64;
                    match out.last_evaluated_key {
                        Some(k) if !k.is_empty() => start = Some(k),
                        _ => return Ok::<_, StoreError>(total),
                    }
                }
            }
        });
        let totals = futures::future::try_join_all(counts).await?;
        Ok(totals.into_iter().sum())
    }

    /// Creates the table (on-demand billing, string hash key) and waits until
    /// it is active. Returns false when it already existed.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        self.create_table_with(None).await
    }

    /// [`create_table`](Self::create_table) with the key schema a stack
    /// declares (`None`: our own, a string hash key named as configured).
    pub async fn create_table_with(&self, keys: Option<&TableKeys>) -> Result<bool, StoreError> {
        let own = TableKeys {
            hash: KeyAttribute {
                name: self.table.key().to_owned(),
                kind: "S".into(),
            },
            range: None,
            indexes: Vec::new(),
        };
        let keys = keys.unwrap_or(&own);
        let mut create = self
            .client
            .create_table()
            .table_name(&self.table.name)
            .billing_mode(BillingMode::PayPerRequest);
        let parts = std::iter::once((&keys.hash, KeyType::Hash))
            .chain(keys.range.iter().map(|r| (r, KeyType::Range)));
        let mut defined: Vec<String> = Vec::new();
        let mut define = |create: aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
                          key: &KeyAttribute|
         -> Result<_, StoreError> {
            if defined.contains(&key.name) {
                return Ok(create);
            }
            defined.push(key.name.clone());
            Ok(create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&key.name)
                    .attribute_type(ScalarAttributeType::from(key.kind.as_str()))
                    .build()
                    .map_err(|e| self.build_error("CreateTable", e))?,
            ))
        };
        for index in &keys.indexes {
            create = define(create, &index.hash)?;
            let gsi = aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(&index.hash.name)
                        .key_type(KeyType::Hash)
                        .build()
                        .map_err(|e| self.build_error("CreateTable", e))?,
                )
                .projection(
                    aws_sdk_dynamodb::types::Projection::builder()
                        .projection_type(aws_sdk_dynamodb::types::ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| self.build_error("CreateTable", e))?;
            create = create.global_secondary_indexes(gsi);
        }
        for (key, key_type) in parts {
            create = define(create, key)?.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(&key.name)
                    .key_type(key_type)
                    .build()
                    .map_err(|e| self.build_error("CreateTable", e))?,
            );
        }
        let res = create.send().await;
        let created = match res {
            Ok(_) => true,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                false
            }
            Err(e) => return Err(self.error("CreateTable", e)),
        };
        for _ in 0..600 {
            let out = self.describe_table().await?;
            if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
                return Ok(created);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StoreError::Failed {
            op: "DescribeTable",
            table: self.table.name.clone(),
            code: None,
            message: "table did not become ACTIVE within 60 s".to_owned(),
        })
    }

    /// One DescribeTable request.
    async fn describe_table(
        &self,
    ) -> Result<aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput, StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table.name)
            .send()
            .await
            .map_err(|e| self.error("DescribeTable", e))
    }

    /// DescribeTable, once (a diagnosis: no retries). A missing table is
    /// [`StoreError::TableNotFound`].
    pub async fn describe(&self) -> Result<TableDescription, StoreError> {
        let out = self.describe_table().await?;
        let desc = out.table.ok_or_else(|| StoreError::Failed {
            op: "DescribeTable",
            table: self.table.name.clone(),
            code: None,
            message: "DescribeTable answered nothing".to_owned(),
        })?;
        Ok(TableDescription {
            status: desc.table_status().map(|s| s.as_str().to_owned()),
            key_schema: desc
                .key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect(),
            item_count: desc.item_count(),
        })
    }

    /// DescribeTimeToLive, once (a diagnosis: no retries).
    pub async fn describe_ttl(&self) -> Result<Ttl, StoreError> {
        match self
            .client
            .describe_time_to_live()
            .table_name(&self.table.name)
            .send()
            .await
        {
            Ok(out) => Ok(match out.time_to_live_description() {
                Some(d) => Ttl::Described {
                    status: d
                        .time_to_live_status()
                        .map_or("unknown", |s| s.as_str())
                        .to_owned(),
                    attribute: d.attribute_name().map(str::to_owned),
                },
                None => Ttl::Described {
                    status: "DISABLED".to_owned(),
                    attribute: None,
                },
            }),
            Err(e) => match classify(e) {
                SdkFailure::Service { code, .. }
                    if code.as_deref() == Some("UnknownOperationException") =>
                {
                    Ok(Ttl::Unsupported)
                }
                other => Err(map_error(
                    &self.table.name,
                    &self.region(),
                    &self.endpoint,
                    "DescribeTimeToLive",
                    other,
                )),
            },
        }
    }

    /// Turns DynamoDB TTL on for `expiresAt`. Returns false when the service
    /// has no TTL support (dynalite answers UnknownOperationException), so
    /// local stacks go on without it.
    pub async fn enable_ttl(&self) -> Result<bool, StoreError> {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(ATTR_EXPIRES_AT)
            .build()
            .map_err(|e| self.build_error("UpdateTimeToLive", e))?;
        match self
            .client
            .update_time_to_live()
            .table_name(&self.table.name)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match classify(e) {
                SdkFailure::Service { code, message, .. }
                    if code.as_deref() == Some("UnknownOperationException") =>
                {
                    tracing::debug!("no TTL support: {message}");
                    Ok(false)
                }
                SdkFailure::Service { code, message, .. }
                    if code.as_deref() == Some("ValidationException")
                        && message.contains("already enabled") =>
                {
                    Ok(true)
                }
                other => Err(map_error(
                    &self.table.name,
                    &self.region(),
                    &self.endpoint,
                    "UpdateTimeToLive",
                    other,
                )),
            },
        }
    }

    fn build_error(&self, op: &'static str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Failed {
            op,
            table: self.table.name.clone(),
            code: None,
            message: e.to_string(),
        }
    }
}

/// The key schema and indexes a DescribeTable answer gives; a table it
/// says nothing of is taken as keyed by `id_attribute` alone.
fn key_schema(table: &aws_sdk_dynamodb::types::TableDescription, id_attribute: &str) -> KeySchema {
    let role = |schema: &[KeySchemaElement], role: KeyType| {
        schema
            .iter()
            .find(|k| *k.key_type() == role)
            .map(|k| k.attribute_name().to_owned())
    };
    let Some(hash) = role(table.key_schema(), KeyType::Hash) else {
        return KeySchema::hash_only(id_attribute);
    };
    KeySchema {
        hash,
        range: role(table.key_schema(), KeyType::Range),
        indexes: table
            .global_secondary_indexes()
            .iter()
            .filter_map(|index| {
                Some((
                    index.index_name()?.to_owned(),
                    role(index.key_schema(), KeyType::Hash)?,
                ))
            })
            .collect(),
    }
}

fn map_error(
    table: &str,
    region: &str,
    endpoint: &str,
    op: &'static str,
    failure: SdkFailure,
) -> StoreError {
    match failure {
        SdkFailure::Service { code, message, .. }
            if code.as_deref() == Some("ResourceNotFoundException") =>
        {
            let _ = (message, endpoint);
            StoreError::TableNotFound {
                table: table.to_owned(),
                region: region.to_owned(),
            }
        }
        SdkFailure::Service { code, message, .. } => StoreError::Failed {
            op,
            table: table.to_owned(),
            code,
            message,
        },
        SdkFailure::NoCredentials => StoreError::NoCredentials,
        SdkFailure::Unreachable(message) => StoreError::Unreachable {
            endpoint: endpoint.to_owned(),
            message,
        },
        SdkFailure::Timeout(message) => StoreError::Unreachable {
            endpoint: endpoint.to_owned(),
            message: format!("timed out ({message})"),
        },
        SdkFailure::Other(message) => StoreError::Failed {
            op,
            table: table.to_owned(),
            code: None,
            message,
        },
    }
}

/// A Query or Scan request reading only the attributes `names` (as
/// `#p0, #p1, …`).
macro_rules! project {
    ($req:expr, $names:expr) => {{
        let mut req = $req;
        let mut expression = String::new();
        for (i, name) in $names.iter().enumerate() {
            let placeholder = format!("#p{i}");
            if i > 0 {
                expression.push_str(", ");
            }
            expression.push_str(&placeholder);
            req = req.expression_attribute_names(placeholder, name.as_str());
        }
        req.projection_expression(expression)
    }};
}

/// A Query or Scan request narrowed to the items `only` selects
/// (`Some((attribute, value))`) and the attributes `projected` names.
macro_rules! narrowed {
    ($req:expr, $only:expr, $projected:expr) => {{
        let mut req = $req;
        if let Some((attribute, value)) = $only {
            req = only_where!(req, attribute, value);
        }
        if let Some(names) = $projected {
            req = project!(req, names);
        }
        req
    }};
}

/// A Query or Scan request (their builders share no trait) filtered on
/// `attribute = value`.
macro_rules! only_where {
    ($req:expr, $attribute:expr, $value:expr) => {
        $req.filter_expression("#f = :f")
            .expression_attribute_names("#f", $attribute)
            .expression_attribute_values(":f", AttributeValue::S($value.clone()))
    };
}

/// Where one segment's scan starts: its beginning, or after a key
/// (an ExclusiveStartKey, a page's [`Page::after`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    Start,
    After(HashMap<String, AttributeValue>),
}

fn segment_pages(
    store: ConnectionStore,
    segment: u32,
    opts: ScanOptions,
    only: Option<(String, String)>,
    start: Cursor,
    progress: ScanProgress,
) -> impl Stream<Item = Result<Page, StoreError>> + Send {
    // The cursor, and the records this segment read so far.
    stream::try_unfold((Some(start), 0u64), move |(cursor, read)| {
        let store = store.clone();
        let progress = progress.clone();
        let opts = opts.clone();
        let only = only.clone();
        async move {
            let keys = store.keys().await?.clone();
            let projected = match opts.fields {
                Fields::All => None,
                Fields::Decisions => Some(store.decision_attributes(&keys)),
            };
            let start = match cursor {
                None => return Ok(None),
                Some(Cursor::Start) => None,
                Some(Cursor::After(key)) => Some(key),
            };
            // A failed page is retried with the one policy; only when
            // that gives up does its segment end.
            let limit = opts.page_size.map(|n| n.min(i32::MAX as u32) as i32);
            let (items, last) = match &opts.query {
                Some(partition) => {
                    let out = store
                        .retry
                        .run(|_| async {
                            let req = store
                                .client
                                .query()
                                .table_name(&store.table.name)
                                .set_index_name(partition.index.clone())
                                .key_condition_expression("#q = :q")
                                .expression_attribute_names("#q", &partition.attribute)
                                .expression_attribute_values(
                                    ":q",
                                    AttributeValue::S(partition.value.clone()),
                                )
                                .set_exclusive_start_key(start.clone())
                                .set_limit(limit);
                            narrowed!(req, &only, &projected)
                                .send()
                                .await
                                .map_err(|e| store.error("Query", e))
                        })
                        .await?;
                    (out.items, out.last_evaluated_key)
                }
                None => {
                    let out = store
                        .retry
                        .run(|_| async {
                            let mut req = store
                                .client
                                .scan()
                                .table_name(&store.table.name)
                                .set_exclusive_start_key(start.clone())
                                .set_limit(limit);
                            if opts.segments > 1 {
                                req = req
                                    .segment(segment as i32)
                                    .total_segments(opts.segments as i32);
                            }
                            narrowed!(req, &only, &projected)
                                .send()
                                .await
                                .map_err(|e| store.error("Scan", e))
                        })
                        .await?;
                    (out.items, out.last_evaluated_key)
                }
            };
            // Items that are not connections (other types of a single
            // table) are left out: never listed, posted to or deleted.
            let items = items.unwrap_or_default();
            let records: Vec<ConnectionRecord> = items
                .iter()
                .filter_map(|item| store.record(item, &keys))
                .collect();
            let without_id = items
                .iter()
                .filter(|item| !item.contains_key(store.table.key()))
                .count();
            progress
                .inner
                .without_id
                .fetch_add(without_id as u64, Ordering::Relaxed);
            progress
                .inner
                .items
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            progress.page(records.len());
            let read = read + records.len() as u64;
            let after = last.filter(|k| !k.is_empty());
            let next = match &after {
                Some(k) => Some(Cursor::After(k.clone())),
                None => {
                    progress.segment_done(read);
                    None
                }
            };
            let page = Page {
                segment,
                records,
                after,
            };
            Ok(Some((page, (next, read))))
        }
    })
}
