//! The real local stack for wsload's tests: dynalite on a free port, the
//! emulator and handlers in-process on 127.0.0.1:0, the official Management
//! API client. Nothing here is a stand-in for our own components.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use wsadmin_core::ConnectionRecord;
use wsadmin_deploy::emulator::EmulatorConfig;
use wsadmin_deploy::local::LocalStack;
use wsadmin_load::Tag;
use wsadmin_testkit::dynalite::Dynalite;

pub struct Stack {
    pub db: Dynalite,
    pub stack: LocalStack,
}

pub async fn start() -> Stack {
    let db = Dynalite::start();
    let stack = LocalStack::start(
        EmulatorConfig::default(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &db.endpoint(),
    )
    .await
    .expect("local stack starts");
    Stack { db, stack }
}

impl Stack {
    pub fn url(&self) -> String {
        self.stack.websocket_url()
    }

    pub async fn stop(self) {
        self.stack.stop().await.expect("clean stop");
    }

    pub async fn records(&self) -> Vec<ConnectionRecord> {
        self.stack
            .store()
            .scan(Default::default())
            .try_collect()
            .await
            .expect("scan")
    }

    /// Registered connection ids by user agent.
    pub async fn ids_by_agent(&self) -> BTreeMap<String, String> {
        self.records()
            .await
            .into_iter()
            .filter_map(|r| Some((r.user_agent?, r.connection_id)))
            .collect()
    }

    /// The official Management API client, SDK retries off.
    pub fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.stack.sdk_config())
            .endpoint_url(self.stack.management_endpoint())
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }

    /// Posts `tag` to every registered connection, 32 at a time, as a
    /// broadcast does; returns how many posts succeeded.
    pub async fn post_to_all(&self, tag: &Tag) -> usize {
        let client = self.management();
        let payload = tag.to_string();
        let ids: Vec<String> = self
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
}

/// Polls `check` every 50 ms until it holds or `within` passes; returns
/// whether it held (a bound against hangs, not a timing assertion).
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
