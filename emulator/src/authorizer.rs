//! Who may connect: API Gateway's authorization of a WebSocket API's
//! `$connect`, decided before its integration runs. A REQUEST Lambda
//! authorizer gets the handshake's headers and query string with the
//! route's `methodArn` and answers with an IAM policy; IAM authorization
//! checks the handshake's SigV4 query-string signature.
//!
//! Pure: the event the authorizer is sent ([`request_event`]), the check
//! that every identity source is present ([`missing_identity`]), and the
//! reading of its answer ([`decide`]); the socket runs the function and
//! verifies signatures. As AWS documents it
//! (apigateway-websocket-api-lambda-auth, api-gateway-lambda-authorizer-output):
//! a missing identity source is 401 without an invocation; a `Deny`
//! covering the route, or no `Allow` covering it, is 403; an answer without
//! a `principalId` or a policy, or whose `context` holds anything but
//! strings, numbers and booleans, is the authorizer's failure, 500. The
//! granted `principalId` and `context` (its values stringified, as API
//! Gateway passes them on) become `requestContext.authorizer` of every
//! later event of the connection.

use serde_json::{Map, Value, json};
use wsadmin_core::stack::IdentitySource;

/// Why a handshake is refused before `$connect` runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An identity source is missing (401), or the signature is (IAM: 403).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The policy denies the route or does not allow it (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The authorizer failed: threw, timed out, was throttled, or answered
    /// something that is not an authorizer's answer (500).
    #[error("authorizer failed: {0}")]
    Failed(String),
}

impl Refusal {
    /// The handshake's HTTP status and the `message` of its JSON body.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Self::Unauthorized(_) => (401, "Unauthorized"),
            Self::Forbidden(_) => (403, "Forbidden"),
            Self::Failed(_) => (500, "Internal server error"),
        }
    }
}

/// `arn:aws:execute-api:REGION:ACCOUNT:APIID/STAGE/$connect`.
pub fn method_arn(region: &str, account: &str, api_id: &str, stage: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect")
}

/// The first identity source the handshake lacks (an empty value counts as
/// missing, as on API Gateway), or `None` when all are there.
pub fn missing_identity<'a>(
    sources: &'a [IdentitySource],
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Option<&'a IdentitySource> {
    sources.iter().find(|source| match source {
        IdentitySource::Header(name) => !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty()),
        IdentitySource::Query(name) => !query.iter().any(|(k, v)| k == name && !v.is_empty()),
    })
}

/// The REQUEST authorizer's event: the `$connect` event's headers, query
/// string and request context, with `type`, `methodArn` and
/// `stageVariables`, as AWS's example shows it.
pub fn request_event(connect_event: &Value, method_arn: &str) -> Value {
    let mut event = Map::new();
    event.insert("type".into(), json!("REQUEST"));
    event.insert("methodArn".into(), json!(method_arn));
    if let Value::Object(connect) = connect_event {
        for (k, v) in connect {
            if k != "isBase64Encoded" {
                event.insert(k.clone(), v.clone());
            }
        }
    }
    event.insert("stageVariables".into(), json!({}));
    Value::Object(event)
}

/// Reads the authorizer's answer for `method_arn`: the connection's
/// `requestContext.authorizer` when allowed, else why not.
pub fn decide(answer: &Value, method_arn: &str) -> Result<Value, Refusal> {
    let malformed = |what: &str| Refusal::Failed(format!("the authorizer's answer {what}"));
    let answer = answer
        .as_object()
        .ok_or_else(|| malformed("is not a JSON object"))?;
    let principal = match answer.get("principalId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(malformed("has no principalId")),
    };
    let policy = answer
        .get("policyDocument")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("has no policyDocument"))?;
    let statements = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(malformed("has a policyDocument without Statement")),
    };
    let mut allowed = false;
    for statement in statements {
        let effect = statement
            .get("Effect")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("has a statement without Effect"))?;
        let actions = strings(statement.get("Action"))
            .ok_or_else(|| malformed("has a statement without Action"))?;
        let resources = strings(statement.get("Resource"))
            .ok_or_else(|| malformed("has a statement without Resource"))?;
        let covers = actions.iter().any(|a| glob(a, "execute-api:Invoke"))
            && resources.iter().any(|r| glob(r, method_arn));
        match effect {
            "Deny" if covers => {
                return Err(Refusal::Forbidden(format!(
                    "the policy denies {method_arn}"
                )));
            }
            "Allow" => allowed |= covers,
            "Deny" => {}
            other => return Err(malformed(&format!("has Effect {other:?}"))),
        }
    }
    if !allowed {
        return Err(Refusal::Forbidden(format!(
            "the policy does not allow {method_arn}"
        )));
    }
    let mut authorizer = Map::new();
    match answer.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(context)) => {
            for (k, v) in context {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(malformed(&format!(
                            "has context key {k:?} that is not a string, number or boolean"
                        )));
                    }
                };
                authorizer.insert(k.clone(), Value::String(text));
            }
        }
        Some(_) => return Err(malformed("has a context that is not an object")),
    }
    authorizer.insert("principalId".into(), Value::String(principal));
    Ok(Value::Object(authorizer))
}

/// A policy's string-or-list field.
fn strings(value: Option<&Value>) -> Option<Vec<&str>> {
    match value? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `requestContext.identity`'s IAM fields for a handshake signed with
/// `access_key_id`: the stack has one set of credentials, a user of the
/// local account.
pub fn iam_identity(access_key_id: &str, account: &str) -> Map<String, Value> {
    let mut identity = Map::new();
    identity.insert("accessKey".into(), json!(access_key_id));
    identity.insert("accountId".into(), json!(account));
    identity.insert("caller".into(), json!(access_key_id));
    identity.insert("user".into(), json!(access_key_id));
    identity.insert(
        "userArn".into(),
        json!(format!("arn:aws:iam::{account}:user/wsstack-local")),
    );
    identity
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:api/dev/$connect";

    fn answer(effect: &str, resource: Value, context: Value) -> Value {
        json!({
            "principalId": "ana",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{ "Action": "execute-api:Invoke", "Effect": effect, "Resource": resource }]
            },
            "context": context,
        })
    }

    #[test]
    fn allow_grants_the_principal_and_the_context_as_strings() {
        let granted = decide(
            &answer(
                "Allow",
                json!(ARN),
                json!({"user": "ana", "n": 7, "admin": true}),
            ),
            ARN,
        )
        .unwrap();
        assert_eq!(
            granted,
            json!({"principalId": "ana", "user": "ana", "n": "7", "admin": "true"})
        );
        let wildcard = answer(
            "Allow",
            json!(["arn:aws:execute-api:*:*:api/*"]),
            json!(null),
        );
        assert!(decide(&wildcard, ARN).is_ok());
    }

    #[test]
    fn deny_or_a_policy_not_covering_the_route_is_forbidden() {
        let deny = decide(&answer("Deny", json!("*"), json!({})), ARN);
        assert!(matches!(deny, Err(Refusal::Forbidden(_))), "{deny:?}");
        let elsewhere = answer("Allow", json!("arn:aws:execute-api:*:*:other/*"), json!({}));
        assert!(matches!(
            decide(&elsewhere, ARN),
            Err(Refusal::Forbidden(_))
        ));
        let mut both = answer("Allow", json!("*"), json!({}));
        both["policyDocument"]["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Action": "*", "Effect": "Deny", "Resource": ARN}));
        assert!(matches!(decide(&both, ARN), Err(Refusal::Forbidden(_))));
    }

    #[test]
    fn malformed_answers_are_the_authorizers_failure() {
        for bad in [
            json!("Allow"),
            json!({"policyDocument": {"Statement": []}}),
            json!({"principalId": "a"}),
            json!({"principalId": "a", "policyDocument": {"Statement": [{"Effect": "Allow"}]}}),
            answer("Maybe", json!(ARN), json!({})),
            answer("Allow", json!(ARN), json!({"nested": {"a": 1}})),
            answer("Allow", json!(ARN), json!({"list": [1]})),
        ] {
            assert!(
                matches!(decide(&bad, ARN), Err(Refusal::Failed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn identity_sources_headers_ignore_case_queries_do_not() {
        let sources = [
            IdentitySource::Header("X-Key".into()),
            IdentitySource::Query("token".into()),
        ];
        let headers = [("x-key".to_owned(), "k".to_owned())];
        let query = [("token".to_owned(), "ok".to_owned())];
        assert_eq!(missing_identity(&sources, &headers, &query), None);
        assert_eq!(
            missing_identity(&sources, &headers, &[("Token".into(), "ok".into())]),
            Some(&sources[1])
        );
        assert_eq!(
            missing_identity(&sources, &[("x-key".into(), String::new())], &query),
            Some(&sources[0])
        );
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("*", "anything"));
        assert!(glob("a?c*", "abcdef"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("execute-api:*", "execute-api:Invoke"));
        assert!(!glob("execute-api:Invoke", "execute-api:ManageConnections"));
    }
}
