//! The SDK path: `aws-sdk-apigatewaymanagement`'s client, its own retries
//! off, a `DateReader` interceptor feeding the gateway's clock. The client
//! of record (what the design names), selectable beside the lean path.

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::Region;
use aws_sdk_apigatewaymanagement::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use bytes::Bytes;

use super::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, ConnectionInfo, ManagementEndpoint};
use crate::clock::{Clock, system_now_ms};
use crate::sdk_error::{SdkFailure, classify};

#[derive(Debug, Clone)]
pub(super) struct SdkTransport {
    client: Client,
}

/// Feeds every answer's `Date` header to the gateway's [`Clock`].
#[derive(Debug)]
struct DateReader(Clock);

impl Intercept for DateReader {
    fn name(&self) -> &'static str {
        "wsadmin-date-reader"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.observe_http_date(date, system_now_ms());
        }
        Ok(())
    }
}

impl SdkTransport {
    /// `region` is set only when the shared configuration has none.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: &ManagementEndpoint,
        region: Option<&str>,
        clock: Clock,
    ) -> Self {
        let mut conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint.url())
            .interceptor(DateReader(clock))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            );
        if let Some(region) = region {
            conf = conf.region(Region::new(region.to_owned()));
        }
        if let Some(http) = crate::sdk::http_client_for(endpoint.url()) {
            conf = conf.http_client(http);
        }
        Self {
            client: Client::from_conf(conf.build()),
        }
    }

    pub async fn post(&self, connection_id: &str, data: Bytes) -> Result<(), SdkFailure> {
        self.client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    pub async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, SdkFailure> {
        let out = self
            .client
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map_err(classify)?;
        let millis = |t: Option<&aws_smithy_types::DateTime>| t.and_then(|t| t.to_millis().ok());
        let identity = out.identity();
        Ok(ConnectionInfo {
            connected_at: millis(out.connected_at()),
            last_active_at: millis(out.last_active_at()),
            source_ip: identity.and_then(|i| i.source_ip()).map(str::to_owned),
            user_agent: identity.and_then(|i| i.user_agent()).map(str::to_owned),
        })
    }

    pub async fn delete(&self, connection_id: &str) -> Result<(), SdkFailure> {
        self.client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
