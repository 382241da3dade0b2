//! The stack's TLS side as clients meet it: a stack serving `wss://` and
//! `https://` with its CA in a directory the test owns, WebSocket clients
//! and the official Management API client trusting that CA (and nothing
//! else: no system roots, so a test never passes by another trust).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wsadmin_emulator::EmulatorConfig;
use wsadmin_local::{Listen, ListenTls};
use wsadmin_testkit::dynalite::Dynalite;

use crate::{Client, Harness, Ws};

/// [`crate::start`] with the TLS endpoint too (a free port), its CA kept
/// in `dir`.
pub async fn start_tls(dir: &Path, tweak: impl FnOnce(&mut EmulatorConfig)) -> Harness {
    let any = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listen = Listen {
        addr: any(0),
        tls: Some(ListenTls {
            addr: any(0),
            dir: dir.to_owned(),
        }),
    };
    crate::launch(Dynalite::start(), listen, tweak).await
}

/// A rustls client configuration trusting only `ca_pem`'s certificates.
pub fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A WebSocket handshake to `url` (`wss://…`) trusting only `ca_pem`.
pub async fn connect_wss(url: &str, ca_pem: &str, user_agent: &str) -> Result<Ws, WsError> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "User-Agent",
        HeaderValue::from_str(user_agent).expect("header"),
    );
    let connector = Connector::Rustls(client_config(ca_pem));
    tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector))
        .await
        .map(|(ws, _)| ws)
}

impl Harness {
    /// The CA of the stack's TLS endpoint, PEM (the stack must serve TLS).
    pub fn ca_pem(&self) -> &str {
        self.stack.ca_pem().expect("the stack serves TLS")
    }

    /// `wss://localhost:PORT/STAGE`.
    pub fn wss_url(&self) -> String {
        self.stack.wss_url().expect("the stack serves TLS")
    }

    /// [`Harness::client`] over `wss://`, trusting the stack's CA.
    pub async fn wss_client(&self, name: &str) -> Client {
        let ws = connect_wss(&self.wss_url(), self.ca_pem(), name)
            .await
            .expect("TLS handshake and upgrade accepted");
        let id = self
            .find_record_of(name)
            .await
            .expect("registered on $connect");
        Client { ws, id }
    }

    /// [`Harness::management`] at `https://localhost:PORT/STAGE`, its
    /// HTTP client trusting only the stack's CA.
    pub fn management_https(&self) -> aws_sdk_apigatewaymanagement::Client {
        let endpoint = self
            .stack
            .https_management_endpoint()
            .expect("the stack serves TLS");
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(self.ca_pem().as_bytes());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(
                TlsContext::builder()
                    .with_trust_store(trust)
                    .build()
                    .expect("TLS context"),
            )
            .build_https();
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.stack.sdk_config())
            .endpoint_url(endpoint)
            .http_client(http)
            .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }
}
