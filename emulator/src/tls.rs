//! The TLS listener: API Gateway's endpoints are `wss://` and `https://`,
//! and code written for AWS builds its Management endpoint that way, so
//! the emulator serves its one router over TLS too, beside the plain port.
//!
//! It owns only the handshake: the certificate comes in as a rustls
//! [`ServerConfig`] (how it was made is the caller's business). Handshakes
//! run in tasks of their own, so a client that connects and says nothing
//! holds no one else up; a failed or slow one is logged at debug and
//! dropped, never stopping the server. ALPN offers only `http/1.1`:
//! API Gateway serves WebSockets over HTTP/1.1, not HTTP/2.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond it no new connection is accepted
/// until one ends (the kernel's backlog holds them meanwhile).
const MAX_HANDSHAKES: usize = 1024;

/// A TCP listener whose connections are TLS: an [`axum::serve::Listener`]
/// yielding only connections whose handshake succeeded, with the peer's
/// address (so `ConnectInfo<SocketAddr>` works as on the plain port).
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    /// Handshakes under way, each with its peer's address.
    handshakes: JoinSet<(SocketAddr, Result<TlsStream<TcpStream>, String>)>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.tcp.local_addr().ok())
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Serves `config`'s certificate on `tcp`; its ALPN is set to
    /// `http/1.1` whatever it was.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        let mut config = Arc::unwrap_or_clone(config);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        self.handshakes.spawn(async move {
            let outcome =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Ok(tls),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "no handshake within {}s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    )),
                };
            (peer, outcome)
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                // axum's accept: it retries, and backs off when out of descriptors.
                (stream, peer) = axum::serve::Listener::accept(&mut self.tcp), if room => {
                    self.start_handshake(stream, peer);
                }
                Some(done) = self.handshakes.join_next() => match done {
                    Ok((peer, Ok(tls))) => return (tls, peer),
                    Ok((peer, Err(error))) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                    Err(e) => tracing::debug!(error = %e, "TLS handshake task ended"),
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
