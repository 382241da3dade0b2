//! wsadmin-emulator: API Gateway's WebSocket APIs on one loopback port,
//! serving the WebSocket endpoint (`ws://host/{stage}`) and the Management
//! API (`/{stage}/@connections/{id}`), and invoking the routes' Lambda
//! functions through the JSON form of their events ([`Functions`]); the
//! same API over TLS on a second port when given a certificate ([`tls`]).
//!
//! It owns the live connections (the [`registry`]), their sockets
//! ([`socket`]), the Management API ([`management`]) and API Gateway's
//! semantics: route selection, route responses, frame and message limits,
//! idle timeout and maximum duration, SigV4, throttling and per-connection
//! back-pressure. It knows nothing of DynamoDB nor of our handlers: the
//! functions are whatever [`Functions`] runs (the local stack runs ours).

pub mod access_log;
pub mod authorizer;
pub mod dates;
pub mod event;
pub mod ids;
pub mod integration;
pub mod management;
pub mod metrics;
pub mod percent;
pub mod registry;
pub mod route;
pub mod sigv4;
pub mod socket;
pub mod throttle;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{any, get};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use wsadmin_core::stack::StackSpec;

pub use crate::integration::Functions;
use crate::integration::Integration;
use crate::registry::Registry;
use crate::sigv4::Verifier;
use crate::throttle::TokenBucket;
pub use crate::tls::TlsListener;

/// The documented local credentials the Management API accepts by default.
pub const LOCAL_ACCESS_KEY_ID: &str = "AKIAWSSTACKLOCAL";
pub const LOCAL_SECRET_ACCESS_KEY: &str = "wsstack-local-secret";
pub const LOCAL_REGION: &str = "us-east-1";
pub const LOCAL_API_ID: &str = "wsstacklocal";
/// The account the local stack's ARNs name (as `wsstack local --template`
/// resolves `AWS::AccountId`).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// AWS's default Lambda concurrency per account and region.
pub const DEFAULT_LAMBDA_CONCURRENCY: usize = 1000;
/// API Gateway's integration timeout: no `$connect` lasts longer.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// The range `--lambda-concurrency` accepts.
pub const LAMBDA_CONCURRENCY_RANGE: std::ops::RangeInclusive<usize> = 1..=100_000;

/// Where the emulator serves its [`metrics`] (Prometheus text format).
pub const METRICS_PATH: &str = "/metrics";

/// API Gateway's limits on WebSocket traffic.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
pub const MAX_MESSAGE_BYTES: usize = wsadmin_core::MAX_PAYLOAD_BYTES;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Sustained `@connections` calls per second, account-wide.
    pub rps: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: f64,
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub stack: StackSpec,
    pub api_id: String,
    pub region: String,
    /// The account in ARNs: an authorizer's `methodArn`, an IAM caller's.
    pub account_id: String,
    /// The credentials Management API requests must be signed with.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A connection with no message either way for this long is closed.
    pub idle_timeout: Duration,
    /// A connection is closed this long after it opened, whatever it does.
    pub max_duration: Duration,
    /// Bytes waiting to be written to one client before posts answer 429.
    pub queue_limit_bytes: usize,
    pub throttle: Option<Throttle>,
    /// Fraction of `@connections` calls answered 500.
    pub fault_rate: f64,
    /// Fraction of `$disconnect` invocations silently skipped.
    pub drop_disconnect_rate: f64,
    /// How much longer `$connect` takes after its handler returned 2xx: the
    /// record is written, the connection is not yet reachable (410) and the
    /// handshake not yet complete. AWS's `$connect` window, made testable.
    pub connect_delay: Duration,
    /// Handler invocations (every route) that may run at once; beyond it an
    /// invocation is throttled, as Lambda throttles (no queueing).
    pub lambda_concurrency: usize,
    /// The stage's access log, JSON lines ([`access_log`]), if any.
    pub access_log: Option<std::path::PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            stack: StackSpec::default(),
            api_id: LOCAL_API_ID.to_owned(),
            region: LOCAL_REGION.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            access_key_id: LOCAL_ACCESS_KEY_ID.to_owned(),
            secret_access_key: LOCAL_SECRET_ACCESS_KEY.to_owned(),
            idle_timeout: Duration::from_secs(10 * 60),
            max_duration: Duration::from_secs(2 * 60 * 60),
            queue_limit_bytes: 1024 * 1024,
            throttle: None,
            fault_rate: 0.0,
            drop_disconnect_rate: 0.0,
            connect_delay: Duration::ZERO,
            lambda_concurrency: DEFAULT_LAMBDA_CONCURRENCY,
            access_log: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{name} must be between 0 and 1, not {value}")]
    Rate { name: &'static str, value: f64 },
    #[error("--throttle-rps and --throttle-burst must be at least 1")]
    Throttle,
    #[error("route {route:?} names handler {handler:?}, which is not one of {known}")]
    UnknownHandler {
        route: String,
        handler: String,
        known: String,
    },
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    #[error("--lambda-concurrency must be between 1 and 100000, not {0} (AWS's default is 1000)")]
    LambdaConcurrency(usize),
    #[error(
        "--connect-delay must be at most 29s (API Gateway's integration timeout), not {}",
        wsadmin_core::duration::format_duration(*.0)
    )]
    ConnectDelay(Duration),
    #[error("invalid stack: {0}")]
    Stack(String),
    #[error("cannot write the access log {}: {source}", path.display())]
    AccessLog {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// State shared by every connection and request.
#[derive(Debug)]
pub(crate) struct Api {
    config: EmulatorConfig,
    /// `host:port` the API answers on: the events' `domainName`.
    domain_name: String,
    selection_path: Vec<String>,
    verifier: Verifier,
    integration: Integration,
    registry: Registry,
    /// What `/metrics` serves ([`metrics`]); counted where events happen.
    metrics: metrics::Metrics,
    /// The stage's access log ([`access_log`]); written where events happen.
    access_log: access_log::AccessLog,
    throttle: Option<std::sync::Mutex<TokenBucket>>,
    closing: AtomicBool,
    /// Connection tasks still running (they end after their `$disconnect`).
    tasks: AtomicUsize,
    tasks_done: Notify,
}

impl Api {
    fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn allow_call(&self) -> bool {
        match &self.throttle {
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_take(Instant::now()),
            None => true,
        }
    }

    fn roll(rate: f64) -> bool {
        rate > 0.0 && fastrand::f64() < rate
    }

    /// Counts a connection (from its `$connect` on) until the guard drops,
    /// so shutdown waits for it.
    fn task_started(self: &Arc<Self>) -> TaskGuard {
        self.tasks.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.clone())
    }
}

struct TaskGuard(Arc<Api>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}

/// A configured emulator, ready to serve on a listener.
#[derive(Debug, Clone)]
pub struct Emulator {
    api: Arc<Api>,
}

impl Emulator {
    /// `functions` run the routes; `domain_name` is what events report as
    /// the API's host (the listener's `host:port`).
    pub fn new(
        config: EmulatorConfig,
        functions: Arc<dyn Functions>,
        domain_name: impl Into<String>,
    ) -> Result<Self, EmulatorError> {
        for (name, value) in [
            ("--fault-rate", config.fault_rate),
            ("--drop-disconnect-rate", config.drop_disconnect_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(EmulatorError::Rate { name, value });
            }
        }
        if config
            .throttle
            .is_some_and(|t| !(t.rps >= 1.0 && t.burst >= 1.0))
        {
            return Err(EmulatorError::Throttle);
        }
        if config.idle_timeout.is_zero() {
            return Err(EmulatorError::ZeroDuration("the idle timeout"));
        }
        if config.max_duration.is_zero() {
            return Err(EmulatorError::ZeroDuration("the maximum duration"));
        }
        if config.connect_delay > INTEGRATION_TIMEOUT {
            return Err(EmulatorError::ConnectDelay(config.connect_delay));
        }
        if !LAMBDA_CONCURRENCY_RANGE.contains(&config.lambda_concurrency) {
            return Err(EmulatorError::LambdaConcurrency(config.lambda_concurrency));
        }
        config
            .stack
            .validate()
            .map_err(|e| EmulatorError::Stack(e.to_string()))?;
        if config.stack.stage == METRICS_PATH.trim_start_matches('/') {
            return Err(EmulatorError::Stack(format!(
                "stage \"{}\" would hide the emulator's {METRICS_PATH} (name the stage otherwise)",
                config.stack.stage
            )));
        }
        let integration = Integration::new(&config.stack, functions, config.lambda_concurrency)?;
        let selection_path = config
            .stack
            .selection_path()
            .map_err(|e| EmulatorError::Stack(e.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let verifier = Verifier::new(
            config.access_key_id.clone(),
            config.secret_access_key.clone(),
            config.region.clone(),
        );
        let throttle = config
            .throttle
            .map(|t| std::sync::Mutex::new(TokenBucket::new(t.rps, t.burst, Instant::now())));
        let access_log = match &config.access_log {
            Some(path) => {
                access_log::AccessLog::open(path).map_err(|source| EmulatorError::AccessLog {
                    path: path.clone(),
                    source,
                })?
            }
            None => access_log::AccessLog::default(),
        };
        Ok(Self {
            api: Arc::new(Api {
                config,
                domain_name: domain_name.into(),
                selection_path,
                verifier,
                integration,
                registry: Registry::default(),
                metrics: metrics::Metrics::default(),
                access_log,
                throttle,
                closing: AtomicBool::new(false),
                tasks: AtomicUsize::new(0),
                tasks_done: Notify::new(),
            }),
        })
    }

    /// Live connections right now.
    pub fn connection_count(&self) -> usize {
        self.api.registry.len()
    }

    /// Handler invocations running right now, including those waiting off
    /// the clock (see [`integration::off_the_clock`]).
    pub fn invocations_running(&self) -> usize {
        self.api.integration.running()
    }

    /// Lambda execution slots in use right now (at most the concurrency).
    pub fn slots_busy(&self) -> usize {
        self.api.integration.busy()
    }

    /// What `GET /metrics` answers right now (Prometheus text format).
    pub fn metrics_text(&self) -> String {
        self.api.metrics_text()
    }

    /// Serves until `shutdown` resolves; then closes every connection with
    /// 1001, runs their `$disconnect`, and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_both(listener, None, shutdown).await
    }

    /// [`Emulator::serve`], and the same API over TLS on `tls` (`wss://`,
    /// `https://`): one set of connections, one shutdown for both.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: TlsListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_both(listener, Some(tls), shutdown).await
    }

    async fn serve_both(
        self,
        listener: TcpListener,
        tls: Option<TlsListener>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt as _;
        use futures::FutureExt as _;
        use std::future::IntoFuture as _;

        let api = self.api.clone();
        let app = Router::new()
            .route("/{stage}", get(socket::handshake))
            .route("/{stage}/", get(socket::handshake))
            .route(METRICS_PATH, get(serve_metrics))
            .route("/{stage}/@connections/{id}", any(management::connections))
            .fallback(management::forbidden)
            .with_state(api.clone());
        let drain = api.clone();
        // Both listeners stop on the one signal; the connections close once.
        let stopping = async move {
            shutdown.await;
            drain.close_all().await;
        }
        .boxed()
        .shared();
        let plain = axum::serve(
            listener,
            app.clone()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopping.clone())
        .into_future();
        let Some(tls) = tls else {
            return plain.await;
        };
        // Through `tap_io`, axum's `ConnectInfo<SocketAddr>` covers a listener
        // of ours (its own impl names only `TcpListener` and `TapIo`).
        let secure = axum::serve(
            tls.tap_io(|_| {}),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopping)
        .into_future();
        tokio::try_join!(plain, secure).map(|_| ())
    }
}

/// `GET /metrics`.
async fn serve_metrics(
    axum::extract::State(api): axum::extract::State<Arc<Api>>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.metrics_text(),
    )
        .into_response()
}

impl Api {
    fn metrics_text(&self) -> String {
        let gauges = metrics::Gauges {
            connections_open: self.registry.len(),
            slots_busy: self.integration.busy(),
            slots_limit: self.config.lambda_concurrency,
            invocations_running: self.integration.running(),
            instances: self.integration.instances(),
        };
        self.metrics
            .render(&self.config.api_id, &self.config.stack.stage, &gauges)
    }

    /// Closes every connection with 1001 and waits for their `$disconnect`.
    async fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let closed = self.registry.close_all(registry::CloseCause::Shutdown);
        tracing::info!(connections = closed, "shutting down: closing connections");
        loop {
            let notified = self.tasks_done.notified();
            if self.tasks.load(Ordering::SeqCst) == 0 {
                break;
            }
            if tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .is_err()
            {
                tracing::warn!(
                    remaining = self.tasks.load(Ordering::SeqCst),
                    "connections still closing after 10 s; stopping anyway"
                );
                break;
            }
        }
    }
}
