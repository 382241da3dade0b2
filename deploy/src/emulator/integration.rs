//! Invoking a route's handler the way Lambda does: the event goes through its
//! JSON form into the handler, and the response comes back through its JSON
//! form, so the wire contract between API Gateway and Lambda is exercised on
//! every call.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use base64::Engine;
use wsadmin_core::stack::StackSpec;
use wsadmin_handlers::{Handlers, Route, parse_event};

use super::EmulatorError;

/// One route's binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub function: Route,
    /// Whether the handler's body is sent back to the client.
    pub route_response: bool,
}

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: i64,
    pub body: Option<String>,
    /// `Sec-WebSocket-Protocol` chosen by a `$connect` handler.
    pub subprotocol: Option<String>,
}

#[derive(Debug)]
pub struct Integration {
    handlers: Arc<Handlers>,
    routes: HashMap<String, Binding>,
}

impl Integration {
    pub fn new(stack: &StackSpec, handlers: Arc<Handlers>) -> Result<Self, EmulatorError> {
        let mut routes = HashMap::new();
        for r in &stack.routes {
            let function = Route::from_function_name(&r.handler).ok_or_else(|| {
                EmulatorError::UnknownHandler {
                    route: r.key.clone(),
                    handler: r.handler.clone(),
                }
            })?;
            routes.insert(
                r.key.clone(),
                Binding {
                    function,
                    route_response: r.route_response,
                },
            );
        }
        Ok(Self { handlers, routes })
    }

    pub fn route(&self, key: &str) -> Option<Binding> {
        self.routes.get(key).copied()
    }

    /// Runs `function` on the event; a failure to carry the event over the
    /// wire is logged and answered 500, as a crashing Lambda would be.
    pub async fn invoke(&self, function: Route, event: &serde_json::Value) -> Answer {
        let wire = event.to_string();
        let parsed = match parse_event(&wire) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(
                    function = function.function_name(),
                    "invocation failed: {e}"
                );
                return Answer {
                    status: 500,
                    body: None,
                    subprotocol: None,
                };
            }
        };
        // Boxed: the handlers' futures are large (the message route holds a
        // whole fan-out), and every connection task awaits `$disconnect`;
        // inline, that state would be part of each idle connection.
        let response = Box::pin(self.handlers.handle(function, parsed)).await;
        let back = serde_json::to_string(&response)
            .ok()
            .and_then(|json| serde_json::from_str::<ApiGatewayProxyResponse>(&json).ok());
        let Some(response) = back else {
            tracing::error!(
                function = function.function_name(),
                "the handler's response does not serialise"
            );
            return Answer {
                status: 500,
                body: None,
                subprotocol: None,
            };
        };
        let body = match response.body {
            Some(Body::Text(t)) => Some(t),
            Some(Body::Binary(b)) => Some(base64::engine::general_purpose::STANDARD.encode(b)),
            _ => None,
        };
        let subprotocol = response
            .headers
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Answer {
            status: response.status_code,
            body,
            subprotocol,
        }
    }
}
