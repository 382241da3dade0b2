//! The Lambda Runtime API (version 2018-06-01) for one instance: `next`
//! (a long poll that never times out), `response`, `error` and
//! `init/error`, with Lambda's headers and Lambda-like 4xx JSON answers to
//! bad requests.
//!
//! Each instance gets its own listener on 127.0.0.1, so
//! `AWS_LAMBDA_RUNTIME_API` is a bare `host:port` exactly as on Lambda and
//! every runtime client (Node's, Python's, Rust's `lambda_runtime`, Go's)
//! builds its URLs unchanged; the listener alone says which instance asks.
//! It must not decide an invocation's fate (deadlines, retries, logs beyond
//! `START`): it hands each event to the runtime and each answer back to
//! the pool.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::report;

/// Lambda's limit on a synchronous invocation's response (6 MB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// An event on its way to the runtime.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub request_id: String,
    pub event: String,
    pub timeout: Duration,
    /// Told when the runtime takes the event (its deadline starts then).
    pub started: oneshot::Sender<Instant>,
    /// Told how the runtime answered.
    pub outcome: oneshot::Sender<Outcome>,
}

/// How the runtime answered one event.
#[derive(Debug)]
pub(crate) enum Outcome {
    Response(Bytes),
    Error {
        error_type: String,
        message: String,
        stack_trace: Vec<String>,
    },
}

/// A line of Lambda's own for a function's log.
#[derive(Debug)]
pub(crate) struct HostLine {
    pub text: String,
    /// Whether it follows what the runtime printed before answering
    /// (`END`, `REPORT`): the output already in the pipes is copied first.
    pub after_output: bool,
}

/// What a runtime posted to `/init/error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitFailure {
    pub error_type: String,
    pub message: String,
}

/// One instance's side of the API.
#[derive(Debug)]
pub(crate) struct Api {
    /// Events for this instance, taken by `next` one at a time.
    events: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    /// The event the runtime holds: its id and who waits for its answer.
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    /// When the runtime first asked for an event (its init ended).
    pub first_next: OnceLock<Instant>,
    pub init_error: watch::Sender<Option<InitFailure>>,
    /// Lines for the function's log (`START`).
    log: mpsc::UnboundedSender<HostLine>,
    arn: String,
}

impl Api {
    pub(crate) fn new(
        events: mpsc::Receiver<Delivery>,
        log: mpsc::UnboundedSender<HostLine>,
        arn: String,
    ) -> Self {
        Self {
            events: tokio::sync::Mutex::new(events),
            current: Mutex::new(None),
            first_next: OnceLock::new(),
            init_error: watch::Sender::new(None),
            log,
            arn,
        }
    }
}

/// Serves `api` on `listener` until the task is aborted (which drops its
/// connections too). Header names go out title-cased, as Lambda's do.
pub(crate) fn serve(listener: TcpListener, api: Arc<Api>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            let api = api.clone();
            connections.spawn(async move {
                let service = service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(route(api, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Next,
    Response(&'a str),
    Error(&'a str),
    InitError,
    WrongMethod,
    NotFound,
}

fn resolve<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Route::NotFound;
    };
    let (route, wanted) = if rest == "invocation/next" {
        (Route::Next, Method::GET)
    } else if rest == "init/error" {
        (Route::InitError, Method::POST)
    } else if let Some(id) = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.strip_suffix("/response"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
    {
        (Route::Response(id), Method::POST)
    } else if let Some(id) = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.strip_suffix("/error"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
    {
        (Route::Error(id), Method::POST)
    } else {
        return Route::NotFound;
    };
    if *method == wanted {
        route
    } else {
        Route::WrongMethod
    }
}

async fn route(api: Arc<Api>, req: Request<Incoming>) -> Response {
    let (parts, body) = req.into_parts();
    let body = Body::new(body);
    match resolve(&parts.method, parts.uri.path()) {
        Route::Next => next(api).await,
        Route::Response(id) => response(api, id, body).await,
        Route::Error(id) => invocation_error(api, id, &parts.headers, body).await,
        Route::InitError => init_error(api, &parts.headers, body).await,
        Route::WrongMethod => lambda_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed: next is a GET, the others are POSTs",
        ),
        Route::NotFound => lambda_error(
            StatusCode::NOT_FOUND,
            "UnknownResource",
            "unknown path: the Runtime API serves /2018-06-01/runtime/invocation/next, .../invocation/ID/response, .../invocation/ID/error and /2018-06-01/runtime/init/error",
        ),
    }
}

fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "errorMessage": message, "errorType": error_type }).to_string(),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

/// The long poll: waits as long as it takes for the next event.
async fn next(api: Arc<Api>) -> Response {
    api.first_next.get_or_init(Instant::now);
    let delivery = {
        let mut events = api.events.lock().await;
        events.recv().await
    };
    let Some(d) = delivery else {
        return lambda_error(
            StatusCode::GONE,
            "InstanceStopped",
            "this instance is being stopped",
        );
    };
    let now = crate::epoch_ms();
    let deadline = now + u64::try_from(d.timeout.as_millis()).unwrap_or(u64::MAX);
    let _ = api.log.send(HostLine {
        text: report::start_line(&d.request_id),
        after_output: false,
    });
    *api.current.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((d.request_id.clone(), d.outcome));
    let _ = d.started.send(Instant::now());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::try_from(value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", d.request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", api.arn.clone());
    set("lambda-runtime-trace-id", report::trace_id(now));
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, d.event).into_response()
}

/// The sender waiting for `id`'s answer, if `id` is the current event's.
fn take_current(api: &Api, id: &str) -> Option<oneshot::Sender<Outcome>> {
    let mut current = api.current.lock().unwrap_or_else(|p| p.into_inner());
    match current.take() {
        Some((cur, tx)) if cur == id => Some(tx),
        other => {
            *current = other;
            None
        }
    }
}

fn invalid_id(id: &str) -> Response {
    lambda_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!(
            "request id {id:?} is not the event this instance holds (answer the id `next` gave, once)"
        ),
    )
}

async fn response(api: Arc<Api>, id: &str, body: Body) -> Response {
    let Some(tx) = take_current(&api, id) else {
        return invalid_id(id);
    };
    match axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await {
        Ok(bytes) => {
            let _ = tx.send(Outcome::Response(bytes));
            accepted()
        }
        Err(_) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            );
            let _ = tx.send(Outcome::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                message: message.clone(),
                stack_trace: Vec::new(),
            });
            lambda_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &message,
            )
        }
    }
}

/// An error body as runtimes send it: `errorType`, `errorMessage`, and the
/// stack as `stackTrace` (the API's name) or `trace` (Node's).
fn read_error(headers: &HeaderMap, body: &[u8]) -> (String, String, Vec<String>) {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = value["errorType"]
        .as_str()
        .map(str::to_owned)
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".into());
    let message = value["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    let stack = value
        .get("stackTrace")
        .or_else(|| value.get("trace"))
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (error_type, message, stack)
}

async fn invocation_error(api: Arc<Api>, id: &str, headers: &HeaderMap, body: Body) -> Response {
    let Some(tx) = take_current(&api, id) else {
        return invalid_id(id);
    };
    let body = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message, stack_trace) = read_error(headers, &body);
    let _ = tx.send(Outcome::Error {
        error_type,
        message,
        stack_trace,
    });
    accepted()
}

async fn init_error(api: Arc<Api>, headers: &HeaderMap, body: Body) -> Response {
    let body = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let (error_type, message, _) = read_error(headers, &body);
    api.init_error.send_replace(Some(InitFailure {
        error_type,
        message,
    }));
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_the_runtime_api_names_them() {
        let (get, post) = (Method::GET, Method::POST);
        let p = "/2018-06-01/runtime";
        assert_eq!(resolve(&get, &format!("{p}/invocation/next")), Route::Next);
        assert_eq!(
            resolve(&post, &format!("{p}/invocation/next")),
            Route::WrongMethod
        );
        assert_eq!(
            resolve(&post, &format!("{p}/invocation/ab-1/response")),
            Route::Response("ab-1")
        );
        assert_eq!(
            resolve(&post, &format!("{p}/invocation/ab-1/error")),
            Route::Error("ab-1")
        );
        assert_eq!(
            resolve(&get, &format!("{p}/invocation/ab-1/error")),
            Route::WrongMethod
        );
        assert_eq!(resolve(&post, &format!("{p}/init/error")), Route::InitError);
        assert_eq!(
            resolve(&post, &format!("{p}/invocation//response")),
            Route::NotFound
        );
        assert_eq!(
            resolve(&post, &format!("{p}/invocation/a/b/response")),
            Route::NotFound
        );
        assert_eq!(resolve(&get, "/2015-03-31/functions"), Route::NotFound);
    }

    #[test]
    fn error_bodies_are_read_as_runtimes_send_them() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Header.Type"),
        );
        let (t, m, s) = read_error(
            &headers,
            br#"{"errorType":"TypeError","errorMessage":"x is undefined","trace":["TypeError: x","  at f"]}"#,
        );
        assert_eq!((t.as_str(), m.as_str()), ("TypeError", "x is undefined"));
        assert_eq!(s, ["TypeError: x", "  at f"]);
        let (t, m, s) = read_error(&headers, b"not json");
        assert_eq!((t.as_str(), m.as_str()), ("Header.Type", "not json"));
        assert!(s.is_empty());
        let (t, _, _) = read_error(&HeaderMap::new(), b"{}");
        assert_eq!(t, "Unhandled");
    }
}
