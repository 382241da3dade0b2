//! The dashboard on a throwaway local stack (dynalite + the emulator) with
//! a few real clients, for trying it out and for checking it in a real
//! terminal: `cargo run -p wsadmin-tui --example local [CLIENTS]`.

use std::net::{Ipv4Addr, SocketAddr};

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wsadmin_core::{Gateway, ManagementEndpoint, Target};
use wsadmin_deploy::emulator::EmulatorConfig;
use wsadmin_deploy::local::LocalStack;
use wsadmin_testkit::dynalite::Dynalite;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clients: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let db = Dynalite::start();
    let stack = LocalStack::start(
        EmulatorConfig::default(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &db.endpoint(),
    )
    .await?;
    let mut sockets = Vec::new();
    for i in 0..clients {
        let url = format!("{}?user=demo{i}", stack.websocket_url());
        let mut req = url.as_str().into_client_request()?;
        req.headers_mut().insert(
            "User-Agent",
            HeaderValue::from_str(&format!("example-client/{i}"))?,
        );
        sockets.push(tokio_tungstenite::connect_async(req).await?.0);
    }
    eprintln!("websocket url: {}", stack.websocket_url());
    let target = Target {
        context: Some("example".into()),
        region: stack.config().region.clone(),
        store: stack.store(),
        gateway: Gateway::new(
            &stack.sdk_config(),
            ManagementEndpoint::parse(&stack.management_endpoint())?,
        )?,
    };
    let result = wsadmin_tui::run(target, wsadmin_tui::Options::default()).await;
    drop(sockets);
    stack.stop().await?;
    result?;
    Ok(())
}
