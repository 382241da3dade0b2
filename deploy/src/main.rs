//! `wsstack`: stands the WebSocket stack up. `wsstack local` runs it on this
//! machine: dynalite, the API Gateway emulator, the real handlers.
//! `wsstack template` prints its CloudFormation template and `wsstack
//! policy` the IAM policy an operator of a deployment needs. `wsstack up`,
//! `plan`, `status` and `down` deploy it to AWS through CloudFormation.

use std::io::{IsTerminal as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio::sync::{oneshot, watch};
use wsadmin_core::TableConfig;
use wsadmin_core::duration::parse_duration;
use wsadmin_core::local::{LocalStackInfo, LocalStateError, StateClaim};
use wsadmin_core::stack::StackSpec;
use wsadmin_deploy::error::DeployError;
use wsadmin_dynalite::{Dynalite, Home};
use wsadmin_emulator::{
    DEFAULT_LAMBDA_CONCURRENCY, EmulatorConfig, LAMBDA_CONCURRENCY_RANGE, LOCAL_ACCESS_KEY_ID,
    LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY, Throttle,
};
use wsadmin_local::LocalStack;
use wsadmin_local::demo::{self, DemoPace};

#[derive(Debug, Parser)]
#[command(
    name = "wsstack",
    version,
    about = "Stand up the wsadmin WebSocket stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack on this machine: an API Gateway WebSocket
    /// emulator, a local DynamoDB (dynalite) and the real handlers.
    ///
    /// Its endpoints go to the state file `wsadmin --context local` reads
    /// (WSADMIN_LOCAL_STATE, default ~/.local/state/wsadmin/local-stack.json),
    /// one stack per file: a second one with the same file is refused. If
    /// dynalite dies, the stack says so and stops.
    Local(LocalArgs),
    /// Print the stack as a CloudFormation template, for deploying through
    /// your own pipeline (parameters: the code bucket and zip keys, the
    /// architecture, log retention, point-in-time recovery, throttling).
    Template(TemplateArgs),
    /// Print the least-privilege IAM policy for running `wsadmin` against
    /// a deployment, ready for `aws iam create-policy --policy-document`.
    /// Values not given stay placeholders (<REGION>, <ACCOUNT_ID>,
    /// <API_ID>) that must be replaced before use.
    Policy(PolicyArgs),
    /// Build the four handlers as Lambda `bootstrap` zips with cargo-lambda
    /// (`scripts/setup` installs it), into target/lambda/<function>/bootstrap.zip
    /// of the checkout; prints each zip's size.
    Package(PackageArgs),
    /// Deploy the stack to AWS through CloudFormation: upload the packaged
    /// zips, show the plan (a change set), ask, execute it with progress,
    /// print the endpoints and save a `wsadmin` context named after it.
    Up(UpArgs),
    /// Show what `up` would change (a change set, then deleted); changes
    /// nothing. Same as `up --dry-run`.
    Plan(DeployArgs),
    /// A deployed stack: status, outputs, drift per resource, whether the
    /// Management endpoint answers, and a verdict.
    Status(StatusArgs),
    /// Delete a stack `wsstack up` made, the artifacts it uploaded and its
    /// saved context.
    Down(DownArgs),
}

/// What `up` and `plan` deploy, and where.
#[derive(Debug, Args)]
struct DeployArgs {
    /// Stack name (CloudFormation), also the saved `wsadmin` context's name.
    #[arg(long)]
    name: String,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    region: Option<String>,
    /// AWS profile (default: AWS_PROFILE or the default profile).
    #[arg(long)]
    profile: Option<String>,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    stage: Option<String>,
    /// Instruction set the zips were packaged for: x86_64 or arm64.
    #[arg(long, default_value_t = wsadmin_deploy::package::Arch::X86_64)]
    arch: wsadmin_deploy::package::Arch,
    /// Stack description (TOML); defaults reproduce the seed's stack.
    #[arg(long, value_name = "FILE")]
    stack: Option<PathBuf>,
    /// Directory of the packaged zips, as <function>/bootstrap.zip
    /// (default: target/lambda of the checkout, where `wsstack package`
    /// writes them).
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// A template parameter, e.g. LogRetentionInDays=30 or
    /// PointInTimeRecovery=true (repeatable; one not given takes the
    /// template's default again).
    #[arg(long = "parameter", value_name = "KEY=VALUE", value_parser = wsadmin_deploy::up::parse_parameter)]
    parameters: Vec<(String, String)>,
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    deploy: DeployArgs,
    /// Deploy without asking (needed when standard input is not a terminal).
    #[arg(long, short)]
    yes: bool,
    /// Print the plan only, like `wsstack plan`.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Stack name (default: the only stack wsstack made in the region).
    #[arg(long)]
    name: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    region: Option<String>,
    /// AWS profile (default: AWS_PROFILE or the default profile).
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Debug, Args)]
struct DownArgs {
    /// Stack name.
    #[arg(long)]
    name: String,
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    region: Option<String>,
    /// AWS profile (default: AWS_PROFILE or the default profile).
    #[arg(long)]
    profile: Option<String>,
    /// Delete without asking (needed when standard input is not a terminal).
    #[arg(long, short)]
    yes: bool,
}

#[derive(Debug, Args)]
struct LocalArgs {
    /// Port of the WebSocket endpoint and the Management API (0 picks a free one).
    #[arg(long, default_value_t = 3001, env = "WSSTACK_PORT")]
    port: u16,
    /// Stack description (TOML); defaults reproduce the seed's stack.
    #[arg(long, value_name = "FILE")]
    stack: Option<PathBuf>,
    /// Start from a CloudFormation template `wsstack template` wrote (YAML
    /// or JSON) instead: its API, stage, table, routes and functions.
    #[arg(long, value_name = "FILE", conflicts_with = "stack")]
    template: Option<PathBuf>,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    stage: Option<String>,
    /// DynamoDB table of connections (overrides the stack file).
    #[arg(long)]
    table: Option<String>,
    /// Access key id the Management API accepts.
    #[arg(long, default_value = LOCAL_ACCESS_KEY_ID)]
    access_key_id: String,
    /// Secret access key the Management API accepts.
    #[arg(long, default_value = LOCAL_SECRET_ACCESS_KEY)]
    secret_access_key: String,
    /// Region requests must be signed for.
    #[arg(long, default_value = LOCAL_REGION)]
    region: String,
    /// Use this DynamoDB instead of starting dynalite.
    #[arg(long, value_name = "URL")]
    dynamodb_endpoint: Option<String>,
    /// Port for the dynalite it starts (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    dynamodb_port: u16,
    /// Keep dynalite's data in this directory (in memory otherwise).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Close connections idle for this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Close connections this long after they opened.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    max_duration: Duration,
    /// Account-level limit on @connections calls per second (429 beyond).
    #[arg(long, value_name = "N")]
    throttle_rps: Option<f64>,
    /// Burst allowed by --throttle-rps (default: the rate).
    #[arg(long, value_name = "M", requires = "throttle_rps")]
    throttle_burst: Option<f64>,
    /// Fraction of @connections calls answered 500.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    fault_rate: f64,
    /// Fraction of $disconnect invocations skipped, leaving stale records.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    drop_disconnect_rate: f64,
    /// Bytes queued for one client before posts to it answer 429.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    queue_limit: usize,
    /// Make $connect this much longer, after its handler wrote the record:
    /// meanwhile the Management API answers 410 for the connection and the
    /// handshake waits, as during a slow $connect on AWS.
    #[arg(long, default_value = "0s", value_name = "DUR", value_parser = parse_duration)]
    connect_delay: Duration,
    /// Handler invocations (all routes) that may run at once, like Lambda's
    /// account concurrency; beyond it an invocation is throttled: the
    /// handshake is refused (500), a message gets API Gateway's "Internal
    /// server error" frame, a $disconnect is skipped (its record stays).
    #[arg(long, default_value_t = DEFAULT_LAMBDA_CONCURRENCY, value_name = "N", value_parser = parse_concurrency)]
    lambda_concurrency: usize,
    /// Start N simulated clients that connect, chat and leave.
    #[arg(long, default_value_t = 0, value_name = "N")]
    demo_clients: usize,
}

#[derive(Debug, Args)]
struct TemplateArgs {
    /// Stack description (TOML); defaults reproduce the seed's stack.
    #[arg(long, value_name = "FILE")]
    stack: Option<PathBuf>,
    /// Template language.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Yaml)]
    format: TemplateFormat,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    stage: Option<String>,
    /// DynamoDB table of connections (overrides the stack file).
    #[arg(long)]
    table: Option<String>,
    /// Write the template to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TemplateFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// Stack description (TOML): the table and stage, unless given.
    #[arg(long, value_name = "FILE")]
    stack: Option<PathBuf>,
    /// DynamoDB table of connections (overrides the stack file).
    #[arg(long, conflicts_with = "table_arn")]
    table: Option<String>,
    /// The table's full ARN (else built from --region, --account, the table).
    #[arg(long, value_name = "ARN")]
    table_arn: Option<String>,
    /// The WebSocket API's id (placeholder <API_ID> when not given).
    #[arg(long, value_name = "ID")]
    api_id: Option<String>,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    stage: Option<String>,
    /// Region of the deployment (placeholder <REGION> when not given).
    #[arg(long)]
    region: Option<String>,
    /// AWS account id of the deployment (placeholder <ACCOUNT_ID> when not given).
    #[arg(long, value_name = "ACCOUNT_ID")]
    account: Option<String>,
}

#[derive(Debug, Args)]
struct PackageArgs {
    /// Instruction set of the functions: x86_64 or arm64 (the template's
    /// Architecture parameter must match).
    #[arg(long, default_value_t = wsadmin_deploy::package::Arch::X86_64)]
    arch: wsadmin_deploy::package::Arch,
    /// Also copy the zips here, as DIR/<function>/bootstrap.zip.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `--lambda-concurrency`: a whole number within AWS's range.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    let (low, high) = (
        LAMBDA_CONCURRENCY_RANGE.start(),
        LAMBDA_CONCURRENCY_RANGE.end(),
    );
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| LAMBDA_CONCURRENCY_RANGE.contains(n))
        .ok_or_else(|| {
            format!("expected a whole number of invocations from {low} to {high}, not {text:?}")
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "error,wsstack=info,wsadmin_deploy=info,wsadmin_local=info,wsadmin_emulator=info,wsadmin_dynalite=info,wsadmin_core=warn,wsadmin_handlers=warn"
                    .into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsstack: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Local(args) => local(args).await,
            Command::Template(args) => template(args),
            Command::Policy(args) => policy(args),
            Command::Package(args) => package(args),
            Command::Up(args) => up(args.deploy, args.yes, args.dry_run).await,
            Command::Plan(args) => up(args, true, true).await,
            Command::Status(args) => status(args).await,
            Command::Down(args) => down(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsstack: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// `{:#}` without a cause the text before it already says (`cannot listen
/// on …: Address already in use (…)` names its source and returns it too).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if !cause.is_empty() && !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

async fn local(args: LocalArgs) -> Result<()> {
    let mut stack = match (&args.template, &args.stack) {
        (Some(path), _) => wsadmin_deploy::from_template::load(path)?,
        (None, Some(path)) => StackSpec::load(path)?,
        (None, None) => StackSpec::default(),
    };
    if let Some(stage) = args.stage {
        stack.stage = stage;
    }
    if let Some(table) = args.table {
        stack.table = table;
    }
    stack.validate()?;
    let config = EmulatorConfig {
        stack,
        region: args.region,
        access_key_id: args.access_key_id,
        secret_access_key: args.secret_access_key,
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
    };

    // One stack per state file, refused before anything starts.
    let state_file = LocalStackInfo::default_path();
    let mut claim = match LocalStackInfo::claim(&state_file) {
        Ok(claim) => Some(claim),
        Err(e @ LocalStateError::Busy { .. }) => return Err(e.into()),
        Err(e) => {
            tracing::warn!("`wsadmin --context local` will not find this stack: {e}");
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
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let stack = LocalStack::start(config, addr, &dynamodb_endpoint).await?;
    let c = stack.config();
    let info = LocalStackInfo {
        websocket_url: stack.websocket_url(),
        management_endpoint: stack.management_endpoint(),
        dynamodb_endpoint: dynamodb_endpoint.clone(),
        table: c.stack.table.clone(),
        region: c.region.clone(),
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        pid: std::process::id(),
    };
    if let Some(Err(e)) = claim.as_mut().map(|claim| claim.write(info)) {
        tracing::warn!("`wsadmin --context local` will not find this stack: {e}");
        claim = None;
    }
    print_banner(&stack, claim.as_ref().map(StateClaim::path));

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
        () = shutdown_signal() => false,
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

/// The stack description of `--stack` (or the default one) with the
/// `--stage` and `--table` overrides, validated.
fn stack_spec(
    path: Option<&Path>,
    stage: Option<String>,
    table: Option<String>,
) -> Result<StackSpec> {
    let mut stack = match path {
        Some(path) => StackSpec::load(path)?,
        None => StackSpec::default(),
    };
    if let Some(stage) = stage {
        stack.stage = stage;
    }
    if let Some(table) = table {
        stack.table = table;
    }
    stack.validate()?;
    Ok(stack)
}

fn template(args: TemplateArgs) -> Result<()> {
    let stack = stack_spec(args.stack.as_deref(), args.stage, args.table)?;
    let value = wsadmin_deploy::template::template(&stack, &TableConfig::new(&stack.table))
        .map_err(|e| match &args.stack {
            Some(path) => anyhow::anyhow!("stack file \"{}\": {e}", path.display()),
            None => e.into(),
        })?;
    let text = match args.format {
        TemplateFormat::Yaml => wsadmin_deploy::yaml::to_yaml(&value),
        TemplateFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&value).context("writing the template as JSON")?;
            text.push('\n');
            text
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the template to \"{}\"", path.display())),
        None => print_stdout(&text),
    }
}

fn policy(args: PolicyArgs) -> Result<()> {
    let stack = stack_spec(args.stack.as_deref(), args.stage, args.table)?;
    let policy = wsadmin_deploy::policy::operator_policy(&wsadmin_deploy::policy::Deployment {
        table: stack.table,
        table_arn: args.table_arn,
        stage: stack.stage,
        api_id: args.api_id,
        region: args.region,
        account: args.account,
    })?;
    let mut text =
        serde_json::to_string_pretty(&policy.document).context("writing the policy as JSON")?;
    text.push('\n');
    print_stdout(&text)?;
    let missing = policy.placeholders();
    if !missing.is_empty() {
        eprintln!(
            "wsstack: replace {} in the policy before using it (or pass --region, --account, --api-id)",
            missing.join(", ")
        );
    }
    Ok(())
}

fn package(args: PackageArgs) -> Result<()> {
    let zips = wsadmin_deploy::package::package(args.arch, args.out.as_deref())?;
    print_stdout(&wsadmin_deploy::package::listing(&zips))
}

async fn up(args: DeployArgs, yes: bool, dry_run: bool) -> Result<()> {
    if !dry_run && !yes && !std::io::stdin().is_terminal() {
        return Err(DeployError::NoTerminal { what: "up" }.into());
    }
    let spec = stack_spec(args.stack.as_deref(), args.stage, None)?;
    let artifacts = match args.artifacts {
        Some(dir) => dir,
        None => default_artifacts_dir(),
    };
    let request = wsadmin_deploy::up::UpRequest {
        name: args.name,
        region: args.region,
        profile: args.profile,
        spec,
        arch: args.arch,
        artifacts,
        overrides: args.parameters,
        dry_run,
    };
    let name = request.name.clone();
    wsadmin_deploy::up::up(&request, &mut |_plan| {
        yes || ask(&format!("deploy these changes to stack \"{name}\"?"))
    })
    .await?;
    Ok(())
}

async fn status(args: StatusArgs) -> Result<()> {
    let request = wsadmin_deploy::status::StatusRequest {
        name: args.name,
        region: args.region,
        profile: args.profile,
    };
    match wsadmin_deploy::status::status(&request).await? {
        wsadmin_deploy::status::Verdict::Unhealthy => {
            anyhow::bail!("the stack is unhealthy (see the verdict above)")
        }
        _ => Ok(()),
    }
}

async fn down(args: DownArgs) -> Result<()> {
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(DeployError::NoTerminal { what: "down" }.into());
    }
    let request = wsadmin_deploy::down::DownRequest {
        name: args.name,
        region: args.region,
        profile: args.profile,
    };
    let yes = args.yes;
    wsadmin_deploy::down::down(&request, &mut |stack| {
        yes || ask(&format!(
            "delete stack \"{}\" ({}) and everything in it, the connection table's records included?",
            stack.name, stack.status
        ))
    })
    .await?;
    Ok(())
}

/// `target/lambda` of the checkout around the working directory or the
/// binary (where `wsstack package` writes), else `target/lambda` here.
fn default_artifacts_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let exe = std::env::current_exe().ok();
    wsadmin_deploy::package::Checkout::find(&cwd, exe.as_deref())
        .map(|c| c.lambda_dir())
        .unwrap_or_else(|| cwd.join("target").join("lambda"))
}

/// Asks a yes/no question on the terminal; anything but y/yes is no.
fn ask(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Writes to standard output; a closed pipe (`| head`) ends quietly.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to standard output"),
    }
}

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

fn print_banner(stack: &LocalStack, state_file: Option<&Path>) {
    let c = stack.config();
    let ws = stack.websocket_url();
    let mgmt = stack.management_endpoint();
    let ddb = stack.dynamodb_endpoint();
    println!("wsstack local is running");
    println!("  WebSocket       {ws}");
    println!("  Management API  {mgmt}");
    println!("  DynamoDB        {ddb}   table {}", c.stack.table);
    println!(
        "  Credentials     AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={}",
        c.access_key_id, c.secret_access_key, c.region
    );
    println!();
    println!("Operate it:");
    println!(
        "  AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={} \\\n    wsadmin --endpoint {mgmt} --table {} --dynamodb-endpoint {ddb} list",
        c.access_key_id, c.secret_access_key, c.region, c.stack.table
    );
    match state_file {
        Some(path) => println!(
            "  or simply: wsadmin --context local list   (it reads {})",
            path.display()
        ),
        None => println!("  (no state file: `wsadmin --context local` will not find this stack)"),
    }
    println!("Try it:");
    println!("  websocat {ws}     then send: {{\"type\":\"message\",\"data\":\"Hello World!\"}}");
    println!();
    println!("Ctrl-C stops everything it started.");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    /// An error that names its source and returns it, as `cannot listen`.
    #[derive(Debug)]
    struct Busy(std::io::Error);

    impl std::fmt::Display for Busy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "cannot listen on 127.0.0.1:3001: {} (pick another --port)",
                self.0
            )
        }
    }

    impl std::error::Error for Busy {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_busy_port_is_named_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(Busy(io)).context("wsstack local");
        assert_eq!(
            super::message(&e),
            "wsstack local: cannot listen on 127.0.0.1:3001: Address already in use (pick another --port)"
        );
    }
}
