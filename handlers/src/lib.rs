//! wsadmin-handlers: the Lambda functions of the WebSocket stack, as plain
//! async functions over API Gateway's event and response types.
//!
//! [`Handlers`] holds what the functions share (the registry, the SDK
//! configuration, the Management endpoint override) and is built once per
//! process. Each route answers with an `ApiGatewayProxyResponse`, never an
//! error: a failure becomes a status code and a logged cause, because that is
//! what API Gateway acts on (`$connect` non-2xx refuses the handshake). The
//! `lambda_runtime` glue lives in `lambda` (feature `lambda`, on for the
//! four `src/bin` mains only); tests and the local stack call the functions
//! directly and never link the Lambda runtime.

#[cfg(feature = "lambda")]
pub mod lambda;
pub mod message;

mod routes;

pub use routes::marko_polo;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use wsadmin_core::gateway::EndpointError;
use wsadmin_core::{
    ConnectionStore, Gateway, ManagementEndpoint, ScanOptions, SweepConfig, TableConfig,
};

pub use aws_lambda_events::apigw::ApiGatewayProxyResponse as Response;
pub use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest as Event;

/// The table of connections (required).
pub const ENV_TABLE: &str = "CONNECTIONS_TABLE";
/// Its key attribute, when not `connectionId`.
pub const ENV_TABLE_KEY: &str = "CONNECTIONS_TABLE_KEY";
/// The Management API endpoint, for custom domains and the local stack.
/// Without it, `https://{domainName}/{stage}` from the event is used.
pub const ENV_MANAGEMENT_ENDPOINT: &str = "MANAGEMENT_ENDPOINT_URL";
/// Requests in flight during a broadcast (default 64).
pub const ENV_BROADCAST_CONCURRENCY: &str = "BROADCAST_CONCURRENCY";

/// One function of the stack, by its binary name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Connect,
    Disconnect,
    Default,
    Message,
}

impl Route {
    pub const ALL: [Route; 4] = [
        Route::Connect,
        Route::Disconnect,
        Route::Default,
        Route::Message,
    ];

    /// The function's name: its binary and Lambda function name.
    pub fn function_name(self) -> &'static str {
        match self {
            Route::Connect => "ws-connect",
            Route::Disconnect => "ws-disconnect",
            Route::Default => "ws-default",
            Route::Message => "ws-message",
        }
    }

    pub fn from_function_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.function_name() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{ENV_TABLE} is not set: name the DynamoDB table that registers connections")]
    MissingTable,
    #[error("{ENV_MANAGEMENT_ENDPOINT}: {0}")]
    Endpoint(#[from] EndpointError),
    #[error("{ENV_BROADCAST_CONCURRENCY} must be a whole number from 1 to 10000, not {0:?}")]
    Concurrency(String),
}

/// A Lambda event that is not an API Gateway WebSocket event.
#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway WebSocket event: {0}")]
pub struct EventError(#[from] serde_json::Error);

/// Reads an event from its JSON form, the Lambda wire contract.
pub fn parse_event(json: &str) -> Result<Event, EventError> {
    Ok(serde_json::from_str(json)?)
}

/// What every route shares, built once per process.
#[derive(Debug)]
pub struct Handlers {
    store: ConnectionStore,
    sdk: SdkConfig,
    management_endpoint: Option<ManagementEndpoint>,
    /// The broadcast's sweep: concurrency, retries, the stale rule's grace.
    sweep: SweepConfig,
    scan: ScanOptions,
    /// Management API clients by endpoint, so warm invocations reuse them.
    gateways: Mutex<HashMap<ManagementEndpoint, Gateway>>,
    /// Requests in flight per Management API client, at most
    /// ([`Handlers::with_gateway_bound`]).
    gateway_bound: Option<usize>,
}

impl Handlers {
    pub fn new(
        sdk: SdkConfig,
        table: TableConfig,
        management_endpoint: Option<ManagementEndpoint>,
    ) -> Self {
        // Our own table, keyed by the id alone: no DescribeTable to learn
        // it (the first invocations would otherwise all wait on one, each
        // holding its Lambda slot).
        let keys = wsadmin_core::registry::KeySchema::hash_only(table.key());
        Self {
            store: ConnectionStore::from_conf(&sdk, table).with_key_schema(keys),
            sdk,
            management_endpoint,
            sweep: SweepConfig::default(),
            // A broadcast to everyone shows no record: it reads only what
            // decides each connection's fate.
            scan: ScanOptions::default().reading(wsadmin_core::store::Fields::Decisions),
            gateways: Mutex::new(HashMap::new()),
            gateway_bound: None,
        }
    }

    /// At most `max_in_flight` Management API requests in flight across
    /// every invocation of these handlers (per endpoint): for many
    /// invocations in one process (the local stack), as the HTTP client
    /// the SDK configuration carries bounds its connections per host.
    pub fn with_gateway_bound(mut self, max_in_flight: usize) -> Self {
        self.gateway_bound = Some(max_in_flight);
        self
    }

    /// Configuration from environment variables, looked up through `var`.
    pub fn from_vars(
        sdk: SdkConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let name = var(ENV_TABLE)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::MissingTable)?;
        let mut table = TableConfig::new(name.trim());
        if let Some(key) = var(ENV_TABLE_KEY).filter(|v| !v.trim().is_empty()) {
            table = table.with_key(key.trim());
        }
        let endpoint = var(ENV_MANAGEMENT_ENDPOINT)
            .filter(|v| !v.trim().is_empty())
            .map(|v| ManagementEndpoint::parse(&v))
            .transpose()?;
        let mut handlers = Self::new(sdk, table, endpoint);
        if let Some(raw) = var(ENV_BROADCAST_CONCURRENCY) {
            let n = raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or(ConfigError::Concurrency(raw))?;
            handlers.sweep.concurrency = n;
        }
        Ok(handlers)
    }

    /// Configuration from the process environment and the standard AWS
    /// variables (`AWS_ENDPOINT_URL_DYNAMODB` reaches a local DynamoDB).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sdk = aws_config::load_from_env().await;
        Self::from_vars(sdk, |k| std::env::var(k).ok())
    }

    pub fn with_sweep(mut self, sweep: SweepConfig) -> Self {
        self.sweep = sweep;
        self
    }

    pub fn with_scan(mut self, scan: ScanOptions) -> Self {
        self.scan = scan;
        self
    }

    pub fn store(&self) -> &ConnectionStore {
        &self.store
    }

    /// Runs one route's function.
    pub async fn handle(&self, route: Route, event: Event) -> Response {
        match route {
            Route::Connect => self.connect(event).await,
            Route::Disconnect => self.disconnect(event).await,
            Route::Default => self.default_route(event).await,
            Route::Message => self.message(event).await,
        }
    }

    fn gateway_for(&self, event: &ApiGatewayWebsocketProxyRequest) -> Result<Gateway, String> {
        let endpoint = match &self.management_endpoint {
            Some(e) => e.clone(),
            None => {
                let ctx = &event.request_context;
                let (Some(domain), Some(stage)) =
                    (ctx.domain_name.as_deref(), ctx.stage.as_deref())
                else {
                    return Err(format!(
                        "the event has no requestContext.domainName or stage to reach the Management API: set {ENV_MANAGEMENT_ENDPOINT}"
                    ));
                };
                ManagementEndpoint::parse(&format!("https://{domain}/{stage}"))
                    .map_err(|e| e.to_string())?
            }
        };
        let mut cache = self.gateways.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = cache.get(&endpoint) {
            return Ok(g.clone());
        }
        let mut gateway = Gateway::new(&self.sdk, endpoint.clone()).map_err(|e| e.to_string())?;
        if let Some(bound) = self.gateway_bound {
            gateway = gateway.bounded(bound);
        }
        cache.insert(endpoint, gateway.clone());
        Ok(gateway)
    }
}

/// A response with a status and a text body.
pub(crate) fn respond(status: i64, body: impl Into<String>) -> ApiGatewayProxyResponse {
    let mut res = ApiGatewayProxyResponse::default();
    res.status_code = status;
    res.body = Some(Body::Text(body.into()));
    res
}
