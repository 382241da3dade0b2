//! The `message` route's body: `{"type": "message", "data": …}`. Pure
//! parsing, so every malformed body is tested without sockets.

use bytes::Bytes;
use wsadmin_core::MAX_PAYLOAD_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("the message has no body: send {{\"type\": \"message\", \"data\": ...}}")]
    NoBody,
    #[error("the body is not JSON ({0}): send {{\"type\": \"message\", \"data\": ...}}")]
    NotJson(String),
    #[error("the body is not a JSON object: send {{\"type\": \"message\", \"data\": ...}}")]
    NotObject,
    #[error("\"data\" is missing: send {{\"type\": \"message\", \"data\": ...}}")]
    NoData,
    #[error("\"data\" is empty: there is nothing to send")]
    Empty,
    #[error(
        "\"data\" is {0} bytes, over API Gateway's limit of {MAX_PAYLOAD_BYTES} bytes (128 KB)"
    )]
    TooLarge(usize),
}

/// The payload to broadcast: a string `data` as-is, any other JSON value as
/// its JSON text.
pub fn parse_message(body: Option<&str>) -> Result<Bytes, BadMessage> {
    let body = body.ok_or(BadMessage::NoBody)?;
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| BadMessage::NotJson(e.to_string()))?;
    let obj = value.as_object().ok_or(BadMessage::NotObject)?;
    let data = obj.get("data").ok_or(BadMessage::NoData)?;
    let payload = match data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if payload.is_empty() {
        return Err(BadMessage::Empty);
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(BadMessage::TooLarge(payload.len()));
    }
    Ok(Bytes::from(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_go_as_is_and_other_values_as_json() {
        let p = |b: &str| parse_message(Some(b));
        assert_eq!(
            p(r#"{"type":"message","data":"Hello World!"}"#),
            Ok(Bytes::from("Hello World!"))
        );
        assert_eq!(
            p(r#"{"type":"message","data":{"a":[1,2]}}"#),
            Ok(Bytes::from(r#"{"a":[1,2]}"#))
        );
        assert_eq!(p(r#"{"data":42}"#), Ok(Bytes::from("42")));
        assert_eq!(p(r#"{"data":null}"#), Ok(Bytes::from("null")));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        assert_eq!(parse_message(None), Err(BadMessage::NoBody));
        assert!(matches!(
            parse_message(Some("Marko?")),
            Err(BadMessage::NotJson(_))
        ));
        assert_eq!(parse_message(Some("[1]")), Err(BadMessage::NotObject));
        assert_eq!(
            parse_message(Some(r#"{"type":"message"}"#)),
            Err(BadMessage::NoData)
        );
        assert_eq!(
            parse_message(Some(r#"{"data":""}"#)),
            Err(BadMessage::Empty)
        );
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES + 1));
        assert_eq!(
            parse_message(Some(&big)),
            Err(BadMessage::TooLarge(MAX_PAYLOAD_BYTES + 1))
        );
        let exact = format!(r#"{{"data":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES));
        assert!(parse_message(Some(&exact)).is_ok());
    }
}
