//! The real local stack for wsload's tests is the shared harness; this adds
//! what only these tests need.

#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;

use futures::StreamExt;
use wsadmin_harness::Harness;
use wsadmin_load::Tag;

pub use wsadmin_harness::eventually_async as eventually;

pub async fn start() -> Harness {
    wsadmin_harness::start(|_| {}).await
}

/// Registered connection ids by user agent.
pub async fn ids_by_agent(stack: &Harness) -> BTreeMap<String, String> {
    stack
        .records()
        .await
        .into_iter()
        .filter_map(|r| Some((r.user_agent?, r.connection_id)))
        .collect()
}

/// Posts `tag` to every registered connection, 32 at a time, as a
/// broadcast does; returns how many posts succeeded.
pub async fn post_to_all(stack: &Harness, tag: &Tag) -> usize {
    let client = stack.management();
    let payload = tag.to_string();
    let ids: Vec<String> = stack
        .records()
        .await
        .into_iter()
        .map(|r| r.connection_id)
        .collect();
    futures::stream::iter(ids)
        .map(|id| {
            let (client, payload) = (client.clone(), payload.clone());
            async move {
                client
                    .post_to_connection()
                    .connection_id(id)
                    .data(payload.into_bytes().into())
                    .send()
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(32)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}
