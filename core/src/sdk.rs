//! Shared AWS SDK configuration built from values, not from the
//! environment: the local stack's fixed credentials (the CLI's `--context
//! local`, `wsstack local`) and tests. Loading the operator's own profile
//! and environment is the CLI's business (`aws_config::defaults`).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

/// SDK configuration with static credentials in `region`. Nothing is read
/// from the environment or the AWS config files. Add an endpoint with
/// `.into_builder().endpoint_url(url).build()`.
pub fn static_config(
    region: impl Into<String>,
    access_key_id: impl Into<String>,
    secret_access_key: impl Into<String>,
) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.into()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "static",
        )))
        .build()
}

/// [`static_config`] with every service at `endpoint_url` (a local
/// DynamoDB, the local stack, a test server).
pub fn static_config_at(
    region: impl Into<String>,
    access_key_id: impl Into<String>,
    secret_access_key: impl Into<String>,
    endpoint_url: impl Into<String>,
) -> SdkConfig {
    static_config(region, access_key_id, secret_access_key)
        .into_builder()
        .endpoint_url(endpoint_url)
        .build()
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::ProvideCredentials;

    #[tokio::test]
    async fn carries_its_region_and_keys() {
        let sdk = super::static_config("eu-west-1", "AKID", "secret");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        let creds = sdk
            .credentials_provider()
            .expect("a provider")
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(creds.access_key_id(), "AKID");
        assert_eq!(creds.secret_access_key(), "secret");
    }
}
