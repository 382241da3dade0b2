//! The registry table's DynamoDB Stream, the source of `events --follow`
//! when the table has one: every shard read in turn (a parent before its
//! children, new shards found as the stream splits), each from where the
//! last read stopped (its checkpoint, the last sequence number read, in
//! memory), so that an expired iterator resumes without a gap.
//!
//! Only the reading is here; what a stream record means is
//! [`crate::watch::stream_change`]'s. Behind the `streams` feature (the CLI
//! enables it), so nothing else links aws-sdk-dynamodbstreams.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, ShardIteratorType,
};

use crate::record::{Item, TableConfig};
use crate::sdk_error::{SdkFailure, classify};
use crate::store::ConnectionStore;
use crate::watch::{Change, StreamOp, stream_change};

/// A stream call that failed: which call, on what, and why (read by
/// [`crate::sdk_error`]).
#[derive(Debug, thiserror::Error)]
#[error("{action} on {target}: {reason}")]
pub struct StreamError {
    pub action: &'static str,
    pub target: String,
    pub reason: String,
}

type Result<T> = std::result::Result<T, StreamError>;

fn failed<E>(
    action: &'static str,
    target: &str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> StreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = target.to_owned();
    move |e| StreamError {
        action,
        target,
        reason: match classify(e) {
            SdkFailure::Service { code, message, .. } => match code {
                Some(code) => format!("{code}: {message}"),
                None => message,
            },
            SdkFailure::Unreachable(m) | SdkFailure::Timeout(m) | SdkFailure::Other(m) => m,
            SdkFailure::NoCredentials => "no AWS credentials found".to_owned(),
        },
    }
}

/// At most this many GetRecords calls per shard and round: a busy shard
/// cannot starve the others.
const READS_PER_ROUND: usize = 10;

/// One change the stream told, and when.
#[derive(Debug)]
pub struct StreamEvent {
    pub change: Change,
    /// When DynamoDB wrote it (epoch ms), if the record says.
    pub at_ms: Option<i64>,
    /// Deleted by DynamoDB's TTL, not by a client.
    pub expired: bool,
}

#[derive(Debug, Default)]
struct Shard {
    /// Where the next read starts; `None` once the shard is closed and read.
    iterator: Option<String>,
    /// The last sequence number read: where to resume if the iterator
    /// expires.
    checkpoint: Option<String>,
    done: bool,
}

#[derive(Debug)]
pub struct TableStream {
    client: Client,
    pub arn: String,
    table: TableConfig,
    shards: BTreeMap<String, Shard>,
}

/// Whether DynamoDB is AWS's (its default endpoints) or a local one at the
/// store's endpoint, which then serves the stream too.
fn local_endpoint(store: &ConnectionStore) -> Option<String> {
    let endpoint = store.endpoint();
    let aws = endpoint.starts_with("https://dynamodb.")
        && (endpoint.ends_with(".amazonaws.com") || endpoint.ends_with(".amazonaws.com.cn"));
    (!aws && endpoint.contains("://")).then(|| endpoint.to_owned())
}

/// The table's stream, if it has one (DescribeTable's LatestStreamArn of
/// an enabled stream specification).
pub async fn find(sdk: &SdkConfig, store: &ConnectionStore) -> Result<Option<TableStream>> {
    let local = local_endpoint(store);
    let mut conf = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = &local {
        conf = conf.endpoint_url(url);
        conf.set_http_client(crate::sdk::http_client_for(url).or(sdk.http_client()));
    }
    let ddb = aws_sdk_dynamodb::Client::from_conf(conf.build());
    let table = store.table().clone();
    let described = ddb
        .describe_table()
        .table_name(&table.name)
        .send()
        .await
        .map_err(failed("DescribeTable", &table.name))?;
    let Some(t) = described.table() else {
        return Ok(None);
    };
    let enabled = t.stream_specification().is_some_and(|s| s.stream_enabled());
    let Some(arn) = t.latest_stream_arn().filter(|_| enabled) else {
        return Ok(None);
    };
    let mut conf = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
    if let Some(url) = &local {
        conf = conf.endpoint_url(url);
        conf.set_http_client(crate::sdk::http_client_for(url).or(sdk.http_client()));
    }
    Ok(Some(TableStream {
        client: Client::from_conf(conf.build()),
        arn: arn.to_owned(),
        table,
        shards: BTreeMap::new(),
    }))
}

impl TableStream {
    /// Every shard of the stream: (id, parent, closed).
    async fn describe(&self) -> Result<Vec<(String, Option<String>, bool)>> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(failed("DescribeStream", &self.arn))?;
            let Some(desc) = out.stream_description() else {
                break;
            };
            for s in desc.shards() {
                let Some(id) = s.shard_id() else { continue };
                let closed = s
                    .sequence_number_range()
                    .is_some_and(|r| r.ending_sequence_number().is_some());
                shards.push((
                    id.to_owned(),
                    s.parent_shard_id().map(str::to_owned),
                    closed,
                ));
            }
            match desc.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(shards)
    }

    async fn iterator(
        &self,
        shard: &str,
        kind: ShardIteratorType,
        after: Option<&str>,
    ) -> Result<Option<String>> {
        let out = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(after.map(str::to_owned))
            .send()
            .await
            .map_err(failed("GetShardIterator", &self.arn))?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    /// Positions every open shard at its end: what happens from now on.
    /// Closed shards are history (the scan that starts `events` shows
    /// their result).
    pub async fn start(&mut self) -> Result<()> {
        for (id, _, closed) in self.describe().await? {
            let shard = if closed {
                Shard {
                    done: true,
                    ..Shard::default()
                }
            } else {
                Shard {
                    iterator: self.iterator(&id, ShardIteratorType::Latest, None).await?,
                    ..Shard::default()
                }
            };
            self.shards.insert(id, shard);
        }
        Ok(())
    }

    /// One round: shards born since the last round are read from their
    /// start (a child only once its parent is read to its end), then every
    /// open shard is read up to what it has now.
    pub async fn poll(&mut self) -> Result<Vec<StreamEvent>> {
        for (id, parent, _) in self.describe().await? {
            if self.shards.contains_key(&id) {
                continue;
            }
            let parent_pending = parent
                .as_ref()
                .and_then(|p| self.shards.get(p))
                .is_some_and(|p| !p.done);
            if parent_pending {
                continue;
            }
            let iterator = self
                .iterator(&id, ShardIteratorType::TrimHorizon, None)
                .await?;
            self.shards.insert(
                id,
                Shard {
                    iterator,
                    ..Shard::default()
                },
            );
        }
        let mut events = Vec::new();
        let ids: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| !s.done)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.read_shard(&id, &mut events).await?;
        }
        Ok(events)
    }

    async fn read_shard(&mut self, id: &str, events: &mut Vec<StreamEvent>) -> Result<()> {
        for _ in 0..READS_PER_ROUND {
            let Some(iterator) = self.shards.get(id).and_then(|s| s.iterator.clone()) else {
                if let Some(s) = self.shards.get_mut(id) {
                    s.done = true;
                }
                return Ok(());
            };
            let out = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    // Resume after the checkpoint (or at the end, if nothing
                    // was read yet).
                    let checkpoint = self.shards.get(id).and_then(|s| s.checkpoint.clone());
                    let fresh = match &checkpoint {
                        Some(seq) => {
                            self.iterator(id, ShardIteratorType::AfterSequenceNumber, Some(seq))
                                .await?
                        }
                        None => self.iterator(id, ShardIteratorType::Latest, None).await?,
                    };
                    if let Some(s) = self.shards.get_mut(id) {
                        s.iterator = fresh;
                    }
                    continue;
                }
                Err(e) => {
                    let target = format!("shard {id} of {}", self.arn);
                    return Err(failed("GetRecords", &target)(e));
                }
            };
            let records = out.records();
            for r in records {
                let Some(data) = r.dynamodb() else { continue };
                if let Some(seq) = data.sequence_number()
                    && let Some(s) = self.shards.get_mut(id)
                {
                    s.checkpoint = Some(seq.to_owned());
                }
                let op = match r.event_name() {
                    Some(OperationType::Insert) => StreamOp::Insert,
                    Some(OperationType::Modify) => StreamOp::Modify,
                    Some(OperationType::Remove) => StreamOp::Remove,
                    _ => continue,
                };
                let keys = data.keys().map(item);
                let old = data.old_image().map(item);
                let new = data.new_image().map(item);
                let Some(change) =
                    stream_change(op, keys.as_ref(), old.as_ref(), new.as_ref(), &self.table)
                else {
                    continue;
                };
                let expired = op == StreamOp::Remove
                    && r.user_identity()
                        .is_some_and(|u| u.principal_id() == Some("dynamodb.amazonaws.com"));
                let at_ms = data
                    .approximate_creation_date_time()
                    .and_then(|t| t.to_millis().ok());
                events.push(StreamEvent {
                    change,
                    at_ms,
                    expired,
                });
            }
            let next = out.next_shard_iterator().map(str::to_owned);
            let empty = records.is_empty();
            if let Some(s) = self.shards.get_mut(id) {
                s.done = next.is_none();
                s.iterator = next;
            }
            if empty {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A stream image as the DynamoDB client's item type.
fn item(image: &std::collections::HashMap<String, StreamValue>) -> Item {
    image
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), value(v)?)))
        .collect()
}

fn value(v: &StreamValue) -> Option<AttributeValue> {
    Some(match v {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::B(b) => AttributeValue::B(b.clone()),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.clone()),
        StreamValue::M(m) => AttributeValue::M(item(m)),
        StreamValue::L(l) => AttributeValue::L(l.iter().filter_map(value).collect()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_images_convert_to_items() {
        let image: std::collections::HashMap<String, StreamValue> = [
            ("connectionId".to_owned(), StreamValue::S("abc".into())),
            (
                "connectedAt".to_owned(),
                StreamValue::N("1700000000000".into()),
            ),
            (
                "meta".to_owned(),
                StreamValue::M([("room".to_owned(), StreamValue::S("7".into()))].into()),
            ),
        ]
        .into();
        let record = crate::ConnectionRecord::from_item(&item(&image), &TableConfig::default())
            .expect("record");
        assert_eq!(record.connection_id, "abc");
        assert_eq!(record.connected_at, Some(1_700_000_000_000));
        assert_eq!(record.meta.get("room").map(String::as_str), Some("7"));
    }
}
