//! The command line as clap sees it: raw values close to the flags. Nothing
//! here does I/O; `deployment` and the commands resolve these into what they
//! operate on. Help, the man page and completions all come from this one
//! definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wsadmin_core::duration::parse_duration;
use wsadmin_core::filter::{Filter, Where};

const AFTER_HELP: &str = "\
Exit status: 0 ok, 1 error, 2 usage error (bad flag or input: nothing was
changed), 3 partial failure (some targets failed: see the report),
130 interrupted (the partial report says what was done).";

const AFTER_LONG_HELP: &str = "\
Targeting: --context NAME (or the current context), else --endpoint URL or
--api-id ID --stage NAME, with --table NAME. The built-in context `local`
targets a running `wsstack local`. Flags override the context's values.

Environment:
  WSADMIN_CONTEXT, WSADMIN_ENDPOINT, WSADMIN_API_ID, WSADMIN_STAGE,
  WSADMIN_TABLE, WSADMIN_TABLE_KEY, WSADMIN_REGION, WSADMIN_PROFILE,
  WSADMIN_DYNAMODB_ENDPOINT, WSADMIN_OUTPUT, WSADMIN_COLOR,
  WSADMIN_NO_HEADERS   mirror the flags of the same name
  WSADMIN_CONFIG       the contexts file (default: <config dir>/wsadmin/config.toml)
  WSADMIN_LOCAL_STATE  the state file of `wsstack local`
  WSADMIN_NOW          a fixed clock, epoch milliseconds (for reproducible ages)
  WSADMIN_GATEWAY_CLIENT
                       lean or sdk: which client carries the Management
                       API's requests (the AWS SDK's, to compare). Unset:
                       lean, or sdk where a proxy applies to the endpoint
  HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY
                       proxies, as the AWS SDK reads them
  SSL_CERT_FILE        CA certificates https endpoints are checked with
                       (instead of the system's)
  NO_COLOR             no color (as --color never)
  COLUMNS              the width tables fit on a terminal (else the terminal's)
  AWS_*                the standard AWS variables and config files apply

Exit status:
  0  ok
  1  error (nothing or not everything could be done: the message says why)
  2  usage error (a bad flag or input, refused before any change)
  3  partial failure (some targets failed or records could not be cleaned
     up: see the summary or -o json report)
  130  interrupted by Ctrl-C or SIGTERM: requests in flight finished, the
     partial report says what was done";

// The three most common uses of each command, under its --help.
const LIST_EXAMPLES: &str = "\
Examples:
  wsadmin list --where room=7                     # the connections in room 7
  wsadmin list --live --idle-over 10m --sort idle # probed: idle ones first
  wsadmin list --where 'name=\"Ana Maria\"' -o ids | wsadmin disconnect -";

const INSPECT_EXAMPLES: &str = "\
Examples:
  wsadmin inspect L0SM9cOFvHcCIhw=  # record and GetConnection
  wsadmin inspect -o json -- -L0SM9cOFvHcCIh=      # an id starting with '-'
  wsadmin list --where user=ana -o ids | wsadmin inspect -
  wsadmin inspect L0SM9cOFvHcCIhw= --history       # and what happened to it, in order";

const SEND_EXAMPLES: &str = "\
Examples:
  wsadmin send L0SM9cOFvHcCIhw= --data '{\"notice\":\"hi\"}'
  wsadmin send --file message.json ID1= ID2=       # the message from a file
  echo hi | wsadmin send --file - L0SM9cOFvHcCIhw= # or from standard input";

const BROADCAST_EXAMPLES: &str = "\
Examples:
  wsadmin broadcast --data '{\"notice\":\"maintenance at 22:00\"}' --where room=7
  wsadmin broadcast --dry-run --where room=7       # who would receive it
  wsadmin broadcast --file notice.json --yes --rate 500 -o json";

const DISCONNECT_EXAMPLES: &str = "\
Examples:
  wsadmin disconnect L0SM9cOFvHcCIhw=              # one connection
  wsadmin disconnect --idle-over 30m  # counts them and asks (--yes in scripts)
  wsadmin disconnect --where 'user=ana' --dry-run # who would be closed";

const PRUNE_EXAMPLES: &str = "\
Examples:
  wsadmin prune  # deletes records of gone connections
  wsadmin -q prune -o json  # from cron: the report as JSON
  wsadmin prune --idle-over 2h --yes  # and close connections idle 2 h";

const STATS_EXAMPLES: &str = "\
Examples:
  wsadmin stats --by room                         # connections per room
  wsadmin stats --by userAgent --where room=7     # browsers in room 7
  wsadmin stats -o json";

const STATUS_EXAMPLES: &str = "\
Examples:
  wsadmin status                                  # the current context
  wsadmin --context prod status
  wsadmin --api-id a1b2c3d4e5 --stage prod --region eu-west-1 status";

const TUI_EXAMPLES: &str = "\
Examples:
  wsadmin tui                                     # the current context
  wsadmin --context local tui
  wsadmin --context prod tui --interval 5s";

const CONNECT_EXAMPLES: &str = "\
Examples:
  wsadmin --context local connect                 # type lines; Ctrl-D closes
  wsadmin --context local connect -x 'Marko?' --wait 2s
  wsadmin connect wss://abc123.execute-api.eu-west-1.amazonaws.com/prod --sign";

const LOGS_EXAMPLES: &str = "\
Examples:
  wsadmin logs --since 1h
  wsadmin logs --follow --where eventType=DISCONNECT
  wsadmin logs --where 'status!=200' -o ndjson
  wsadmin logs --api-id a1b2c3 --stage prod --follow";

const EVENTS_EXAMPLES: &str = "\
Examples:
  wsadmin events --follow  # lifecycle events as they happen
  wsadmin events -f -o ndjson --where room=7 | jq .
  wsadmin events -f --source scan --interval 5s";

const CONTEXT_EXAMPLES: &str = "\
Examples:
  wsadmin context add prod --api-id a1b2c3d4e5 --stage prod --region eu-west-1
  wsadmin context use prod
  wsadmin context set prod --profile ops          # change one setting";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  wsadmin completions bash > /etc/bash_completion.d/wsadmin
  wsadmin completions zsh > \"${fpath[1]}/_wsadmin\"
  wsadmin completions fish > ~/.config/fish/completions/wsadmin.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  wsadmin man > /usr/local/share/man/man1/wsadmin.1
  wsadmin man | man -l -";

#[derive(Debug, Parser)]
#[command(
    name = "wsadmin",
    version,
    about = "Operate the live connections of an API Gateway WebSocket API",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Which deployment to operate. Also what `context add` records.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Target")]
pub struct TargetArgs {
    /// Use this context from the config file (`local`: a running `wsstack local`).
    #[arg(long, global = true, env = "WSADMIN_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    /// Management API endpoint: the stage URL (https://…/STAGE, or wss://, http://, ws://).
    #[arg(long, global = true, env = "WSADMIN_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// API id, resolved with --stage through the API Gateway control plane.
    /// With --endpoint (a custom domain), used for the control plane only
    /// (`status`).
    #[arg(long, global = true, env = "WSADMIN_API_ID", value_name = "ID")]
    pub api_id: Option<String>,
    /// Stage name (with --api-id).
    #[arg(long, global = true, env = "WSADMIN_STAGE", value_name = "NAME")]
    pub stage: Option<String>,
    /// DynamoDB table of connections [default: WS_CONNECTIONS].
    #[arg(long, global = true, env = "WSADMIN_TABLE", value_name = "NAME")]
    pub table: Option<String>,
    /// Its hash key attribute [default: connectionId].
    #[arg(long, global = true, env = "WSADMIN_TABLE_KEY", value_name = "ATTR")]
    pub table_key: Option<String>,
    /// AWS region (else AWS_REGION, the profile, or the endpoint's host).
    #[arg(long, global = true, env = "WSADMIN_REGION", value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile (else AWS_PROFILE).
    #[arg(long, global = true, env = "WSADMIN_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// DynamoDB endpoint (a local DynamoDB).
    #[arg(
        long,
        global = true,
        env = "WSADMIN_DYNAMODB_ENDPOINT",
        value_name = "URL"
    )]
    pub dynamodb_endpoint: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How the table holds its connections, for one-off use (a context saves
/// it: `wsadmin context add NAME --detect`). Without --registry-id: the
/// context's mapping, or our own schema.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    /// Where the connection id is: ATTR or ATTR=PATTERN (pk=CONN#{id});
    /// items not matching are not connections and are never touched.
    #[arg(long, global = true, value_name = "ATTR[=PATTERN]")]
    pub registry_id: Option<String>,
    /// The attribute holding when it connected (epoch ms, epoch s or
    /// ISO-8601, told apart by value).
    #[arg(long, global = true, value_name = "ATTR", requires = "registry_id")]
    pub registry_connected_at: Option<String>,
    /// Top-level attributes shown and selected on as meta; repeatable or
    /// comma-separated.
    #[arg(
        long,
        global = true,
        value_name = "ATTR",
        value_delimiter = ',',
        requires = "registry_id"
    )]
    pub registry_meta: Vec<String>,
    /// A field of a key's value shown as meta, ATTR=PATTERN (pk=ROOM#{room}:
    /// `--where room=7` then reads that one partition); repeatable.
    #[arg(
        long,
        global = true,
        value_name = "ATTR=PATTERN",
        requires = "registry_id"
    )]
    pub registry_key_field: Vec<String>,
    /// The attribute wsadmin may write its gone mark into (the table's
    /// owner agrees); without it marks stay on this machine.
    #[arg(long, global = true, value_name = "ATTR", requires = "registry_id")]
    pub registry_gone_mark: Option<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct GlobalArgs {
    /// Output format: table (fitted to the terminal's width), wide (a
    /// table with every column whole), json, ndjson, or ids.
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        env = "WSADMIN_OUTPUT",
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,
    /// Tables without their header line.
    #[arg(long, global = true, env = "WSADMIN_NO_HEADERS")]
    pub no_headers: bool,
    /// A JMESPath expression applied to -o json (the whole document) or to
    /// each -o ndjson line (lines where it yields null are left out), as
    /// the AWS CLI's --query: `[?meta.room=='7'].connectionId`,
    /// `[*].{id: connectionId, ip: sourceIp}`, `length(@)`, `delivered`.
    #[arg(long, global = true, value_name = "EXPR")]
    pub query: Option<String>,
    /// More logging on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr: no progress, no summaries.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Color: auto (a terminal without NO_COLOR), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "WSADMIN_COLOR",
        default_value_t = ColorChoice::Auto
    )]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    /// A table with every column, nothing shortened.
    Wide,
    Json,
    Ndjson,
    Ids,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List registered connections (the DynamoDB registry).
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show one connection's record and what GetConnection says, side by side.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Post a message to connections by id.
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// Post a message to every registered connection (or those matching).
    #[command(after_help = BROADCAST_EXAMPLES)]
    Broadcast(BroadcastArgs),
    /// Close connections (their records are removed too).
    #[command(after_help = DISCONNECT_EXAMPLES)]
    Disconnect(DisconnectArgs),
    /// Delete the records of gone connections; optionally close idle ones.
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),
    /// Count registered connections: by meta key, sourceIp or user-agent
    /// family (--by), and by age.
    #[command(after_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
    /// Check the API, the table and the Management API; one verdict line.
    #[command(after_help = STATUS_EXAMPLES)]
    Status,
    /// The live dashboard: connections, details, activity; act on them.
    #[command(after_help = TUI_EXAMPLES)]
    Tui(TuiArgs),
    /// A WebSocket test client: send lines or --execute messages, print what arrives.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectArgs),
    /// Connection lifecycle as it happens: connected, disconnected, gone, pruned.
    #[command(after_help = EVENTS_EXAMPLES)]
    Events(EventsArgs),
    /// The stage's access log: every connect, message and disconnect.
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Manage saved deployments (contexts).
    #[command(after_help = CONTEXT_EXAMPLES)]
    #[command(subcommand)]
    Context(ContextCommand),
    /// How the table holds its connections: detect the mapping.
    #[command(after_help = REGISTRY_EXAMPLES)]
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = MAN_EXAMPLES)]
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only connections opened longer ago than this (30s, 10m, 2h, 1d, 1h30m).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Only connections matching a selector, as kubectl's: room=7,user!=ana,
    /// room in (1,2), room notin (3), user (has it), !user, globs
    /// (userAgent=*Firefox*, ignoring case); keys are meta (query parameter)
    /// keys, sourceIp and userAgent. Repeatable (all must hold).
    #[arg(long = "where", value_name = "SELECTOR", value_parser = parse_where)]
    pub wheres: Vec<Where>,
}

fn parse_where(s: &str) -> Result<Where, String> {
    s.parse()
        .map_err(|e: wsadmin_core::filter::WhereError| e.to_string())
}

impl FilterArgs {
    /// No selection: every registered connection.
    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.wheres.is_empty()
    }

    /// The selection in words, for a question: `matching room=7, connected
    /// over 1h ago`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.wheres.is_empty() {
            let wheres: Vec<String> = self.wheres.iter().map(ToString::to_string).collect();
            parts.push(format!("matching {}", wheres.join(" and ")));
        }
        if let Some(d) = self.older_than {
            parts.push(format!(
                "connected over {} ago",
                wsadmin_core::duration::format_duration(d)
            ));
        }
        parts.join(", ")
    }

    pub fn filter(&self, idle_over: Option<Duration>) -> Filter {
        Filter {
            older_than: self.older_than,
            idle_over,
            wheres: self.wheres.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Age,
    Idle,
    Ip,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Ask the Management API about each connection (state, last activity, idle).
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only connections idle longer than this (implies --live).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub idle_over: Option<Duration>,
    /// At most N connections.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Sort (reads the whole table first; oldest/most idle first).
    #[arg(long, value_enum)]
    pub sort: Option<SortKey>,
    /// GetConnection calls in flight with --live.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// GetConnection calls per second at most with --live.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
    /// Keep watching: the table re-printed on change, or with -o ndjson one
    /// line per change (added, removed, changed).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// How often --watch scans the table.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_interval, requires = "watch")]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Connection ids; `-` reads them from standard input, one per line.
    /// An id starting with `-` goes after `--`.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Also what happened to it, in time order: its record, GetConnection
    /// and the stage's access log (the local stack's file, or the
    /// CloudWatch Logs group the stage logs to).
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Where the stage's access log is, when not found from the stage.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// The CloudWatch Logs group of the stage's access log [default: the
    /// one the stage's AccessLogSettings name, read with --api-id].
    #[arg(long, value_name = "NAME")]
    pub log_group: Option<String>,
    /// Read lines from this long ago [default: inspect: the connection's
    /// connectedAt, else 1d; logs: 15m].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub since: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing lines as they arrive (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines matching a selector on their fields: eventType=MESSAGE,
    /// routeKey=sendmessage, status!=200, connectionId=ID, error (has
    /// one); repeatable (all must hold).
    #[arg(long = "where", value_name = "SELECTOR", value_parser = parse_where)]
    pub wheres: Vec<Where>,
    /// How often --follow reads.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PayloadArgs {
    /// The message text.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub data: Option<String>,
    /// Read the message from a file (`-`: standard input).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Connection ids; `-` reads them from standard input, one per line.
    /// An id starting with `-` goes after `--` (flags before it).
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub payload: PayloadArgs,
    #[command(flatten)]
    pub sweep: SweepArgs,
}

#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// `-` reads the message from standard input.
    #[arg(value_name = "-")]
    pub stdin: Option<String>,
    #[command(flatten)]
    pub payload: PayloadArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Requests in flight at most (192 measured best on the local stack;
    /// 429s slow it down adaptively).
    #[arg(long, default_value_t = 192, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Keep the records of connections found gone (410).
    #[arg(long)]
    pub no_prune: bool,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
    /// Write progress to FILE as it goes (a new file), so a broadcast cut
    /// short (Ctrl-C, a killed process, a lost shell) can be finished with
    /// --resume FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub checkpoint: Option<PathBuf>,
    /// Finish the broadcast a --checkpoint FILE was written for: give the
    /// same message and selection (checked); nobody is posted to twice.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

/// How a bulk command paces itself and when it may delete a record; the
/// same flags on every command that sweeps.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Sweep")]
pub struct SweepArgs {
    /// Requests per second at most (retries included); 429s from the
    /// account slow it down further, adaptively.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// A connection answering 410 loses its record only when its record is
    /// older than this: younger, its `$connect` may still be running (API
    /// Gateway's integration timeout is 29s).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_grace)]
    pub grace: Duration,
}

fn parse_grace(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "invalid grace {s:?}: at least 1s (API Gateway's $connect may take 29s; the default 30s is safe)"
        ));
    }
    Ok(d)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 1.0 => Ok(r),
        _ => Err(format!(
            "invalid rate {s:?}: use a number of requests per second, at least 1"
        )),
    }
}

/// `--yes` and `--dry-run`: the same on every command that closes live
/// connections or messages everyone.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Confirmation")]
pub struct ConfirmArgs {
    /// Do not ask (without a terminal, required to change anything).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// List the targets, change nothing (-o ids: only the ids on stdout).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Connection ids; `-` reads them from standard input, one per line.
    /// An id starting with `-` goes after `--`.
    #[arg(
        value_name = "ID",
        required_unless_present_any = ["idle_over", "all", "wheres", "older_than"],
        conflicts_with_all = ["idle_over", "all", "wheres", "older_than"]
    )]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Every live connection idle longer than this (probes each; with
    /// --where, those matching).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "all")]
    pub idle_over: Option<Duration>,
    /// Every registered connection.
    #[arg(long, conflicts_with_all = ["wheres", "older_than"])]
    pub all: bool,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also close live connections idle longer than this (asks first).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub idle_over: Option<Duration>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// GetConnection calls in flight at most.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
    #[command(flatten)]
    pub confirm: ConfirmArgs,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Count by this key: a meta (query parameter) key, sourceIp, or
    /// userAgent (by family: Firefox, Chrome, Safari, curl, …); repeatable.
    #[arg(long = "by", value_name = "KEY")]
    pub by: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Sample the table (DescribeTable, DescribeTimeToLive, a bounded Scan)
    /// and propose how it holds connections, with the evidence for each
    /// choice. Changes nothing; `context add NAME --detect` saves it.
    Detect {
        /// Items to sample.
        #[arg(long, default_value_t = 200, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        sample: u32,
    },
    /// Show the mapping in use (the context's, the flags', or our own).
    Show,
}

const REGISTRY_EXAMPLES: &str = "\
Examples:
  wsadmin registry detect --endpoint https://abc.execute-api.eu-west-1.amazonaws.com/prod --table Chat
  wsadmin context add prod --endpoint URL --table Chat --detect
  wsadmin list --table Chat --registry-id 'pk=CONN#{id}' --registry-connected-at createdAt";

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Save the target flags given (--endpoint or --api-id/--stage, --table, …) as NAME.
    ///
    /// An existing NAME is refused: --force replaces it whole, `context set`
    /// changes some of its settings. --detect samples the table first and
    /// saves the registry mapping it proposes, once agreed.
    Add {
        name: String,
        /// Replace an existing context of this name (its other settings go).
        #[arg(long)]
        force: bool,
        /// Detect how the table holds its connections (as `wsadmin registry
        /// detect`), show the evidence, ask, and save the mapping too.
        #[arg(long)]
        detect: bool,
        /// Items sampled by --detect.
        #[arg(long, default_value_t = 200, value_name = "N", requires = "detect", value_parser = clap::value_parser!(u32).range(1..=10_000))]
        sample: u32,
        /// Agree without asking (scripts).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Change some settings of context NAME: the target flags given
    /// (--table, --region, …) replace theirs, the others stay.
    Set {
        name: String,
        /// Remove a setting (endpoint, api-id, stage, table, table-key,
        /// region, profile, dynamodb-endpoint); repeatable.
        #[arg(long, value_name = "SETTING", value_parser = parse_setting)]
        unset: Vec<wsadmin_core::context::Setting>,
    },
    /// Make NAME the current context.
    Use { name: String },
    /// List contexts.
    List,
    /// Show a context (default: the current one).
    Show { name: Option<String> },
    /// Remove a context (not the built-in `local`).
    Remove { name: String },
}

/// `context set --unset`: a setting's key as the file writes it.
fn parse_setting(text: &str) -> Result<wsadmin_core::context::Setting, String> {
    use wsadmin_core::context::Setting;
    Setting::parse(text).ok_or_else(|| {
        let keys: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
        format!("unknown setting {text:?}: one of {}", keys.join(", "))
    })
}

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// How often the registry is refreshed.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
    /// A connection answering 410 loses its record (prune, broadcast) only
    /// when its record is older than this.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_grace)]
    pub grace: Duration,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The WebSocket URL (ws://HOST/STAGE or wss://…); default: the
    /// context's (--context NAME, or the current one).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// A handshake header, 'Name: value'; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Ask for this subprotocol (Sec-WebSocket-Protocol); repeatable.
    #[arg(long = "subprotocol", value_name = "PROTOCOL")]
    pub subprotocols: Vec<String>,
    /// A query-string parameter of the handshake (the $connect meta),
    /// key=value; repeatable. (--query is the global JMESPath flag.)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Send this message instead of reading standard input; repeatable, in
    /// order. Then print what arrives within --wait and close.
    #[arg(short = 'x', long, value_name = "MSG")]
    pub execute: Vec<String>,
    /// How long to wait for messages after the last one sent (--execute,
    /// or the end of piped standard input) before closing.
    #[arg(short = 'w', long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Sign the handshake with the current AWS credentials (SigV4 in the
    /// query string), for a $connect with IAM authorization.
    #[arg(long)]
    pub sign: bool,
    /// For wss://, trust the CA certificates in this PEM file too (beside
    /// the system's roots). The local stack's CA is trusted without it
    /// when the URL is its TLS endpoint (its state file says which).
    #[arg(long, value_name = "FILE", env = "AWS_CA_BUNDLE")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep watching after what the registry shows now (Ctrl-C to stop).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Where --follow learns of changes: the table's DynamoDB Stream when
    /// it has one (auto), or successive scans.
    #[arg(long, value_enum, default_value_t = EventSource::Auto)]
    pub source: EventSource,
    /// How often --follow reads [default: 500ms from the stream, 2s by
    /// scans (each scan reads the whole table)].
    #[arg(long, value_name = "DUR", value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Only connections matching a selector, as `list --where` takes it
    /// (room=7,user!=ana, room in (1,2), !user, userAgent=*Firefox*);
    /// repeatable.
    #[arg(long = "where", value_name = "SELECTOR", value_parser = parse_where)]
    pub wheres: Vec<Where>,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventSource {
    /// The stream if the table has one, else scans.
    Auto,
    /// The table's DynamoDB Stream (NEW_AND_OLD_IMAGES shows the most).
    Stream,
    /// Successive scans of the table, diffed.
    Scan,
}

/// A polling interval: at least 100ms.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err(format!("invalid interval {s:?}: at least 100ms"));
    }
    Ok(d)
}
