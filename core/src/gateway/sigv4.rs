//! SigV4 for the lean path's three requests, cut to what they need: the
//! signing key is derived once per day and credentials (not per request),
//! the canonical request covers `host`, `x-amz-date` and, with session
//! credentials, `x-amz-security-token`, and the path is encoded as the SDK
//! encodes it (the connection id as an HTTP label, then the whole path once
//! more, as AWS verifies non-S3 services). The HMAC and the key derivation
//! are `aws-sigv4`'s own; the tests check every signature against its
//! `sign`.
//!
//! It must not read the clock or the credentials itself: the caller passes
//! the time and the key.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sha2::{Digest, Sha256};

const SERVICE: &str = "execute-api";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SECONDS_PER_DAY: i64 = 86_400;

/// What the SDK escapes in an HTTP label (`aws_smithy_http::label`, its
/// `BASE_SET`): the connection id's `=` and `+` travel as `%3D` and `%2B`.
const LABEL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b':')
    .add(b',')
    .add(b'?')
    .add(b'#')
    .add(b'[')
    .add(b']')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'@')
    .add(b'!')
    .add(b'$')
    .add(b'&')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'^')
    .add(b'`')
    .add(b'\\');
/// The canonical path's second encoding: the same set, `/` kept.
const PATH: &AsciiSet = &LABEL.remove(b'/');

/// A connection id as it travels in the path (borrowed when nothing in it
/// needs escaping).
pub(crate) fn encode_label(id: &str) -> std::borrow::Cow<'_, str> {
    utf8_percent_encode(id, LABEL).into()
}

/// The path as SigV4 signs it for a non-S3 service: encoded once more.
fn canonical_path(wire_path: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(wire_path, PATH)
}

/// Whether SigV4's path normalization would change `wire_path` (a `.` or
/// `..` segment): the lean signer does not normalize, so such a path is
/// signed by `aws-sigv4` in full instead.
pub(crate) fn needs_normalization(wire_path: &str) -> bool {
    wire_path.split('/').any(|s| s == "." || s == "..") || wire_path.contains("//")
}

/// Lowercase hex of SHA-256: the payload hash.
pub(crate) fn payload_hash(body: &[u8]) -> String {
    String::from_utf8_lossy(&hex32(&Sha256::digest(body).into())).into_owned()
}

/// Lowercase hex of a SHA-256, on the stack.
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// HMAC-SHA256 (RFC 2104) under one key, its padded key blocks absorbed
/// once: a signature then costs the message's blocks and the outer one.
#[derive(Clone)]
struct KeyedHmac {
    inner: Sha256,
    outer: Sha256,
}

impl KeyedHmac {
    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let (mut inner, mut outer) = (Sha256::new(), Sha256::new());
        inner.update(block.map(|b| b ^ 0x36));
        outer.update(block.map(|b| b ^ 0x5c));
        Self { inner, outer }
    }

    /// The MAC of the message `parts` make, one after the other.
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// A request's time as SigV4 writes it (`20261203T142053Z`), and its day
/// (days since the Unix epoch, UTC), which picks the signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmzDate {
    pub day: i64,
    pub text: String,
}

impl AmzDate {
    pub fn at(t: SystemTime) -> Self {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        let day = secs.div_euclid(SECONDS_PER_DAY);
        let rem = secs.rem_euclid(SECONDS_PER_DAY);
        let (y, m, d) = civil_from_days(day);
        let text = format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        Self { day, text }
    }

    /// `YYYYMMDD`: the credential scope's date.
    fn date(&self) -> &str {
        &self.text[..8]
    }
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One day's signing material for one set of credentials in one region:
/// the derived key, and the `Authorization` header up to the signature.
#[derive(Clone)]
pub(crate) struct DayKey {
    day: i64,
    mac: KeyedHmac,
    scope: String,
    /// `AWS4-HMAC-SHA256 Credential=…/scope, SignedHeaders=…, Signature=`.
    authorization_prefix: String,
    /// The session token, when the credentials have one (it is signed).
    session_token: Option<HeaderValue>,
}

impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayKey")
            .field("day", &self.day)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why credentials cannot sign: a session token that is no header value.
#[derive(Debug, thiserror::Error)]
#[error("the session token of the AWS credentials is not a valid HTTP header value")]
pub(crate) struct BadToken;

impl DayKey {
    /// Derives the key of `day` (as [`AmzDate::day`]) for `creds` in `region`.
    pub fn derive(creds: &Credentials, region: &str, day: i64) -> Result<Self, BadToken> {
        let midday = UNIX_EPOCH
            + std::time::Duration::from_secs((day * SECONDS_PER_DAY + SECONDS_PER_DAY / 2) as u64);
        let date = AmzDate::at(midday);
        let key = aws_sigv4::sign::v4::generate_signing_key(
            creds.secret_access_key(),
            midday,
            region,
            SERVICE,
        );
        let mac = KeyedHmac::new(key.as_ref());
        let scope = format!("{}/{region}/{SERVICE}/aws4_request", date.date());
        let session_token = creds
            .session_token()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| BadToken)?;
        let signed = if session_token.is_some() {
            "host;x-amz-date;x-amz-security-token"
        } else {
            "host;x-amz-date"
        };
        let authorization_prefix = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature=",
            creds.access_key_id()
        );
        Ok(Self {
            day,
            mac,
            scope,
            authorization_prefix,
            session_token,
        })
    }

    pub fn day(&self) -> i64 {
        self.day
    }

    pub fn session_token(&self) -> Option<&HeaderValue> {
        self.session_token.as_ref()
    }

    /// The `Authorization` header of a request: `method` on `wire_path`
    /// (as sent, the connection id already encoded), to `host`, at `date`
    /// (of this key's day), with a body whose hash is `payload_hash`.
    pub fn authorization(
        &self,
        method: &str,
        wire_path: &str,
        host: &str,
        date: &AmzDate,
        payload_hash: &str,
    ) -> String {
        debug_assert_eq!(date.day, self.day, "a key signs its own day only");
        // Hashed as it is written: no canonical request or string to sign
        // in memory, this runs once per request.
        let token = self
            .session_token
            .as_ref()
            .map(|t| t.to_str().map(str::trim));
        let mut canonical = Sha256::new();
        for part in [method, "\n"] {
            canonical.update(part);
        }
        for part in canonical_path(wire_path) {
            canonical.update(part);
        }
        for part in ["\n\nhost:", host, "\nx-amz-date:", &date.text, "\n"] {
            canonical.update(part);
        }
        if let Some(Ok(token)) = token {
            for part in ["x-amz-security-token:", token, "\n"] {
                canonical.update(part);
            }
        }
        let signed = if token.is_some() {
            "host;x-amz-date;x-amz-security-token"
        } else {
            "host;x-amz-date"
        };
        for part in ["\n", signed, "\n", payload_hash] {
            canonical.update(part);
        }
        let canonical_hash = hex32(&canonical.finalize().into());
        let signature = hex32(&self.mac.sign(&[
            ALGORITHM.as_bytes(),
            b"\n",
            date.text.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &canonical_hash,
        ]));
        let mut out = String::with_capacity(self.authorization_prefix.len() + signature.len());
        out.push_str(&self.authorization_prefix);
        // Hex digits: ASCII.
        out.push_str(std::str::from_utf8(&signature).unwrap_or_default());
        out
    }
}

/// Signs with `aws-sigv4` in full (key derived, path normalized): for the
/// rare path the lean signer does not handle, and the tests' reference.
/// Returns the headers to add (`x-amz-date`, `authorization`, perhaps
/// `x-amz-security-token`).
pub(crate) fn sign_in_full(
    creds: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    host: &str,
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = creds.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = [("host", host)];
    let signable =
        SignableRequest::new(method, url, headers.into_iter(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn dates_are_written_as_sigv4_writes_them() {
        assert_eq!(AmzDate::at(at(0)).text, "19700101T000000Z");
        // 2026-12-03T14:20:53Z
        let d = AmzDate::at(at(1_796_307_653));
        assert_eq!(d.text, "20261203T142053Z");
        assert_eq!(d.day, 1_796_307_653 / 86_400);
        // A leap day and the last second of a year.
        assert_eq!(AmzDate::at(at(951_782_400)).text, "20000229T000000Z");
        assert_eq!(AmzDate::at(at(1_798_761_599)).text, "20261231T235959Z");
        assert_eq!(
            AmzDate::at(at(1_798_761_599)).text,
            aws_smithy_types::DateTime::from_secs(1_798_761_599)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .expect("format")
                .replace(['-', ':'], "")
        );
    }

    #[test]
    fn ids_are_encoded_as_the_sdk_encodes_labels() {
        assert_eq!(encode_label("abc="), "abc%3D");
        assert_eq!(encode_label("a+b/c d"), "a%2Bb%2Fc%20d");
        assert_eq!(encode_label("Zx-_.~9"), "Zx-_.~9");
        assert_eq!(encode_label("é"), "%C3%A9");
        assert_eq!(
            canonical_path("/dev/@connections/abc%3D").to_string(),
            "/dev/%40connections/abc%253D"
        );
    }

    /// Our signature equals `aws-sigv4`'s full `sign` for the same request,
    /// with and without a session token, across a day boundary.
    #[test]
    fn signatures_match_aws_sigv4() {
        let plain = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, None, "t");
        let session = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            Some("IQoJb3JpZ2luX2VjEJ//////////wEaCXVzLWVhc3QtMSJH+token=".to_owned()),
            None,
            "t",
        );
        let cases: [(&str, &str, &[u8]); 5] = [
            ("POST", "abc=", b"hello"),
            ("POST", "Zx+9/y=", &[0, 159, 146, 150]),
            ("GET", "ok-2=", b""),
            ("DELETE", "L0SM9cOFvHcCIhw=", b""),
            ("POST", "é!*", b"{\"a\":[1,2]}"),
        ];
        for creds in [&plain, &session] {
            for secs in [1_796_307_653, 1_798_761_599, 1_798_761_600] {
                let time = at(secs);
                let date = AmzDate::at(time);
                let key = DayKey::derive(creds, "eu-west-1", date.day).expect("key");
                for (method, id, body) in cases {
                    for (host, prefix) in [
                        ("127.0.0.1:3001", "/dev"),
                        ("abc.execute-api.eu-west-1.amazonaws.com", "/prod"),
                        ("ws.example.com", "/api/v1"),
                    ] {
                        let path = format!("{prefix}/@connections/{}", encode_label(id));
                        let ours =
                            key.authorization(method, &path, host, &date, &payload_hash(body));
                        let url = format!("https://{host}{path}");
                        let theirs =
                            sign_in_full(creds, "eu-west-1", method, &url, host, body, time)
                                .expect("sign");
                        let get = |name: &str| {
                            theirs
                                .iter()
                                .find(|(n, _)| n == name)
                                .map(|(_, v)| v.clone())
                        };
                        assert_eq!(Some(ours), get("authorization"), "{method} {path}");
                        assert_eq!(Some(date.text.clone()), get("x-amz-date"));
                        assert_eq!(
                            key.session_token()
                                .map(|t| t.to_str().expect("ascii").to_owned()),
                            get("x-amz-security-token")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dot_segments_are_left_to_the_full_signer() {
        assert!(needs_normalization("/dev/@connections/.."));
        assert!(needs_normalization("/dev/@connections/."));
        assert!(!needs_normalization("/dev/@connections/a.b"));
        assert!(!needs_normalization("/dev/@connections/abc%3D"));
    }
}
