//! One function's instances and the fate of each invocation: a warm idle
//! instance is reused, otherwise one is cold-started, up to the function's
//! bound (beyond it an invocation waits; its deadline counts from when the
//! runtime takes the event). It enforces the init limit and the function's
//! timeout, kills instances that timed out, failed their init or exited,
//! and writes Lambda's `END`/`REPORT`/timeout lines. It must not know how a
//! runtime is found or how the Runtime API is spoken.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wsadmin_core::function::FunctionSpec;

use crate::config::LogSink;
use crate::failure::InvokeFailure;
use crate::instance::{Instance, Launch, Process};
use crate::report::{self, Report};
use crate::runtime_api::{Delivery, Outcome};

/// What one function's instances look like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionStats {
    /// Instances alive (idle or busy).
    pub instances: usize,
    /// Instances handling an event (or starting for one).
    pub busy: usize,
    pub cold_starts: u64,
    pub invocations: u64,
}

#[derive(Debug)]
pub(crate) struct Pool {
    pub spec: FunctionSpec,
    /// What runs an instance, or why nothing can.
    pub launch: Result<Launch, String>,
    /// The environment of every instance but `AWS_LAMBDA_RUNTIME_API` and
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub env: BTreeMap<String, String>,
    pub arn: String,
    pub init_timeout: Duration,
    pub sink: LogSink,
    /// One permit per instance the function may have.
    slots: Arc<Semaphore>,
    /// Idle instances, each with when it became idle, oldest first.
    idle: Mutex<Vec<(Instance, Instant)>>,
    /// Every process started, so `stop` reaches busy instances too.
    live: Mutex<Vec<Weak<Process>>>,
    /// The host's: set once it stops.
    stopped: Arc<AtomicBool>,
    busy: AtomicUsize,
    cold_starts: AtomicU64,
    invocations: AtomicU64,
}

/// Decrements `busy` when an invocation ends, however it ends.
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spec: FunctionSpec,
        launch: Result<Launch, String>,
        env: BTreeMap<String, String>,
        arn: String,
        max_instances: usize,
        init_timeout: Duration,
        sink: LogSink,
        stopped: Arc<AtomicBool>,
    ) -> Self {
        Self {
            spec,
            launch,
            env,
            arn,
            init_timeout,
            sink,
            slots: Arc::new(Semaphore::new(max_instances.max(1))),
            idle: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            stopped,
            busy: AtomicUsize::new(0),
            cold_starts: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
        }
    }

    fn name(&self) -> String {
        self.spec.name.clone()
    }

    pub(crate) fn stats(&self) -> FunctionStats {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        FunctionStats {
            instances: live
                .iter()
                .filter_map(Weak::upgrade)
                .filter(|p| !p.exited())
                .count(),
            busy: self.busy.load(Ordering::Relaxed),
            cold_starts: self.cold_starts.load(Ordering::Relaxed),
            invocations: self.invocations.load(Ordering::Relaxed),
        }
    }

    /// One of the function's instance slots: waits while all
    /// `max_instances_per_function` are busy. A function that cannot run
    /// fails here, at once.
    pub(crate) async fn reserve(&self) -> Result<OwnedSemaphorePermit, InvokeFailure> {
        if let Err(reason) = &self.launch {
            return Err(InvokeFailure::Unavailable {
                function: self.name(),
                reason: reason.clone(),
            });
        }
        let stopped = || InvokeFailure::Stopped {
            function: self.name(),
        };
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| stopped())?;
        if self.stopped.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        Ok(permit)
    }

    /// Runs `event` on an instance (warm, else a cold start) in the slot
    /// `_permit` [`reserve`](Self::reserve) gave.
    pub(crate) async fn invoke(
        &self,
        _permit: OwnedSemaphorePermit,
        event: String,
    ) -> Result<String, InvokeFailure> {
        let launch = self
            .launch
            .as_ref()
            .map_err(|reason| InvokeFailure::Unavailable {
                function: self.name(),
                reason: reason.clone(),
            })?;
        self.busy.fetch_add(1, Ordering::Relaxed);
        let _busy = Busy(&self.busy);
        self.invocations.fetch_add(1, Ordering::Relaxed);
        let instance = match self.take_idle() {
            Some(instance) => instance,
            None => self.cold_start(launch).await?,
        };
        let (result, instance) = self.run(instance, event).await;
        if let Some(instance) = instance {
            // Checked under the lock `stop` takes after setting the flag, so
            // an instance is either seen by `stop` or never kept.
            let refused = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if self.stopped.load(Ordering::SeqCst) {
                    Some(instance)
                } else {
                    idle.push((instance, Instant::now()));
                    None
                }
            };
            if let Some(instance) = refused {
                instance.process.kill_and_wait().await;
            }
        }
        result
    }

    /// The most recently used idle instance that is still alive.
    fn take_idle(&self) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((instance, _)) = idle.pop() {
            if !instance.process.exited() {
                return Some(instance);
            }
        }
        None
    }

    /// Kills the instances idle for longer than `after`, but the most
    /// recently used one: a burst's instances do not outlive it (each holds
    /// a runtime's memory), and the next single invocation is still warm.
    pub(crate) async fn retire_idle(&self, after: Duration) {
        let retired: Vec<Instance> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let keep_from = idle.len().saturating_sub(1);
            let stale = idle[..keep_from]
                .iter()
                .take_while(|(_, since)| since.elapsed() > after)
                .count();
            idle.drain(..stale).map(|(instance, _)| instance).collect()
        };
        for instance in retired {
            instance.process.kill_and_wait().await;
        }
    }

    async fn cold_start(&self, launch: &Launch) -> Result<Instance, InvokeFailure> {
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        if let Some(problem) = not_executable(&launch.program) {
            return Err(InvokeFailure::Init {
                function: self.name(),
                error_type: "Runtime.InvalidEntrypoint".into(),
                message: problem,
            });
        }
        let mut env = self.env.clone();
        env.insert(
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            report::log_stream_name(crate::epoch_ms()),
        );
        let instance = Instance::spawn(
            launch,
            env,
            self.arn.clone(),
            &self.spec.name,
            self.sink.clone(),
        )
        .await
        .map_err(|e| InvokeFailure::Init {
            function: self.name(),
            error_type: "Runtime.InvalidEntrypoint".into(),
            message: format!("cannot run {}: {e}", launch.program.display()),
        })?;
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|p| p.strong_count() > 0);
            live.push(Arc::downgrade(&instance.process));
        }
        // Registered before the flag is read: `stop` either sees it in
        // `live` or this sees the flag.
        if self.stopped.load(Ordering::SeqCst) {
            instance.process.kill_and_wait().await;
            return Err(InvokeFailure::Stopped {
                function: self.name(),
            });
        }
        Ok(instance)
    }

    /// Runs one event on `instance`; the instance comes back if it may be
    /// reused.
    async fn run(
        &self,
        mut instance: Instance,
        event: String,
    ) -> (Result<String, InvokeFailure>, Option<Instance>) {
        let function = self.name();
        let cold = !instance.warm;
        let request_id = report::request_id();
        let (started_tx, started_rx) = oneshot::channel();
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let timeout = Duration::from_secs(u64::from(self.spec.timeout_seconds));
        let delivered = instance.deliver(Delivery {
            request_id: request_id.clone(),
            event,
            timeout,
            started: started_tx,
            outcome: outcome_tx,
        });
        if !delivered {
            // Never happens to an idle instance; treat it as broken.
            instance.process.kill_and_wait().await;
            return (
                Err(InvokeFailure::RuntimeExited {
                    function,
                    status: "the instance refused the event".into(),
                }),
                None,
            );
        }
        let mut exit = instance.process.exit();
        let mut init_error = instance.api.init_error.subscribe();

        // Until the runtime takes the event: its init, for a cold start.
        let init_failure = |error_type: &str, message: String| InvokeFailure::Init {
            function: function.clone(),
            error_type: error_type.into(),
            message,
        };
        let started = tokio::select! {
            started = started_rx => started.ok(),
            _ = init_error.wait_for(Option::is_some) => None,
            _ = exit.wait_for(Option::is_some) => None,
            () = tokio::time::sleep(self.init_timeout) => None,
        };
        let Some(started) = started else {
            let posted = init_error.borrow().clone();
            let exited = exit.borrow().clone();
            instance.process.kill_and_wait().await;
            let failure = if self.stopped.load(Ordering::SeqCst) {
                InvokeFailure::Stopped { function }
            } else if let Some(posted) = posted {
                init_failure(&posted.error_type, posted.message)
            } else if let Some(status) = exited.clone().filter(|_| !cold) {
                // A warm instance that died while idle.
                InvokeFailure::RuntimeExited { function, status }
            } else if let Some(status) = exited {
                init_failure(
                    "Runtime.ExitError",
                    format!("Runtime exited with error: {status}"),
                )
            } else {
                init_failure(
                    "Sandbox.Timedout",
                    format!(
                        "the runtime did not ask for its event within {:.2} seconds",
                        self.init_timeout.as_secs_f64()
                    ),
                )
            };
            return (Err(failure), None);
        };
        let init = cold
            .then(|| instance.api.first_next.get().map(|t| *t - instance.spawned))
            .flatten();
        instance.warm = true;

        // The invocation itself, under the function's timeout.
        let outcome = tokio::select! {
            outcome = outcome_rx => Some(outcome),
            _ = exit.wait_for(Option::is_some) => None,
            () = tokio::time::sleep_until((started + timeout).into()) => None,
        };
        let duration = started.elapsed();
        let report = |instance: &Instance| {
            instance.log(report::end_line(&request_id));
            instance.log(
                Report {
                    request_id: &request_id,
                    duration,
                    memory_mb: self.spec.memory_mb,
                    max_memory_kb: instance.process.peak_rss_kb(),
                    init,
                }
                .line(),
            );
        };
        match outcome {
            Some(Ok(Outcome::Response(body))) => {
                report(&instance);
                let body = String::from_utf8(body.to_vec()).map_err(|_| InvokeFailure::Function {
                    function: function.clone(),
                    error_type: "Runtime.MarshalError".into(),
                    message: "the response is not UTF-8 JSON".into(),
                    stack_trace: Vec::new(),
                });
                (body, Some(instance))
            }
            Some(Ok(Outcome::Error {
                error_type,
                message,
                stack_trace,
            })) => {
                report(&instance);
                let failure = InvokeFailure::Function {
                    function,
                    error_type,
                    message,
                    stack_trace,
                };
                (Err(failure), Some(instance))
            }
            // The runtime asked for another event without answering.
            Some(Err(_)) => {
                report(&instance);
                instance.process.kill_and_wait().await;
                let failure = InvokeFailure::RuntimeExited {
                    function,
                    status: "the runtime asked for the next event without answering this one"
                        .into(),
                };
                (Err(failure), None)
            }
            None if instance.process.exited() || self.stopped.load(Ordering::SeqCst) => {
                let status = exit.borrow().clone().unwrap_or_default();
                report(&instance);
                instance.process.kill_and_wait().await;
                let failure = if self.stopped.load(Ordering::SeqCst) {
                    InvokeFailure::Stopped { function }
                } else {
                    InvokeFailure::RuntimeExited { function, status }
                };
                (Err(failure), None)
            }
            None => {
                report(&instance);
                instance.log(format!(
                    "{request_id} {}",
                    report::timed_out(self.spec.timeout_seconds)
                ));
                instance.process.kill_and_wait().await;
                let failure = InvokeFailure::Timeout {
                    function,
                    seconds: self.spec.timeout_seconds,
                };
                (Err(failure), None)
            }
        }
    }

    /// Refuses new invocations and kills every instance, idle or busy.
    pub(crate) async fn stop(&self) {
        self.slots.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for (instance, _) in &idle {
            instance.process.kill_and_wait().await;
        }
        drop(idle);
        let live: Vec<_> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for process in live {
            process.kill_and_wait().await;
        }
    }

    /// Kills every instance without waiting (the host is dropped).
    pub(crate) fn kill_all(&self) {
        self.slots.close();
        for process in self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
        {
            process.kill();
        }
    }
}

/// Why `program` cannot be run as an entry point (Lambda's
/// `Runtime.InvalidEntrypoint`), if it cannot.
fn not_executable(program: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(program) {
        Err(_) => Some(format!(
            "{} does not exist (build it into the code directory)",
            program.display()
        )),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => Some(format!(
            "{} is not an executable file (chmod +x it)",
            program.display()
        )),
        Ok(_) => None,
    }
}
