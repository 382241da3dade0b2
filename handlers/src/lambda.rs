//! The `lambda_runtime` glue: build [`Handlers`] once, then serve one route.
//! Needs the Lambda environment; nothing else in this crate does. Built
//! with the `lambda` feature only.

use lambda_runtime::{Error, LambdaEvent, service_fn};

use crate::{Event, Handlers, Route};

/// The whole `main` of a route's binary: serves `route` until the Lambda
/// environment stops it; a failure to start (configuration, runtime) is
/// one line on stderr (CloudWatch) naming the cause, and a failed exit.
///
/// One thread: an invocation's posts and their connections wake each other
/// on it, without the futex wake-ups and hand-offs of a multi-thread
/// runtime (~30% of the CPU a delivery, BENCHMARKS.md, issue 18), and a
/// 512 MB function has a third of one vCPU anyway.
pub fn main(route: Route) -> std::process::ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|rt| rt.block_on(serve(route)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", route.function_name());
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves one route.
pub async fn serve(route: Route) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    if route == Route::Default {
        // `$default` touches no table and no endpoint: it needs no
        // configuration, and asks for none.
        return lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
            Ok::<_, Error>(crate::marko_polo(&event.payload))
        }))
        .await;
    }
    let handlers = Handlers::from_env().await?;
    let handlers = &handlers;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handlers.handle(route, event.payload).await)
    }))
    .await
}
