//! The four route functions.

use aws_lambda_events::apigw::ApiGatewayProxyResponse as Response;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest as Event;
use bytes::Bytes;
use wsadmin_core::fanout::broadcast;
use wsadmin_core::{ConnectionRecord, Sweep, SweepReport};

use crate::message::parse_message;
use crate::{Handlers, respond};

fn connection_id(event: &Event) -> Option<&str> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

impl Handlers {
    /// `$connect`: registers the connection. A failure answers 500, and API
    /// Gateway then refuses the handshake.
    pub async fn connect(&self, event: Event) -> Response {
        let Some(id) = connection_id(&event) else {
            tracing::error!("$connect event without requestContext.connectionId");
            return respond(400, "the event has no requestContext.connectionId");
        };
        let ctx = &event.request_context;
        let mut record = ConnectionRecord::new(id);
        if ctx.connected_at > 0 {
            record = record.connected_at(ctx.connected_at);
        }
        record.source_ip = ctx.identity.source_ip.clone();
        record.user_agent = ctx.identity.user_agent.clone();
        record.domain_name = ctx.domain_name.clone();
        record.stage = ctx.stage.clone();
        for (k, v) in event.query_string_parameters.iter() {
            if is_query_auth(k) {
                // A SigV4-signed handshake's credential, signature and
                // session token: never stored where operators list meta.
                continue;
            }
            record
                .meta
                .entry(k.to_owned())
                .or_insert_with(|| v.to_owned());
        }
        match self.store.put(&record).await {
            Ok(()) => respond(200, "Connected."),
            Err(e) => {
                tracing::error!(connection_id = id, "registering the connection failed: {e}");
                respond(500, "Failed to connect.")
            }
        }
    }

    /// `$disconnect`: removes the record; already gone is fine.
    pub async fn disconnect(&self, event: Event) -> Response {
        let Some(id) = connection_id(&event) else {
            tracing::error!("$disconnect event without requestContext.connectionId");
            return respond(400, "the event has no requestContext.connectionId");
        };
        match self.store.delete(id).await {
            Ok(existed) => {
                tracing::info!(connection_id = id, existed, "disconnected");
                respond(200, "Disconnected.")
            }
            Err(e) => {
                tracing::error!(connection_id = id, "removing the record failed: {e}");
                respond(500, "Failed to disconnect.")
            }
        }
    }

    /// `$default`: [`marko_polo`]. Needs nothing of `self`: its Lambda
    /// binary runs it without any configuration.
    pub async fn default_route(&self, event: Event) -> Response {
        marko_polo(&event)
    }

    /// `message`: broadcasts `data` to every registered connection through
    /// the fan-out engine. Answers 400 on a bad body, 500 when the broadcast
    /// did not reach everyone it should have, with the report as the body.
    pub async fn message(&self, event: Event) -> Response {
        if event.is_base64_encoded {
            return respond(
                400,
                "binary frames are not accepted by the message route: send JSON text",
            );
        }
        let payload: Bytes = match parse_message(event.body.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(connection_id = ?connection_id(&event), "bad message: {e}");
                return respond(400, e.to_string());
            }
        };
        let gateway = match self.gateway_for(&event) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("broadcast impossible: {e}");
                return respond(500, e);
            }
        };
        let sweep = Sweep::new(self.sweep).with_clock(gateway.clock().clone());
        let subjects = self.store.scan(self.scan.clone());
        let run = broadcast(
            &sweep,
            &gateway,
            Some(&self.store),
            subjects,
            payload,
            |_, _| {},
        );
        let report = match run.await {
            Ok(r) => r,
            Err(e) => return respond(400, e.to_string()),
        };
        // A short summary: API Gateway drops the body of a route without a
        // route response anyway, and Lambda caps responses at 6 MB.
        let body = summary(&report);
        if report.is_complete() {
            tracing::info!(
                targeted = report.targeted,
                delivered = report.delivered,
                gone = report.gone,
                connecting = report.connecting,
                "broadcast done"
            );
            respond(200, body)
        } else {
            tracing::error!(
                failed = report.failed,
                cleanup_failed = report.cleanup_failed,
                source_errors = report.source_errors.total,
                first = ?report.failures.first.first(),
                "broadcast incomplete"
            );
            respond(500, body)
        }
    }
}

/// One line on the broadcast, whatever its size.
fn summary(r: &SweepReport) -> String {
    let mut line = format!(
        "delivered {} of {}; gone {}; connecting {}; failed {}",
        r.delivered,
        r.targeted,
        r.gone,
        r.connecting,
        r.failed + r.cleanup_failed
    );
    if r.source_errors.total > 0 {
        line.push_str(&format!("; {} scan errors", r.source_errors.total));
    }
    if let Some(f) = r.failures.first.first().or(r.source_errors.first.first()) {
        line.push_str(&format!("; first failure: {}", f.reason));
    }
    line
}

/// The seed's game on `$default`: `Marko?` answers `Polo!`; anything else
/// answers `Marko?`.
pub fn marko_polo(event: &Event) -> Response {
    if event.body.as_deref() == Some("Marko?") {
        respond(200, "Polo!")
    } else {
        respond(200, "Marko?")
    }
}

/// The query parameters of SigV4 query-string authentication
/// (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature`,
/// `X-Amz-Security-Token`, …), in any case.
fn is_query_auth(key: &str) -> bool {
    key.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
}
