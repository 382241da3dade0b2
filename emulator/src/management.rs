//! The Management API: `POST|GET|DELETE /{stage}/@connections/{id}`,
//! answered as AWS answers: status codes, `x-amzn-ErrorType`, JSON error
//! bodies. Every call is checked in this order: resource (403), signature
//! headers (403: an unsigned request is refused before its body is read or
//! its id looked at), size (413), the signature over the body (403), the id
//! (400), throttle (429), fault knob (500), connection (410), queue (429).
//! The path is read raw, so no malformed escape is refused by a layer that
//! does not answer in AWS's shape.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::registry::CloseCause;
use super::{Api, MAX_MESSAGE_BYTES, dates, ids};

/// An error answer exactly as API Gateway sends it.
pub fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response();
    res.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
    res
}

/// Anything that is not a route of this API: API Gateway answers 403.
pub(crate) async fn forbidden() -> Response {
    aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

/// The raw `{stage}` and `{id}` of `/{stage}/@connections/{id}`, still
/// percent-encoded.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (stage, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix("@connections/")?;
    (!id.is_empty() && !id.contains('/')).then_some((stage, id))
}

/// `/{stage}/@connections/{id}`, counted by operation and status.
pub(crate) async fn connections(State(api): State<Arc<Api>>, req: Request) -> Response {
    let operation = match *req.method() {
        Method::POST => Some("PostToConnection"),
        Method::GET => Some("GetConnection"),
        Method::DELETE => Some("DeleteConnection"),
        _ => None,
    };
    let res = answer(api.clone(), req).await;
    if let Some(operation) = operation {
        api.metrics.management(operation, res.status().as_u16());
        if operation == "PostToConnection" && res.status() == StatusCode::OK {
            api.metrics.message("", super::metrics::Direction::Out);
        }
    }
    res
}

async fn answer(api: Arc<Api>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some((stage, raw_id)) = split_path(parts.uri.path()) else {
        return forbidden().await;
    };
    if stage != api.config.stack.stage
        || !matches!(parts.method, Method::POST | Method::GET | Method::DELETE)
    {
        return forbidden().await;
    }
    let refused = |e: super::sigv4::SigV4Error| {
        aws_error(StatusCode::FORBIDDEN, "ForbiddenException", &e.to_string())
    };
    if let Err(e) = api
        .verifier
        .precheck(&parts.uri, &parts.headers, SystemTime::now())
    {
        return refused(e);
    }
    let too_large = || {
        aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Request entity too large",
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_MESSAGE_BYTES) {
        return too_large();
    }
    let Ok(body) = to_bytes(body, MAX_MESSAGE_BYTES).await else {
        return too_large();
    };
    if let Err(e) = api.verifier.verify(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
        SystemTime::now(),
    ) {
        return refused(e);
    }
    let id = match ids::from_path(raw_id) {
        Ok(id) => id,
        Err(e) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            );
        }
    };
    if !api.allow_call() {
        api.metrics.throttled("management");
        return aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Rate exceeded",
        );
    }
    if Api::roll(api.config.fault_rate) {
        return aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "Internal server error",
        );
    }
    let Some(conn) = api.registry.get(&id) else {
        return aws_error(StatusCode::GONE, "GoneException", "");
    };
    match parts.method {
        Method::POST => match conn.try_send(body) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(_) => aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "The client's send buffer is full",
            ),
        },
        Method::GET => {
            let mut identity = serde_json::Map::new();
            identity.insert("sourceIp".into(), conn.source_ip.clone().into());
            if let Some(ua) = &conn.user_agent {
                identity.insert("userAgent".into(), ua.clone().into());
            }
            let body = serde_json::json!({
                "connectedAt": dates::iso8601(conn.connected_at_ms),
                "identity": identity,
                "lastActiveAt": dates::iso8601(conn.last_active_ms()),
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        _ => {
            conn.close(CloseCause::Deleted);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}
