//! The API Gateway v2 control plane, read only: the API behind `--api-id`
//! (its endpoint) and what `status` shows of it (routes with their
//! integrations, stages). Behind the `control-plane` feature, so only the
//! `wsadmin` binary links aws-sdk-apigatewayv2 (the handlers never do).
//! Errors are read in the one place (`sdk_error`) and say what failed, on
//! what, and what to do, in one sentence.

use aws_config::SdkConfig;

use crate::sdk_error::{SdkFailure, classify};

/// The control plane of one region.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    client: aws_sdk_apigatewayv2::Client,
    /// For messages: where the API was looked for.
    region: String,
}

/// An API as GetApi describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub id: String,
    pub name: Option<String>,
    /// `WEBSOCKET`, `HTTP`.
    pub protocol: Option<String>,
    pub route_selection_expression: Option<String>,
    /// `wss://{id}.execute-api.{region}.amazonaws.com` (no stage).
    pub endpoint: Option<String>,
}

impl Api {
    pub fn is_websocket(&self) -> bool {
        self.protocol.as_deref() == Some("WEBSOCKET")
    }
}

/// A route and the integration it targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: String,
    /// The integration's URI (for Lambda, a path ending in the function's
    /// ARN), when the route targets one that has one.
    pub integration_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("API {api_id:?} not found in {region} (check --api-id and --region)")]
    NotFound { api_id: String, region: String },
    #[error(
        "{call} of API {api_id:?} was refused: {message} (the operator needs apigateway:GET on the API: see `wsstack policy`)"
    )]
    Forbidden {
        call: &'static str,
        api_id: String,
        message: String,
    },
    #[error(
        "cannot reach the API Gateway control plane in {region} ({call}): {reason} (check the network and --region, or AWS_ENDPOINT_URL_APIGATEWAYV2)"
    )]
    Unreachable {
        call: &'static str,
        region: String,
        reason: String,
    },
    #[error("the API Gateway control plane in {region} did not answer {call} in time")]
    Timeout { call: &'static str, region: String },
    #[error(
        "no AWS credentials to ask the API Gateway control plane: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
    #[error("{call} of API {api_id:?} failed: {message}")]
    Failed {
        call: &'static str,
        api_id: String,
        message: String,
    },
}

impl ControlPlane {
    /// The control plane of `sdk`'s region (its endpoint as the SDK
    /// configuration says: `AWS_ENDPOINT_URL_APIGATEWAYV2` applies).
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_apigatewayv2::Client::new(sdk),
            region: sdk
                .region()
                .map_or_else(|| "(no region)".to_owned(), |r| r.to_string()),
        }
    }

    /// GetApi.
    pub async fn api(&self, api_id: &str) -> Result<Api, ControlPlaneError> {
        let got = self
            .client
            .get_api()
            .api_id(api_id)
            .send()
            .await
            .map_err(|e| self.error("GetApi", api_id, e))?;
        Ok(Api {
            id: api_id.to_owned(),
            name: got.name().map(str::to_owned),
            protocol: got.protocol_type().map(|p| p.as_str().to_owned()),
            route_selection_expression: got.route_selection_expression().map(str::to_owned),
            endpoint: got.api_endpoint().map(str::to_owned),
        })
    }

    /// GetRoutes and GetIntegrations, joined: each route with the URI of
    /// the integration it targets; sorted by route key.
    pub async fn routes(&self, api_id: &str) -> Result<Vec<Route>, ControlPlaneError> {
        let routes = self
            .client
            .get_routes()
            .api_id(api_id)
            .max_results("500")
            .send();
        let integrations = self
            .client
            .get_integrations()
            .api_id(api_id)
            .max_results("500")
            .send();
        let (routes, integrations) = futures::join!(routes, integrations);
        let routes = routes.map_err(|e| self.error("GetRoutes", api_id, e))?;
        let integrations = integrations
            .map_err(|e| self.error("GetIntegrations", api_id, e))?
            .items
            .unwrap_or_default();
        let mut out: Vec<Route> = routes
            .items
            .unwrap_or_default()
            .iter()
            .map(|route| Route {
                key: route.route_key().unwrap_or("?").to_owned(),
                integration_uri: route
                    .target()
                    .and_then(|t| t.strip_prefix("integrations/"))
                    .and_then(|id| integrations.iter().find(|i| i.integration_id() == Some(id)))
                    .and_then(|i| i.integration_uri())
                    .map(str::to_owned),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// GetStages: the stage names.
    pub async fn stages(&self, api_id: &str) -> Result<Vec<String>, ControlPlaneError> {
        let stages = self
            .client
            .get_stages()
            .api_id(api_id)
            .max_results("500")
            .send()
            .await
            .map_err(|e| self.error("GetStages", api_id, e))?;
        Ok(stages
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.stage_name().map(str::to_owned))
            .collect())
    }

    fn error<E>(
        &self,
        call: &'static str,
        api_id: &str,
        err: aws_sdk_apigatewayv2::error::SdkError<
            E,
            aws_sdk_apigatewayv2::config::http::HttpResponse,
        >,
    ) -> ControlPlaneError
    where
        E: aws_sdk_apigatewayv2::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        let api_id = api_id.to_owned();
        let region = self.region.clone();
        match classify(err) {
            SdkFailure::Service { status, code, .. }
                if status == 404 || code.as_deref() == Some("NotFoundException") =>
            {
                ControlPlaneError::NotFound { api_id, region }
            }
            SdkFailure::Service {
                status: 403,
                message,
                ..
            } => ControlPlaneError::Forbidden {
                call,
                api_id,
                message,
            },
            SdkFailure::Service {
                status,
                code,
                message,
            } => ControlPlaneError::Failed {
                call,
                api_id,
                message: format!(
                    "{message} ({})",
                    code.unwrap_or_else(|| format!("HTTP {status}"))
                ),
            },
            SdkFailure::Unreachable(reason) => ControlPlaneError::Unreachable {
                call,
                region,
                reason,
            },
            SdkFailure::Timeout(_) => ControlPlaneError::Timeout { call, region },
            SdkFailure::NoCredentials => ControlPlaneError::NoCredentials,
            SdkFailure::Other(message) => ControlPlaneError::Failed {
                call,
                api_id,
                message,
            },
        }
    }
}
