//! wsadmin-local: the local stack, assembled: the table in a DynamoDB endpoint (dynalite,
//! or whatever `--dynamodb-endpoint` names), the real handlers in-process,
//! and the emulator serving them on one loopback port, and over TLS on a
//! second one (`wss://`, `https://`, signed by a local CA: [`tls`]).
//! `wsstack local` and the end-to-end tests run exactly this.
//!
//! On AWS every Lambda instance has its own HTTP pool; here all handler
//! invocations share one process, so they share ONE HTTP client whose
//! connections per host are bounded ([`HANDLER_CONNECTIONS_PER_HOST`]): a
//! flood of invocations waits for a connection instead of opening
//! thousands and exhausting the process's descriptors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_http_client::tls as http_tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::{ConnectionStore, ManagementEndpoint, TableConfig};
use wsadmin_handlers::Handlers;
use wsadmin_lambda::{HostConfig, LambdaHost};

use wsadmin_emulator::integration::off_the_clock;
use wsadmin_emulator::{Emulator, EmulatorConfig, EmulatorError, TlsListener};

pub use crate::functions::{InProcess, StackFunctions};
use crate::tls::{Certificates, TlsError};

pub mod demo;
mod functions;
pub mod tls;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "cannot listen on {addr} (is another wsstack running? pick another {flag}, or 0 for a free one)"
    )]
    Bind {
        addr: SocketAddr,
        /// The flag that picks this port.
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare table \"{table}\"")]
    Table {
        table: String,
        #[source]
        source: wsadmin_core::StoreError,
    },
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("invalid Management endpoint")]
    Endpoint(#[from] wsadmin_core::gateway::EndpointError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Lambda(#[from] wsadmin_lambda::HostError),
}

/// Where the stack listens.
#[derive(Debug, Clone)]
pub struct Listen {
    /// `ws://`, `http://` (port 0 picks a free one).
    pub addr: SocketAddr,
    /// `wss://`, `https://` too, unless `None`.
    pub tls: Option<ListenTls>,
}

#[derive(Debug, Clone)]
pub struct ListenTls {
    /// Port 0 picks a free one.
    pub addr: SocketAddr,
    /// Where the CA is kept and the server certificate written
    /// ([`tls::default_dir`] for `wsstack local`; tests use a temporary one).
    pub dir: PathBuf,
}

impl From<SocketAddr> for Listen {
    /// Plain only: no certificates made, no second port.
    fn from(addr: SocketAddr) -> Self {
        Self { addr, tls: None }
    }
}

/// SDK configuration for the local stack: its credentials and region, and
/// DynamoDB at `dynamodb_endpoint`. Nothing is read from the environment.
pub fn sdk_config(config: &EmulatorConfig, dynamodb_endpoint: &str) -> SdkConfig {
    wsadmin_core::sdk::static_config_at(
        config.region.clone(),
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
        dynamodb_endpoint,
    )
}

/// Requests the in-process handlers may have in flight to one host (the
/// emulator's Management API, the DynamoDB endpoint) at once; more wait for
/// a connection. Idle connections kept per host are bounded the same, so
/// the handlers hold at most about this many connections per host.
pub const HANDLER_CONNECTIONS_PER_HOST: usize = 256;

/// How long an idle pooled connection of the handlers stays open.
const HANDLER_POOL_IDLE: Duration = Duration::from_secs(30);

/// The one HTTP client every handler SDK client shares: one pool, at most
/// `per_host` requests in flight per host, at most `per_host` idle
/// connections kept per host. Requests to `dynamodb` (`scheme://authority`
/// of the local DynamoDB) run [`off_the_clock`]: their wait on a loaded
/// dynalite does not hold a Lambda execution slot, as a few-ms call on AWS
/// would not.
fn bounded_http_client(per_host: usize, dynamodb: &str) -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(HANDLER_POOL_IDLE)
        .pool_max_idle_per_host(per_host)
        .tls_provider(http_tls::Provider::Rustls(
            http_tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    SharedHttpClient::new(BoundedClient {
        inner,
        gates: Arc::new(HostGates {
            per_host,
            hosts: Mutex::new(HashMap::new()),
            off_the_clock: dynamodb.trim_end_matches('/').to_owned(),
        }),
    })
}

/// One semaphore per host (`scheme://authority`), created on first use.
#[derive(Debug)]
struct HostGates {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The host whose requests run off the Lambda clock: the local DynamoDB.
    off_the_clock: String,
}

impl HostGates {
    /// The host's gate, and whether its requests run off the clock.
    fn gate(&self, uri: &str) -> (Arc<Semaphore>, bool) {
        let host = match uri.find("://") {
            Some(i) => {
                let rest = &uri[i + 3..];
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                &uri[..i + 3 + end]
            }
            None => "",
        };
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let gate = hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone();
        (gate, host == self.off_the_clock)
    }
}

#[derive(Debug)]
struct BoundedClient {
    inner: SharedHttpClient,
    gates: Arc<HostGates>,
}

impl HttpClient for BoundedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner: self.inner.http_connector(settings, components),
            gates: self.gates.clone(),
        })
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
    gates: Arc<HostGates>,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (gate, off_clock) = self.gates.gate(request.uri());
        let inner = self.inner.clone();
        let call = async move {
            // The semaphore is never closed, so this cannot fail; if it ever
            // did, the request goes out unbounded rather than failing.
            let permit = gate.acquire_owned().await.ok();
            let mut response = inner.call(request).await?;
            // The connection stays busy until the body is read: so does the
            // permit.
            let body = response.take_body();
            *response.body_mut() = SdkBody::from_body_1_x(PermitBody {
                inner: body,
                _permit: permit,
            });
            Ok(response)
        };
        if off_clock {
            HttpConnectorFuture::new(off_the_clock(call))
        } else {
            HttpConnectorFuture::new(call)
        }
    }
}

/// A response body that holds its connection's permit until it is dropped.
struct PermitBody {
    inner: SdkBody,
    _permit: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// A running local stack. Dropping it stops nothing: call [`LocalStack::stop`].
#[derive(Debug)]
pub struct LocalStack {
    addr: SocketAddr,
    config: EmulatorConfig,
    dynamodb_endpoint: String,
    emulator: Emulator,
    /// The TLS endpoint and its certificates, when it serves one.
    tls: Option<(SocketAddr, Certificates)>,
    /// The functions the stack declares, run as Lambda runs them.
    lambda: Option<LambdaHost>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl LocalStack {
    /// Creates the table (if missing), binds `listen` (a bare address
    /// serves plain only) and serves until [`LocalStack::stop`].
    pub async fn start(
        config: EmulatorConfig,
        listen: impl Into<Listen>,
        dynamodb_endpoint: &str,
    ) -> Result<Self, LocalError> {
        let Listen { addr, tls } = listen.into();
        let sdk = sdk_config(&config, dynamodb_endpoint);
        let table = table_config(&config);
        let store = ConnectionStore::from_conf(&sdk, table.clone());
        let table_error = |source| LocalError::Table {
            table: table.name.clone(),
            source,
        };
        store
            .create_table_with(config.stack.table_keys.as_ref())
            .await
            .map_err(table_error)?;
        if !store.enable_ttl().await.map_err(table_error)? {
            tracing::info!(
                "this DynamoDB has no TTL support: stale records wait for `wsadmin prune`"
            );
        }
        let (listener, addr) = bind(addr, "--port").await?;
        let tls = match tls {
            Some(t) => Some((
                bind(t.addr, "--tls-port").await?,
                Certificates::load_or_create(&t.dir)?,
            )),
            None => None,
        };
        // API Gateway has one domain, and it is https: with TLS, events name it.
        let domain_name = match &tls {
            Some(((_, tls_addr), _)) => format!("localhost:{}", tls_addr.port()),
            None => addr.to_string(),
        };
        let endpoint = ManagementEndpoint::parse(&format!("http://{addr}/{}", config.stack.stage))?;
        let handler_sdk = sdk
            .into_builder()
            .http_client(bounded_http_client(
                HANDLER_CONNECTIONS_PER_HOST,
                dynamodb_endpoint,
            ))
            .build();
        // The SDK path's connections are bounded by that client; the lean
        // path's by the gateway's own bound, the same.
        let handlers = Handlers::new(handler_sdk, table, Some(endpoint))
            .with_gateway_bound(HANDLER_CONNECTIONS_PER_HOST);
        let lambda = match config.stack.functions.is_empty() {
            true => None,
            false => {
                let ca_file = tls.as_ref().map(|(_, certs)| certs.ca_file());
                let host_config = lambda_config(&config, dynamodb_endpoint, ca_file.as_deref());
                let host = LambdaHost::start(config.stack.functions.clone(), host_config).await?;
                Some(host)
            }
        };
        let functions = StackFunctions::new(
            InProcess::new(handlers),
            lambda.clone(),
            &config.stack.functions,
        );
        let emulator = Emulator::new(config.clone(), Arc::new(functions), domain_name)?;
        let (tx, rx) = oneshot::channel::<()>();
        let stop = async {
            let _ = rx.await;
        };
        let (serving, tls) = match tls {
            Some(((tls_listener, tls_addr), certs)) => {
                let secure = TlsListener::new(tls_listener, certs.server_config());
                let serving = tokio::spawn(emulator.clone().serve_tls(listener, secure, stop));
                (serving, Some((tls_addr, certs)))
            }
            None => (tokio::spawn(emulator.clone().serve(listener, stop)), None),
        };
        Ok(Self {
            addr,
            config,
            dynamodb_endpoint: dynamodb_endpoint.to_owned(),
            emulator,
            tls,
            lambda,
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

    /// The TLS endpoint's address, when it serves one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(addr, _)| *addr)
    }

    /// `wss://localhost:PORT/{stage}`, when it serves TLS.
    pub fn wss_url(&self) -> Option<String> {
        self.tls_url("wss")
    }

    /// `https://localhost:PORT/{stage}`: the Management API over TLS, as
    /// handlers written for AWS build it from their event.
    pub fn https_management_endpoint(&self) -> Option<String> {
        self.tls_url("https")
    }

    fn tls_url(&self, scheme: &str) -> Option<String> {
        let port = self.tls_addr()?.port();
        Some(format!(
            "{scheme}://localhost:{port}/{}",
            self.config.stack.stage
        ))
    }

    /// The CA certificate a TLS client must trust (PEM file), when it
    /// serves TLS: what `NODE_EXTRA_CA_CERTS`, `AWS_CA_BUNDLE`,
    /// `SSL_CERT_FILE` and `REQUESTS_CA_BUNDLE` should name.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|(_, certs)| certs.ca_file())
    }

    /// That CA certificate, PEM.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, certs)| certs.ca_pem())
    }

    /// What the state file says of this stack, run by this process: the
    /// one way a [`LocalStackInfo`] is made (`wsstack local` writes it;
    /// tests write it for `wsadmin --context local`).
    pub fn info(&self) -> LocalStackInfo {
        let c = &self.config;
        LocalStackInfo {
            websocket_url: self.websocket_url(),
            management_endpoint: self.management_endpoint(),
            dynamodb_endpoint: self.dynamodb_endpoint.clone(),
            table: c.stack.table.clone(),
            table_key: c
                .stack
                .table_keys
                .as_ref()
                .map(|k| k.hash.name.clone())
                .filter(|k| k != TableConfig::DEFAULT_KEY),
            region: c.region.clone(),
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            pid: std::process::id(),
            wss_url: self.wss_url(),
            https_management_endpoint: self.https_management_endpoint(),
            ca_file: self.ca_file(),
            access_log: c.access_log.clone(),
        }
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

    /// Handler invocations running right now, including those whose wait
    /// on the local DynamoDB does not hold a Lambda execution slot.
    pub fn invocations_running(&self) -> usize {
        self.emulator.invocations_running()
    }

    /// Closes every client with 1001, runs their `$disconnect`, stops serving.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match (&mut self.serving).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        };
        // After every `$disconnect` ran: then no instance is needed.
        if let Some(host) = self.lambda.take() {
            host.stop().await;
            let _ = std::fs::remove_dir_all(host.work_dir());
        }
        served
    }

    /// The Lambda host's view of `function` (instances warm and busy, cold
    /// starts), when the stack runs it in its own processes.
    pub fn function_stats(&self, function: &str) -> Option<wsadmin_lambda::FunctionStats> {
        self.lambda.as_ref()?.stats(function)
    }
}

/// The registry table as the handlers and wsadmin address it: named by the
/// stack, its hash key the one the stack declares (ours by default).
fn table_config(config: &EmulatorConfig) -> TableConfig {
    let table = TableConfig::new(config.stack.table.clone());
    match &config.stack.table_keys {
        Some(keys) => table.with_key(keys.hash.name.clone()),
        None => table,
    }
}

/// Where a stack's Lambda host writes its shims and inline code: one
/// directory per stack of this process, removed when it stops.
fn lambda_work_dir() -> PathBuf {
    static STACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("wsstack-lambda-{}-{n}", std::process::id()))
}

/// What the stack gives the functions it runs in their own processes: its
/// region and credentials, the local DynamoDB as their DynamoDB endpoint,
/// the JS SDK v3 on Node's path (Lambda's Node runtimes bundle it), and the
/// local CA for the TLS endpoint their code may build from `domainName`.
fn lambda_config(
    config: &EmulatorConfig,
    dynamodb_endpoint: &str,
    ca_file: Option<&std::path::Path>,
) -> HostConfig {
    let mut host = HostConfig::new(lambda_work_dir());
    host.region.clone_from(&config.region);
    host.access_key_id.clone_from(&config.access_key_id);
    host.secret_access_key.clone_from(&config.secret_access_key);
    let env = &mut host.extra_env;
    env.insert(
        "AWS_ENDPOINT_URL_DYNAMODB".into(),
        dynamodb_endpoint.to_owned(),
    );
    if let Some(sdk) = node_sdk_dir() {
        env.insert("NODE_PATH".into(), sdk.display().to_string());
    } else if config
        .stack
        .functions
        .iter()
        .any(|f| f.runtime.starts_with("nodejs"))
    {
        tracing::warn!(
            "the AWS SDK for JavaScript v3 is not installed for Node functions (Lambda's Node runtimes bundle it): run scripts/setup in the wsadmin checkout, or bundle it with your functions"
        );
    }
    if let Some(ca) = ca_file {
        let ca = ca.display().to_string();
        for var in [
            "NODE_EXTRA_CA_CERTS",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "AWS_CA_BUNDLE",
        ] {
            env.insert(var.into(), ca.clone());
        }
    }
    host
}

/// `runtimes/nodejs/node_modules` of the checkout that holds the running
/// executable, or of the one this crate was built in (`scripts/setup`
/// installs the JS SDK v3 there).
fn node_sdk_dir() -> Option<PathBuf> {
    let sdk = |root: &std::path::Path| {
        let dir = root.join("runtimes/nodejs/node_modules");
        dir.join("@aws-sdk").is_dir().then_some(dir)
    };
    let exe = std::env::current_exe().ok();
    exe.iter()
        .flat_map(|e| e.ancestors())
        .find_map(sdk)
        .or_else(|| sdk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?))
}

/// A listener on `addr`, and the address it got (port 0 picks one).
async fn bind(
    addr: SocketAddr,
    flag: &'static str,
) -> Result<(TcpListener, SocketAddr), LocalError> {
    let error = |source| LocalError::Bind { addr, flag, source };
    let listener = TcpListener::bind(addr).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}
