//! The local stack, assembled: the table in a DynamoDB endpoint (dynalite,
//! or whatever `--dynamodb-endpoint` names), the real handlers in-process,
//! and the emulator serving them on one loopback port. `wsstack local` and
//! the end-to-end tests run exactly this.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wsadmin_core::{ConnectionStore, ManagementEndpoint, TableConfig};
use wsadmin_handlers::Handlers;

use crate::emulator::{Emulator, EmulatorConfig, EmulatorError};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "cannot listen on {addr}: {source} (is another wsstack running? pick another --port, or 0 for a free one)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare table \"{table}\": {source}")]
    Table {
        table: String,
        #[source]
        source: wsadmin_core::StoreError,
    },
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("invalid Management endpoint: {0}")]
    Endpoint(#[from] wsadmin_core::gateway::EndpointError),
}

/// SDK configuration for the local stack: its credentials and region, and
/// DynamoDB at `dynamodb_endpoint`. Nothing is read from the environment.
pub fn sdk_config(config: &EmulatorConfig, dynamodb_endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.clone(),
            None,
            None,
            "wsstack-local",
        )))
        .endpoint_url(dynamodb_endpoint)
        .build()
}

/// A running local stack. Dropping it stops nothing: call [`LocalStack::stop`].
#[derive(Debug)]
pub struct LocalStack {
    addr: SocketAddr,
    config: EmulatorConfig,
    dynamodb_endpoint: String,
    emulator: Emulator,
    shutdown: Option<oneshot::Sender<()>>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl LocalStack {
    /// Creates the table (if missing), binds `addr` (port 0 picks a free
    /// one) and serves until [`LocalStack::stop`].
    pub async fn start(
        config: EmulatorConfig,
        addr: SocketAddr,
        dynamodb_endpoint: &str,
    ) -> Result<Self, LocalError> {
        let sdk = sdk_config(&config, dynamodb_endpoint);
        let table = TableConfig::new(config.stack.table.clone());
        let store = ConnectionStore::from_conf(&sdk, table.clone());
        let table_error = |source| LocalError::Table {
            table: table.name.clone(),
            source,
        };
        store.create_table().await.map_err(table_error)?;
        if !store.enable_ttl().await.map_err(table_error)? {
            tracing::info!(
                "this DynamoDB has no TTL support: stale records wait for `wsadmin prune`"
            );
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LocalError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalError::Bind { addr, source })?;
        let endpoint = ManagementEndpoint::parse(&format!("http://{addr}/{}", config.stack.stage))?;
        let handlers = Handlers::new(sdk, table, Some(endpoint));
        let emulator = Emulator::new(config.clone(), Arc::new(handlers), addr.to_string())?;
        let (tx, rx) = oneshot::channel::<()>();
        let serving = tokio::spawn(emulator.clone().serve(listener, async {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            config,
            dynamodb_endpoint: dynamodb_endpoint.to_owned(),
            emulator,
            shutdown: Some(tx),
            serving,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// `ws://127.0.0.1:PORT/{stage}`
    pub fn websocket_url(&self) -> String {
        format!("ws://{}/{}", self.addr, self.config.stack.stage)
    }

    /// `http://127.0.0.1:PORT/{stage}`, the Management API endpoint.
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/{}", self.addr, self.config.stack.stage)
    }

    pub fn dynamodb_endpoint(&self) -> &str {
        &self.dynamodb_endpoint
    }

    /// SDK configuration that reaches this stack (its credentials, region and
    /// DynamoDB endpoint).
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.config, &self.dynamodb_endpoint)
    }

    pub fn store(&self) -> ConnectionStore {
        ConnectionStore::from_conf(
            &self.sdk_config(),
            TableConfig::new(self.config.stack.table.clone()),
        )
    }

    pub fn connection_count(&self) -> usize {
        self.emulator.connection_count()
    }

    /// Closes every client with 1001, runs their `$disconnect`, stops serving.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.serving).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
