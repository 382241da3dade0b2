//! The Lambda events API Gateway sends for WebSocket routes, built as JSON
//! exactly in the shape AWS sends them (the handlers read them through the
//! same deserialiser Lambda uses). Pure: every value comes in as an argument.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::dates;

/// What every event of one connection shares.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub api_id: &'a str,
    pub stage: &'a str,
    pub domain_name: &'a str,
    pub connection_id: &'a str,
    pub connected_at_ms: i64,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    /// `requestContext.authorizer`: what the `$connect` authorizer granted
    /// (its `principalId` and `context`).
    pub authorizer: Option<&'a Value>,
    /// IAM fields of `requestContext.identity` (`accessKey`, `userArn`,
    /// `caller`, ...) for a handshake IAM authorized.
    pub caller: Option<&'a Map<String, Value>>,
}

/// The part that differs by event type.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    Connect {
        /// Header name and value pairs, as received (repeats allowed).
        headers: &'a [(String, String)],
        /// Query-string pairs, decoded, as received (repeats allowed).
        query: &'a [(String, String)],
    },
    Message {
        route_key: &'a str,
        message_id: &'a str,
        body: &'a str,
        is_base64: bool,
    },
    Disconnect {
        status_code: u16,
        reason: &'a str,
    },
}

/// The event JSON for one invocation.
pub fn build(ctx: &Context<'_>, kind: &Kind<'_>, request_id: &str, now_ms: i64) -> Value {
    let mut identity = Map::new();
    if let Some(ua) = ctx.user_agent {
        identity.insert("userAgent".into(), json!(ua));
    }
    identity.insert("sourceIp".into(), json!(ctx.source_ip));
    if let Some(caller) = ctx.caller {
        identity.extend(caller.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut rc = Map::new();
    let (route_key, event_type) = match kind {
        Kind::Connect { .. } => ("$connect", "CONNECT"),
        Kind::Message { route_key, .. } => (*route_key, "MESSAGE"),
        Kind::Disconnect { .. } => ("$disconnect", "DISCONNECT"),
    };
    rc.insert("routeKey".into(), json!(route_key));
    if let Some(authorizer) = ctx.authorizer {
        rc.insert("authorizer".into(), authorizer.clone());
    }
    if let Kind::Message { message_id, .. } = kind {
        rc.insert("messageId".into(), json!(message_id));
    }
    if let Kind::Disconnect {
        status_code,
        reason,
    } = kind
    {
        rc.insert("disconnectStatusCode".into(), json!(status_code));
        rc.insert("disconnectReason".into(), json!(reason));
    }
    rc.insert("eventType".into(), json!(event_type));
    rc.insert("extendedRequestId".into(), json!(request_id));
    rc.insert("requestTime".into(), json!(dates::request_time(now_ms)));
    rc.insert("messageDirection".into(), json!("IN"));
    rc.insert("stage".into(), json!(ctx.stage));
    rc.insert("connectedAt".into(), json!(ctx.connected_at_ms));
    rc.insert("requestTimeEpoch".into(), json!(now_ms));
    rc.insert("identity".into(), Value::Object(identity));
    rc.insert("requestId".into(), json!(request_id));
    rc.insert("domainName".into(), json!(ctx.domain_name));
    rc.insert("connectionId".into(), json!(ctx.connection_id));
    rc.insert("apiId".into(), json!(ctx.api_id));

    let mut event = Map::new();
    match kind {
        Kind::Connect { headers, query } => {
            let (single, multi) = single_and_multi(headers.iter());
            event.insert("headers".into(), single);
            event.insert("multiValueHeaders".into(), multi);
            if !query.is_empty() {
                let (single, multi) = single_and_multi(query.iter());
                event.insert("queryStringParameters".into(), single);
                event.insert("multiValueQueryStringParameters".into(), multi);
            }
        }
        Kind::Disconnect { .. } => {
            let host = [("Host".to_owned(), ctx.domain_name.to_owned())];
            let (single, multi) = single_and_multi(host.iter());
            event.insert("headers".into(), single);
            event.insert("multiValueHeaders".into(), multi);
        }
        Kind::Message { .. } => {}
    }
    event.insert("requestContext".into(), Value::Object(rc));
    if let Kind::Message {
        body, is_base64, ..
    } = kind
    {
        event.insert("body".into(), json!(body));
        event.insert("isBase64Encoded".into(), json!(is_base64));
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

/// API Gateway's single-value maps keep the last value of a repeated name;
/// the multi-value maps keep them all.
fn single_and_multi<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> (Value, Value) {
    let mut single = BTreeMap::new();
    let mut multi: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in pairs {
        single.insert(k.as_str(), v.as_str());
        multi.entry(k.as_str()).or_default().push(v.as_str());
    }
    (json!(single), json!(multi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            api_id: "local",
            stage: "dev",
            domain_name: "127.0.0.1:3001",
            connection_id: "L0SM9cOFvHcCIhw=",
            connected_at_ms: 1_707_502_303_419,
            source_ip: "127.0.0.1",
            user_agent: Some("websocat/1.13"),
            authorizer: None,
            caller: None,
        }
    }

    #[test]
    fn events_deserialise_as_lambda_reads_them() {
        let headers = [
            ("Host".to_owned(), "127.0.0.1:3001".to_owned()),
            ("User-Agent".to_owned(), "websocat/1.13".to_owned()),
        ];
        let query = [
            ("user".to_owned(), "ana".to_owned()),
            ("room".to_owned(), "7".to_owned()),
            ("room".to_owned(), "8".to_owned()),
        ];
        let connect = build(
            &ctx(),
            &Kind::Connect {
                headers: &headers,
                query: &query,
            },
            "rid=",
            1_707_502_303_420,
        );
        let e = serde_json::from_str::<aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest>(
            &connect.to_string(),
        )
        .expect("connect event");
        let rc = &e.request_context;
        assert_eq!(rc.route_key.as_deref(), Some("$connect"));
        assert_eq!(rc.event_type.as_deref(), Some("CONNECT"));
        assert_eq!(rc.connected_at, 1_707_502_303_419);
        assert_eq!(rc.identity.user_agent.as_deref(), Some("websocat/1.13"));
        assert_eq!(e.query_string_parameters.first("user"), Some("ana"));
        assert_eq!(
            e.multi_value_query_string_parameters.all("room"),
            Some(vec!["7", "8"])
        );
        assert_eq!(connect["headers"]["User-Agent"], "websocat/1.13");

        let message = build(
            &ctx(),
            &Kind::Message {
                route_key: "message",
                message_id: "mid=",
                body: "{\"type\":\"message\"}",
                is_base64: false,
            },
            "rid=",
            1,
        );
        let e = serde_json::from_str::<aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest>(
            &message.to_string(),
        )
        .expect("message event");
        assert_eq!(e.body.as_deref(), Some("{\"type\":\"message\"}"));
        assert_eq!(e.request_context.message_id.as_deref(), Some("mid="));

        let disconnect = build(
            &ctx(),
            &Kind::Disconnect {
                status_code: 1001,
                reason: "Going away",
            },
            "rid=",
            2,
        );
        let e = serde_json::from_str::<aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest>(
            &disconnect.to_string(),
        )
        .expect("disconnect event");
        assert_eq!(e.request_context.disconnect_status_code, Some(1001));
        assert_eq!(
            e.request_context.disconnect_reason.as_deref(),
            Some("Going away")
        );
        assert_eq!(e.request_context.event_type.as_deref(), Some("DISCONNECT"));
    }
}
