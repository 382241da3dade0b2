//! `wsstack local`: the flags resolved into an `EmulatorConfig`, the state
//! file claimed before anything starts, dynalite from `wsadmin-dynalite`
//! unless `--dynamodb-endpoint`, the banner, then the stack until Ctrl-C or
//! SIGTERM (or until dynalite dies: it says so and stops, exit 1).
//!
//! The banner is the only thing on standard output and is informational:
//! a closed stdout (`wsstack local | head -3`) does not stop the stack,
//! whose state file is what tools read.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::{oneshot, watch};
use wsadmin_core::local::{LocalStackInfo, LocalStateError, StateClaim};
use wsadmin_core::stack::StackSpec;
use wsadmin_deploy::from_template::Inputs;
use wsadmin_dynalite::{Dynalite, Home};
use wsadmin_emulator::{EmulatorConfig, Throttle};
use wsadmin_local::demo::{self, DemoPace};
use wsadmin_local::{Listen, ListenTls, LocalStack};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::flags::LocalArgs;

pub async fn run(args: LocalArgs, w: &mut dyn Write) -> Result<()> {
    let mut config = config(&args)?;
    let mut shutdown = Shutdown::listen()?;

    // One stack per state file, refused before anything starts.
    let state_file = LocalStackInfo::default_path();
    let mut claim = match LocalStackInfo::claim(&state_file) {
        Ok(claim) => Some(claim),
        Err(e @ LocalStateError::Busy { .. }) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(
                "`wsadmin --context local` will not find this stack: {:#}",
                anyhow::Error::new(e)
            );
            None
        }
    };

    let mut dynamo = match &args.dynamodb_endpoint {
        Some(_) => None,
        None => Some(start_dynalite(args.dynamodb_port, args.data_dir.clone()).await?),
    };
    // Told at once if dynalite dies under the stack; never resolves without one.
    let (died_tx, died) = oneshot::channel::<()>();
    if let Some(d) = &dynamo {
        d.on_exit(move || {
            let _ = died_tx.send(());
        });
    }
    let dynamodb_endpoint = match (&args.dynamodb_endpoint, &dynamo) {
        (Some(url), _) => url.clone(),
        (None, Some(d)) => d.endpoint(),
        (None, None) => unreachable!("dynalite started when no endpoint was given"),
    };
    // The stage's access log, beside the state file, this run's.
    config.access_log = Some(state_file.with_extension("access.log"));
    let stack = LocalStack::start(config, listen(&args), &dynamodb_endpoint).await?;
    if let Some(Err(e)) = claim.as_mut().map(|claim| claim.write(stack.info())) {
        tracing::warn!(
            "`wsadmin --context local` will not find this stack: {:#}",
            anyhow::Error::new(e)
        );
        claim = None;
    }
    if let Err(e) = w
        .write_all(banner(&stack, claim.as_ref().map(StateClaim::path)).as_bytes())
        .and_then(|()| w.flush())
    {
        tracing::debug!("the banner was not shown ({e}): the stack runs on");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let demo = (args.demo_clients > 0).then(|| {
        eprintln!("starting {} demo clients", args.demo_clients);
        tokio::spawn(demo::run(
            stack.websocket_url(),
            args.demo_clients,
            DemoPace::default(),
            stop_rx,
        ))
    });

    let dynalite_died = tokio::select! {
        () = shutdown.requested() => false,
        Ok(()) = died => true,
    };
    if let (true, Some(d)) = (dynalite_died, dynamo.as_mut()) {
        let how = tokio::task::block_in_place(|| d.exit_status(Duration::from_secs(1)))
            .map(|status| format!(" ({status})"))
            .unwrap_or_default();
        eprintln!(
            "wsstack: dynalite, the local DynamoDB on port {}, exited{how}: stopping, since no $connect can succeed without it",
            d.port()
        );
    }
    eprintln!("\nstopping: closing every connection (1001) and running $disconnect");
    let _ = stop_tx.send(true);
    // Gone before the stack is: nobody is sent to a stack that is stopping.
    drop(claim);
    stack.stop().await.context("stopping the emulator")?;
    if let Some(demo) = demo {
        let _ = tokio::time::timeout(Duration::from_secs(5), demo).await;
    }
    // Dropping dynalite stops it.
    drop(dynamo);
    if dynalite_died {
        anyhow::bail!(
            "stopped because the local DynamoDB exited: start `wsstack local` again (with --data-dir DIR its tables outlive it)"
        );
    }
    eprintln!("stopped");
    Ok(())
}

/// The flags as the emulator's configuration: the stack description
/// (`--template`, `--stack` or the default) with its overrides, validated,
/// and the knobs.
fn config(args: &LocalArgs) -> Result<EmulatorConfig> {
    let mut stack = match (&args.template, &args.described.stack) {
        (Some(path), _) => {
            let inputs = Inputs {
                region: args.region.clone(),
                parameters: args.parameters.iter().cloned().collect(),
                code: args.code.iter().cloned().collect(),
                ..Inputs::default()
            };
            // The routes carry their authorizers (and IAM authorization).
            wsadmin_deploy::from_template::load(path, &inputs)?.stack
        }
        (None, Some(path)) => StackSpec::load(path)?,
        (None, None) => StackSpec::default(),
    };
    if let Some(stage) = &args.described.stage {
        stack.stage.clone_from(stage);
    }
    if let Some(table) = &args.described.table {
        stack.table.clone_from(table);
    }
    stack.validate()?;
    Ok(EmulatorConfig {
        stack,
        region: args.region.clone(),
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        idle_timeout: args.idle_timeout,
        max_duration: args.max_duration,
        queue_limit_bytes: args.queue_limit,
        throttle: args.throttle_rps.map(|rps| Throttle {
            rps,
            burst: args.throttle_burst.unwrap_or(rps),
        }),
        fault_rate: args.fault_rate,
        drop_disconnect_rate: args.drop_disconnect_rate,
        connect_delay: args.connect_delay,
        lambda_concurrency: args.lambda_concurrency,
        ..EmulatorConfig::default()
    })
}

/// Where the stack listens: `--port`, and `--tls-port` unless `--no-tls`
/// (3443 by default, a free port when `--port` is 0 so that several
/// stacks on free ports never meet), with the CA beside the state file.
fn listen(args: &LocalArgs) -> Listen {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tls_port = match (args.tls_port, args.port) {
        (Some(port), _) => port,
        (None, 0) => 0,
        (None, _) => DEFAULT_TLS_PORT,
    };
    Listen {
        addr: at(args.port),
        tls: (!args.no_tls).then(|| ListenTls {
            addr: at(tls_port),
            dir: wsadmin_local::tls::default_dir(),
        }),
    }
}

/// `--tls-port`'s default beside `--port`'s 3001.
const DEFAULT_TLS_PORT: u16 = 3443;

/// The pinned dynalite: the checkout's when wsstack runs from one, else the
/// one in the user's data directory (installed there on first use).
async fn start_dynalite(port: u16, data_dir: Option<PathBuf>) -> Result<Dynalite> {
    tokio::task::spawn_blocking(move || {
        let home = Home::find_or_install(|what| eprintln!("wsstack: {what}"))?;
        Dynalite::launch(&home, port, data_dir.as_deref()).map_err(anyhow::Error::from)
    })
    .await
    .context("starting the local DynamoDB")?
    .context("starting the local DynamoDB")
}

/// What the stack is and how to operate it.
fn banner(stack: &LocalStack, state_file: Option<&Path>) -> String {
    use std::fmt::Write as _;
    let c = stack.config();
    let ws = stack.websocket_url();
    let mgmt = stack.management_endpoint();
    let ddb = stack.dynamodb_endpoint();
    let mut b = String::new();
    let _ = writeln!(b, "wsstack local is running");
    let _ = writeln!(b, "  WebSocket       {ws}");
    if let Some(wss) = stack.wss_url() {
        let _ = writeln!(b, "                  {wss}");
    }
    let _ = writeln!(b, "  Management API  {mgmt}");
    if let Some(https) = stack.https_management_endpoint() {
        let _ = writeln!(b, "                  {https}");
    }
    let key = stack.info().table_key;
    let key_note = key
        .as_deref()
        .map(|k| format!(" (key {k})"))
        .unwrap_or_default();
    let _ = writeln!(
        b,
        "  DynamoDB        {ddb}   table {}{key_note}",
        c.stack.table
    );
    // Each route with the function that answers it, and how that runs.
    for (i, route) in c.stack.routes.iter().enumerate() {
        let label = if i == 0 { "  Routes" } else { "" };
        let how = match c.stack.function(&route.handler) {
            Some(f) => format!("{} ({}, {})", f.name, f.runtime, f.handler),
            None => format!("{} (in-process)", route.handler),
        };
        let guard = match (&route.authorization, &route.authorizer) {
            (wsadmin_core::stack::Authorization::AwsIam, _) => {
                ", IAM: SigV4-presigned handshakes only (wsadmin connect --sign)".to_owned()
            }
            (_, Some(a)) => format!(", authorizer {} ({})", a.name, a.function),
            _ => String::new(),
        };
        let _ = writeln!(b, "{label:<18}{:<14}{how}{guard}", route.key);
    }
    let _ = writeln!(
        b,
        "  Credentials     AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={}",
        c.access_key_id, c.secret_access_key, c.region
    );
    if let Some(log) = &c.access_log {
        let _ = writeln!(
            b,
            "  Access log      {}   (wsadmin logs --follow; inspect ID --history)",
            log.display()
        );
    }
    let _ = writeln!(b);
    let _ = writeln!(b, "Operate it:");
    let _ = writeln!(
        b,
        "  AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={} \\\n    wsadmin --endpoint {mgmt} --table {}{} --dynamodb-endpoint {ddb} list",
        c.access_key_id,
        c.secret_access_key,
        c.region,
        c.stack.table,
        key.map(|k| format!(" --table-key {k}")).unwrap_or_default(),
    );
    let _ = match state_file {
        Some(path) => writeln!(
            b,
            "  or simply: wsadmin --context local list   (it reads {})",
            path.display()
        ),
        None => writeln!(
            b,
            "  (no state file: `wsadmin --context local` will not find this stack)"
        ),
    };
    if let Some(ca) = stack.ca_file() {
        let ca = ca.display();
        let _ = writeln!(b, "Trust its TLS certificate (its CA, {ca}):");
        let _ = writeln!(
            b,
            "  NODE_EXTRA_CA_CERTS={ca} (Node)   AWS_CA_BUNDLE={ca} (AWS CLI, boto3)"
        );
        let _ = writeln!(
            b,
            "  SSL_CERT_FILE={ca} or REQUESTS_CA_BUNDLE={ca} (others); wsadmin connect trusts it"
        );
    }
    let _ = writeln!(b, "Try it:");
    let _ = writeln!(
        b,
        "  websocat {ws}     then send: {{\"type\":\"message\",\"data\":\"Hello World!\"}}"
    );
    let _ = writeln!(b);
    let _ = writeln!(b, "Ctrl-C stops everything it started.");
    b
}

/// Ctrl-C or SIGTERM, listened for from the moment this is made: before
/// the state file names this process, so a tool that reads it and signals
/// at once is heard rather than killing the stack uncleanly.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    fn listen() -> Result<Self> {
        let listen = |kind| signal(kind).context("cannot listen for Ctrl-C and SIGTERM");
        Ok(Self {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
