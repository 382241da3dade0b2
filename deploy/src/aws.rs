//! The AWS side of `wsstack up`/`plan`/`status`/`down`: one SDK
//! configuration from the standard settings (profile, region,
//! `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`, the credential
//! chain), the clients built from it, every call through core's one retry
//! policy, and every SDK error read into one line that names the action and
//! what it acted on.
//!
//! It must not decide anything about stacks or artifacts: those are
//! [`crate::cloudformation`] and [`crate::artifacts`].

use std::future::Future;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use wsadmin_core::RetryPolicy;
use wsadmin_core::retry::{RetryClass, Retryable};
use wsadmin_core::sdk::{LoadError, load};
use wsadmin_core::sdk_error::{SdkFailure, classify as classify_sdk};

/// One AWS call that failed, read: the action (`cloudformation:CreateChangeSet`),
/// what it acted on, the error code when the service gave one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action} on {target} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub action: &'static str,
    pub target: String,
    pub code: Option<String>,
    pub message: String,
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    class: RetryClass,
}

impl Retryable for AwsError {
    fn retry_class(&self) -> RetryClass {
        self.class
    }
}

impl AwsError {
    /// Reads an SDK error: the service's code and message when it
    /// answered, else the innermost cause (connection refused, timeout).
    pub fn from_sdk<E>(
        action: &'static str,
        target: impl Into<String>,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let target = target.into();
        let (code, message, status, class) = match classify_sdk(err) {
            SdkFailure::NoCredentials => (
                Some("NoCredentials".to_owned()),
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_owned(),
                None,
                RetryClass::Final,
            ),
            SdkFailure::Service {
                status,
                code,
                message,
            } => {
                let class = classify(status, code.as_deref());
                (code, message, Some(status), class)
            }
            SdkFailure::Unreachable(m) | SdkFailure::Timeout(m) => {
                (None, m, None, RetryClass::Transient)
            }
            SdkFailure::Other(m) => (None, m, None, RetryClass::Final),
        };
        Self {
            action,
            target,
            code,
            message,
            status,
            class,
        }
    }

    /// A failure around a call rather than from it: a request that could
    /// not be built, an answer without what it should carry.
    pub fn other(
        action: &'static str,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            action,
            target: target.into(),
            code: None,
            message: message.into(),
            status: None,
            class: RetryClass::Final,
        }
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether the service said the thing does not exist (HTTP 404, or a
    /// "not found"/"does not exist" code or message).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
            || self
                .code()
                .is_some_and(|c| c.contains("NotFound") || c == "NoSuchBucket" || c == "NoSuchKey")
            || self.message.contains("does not exist")
    }
}

/// Whether a failure may pass: throttling, 5xx.
fn classify(status: u16, code: Option<&str>) -> RetryClass {
    let throttled = matches!(
        code,
        Some(
            "Throttling"
                | "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "SlowDown"
        )
    );
    if throttled || status == 429 {
        RetryClass::Throttled
    } else if status >= 500 {
        RetryClass::Transient
    } else {
        RetryClass::Final
    }
}

/// The clients of one deploy command, from one SDK configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    pub sdk: SdkConfig,
    pub region: String,
    pub profile: Option<String>,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    retry: RetryPolicy,
}

impl Aws {
    /// Loads the standard AWS settings (`--profile`/`AWS_PROFILE`,
    /// `--region`/`AWS_REGION`/the profile's region, `AWS_ENDPOINT_URL*`,
    /// the credential chain) and checks that there are credentials. The
    /// SDK's own retries are off: calls go through [`Aws::call`].
    pub async fn connect(region: Option<&str>, profile: Option<&str>) -> Result<Self, LoadError> {
        let sdk = load(profile, region)
            .await?
            .into_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk);
        // A custom endpoint (moto, MinIO, a proxy) is one host: address
        // buckets by path, not by subdomain.
        if sdk.endpoint_url().is_some() {
            s3 = s3.force_path_style(true);
        }
        Ok(Self {
            cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sts: aws_sdk_sts::Client::new(&sdk),
            region,
            profile: profile.map(str::to_owned),
            sdk,
            retry: RetryPolicy::default(),
        })
    }

    /// Runs one SDK call under the retry policy; its error read into an
    /// [`AwsError`] naming `action` and `target`.
    pub async fn call<T, E, F, Fut>(
        &self,
        action: &'static str,
        target: &str,
        mut request: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.retry
            .run(|_| {
                let sent = request();
                let target = target.to_owned();
                async move {
                    sent.await
                        .map_err(|e| AwsError::from_sdk(action, target, e))
                }
            })
            .await
    }

    /// The account the credentials belong to (STS GetCallerIdentity).
    pub async fn account_id(&self) -> Result<String, AwsError> {
        let out = self
            .call("sts:GetCallerIdentity", "the caller", || {
                self.sts.get_caller_identity().send()
            })
            .await?;
        out.account().map(str::to_owned).ok_or_else(|| {
            AwsError::other(
                "sts:GetCallerIdentity",
                "the caller",
                "the answer named no account",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_action_its_target_and_the_code() {
        let e = AwsError {
            code: Some("AccessDenied".into()),
            status: Some(403),
            class: RetryClass::Final,
            ..AwsError::other(
                "cloudformation:CreateChangeSet",
                "stack \"demo\"",
                "User: arn:aws:iam::1:user/x is not authorized to perform: cloudformation:CreateChangeSet",
            )
        };
        assert_eq!(
            e.to_string(),
            "cloudformation:CreateChangeSet on stack \"demo\" failed: AccessDenied: User: arn:aws:iam::1:user/x is not authorized to perform: cloudformation:CreateChangeSet"
        );
        assert!(!e.is_not_found());
        assert_eq!(e.retry_class(), RetryClass::Final);
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        assert_eq!(classify(400, Some("Throttling")), RetryClass::Throttled);
        assert_eq!(classify(503, None), RetryClass::Transient);
        assert_eq!(classify(400, Some("ValidationError")), RetryClass::Final);
        assert_eq!(classify(403, Some("AccessDenied")), RetryClass::Final);
    }
}
