//! The stack's functions as the emulator's [`Functions`]: our four handlers
//! run in-process ([`InProcess`]), and every function the stack declares
//! with a runtime (a template's Node, Python or `bootstrap` function) run as
//! Lambda runs it, by the Lambda host ([`wsadmin_lambda::LambdaHost`]),
//! in its own processes through the Runtime API. Which path a route takes
//! is decided per function: declared in `StackSpec::functions` means the
//! host; otherwise one of ours. Either way the event arrives as Lambda's
//! JSON and the response leaves as Lambda's JSON, so the wire contract is
//! the one AWS runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use wsadmin_core::function::FunctionSpec;
use wsadmin_emulator::Functions;
use wsadmin_emulator::integration::off_the_clock;
use wsadmin_handlers::{Handlers, Route, parse_event};
use wsadmin_lambda::LambdaHost;

#[derive(Debug, Clone)]
pub struct InProcess {
    handlers: Arc<Handlers>,
}

impl InProcess {
    pub fn new(handlers: Handlers) -> Self {
        Self {
            handlers: Arc::new(handlers),
        }
    }
}

impl Functions for InProcess {
    fn names(&self) -> Vec<String> {
        Route::ALL
            .iter()
            .map(|r| r.function_name().to_owned())
            .collect()
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: String,
    ) -> BoxFuture<'a, Result<String, String>> {
        let route = Route::from_function_name(function);
        Box::pin(async move {
            let route = route.ok_or_else(|| format!("no function named {function:?}"))?;
            let event = parse_event(&event).map_err(|e| e.to_string())?;
            let response = self.handlers.handle(route, event).await;
            serde_json::to_string(&response)
                .map_err(|e| format!("the response does not serialise: {e}"))
        })
    }
}

/// Our handlers in-process, and the declared functions on the Lambda host.
#[derive(Debug)]
pub struct StackFunctions {
    in_process: InProcess,
    /// `None` when the stack declares no function of its own.
    host: Option<LambdaHost>,
    /// The host's functions, looked up on every invocation.
    hosted: HashSet<String>,
    /// Functions with reserved concurrency, and how much.
    reserved: HashMap<String, u32>,
}

impl StackFunctions {
    /// `functions`: what the stack declares (their reserved concurrency).
    pub fn new(
        in_process: InProcess,
        host: Option<LambdaHost>,
        functions: &[FunctionSpec],
    ) -> Self {
        let hosted = host.iter().flat_map(|h| h.names()).collect();
        let reserved = functions
            .iter()
            .filter_map(|f| Some((f.name.clone(), f.reserved_concurrency?)))
            .collect();
        Self {
            in_process,
            host,
            hosted,
            reserved,
        }
    }
}

impl Functions for StackFunctions {
    fn names(&self) -> Vec<String> {
        let mut names = self.in_process.names();
        if let Some(host) = &self.host {
            names.extend(host.names());
        }
        names
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: String,
    ) -> BoxFuture<'a, Result<String, String>> {
        match &self.host {
            // Waiting for a free instance is this machine's limit, not
            // Lambda's (it would start one): off the clock. Running is on it.
            Some(host) if self.hosted.contains(function) => Box::pin(async move {
                let reserved = off_the_clock(host.reserve(function))
                    .await
                    .map_err(|e| e.to_string())?;
                reserved.invoke(event).await.map_err(|e| e.to_string())
            }),
            _ => self.in_process.invoke(function, event),
        }
    }

    fn reserved_concurrency(&self, function: &str) -> Option<usize> {
        let reserved = self.reserved.get(function)?;
        usize::try_from(*reserved).ok()
    }

    fn instances(&self) -> Vec<(String, usize, usize)> {
        let Some(host) = &self.host else {
            return Vec::new();
        };
        let mut names: Vec<&String> = self.hosted.iter().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let stats = host.stats(name)?;
                let warm = stats.instances.saturating_sub(stats.busy);
                Some((name.clone(), warm, stats.busy))
            })
            .collect()
    }
}
