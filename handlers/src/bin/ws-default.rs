//! The `ws-default` Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    wsadmin_handlers::lambda::serve(wsadmin_handlers::Route::Default).await
}
