//! The `lambda_runtime` glue: build [`Handlers`] once, then serve one route.
//! Needs the Lambda environment; nothing else in this crate does.

use lambda_runtime::{Error, LambdaEvent, service_fn};

use crate::{Event, Handlers, Route};

/// The whole `main` of a route's binary.
pub async fn serve(route: Route) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let handlers = Handlers::from_env().await?;
    let handlers = &handlers;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handlers.handle(route, event.payload).await)
    }))
    .await
}
