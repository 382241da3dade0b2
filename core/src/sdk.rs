//! The one way our binaries get an AWS SDK configuration: from values
//! ([`static_config`]: the local stack's fixed credentials, tests), or
//! from the operator's profile and environment ([`load`]: region checked,
//! credentials resolved at once under a timeout, a failure diagnosed in
//! one sentence: an undefined profile, an SSO login to renew, a role that
//! cannot be assumed). `wsadmin`, `wsadmin connect --sign` and `wsstack`
//! all load through it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::error::display::DisplayErrorContext;

/// How long resolving credentials may take (an SSO or credential process
/// that hangs must not hang the command).
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(20);

/// Why no usable configuration could be loaded: one sentence each, saying
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("invalid region {0:?}: expected a region name like us-east-1 or eu-west-3")]
    InvalidRegion(String),
    #[error("no AWS region: set --region or AWS_REGION (or a region in your AWS profile)")]
    NoRegion,
    #[error(
        "AWS profile {0:?} is not defined in the AWS config files (~/.aws/config, ~/.aws/credentials): create it with `aws configure --profile {0}` or pass another --profile"
    )]
    UndefinedProfile(String),
    #[error("AWS profile {profile:?} uses SSO and has no valid token ({cause}): run `{login}`")]
    SsoLogin {
        profile: String,
        cause: String,
        login: String,
    },
    #[error("cannot assume role {role} for AWS profile {profile:?}: {cause}{via}")]
    AssumeRole {
        role: String,
        profile: String,
        cause: String,
        /// Why STS may not have answered, when it did not.
        via: &'static str,
    },
    #[error("timed out loading AWS credentials (is the SSO or credential process stuck?)")]
    TimedOut,
    #[error(
        "no AWS credentials found: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials,
}

/// Whether `region` reads like an AWS region name (`us-east-1`,
/// `eu-west-3`, `us-gov-west-1`, `ap-southeast-4`): a two-letter area,
/// lowercase words and a number, joined by `-`. Checked before any
/// request, so a typo is not an endpoint resolution error later.
pub fn check_region(region: &str) -> Result<(), LoadError> {
    let parts: Vec<&str> = region.split('-').collect();
    let word = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase());
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(word)
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(LoadError::InvalidRegion(region.to_owned()))
    }
}

/// The operator's configuration: the standard chain (`AWS_*`, the config
/// files, SSO, roles, the instance), with `profile` and `region` when
/// given. The region is checked and the credentials resolved now, so that
/// a problem is one sentence before any command starts. The SDK's own
/// retries are left to each client.
pub async fn load(profile: Option<&str>, region: Option<&str>) -> Result<SdkConfig, LoadError> {
    if let Some(r) = region {
        check_region(r)?;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    let sdk = loader.load().await;
    match sdk.region() {
        Some(r) => check_region(r.as_ref())?,
        None => return Err(LoadError::NoRegion),
    }
    check_credentials(&sdk, profile).await?;
    Ok(sdk)
}

/// Resolves the credentials of `sdk` (the chain caches them for the
/// clients), or says why there are none.
async fn check_credentials(sdk: &SdkConfig, profile: Option<&str>) -> Result<(), LoadError> {
    let env_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let profile = profile.map(str::to_owned).or(env_profile);
    let Some(provider) = sdk.credentials_provider() else {
        return Err(LoadError::NoCredentials);
    };
    let err = match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await
    {
        Err(_) => return Err(LoadError::TimedOut),
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
    };
    let text = DisplayErrorContext(&err).to_string();
    tracing::debug!("credentials: {text}");
    let settings = profile_settings(profile.as_deref().unwrap_or("default"));
    if let Some(p) = &profile
        && settings.is_none()
    {
        return Err(LoadError::UndefinedProfile(p.clone()));
    }
    // The deepest cause, without the SDK's wrappers: "Connection refused
    // (os error 111)", "AccessDenied: … not authorized to perform
    // sts:AssumeRole", "the SSO token has expired and cannot be refreshed".
    let cause = crate::sdk_error::credentials_cause(&err);
    let name = profile.as_deref().unwrap_or("default").to_owned();
    let settings = settings.unwrap_or_default();
    if settings.contains_key("sso_start_url") || settings.contains_key("sso_session") {
        let cause = if text.contains("No such file") {
            "none is cached".to_owned()
        } else {
            cause
        };
        let login = match &profile {
            Some(p) => format!("aws sso login --profile {p}"),
            None => "aws sso login".to_owned(),
        };
        return Err(LoadError::SsoLogin {
            profile: name,
            cause,
            login,
        });
    }
    if let Some(role) = settings.get("role_arn") {
        let via = if text.contains("dispatch failure") {
            " (STS could not be reached: AWS_ENDPOINT_URL_STS or the network?)"
        } else {
            ""
        };
        return Err(LoadError::AssumeRole {
            role: role.clone(),
            profile: name,
            cause,
            via,
        });
    }
    Err(LoadError::NoCredentials)
}

/// The settings of `profile` in the AWS config and credentials files, or
/// `None` when neither has a section for it (the SDK's own error does not
/// say so, nor which kind of profile failed: SSO, a role to assume).
fn profile_settings(profile: &str) -> Option<BTreeMap<String, String>> {
    let home = dirs::home_dir().unwrap_or_default();
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws").join(default))
    };
    // The keys of the section `wanted` says is ours, if there is one.
    let section =
        |path: PathBuf, wanted: &dyn Fn(&str) -> bool| -> Option<BTreeMap<String, String>> {
            let text = std::fs::read_to_string(path).ok()?;
            let mut found = None;
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    if found.is_some() {
                        break;
                    }
                    if wanted(name.trim()) {
                        found = Some(BTreeMap::new());
                    }
                } else if let Some(keys) = found.as_mut()
                    && let Some((k, v)) = line.split_once('=')
                {
                    keys.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
            found
        };
    let config = section(file("AWS_CONFIG_FILE", "config"), &|s| {
        s.strip_prefix("profile")
            .is_some_and(|rest| rest.trim() == profile)
            || (profile == "default" && s == "default")
    });
    let credentials = section(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &|s| {
        s == profile
    });
    match (config, credentials) {
        (None, None) => None,
        (a, b) => {
            let mut all = b.unwrap_or_default();
            all.extend(a.unwrap_or_default());
            Some(all)
        }
    }
}

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

/// The HTTP client for an SDK client whose calls go to `endpoint`, where
/// the SDK's default would waste work: a plain `http://` endpoint (a local
/// DynamoDB, the local stack) gets the default client exactly as the SDK
/// builds it (hyper and rustls with aws-lc, the connector settings, the
/// proxy settings of the environment) but without a trust store. The
/// default reads every certificate of the system's store when the SDK
/// client is built (~150 files parsed: half the CPU of a short `wsadmin`
/// run) for TLS such an endpoint never speaks. `None` for anything else:
/// the SDK's default stays.
pub fn http_client_for(endpoint: &str) -> Option<SharedHttpClient> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let plain = endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    if !plain {
        return None;
    }
    let no_roots = TlsContext::builder()
        .with_trust_store(TrustStore::empty())
        .build()
        .ok()?;
    // As aws-smithy-runtime's `default_https_client` builds it.
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut connector = aws_smithy_http_client::ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(no_roots.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        },
    );
    Some(client)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::ProvideCredentials;

    #[test]
    fn only_plain_http_endpoints_skip_the_trust_store() {
        for plain in ["http://127.0.0.1:8000", "HTTP://localhost:4566/"] {
            assert!(super::http_client_for(plain).is_some(), "{plain}");
        }
        for other in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "https://127.0.0.1:8443",
            "http:/oops",
            "",
        ] {
            assert!(super::http_client_for(other).is_none(), "{other}");
        }
    }

    #[test]
    fn region_names_are_checked() {
        for ok in [
            "us-east-1",
            "eu-west-3",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(super::check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "useast1",
            "us-east",
            "EU-WEST-1",
            "us-east-",
            "-east-1",
            "u-east-1",
            "us--1",
            "us east-1",
            "us-east-1a",
            "x.y-1",
        ] {
            assert_eq!(
                super::check_region(bad),
                Err(super::LoadError::InvalidRegion(bad.to_owned())),
                "{bad}"
            );
        }
    }

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
