//! The dashboard on a throwaway local stack (dynalite + the emulator) with
//! a few real clients, for trying it out and for checking it in a real
//! terminal: `cargo run -p wsadmin-tui --example local [CLIENTS]`.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clients: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let h = wsadmin_harness::start(|_| {}).await;
    let mut sockets = Vec::new();
    for i in 0..clients {
        let url = format!("{}?user=demo{i}", h.url());
        let mut req = url.as_str().into_client_request()?;
        req.headers_mut().insert(
            "User-Agent",
            HeaderValue::from_str(&format!("example-client/{i}"))?,
        );
        sockets.push(tokio_tungstenite::connect_async(req).await?.0);
    }
    eprintln!("websocket url: {}", h.url());
    let mut target = h.target();
    target.context = Some("example".into());
    let result = wsadmin_tui::run(target, wsadmin_tui::Options::default()).await;
    drop(sockets);
    h.stop().await;
    result?;
    Ok(())
}
