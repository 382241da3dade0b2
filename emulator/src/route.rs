//! Route selection, as API Gateway does it for WebSocket messages: evaluate
//! the route selection expression (`$request.body.type`) on the message; a
//! body that is not JSON, lacks the key, or holds a non-string there goes to
//! `$default`. Pure.

use serde_json::Value;

pub const DEFAULT_ROUTE: &str = "$default";

/// The route key a text message selects, before checking that the route
/// exists. `path` is the body path of the expression (`["type"]`).
pub fn select(body: &str, path: &[&str]) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let mut at = &value;
    for key in path {
        at = at.as_object()?.get(*key)?;
    }
    at.as_str().map(str::to_owned)
}

/// What to do with a message: the route to invoke, or none (API Gateway then
/// sends its "Forbidden" error frame).
pub fn resolve(selected: Option<String>, has_route: impl Fn(&str) -> bool) -> Option<String> {
    match selected {
        Some(key) if key != DEFAULT_ROUTE && !key.starts_with('$') && has_route(&key) => Some(key),
        _ if has_route(DEFAULT_ROUTE) => Some(DEFAULT_ROUTE.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_the_expression_path() {
        let p = ["type"];
        assert_eq!(
            select(r#"{"type":"message","data":1}"#, &p).as_deref(),
            Some("message")
        );
        assert_eq!(select(r#"{"type":7}"#, &p), None, "not a string");
        assert_eq!(select(r#"{"kind":"message"}"#, &p), None, "key missing");
        assert_eq!(select("Marko?", &p), None, "not JSON");
        assert_eq!(select(r#"["type"]"#, &p), None, "not an object");
        assert_eq!(
            select(r#"{"a":{"b":"x"}}"#, &["a", "b"]).as_deref(),
            Some("x")
        );
    }

    #[test]
    fn unknown_or_reserved_keys_go_to_default_when_it_exists() {
        let routes = ["$connect", "$default", "message"];
        let has = |k: &str| routes.contains(&k);
        assert_eq!(
            resolve(Some("message".into()), has).as_deref(),
            Some("message")
        );
        assert_eq!(
            resolve(Some("chat".into()), has).as_deref(),
            Some("$default")
        );
        assert_eq!(
            resolve(Some("$connect".into()), has).as_deref(),
            Some("$default")
        );
        assert_eq!(resolve(None, has).as_deref(), Some("$default"));
        let no_default = |k: &str| k == "message";
        assert_eq!(resolve(Some("chat".into()), no_default), None);
    }
}
