//! Turns AWS SDK errors into what a person can act on. The SDK's `Display`
//! says only "service error"; the useful text lives in the error chain
//! (`DisplayErrorContext`) and in the error code. The one place that reads
//! SDK errors, for any service's client: the store, the gateway, the
//! control plane, and `wsstack`'s CloudFormation and S3 calls.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// What went wrong with one SDK call, before any service-specific meaning.
#[derive(Debug)]
pub enum SdkFailure {
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

pub fn classify<E>(err: SdkError<E, HttpResponse>) -> SdkFailure
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
            // An answer the SDK could not read (a proxy, a stand-in) still
            // says something in its body.
            let message = e.message().map(str::to_owned).unwrap_or_else(|| {
                let body = se.raw().body().bytes().map(String::from_utf8_lossy);
                match body.map(|b| b.split_whitespace().collect::<Vec<_>>().join(" ")) {
                    Some(b) if !b.is_empty() => {
                        format!("HTTP {status}: {}", b.chars().take(300).collect::<String>())
                    }
                    _ => format!("HTTP {status}"),
                }
            });
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
pub fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
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

/// An error and its causes in one line, outermost first, each said once:
/// what the binaries print (`{:#}`), for text that is kept (a report's
/// reasons, the dashboard's log) rather than printed.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    causes(err).join(": ")
}

/// Why credentials could not be loaded, in a few words: the deepest cause
/// below the SDK's wrappers ("an error occurred while loading credentials",
/// "service error"), a service's error as `Code: message` (STS's
/// `AccessDenied: … not authorized to perform: sts:AssumeRole …`).
pub fn credentials_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let all = causes(err);
    let cause = all
        .iter()
        .rfind(|c| !c.starts_with("an error occurred while loading") && *c != "service error")
        .or(all.last())
        .cloned()
        .unwrap_or_default();
    // ErrorMetadata's Display: `Error { code: "C", message: "M", … }`.
    let service = cause.strip_prefix("Error { code: \"").and_then(|rest| {
        let (code, rest) = rest.split_once('"')?;
        let message = rest.strip_prefix(", message: \"")?;
        let end = message.find("\"").unwrap_or(message.len());
        Some(format!("{code}: {}", &message[..end]))
    });
    service.unwrap_or(cause)
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
    fn a_credentials_failure_reads_as_its_cause() {
        let sts = std::io::Error::other(
            "Error { code: \"AccessDenied\", message: \"not authorized to perform: sts:AssumeRole\" }",
        );
        let outer = std::io::Error::other(sts);
        assert_eq!(
            credentials_cause(&outer),
            "AccessDenied: not authorized to perform: sts:AssumeRole"
        );
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(credentials_cause(&refused), "Connection refused");
    }

    #[test]
    fn recognises_missing_credentials() {
        assert!(looks_like_missing_credentials(
            "failed to construct request: no credentials provider configured"
        ));
        assert!(!looks_like_missing_credentials("Connection refused"));
    }
}
