//! Connection and message ids shaped like API Gateway's: 16 characters of
//! base64 ending in `=` (`L0SM9cOFvHcCIhw=`), from 88 random bits. The
//! URL-safe alphabet keeps `/` and `+` out, so ids are safe in paths. Also
//! the reading of an id from a Management API path (pure: no registry).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

use crate::percent::{self, Undecodable};

pub fn new_id() -> String {
    let mut bytes = [0u8; 11];
    fastrand::fill(&mut bytes);
    URL_SAFE.encode(bytes)
}

/// How much of a bad id an error message quotes.
const QUOTE_CHARS: usize = 80;

/// A connection id in a Management API path that cannot name a connection:
/// API Gateway answers it 400 `BadRequestException` (the message keeps AWS's
/// wording, since it reaches users through their SDK's error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid connectionId: {quoted} ({reason})")]
pub struct InvalidId {
    /// The raw path segment, cut short and escaped for the message.
    pub quoted: String,
    pub reason: String,
}

/// The connection id in the raw (still percent-encoded) last segment of
/// `/{stage}/@connections/{id}`. Escapes must be `%XX`; the decoded id must
/// be UTF-8 and well-formed (`wsadmin_core::record::validate_connection_id`).
pub fn from_path(raw: &str) -> Result<String, InvalidId> {
    let invalid = |reason: &str| InvalidId {
        quoted: format!("{:?}", raw.chars().take(QUOTE_CHARS).collect::<String>()),
        reason: reason.to_owned(),
    };
    let id = percent::decode(raw).map_err(|e| {
        invalid(match e {
            Undecodable::BrokenEscape => {
                "malformed percent-escape: % must be followed by two hex digits"
            }
            Undecodable::NotUtf8 => "it is not UTF-8 once percent-decoded",
        })
    })?;
    wsadmin_core::record::validate_connection_id(&id).map_err(|e| invalid(e.reason))?;
    Ok(id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_decoded_strictly() {
        assert_eq!(
            from_path("L0SM9cOFvHcCIhw%3D").as_deref(),
            Ok("L0SM9cOFvHcCIhw=")
        );
        assert_eq!(from_path("abc=").as_deref(), Ok("abc="));
        for bad in [
            "%zz", "%", "abc%3", "%ff", "a%2Fb", "a%20b", "%25%25", "%00",
        ] {
            let e = from_path(bad).expect_err(bad);
            assert!(e.to_string().starts_with("Invalid connectionId: "), "{e}");
        }
        let long = "a".repeat(300);
        let e = from_path(&long).expect_err("overlong");
        assert!(
            e.to_string().len() < 200,
            "the message quotes a bounded part: {e}"
        );
    }

    #[test]
    fn ids_look_like_api_gateways_and_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
            assert!(
                wsadmin_core::record::validate_connection_id(id).is_ok(),
                "{id}"
            );
        }
    }
}
