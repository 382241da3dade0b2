//! Our four handlers as the emulator's [`Functions`], run in-process: the
//! event arrives as Lambda's JSON and the response leaves as Lambda's JSON,
//! so the wire contract is the one AWS runs.

use std::sync::Arc;

use futures::future::BoxFuture;
use wsadmin_emulator::Functions;
use wsadmin_handlers::{Handlers, Route, parse_event};

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
