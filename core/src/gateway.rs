//! The API Gateway Management API (`@connections`): post, get, delete.
//!
//! Owns the endpoint (parsed from whatever URL an operator has at hand) and
//! the error classification: every failure becomes a [`GatewayError`] whose
//! message says what happened to which connection at which endpoint. Two
//! paths carry the requests, behind the one [`Gateway`] type and the same
//! classification: the lean one (`gateway/lean.rs` over `gateway/h1.rs`:
//! pooled keep-alive HTTP/1.1 connections of its own, SigV4 with a key
//! derived once a day; the default) and the AWS
//! SDK's client (`gateway/sdk.rs`), chosen by [`GatewayClient`]. Neither
//! retries: retrying is the caller's decision (the fan-out engine retries
//! with its own policy).

mod h1;
mod lean;
mod sdk;
mod sigv4;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::MAX_PAYLOAD_BYTES;
use crate::clock::Clock;
use crate::record::{InvalidConnectionId, validate_connection_id};
use crate::sdk_error::SdkFailure;

/// How long opening a connection to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, answer included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the Management API of one stage lives: `https://host/stage` (or a
/// custom domain and base path). The SDK appends `/@connections/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManagementEndpoint {
    url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "malformed endpoint URL {url:?}: {reason} (expected https://API_ID.execute-api.REGION.amazonaws.com/STAGE)"
    )]
    Malformed { url: String, reason: &'static str },
    #[error("endpoint URL {url:?} has no stage: add it, as in {url}/dev")]
    NoStage { url: String },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidPart {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl ManagementEndpoint {
    /// Accepts `https://…/stage`, `wss://…/stage` (the WebSocket URL, turned
    /// into its https twin), `http://`/`ws://` for local endpoints, with or
    /// without a trailing `/@connections`.
    pub fn parse(input: &str) -> Result<Self, EndpointError> {
        let url = input.trim();
        let malformed = |reason| EndpointError::Malformed {
            url: url.to_owned(),
            reason,
        };
        if url.is_empty() {
            return Err(malformed("it is empty"));
        }
        if !url.contains("://") {
            return Err(malformed("it has no scheme (start it with https://)"));
        }
        let uri = http::Uri::from_str(url).map_err(|_| malformed("it is not a URL"))?;
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https" | "wss") => "https",
            Some("http" | "ws") => "http",
            Some(_) => return Err(malformed("the scheme must be https, wss, http or ws")),
            None => return Err(malformed("it has no scheme")),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| malformed("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(malformed("it must not carry user information"));
        }
        if uri.query().is_some() {
            return Err(malformed("it must not have a query string"));
        }
        let path = uri.path().trim_end_matches('/');
        let path = path.strip_suffix("/@connections").unwrap_or(path);
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(EndpointError::NoStage {
                url: format!("{scheme}://{authority}"),
            });
        }
        Ok(Self {
            url: format!("{scheme}://{authority}{path}"),
        })
    }

    /// The execute-api endpoint of an API's stage.
    pub fn for_api(api_id: &str, region: &str, stage: &str) -> Result<Self, EndpointError> {
        let check = |what, value: &str| {
            let reason = if value.is_empty() {
                "it is empty"
            } else if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                "only letters, digits, - and _ are allowed"
            } else {
                return Ok(());
            };
            Err(EndpointError::InvalidPart {
                what,
                value: value.to_owned(),
                reason,
            })
        };
        check("API id", api_id)?;
        check("region", region)?;
        check("stage", stage)?;
        Ok(Self {
            url: format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The region named by an `execute-api` host, if the host is one.
    pub fn region(&self) -> Option<&str> {
        let host = self.url.split("://").nth(1)?.split(['/', ':']).next()?;
        let mut parts = host.split('.');
        let (_api, service, region) = (parts.next()?, parts.next()?, parts.next()?);
        (service == "execute-api").then_some(region)
    }
}

impl FromStr for ManagementEndpoint {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ManagementEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// A Management API failure, classified. Messages name the connection or the
/// endpoint and, where there is one, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("connection {id} is gone (410 GoneException)")]
    Gone { id: String },
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("throttled by {endpoint} (429 LimitExceededException: {message})")]
    Throttled { endpoint: String, message: String },
    #[error(
        "forbidden by {endpoint} (403 ForbiddenException: {message}): check the credentials, the region and the stage in the endpoint URL"
    )]
    Forbidden { endpoint: String, message: String },
    #[error("{message}")]
    Transient { message: String },
    /// No answer at all (connection refused, DNS, timeout): says nothing
    /// about the connection, everything about the endpoint.
    #[error("{message}")]
    Unreachable { message: String },
    #[error(transparent)]
    InvalidConnectionId(#[from] InvalidConnectionId),
    #[error(
        "no AWS credentials to sign Management API requests: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error("{message}")]
    Other { message: String },
}

impl GatewayError {
    /// Throttling and transient failures may pass on a later attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. } | Self::Transient { .. } | Self::Unreachable { .. }
        )
    }

    /// Whether the failure is about the target (credentials, stage,
    /// endpoint) rather than one connection: when every target fails so, the
    /// whole command failed. Decided by its kind ([`crate::failure`]).
    pub fn is_about_the_target(&self) -> bool {
        crate::failure::is_about_the_target(self.kind())
    }

    /// A stable, machine-readable name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Gone { .. } => "gone",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Throttled { .. } => "throttled",
            Self::Forbidden { .. } => "forbidden",
            Self::Transient { .. } => "transient",
            Self::Unreachable { .. } => "unreachable",
            Self::InvalidConnectionId(_) => "invalid_connection_id",
            Self::NoCredentials => "no_credentials",
            Self::Other { .. } => "other",
        }
    }

    /// Refuses a payload API Gateway would refuse, before any request.
    pub fn check_payload(len: usize) -> Result<(), GatewayError> {
        if len > MAX_PAYLOAD_BYTES {
            return Err(Self::PayloadTooLarge {
                message: format!(
                    "payload is {len} bytes, over API Gateway's limit of {MAX_PAYLOAD_BYTES} bytes (128 KB)"
                ),
            });
        }
        Ok(())
    }
}

impl crate::retry::Retryable for GatewayError {
    fn retry_class(&self) -> crate::retry::RetryClass {
        use crate::retry::RetryClass;
        match self {
            Self::Throttled { .. } => RetryClass::Throttled,
            Self::Transient { .. } | Self::Unreachable { .. } => RetryClass::Transient,
            _ => RetryClass::Final,
        }
    }
}

/// What GetConnection tells about a live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// Epoch milliseconds.
    pub connected_at: Option<i64>,
    /// Epoch milliseconds of the last message either way.
    pub last_active_at: Option<i64>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Which client carries the Management API requests. Both sign alike,
/// read answers alike and feed the same clock; they differ in cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatewayClient {
    /// Pooled keep-alive HTTP/1.1 connections of its own and a SigV4
    /// signer with its key derived once a day: a few µs of CPU a request.
    /// The default. Its connections
    /// are its own, outside the HTTP client the SDK configuration carries:
    /// a process whose many callers share one gateway bounds it with
    /// [`Gateway::bounded`] (the local stack's handlers do).
    #[default]
    Lean,
    /// `aws-sdk-apigatewaymanagement`: the SDK's orchestrator (interceptors,
    /// config bags, identity and endpoint resolution) on every request.
    Sdk,
}

/// Names the client for every gateway a process builds: `lean` or `sdk`;
/// unset, [`GatewayClient::for_endpoint`] chooses. Read by
/// [`Gateway::new`] and [`Gateway::with_clock`].
pub const ENV_GATEWAY_CLIENT: &str = "WSADMIN_GATEWAY_CLIENT";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Management API client {0:?}: use lean or sdk")]
pub struct InvalidGatewayClient(String);

impl FromStr for GatewayClient {
    type Err = InvalidGatewayClient;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lean" => Ok(Self::Lean),
            "sdk" => Ok(Self::Sdk),
            _ => Err(InvalidGatewayClient(s.to_owned())),
        }
    }
}

impl fmt::Display for GatewayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lean => "lean",
            Self::Sdk => "sdk",
        })
    }
}

impl GatewayClient {
    /// The client [`ENV_GATEWAY_CLIENT`] names; unset or empty is the
    /// default. A value that names none is an error, not a silent default.
    pub fn from_env() -> Result<Self, InvalidGatewayClient> {
        Ok(Self::named_in_env()?.unwrap_or_default())
    }

    fn named_in_env() -> Result<Option<Self>, InvalidGatewayClient> {
        match std::env::var(ENV_GATEWAY_CLIENT) {
            Ok(v) if !v.trim().is_empty() => v.parse().map(Some),
            _ => Ok(None),
        }
    }

    /// The client for `endpoint`: the one [`ENV_GATEWAY_CLIENT`] names;
    /// else the SDK's when the environment's proxy settings (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, less `NO_PROXY`, read by the SDK's own
    /// matcher) send its requests through a proxy, which the SDK's client
    /// honours and the lean one, connecting directly, does not; else lean.
    /// The proxy that decided, if one did.
    pub fn for_endpoint(
        endpoint: &ManagementEndpoint,
    ) -> Result<(Self, Option<String>), InvalidGatewayClient> {
        if let Some(named) = Self::named_in_env()? {
            return Ok((named, None));
        }
        let proxies = hyper_util::client::proxy::matcher::Matcher::from_env();
        Ok(Self::behind(&proxies, endpoint))
    }

    fn behind(
        proxies: &hyper_util::client::proxy::matcher::Matcher,
        endpoint: &ManagementEndpoint,
    ) -> (Self, Option<String>) {
        let proxy = endpoint
            .url()
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| proxies.intercept(&uri));
        match proxy {
            Some(p) => {
                // Never the proxy's credentials: its address only.
                let uri = p.uri();
                let at = match (uri.host(), uri.port_u16()) {
                    (Some(h), Some(port)) => format!("{h}:{port}"),
                    (Some(h), None) => h.to_owned(),
                    _ => "a proxy".to_owned(),
                };
                (Self::Sdk, Some(at))
            }
            None => (Self::Lean, None),
        }
    }
}

/// A Management API client for one endpoint.
#[derive(Debug, Clone)]
pub struct Gateway {
    transport: Transport,
    endpoint: ManagementEndpoint,
    /// Learns AWS's time from every answer's `Date`.
    clock: Clock,
    /// At most this many requests in flight across this gateway's clones
    /// ([`Gateway::bounded`]).
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

#[derive(Debug, Clone)]
enum Transport {
    Lean(Arc<lean::LeanTransport>),
    Sdk(sdk::SdkTransport),
}

impl Gateway {
    /// Builds a client for `endpoint` from shared SDK configuration (its
    /// credentials chain, its region). With no region configured, an
    /// `execute-api` host's own region is used. The client is the one
    /// [`ENV_GATEWAY_CLIENT`] names (lean by default).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: ManagementEndpoint,
    ) -> Result<Self, GatewayError> {
        Self::with_clock(sdk, endpoint, Clock::system())
    }

    /// [`Gateway::new`] feeding `clock` (a program's one clock, perhaps
    /// fixed) instead of a clock of its own.
    pub fn with_clock(
        sdk: &aws_config::SdkConfig,
        endpoint: ManagementEndpoint,
        clock: Clock,
    ) -> Result<Self, GatewayError> {
        let (client, proxy) =
            GatewayClient::for_endpoint(&endpoint).map_err(|e| GatewayError::Other {
                message: format!("{ENV_GATEWAY_CLIENT}: {e}"),
            })?;
        if let Some(proxy) = proxy {
            tracing::info!(
                "the Management API's requests to {endpoint} go through the AWS SDK's client, \
                 which honours the proxy at {proxy} (set {ENV_GATEWAY_CLIENT}=lean to connect \
                 directly)"
            );
        }
        Self::with_client(sdk, endpoint, clock, client)
    }

    /// [`Gateway::with_clock`] through `client`, whatever the environment
    /// says.
    pub fn with_client(
        sdk: &aws_config::SdkConfig,
        endpoint: ManagementEndpoint,
        clock: Clock,
        client: GatewayClient,
    ) -> Result<Self, GatewayError> {
        let own_region = match sdk.region() {
            Some(_) => None,
            None => match endpoint.region() {
                Some(region) => Some(region.to_owned()),
                None => {
                    return Err(GatewayError::Other {
                        message: format!(
                            "no AWS region to sign requests to {endpoint}: set AWS_REGION (or --region)"
                        ),
                    });
                }
            },
        };
        let transport = match client {
            GatewayClient::Sdk => Transport::Sdk(sdk::SdkTransport::new(
                sdk,
                &endpoint,
                own_region.as_deref(),
                clock.clone(),
            )),
            GatewayClient::Lean => {
                let region = own_region
                    .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
                    .unwrap_or_default();
                let lean = lean::LeanTransport::new(sdk, &endpoint, region, clock.clone())
                    .map_err(|message| GatewayError::Other { message })?;
                Transport::Lean(Arc::new(lean))
            }
        };
        Ok(Self {
            transport,
            endpoint,
            clock,
            gate: None,
        })
    }

    /// At most `max_in_flight` requests of this gateway and its clones in
    /// flight at once; more wait for one to end. On keep-alive HTTP/1.1 a
    /// request in flight is a connection: this bounds the connections of a
    /// process whose many callers share one gateway (the local stack's
    /// in-process handlers, whichever client carries them). A sweep bounds
    /// its own requests already.
    pub fn bounded(mut self, max_in_flight: usize) -> Self {
        self.gate = Some(Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))));
        self
    }

    /// A turn to make a request, when bounded (the semaphore is never
    /// closed: a failure to acquire goes ahead unbounded).
    async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.gate {
            Some(gate) => gate.acquire().await.ok(),
            None => None,
        }
    }

    pub fn endpoint(&self) -> &ManagementEndpoint {
        &self.endpoint
    }

    /// Which client carries this gateway's requests.
    pub fn client(&self) -> GatewayClient {
        match self.transport {
            Transport::Lean(_) => GatewayClient::Lean,
            Transport::Sdk(_) => GatewayClient::Sdk,
        }
    }

    /// "Now" on AWS's clock, as this endpoint's answers tell it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    // The SDK path's futures are boxed: tens of KB each (its orchestrator),
    // which every lean request's future would otherwise carry and move.

    /// PostToConnection: sends `data` (text or bytes) as one message.
    pub async fn post(
        &self,
        connection_id: &str,
        data: impl Into<Bytes>,
    ) -> Result<(), GatewayError> {
        let data = data.into();
        validate_connection_id(connection_id)?;
        GatewayError::check_payload(data.len())?;
        let _turn = self.turn().await;
        match &self.transport {
            Transport::Lean(t) => t.post(connection_id, data).await,
            Transport::Sdk(t) => Box::pin(t.post(connection_id, data)).await,
        }
        .map_err(|e| self.error(connection_id, e))
    }

    /// GetConnection.
    pub async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, GatewayError> {
        validate_connection_id(connection_id)?;
        let _turn = self.turn().await;
        match &self.transport {
            Transport::Lean(t) => t.get(connection_id).await,
            Transport::Sdk(t) => Box::pin(t.get(connection_id)).await,
        }
        .map_err(|e| self.error(connection_id, e))
    }

    /// DeleteConnection: closes the connection (its `$disconnect` runs).
    pub async fn delete(&self, connection_id: &str) -> Result<(), GatewayError> {
        validate_connection_id(connection_id)?;
        let _turn = self.turn().await;
        match &self.transport {
            Transport::Lean(t) => t.delete(connection_id).await,
            Transport::Sdk(t) => Box::pin(t.delete(connection_id)).await,
        }
        .map_err(|e| self.error(connection_id, e))
    }

    fn error(&self, id: &str, failure: SdkFailure) -> GatewayError {
        let endpoint = self.endpoint.url().to_owned();
        match failure {
            SdkFailure::Service {
                status,
                code,
                message,
            } => match (code.as_deref(), status) {
                (Some("GoneException"), _) | (_, 410) => GatewayError::Gone { id: id.to_owned() },
                (Some("PayloadTooLargeException"), _) | (_, 413) => GatewayError::PayloadTooLarge {
                    message: format!(
                        "{endpoint} refused the payload for {id} as too large (413: {message})"
                    ),
                },
                (Some("LimitExceededException" | "TooManyRequestsException"), _) | (_, 429) => {
                    GatewayError::Throttled { endpoint, message }
                }
                (Some("ForbiddenException" | "AccessDeniedException"), _) | (_, 403) => {
                    GatewayError::Forbidden { endpoint, message }
                }
                (code, status) if status >= 500 => GatewayError::Transient {
                    message: format!(
                        "{endpoint} answered {status} {} for {id}: {message}",
                        code.unwrap_or("error")
                    ),
                },
                (code, status) => GatewayError::Other {
                    message: format!(
                        "{endpoint} answered {status} {} for {id}: {message}",
                        code.unwrap_or("error")
                    ),
                },
            },
            SdkFailure::Unreachable(cause) => GatewayError::Unreachable {
                message: format!("cannot reach {endpoint}: {cause}"),
            },
            SdkFailure::Timeout(_) => GatewayError::Unreachable {
                message: format!("request to {endpoint} for {id} timed out"),
            },
            SdkFailure::NoCredentials => GatewayError::NoCredentials,
            SdkFailure::Other(text) => GatewayError::Other {
                message: format!("request to {endpoint} for {id} failed: {text}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_endpoint_goes_through_the_sdks_client() {
        use hyper_util::client::proxy::matcher::Matcher;
        let aws =
            ManagementEndpoint::parse("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
                .expect("aws");
        let local = ManagementEndpoint::parse("http://127.0.0.1:3001/dev").expect("local");
        let choose = |m: Matcher, e: &ManagementEndpoint| GatewayClient::behind(&m, e);
        let none = || Matcher::builder().build();
        assert_eq!(choose(none(), &aws), (GatewayClient::Lean, None));
        assert_eq!(choose(none(), &local), (GatewayClient::Lean, None));
        let https = || Matcher::builder().https("http://user:secret@proxy.corp:3128");
        assert_eq!(
            choose(https().build(), &aws),
            (GatewayClient::Sdk, Some("proxy.corp:3128".to_owned())),
            "its address, never its credentials"
        );
        assert_eq!(
            choose(https().build(), &local),
            (GatewayClient::Lean, None),
            "http is not https"
        );
        for no in ["*", ".amazonaws.com", "execute-api.eu-west-1.amazonaws.com"] {
            assert_eq!(
                choose(https().no(no).build(), &aws),
                (GatewayClient::Lean, None),
                "NO_PROXY={no}"
            );
        }
        let all = Matcher::builder()
            .all("http://proxy.corp:8080")
            .no("localhost")
            .build();
        assert_eq!(
            choose(all, &local).0,
            GatewayClient::Sdk,
            "127.0.0.1 is not localhost"
        );
        let all = Matcher::builder()
            .all("http://proxy.corp:8080")
            .no("127.0.0.1")
            .build();
        assert_eq!(choose(all, &local), (GatewayClient::Lean, None));
    }

    #[test]
    fn parses_the_urls_operators_have_at_hand() {
        let ok = |s: &str| ManagementEndpoint::parse(s).expect(s).url().to_owned();
        let aws = "https://abc123.execute-api.us-east-1.amazonaws.com/dev";
        assert_eq!(ok(aws), aws);
        assert_eq!(
            ok("wss://abc123.execute-api.us-east-1.amazonaws.com/dev/"),
            aws
        );
        assert_eq!(
            ok("https://abc123.execute-api.us-east-1.amazonaws.com/dev/@connections"),
            aws
        );
        assert_eq!(ok("ws://127.0.0.1:3001/dev"), "http://127.0.0.1:3001/dev");
        assert_eq!(
            ok(" https://ws.example.com/api/v1 "),
            "https://ws.example.com/api/v1"
        );
    }

    #[test]
    fn refuses_urls_it_cannot_use() {
        for (input, needle) in [
            ("", "it is empty"),
            (
                "abc123.execute-api.us-east-1.amazonaws.com/dev",
                "no scheme",
            ),
            ("ftp://host/dev", "scheme must be"),
            ("https://host/dev?x=1", "query string"),
            ("https:///dev", "not a URL"),
            ("not a url at all", "no scheme"),
            ("https://ho st/dev", "not a URL"),
        ] {
            let err = ManagementEndpoint::parse(input)
                .expect_err(input)
                .to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
            assert!(err.starts_with("malformed endpoint URL"), "{err}");
        }
        let err = ManagementEndpoint::parse("https://abc.execute-api.eu-west-1.amazonaws.com/")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "endpoint URL \"https://abc.execute-api.eu-west-1.amazonaws.com\" has no stage: add it, as in https://abc.execute-api.eu-west-1.amazonaws.com/dev"
        );
    }

    #[test]
    fn builds_from_api_id_region_and_stage() {
        let e = ManagementEndpoint::for_api("abc123", "eu-west-1", "prod").expect("valid");
        assert_eq!(
            e.url(),
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
        );
        assert_eq!(e.region(), Some("eu-west-1"));
        assert!(ManagementEndpoint::for_api("abc", "eu-west-1", "").is_err());
        assert!(ManagementEndpoint::for_api("a/b", "eu-west-1", "dev").is_err());
        assert_eq!(
            ManagementEndpoint::parse("http://127.0.0.1:1/dev")
                .expect("ok")
                .region(),
            None
        );
    }

    #[test]
    fn payload_limit_is_128_kib() {
        assert!(GatewayError::check_payload(MAX_PAYLOAD_BYTES).is_ok());
        let err = GatewayError::check_payload(MAX_PAYLOAD_BYTES + 1).unwrap_err();
        assert_eq!(err.kind(), "payload_too_large");
        assert!(err.to_string().contains("131073 bytes"), "{err}");
    }
}
