//! A minimal Lambda Runtime API (the HTTP interface a Lambda function's
//! `bootstrap` polls on AWS), on 127.0.0.1:0: it hands out the queued
//! events one at a time and records what the function answered, so a real
//! Lambda binary can be run and invoked in a test.
//!
//! `GET /2018-06-01/runtime/invocation/next` waits for an event;
//! `POST …/invocation/{id}/response` and `…/{id}/error` and
//! `POST …/runtime/init/error` are recorded as [`Answer`]s.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What the function said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The response to the invocation with this request id.
    Response { request_id: String, body: String },
    /// The invocation failed.
    Error { request_id: String, body: String },
    /// The function failed before it asked for an event.
    InitError { body: String },
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    answers: mpsc::UnboundedSender<Answer>,
}

pub struct RuntimeApi {
    port: u16,
    events: mpsc::UnboundedSender<(String, String)>,
    answers: mpsc::UnboundedReceiver<Answer>,
    next_id: u64,
    _shutdown: oneshot::Sender<()>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("port", &self.port)
            .finish()
    }
}

impl RuntimeApi {
    /// Serves until dropped.
    pub async fn start() -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events_rx),
            answers: answers_tx,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/{outcome}",
                post(answered),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let (port, shutdown) = crate::serve(app).await;
        Self {
            port,
            events: events_tx,
            answers: answers_rx,
            next_id: 0,
            _shutdown: shutdown,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&mut self, event: &serde_json::Value) -> String {
        self.next_id += 1;
        let id = format!("request-{}", self.next_id);
        let _ = self.events.send((id.clone(), event.to_string()));
        id
    }

    /// The next answer, or `None` after `wait`.
    pub async fn answer(&mut self, wait: Duration) -> Option<Answer> {
        tokio::time::timeout(wait, self.answers.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let event = shared.events.lock().await.recv().await;
    let Some((id, body)) = event else {
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:test".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (headers, body).into_response()
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// `POST …/invocation/{id}/response` or `…/{id}/error`.
async fn answered(
    State(shared): State<Arc<Shared>>,
    Path((request_id, outcome)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let body = text(&body);
    let answer = match outcome.as_str() {
        "response" => Answer::Response { request_id, body },
        "error" => Answer::Error { request_id, body },
        _ => return StatusCode::NOT_FOUND,
    };
    let _ = shared.answers.send(answer);
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let _ = shared.answers.send(Answer::InitError { body: text(&body) });
    StatusCode::ACCEPTED
}
