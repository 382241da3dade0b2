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
    let chain = causes(&err);
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
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SdkFailure::Unreachable(chain.last().cloned().unwrap_or(text))
        }
        _ => SdkFailure::Other(chain.join(": ")),
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

/// The messages of an error and its sources, outermost first, without
/// repeats (wrappers often echo their source).
fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && out.last().is_none_or(|last| !last.contains(&text)) {
            out.push(text);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_an_error_chain_outermost_first() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = std::io::Error::other(io);
        assert_eq!(causes(&outer), vec!["Connection refused".to_owned()]);
    }

    #[test]
    fn recognises_missing_credentials() {
        assert!(looks_like_missing_credentials(
            "failed to construct request: no credentials provider configured"
        ));
        assert!(!looks_like_missing_credentials("Connection refused"));
    }
}
