//! The `ws-message` Lambda function.

fn main() -> std::process::ExitCode {
    wsadmin_handlers::lambda::main(wsadmin_handlers::Route::Message)
}
