//! Turns AWS SDK errors into what a person can act on. The SDK's `Display`
//! says only "service error"; the useful text lives in the error chain
//! (`DisplayErrorContext`) and in the error code.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// What went wrong with one SDK call, before any service-specific meaning.
#[derive(Debug)]
pub(crate) enum SdkFailure {
    /// The service answered with an error.
    Service {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, I/O.
    Unreachable(String),
    /// No answer in time.
    Timeout(String),
    /// The request could not be signed: no credentials were found.
    NoCredentials,
    /// Anything else (a request that could not be built, an unreadable answer).
    Other(String),
}

pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&err).to_string();
    if looks_like_missing_credentials(&text) {
        tracing::debug!("credentials problem: {text}");
        return SdkFailure::NoCredentials;
    }
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let e = se.err();
            let message = e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            SdkFailure::Service {
                status,
                code: e.code().map(str::to_owned),
                message,
            }
        }
        SdkError::TimeoutError(_) => SdkFailure::Timeout(text),
        SdkError::DispatchFailure(ref d) if d.is_timeout() => SdkFailure::Timeout(text),
        SdkError::DispatchFailure(_) => SdkFailure::Unreachable(strip_noise(&text)),
        SdkError::ResponseError(_) => SdkFailure::Unreachable(strip_noise(&text)),
        _ => SdkFailure::Other(text),
    }
}

fn looks_like_missing_credentials(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("no credentials")
        || t.contains("credentials provider")
        || t.contains("credential provider")
        || t.contains("credentialsnotloaded")
        || t.contains("nomatchingauthscheme")
        || t.contains("no auth scheme")
        || t.contains("loading credentials")
}

/// The dispatch chain repeats itself ("dispatch failure: io error: client
/// error (Connect): tcp connect error: Connection refused (os error 111)"):
/// keep the last, most specific part.
fn strip_noise(text: &str) -> String {
    text.rsplit(": ")
        .find(|part| !part.trim().is_empty())
        .map(|s| s.trim().trim_end_matches(')').to_owned() + if s.contains('(') { ")" } else { "" })
        .unwrap_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_specific_end_of_a_dispatch_chain() {
        let t = "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert_eq!(strip_noise(t), "Connection refused (os error 111)");
        assert_eq!(strip_noise("plain"), "plain");
    }

    #[test]
    fn recognises_missing_credentials() {
        assert!(looks_like_missing_credentials(
            "failed to construct request: no credentials provider configured"
        ));
        assert!(!looks_like_missing_credentials("Connection refused"));
    }
}
