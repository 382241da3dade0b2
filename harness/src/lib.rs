//! wsadmin-harness: the one local-stack test harness. A real dynalite, the
//! real local stack (emulator + our handlers in-process) on a free loopback
//! port, real WebSocket clients, and raw HTTP for requests no SDK would
//! send. The tests of `deploy`, `tui`, `cli` and `load` all start their
//! stack here; each adds only what is its own (the CLI's state file and
//! binary, wsload's tags).
//!
//! Dev-only. It sits below every crate whose tests use it (ARCHITECTURE.md),
//! so no dev-dependency points up the stack.

pub mod clients;
pub mod tls;
pub mod ws;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::TryStreamExt;
use wsadmin_core::{ConnectionRecord, ConnectionStore, Gateway, ManagementEndpoint, Target};
use wsadmin_emulator::EmulatorConfig;
use wsadmin_local::{Listen, LocalStack};
use wsadmin_testkit::dynalite::Dynalite;

pub use crate::clients::{Listener, eventually, eventually_async};
pub use crate::tls::{connect_wss, start_tls};
pub use crate::ws::{Client, Ws, assert_silent, close, raw_http, recv_close, recv_text, send_text};

#[derive(Debug)]
pub struct Harness {
    pub db: Dynalite,
    pub stack: LocalStack,
}

/// A local stack on a fresh in-memory dynalite, its emulator configured by
/// `tweak`.
pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    start_on(Dynalite::start(), tweak).await
}

/// [`start`] over a dynalite the test made (a persistent one it can kill
/// and restart).
pub async fn start_on(db: Dynalite, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    launch(db, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into(), tweak).await
}

async fn launch(db: Dynalite, listen: Listen, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    let mut config = EmulatorConfig::default();
    tweak(&mut config);
    let stack = LocalStack::start(config, listen, &db.endpoint())
        .await
        .expect("local stack starts");
    Harness { db, stack }
}

/// Every record in `store`: the registry, read after the stack that wrote
/// it is gone (take `stack.store()` before stopping it).
pub async fn all_records(store: &ConnectionStore) -> Vec<ConnectionRecord> {
    store
        .scan(Default::default())
        .try_collect()
        .await
        .expect("scan")
}

impl Harness {
    pub async fn stop(self) {
        self.stack.stop().await.expect("clean stop");
    }

    pub fn addr(&self) -> SocketAddr {
        self.stack.addr()
    }

    pub fn url(&self) -> String {
        self.stack.websocket_url()
    }

    /// Every record in the registry.
    pub async fn records(&self) -> Vec<ConnectionRecord> {
        all_records(&self.stack.store()).await
    }

    /// Deletes the registry's table: from then on every `$connect` handler
    /// fails, and the stack refuses the handshake with 500.
    pub async fn drop_table(&self) {
        aws_sdk_dynamodb::Client::new(&self.stack.sdk_config())
            .delete_table()
            .table_name(self.stack.store().table().name.as_str())
            .send()
            .await
            .expect("drop table");
    }

    /// The registry's record of `id`, if there is one.
    pub async fn record(&self, id: &str) -> Option<ConnectionRecord> {
        self.stack.store().get(id).await.expect("get")
    }

    /// The registered ids, sorted.
    pub async fn ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self
            .records()
            .await
            .into_iter()
            .map(|r| r.connection_id)
            .collect();
        ids.sort();
        ids
    }

    /// Waits (up to 10 s) until the registry holds exactly `expected`.
    pub async fn wait_for_ids(&self, expected: &[&str]) {
        let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        for _ in 0..200 {
            if self.ids().await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            self.ids().await,
            want,
            "registry never reached the expected ids"
        );
    }

    /// The id of the record `$connect` wrote for the client named `name`
    /// (its user agent), if there is one now.
    pub async fn find_record_of(&self, name: &str) -> Option<String> {
        self.records()
            .await
            .into_iter()
            .find(|r| r.user_agent.as_deref() == Some(name))
            .map(|r| r.connection_id)
    }

    /// [`Harness::find_record_of`], waiting up to 10 s for it.
    pub async fn record_of(&self, name: &str) -> String {
        for _ in 0..500 {
            if let Some(id) = self.find_record_of(name).await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("$connect never wrote a record for {name}");
    }

    /// The official Management API client, signed with the stack's
    /// credentials, its own retries off so tests see every answer.
    pub fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.stack.sdk_config())
            .endpoint_url(self.stack.management_endpoint())
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }

    /// A `Target` on this stack, built the way `wsadmin` builds one.
    pub fn target(&self) -> Target {
        let endpoint =
            ManagementEndpoint::parse(&self.stack.management_endpoint()).expect("endpoint");
        Target {
            context: None,
            region: self.stack.config().region.clone(),
            store: self.stack.store(),
            gateway: Gateway::new(&self.stack.sdk_config(), endpoint).expect("gateway"),
        }
    }
}
