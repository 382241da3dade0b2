//! The lean path: the Management API's three requests straight over
//! [`super::h1`]'s pooled keep-alive HTTP/1.1 connections (plain or TLS),
//! signed by [`super::sigv4`] with the signing key derived once per day,
//! credentials from the SDK configuration's own provider (its chain),
//! cached until shortly before they expire.
//!
//! It answers in the SDK path's terms ([`SdkFailure`]), read from the
//! response the way the SDK reads it (`x-amzn-ErrorType`, then the JSON
//! body's `code`/`__type`; `message`), so the gateway classifies both paths
//! with the same code. No retries here, as on the SDK path: retrying is
//! the engine's decision.

use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use super::h1::H1Client;
use super::sigv4::{self, AmzDate, DayKey};
use super::{ATTEMPT_TIMEOUT, ConnectionInfo, ManagementEndpoint};
use crate::clock::{Clock, system_now_ms};
use crate::sdk_error::SdkFailure;

/// How long loading credentials may take (the SDK's identity cache waits
/// as long).
const CREDENTIALS_LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Credentials without an expiry are asked for again after this long (the
/// SDK's identity cache does the same).
const DEFAULT_CREDENTIALS_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Credentials are renewed this long before they expire.
const CREDENTIALS_BUFFER: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct LeanTransport {
    client: H1Client,
    /// `scheme://authority`, for the rare request signed in full.
    origin: String,
    /// The authority, sent and signed as `host`.
    host: String,
    /// The endpoint's path (`/dev`, `/api/v1`), before `/@connections/…`.
    path_prefix: String,
    region: String,
    signing: Signing,
    clock: Clock,
    /// The last second's `x-amz-date`, written once a second.
    dates: DateCache,
    /// The last payload's hash: a broadcast posts one payload to everyone.
    payload_hashes: PayloadHashCache,
}

/// `AmzDate::at`, formatted once per second.
#[derive(Debug, Default)]
struct DateCache(std::sync::Mutex<Option<(u64, Arc<AmzDate>)>>);

impl DateCache {
    fn at(&self, now: SystemTime) -> Arc<AmzDate> {
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((at, date)) if *at == secs => date.clone(),
            _ => {
                let date = Arc::new(AmzDate::at(now));
                *cached = Some((secs, date.clone()));
                date
            }
        }
    }
}

/// The SHA-256 of the last payload signed, kept with the payload itself:
/// the same `Bytes` (a clone shares the buffer) is the same payload, and
/// holding it keeps its buffer from being reused for another.
#[derive(Debug, Default)]
struct PayloadHashCache(std::sync::Mutex<Option<(Bytes, Arc<str>)>>);

impl PayloadHashCache {
    fn of(&self, body: &Bytes) -> Arc<str> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((payload, hash)) = &*cached
            && payload.as_ptr() == body.as_ptr()
            && payload.len() == body.len()
        {
            return hash.clone();
        }
        let hash: Arc<str> = sigv4::payload_hash(body).into();
        // Empty bodies (GET, DELETE) share a dangling pointer: not kept.
        if !body.is_empty() {
            *cached = Some((body.clone(), hash.clone()));
        }
        hash
    }
}

/// The credentials and today's key, renewed as they age.
#[derive(Debug)]
struct Signing {
    provider: Option<SharedCredentialsProvider>,
    current: RwLock<Option<Arc<Current>>>,
    /// One load at a time: concurrent requests wait for it, not repeat it.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Current {
    credentials: Credentials,
    /// Asked for again from then on.
    renew_at: SystemTime,
    key: DayKey,
}

impl Current {
    fn usable(&self, now: SystemTime, day: i64) -> bool {
        now < self.renew_at && self.key.day() == day
    }
}

/// rustls with the system's roots (as the SDK's client loads them, honouring
/// `SSL_CERT_FILE`), loaded once per process and only for https endpoints.
static TLS_WITH_NATIVE_ROOTS: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(
            "native root CA certificate loading errors: {:?}",
            found.errors
        );
    }
    let (valid, _) = roots.add_parsable_certificates(found.certs);
    if valid == 0 {
        tracing::warn!("no native root CA certificates found");
    }
    tls_config(roots)
});

fn tls_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // aws-lc-rs supports the default versions; never reached.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}

impl LeanTransport {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: &ManagementEndpoint,
        region: String,
        clock: Clock,
    ) -> Result<Self, String> {
        let uri: http::Uri = endpoint
            .url()
            .parse()
            .map_err(|e| format!("endpoint {endpoint} is not a URI: {e}"))?;
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let authority = uri
            .authority()
            .ok_or_else(|| format!("endpoint {endpoint} has no host"))?;
        let host = authority.as_str().to_owned();
        let tls = match scheme.as_str() {
            "https" => Some(TLS_WITH_NATIVE_ROOTS.clone()),
            "http" => None,
            other => {
                return Err(format!(
                    "endpoint {endpoint}: {other} is neither http nor https"
                ));
            }
        };
        let port = authority
            .port_u16()
            .unwrap_or(if tls.is_some() { 443 } else { 80 });
        let client = H1Client::new(authority.host(), port, tls)
            .map_err(|e| format!("endpoint {endpoint}: {e}"))?;
        Ok(Self {
            client,
            origin: format!("{scheme}://{host}"),
            host,
            path_prefix: uri.path().trim_end_matches('/').to_owned(),
            region,
            signing: Signing {
                provider: sdk.credentials_provider(),
                current: RwLock::new(None),
                loading: tokio::sync::Mutex::new(()),
            },
            clock,
            dates: DateCache::default(),
            payload_hashes: PayloadHashCache::default(),
        })
    }

    pub async fn post(&self, connection_id: &str, data: Bytes) -> Result<(), SdkFailure> {
        self.call(Method::POST, connection_id, data).await.map(drop)
    }

    pub async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, SdkFailure> {
        let body = self.call(Method::GET, connection_id, Bytes::new()).await?;
        read_connection(&body)
    }

    pub async fn delete(&self, connection_id: &str) -> Result<(), SdkFailure> {
        self.call(Method::DELETE, connection_id, Bytes::new())
            .await
            .map(drop)
    }

    /// One signed request; a 2xx answer's body, or the failure.
    async fn call(
        &self,
        method: Method,
        connection_id: &str,
        body: Bytes,
    ) -> Result<Bytes, SdkFailure> {
        let now = SystemTime::now();
        let date = self.dates.at(now);
        let current = self.signing.current(now, date.day, &self.region).await?;
        let label = sigv4::encode_label(connection_id);
        let mut path = String::with_capacity(self.path_prefix.len() + 14 + label.len());
        for part in [&self.path_prefix, "/@connections/", &label] {
            path.push_str(part);
        }
        // Signed here, written below: the head as the signer saw it.
        let full: Vec<(String, String)>;
        let authorization: String;
        let mut signed: Vec<(&str, &str)> = Vec::with_capacity(3);
        if sigv4::needs_normalization(&path) {
            let url = format!("{}{path}", self.origin);
            full = sigv4::sign_in_full(
                &current.credentials,
                &self.region,
                method.as_str(),
                &url,
                &self.host,
                &body,
                now,
            )
            .map_err(SdkFailure::Other)?;
            signed.extend(full.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        } else {
            let hash = self.payload_hashes.of(&body);
            authorization =
                current
                    .key
                    .authorization(method.as_str(), &path, &self.host, &date, &hash);
            signed.push(("x-amz-date", &date.text));
            signed.push(("authorization", &authorization));
            if let Some(token) = current.key.session_token()
                && let Ok(token) = token.to_str()
            {
                signed.push(("x-amz-security-token", token));
            }
        }
        let with_length = !body.is_empty() || method == Method::POST;
        let write = |out: &mut Vec<u8>| {
            for part in [
                method.as_str(),
                " ",
                &path,
                " HTTP/1.1\r\nhost: ",
                &self.host,
            ] {
                out.extend_from_slice(part.as_bytes());
            }
            for (name, value) in &signed {
                for part in ["\r\n", name, ": ", value] {
                    out.extend_from_slice(part.as_bytes());
                }
            }
            if with_length {
                out.extend_from_slice(b"\r\ncontent-length: ");
                write_decimal(out, body.len());
            }
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&body);
        };

        let answer = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.send(write)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(SdkFailure::Timeout(format!(
                    "no answer within {ATTEMPT_TIMEOUT:?}"
                )));
            }
        };
        if let Some(date) = &answer.date {
            self.clock.observe_http_date(date, system_now_ms());
        }
        if (200..300).contains(&answer.status) {
            Ok(answer.body.into())
        } else {
            Err(service_failure(
                answer.status,
                answer.error_type.as_deref(),
                &answer.body,
            ))
        }
    }
}

/// `n` in decimal, without `format!`.
fn write_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

impl Signing {
    /// Credentials and key usable at `now` (of `day`), loading or deriving
    /// them when the cached ones aged.
    async fn current(
        &self,
        now: SystemTime,
        day: i64,
        region: &str,
    ) -> Result<Arc<Current>, SdkFailure> {
        if let Some(c) = self.cached()
            && c.usable(now, day)
        {
            return Ok(c);
        }
        let _loading = self.loading.lock().await;
        let cached = self.cached();
        if let Some(c) = &cached
            && c.usable(now, day)
        {
            return Ok(c.clone());
        }
        let (credentials, renew_at) = match cached {
            // Still good: a new day only needs a new key.
            Some(c) if now < c.renew_at => (c.credentials.clone(), c.renew_at),
            _ => self.load(now).await?,
        };
        let key = DayKey::derive(&credentials, region, day)
            .map_err(|e| SdkFailure::Other(e.to_string()))?;
        let current = Arc::new(Current {
            credentials,
            renew_at,
            key,
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(current.clone());
        Ok(current)
    }

    fn cached(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn load(&self, now: SystemTime) -> Result<(Credentials, SystemTime), SdkFailure> {
        let Some(provider) = &self.provider else {
            return Err(SdkFailure::NoCredentials);
        };
        let loaded =
            tokio::time::timeout(CREDENTIALS_LOAD_TIMEOUT, provider.provide_credentials()).await;
        match loaded {
            Ok(Ok(credentials)) => {
                let expiry = credentials
                    .expiry()
                    .unwrap_or(now + DEFAULT_CREDENTIALS_LIFETIME);
                let renew_at = expiry
                    .checked_sub(CREDENTIALS_BUFFER)
                    .unwrap_or(expiry)
                    .max(now);
                Ok((credentials, renew_at))
            }
            Ok(Err(e)) => {
                tracing::debug!("credentials: {}", crate::sdk_error::chain(&e));
                Err(SdkFailure::NoCredentials)
            }
            Err(_) => {
                tracing::debug!("credentials: not loaded within {CREDENTIALS_LOAD_TIMEOUT:?}");
                Err(SdkFailure::NoCredentials)
            }
        }
    }
}

/// An error answer, read as the SDK's restJson1 parser reads it: the code
/// from `x-amzn-ErrorType`, else the body's `code` or `__type`, cleaned of
/// a namespace and a trailing `:…`; the message from `message`, `Message`
/// or `errorMessage`. A body that is not JSON gives neither (the SDK's
/// "unhandled" error), and a missing message becomes the body's first 300
/// characters, as `sdk_error::classify` words it.
pub(super) fn service_failure(status: u16, error_type: Option<&str>, body: &[u8]) -> SdkFailure {
    let parsed: Option<serde_json::Value> = if body.is_empty() {
        Some(serde_json::Value::Object(Default::default()))
    } else {
        serde_json::from_slice(body).ok()
    };
    let (code, message) = match &parsed {
        None => (None, None),
        Some(value) => {
            let field = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| value.get(*n).and_then(|v| v.as_str()))
                    .map(str::to_owned)
            };
            let code = error_type
                .map(str::to_owned)
                .or_else(|| field(&["code"]))
                .or_else(|| field(&["__type"]));
            (
                code.map(|c| sanitize_error_code(&c).to_owned()),
                field(&["message", "Message", "errorMessage"]),
            )
        }
    };
    let message = message.unwrap_or_else(|| {
        let body = String::from_utf8_lossy(body);
        let words = body.split_whitespace().collect::<Vec<_>>().join(" ");
        if words.is_empty() {
            format!("HTTP {status}")
        } else {
            format!(
                "HTTP {status}: {}",
                words.chars().take(300).collect::<String>()
            )
        }
    });
    SdkFailure::Service {
        status,
        code,
        message,
    }
}

fn sanitize_error_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    match code.find('#') {
        Some(i) => &code[i + 1..],
        None => code,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Got {
    connected_at: Option<String>,
    last_active_at: Option<String>,
    identity: Option<GotIdentity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GotIdentity {
    source_ip: Option<String>,
    user_agent: Option<String>,
}

/// GetConnection's answer; its times as the SDK reads them (RFC 3339,
/// offsets allowed).
fn read_connection(body: &[u8]) -> Result<ConnectionInfo, SdkFailure> {
    let body = if body.is_empty() { b"{}" } else { body };
    let got: Got = serde_json::from_slice(body)
        .map_err(|e| SdkFailure::Unreachable(format!("unreadable GetConnection answer: {e}")))?;
    let millis = |t: Option<String>| -> Result<Option<i64>, SdkFailure> {
        let Some(t) = t else { return Ok(None) };
        let parsed = aws_smithy_types::DateTime::from_str(
            &t,
            aws_smithy_types::date_time::Format::DateTimeWithOffset,
        )
        .map_err(|e| {
            SdkFailure::Unreachable(format!("unreadable GetConnection time {t:?}: {e}"))
        })?;
        Ok(parsed.to_millis().ok())
    };
    let identity = got.identity;
    Ok(ConnectionInfo {
        connected_at: millis(got.connected_at)?,
        last_active_at: millis(got.last_active_at)?,
        source_ip: identity.as_ref().and_then(|i| i.source_ip.clone()),
        user_agent: identity.and_then(|i| i.user_agent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, header: Option<&str>, body: &str) -> (u16, Option<String>, String) {
        match service_failure(status, header, body.as_bytes()) {
            SdkFailure::Service {
                status,
                code,
                message,
            } => (status, code, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_payloads_hash_is_reused_only_for_that_payload() {
        let cache = PayloadHashCache::default();
        let hello = Bytes::from(b"hello".to_vec());
        let first = cache.of(&hello);
        assert_eq!(&*first, sigv4::payload_hash(b"hello"));
        // A clone shares the buffer: the same hash, not computed again.
        assert!(Arc::ptr_eq(&first, &cache.of(&hello.clone())));
        // Another payload, even of the same length, is hashed.
        let world = Bytes::from(b"world".to_vec());
        assert_eq!(&*cache.of(&world), sigv4::payload_hash(b"world"));
        assert_eq!(&*cache.of(&Bytes::new()), sigv4::payload_hash(b""));
        assert_eq!(&*cache.of(&hello.slice(1..)), sigv4::payload_hash(b"ello"));
    }

    #[test]
    fn the_date_is_written_once_a_second() {
        let cache = DateCache::default();
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_796_300_000_250);
        let a = cache.at(t);
        assert!(Arc::ptr_eq(&a, &cache.at(t + Duration::from_millis(700))));
        let b = cache.at(t + Duration::from_millis(800));
        assert_eq!(*b, AmzDate::at(t + Duration::from_secs(1)));
        assert_ne!(a.text, b.text);
    }

    #[test]
    fn error_answers_read_as_the_sdk_reads_them() {
        assert_eq!(
            failure(410, Some("GoneException"), r#"{"message":""}"#),
            (410, Some("GoneException".into()), String::new())
        );
        assert_eq!(
            failure(
                429,
                Some("LimitExceededException:http://internal.amazon.com/"),
                r#"{"message":"Rate exceeded"}"#
            ),
            (
                429,
                Some("LimitExceededException".into()),
                "Rate exceeded".into()
            )
        );
        assert_eq!(
            failure(
                403,
                None,
                r#"{"__type":"com.amazon#ForbiddenException","Message":"no"}"#
            ),
            (403, Some("ForbiddenException".into()), "no".into())
        );
        assert_eq!(
            failure(400, None, r#"{"code":"BadRequest","__type":"Other"}"#),
            (
                400,
                Some("BadRequest".into()),
                "HTTP 400: {\"code\":\"BadRequest\",\"__type\":\"Other\"}".into()
            )
        );
        // Not JSON: neither code nor message, whatever the header says.
        assert_eq!(
            failure(502, Some("X"), "<html>Bad   gateway</html>"),
            (502, None, "HTTP 502: <html>Bad gateway</html>".into())
        );
        assert_eq!(failure(500, None, ""), (500, None, "HTTP 500".into()));
    }

    #[test]
    fn get_connection_answers_are_read_with_their_offsets() {
        let info = read_connection(
            br#"{"connectedAt":"2026-11-25T08:00:00.000Z","lastActiveAt":"2026-11-25T09:05:30.250+01:00","identity":{"sourceIp":"203.0.113.7","userAgent":"ua/1"}}"#,
        )
        .expect("read");
        assert_eq!(info.connected_at, Some(1_795_593_600_000));
        assert_eq!(info.last_active_at, Some(1_795_593_930_250));
        assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(info.user_agent.as_deref(), Some("ua/1"));
        let empty = read_connection(b"").expect("empty");
        assert_eq!(empty.connected_at, None);
        assert!(matches!(
            read_connection(b"{\"connectedAt\":\"yesterday\"}"),
            Err(SdkFailure::Unreachable(_))
        ));
    }
}
