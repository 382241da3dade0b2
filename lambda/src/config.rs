//! What the machine gives the functions it runs: [`HostConfig`] (region,
//! account, credentials, the work directory, extra variables, where the
//! interpreters are, how many instances a function may have) and
//! [`LogSink`], where every line a developer should see goes. It must not
//! start anything: the host reads it once at start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

/// The default bound on one function's instances (its execution
/// environments) on this machine.
pub const DEFAULT_MAX_INSTANCES: usize = 32;

/// How long an instance beyond a function's most recent one stays idle
/// before it is stopped (Lambda keeps idle environments for minutes; here
/// each holds a runtime's memory on a developer's machine).
pub const DEFAULT_IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a cold start may take to ask for its first event: Lambda's
/// 10 s init phase.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `AWS_REGION`, `AWS_DEFAULT_REGION` and the functions' ARNs.
    pub region: String,
    /// The account in the functions' ARNs.
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, only when set.
    pub session_token: Option<String>,
    /// Where the host writes its runtime shims and inline code (created if
    /// missing; left in place at stop).
    pub work_dir: PathBuf,
    /// Variables every function gets beyond Lambda's own (an endpoint,
    /// a CA bundle, `NODE_PATH`); a function's own environment wins.
    pub extra_env: BTreeMap<String, String>,
    /// `node`: a name looked up on PATH, or a path.
    pub node: PathBuf,
    /// `python3`: a name looked up on PATH, or a path.
    pub python: PathBuf,
    /// How many instances one function may run at once; invocations beyond
    /// it wait for one (Lambda would start more, up to the account's
    /// concurrency).
    pub max_instances_per_function: usize,
    /// How long a cold start may take before its first `next`.
    pub init_timeout: Duration,
    /// How long an instance stays idle before it is stopped; a function's
    /// most recently used instance stays warm however long it idles.
    pub idle_instance_timeout: Duration,
    pub logs: LogSink,
}

impl HostConfig {
    /// Test-friendly defaults: `us-east-1`, account `000000000000`, local
    /// credentials, `node` and `python3` from PATH, 32 instances per
    /// function, logs on standard error.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            access_key_id: "AKIDLOCALTEST".into(),
            secret_access_key: "local-test-secret".into(),
            session_token: None,
            work_dir: work_dir.into(),
            extra_env: BTreeMap::new(),
            node: "node".into(),
            python: "python3".into(),
            max_instances_per_function: DEFAULT_MAX_INSTANCES,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            idle_instance_timeout: DEFAULT_IDLE_INSTANCE_TIMEOUT,
            logs: LogSink::Stderr,
        }
    }
}

/// Where the functions' output and Lambda's own lines go, one whole line
/// at a time.
#[derive(Debug, Clone, Default)]
pub enum LogSink {
    /// Standard error, each line written whole.
    #[default]
    Stderr,
    /// A channel (tests read what a developer would see).
    Channel(mpsc::UnboundedSender<String>),
    /// Nowhere.
    Discard,
}

impl LogSink {
    /// A channel sink and its receiving end.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::Channel(tx), rx)
    }

    pub(crate) fn line(&self, line: String) {
        match self {
            Self::Stderr => {
                let mut whole = line.into_bytes();
                whole.push(b'\n');
                let _ = std::io::stderr().lock().write_all(&whole);
            }
            Self::Channel(tx) => {
                let _ = tx.send(line);
            }
            Self::Discard => {}
        }
    }
}
