//! `wsadmin connect`: a WebSocket test client, with wscat's habits. The
//! handshake carries `-H` headers, `--subprotocol`s and `--param` query parameters
//! (the `$connect` meta), optionally signed with SigV4 in the query string
//! (`--sign`, for a `$connect` with IAM authorization). Then standard
//! input's lines are sent, or the `--execute` messages; what arrives is
//! printed with its time, and so is the close code when the server closes.
//! A `wss://` handshake trusts the system's roots, `--ca`'s certificates
//! (or `AWS_CA_BUNDLE`'s), and the local stack's CA when the URL is its
//! TLS endpoint ([`tls_connector`]).
//!
//! Inputs are checked before any connection ([`Plan::new`]); the signing
//! ([`sign_url`]) is a pure function of the URL, the credentials and the
//! time.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use futures::{SinkExt, StreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::{ClientConfig, RootCertStore};
use serde::Serialize;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{SEC_WEBSOCKET_PROTOCOL, USER_AGENT};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use url::Url;
use wsadmin_core::ManagementEndpoint;
use wsadmin_core::local::LocalStackInfo;
use wsadmin_core::sdk::{LoadError, load};
use wsadmin_core::sdk_error::credentials_cause;

use crate::config::{ConfigFile, ContextSpec};
use crate::deployment::{self, Selection, choose_region};
use crate::exit::{Status, usage};
use crate::flags::{ConnectArgs, OutputFormat, TargetArgs};
use crate::output::{Output, escape};

/// How long the handshake may take, and our close may wait for the
/// server's answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a signed URL stays valid: the handshake happens at once.
const SIGNATURE_EXPIRES: Duration = Duration::from_secs(300);

/// The validated command line: nothing is connected before all of it is
/// known to be good.
#[derive(Debug)]
struct Plan {
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
    subprotocols: Vec<String>,
    execute: Vec<String>,
    wait: Duration,
    sign: bool,
}

impl Plan {
    fn new(args: &ConnectArgs) -> Result<Self> {
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_>>()?;
        let query = args
            .params
            .iter()
            .map(|q| parse_query(q))
            .collect::<Result<_>>()?;
        for p in &args.subprotocols {
            let token = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c));
            if !token {
                return Err(usage(format!(
                    "invalid subprotocol {p:?}: use a token such as graphql-ws (no spaces or separators)"
                )));
            }
        }
        Ok(Self {
            headers,
            query,
            subprotocols: args.subprotocols.clone(),
            execute: args.execute.clone(),
            wait: args.wait,
            sign: args.sign,
        })
    }
}

/// `Name: value`.
fn parse_header(input: &str) -> Result<(HeaderName, HeaderValue)> {
    let bad = |why: &str| usage(format!("invalid header {input:?}: {why}"));
    let (name, value) = input
        .split_once(':')
        .ok_or_else(|| bad("use 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("the name is not a valid header name"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| bad("the value has characters a header cannot carry"))?;
    Ok((name, value))
}

/// `key=value` (the value may be empty, the key may not).
fn parse_query(input: &str) -> Result<(String, String)> {
    match input.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(usage(format!(
            "invalid query parameter {input:?}: use key=value"
        ))),
    }
}

/// A `ws://` or `wss://` URL with a host.
fn parse_ws_url(input: &str) -> Result<Uri> {
    let bad = |why: &str| {
        usage(format!(
            "invalid WebSocket URL {input:?}: {why} (use ws://HOST/STAGE or wss://HOST/STAGE)"
        ))
    };
    let uri: Uri = input.trim().parse().map_err(|_| bad("it is not a URL"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("ws" | "wss") => {}
        None => return Err(bad("it has no scheme")),
        Some(_) => return Err(bad("the scheme is not ws or wss")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(uri)
}

/// What RFC 3986 leaves unencoded (the unreserved characters): what
/// SigV4's canonical query string uses too, so a signed URL reads back as
/// it was signed.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `url` with the parameters appended to its query string.
fn with_query<'a>(url: &str, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let added: Vec<String> = params
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect();
    if added.is_empty() {
        return url.to_owned();
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let query: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .chain(added.iter().map(String::as_str))
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// `url` with its scheme swapped as a WebSocket URL's HTTP form (`wss`
/// and `https`, `ws` and `http`), either way.
fn with_scheme_of(url: &str, to_http: bool) -> Result<String> {
    let mut parsed = Url::parse(url).map_err(|e| anyhow!("invalid URL {url:?}: {e}"))?;
    let scheme = match (parsed.scheme(), to_http) {
        ("wss", true) => "https",
        ("ws", true) => "http",
        ("https", false) => "wss",
        ("http", false) => "ws",
        (other, _) => bail!("cannot use a {other}:// URL here"),
    };
    parsed
        .set_scheme(scheme)
        .map_err(|()| anyhow!("cannot turn {url:?} into a {scheme}:// URL"))?;
    Ok(parsed.into())
}

/// The URL without its query string: what messages name (a signed query
/// is a credential for a few minutes).
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// `url` signed for `execute-api` with SigV4 in its query string
/// (`X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`, `-SignedHeaders`,
/// `-Security-Token` with temporary credentials, `-Signature`), as API
/// Gateway's IAM authorization of `$connect` expects it. The handshake is
/// an HTTP GET: it is signed as one, on the `http(s)` form of the URL.
pub fn sign_url(
    url: &str,
    credentials: &Credentials,
    region: &str,
    at: SystemTime,
) -> Result<String> {
    let http_url = with_scheme_of(url, true).context("cannot sign the handshake")?;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(SIGNATURE_EXPIRES);
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(at)
        .settings(settings)
        .build()
        .context("cannot sign the handshake")?
        .into();
    let request = SignableRequest::new(
        "GET",
        http_url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .context("cannot sign the handshake")?;
    let (instructions, _signature) = sign(request, &params)
        .context("cannot sign the handshake")?
        .into_parts();
    let (_headers, query) = instructions.into_parts();
    Ok(with_query(url, query.iter().map(|(k, v)| (*k, v.as_ref()))))
}

/// The URL to connect to: the one given, or the selected context's.
fn context_url(sel: &Selection) -> Result<String> {
    if let Some(info) = &sel.local {
        return Ok(info.websocket_url.clone());
    }
    let name = sel.context.as_deref().map_or_else(
        || "the selected deployment".to_owned(),
        |n| format!("context {n:?}"),
    );
    let spec = &sel.spec;
    if let Some(endpoint) = &spec.endpoint {
        // The stage URL serves both: the Management API over https, the
        // WebSocket API over wss.
        let e = ManagementEndpoint::parse(endpoint).map_err(usage)?;
        return with_scheme_of(e.url(), false);
    }
    if let (Some(api), Some(stage)) = (&spec.api_id, &spec.stage) {
        let Some(region) = &spec.region else {
            bail!("{name} names API {api:?} but no region: pass --region, or the URL");
        };
        return Ok(format!(
            "wss://{api}.execute-api.{region}.amazonaws.com/{stage}"
        ));
    }
    bail!("{name} has no WebSocket URL: pass one (wsadmin connect wss://HOST/STAGE)")
}

/// The credentials and region to sign with: the local stack's, else the
/// standard AWS chain with the profile and region of the flags or context.
async fn signing_identity(
    sel: Option<&Selection>,
    target: &TargetArgs,
    url: &str,
) -> Result<(Credentials, String)> {
    if let Some(info) = sel.and_then(|s| s.local.as_ref()) {
        let creds = Credentials::new(
            info.access_key_id.clone(),
            info.secret_access_key.clone(),
            None,
            None,
            "wsstack-local",
        );
        return Ok((creds, info.region.clone()));
    }
    let spec = sel.map_or_else(|| ContextSpec::from_flags(target), |s| s.spec.clone());
    // The URL's region decides, as for every other command.
    let of_url = with_scheme_of(url, true)
        .ok()
        .and_then(|u| ManagementEndpoint::parse(&u).ok());
    let region = choose_region(
        spec.region.as_deref(),
        of_url.as_ref().and_then(ManagementEndpoint::region),
    )?;
    let sdk = load(
        spec.profile.as_deref(),
        region.as_ref().map(|(r, _)| r.as_str()),
    )
    .await?;
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    // Resolved (and cached by the chain) when loading.
    let provider = sdk.credentials_provider().ok_or(LoadError::NoCredentials)?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| anyhow!("no AWS credentials to sign with: {}", credentials_cause(&e)))?;
    Ok((creds, region))
}

/// The TLS of a `wss://` handshake when it trusts more than the system's
/// roots: those, plus the certificates of `ca` and, when `url` is the
/// local stack's TLS endpoint, its CA (from `local`, else its state file).
/// `None`: tokio-tungstenite's own (the system's roots), or not `wss://`.
fn tls_connector(
    url: &Uri,
    ca: Option<&Path>,
    local: Option<&LocalStackInfo>,
) -> Result<Option<Connector>> {
    if url.scheme_str() != Some("wss") {
        return Ok(None);
    }
    let mut files: Vec<PathBuf> = ca.into_iter().map(Path::to_owned).collect();
    let recorded = match local {
        Some(info) => Some(info.clone()),
        None => LocalStackInfo::read(&LocalStackInfo::default_path()).ok(),
    };
    files.extend(recorded.and_then(|info| local_ca(url, &info)));
    if files.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    // As tokio-tungstenite loads them (SSL_CERT_FILE replaces them).
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for file in &files {
        let cannot = |e: &dyn std::fmt::Display| {
            usage(format!(
                "cannot read CA certificates from {}: {e}",
                file.display()
            ))
        };
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| cannot(&e))?;
        if certs.is_empty() {
            return Err(cannot(&"no PEM certificate in it"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| cannot(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Connector::Rustls(Arc::new(config))))
}

/// The local stack's CA file, when `url` is its TLS endpoint (a loopback
/// name and its port).
fn local_ca(url: &Uri, info: &LocalStackInfo) -> Option<PathBuf> {
    let wss: Uri = info.wss_url.as_deref()?.parse().ok()?;
    let loopback = |h: &str| {
        matches!(
            h.trim_start_matches('[').trim_end_matches(']'),
            "localhost" | "127.0.0.1" | "::1"
        )
    };
    let same = url.port_u16().is_some()
        && url.port_u16() == wss.port_u16()
        && url.host().is_some_and(loopback);
    info.ca_file.clone().filter(|_| same)
}

/// One line of the transcript.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    /// Epoch milliseconds.
    at: i64,
    time: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
}

impl<'a> Line<'a> {
    fn new(event: &'static str) -> Self {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            at,
            time: super::events::time_ms(at),
            event,
            data: None,
            binary_bytes: None,
            code: None,
            reason: None,
        }
    }

    fn write(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        match out.format {
            OutputFormat::Json | OutputFormat::Ndjson => out.json_line(w, self)?,
            OutputFormat::Table | OutputFormat::Wide | OutputFormat::Ids => {
                let text = match self.event {
                    "received" => match (&self.data, self.binary_bytes) {
                        (Some(d), _) => format!("< {}", escape(d)),
                        (None, Some(n)) => format!("< (binary, {n} bytes)"),
                        (None, None) => "<".to_owned(),
                    },
                    "sent" => format!("> {}", escape(self.data.as_deref().unwrap_or(""))),
                    "closed" => format!(
                        "closed by the server: {} {}",
                        self.code
                            .map_or_else(|| "(no code)".to_owned(), |c| c.to_string()),
                        escape(self.reason.as_deref().unwrap_or(""))
                    )
                    .trim_end()
                    .to_owned(),
                    other => other.to_owned(),
                };
                writeln!(w, "{}  {text}", self.time)?;
            }
        }
        w.flush()?;
        Ok(())
    }
}

/// How the session ended.
enum Ending {
    /// The server sent a close frame.
    ServerClosed,
    /// We closed (the wait ran out, standard input ended, Ctrl-C).
    WeClosed,
}

pub async fn run(
    args: ConnectArgs,
    target: &TargetArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let plan = Plan::new(&args)?;
    // The context is read when it gives the URL, or the credentials of
    // `--sign` (the local stack's).
    let selection = match &args.url {
        Some(_) if !(plan.sign && target.context.is_some()) => None,
        Some(_) => Some(deployment::select(target)?),
        None => {
            let named =
                target.context.is_some() || target.endpoint.is_some() || target.api_id.is_some();
            if !named && ConfigFile::load(&ConfigFile::path()?)?.current.is_none() {
                return Err(usage(
                    "no URL to connect to: pass one (wsadmin connect wss://HOST/STAGE) or --context NAME",
                ));
            }
            Some(deployment::select(target)?)
        }
    };
    let base = match &args.url {
        Some(url) => url.trim().to_owned(),
        None => context_url(selection.as_ref().context("no URL to connect to")?)?,
    };
    let connector = tls_connector(
        &parse_ws_url(&base)?,
        args.ca.as_deref(),
        selection.as_ref().and_then(|s| s.local.as_ref()),
    )?;
    let mut url = with_query(
        &base,
        plan.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    if plan.sign {
        let (creds, region) = signing_identity(selection.as_ref(), target, &url).await?;
        url = sign_url(&url, &creds, &region, SystemTime::now())?;
    }
    let shown = without_query(&base).to_owned();

    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| usage(format!("invalid WebSocket URL {shown:?}: {e}")))?;
    let h = request.headers_mut();
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("wsadmin/", env!("CARGO_PKG_VERSION"))),
    );
    if !plan.subprotocols.is_empty() {
        let joined = plan.subprotocols.join(", ");
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&joined).map_err(usage)?,
        );
    }
    let mut replaced = Vec::new();
    for (name, value) in &plan.headers {
        if replaced.contains(name) {
            h.append(name.clone(), value.clone());
        } else {
            h.insert(name.clone(), value.clone());
            replaced.push(name.clone());
        }
    }

    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector);
    let (ws, response) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Err(_) => bail!(
            "no answer to the handshake from {shown} within {}s",
            HANDSHAKE_TIMEOUT.as_secs()
        ),
        Ok(Err(e)) => return Err(handshake_error(e, &shown, &plan.subprotocols)),
        Ok(Ok(ok)) => ok,
    };
    let stdin_tty = std::io::stdin().is_terminal();
    if !out.quiet {
        let protocol = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(|p| format!(", subprotocol {}", escape(p)))
            .unwrap_or_default();
        let hint = if plan.execute.is_empty() && stdin_tty {
            ": type a message and Enter to send it, Ctrl-D or Ctrl-C to close"
        } else {
            ""
        };
        let _ = writeln!(
            std::io::stderr(),
            "connected to {shown} (HTTP {}{protocol}){hint}",
            response.status().as_u16()
        );
    }

    let (mut sink, mut stream) = ws.split();
    let interrupted = crate::interrupt::token();
    // Messages to send: the --execute ones, else standard input's lines.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
    let mut deadline = None;
    if plan.execute.is_empty() {
        // A thread of its own: a read blocked on a terminal must not hold
        // the runtime's exit.
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if lines_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
    } else {
        drop(lines_tx);
        for message in &plan.execute {
            sink.send(Message::text(message.clone()))
                .await
                .with_context(|| format!("cannot send to {shown}"))?;
            let mut line = Line::new("sent");
            line.data = Some(Cow::Borrowed(message));
            line.write(out, w)?;
        }
        deadline = Some(tokio::time::Instant::now() + plan.wait);
    }
    let mut reading = plan.execute.is_empty();

    let ending = loop {
        let wait_over = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let mut line = Line::new("received");
                    line.data = Some(Cow::Borrowed(text.as_str()));
                    line.write(out, w)?;
                }
                Some(Ok(Message::Binary(data))) => {
                    let mut line = Line::new("received");
                    line.binary_bytes = Some(data.len());
                    line.write(out, w)?;
                }
                Some(Ok(Message::Close(frame))) => {
                    let mut line = Line::new("closed");
                    if let Some(CloseFrame { code, reason }) = &frame {
                        line.code = Some(u16::from(*code));
                        line.reason = Some(Cow::Owned(reason.as_str().to_owned()));
                    }
                    line.write(out, w)?;
                    // Our answer goes out as the stream is read to its end.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                        while stream.next().await.is_some() {}
                    })
                    .await;
                    break Ending::ServerClosed;
                }
                Some(Ok(_)) => {}
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => {
                    bail!("connection to {shown} lost: it closed without a close frame")
                }
                Some(Err(e)) => bail!("connection to {shown} lost: {e}"),
            },
            line = lines.recv(), if reading => match line {
                Some(text) => {
                    sink.send(Message::text(text.clone()))
                        .await
                        .with_context(|| format!("cannot send to {shown}"))?;
                    if !stdin_tty {
                        let mut line = Line::new("sent");
                        line.data = Some(Cow::Owned(text));
                        line.write(out, w)?;
                    }
                }
                None => {
                    // Standard input ended: answers may still come.
                    reading = false;
                    deadline = Some(tokio::time::Instant::now() + if stdin_tty { Duration::ZERO } else { plan.wait });
                }
            },
            () = wait_over => break Ending::WeClosed,
            () = interrupted.cancelled() => break Ending::WeClosed,
        }
    };
    if let Ending::WeClosed = ending {
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
    Ok(Status::Ok)
}

/// A failed handshake as one sentence naming the cause.
fn handshake_error(e: WsError, shown: &str, subprotocols: &[String]) -> anyhow::Error {
    match e {
        WsError::Http(res) => {
            let status = res.status();
            let body = res
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .filter(|b| !b.is_empty())
                .map(|b| {
                    let b: String = b.chars().take(200).collect();
                    format!(": {}", escape(&b))
                })
                .unwrap_or_default();
            let why = match status.as_u16() {
                401 => {
                    " (the authorizer's identity source is missing: pass its token with -H NAME:VALUE or --param NAME=VALUE)"
                }
                403 => {
                    " (a wrong stage in the URL? or `$connect` needs IAM authorization: --sign, or its authorizer denied this token)"
                }
                500 | 502 | 504 => " (the $connect handler or its authorizer failed or refused)",
                _ => "",
            };
            anyhow!(
                "{shown} refused the handshake: HTTP {}{}{body}{why}",
                status.as_u16(),
                status
                    .canonical_reason()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            )
        }
        // rustls's refusal of the certificate comes through tokio-rustls as
        // an I/O error.
        WsError::Io(io)
            if matches!(
                io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
                Some(rustls::Error::InvalidCertificate(_))
            ) =>
        {
            anyhow!(
                "TLS handshake with {shown} failed: {io} (signed by a CA the system does not trust? trust it with --ca FILE)"
            )
        }
        WsError::Io(io) => anyhow!("cannot connect to {shown}: {io}"),
        WsError::Url(u) => usage(format!("invalid WebSocket URL {shown:?}: {u}")),
        WsError::Tls(t) => anyhow!("TLS handshake with {shown} failed: {t}"),
        WsError::Protocol(
            tokio_tungstenite::tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(p),
        ) => anyhow!(
            "{shown} accepted none of the subprotocols asked for ({}): {p}",
            subprotocols.join(", ")
        ),
        other => anyhow!("handshake with {shown} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), decode(v))
            })
            .collect()
    }

    fn decode(s: &str) -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .expect("utf8")
            .into_owned()
    }

    fn get<'a>(p: &'a [(String, String)], key: &str) -> &'a str {
        p.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {p:?}"))
    }

    /// 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    #[test]
    fn signed_urls_carry_sigv4_query_parameters() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let url = "wss://abc123.execute-api.eu-west-1.amazonaws.com/dev?room=7";
        let signed = sign_url(url, &creds, "eu-west-1", suite_time()).expect("signs");
        assert!(signed.starts_with("wss://abc123.execute-api.eu-west-1.amazonaws.com/dev?room=7&"));
        let p = params(&signed);
        assert_eq!(get(&p, "room"), "7");
        assert_eq!(get(&p, "X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            get(&p, "X-Amz-Credential"),
            "AKIDEXAMPLE/20150830/eu-west-1/execute-api/aws4_request"
        );
        assert_eq!(get(&p, "X-Amz-Date"), "20150830T123600Z");
        assert_eq!(get(&p, "X-Amz-Expires"), "300");
        assert_eq!(get(&p, "X-Amz-SignedHeaders"), "host");
        let sig = get(&p, "X-Amz-Signature");
        assert_eq!(sig.len(), 64);
        assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()), "{sig}");
        assert!(!p.iter().any(|(k, _)| k == "X-Amz-Security-Token"));
        // The same inputs sign the same; another secret, path or time not.
        assert_eq!(
            sign_url(url, &creds, "eu-west-1", suite_time()).expect("signs"),
            signed
        );
        let other = Credentials::new("AKIDEXAMPLE", "other", None, None, "test");
        let resign = |url: &str, c: &Credentials, t: SystemTime| {
            let s = sign_url(url, c, "eu-west-1", t).expect("signs");
            get(&params(&s), "X-Amz-Signature").to_owned()
        };
        assert_ne!(resign(url, &other, suite_time()), sig);
        assert_ne!(
            resign(
                "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod?room=7",
                &creds,
                suite_time()
            ),
            sig
        );
        assert_ne!(
            resign(url, &creds, suite_time() + Duration::from_secs(1)),
            sig
        );
    }

    #[test]
    fn temporary_credentials_add_their_session_token() {
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("tok+en/=".into()), None, "t");
        let signed =
            sign_url("ws://127.0.0.1:3001/dev", &creds, "us-east-1", suite_time()).expect("signs");
        assert!(
            signed.starts_with("ws://127.0.0.1:3001/dev?X-Amz-"),
            "{signed}"
        );
        let p = params(&signed);
        assert_eq!(get(&p, "X-Amz-Security-Token"), "tok+en/=");
        assert!(signed.contains("tok%2Ben%2F%3D"), "{signed}");
    }

    #[test]
    fn inputs_are_checked_before_connecting() {
        let (n, v) = parse_header("Authorization: Bearer x").expect("header");
        assert_eq!(
            (n.as_str(), v.to_str().expect("ascii")),
            ("authorization", "Bearer x")
        );
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert_eq!(
            parse_query("room=7").expect("query"),
            ("room".to_owned(), "7".to_owned())
        );
        assert_eq!(parse_query("empty=").expect("query").1, "");
        assert!(parse_query("noequals").is_err());
        assert!(parse_query("=7").is_err());
        assert!(parse_ws_url("ws://127.0.0.1:3001/dev").is_ok());
        assert!(parse_ws_url("wss://abc.execute-api.eu-west-1.amazonaws.com/dev").is_ok());
        for bad in [
            "http://127.0.0.1/dev",
            "127.0.0.1:3001/dev",
            "ws://",
            "not a url",
        ] {
            assert!(parse_ws_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_parameters_are_encoded() {
        assert_eq!(
            with_query("ws://h/dev", [("room", "7"), ("user", "ana maría&co")]),
            "ws://h/dev?room=7&user=ana%20mar%C3%ADa%26co"
        );
        assert_eq!(
            with_query("ws://h/dev?a=1", [("b", "2")]),
            "ws://h/dev?a=1&b=2"
        );
        assert_eq!(with_query("ws://h/dev?", [("b", "2")]), "ws://h/dev?b=2");
        assert_eq!(without_query("ws://h/dev?X-Amz-Signature=s"), "ws://h/dev");
    }
}
