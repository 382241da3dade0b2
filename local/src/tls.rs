//! The local stack's certificates: a certificate authority made once per
//! directory and kept (so a user trusts it once: `NODE_EXTRA_CA_CERTS`,
//! `AWS_CA_BUNDLE`, `SSL_CERT_FILE`, a browser), and a server certificate
//! for `localhost` and `127.0.0.1` issued by it at every start.
//!
//! Files, all PEM, in the directory ([`default_dir`]: `tls/` beside the
//! state file): [`CA_FILE`] (public), [`CA_KEY_FILE`] (mode 0600),
//! [`CERT_FILE`] and [`KEY_FILE`] (0600, rewritten at every start, for
//! other tools to serve with). The server certificate is not reused: a
//! new one at each start never expires under a long-lived CA.
//!
//! rcgen signs with aws-lc-rs, the crypto the SDK's rustls already links
//! (ring is in the lock but built by nothing). The emulator sees only the
//! rustls [`ServerConfig`] made here.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use wsadmin_core::local::LocalStackInfo;

/// The CA's certificate: what clients trust.
pub const CA_FILE: &str = "ca.pem";
/// The CA's private key (0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The server certificate of this start.
pub const CERT_FILE: &str = "localhost.pem";
/// Its private key (0600).
pub const KEY_FILE: &str = "localhost-key.pem";

/// The CA's name, completed by its key's identifier: a server certificate
/// names its issuer by it, so the CA is re-created from its kept key alone,
/// never parsed; and two CAs (two directories, or one deleted and made
/// again) never share a name a client would confuse them by.
const CA_NAME: &str = "wsstack local CA";
const CA_ORGANIZATION: &str = "wsadmin (wsstack local, this machine only)";
/// The names the server certificate is valid for.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Validity: the CA long, the server certificate within what browsers
/// accept (398 days).
const CA_DAYS: i64 = 10 * 365;
const SERVER_DAYS: i64 = 397;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot {what} {}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a private key this stack made (delete {} to make a new CA, which clients must then trust again)",
        path.display(), dir.display()
    )]
    CaKey {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot make the local certificates")]
    Make(#[from] rcgen::Error),
    #[error("cannot use the local server certificate")]
    Rustls(#[from] rustls::Error),
}

/// `tls/` beside the state file of `wsstack local`
/// ([`LocalStackInfo::default_path`], so `WSADMIN_LOCAL_STATE` moves both).
pub fn default_dir() -> PathBuf {
    let state = LocalStackInfo::default_path();
    state
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("tls")
}

/// The certificates of one start: the kept CA, a fresh server certificate.
#[derive(Debug, Clone)]
pub struct Certificates {
    dir: PathBuf,
    ca_pem: String,
    server: Arc<ServerConfig>,
}

impl Certificates {
    /// Makes the CA in `dir` the first time (reuses it after), issues a
    /// server certificate, and writes them.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let file_error = |what, path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::File { what, path, source }
        };
        std::fs::create_dir_all(dir).map_err(file_error("create", dir))?;
        // Two stacks starting at once make one CA, not one each.
        let lock_path = dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(file_error("open", &lock_path))?;
        lock.lock().map_err(file_error("lock", &lock_path))?;

        let (ca_key_path, ca_path) = (dir.join(CA_KEY_FILE), dir.join(CA_FILE));
        let (ca_key, ca_pem) = match (read(&ca_key_path)?, read(&ca_path)?) {
            (Some(key), Some(cert)) => {
                let key = KeyPair::from_pem(&key).map_err(|source| TlsError::CaKey {
                    path: ca_key_path.clone(),
                    dir: dir.to_owned(),
                    source,
                })?;
                (key, cert)
            }
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params(&key, OffsetDateTime::now_utc()).self_signed(&key)?;
                write_private(&ca_key_path, &key.serialize_pem())?;
                write_public(&ca_path, &cert.pem())?;
                (key, cert.pem())
            }
        };
        let issuer = Issuer::new(ca_params(&ca_key, OffsetDateTime::now_utc()), ca_key);

        let key = KeyPair::generate()?;
        let cert = server_params(OffsetDateTime::now_utc())?.signed_by(&key, &issuer)?;
        write_private(&dir.join(KEY_FILE), &key.serialize_pem())?;
        write_public(&dir.join(CERT_FILE), &cert.pem())?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        Ok(Self {
            dir: dir.to_owned(),
            ca_pem,
            server: Arc::new(server),
        })
    }

    /// The CA's certificate file: what a client must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server side of the handshake, for the emulator's TLS listener.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }
}

/// The CA of `key`, as made the first time and re-created to issue from:
/// only its name, key usages and key identifier method matter then.
fn ca_params(key: &KeyPair, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let id: String = params.key_identifier(key)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("{CA_NAME} {id}"));
    name.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    params
}

fn server_params(now: OffsetDateTime) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(SERVER_DAYS);
    Ok(params)
}

/// The file's text, or `None` when there is none.
fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::File {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a key: readable by the user only, from the moment it exists.
fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    write(path, text, 0o600)
}

fn write_public(path: &Path, text: &str) -> Result<(), TlsError> {
    write(path, text, 0o644)
}

/// Through a temporary file renamed into place: never a half-written file.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let error = |source| TlsError::File {
        what: "write",
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(error)?;
    // Exactly this mode, whatever the umask.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&tmp, path).map_err(error)
}
