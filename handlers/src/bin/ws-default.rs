//! The `ws-default` Lambda function.

fn main() -> std::process::ExitCode {
    wsadmin_handlers::lambda::main(wsadmin_handlers::Route::Default)
}
