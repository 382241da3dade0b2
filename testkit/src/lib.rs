//! wsadmin-testkit: test fixtures over real processes and sockets, shared
//! by every crate's tests: [`dynalite::Dynalite`] (a real DynamoDB API on a
//! free loopback port, stopped on drop), [`moto::Moto`] (the AWS control
//! plane, for API Gateway v2), [`standin::StandIn`] (a Management API
//! server speaking AWS's wire format, scripted per connection id) and
//! [`runtime_api::RuntimeApi`] (Lambda's Runtime API, to run a real Lambda
//! binary).
//!
//! It depends on no crate of ours but `wsadmin-dynalite` (the one launcher),
//! so the types under test are never duplicated; SDK configurations are
//! built by the tests with `wsadmin_core::sdk` and [`TEST_REGION`],
//! [`TEST_ACCESS_KEY_ID`] and [`TEST_SECRET_ACCESS_KEY`].

pub mod dynalite;
pub mod help;
pub mod moto;
pub mod runtime_api;
pub mod standin;

pub use wsadmin_dynalite::child;

use std::path::PathBuf;

/// Credentials and region of every test's SDK configuration (built with
/// `wsadmin_core::sdk`). Nothing is read from the environment, so no test
/// can reach AWS.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDLOCALTEST";
pub const TEST_SECRET_ACCESS_KEY: &str = "local-test-secret";
pub const TEST_REGION: &str = "us-east-1";

/// `$connect` meta values that a selector must match whole, as operators
/// meet them: a prefix of another, spaces, commas, quotes, `=`, non-ASCII.
/// The selector's tests, the dashboard's and the CLI's select from these.
pub const AWKWARD_NAMES: [&str; 7] = [
    "Ana",
    "Ana Maria",
    "Ana, Maria",
    "say \"hi\"",
    "a=b",
    "Zoë Ωmega 名前",
    "Ana (2)",
];

/// The workspace root (where `node_modules/` and `scripts/` live).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Serves `app` on 127.0.0.1 and a port the OS picked until the returned
/// sender is dropped or fires; returns the port.
pub async fn serve(app: axum::Router) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (port, tx)
}
