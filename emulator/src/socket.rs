//! One WebSocket connection: the handshake (with `$connect` deciding whether
//! it is accepted), then a reader that routes client messages and watches the
//! timers, and a writer that drains the outbound queue, splitting messages
//! into frames of at most 32 KB. When the connection ends, for whatever
//! reason, it leaves the registry and `$disconnect` runs (unless the
//! `--drop-disconnect-rate` knob drops it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsadmin_core::stack::{ROUTE_CONNECT, ROUTE_DISCONNECT};

use super::access_log::{Entry, EventType};
use super::authorizer::{self, Refusal};
use super::event::{self, Kind};
use super::integration::{Answer, ConnectAuth, InvokeError};
use super::metrics::{Count, Direction};
use super::registry::{CloseCause, Conn, ConnEnds, Granted};
use super::{Api, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, ids, management, route};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How a connection ended: the close code and reason `$disconnect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ending {
    code: u16,
    reason: String,
    /// The close frame we send, if we are the ones closing.
    send: Option<CloseFrame>,
}

impl Ending {
    fn ours(code: CloseCode, reason: &'static str) -> Self {
        Self {
            code: code.into(),
            reason: reason.to_owned(),
            send: Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }),
        }
    }

    fn theirs(code: u16, reason: String) -> Self {
        Self {
            code,
            reason,
            send: None,
        }
    }

    fn of(cause: CloseCause) -> Self {
        match cause {
            CloseCause::Deleted => Self::ours(CloseCode::Normal, "Connection deleted"),
            CloseCause::IdleTimeout | CloseCause::MaxDuration | CloseCause::Shutdown => {
                Self::ours(CloseCode::Away, "Going away")
            }
        }
    }
}

/// Title-cases a header name the way API Gateway's events show them.
fn display_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "websocket" => "WebSocket".to_owned(),
            p => {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn is_websocket_upgrade(req: &Request) -> bool {
    let h = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && h.get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13")
        && h.contains_key(header::SEC_WEBSOCKET_KEY)
}

/// `GET /{stage}`: the WebSocket handshake.
pub(crate) async fn handshake(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    req: Request,
) -> Response {
    if stage != api.config.stack.stage {
        return management::forbidden().await;
    }
    if !is_websocket_upgrade(&req) {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::SEC_WEBSOCKET_VERSION, "13")],
            "this is a WebSocket endpoint: connect with a WebSocket client",
        )
            .into_response();
    }
    if api.closing.load(std::sync::atomic::Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let connected_at_ms = Api::now_ms();
    let source_ip = peer.ip().to_string();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((display_header_name(k.as_str()), v.to_str().ok()?.to_owned())))
        .collect();
    headers.push(("X-Forwarded-For".into(), source_ip.clone()));
    headers.push(("X-Forwarded-Port".into(), peer.port().to_string()));
    headers.push(("X-Forwarded-Proto".into(), "http".into()));
    let query: Vec<(String, String)> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();

    // A fresh id (88 random bits; retried on the astronomically rare clash).
    let id = loop {
        let id = ids::new_id();
        if !api.registry.contains(&id) {
            break id;
        }
    };
    let request_id = ids::new_id();
    let caller = Caller {
        id: &id,
        connected_at_ms,
        source_ip: &source_ip,
        user_agent: user_agent.as_deref(),
    };
    let signed = Signed {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
    };
    let granted = match authorize(&api, &signed, &caller, &headers, &query).await {
        Ok(granted) => granted,
        Err(refusal) => {
            tracing::info!(connection_id = %id, "handshake refused: {refusal}");
            let what = match refusal {
                Refusal::Failed(_) => Count::ExecutionError,
                Refusal::Unauthorized(_) | Refusal::Forbidden(_) => Count::ClientError,
            };
            api.metrics.count(what, ROUTE_CONNECT);
            let (status, message) = refusal.status();
            let entry = connect_entry(&id, &source_ip, &request_id, connected_at_ms);
            api.access_log.write(entry.status(status).error(message));
            return refused(&refusal);
        }
    };
    let (conn, ends) = Conn::new(
        id,
        connected_at_ms,
        source_ip,
        user_agent,
        granted,
        api.config.queue_limit_bytes,
    );

    // Counted from here: shutdown waits for a handshake in its `$connect`.
    let task = api.task_started();
    let mut subprotocol = None;
    let mut pending = None;
    if let Some(binding) = api.integration.route("$connect") {
        let ev = event::build(
            &context(&api, &conn),
            &Kind::Connect {
                headers: &headers,
                query: &query,
            },
            &request_id,
            Api::now_ms(),
        );
        let answer = match connect(&api, &conn, binding.function.clone(), ev).await {
            Ok((answer, owed)) => {
                pending = owed;
                answer
            }
            Err(e) => {
                // API Gateway answers a failed `$connect` integration 500.
                tracing::warn!(connection_id = %conn.id, "$connect failed, handshake refused: {e}");
                let entry = connect_entry(&conn.id, &conn.source_ip, &request_id, connected_at_ms);
                let entry = entry.status(500).error("Internal server error");
                api.access_log.write(entry.integration_error(e));
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        if !(200..300).contains(&answer.status) {
            tracing::info!(connection_id = %conn.id, status = answer.status, "$connect refused the handshake");
            let entry = connect_entry(&conn.id, &conn.source_ip, &request_id, connected_at_ms);
            let status = u16::try_from(answer.status).unwrap_or(500);
            api.access_log.write(entry.status(status));
            let status = u16::try_from(answer.status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return status.into_response();
        }
        subprotocol = answer.subprotocol;
    }
    if api.closing.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(guard) = pending {
            guard.fire(&Ending::theirs(1001, "Going away".into())).await;
        }
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !api.registry.insert(conn.clone()) {
        if let Some(guard) = pending {
            guard
                .fire(&Ending::theirs(1011, "Internal server error".into()))
                .await;
        }
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // Shutdown began while this one was joining: close it right away.
    if api.closing.load(std::sync::atomic::Ordering::SeqCst) {
        conn.close(CloseCause::Shutdown);
    }
    let entry = connect_entry(&conn.id, &conn.source_ip, &request_id, connected_at_ms);
    api.access_log.write(entry);

    let on_upgrade = hyper::upgrade::on(req);
    let task_api = api.clone();
    // The connection task owns the `$disconnect` from here on.
    if let Some(guard) = pending {
        guard.defuse();
    }
    tokio::spawn(async move {
        let _task = task;
        match on_upgrade.await {
            Ok(upgraded) => {
                // A small initial read buffer: idle connections stay cheap
                // (it grows for large frames, up to the limits).
                let config = WebSocketConfig::default()
                    .read_buffer_size(4 * 1024)
                    .max_frame_size(Some(MAX_FRAME_BYTES))
                    .max_message_size(Some(MAX_MESSAGE_BYTES));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run(&task_api, conn, ws, ends).await;
            }
            Err(e) => {
                tracing::debug!(connection_id = %conn.id, "upgrade failed: {e}");
                task_api.registry.remove(&conn.id);
                disconnect(
                    &task_api,
                    &conn,
                    &Ending::theirs(1006, "Upgrade failed".into()),
                )
                .await;
            }
        }
    });

    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = subprotocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    res
}

/// The access log line of a handshake: answered 200 unless said otherwise.
fn connect_entry<'a>(id: &'a str, ip: &'a str, request_id: &'a str, at_ms: i64) -> Entry<'a> {
    Entry::new(EventType::Connect, ROUTE_CONNECT, id, ip, request_id, at_ms)
}

fn context<'a>(api: &'a Api, conn: &'a Conn) -> event::Context<'a> {
    event::Context {
        api_id: &api.config.api_id,
        stage: &api.config.stack.stage,
        domain_name: &api.domain_name,
        connection_id: &conn.id,
        connected_at_ms: conn.connected_at_ms,
        source_ip: &conn.source_ip,
        user_agent: conn.user_agent.as_deref(),
        authorizer: conn.granted.authorizer.as_ref(),
        caller: conn.granted.caller.as_ref(),
    }
}

/// The handshake's client before it is a connection.
struct Caller<'a> {
    id: &'a str,
    connected_at_ms: i64,
    source_ip: &'a str,
    user_agent: Option<&'a str>,
}

/// What a SigV4 signature covers (borrowed from the request, whose body
/// is not `Sync`).
struct Signed<'a> {
    method: &'a axum::http::Method,
    uri: &'a axum::http::Uri,
    headers: &'a axum::http::HeaderMap,
}

/// `$connect`'s authorization, before its integration runs: what every
/// event of the connection will carry, or why the handshake is refused.
async fn authorize(
    api: &Arc<Api>,
    req: &Signed<'_>,
    caller: &Caller<'_>,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Result<Granted, Refusal> {
    match api.integration.connect_auth() {
        ConnectAuth::None => Ok(Granted::default()),
        ConnectAuth::Iam => {
            // API Gateway answers an unsigned or mis-signed handshake 403.
            api.verifier
                .verify(
                    req.method,
                    req.uri,
                    req.headers,
                    b"",
                    std::time::SystemTime::now(),
                )
                .map_err(|e| Refusal::Forbidden(e.to_string()))?;
            Ok(Granted {
                authorizer: None,
                caller: Some(authorizer::iam_identity(
                    api.verifier.access_key_id(),
                    &api.config.account_id,
                )),
            })
        }
        ConnectAuth::Custom {
            function,
            identity_source,
        } => {
            if let Some(missing) = authorizer::missing_identity(identity_source, headers, query) {
                return Err(Refusal::Unauthorized(format!(
                    "identity source {missing:?} is missing"
                )));
            }
            let ctx = event::Context {
                api_id: &api.config.api_id,
                stage: &api.config.stack.stage,
                domain_name: &api.domain_name,
                connection_id: caller.id,
                connected_at_ms: caller.connected_at_ms,
                source_ip: caller.source_ip,
                user_agent: caller.user_agent,
                authorizer: None,
                caller: None,
            };
            let connect = event::build(
                &ctx,
                &Kind::Connect { headers, query },
                &ids::new_id(),
                Api::now_ms(),
            );
            let method_arn = authorizer::method_arn(
                &api.config.region,
                &api.config.account_id,
                &api.config.api_id,
                &api.config.stack.stage,
            );
            let event = authorizer::request_event(&connect, &method_arn);
            // In a task of its own, as `$connect`: the authorizer runs to
            // its end whatever the client does.
            let (api, function) = (api.clone(), function.clone());
            let answer = tokio::spawn(async move {
                let _task = api.task_started();
                let slot = api
                    .integration
                    .slot(&function)
                    .map_err(|e| Refusal::Failed(e.to_string()))?;
                let invocation = api.integration.invoke_raw(&slot, &function, &event);
                let wire = tokio::time::timeout(super::INTEGRATION_TIMEOUT, invocation)
                    .await
                    .map_err(|_| Refusal::Failed("no answer within 29 s".into()))?
                    .map_err(|e| Refusal::Failed(e.to_string()))?;
                let answer: serde_json::Value = serde_json::from_str(&wire)
                    .map_err(|_| Refusal::Failed("its answer is not JSON".into()))?;
                authorizer::decide(&answer, &method_arn)
            })
            .await
            .unwrap_or_else(|e| Err(Refusal::Failed(e.to_string())))?;
            Ok(Granted {
                authorizer: Some(answer),
                caller: None,
            })
        }
    }
}

/// API Gateway's answer to a handshake refused before `$connect` ran: the
/// status and `{"message": ...}`.
fn refused(refusal: &Refusal) -> Response {
    let (status, message) = refusal.status();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// The connection's life after the handshake.
async fn run(api: &Arc<Api>, conn: Arc<Conn>, ws: Socket, ends: ConnEnds) {
    let ConnEnds {
        outbound,
        close: mut close_rx,
    } = ends;
    let (sink, mut stream) = ws.split();
    let (stop_tx, stop_rx) = oneshot::channel::<Option<CloseFrame>>();
    let writer = tokio::spawn(write_loop(sink, outbound, stop_rx, conn.clone()));

    let idle = api.config.idle_timeout;
    let opened = Instant::now();
    let max_deadline = opened + api.config.max_duration;
    let ending = loop {
        let idle_ms = (Api::now_ms() - conn.last_active_ms()).max(0) as u64;
        let idle_deadline = Instant::now() + idle.saturating_sub(Duration::from_millis(idle_ms));
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    conn.touch(Api::now_ms());
                    tokio::spawn(on_message(api.clone(), conn.clone(), text.as_str().to_owned(), false));
                }
                // "API Gateway WebSocket APIs don't currently support binary
                // frames in incoming message payloads. If a client app sends
                // a binary frame, API Gateway rejects it and disconnects the
                // client with code 1003." (websocket-api-develop-binary-media-types)
                Some(Ok(Message::Binary(_))) => {
                    api.metrics.count(Count::ClientError, "");
                    break Ending::ours(CloseCode::Unsupported, "Binary frames are not supported");
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => Ending::theirs(f.code.into(), f.reason.as_str().to_owned()),
                        None => Ending::theirs(1005, "Client-side close frame status not set".into()),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(WsError::Capacity(_))) => {
                    break Ending::ours(CloseCode::Size, "Message too big");
                }
                Some(Err(WsError::Utf8(_))) => {
                    break Ending::ours(CloseCode::Invalid, "Invalid UTF-8 in text frame");
                }
                Some(Err(WsError::Protocol(e))) => {
                    tracing::debug!(connection_id = %conn.id, "protocol error: {e}");
                    break Ending::ours(CloseCode::Protocol, "Protocol error");
                }
                Some(Err(_)) | None => {
                    break Ending::theirs(1006, "Connection closed abnormally".into());
                }
            },
            cause = &mut close_rx => {
                break Ending::of(cause.unwrap_or(CloseCause::Shutdown));
            }
            _ = tokio::time::sleep_until(idle_deadline) => {
                let idle_ms = (Api::now_ms() - conn.last_active_ms()).max(0) as u64;
                if Duration::from_millis(idle_ms) >= idle {
                    break Ending::of(CloseCause::IdleTimeout);
                }
            }
            _ = tokio::time::sleep_until(max_deadline) => {
                break Ending::of(CloseCause::MaxDuration);
            }
        }
    };

    // Gone for the Management API from here on.
    api.registry.remove(&conn.id);
    let _ = stop_tx.send(ending.send.clone());
    drop(stream);
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        tracing::debug!(connection_id = %conn.id, "writer did not finish in 5 s");
    }
    disconnect(api, &conn, &ending).await;
}

/// Runs `$connect`, then the connect delay, in a task of its own: like a
/// Lambda, it runs to the end whatever the client does, and its execution
/// slot stays taken through the delay (a slow `$connect` is a Lambda still
/// running). A `$connect` that accepted comes back with the `$disconnect` the
/// connection now owes; if the client left meanwhile, that is dropped
/// unclaimed and runs by itself.
async fn connect(
    api: &Arc<Api>,
    conn: &Arc<Conn>,
    function: Arc<str>,
    event: serde_json::Value,
) -> Result<(Answer, Option<PendingDisconnect>), InvokeError> {
    let (tx, rx) = oneshot::channel();
    let (api, conn) = (api.clone(), conn.clone());
    tokio::spawn(async move {
        let _task = api.task_started();
        let result = async {
            api.metrics.count(Count::Connect, ROUTE_CONNECT);
            let slot = api.integration.slot(&function);
            let answer = match slot {
                Ok(ref slot) => {
                    let started = std::time::Instant::now();
                    let answer = api.integration.invoke(slot, &function, &event).await;
                    invoked(&api, ROUTE_CONNECT, started, &answer);
                    answer
                }
                Err(e) => {
                    invoked(&api, ROUTE_CONNECT, std::time::Instant::now(), &Err(e));
                    Err(e)
                }
            }?;
            let slot = slot?;
            if !(200..300).contains(&answer.status) {
                return Ok((answer, None));
            }
            // The record is written: from here on the connection owes a
            // `$disconnect`.
            let owed = PendingDisconnect::arm(api.clone(), conn.clone());
            if !api.config.connect_delay.is_zero() {
                tokio::time::sleep(api.config.connect_delay).await;
            }
            drop(slot);
            Ok((answer, Some(owed)))
        }
        .await;
        // The handshake may be gone (the client left): then `owed` drops.
        let _ = tx.send(result);
    });
    rx.await.unwrap_or(Err(InvokeError::Failed))
}

/// The `$disconnect` owed by a connection whose `$connect` succeeded but
/// which has no connection task yet. Dropped armed (the client left during
/// the handshake), it runs the `$disconnect` in a task of its own.
struct PendingDisconnect(Option<(Arc<Api>, Arc<Conn>)>);

impl PendingDisconnect {
    fn arm(api: Arc<Api>, conn: Arc<Conn>) -> Self {
        Self(Some((api, conn)))
    }

    /// Runs the `$disconnect` now.
    async fn fire(mut self, ending: &Ending) {
        if let Some((api, conn)) = self.0.take() {
            disconnect(&api, &conn, ending).await;
        }
    }

    /// Someone else (the connection task) owns the `$disconnect` now.
    fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for PendingDisconnect {
    fn drop(&mut self) {
        let Some((api, conn)) = self.0.take() else {
            return;
        };
        tracing::debug!(connection_id = %conn.id, "client left during the handshake");
        let task = api.task_started();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _task = task;
                let ending = Ending::theirs(1006, "Connection closed abnormally".into());
                disconnect(&api, &conn, &ending).await;
            });
        }
    }
}

async fn disconnect(api: &Api, conn: &Conn, ending: &Ending) {
    let request_id = ids::new_id();
    let at_ms = Api::now_ms();
    let entry = Entry::new(
        EventType::Disconnect,
        ROUTE_DISCONNECT,
        &conn.id,
        &conn.source_ip,
        &request_id,
        at_ms,
    )
    .close_code(ending.code);
    let Some(binding) = api.integration.route("$disconnect") else {
        api.access_log.write(entry);
        return;
    };
    if Api::roll(api.config.drop_disconnect_rate) {
        tracing::info!(connection_id = %conn.id, "$disconnect dropped (--drop-disconnect-rate)");
        api.access_log.write(entry);
        return;
    }
    // A throttled `$disconnect` is lost, as on AWS: its record stays behind
    // for `wsadmin prune`.
    let slot = match api.integration.slot(&binding.function) {
        Ok(slot) => slot,
        Err(e) => {
            invoked(api, ROUTE_DISCONNECT, std::time::Instant::now(), &Err(e));
            tracing::warn!(connection_id = %conn.id, "$disconnect skipped, its record stays until prune: {e}");
            api.access_log.write(entry.status(500).integration_error(e));
            return;
        }
    };
    let ev = event::build(
        &context(api, conn),
        &Kind::Disconnect {
            status_code: ending.code,
            reason: &ending.reason,
        },
        &request_id,
        at_ms,
    );
    let started = std::time::Instant::now();
    let answer = api.integration.invoke(&slot, &binding.function, &ev).await;
    invoked(api, ROUTE_DISCONNECT, started, &answer);
    match answer {
        Err(e) => {
            tracing::warn!(connection_id = %conn.id, "$disconnect failed: {e}");
            api.access_log.write(entry.status(500).integration_error(e));
        }
        Ok(_) => api.access_log.write(entry),
    }
}

/// API Gateway's error frame: `{"message", "connectionId", "requestId"}`.
fn error_frame(conn: &Conn, message: &str, request_id: &str) -> Bytes {
    let frame = serde_json::json!({
        "message": message,
        "connectionId": conn.id,
        "requestId": request_id,
    });
    Bytes::from(frame.to_string())
}

/// A client message: select the route, invoke it, send back the route
/// response if the route has one.
async fn on_message(api: Arc<Api>, conn: Arc<Conn>, body: String, is_base64: bool) {
    let path: Vec<&str> = api.selection_path.iter().map(String::as_str).collect();
    let selected = if is_base64 {
        None
    } else {
        route::select(&body, &path)
    };
    let request_id = ids::new_id();
    let at_ms = Api::now_ms();
    let entry = |key| {
        let (id, ip) = (&conn.id, &conn.source_ip);
        Entry::new(EventType::Message, key, id, ip, &request_id, at_ms)
    };
    let Some(key) = route::resolve(selected, |k| api.integration.route(k).is_some()) else {
        // No route takes it: API Gateway's 4XX before any integration.
        api.metrics.message("", Direction::In);
        api.metrics.count(Count::ClientError, "");
        api.access_log
            .write(entry("-").status(403).error("Forbidden"));
        let _ = conn.try_send(error_frame(&conn, "Forbidden", &request_id));
        return;
    };
    api.metrics.message(&key, Direction::In);
    let Some(binding) = api.integration.route(&key) else {
        return;
    };
    let ev = event::build(
        &context(&api, &conn),
        &Kind::Message {
            route_key: &key,
            message_id: &ids::new_id(),
            body: &body,
            is_base64,
        },
        &request_id,
        Api::now_ms(),
    );
    let started = std::time::Instant::now();
    let answer = match api.integration.slot(&binding.function) {
        Ok(slot) => api.integration.invoke(&slot, &binding.function, &ev).await,
        Err(e) => Err(e),
    };
    invoked(&api, &key, started, &answer);
    api.access_log.write(match &answer {
        Ok(a) => entry(&key).status(u16::try_from(a.status).unwrap_or(500)),
        Err(e) => entry(&key)
            .status(500)
            .error("Internal server error")
            .integration_error(e),
    });
    let reply = match answer {
        Ok(answer) if binding.route_response => answer.body.map(Bytes::from),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(connection_id = %conn.id, route = %key, "integration failed: {e}");
            Some(error_frame(&conn, "Internal server error", &request_id))
        }
    };
    if let Some(reply) = reply {
        if conn.try_send(reply).is_err() {
            tracing::debug!(connection_id = %conn.id, "reply dropped: queue full");
        } else {
            api.metrics.message(&key, Direction::Out);
        }
    }
}

/// Counts one integration call of `route`: its latency when it ran, and
/// an `IntegrationError` (an error status) or `ExecutionError` (it failed
/// or was throttled).
fn invoked(
    api: &Api,
    route: &str,
    started: std::time::Instant,
    answer: &Result<Answer, InvokeError>,
) {
    match answer {
        Ok(answer) => {
            api.metrics.latency(route, started.elapsed());
            if answer.status >= 400 {
                api.metrics.count(Count::IntegrationError, route);
            }
        }
        Err(InvokeError::Failed) => {
            api.metrics.latency(route, started.elapsed());
            api.metrics.count(Count::ExecutionError, route);
        }
        Err(InvokeError::Throttled { .. } | InvokeError::ReservedThrottled { .. }) => {
            api.metrics.throttled("lambda");
            api.metrics.count(Count::ExecutionError, route);
        }
    }
}

type Sink = futures::stream::SplitSink<Socket, Message>;

async fn write_loop(
    mut sink: Sink,
    mut outbound: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    mut stop: oneshot::Receiver<Option<CloseFrame>>,
    conn: Arc<Conn>,
) {
    loop {
        tokio::select! {
            biased;
            frame = &mut stop => {
                if let Ok(frame) = frame {
                    if let Some(frame) = frame {
                        let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(Message::Close(Some(frame)))).await;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                }
                return;
            }
            data = outbound.recv() => {
                let Some(data) = data else { return };
                let len = data.len();
                let sent = tokio::select! {
                    biased;
                    frame = &mut stop => {
                        // Closing a client that does not read: give up on the
                        // pending write, the socket is dropped.
                        let _ = frame;
                        return;
                    }
                    r = send_message(&mut sink, data) => r,
                };
                conn.sent(len);
                conn.touch(Api::now_ms());
                if sent.is_err() {
                    // The reader sees the socket fail and ends the connection.
                    let _ = (&mut stop).await;
                    return;
                }
            }
        }
    }
}

/// Sends one message, text when it is UTF-8, in frames of at most 32 KB.
async fn send_message(sink: &mut Sink, data: Bytes) -> Result<(), WsError> {
    let text = std::str::from_utf8(&data).is_ok();
    if data.len() <= MAX_FRAME_BYTES {
        let msg = if text {
            Message::Text(Utf8Bytes::try_from(data).map_err(|_| WsError::Utf8(String::new()))?)
        } else {
            Message::Binary(data)
        };
        return sink.send(msg).await;
    }
    let kind = if text { Data::Text } else { Data::Binary };
    let chunks = data.len().div_ceil(MAX_FRAME_BYTES);
    for (i, start) in (0..data.len()).step_by(MAX_FRAME_BYTES).enumerate() {
        let chunk = data.slice(start..(start + MAX_FRAME_BYTES).min(data.len()));
        let opcode = OpCode::Data(if i == 0 { kind } else { Data::Continue });
        sink.feed(Message::Frame(Frame::message(
            chunk,
            opcode,
            i + 1 == chunks,
        )))
        .await?;
    }
    sink.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_read_like_api_gateways() {
        assert_eq!(
            display_header_name("sec-websocket-key"),
            "Sec-WebSocket-Key"
        );
        assert_eq!(display_header_name("user-agent"), "User-Agent");
        assert_eq!(display_header_name("host"), "Host");
    }
}
