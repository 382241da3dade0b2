//! A stand-in for the API Gateway Management API, for unit tests of the
//! client and the fan-out engine. It speaks AWS's wire format (status codes,
//! `x-amzn-ErrorType`, JSON error bodies, GetConnection's JSON) and answers
//! each request as a script says, by connection id and attempt number. It
//! counts requests in flight, so tests can check concurrency bounds. It does
//! not check signatures: the emulator of the local stack does that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::sync::oneshot;

/// Decides the status for (connection id, 1-based attempt number).
pub type Script = Arc<dyn Fn(&str, u32) -> u16 + Send + Sync>;

/// The error type AWS names for a status, as the SDK reads it.
pub fn error_type(status: u16) -> &'static str {
    match status {
        403 => "ForbiddenException",
        410 => "GoneException",
        413 => "PayloadTooLargeException",
        429 => "LimitExceededException",
        400 => "BadRequestException",
        _ => "InternalServerErrorException",
    }
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub connection_id: String,
    pub at: Instant,
    pub status: u16,
    pub body: Bytes,
}

struct Shared {
    stage: String,
    script: Script,
    delay: Duration,
    seen: Mutex<Vec<Seen>>,
    attempts: Mutex<HashMap<String, u32>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct StandIn {
    port: u16,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("port", &self.port).finish()
    }
}

impl StandIn {
    /// Serves on 127.0.0.1:0 until dropped. Every request waits `delay`
    /// before it is answered (so that concurrency shows).
    pub async fn start(stage: &str, delay: Duration, script: Script) -> Self {
        let shared = Arc::new(Shared {
            stage: stage.to_owned(),
            script,
            delay,
            seen: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/{stage}/@connections/{id}", any(handle))
            .fallback(|| async { aws_error(403, "Forbidden") })
            .with_state(shared.clone());
        let (port, shutdown) = crate::serve(app).await;
        Self {
            port,
            shared,
            shutdown: Some(shutdown),
        }
    }

    /// Answers 200 to everything.
    pub async fn always_ok(stage: &str) -> Self {
        Self::start(stage, Duration::ZERO, Arc::new(|_, _| 200)).await
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, self.shared.stage)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    /// Requests so far for one id.
    pub fn attempts(&self, id: &str) -> u32 {
        self.shared
            .attempts
            .lock()
            .expect("lock")
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// Bodies of the POSTs answered 200 for one id.
    pub fn delivered(&self, id: &str) -> Vec<Bytes> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::POST && s.status == 200 && s.connection_id == id)
            .map(|s| s.body)
            .collect()
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn request_count(&self) -> usize {
        self.shared.seen.lock().expect("lock").len()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let _guard = InFlight::enter(&shared);
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let status = if stage != shared.stage {
        403
    } else {
        let attempt = {
            let mut attempts = shared.attempts.lock().expect("lock");
            let n = attempts.entry(id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        (shared.script)(&id, attempt)
    };
    shared.seen.lock().expect("lock").push(Seen {
        method: method.clone(),
        connection_id: id.clone(),
        at,
        status,
        body,
    });
    match (status, method) {
        (200, Method::POST) => StatusCode::OK.into_response(),
        (200, Method::GET) => {
            let body = serde_json::json!({
                "connectedAt": "2026-11-25T08:00:00.000Z",
                "lastActiveAt": "2026-11-25T08:05:30.250Z",
                "identity": {"sourceIp": "203.0.113.7", "userAgent": "standin-agent/1.0"},
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        (200, Method::DELETE) => StatusCode::NO_CONTENT.into_response(),
        (200, _) => aws_error(403, "Forbidden"),
        (410, _) => aws_error(410, ""),
        (403, _) => aws_error(403, "Forbidden"),
        (413, _) => aws_error(413, "Request entity too large"),
        (429, _) => aws_error(429, "Rate exceeded"),
        (s, _) => aws_error(s, "Internal server error"),
    }
}

/// An error answer exactly as API Gateway sends it.
pub fn aws_error(status: u16, message: &str) -> Response {
    let mut res = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response();
    res.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_static(error_type(status)),
    );
    res
}
