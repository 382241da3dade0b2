//! Lambda on one machine: functions of any runtime run as their own
//! processes, one event at a time per instance, through the Lambda Runtime
//! API, as AWS Lambda runs them. [`LambdaHost::invoke`] is Lambda's
//! synchronous Invoke: event JSON in, response JSON out.
//!
//! `provided.*` runs the code's `bootstrap`; `nodejs*` and `python3.*` run
//! the installed `node`/`python3` with our own runtime shims (shipped in
//! this crate, written to the work directory at start). Nothing is
//! downloaded. A missing interpreter makes its functions fail with what to
//! install; the others still run.
//!
//! It must not know API Gateway, DynamoDB or the local stack: the caller
//! gives the functions, the extra environment (endpoints, CA bundles) and
//! where logs go.
//!
//! Where it differs from Lambda: invocations beyond a function's instance
//! bound wait for an instance instead of running at once (or being
//! throttled); every instance shares the machine (no memory limit, no
//! sandbox, `/tmp` shared, the host's PATH and HOME); the Node and Python
//! runtimes are our shims, not AWS's runtime interface clients, and the
//! SDKs Lambda bundles are whatever `NODE_PATH`/`sys.path` provide.

mod config;
mod failure;
mod instance;
mod interpreter;
mod pool;
pub mod report;
mod runtime_api;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::OwnedSemaphorePermit;

use wsadmin_core::function::{FunctionCode, FunctionError, FunctionSpec, Runtime};

pub use config::{
    DEFAULT_IDLE_INSTANCE_TIMEOUT, DEFAULT_INIT_TIMEOUT, DEFAULT_MAX_INSTANCES, HostConfig, LogSink,
};
pub use failure::{HostError, InvokeFailure};
pub use pool::FunctionStats;

use instance::Launch;
use interpreter::Interpreter;
use pool::Pool;

/// Our Node.js runtime (`node node-bootstrap.cjs`).
const NODE_SHIM: &str = include_str!("../shims/node.cjs");
/// Our Python runtime (`python3 -u python-bootstrap.py`).
const PYTHON_SHIM: &str = include_str!("../shims/python.py");

/// The functions of a stack, each with its instances. Cheap to clone;
/// dropping the last clone kills every instance (prefer [`stop`](Self::stop),
/// which waits for them).
#[derive(Debug, Clone)]
pub struct LambdaHost {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pools: BTreeMap<String, Pool>,
    stopped: Arc<AtomicBool>,
    /// The absolute work directory: the caller removes it when done.
    work_dir: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for pool in self.pools.values() {
            pool.kill_all();
        }
    }
}

impl LambdaHost {
    /// Checks the functions, writes the shims and inline code under the
    /// work directory and asks each interpreter its version (once). Starts
    /// no instance: the first invocation of a function is its cold start.
    pub async fn start(
        functions: Vec<FunctionSpec>,
        config: HostConfig,
    ) -> Result<Self, HostError> {
        let mut seen = BTreeSet::new();
        let mut runtimes = Vec::new();
        for f in &functions {
            f.validate()?;
            if !seen.insert(f.name.clone()) {
                return Err(HostError::Duplicate(f.name.clone()));
            }
            let runtime = Runtime::parse(&f.runtime).map_err(|e| FunctionError {
                function: f.name.clone(),
                problem: e.to_string(),
            })?;
            runtimes.push(runtime);
        }
        // Instances run in their task root: every path given them is absolute.
        let work_dir =
            std::path::absolute(&config.work_dir).map_err(|source| HostError::Write {
                path: config.work_dir.clone(),
                source,
            })?;
        let runtime_dir = work_dir.join("runtime");
        let node_shim = runtime_dir.join("node-bootstrap.cjs");
        let python_shim = runtime_dir.join("python-bootstrap.py");
        write(&node_shim, NODE_SHIM)?;
        write(&python_shim, PYTHON_SHIM)?;

        let needed: BTreeSet<Interpreter> = runtimes
            .iter()
            .filter_map(|r| Interpreter::of(*r))
            .collect();
        let mut found = BTreeMap::new();
        for interpreter in needed {
            let program = match interpreter {
                Interpreter::Node => &config.node,
                Interpreter::Python => &config.python,
            };
            found.insert(
                interpreter,
                (
                    program.clone(),
                    interpreter::probe(interpreter, program).await,
                ),
            );
        }

        let stopped = Arc::new(AtomicBool::new(false));
        let mut pools = BTreeMap::new();
        for (spec, runtime) in functions.into_iter().zip(runtimes) {
            let task_root = task_root(&spec, runtime, &work_dir)?;
            let launch = match Interpreter::of(runtime) {
                None => Ok(Launch {
                    program: task_root.join("bootstrap"),
                    args: Vec::new(),
                    cwd: task_root.clone(),
                }),
                Some(interpreter) => {
                    let (program, probed) = &found[&interpreter];
                    let say = |line: String| {
                        config.logs.line(format!(
                            "function \"{}\" ({}): {line}",
                            spec.name, spec.runtime
                        ));
                    };
                    match probed {
                        Ok(found) => {
                            if let Some(warning) =
                                interpreter::version_warning(runtime, program, &found.version)
                            {
                                say(warning);
                            }
                            let shim = match interpreter {
                                Interpreter::Node => vec![node_shim.display().to_string()],
                                Interpreter::Python => {
                                    vec!["-u".into(), python_shim.display().to_string()]
                                }
                            };
                            Ok(Launch {
                                program: found.executable.clone(),
                                args: shim,
                                cwd: task_root.clone(),
                            })
                        }
                        Err(reason) => {
                            let reason = interpreter::missing(runtime, program, reason);
                            say(reason.clone());
                            Err(reason)
                        }
                    }
                }
            };
            let env = environment(&spec, runtime, &task_root, &runtime_dir, &config);
            let arn = report::function_arn(&config.region, &config.account_id, &spec.name);
            pools.insert(
                spec.name.clone(),
                Pool::new(
                    spec,
                    launch,
                    env,
                    arn,
                    config.max_instances_per_function,
                    config.init_timeout,
                    config.logs.clone(),
                    stopped.clone(),
                ),
            );
        }
        let host = Self {
            inner: Arc::new(Inner {
                pools,
                stopped,
                work_dir,
            }),
        };
        tokio::spawn(retire_idle(
            Arc::downgrade(&host.inner),
            config.idle_instance_timeout,
        ));
        Ok(host)
    }

    /// Where the shims and inline code were written (the configured work
    /// directory, absolute); the host leaves it in place.
    pub fn work_dir(&self) -> &Path {
        &self.inner.work_dir
    }

    /// The functions' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.pools.keys().cloned().collect()
    }

    /// Lambda's synchronous Invoke: runs `function` on `event` (JSON) and
    /// returns its response (JSON). Callable from many tasks at once.
    pub async fn invoke(&self, function: &str, event: String) -> Result<String, InvokeFailure> {
        self.reserve(function).await?.invoke(event).await
    }

    /// The first half of [`invoke`](Self::invoke): waits for one of the
    /// function's instances to be free (at most `max_instances_per_function`
    /// run at once on this machine; Lambda would start more). A caller that
    /// counts concurrency as Lambda does keeps this wait off its clock.
    pub async fn reserve(&self, function: &str) -> Result<Reservation<'_>, InvokeFailure> {
        let Some(pool) = self.inner.pools.get(function) else {
            return Err(InvokeFailure::UnknownFunction {
                function: function.to_owned(),
                known: self.names().join(", "),
            });
        };
        let permit = pool.reserve().await?;
        Ok(Reservation { pool, permit })
    }

    /// How many instances `function` has, how many are busy, and how many
    /// cold starts and invocations it had; `None` for an unknown function.
    pub fn stats(&self, function: &str) -> Option<FunctionStats> {
        self.inner.pools.get(function).map(Pool::stats)
    }

    /// Refuses new invocations (in-flight ones fail as
    /// [`InvokeFailure::Stopped`]) and kills every instance, returning once
    /// their processes are gone.
    pub async fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        for pool in self.inner.pools.values() {
            pool.stop().await;
        }
    }
}

/// One of a function's instances, reserved by [`LambdaHost::reserve`] for
/// one invocation.
#[derive(Debug)]
pub struct Reservation<'a> {
    pool: &'a Pool,
    permit: OwnedSemaphorePermit,
}

impl Reservation<'_> {
    /// Runs `event` (JSON) on the reserved instance: a warm one, else a cold
    /// start; its response (JSON), or why not.
    pub async fn invoke(self, event: String) -> Result<String, InvokeFailure> {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&event) {
            return Err(InvokeFailure::InvalidEvent {
                function: self.pool.spec.name.clone(),
                reason: e.to_string(),
            });
        }
        self.pool.invoke(self.permit, event).await
    }
}

/// Stops instances idle past `after` (a function's most recent one stays),
/// checking a few times per `after`, until the host is gone or stopped.
async fn retire_idle(host: std::sync::Weak<Inner>, after: std::time::Duration) {
    let every = (after / 4).max(std::time::Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = host.upgrade() else { return };
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        for pool in inner.pools.values() {
            pool.retire_idle(after).await;
        }
    }
}

fn write(path: &Path, contents: &str) -> Result<(), HostError> {
    let err = |source| HostError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, contents).map_err(err)
}

/// `LAMBDA_TASK_ROOT`: the code directory, or where inline code is written
/// (as `index.js` or `index.py`, as CloudFormation's `ZipFile`).
fn task_root(spec: &FunctionSpec, runtime: Runtime, work_dir: &Path) -> Result<PathBuf, HostError> {
    match &spec.code {
        FunctionCode::Dir(dir) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            if !dir.is_dir() {
                return Err(HostError::CodeDir {
                    function: spec.name.clone(),
                    dir,
                });
            }
            Ok(dir)
        }
        FunctionCode::Inline(source) => {
            let root = work_dir.join("functions").join(&spec.name);
            let file = match runtime {
                Runtime::Python { .. } => "index.py",
                _ => "index.js",
            };
            write(&root.join(file), source)?;
            Ok(root)
        }
    }
}

/// An instance's environment, as Lambda gives it: PATH and HOME from the
/// host, Lambda's variables, the host's extras, then the function's own
/// (which win). `AWS_LAMBDA_RUNTIME_API` and `AWS_LAMBDA_LOG_STREAM_NAME`
/// are added per instance.
fn environment(
    spec: &FunctionSpec,
    runtime: Runtime,
    task_root: &Path,
    runtime_dir: &Path,
    config: &HostConfig,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for key in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_owned(), value);
        }
    }
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone());
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        spec.memory_mb.to_string(),
    );
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", spec.name),
    );
    set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}"));
    set("_HANDLER", spec.handler.clone());
    set("LAMBDA_TASK_ROOT", task_root.display().to_string());
    set("LAMBDA_RUNTIME_DIR", runtime_dir.display().to_string());
    set("AWS_REGION", config.region.clone());
    set("AWS_DEFAULT_REGION", config.region.clone());
    set("AWS_ACCESS_KEY_ID", config.access_key_id.clone());
    set("AWS_SECRET_ACCESS_KEY", config.secret_access_key.clone());
    if let Some(token) = &config.session_token {
        set("AWS_SESSION_TOKEN", token.clone());
    }
    set("TZ", ":UTC".into());
    env.extend(config.extra_env.clone());
    env.extend(spec.environment.clone());
    env
}

/// Milliseconds since the epoch, now.
pub(crate) fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
