//! Invoking a route's function the way Lambda does: the event goes to the
//! [`Functions`] in its JSON form, and the response comes back in its JSON
//! form, so the wire contract between API Gateway and Lambda is exercised on
//! every call. Which functions exist and how they run is the [`Functions`]'
//! business (the local stack runs ours in-process); the emulator knows only
//! their names. Every invocation first takes an execution slot from the
//! account's concurrency ([`Integration::slot`]); beyond the limit it is
//! throttled at once, never queued, as Lambda throttles.
//!
//! A slot counts what Lambda would count, not our machine's slowness: a
//! function waiting on the local DynamoDB (dynalite answers in tens to
//! hundreds of ms under load where AWS answers in a few) gives its slot
//! back for the wait ([`off_the_clock`], called by whoever runs the
//! function around such a wait) and takes one again after, waiting for it
//! rather than being throttled, since Lambda admitted it long ago.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use base64::Engine;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wsadmin_core::stack::{Authorization, IdentitySource, StackSpec};

use super::EmulatorError;

/// The Lambda functions the routes integrate with, as Lambda's Invoke API
/// sees them: a name, an event in, a response out, both JSON.
pub trait Functions: Send + Sync + std::fmt::Debug + 'static {
    /// The names of the functions there are (a route naming another is a
    /// configuration error).
    fn names(&self) -> Vec<String>;

    /// Runs `function` on `event`; the response's JSON, or why the
    /// invocation failed (logged; the client sees what API Gateway shows
    /// for a failed integration).
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: String,
    ) -> BoxFuture<'a, Result<String, String>>;

    /// The function's reserved concurrency (Lambda's
    /// `ReservedConcurrentExecutions`): at most this many of its
    /// invocations at once, throttled beyond; `None`, only the account's.
    fn reserved_concurrency(&self, _function: &str) -> Option<usize> {
        None
    }

    /// Per function that runs in instances of its own: its name, its warm
    /// (idle) instances and its busy ones, for `/metrics`.
    fn instances(&self) -> Vec<(String, usize, usize)> {
        Vec::new()
    }
}

/// One route's binding.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The function's name.
    pub function: Arc<str>,
    /// Whether the handler's body is sent back to the client.
    pub route_response: bool,
}

/// Who may connect: `$connect`'s authorization.
#[derive(Debug, Clone, Default)]
pub enum ConnectAuth {
    #[default]
    None,
    /// A SigV4 query-string-signed handshake.
    Iam,
    /// A REQUEST Lambda authorizer.
    Custom {
        function: Arc<str>,
        identity_source: Vec<IdentitySource>,
    },
}

/// What an invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: i64,
    pub body: Option<String>,
    /// `Sec-WebSocket-Protocol` chosen by a `$connect` handler.
    pub subprotocol: Option<String>,
}

/// Why an invocation produced no answer. API Gateway shows both the same
/// way: a refused `$connect` (500), or an "Internal server error" frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// Lambda's 429 `TooManyRequestsException`: every execution slot of the
    /// account is busy.
    #[error(
        "throttled: all {limit} Lambda execution slots are busy (TooManyRequestsException; raise --lambda-concurrency)"
    )]
    Throttled { limit: usize },
    /// Lambda's 429 for a function whose reserved concurrency is all in use.
    #[error(
        "throttled: all {limit} of the function's reserved concurrency is busy (TooManyRequestsException; raise its ReservedConcurrentExecutions)"
    )]
    ReservedThrottled { limit: usize },
    /// The function failed as a crashing Lambda would (the event or the
    /// response did not cross the wire).
    #[error("the function failed (see the error logged before)")]
    Failed,
}

/// One Lambda execution slot, held for as long as an invocation runs
/// (except while it is [`off_the_clock`]).
#[derive(Debug)]
pub struct Slot {
    held: Arc<HeldSlot>,
    _running: Running,
}

/// One admitted invocation, counted until it ends (on the clock or off).
#[derive(Debug)]
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The permits of a running invocation (the function's reserved slot, if
/// it has reserved concurrency, and the account's), and the semaphores to
/// take them again from, in that order, after a wait off the clock.
#[derive(Debug)]
struct HeldSlot {
    pools: Vec<Arc<Semaphore>>,
    /// Empty while off the clock.
    permits: std::sync::Mutex<Vec<OwnedSemaphorePermit>>,
}

tokio::task_local! {
    /// The slot of the invocation this task is running, for [`off_the_clock`].
    static RUNNING: Arc<HeldSlot>;
}

/// Runs `wait` with the current invocation's execution slot given back, and
/// takes a slot again before returning (waiting for one if all are busy:
/// the invocation was admitted, so it is never throttled here). Outside an
/// invocation (or on another task than the invocation's own) it just runs
/// `wait`. The local stack wraps its handlers' requests to the local
/// DynamoDB in it: on AWS those take milliseconds, so they would not keep
/// an execution slot busy the way a loaded dynalite does.
pub async fn off_the_clock<F: std::future::Future>(wait: F) -> F::Output {
    let Ok(held) = RUNNING.try_with(Arc::clone) else {
        return wait.await;
    };
    let released = std::mem::take(&mut *held.permits.lock().unwrap_or_else(|p| p.into_inner()));
    if released.is_empty() {
        // Already off the clock (a nested or concurrent wait of the same
        // invocation): the outermost wait takes the slot back.
        return wait.await;
    }
    drop(released);
    let output = wait.await;
    let mut permits = Vec::with_capacity(held.pools.len());
    for pool in &held.pools {
        // The semaphores are never closed, so this cannot fail; if it did,
        // the invocation runs on without that slot rather than failing.
        permits.extend(pool.clone().acquire_owned().await.ok());
    }
    *held.permits.lock().unwrap_or_else(|p| p.into_inner()) = permits;
    output
}

#[derive(Debug)]
pub struct Integration {
    functions: Arc<dyn Functions>,
    routes: HashMap<String, Binding>,
    /// The account's Lambda concurrency: one permit per execution slot.
    slots: Arc<Semaphore>,
    limit: usize,
    /// Functions with reserved concurrency: their own slots, and how many.
    reserved: HashMap<Arc<str>, (Arc<Semaphore>, usize)>,
    /// Invocations admitted and not yet ended, whether or not they hold a
    /// slot right now.
    running: Arc<std::sync::atomic::AtomicUsize>,
    connect_auth: ConnectAuth,
}

impl Integration {
    /// `concurrency` is the number of invocations that may run at once.
    pub fn new(
        stack: &StackSpec,
        functions: Arc<dyn Functions>,
        concurrency: usize,
    ) -> Result<Self, EmulatorError> {
        let names = functions.names();
        let reserved = names
            .iter()
            .filter_map(|name| {
                let limit = functions.reserved_concurrency(name)?;
                Some((
                    Arc::from(name.as_str()),
                    (Arc::new(Semaphore::new(limit)), limit),
                ))
            })
            .collect();
        let mut routes = HashMap::new();
        let mut connect_auth = ConnectAuth::None;
        for r in &stack.routes {
            if !names.contains(&r.handler) {
                return Err(EmulatorError::UnknownHandler {
                    route: r.key.clone(),
                    handler: r.handler.clone(),
                    known: names.join(", "),
                });
            }
            if r.key == wsadmin_core::stack::ROUTE_CONNECT {
                connect_auth = match (r.authorization, &r.authorizer) {
                    (Authorization::AwsIam, _) => ConnectAuth::Iam,
                    (Authorization::Custom, Some(a)) => {
                        if !names.contains(&a.function) {
                            return Err(EmulatorError::UnknownHandler {
                                route: r.key.clone(),
                                handler: a.function.clone(),
                                known: names.join(", "),
                            });
                        }
                        ConnectAuth::Custom {
                            function: Arc::from(a.function.as_str()),
                            identity_source: a
                                .identity_source
                                .iter()
                                .map(|s| IdentitySource::parse(s))
                                .collect::<Result<_, _>>()
                                .map_err(|e| EmulatorError::Stack(e.to_string()))?,
                        }
                    }
                    _ => ConnectAuth::None,
                };
            }
            routes.insert(
                r.key.clone(),
                Binding {
                    function: Arc::from(r.handler.as_str()),
                    route_response: r.route_response,
                },
            );
        }
        Ok(Self {
            functions,
            routes,
            slots: Arc::new(Semaphore::new(concurrency)),
            limit: concurrency,
            reserved,
            running: Arc::default(),
            connect_auth,
        })
    }

    /// The functions' instances (warm, busy), as [`Functions::instances`].
    pub fn instances(&self) -> Vec<(String, usize, usize)> {
        self.functions.instances()
    }

    /// Who may connect.
    pub fn connect_auth(&self) -> &ConnectAuth {
        &self.connect_auth
    }

    /// An execution slot for `function`, or a throttle at once when all
    /// of its reserved concurrency ([`InvokeError::ReservedThrottled`]) or
    /// all of the account's ([`InvokeError::Throttled`]) is busy.
    pub fn slot(&self, function: &str) -> Result<Slot, InvokeError> {
        let mut pools = Vec::with_capacity(2);
        let mut permits = Vec::with_capacity(2);
        if let Some((reserved, limit)) = self.reserved.get(function) {
            let permit = reserved
                .clone()
                .try_acquire_owned()
                .map_err(|_| InvokeError::ReservedThrottled { limit: *limit })?;
            pools.push(reserved.clone());
            permits.push(permit);
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| InvokeError::Throttled { limit: self.limit })?;
        pools.push(self.slots.clone());
        permits.push(permit);
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Slot {
            held: Arc::new(HeldSlot {
                pools,
                permits: std::sync::Mutex::new(permits),
            }),
            _running: Running(self.running.clone()),
        })
    }

    /// Execution slots in use right now (invocations on the clock).
    pub fn busy(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    /// Invocations admitted and not yet ended, including those waiting off
    /// the clock.
    pub fn running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn route(&self, key: &str) -> Option<Binding> {
        self.routes.get(key).cloned()
    }

    /// Runs `function` on the event in the execution slot `_slot` (taken
    /// with [`Integration::slot`]); a failure to carry the event or the
    /// response over the wire is logged and is [`InvokeError::Failed`], as a
    /// crashing Lambda would be.
    pub async fn invoke(
        &self,
        slot: &Slot,
        function: &str,
        event: &serde_json::Value,
    ) -> Result<Answer, InvokeError> {
        let wire = self.invoke_raw(slot, function, event).await?;
        let Ok(response) = serde_json::from_str::<ApiGatewayProxyResponse>(&wire) else {
            tracing::error!(function, "the function's response is not a proxy response");
            return Err(InvokeError::Failed);
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
        Ok(Answer {
            status: response.status_code,
            body,
            subprotocol,
        })
    }

    /// Runs `function` on the event; its answer's JSON text, whatever its
    /// shape (an authorizer answers with a policy, not a proxy response).
    pub async fn invoke_raw(
        &self,
        slot: &Slot,
        function: &str,
        event: &serde_json::Value,
    ) -> Result<String, InvokeError> {
        // Boxed by `Functions`: a function's future may be large (the
        // message route holds a whole fan-out), and every connection task
        // awaits `$disconnect`; inline, that state would be part of each
        // idle connection.
        let invocation = self.functions.invoke(function, event.to_string());
        match RUNNING.scope(slot.held.clone(), invocation).await {
            Ok(wire) => Ok(wire),
            Err(e) => {
                tracing::error!(function, "invocation failed: {e}");
                Err(InvokeError::Failed)
            }
        }
    }
}
