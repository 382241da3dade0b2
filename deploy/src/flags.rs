//! The command line as clap sees it: raw values close to the flags. Nothing
//! here does I/O; each command (`cmd`) resolves its arguments into what it
//! runs (an `EmulatorConfig`, a `StackSpec`, an `UpRequest`). Help, the man
//! page and completions all come from this one definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use wsadmin_core::duration::parse_duration;
use wsadmin_deploy::package::Arch;
use wsadmin_emulator::{
    DEFAULT_LAMBDA_CONCURRENCY, LAMBDA_CONCURRENCY_RANGE, LOCAL_ACCESS_KEY_ID, LOCAL_REGION,
    LOCAL_SECRET_ACCESS_KEY,
};

// The most common uses of each command, under its --help.
const MAN_EXAMPLES: &str = "\
Examples:
  wsstack man > /usr/local/share/man/man1/wsstack.1
  wsstack man | man -l -";
const LOCAL_EXAMPLES: &str = "\
Examples:
  wsstack local                                   # on port 3001; Ctrl-C stops it
  wsstack local --port 0 --demo-clients 20        # a free port, simulated traffic
  wsstack local --template template.yaml --idle-timeout 1m
  wsstack local --template sam.yaml --parameter Stage=dev --code EchoFunction=build/echo";

const TEMPLATE_EXAMPLES: &str = "\
Examples:
  wsstack template --out template.yaml
  wsstack template --format json --stage prod --table CHAT_CONNECTIONS
  wsstack template --stack stack.toml --out template.yaml";

const POLICY_EXAMPLES: &str = "\
Examples:
  wsstack policy --region eu-west-1 --account 123456789012 --api-id a1b2c3d4e5
  wsstack policy --stage prod --table CHAT_CONNECTIONS
  wsstack policy --table-arn arn:aws:dynamodb:eu-west-1:123456789012:table/T";

const PACKAGE_EXAMPLES: &str = "\
Examples:
  wsstack package                                 # x86_64 zips in target/lambda
  wsstack package --arch arm64
  wsstack package --out dist";

const UP_EXAMPLES: &str = "\
Examples:
  wsstack up --name chat --region eu-west-1        # shows the plan, then asks
  wsstack up --name chat --yes --parameter LogRetentionInDays=30
  wsstack up --name chat --stage prod --arch arm64";

const PLAN_EXAMPLES: &str = "\
Examples:
  wsstack plan --name chat --region eu-west-1
  wsstack plan --name chat --stack stack.toml --parameter PointInTimeRecovery=true
  wsstack plan --name chat --profile ops";

const STATUS_EXAMPLES: &str = "\
Examples:
  wsstack status                                  # the one wsstack made here
  wsstack status --name chat --region eu-west-1
  wsstack status --name chat --profile ops";

const DOWN_EXAMPLES: &str = "\
Examples:
  wsstack down --name chat                        # asks first
  wsstack down --name chat --region eu-west-1 --yes
  wsstack down --name chat --profile ops";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  wsstack completions bash > /etc/bash_completion.d/wsstack
  wsstack completions zsh > \"${fpath[1]}/_wsstack\"
  wsstack completions fish > ~/.config/fish/completions/wsstack.fish";

#[derive(Debug, Parser)]
#[command(
    name = "wsstack",
    version,
    about = "Stand up the wsadmin WebSocket stack",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: a large `local` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole stack on this machine: an API Gateway WebSocket
    /// emulator, a local DynamoDB (dynalite) and the real handlers.
    ///
    /// Its endpoints go to the state file `wsadmin --context local` reads
    /// (WSADMIN_LOCAL_STATE, default ~/.local/state/wsadmin/local-stack.json),
    /// one stack per file: a second one with the same file is refused. If
    /// dynalite dies, the stack says so and stops.
    #[command(after_help = LOCAL_EXAMPLES)]
    Local(LocalArgs),
    /// Print the stack as a CloudFormation template, for deploying through
    /// your own pipeline (parameters: the code bucket and zip keys, the
    /// architecture, log retention, point-in-time recovery, throttling).
    #[command(after_help = TEMPLATE_EXAMPLES)]
    Template(TemplateArgs),
    /// Print the least-privilege IAM policy for running `wsadmin` against
    /// a deployment, ready for `aws iam create-policy --policy-document`.
    /// Values not given stay placeholders (<REGION>, <ACCOUNT_ID>,
    /// <API_ID>) that must be replaced before use.
    #[command(after_help = POLICY_EXAMPLES)]
    Policy(PolicyArgs),
    /// Build the four handlers as Lambda `bootstrap` zips with cargo-lambda
    /// (`scripts/setup` installs it), into target/lambda/<function>/bootstrap.zip
    /// of the checkout; prints each zip's size.
    #[command(after_help = PACKAGE_EXAMPLES)]
    Package(PackageArgs),
    /// Deploy the stack to AWS through CloudFormation: upload the packaged
    /// zips, show the plan (a change set), ask, execute it with progress,
    /// print the endpoints and save a `wsadmin` context named after it.
    #[command(after_help = UP_EXAMPLES)]
    Up(UpArgs),
    /// Show what `up` would change (a change set, then deleted); changes
    /// nothing. Same as `up --dry-run`. Works before `wsstack package`:
    /// without the zips, the functions' code keys are placeholders.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(DeployArgs),
    /// A deployed stack: status, outputs, drift per resource, whether the
    /// Management endpoint answers, and a verdict.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Delete a stack `wsstack up` made, the artifacts it uploaded and its
    /// saved context.
    #[command(after_help = DOWN_EXAMPLES)]
    Down(DownArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = MAN_EXAMPLES)]
    Man,
}

/// Where on AWS: the region and profile, as `up`, `plan`, `status` and
/// `down` take them (the standard chain when not given).
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS region (default: AWS_REGION or the profile's region).
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile (default: AWS_PROFILE or the default profile).
    #[arg(long)]
    pub profile: Option<String>,
}

/// What `up` and `plan` deploy, and where.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Stack name (CloudFormation), also the saved `wsadmin` context's name.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    pub stage: Option<String>,
    /// Instruction set the zips were packaged for: x86_64 or arm64.
    #[arg(long, default_value_t = Arch::X86_64)]
    pub arch: Arch,
    /// Stack description (TOML); defaults reproduce the seed's stack.
    #[arg(long, value_name = "FILE")]
    pub stack: Option<PathBuf>,
    /// Directory of the packaged zips, as <function>/bootstrap.zip
    /// (default: target/lambda of the checkout, where `wsstack package`
    /// writes them).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// A template parameter, e.g. LogRetentionInDays=30 or
    /// PointInTimeRecovery=true (repeatable; one not given takes the
    /// template's default again).
    #[arg(long = "parameter", value_name = "KEY=VALUE", value_parser = wsadmin_deploy::up::parse_parameter)]
    pub parameters: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Deploy without asking (needed when standard input is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Print the plan only, like `wsstack plan`.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Stack name (default: the only stack wsstack made in the region).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Stack name.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Delete without asking (needed when standard input is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// Port of the WebSocket endpoint and the Management API (0 picks a free one).
    #[arg(long, default_value_t = 3001, env = "WSSTACK_PORT")]
    pub port: u16,
    /// Port of the same endpoints over TLS, wss:// and https:// (0 picks a
    /// free one) [default: 3443, or a free one when --port is 0].
    #[arg(
        long,
        value_name = "PORT",
        env = "WSSTACK_TLS_PORT",
        conflicts_with = "no_tls"
    )]
    pub tls_port: Option<u16>,
    /// Serve no TLS endpoint (and make no certificates).
    #[arg(long)]
    pub no_tls: bool,
    #[command(flatten)]
    pub described: StackArgs,
    /// Start from a CloudFormation or SAM template instead (YAML or JSON;
    /// `wsstack template`'s or your own): its WebSocket API, stage, table,
    /// routes and functions.
    #[arg(long, value_name = "FILE", conflicts_with = "stack")]
    pub template: Option<PathBuf>,
    /// A parameter of the --template, over its Default (repeatable).
    #[arg(long = "parameter", value_name = "KEY=VALUE", requires = "template", value_parser = wsadmin_deploy::from_template::parse_parameter)]
    pub parameters: Vec<(String, String)>,
    /// The code of a --template function (its logical id) whose Code is in
    /// S3: a directory holding it unzipped (repeatable).
    #[arg(long = "code", value_name = "LOGICAL_ID=DIR", requires = "template", value_parser = wsadmin_deploy::from_template::parse_code)]
    pub code: Vec<(String, PathBuf)>,
    /// Access key id the Management API accepts.
    #[arg(long, default_value = LOCAL_ACCESS_KEY_ID)]
    pub access_key_id: String,
    /// Secret access key the Management API accepts.
    #[arg(long, default_value = LOCAL_SECRET_ACCESS_KEY)]
    pub secret_access_key: String,
    /// Region requests must be signed for.
    #[arg(long, default_value = LOCAL_REGION)]
    pub region: String,
    /// Use this DynamoDB instead of starting dynalite.
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// Port for the dynalite it starts (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub dynamodb_port: u16,
    /// Keep dynalite's data in this directory (in memory otherwise).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Close connections idle for this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Close connections this long after they opened.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub max_duration: Duration,
    /// Account-level limit on @connections calls per second (429 beyond).
    #[arg(long, value_name = "N")]
    pub throttle_rps: Option<f64>,
    /// Burst allowed by --throttle-rps (default: the rate).
    #[arg(long, value_name = "M", requires = "throttle_rps")]
    pub throttle_burst: Option<f64>,
    /// Fraction of @connections calls answered 500.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_rate: f64,
    /// Fraction of $disconnect invocations skipped, leaving stale records.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub drop_disconnect_rate: f64,
    /// Bytes queued for one client before posts to it answer 429.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub queue_limit: usize,
    /// Make $connect this much longer, after its handler wrote the record:
    /// meanwhile the Management API answers 410 for the connection and the
    /// handshake waits, as during a slow $connect on AWS.
    #[arg(long, default_value = "0s", value_name = "DUR", value_parser = parse_duration)]
    pub connect_delay: Duration,
    /// Handler invocations (all routes) that may run at once, like Lambda's
    /// account concurrency; beyond it an invocation is throttled: the
    /// handshake is refused (500), a message gets API Gateway's "Internal
    /// server error" frame, a $disconnect is skipped (its record stays).
    #[arg(long, default_value_t = DEFAULT_LAMBDA_CONCURRENCY, value_name = "N", value_parser = parse_concurrency)]
    pub lambda_concurrency: usize,
    /// Start N simulated clients that connect, chat and leave.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub demo_clients: usize,
}

/// The stack description and what overrides it, as `local`, `template`
/// and `policy` take them.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Stack description (TOML); defaults reproduce the seed's stack.
    #[arg(long, value_name = "FILE")]
    pub stack: Option<PathBuf>,
    /// Stage name (overrides the stack file).
    #[arg(long)]
    pub stage: Option<String>,
    /// DynamoDB table of connections (overrides the stack file).
    #[arg(long)]
    pub table: Option<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub described: StackArgs,
    /// Template language.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Yaml)]
    pub format: TemplateFormat,
    /// Write the template to this file instead of standard output. (No
    /// `-o`: in `wsadmin`, `-o` is the output format.)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub described: StackArgs,
    /// The table's full ARN (else built from --region, --account, the table).
    #[arg(long, value_name = "ARN", conflicts_with = "table")]
    pub table_arn: Option<String>,
    /// The WebSocket API's id (placeholder <API_ID> when not given).
    #[arg(long, value_name = "ID")]
    pub api_id: Option<String>,
    /// Region of the deployment (placeholder <REGION> when not given).
    #[arg(long)]
    pub region: Option<String>,
    /// AWS account id of the deployment (placeholder <ACCOUNT_ID> when not given).
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Instruction set of the functions: x86_64 or arm64 (the template's
    /// Architecture parameter must match).
    #[arg(long, default_value_t = Arch::X86_64)]
    pub arch: Arch,
    /// Also copy the zips here, as DIR/<function>/bootstrap.zip.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `--lambda-concurrency`: a whole number within AWS's range.
pub fn parse_concurrency(text: &str) -> Result<usize, String> {
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
