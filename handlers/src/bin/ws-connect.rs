//! The `ws-connect` Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    wsadmin_handlers::lambda::serve(wsadmin_handlers::Route::Connect).await
}
