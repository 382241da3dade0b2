//! AWS Signature Version 4 verification for the emulated Management API.
//!
//! Owns the decision "would AWS accept this request's signature?" for one
//! access key, one region and one signing name (`execute-api`). It parses
//! what the client presented (the `Authorization` header, or presigned
//! `X-Amz-*` query parameters), checks key, credential scope and clock, and
//! then recomputes the signature with the `aws-sigv4` crate, the Rust SDK's
//! own signer, set up the way AWS verifies non-S3 services: the received
//! path is normalized and percent-encoded once more (`abc%3D` is signed as
//! `abc%253D`), and exactly the headers the client listed are signed.
//!
//! It must not decode or route the path, read the clock (the caller passes
//! `now`), log secrets, or panic: every bad input is a [`SigV4Error`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningInstructions, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

use crate::{dates, percent};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The longest a presigned request may stay valid (AWS's limit: one week).
const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;
/// How much of a client-supplied string an error message quotes.
const QUOTE_LIMIT: usize = 80;

/// The credentials and scope the emulator accepts.
///
/// Accepts requests signed in the `Authorization` header and presigned URLs
/// (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query). The request time
/// must come from `X-Amz-Date` (header or query parameter), and the header
/// must be signed: every AWS SDK does so. Signing with only a `Date` header,
/// which AWS also allows, is answered with [`SigV4Error::Malformed`].
#[derive(Clone)]
pub struct Verifier {
    /// The one access key id the emulator knows; any other is unknown.
    access_key_id: String,
    /// Recomputes the expected signature; never printed (`Debug` redacts it).
    secret_access_key: String,
    /// The region the credential scope must name.
    region: String,
    /// The signing name the credential scope must name (`execute-api`).
    service: String,
    /// How far the request time may be from `now`, either way (AWS: 15 min).
    max_skew: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("max_skew", &self.max_skew)
            .finish()
    }
}

/// Why a request's signature was refused. The messages follow AWS's
/// wording, since they reach the user through the SDK's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query parameters.
    #[error("Missing Authentication Token")]
    Missing,
    /// The signature is there but unusable; the message says what is wrong.
    #[error("{0}")]
    Malformed(String),
    /// The credential names an access key id other than the emulator's.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The credential scope names another region.
    #[error(
        "Credential should be scoped to a valid region, not '{got}' \
         (this endpoint accepts '{expected}')."
    )]
    WrongRegion { expected: String, got: String },
    /// The credential scope names another signing name (service).
    #[error("Credential should be scoped to correct service: '{expected}', not '{got}'.")]
    WrongService { expected: String, got: String },
    /// The credential scope's day is not the day of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
         from HTTP: '{scope}' != '{request_day}', from '{request_time}'."
    )]
    WrongScopeDate {
        scope: String,
        request_day: String,
        request_time: String,
    },
    /// The request was signed too long ago (or its presigned URL expired).
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {window})")]
    Expired {
        signed: String,
        earliest: String,
        now: String,
        window: String,
    },
    /// The request claims to be signed too far in the future.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + {window})")]
    NotYetCurrent {
        signed: String,
        latest: String,
        now: String,
        window: String,
    },
    /// Everything parsed, but the signature is not the one the emulator's
    /// secret gives for this request.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    Mismatch,
}

impl SigV4Error {
    /// The `x-amzn-ErrorType` AWS answers this with (always status 403).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Malformed(_) => "IncompleteSignatureException",
            Self::UnknownAccessKey => "UnrecognizedClientException",
            Self::WrongRegion { .. }
            | Self::WrongService { .. }
            | Self::WrongScopeDate { .. }
            | Self::Expired { .. }
            | Self::NotYetCurrent { .. }
            | Self::Mismatch => "InvalidSignatureException",
        }
    }
}

impl Verifier {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            region: region.into(),
            service: "execute-api".into(),
            max_skew: Duration::from_secs(15 * 60),
        }
    }

    /// The same verifier for another signing name (AWS's published test
    /// suite signs for `service`).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Verifies one request. `uri` is the raw request-target as received
    /// (path and optional query, still percent-encoded as on the wire);
    /// `headers` are the received headers; `body` the full body; `now` the
    /// current time.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SigV4Error> {
        let presented = self.presented(uri, headers, now)?;
        let expected = self.expected_signature(method, uri, headers, body, &presented)?;
        if bool::from(expected.as_bytes().ct_eq(presented.signature.as_bytes())) {
            Ok(())
        } else {
            Err(SigV4Error::Mismatch)
        }
    }

    /// Everything [`Verifier::verify`] checks before it needs the body: a
    /// signature is present and well-formed, for the emulator's access key,
    /// region and signing name, at a time within the clock window. Lets the
    /// caller refuse an unsigned request before reading its body.
    pub fn precheck(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<(), SigV4Error> {
        self.presented(uri, headers, now).map(drop)
    }

    fn presented(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<Presented, SigV4Error> {
        let presented = Presented::from_request(uri, headers)?;
        if presented.credential.access_key_id != self.access_key_id {
            return Err(SigV4Error::UnknownAccessKey);
        }
        self.check_scope(&presented)?;
        self.check_time(&presented, now)?;
        Ok(presented)
    }

    fn check_scope(&self, p: &Presented) -> Result<(), SigV4Error> {
        let c = &p.credential;
        let request_day = p.amz_date.get(..8).unwrap_or_default();
        if c.date != request_day {
            return Err(SigV4Error::WrongScopeDate {
                scope: quote(&c.date),
                request_day: request_day.to_owned(),
                request_time: p.amz_date.clone(),
            });
        }
        if c.region != self.region {
            return Err(SigV4Error::WrongRegion {
                expected: self.region.clone(),
                got: quote(&c.region),
            });
        }
        if c.service != self.service {
            return Err(SigV4Error::WrongService {
                expected: self.service.clone(),
                got: quote(&c.service),
            });
        }
        Ok(())
    }

    /// Header signatures live `max_skew` around their time; presigned URLs
    /// from their time until it plus `X-Amz-Expires`.
    fn check_time(&self, p: &Presented, now: SystemTime) -> Result<(), SigV4Error> {
        let signed = unix_seconds(p.time);
        let now = unix_seconds(now);
        let skew = i64::try_from(self.max_skew.as_secs()).unwrap_or(i64::MAX);
        let lifetime = match &p.location {
            Location::Header => self.max_skew,
            Location::Query { expires, .. } => *expires,
        };
        let lifetime_secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        let earliest = now.saturating_sub(lifetime_secs);
        if signed < earliest {
            return Err(SigV4Error::Expired {
                signed: p.amz_date.clone(),
                earliest: dates::amz_date(earliest),
                now: dates::amz_date(now),
                window: describe_window(lifetime),
            });
        }
        let latest = now.saturating_add(skew);
        if signed > latest {
            return Err(SigV4Error::NotYetCurrent {
                signed: p.amz_date.clone(),
                latest: dates::amz_date(latest),
                now: dates::amz_date(now),
                window: describe_window(self.max_skew),
            });
        }
        Ok(())
    }

    /// Signs the received request again, as the client should have, with
    /// the emulator's secret, and returns the hex signature.
    fn expected_signature(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        p: &Presented,
    ) -> Result<String, SigV4Error> {
        let mut signed = Vec::with_capacity(p.signed_headers.len() + 1);
        for name in &p.signed_headers {
            let before = signed.len();
            for value in headers.get_all(name.as_str()) {
                let value = value.to_str().map_err(|_| {
                    SigV4Error::Malformed(format!(
                        "the value of signed header '{name}' is not printable ASCII"
                    ))
                })?;
                signed.push((name.as_str(), value));
            }
            if signed.len() == before {
                // HTTP/2 carries the host as `:authority`, which lands in the URI.
                match uri.authority() {
                    Some(authority) if name == "host" => signed.push(("host", authority.as_str())),
                    _ => {
                        return Err(SigV4Error::Malformed(format!(
                            "signed header '{name}' is not in the request"
                        )));
                    }
                }
            }
        }

        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        // Sign exactly what the client listed, nothing dropped.
        settings.excluded_headers = None;
        let target = match &p.location {
            Location::Header => {
                settings.signature_location = SignatureLocation::Headers;
                uri.path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_owned()
            }
            Location::Query {
                expires,
                unsigned_query,
            } => {
                // The signer adds the X-Amz-* parameters back itself.
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(*expires);
                if unsigned_query.is_empty() {
                    uri.path().to_owned()
                } else {
                    format!("{}?{unsigned_query}", uri.path())
                }
            }
        };
        let payload = match headers.get(X_AMZ_CONTENT_SHA256) {
            Some(v) if v.as_bytes() == UNSIGNED_PAYLOAD.as_bytes() => SignableBody::UnsignedPayload,
            _ => SignableBody::Bytes(body),
        };
        let cannot_sign = |e: &dyn fmt::Display| {
            SigV4Error::Malformed(format!("the request cannot be canonicalized: {e}"))
        };

        let identity: Identity = Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            None,
            None,
            "wsadmin-emulator",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(p.time)
            .settings(settings)
            .build()
            .map_err(|e| cannot_sign(&e))?
            .into();
        let request = SignableRequest::new(method.as_str(), target, signed.into_iter(), payload)
            .map_err(|e| cannot_sign(&e))?;
        let (instructions, signature) = sign(request, &params)
            .map_err(|e| cannot_sign(&e))?
            .into_parts();

        // Were the headers the signer covered the ones the client listed?
        // If not, a mismatch would be our doing, not the client's: say so.
        let listed = p.signed_headers.join(";");
        match signed_headers_of(&instructions) {
            Some(ours) if ours == listed => Ok(signature),
            ours => Err(SigV4Error::Malformed(format!(
                "SignedHeaders '{}' cannot be verified by this emulator (it signs '{}')",
                quote(&listed),
                ours.unwrap_or_default()
            ))),
        }
    }
}

/// The `SignedHeaders` the signer used, read back from its output.
fn signed_headers_of(instructions: &SigningInstructions) -> Option<String> {
    if let Some((_, v)) = instructions
        .params()
        .iter()
        .find(|(k, _)| *k == "X-Amz-SignedHeaders")
    {
        return Some(v.to_string());
    }
    let (_, authorization) = instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?;
    let rest = authorization.split_once("SignedHeaders=")?.1;
    Some(rest.split(',').next().unwrap_or_default().trim().to_owned())
}

/// The signature as the client presented it: parsed, not yet trusted.
#[derive(Debug)]
struct Presented {
    credential: Credential,
    /// Lowercase, sorted, unique, and including `host`.
    signed_headers: Vec<String>,
    signature: String,
    /// `YYYYMMDDTHHMMSSZ`, exactly as sent (and valid).
    amz_date: String,
    /// `amz_date` as a time.
    time: SystemTime,
    location: Location,
}

#[derive(Debug)]
enum Location {
    /// `Authorization` header; the time is the `X-Amz-Date` header.
    Header,
    /// Presigned URL.
    Query {
        expires: Duration,
        /// The received query without the X-Amz-* signing parameters, still
        /// encoded as received.
        unsigned_query: String,
    },
}

#[derive(Debug)]
struct Credential {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

impl Presented {
    fn from_request(uri: &Uri, headers: &HeaderMap) -> Result<Self, SigV4Error> {
        let query = QueryAuth::parse(uri.query().unwrap_or_default())?;
        let mut authorization = headers.get_all(http::header::AUTHORIZATION).iter();
        let header = authorization.next();
        if authorization.next().is_some() {
            return Err(malformed(
                "the request has more than one Authorization header",
            ));
        }
        match (header, query) {
            (None, None) => Err(SigV4Error::Missing),
            (Some(_), Some(_)) => Err(malformed(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be specified",
            )),
            (Some(value), None) => {
                let value = value
                    .to_str()
                    .map_err(|_| malformed("the Authorization header is not printable ASCII"))?;
                Self::from_header(value, headers)
            }
            (None, Some(query)) => query.into_presented(),
        }
    }

    fn from_header(authorization: &str, headers: &HeaderMap) -> Result<Self, SigV4Error> {
        let authorization = authorization.trim();
        let (scheme, rest) = authorization
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((authorization, ""));
        if scheme != ALGORITHM {
            return Err(SigV4Error::Malformed(format!(
                "unsupported authorization scheme '{}': this endpoint accepts only \
                 {ALGORITHM} (AWS Signature Version 4)",
                quote(scheme)
            )));
        }
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(SigV4Error::Malformed(format!(
                    "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'",
                    quote(part)
                )));
            };
            let slot = match key.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => continue,
            };
            if slot.replace(value.trim()).is_some() {
                return Err(SigV4Error::Malformed(format!(
                    "Authorization header has '{}' more than once",
                    key.trim()
                )));
            }
        }
        let missing: String = [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ]
        .iter()
        .filter(|(_, v)| v.is_none_or(str::is_empty))
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter. "))
        .collect();
        let (Some(credential), Some(signed_headers), Some(signature), true) =
            (credential, signed_headers, signature, missing.is_empty())
        else {
            return Err(SigV4Error::Malformed(missing.trim_end().to_owned()));
        };

        let mut dates = headers.get_all(X_AMZ_DATE).iter();
        let amz_date = match (dates.next(), dates.next()) {
            (Some(v), None) => v
                .to_str()
                .map_err(|_| malformed("the X-Amz-Date header is not printable ASCII"))?,
            (Some(_), Some(_)) => {
                return Err(malformed("the request has more than one X-Amz-Date header"));
            }
            (None, _) if headers.contains_key(http::header::DATE) => {
                return Err(malformed(
                    "this endpoint needs an X-Amz-Date header: signing with only a Date \
                     header is not supported",
                ));
            }
            (None, _) => {
                return Err(malformed(
                    "Authorization header requires existence of either a 'X-Amz-Date' or \
                     a 'Date' header.",
                ));
            }
        };
        let signed_headers = parse_signed_headers(signed_headers)?;
        if !signed_headers.iter().any(|h| h == X_AMZ_DATE) {
            return Err(malformed(
                "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        Ok(Self {
            credential: parse_credential(credential)?,
            signed_headers,
            signature: signature.to_owned(),
            time: parse_amz_date(amz_date)?,
            amz_date: amz_date.to_owned(),
            location: Location::Header,
        })
    }
}

/// The presigned-URL parameters of a query, decoded.
#[derive(Debug, Default)]
struct QueryAuth {
    algorithm: Option<String>,
    credential: Option<String>,
    date: Option<String>,
    expires: Option<String>,
    signed_headers: Option<String>,
    signature: Option<String>,
    unsigned_query: Vec<String>,
}

impl QueryAuth {
    /// `None` when the query has none of the signing parameters.
    fn parse(query: &str) -> Result<Option<Self>, SigV4Error> {
        let mut auth = Self::default();
        let mut any = false;
        for pair in query.split('&') {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent::decode(raw_key).ok();
            let slot = match key.as_deref() {
                Some("X-Amz-Algorithm") => &mut auth.algorithm,
                Some("X-Amz-Credential") => &mut auth.credential,
                Some("X-Amz-Date") => &mut auth.date,
                Some("X-Amz-Expires") => &mut auth.expires,
                Some("X-Amz-SignedHeaders") => &mut auth.signed_headers,
                Some("X-Amz-Signature") => &mut auth.signature,
                _ => {
                    if !pair.is_empty() {
                        auth.unsigned_query.push(pair.to_owned());
                    }
                    continue;
                }
            };
            any = true;
            let value = percent::decode(raw_value).map_err(|_| {
                SigV4Error::Malformed(format!(
                    "query parameter '{}' is not valid percent-encoded UTF-8",
                    quote(raw_key)
                ))
            })?;
            if slot.replace(value.into_owned()).is_some() {
                return Err(SigV4Error::Malformed(format!(
                    "query parameter '{}' appears more than once",
                    quote(raw_key)
                )));
            }
        }
        Ok(any.then_some(auth))
    }

    fn into_presented(self) -> Result<Presented, SigV4Error> {
        let (
            Some(algorithm),
            Some(credential),
            Some(date),
            Some(expires),
            Some(signed_headers),
            Some(signature),
        ) = (
            self.algorithm,
            self.credential,
            self.date,
            self.expires,
            self.signed_headers,
            self.signature,
        )
        else {
            return Err(malformed(
                "AWS query-string parameters must include 'X-Amz-Algorithm', \
                 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', \
                 'X-Amz-SignedHeaders', 'X-Amz-Expires'. Re-examine the query-string parameters.",
            ));
        };
        if algorithm != ALGORITHM {
            return Err(SigV4Error::Malformed(format!(
                "X-Amz-Algorithm only supports '{ALGORITHM}', not '{}'",
                quote(&algorithm)
            )));
        }
        let expires_secs = expires
            .parse::<u64>()
            .ok()
            .filter(|secs| secs.to_string() == expires)
            .ok_or_else(|| {
                SigV4Error::Malformed(format!(
                    "X-Amz-Expires should be a number of seconds, not '{}'",
                    quote(&expires)
                ))
            })?;
        if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
            return Err(SigV4Error::Malformed(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is \
                 {MAX_PRESIGNED_EXPIRES_SECS}, not {expires_secs}"
            )));
        }
        Ok(Presented {
            credential: parse_credential(&credential)?,
            signed_headers: parse_signed_headers(&signed_headers)?,
            signature,
            time: parse_amz_date(&date)?,
            amz_date: date,
            location: Location::Query {
                expires: Duration::from_secs(expires_secs),
                unsigned_query: self.unsigned_query.join("&"),
            },
        })
    }
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<Credential, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(SigV4Error::Malformed(format!(
            "Credential '{}' is malformed: expected \
             <access key id>/<YYYYMMDD>/<region>/<service>/{TERMINATOR}",
            quote(credential)
        )));
    };
    if terminator != TERMINATOR {
        return Err(SigV4Error::Malformed(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            quote(terminator)
        )));
    }
    Ok(Credential {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// `host;x-amz-date`: lowercase header names, sorted, unique, with `host`.
fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<&str> = list.split(';').collect();
    for name in &names {
        let valid = !name.is_empty()
            && !name.bytes().any(|b| b.is_ascii_uppercase())
            && http::HeaderName::from_bytes(name.as_bytes()).is_ok();
        if !valid {
            return Err(SigV4Error::Malformed(format!(
                "SignedHeaders '{}' must be lowercase header names separated by ';'",
                quote(list)
            )));
        }
    }
    if names.windows(2).any(|w| w[0] >= w[1]) {
        return Err(SigV4Error::Malformed(format!(
            "SignedHeaders '{}' must be sorted and without duplicates",
            quote(list)
        )));
    }
    if !names.contains(&"host") {
        return Err(malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(names.into_iter().map(str::to_owned).collect())
}

/// `X-Amz-Date` as a time: [`dates::parse_amz_date`], or AWS's refusal.
fn parse_amz_date(text: &str) -> Result<SystemTime, SigV4Error> {
    dates::parse_amz_date(text).ok_or_else(|| {
        SigV4Error::Malformed(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. \
             Expected YYYYMMDD'T'HHMMSS'Z', e.g. 20261125T080000Z",
            quote(text)
        ))
    })
}

/// Whole seconds since the Unix epoch (negative before it), saturating.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            // Round toward the past, like the clock's second would.
            -whole.saturating_add(i64::from(d.subsec_nanos() > 0))
        }
    }
}

/// `15 min.` / `900 sec.`, as AWS words its clock-skew messages.
fn describe_window(window: Duration) -> String {
    let secs = window.as_secs();
    if secs.is_multiple_of(60) {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

fn malformed(message: &str) -> SigV4Error {
    SigV4Error::Malformed(message.to_owned())
}

/// A client-supplied string, cut short enough to quote in an error.
fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_LIMIT {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(QUOTE_LIMIT).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(amz_date: &str) -> SystemTime {
        parse_amz_date(amz_date).expect("test date is valid")
    }

    #[test]
    fn amz_dates_round_trip() {
        for text in [
            "19700101T000000Z",
            "20240229T235959Z",
            "20261125T085307Z",
            "00000101T000000Z",
            "99991231T235959Z",
            "19691231T235959Z",
        ] {
            assert_eq!(dates::amz_date(unix_seconds(at(text))), text);
        }
        assert_eq!(unix_seconds(at("20261125T080000Z")), 1_795_593_600);
        assert!(parse_amz_date("20250229T000000Z").is_err());
        assert_eq!(describe_window(Duration::from_secs(3_601)), "3601 sec.");
    }
}
