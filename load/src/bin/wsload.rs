//! `wsload`: the library's fleets from the shell, against `wsstack local`.
//! Flags are parsed into `Cli`, resolved once into a checked `Plan` (bad
//! input exits 2 before any socket opens), then run; progress goes to
//! stderr, the report to stdout.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use tokio::time::Instant;
use wsadmin_core::duration::parse_duration;
use wsadmin_load::churn::ChurnSummary;
use wsadmin_load::fleet::FleetConfig;
use wsadmin_load::tag::{Tagger, random_run};
use wsadmin_load::target::parse_meta;
use wsadmin_load::{Churn, Fleet, LoadError, Rate, Report, Tag};

const EXAMPLES: &str = "\
Examples:
  # 1,000 clients for a minute; broadcast to them from another shell:
  wsload hold --url ws://127.0.0.1:3001/dev -n 1000 --duration 60s
  wsadmin --context local broadcast --yes --data \"wsload:try:1:$(date +%s%3N)\"

  # 5 of them never read their socket (their posts end in 429):
  wsload hold --url ws://127.0.0.1:3001/dev -n 905 --never-read 5 -o json

  # 500 clients, 50 leave (and 50 join) per second, a fifth without a close:
  wsload churn --url ws://127.0.0.1:3001/dev -n 500 --rate 50/s --drop-fraction 0.2 --duration 30s

  # 3 clients send 20 tagged messages/s through the message route:
  wsload send --url ws://127.0.0.1:3001/dev --clients 3 --rate 20/s --duration 10s

Messages are counted per tag: `wsload:<run>:<seq>:<sent-at-epoch-ms>` anywhere
in a message's text. A message is owed to the clients connected throughout
[sent-at, sent-at + --settle]; the report says how many of them got it exactly
once, missed it or got it more than once, and the delivery latency.

Exit status: 0 done, 1 failure (a client could not connect...), 2 bad input,
3 a message was missed or duplicated by a client that reads.";

#[derive(Debug, Parser)]
#[command(
    name = "wsload",
    version,
    about = "Real WebSocket clients in numbers, for load and reliability runs against a local stack (loopback only)",
    after_help = EXAMPLES,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open N clients and hold them, counting what they receive.
    Hold {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Stop after this long (or at Ctrl-C).
        #[arg(long, value_name = "DUR", default_value = "60s")]
        duration: String,
    },
    /// Keep about N clients open while clients leave and join at a rate.
    Churn {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Clients leaving (each replaced) per second or minute: 50/s, 600/m.
        #[arg(long, value_name = "RATE")]
        rate: String,
        /// Fraction of leaves that drop the socket without a close frame.
        #[arg(long, value_name = "F", default_value_t = 0.0)]
        drop_fraction: f64,
        #[arg(long, value_name = "DUR", default_value = "30s")]
        duration: String,
    },
    /// Clients that send tagged messages to the `message` route (which
    /// broadcasts them back to everyone), and count what comes back.
    Send {
        #[command(flatten)]
        fleet: FleetArgs,
        /// Messages per second or minute, all senders together.
        #[arg(long, value_name = "RATE", default_value = "10/s")]
        rate: String,
        #[arg(long, value_name = "DUR", default_value = "10s")]
        duration: String,
    },
}

#[derive(Debug, Args)]
struct FleetArgs {
    /// The stack's WebSocket URL (a loopback address).
    #[arg(long, env = "WSLOAD_URL", value_name = "URL")]
    url: String,
    /// Clients to open [default: 100; 3 for send].
    #[arg(short = 'n', long = "clients", value_name = "N")]
    clients: Option<usize>,
    /// Query-string parameter for every client; `{i}` becomes its number
    /// (`--meta room=7 --meta user=c{i}`). Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// The first K clients never read their socket.
    #[arg(long, value_name = "K", default_value_t = 0)]
    never_read: usize,
    /// Handshakes (and clean closes) in flight at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    concurrency: usize,
    /// Spread clients over this many source addresses (127.0.0.1, .2, ...)
    /// [default: one per 20,000 clients].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    source_addresses: usize,
    /// Names the run in user agents (`wsload/<run>/<n>`) and tags
    /// [default: random].
    #[arg(long, value_name = "NAME")]
    run: Option<String>,
    /// How long a message may take to arrive: it is owed to the clients
    /// connected from its sending until this long after.
    #[arg(long, value_name = "DUR", default_value = "1s")]
    settle: String,
    /// `text` for people, `json` for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// The most messages one `send` run sends (each is tracked in the report).
const MAX_SENT: f64 = 100_000.0;
/// The fleet closes itself this long after the run should have ended.
const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

/// A checked command line.
#[derive(Debug)]
struct Plan {
    mode: Mode,
    fleet: FleetConfig,
    duration: Duration,
    settle: Duration,
    output: Output,
}

#[derive(Debug)]
enum Mode {
    Hold,
    Churn(Churn),
    Send(Rate),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wsload: {} (see wsload --help)", first_line(&e));
            return ExitCode::from(2);
        }
    };
    let plan = match resolve(cli) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("wsload: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wsload: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(execute(plan));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsload: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// clap's error on one line, without its usage block: `the following
/// required arguments were not provided: --url <URL>`.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_owned()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn duration(flag: &str, input: &str) -> Result<Duration> {
    let d = parse_duration(input).with_context(|| format!("invalid {flag}"))?;
    if d.is_zero() {
        anyhow::bail!("invalid {flag} {input:?}: it must be longer than zero");
    }
    Ok(d)
}

fn resolve(cli: Cli) -> Result<Plan> {
    let (args, mode, dur, default_clients) = match cli.command {
        Command::Hold { fleet, duration } => (fleet, Mode::Hold, duration, 100),
        Command::Churn {
            fleet,
            rate,
            drop_fraction,
            duration: d,
        } => {
            let churn = Churn {
                rate: Rate::parse(&rate)?,
                drop_fraction,
                duration: duration("--duration", &d)?,
            };
            churn.validate()?;
            (fleet, Mode::Churn(churn), d, 100)
        }
        Command::Send {
            fleet,
            rate,
            duration: d,
        } => {
            let rate = Rate::parse(&rate)?;
            let messages = rate.as_per_second() * duration("--duration", &d)?.as_secs_f64();
            if messages > MAX_SENT {
                anyhow::bail!(
                    "--rate {rate} for --duration {d} is {messages:.0} messages, over the {MAX_SENT} a send run tracks"
                );
            }
            (fleet, Mode::Send(rate), d, 3)
        }
    };
    let duration = duration("--duration", &dur)?;
    let settle = parse_duration(&args.settle).context("invalid --settle")?;
    let meta = args
        .meta
        .iter()
        .map(|m| parse_meta(m))
        .collect::<Result<Vec<_>, LoadError>>()?;
    let fleet = FleetConfig {
        meta,
        never_read: args.never_read,
        concurrency: args.concurrency,
        source_addresses: args.source_addresses,
        run: args.run.unwrap_or_else(random_run),
        deadline: duration + settle + DEADLINE_MARGIN,
        ..FleetConfig::new(args.url, args.clients.unwrap_or(default_clients))
    };
    fleet.validate()?;
    Ok(Plan {
        mode,
        fleet,
        duration,
        settle,
        output: args.output,
    })
}

/// Runs the plan; true when no message was lost or duplicated.
async fn execute(plan: Plan) -> Result<bool> {
    let n = plan.fleet.clients;
    let run = plan.fleet.run.clone();
    let url = plan.fleet.url.clone();
    eprintln!("opening {n} clients to {url} (user agents wsload/{run}/<n>)");
    let opening = Instant::now();
    let fleet = Fleet::open(plan.fleet).await?;
    eprintln!(
        "{n} clients open in {:.1}s",
        opening.elapsed().as_secs_f64()
    );
    let churning = match plan.mode {
        Mode::Churn(churn) => Some(fleet.churn(churn)?),
        _ => None,
    };
    let tagger = Tagger::new(&run)?;
    let mut sent: Vec<Tag> = Vec::new();

    let started = Instant::now();
    let end = started + plan.duration;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut second =
        tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
    let send_rate = match plan.mode {
        Mode::Send(rate) => Some(rate),
        _ => None,
    };
    let send_tick = send_rate.map_or(Duration::from_secs(3600), |r| {
        r.interval().max(Duration::from_millis(10))
    });
    let mut last_received = 0;
    let mut interrupted = false;
    let (mut attempts, mut next_sender) = (0u64, 0usize);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
            _ = fleet.stopped() => break,
            _ = second.tick() => {
                let s = fleet.stats();
                let mut line = format!(
                    "[{:>4}s] open {}  opened {}  received {} (+{}/s)",
                    started.elapsed().as_secs(),
                    s.open,
                    s.opened,
                    s.received,
                    s.received - last_received
                );
                if send_rate.is_some() {
                    line.push_str(&format!("  sent {}", sent.len()));
                }
                eprintln!("{line}");
                last_received = s.received;
            }
            _ = tokio::time::sleep(send_tick), if send_rate.is_some() => {
                let rate = send_rate.map_or(0.0, |r| r.as_per_second());
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                while attempts < due {
                    attempts += 1;
                    let tag = tagger.next();
                    // Senders in turn; one the stack closed is skipped.
                    let mut tries = 0;
                    while fleet.send(next_sender % n, tag.message_route_body()).await.is_err() {
                        next_sender += 1;
                        tries += 1;
                        if tries == n {
                            anyhow::bail!("every sender is closed (see the stack's log)");
                        }
                    }
                    next_sender += 1;
                    sent.push(tag);
                }
            }
        }
    }
    // Churn ends by itself with the run (its last newcomers complete their
    // handshakes); Ctrl-C cuts it short.
    let held = started.elapsed();
    let churn = match churning {
        Some(c) if interrupted => Some(c.stop().await?),
        Some(c) => Some(c.finished().await?),
        None => None,
    };
    // Let the last messages land; a second Ctrl-C skips the wait.
    if !interrupted {
        tokio::select! {
            _ = tokio::time::sleep(plan.settle) => {}
            _ = &mut ctrl_c => {}
        }
    } else {
        tokio::time::sleep(plan.settle.min(Duration::from_secs(1))).await;
    }
    let report = fleet.report(&sent, plan.settle);
    fleet.close().await;
    let lossless = !report.has_losses();
    let summary = Summary {
        run: &run,
        url: &url,
        seconds: held.as_secs_f64(),
        interrupted,
        lossless,
        churn,
        sent: send_rate.map(|_| sent.len()),
        report,
    };
    let mut out = std::io::stdout().lock();
    match plan.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        }
        Output::Text => write_text(&mut out, &summary)?,
    }
    out.flush()?;
    Ok(lossless)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    run: &'a str,
    url: &'a str,
    seconds: f64,
    interrupted: bool,
    /// No settled message missed (by a client that reads) or duplicated.
    lossless: bool,
    churn: Option<ChurnSummary>,
    sent: Option<usize>,
    #[serde(flatten)]
    report: Report,
}

/// Messages listed one by one in the text report; beyond, only those with
/// losses are.
const LISTED: usize = 20;

fn write_text(out: &mut impl Write, s: &Summary<'_>) -> std::io::Result<()> {
    let c = &s.report.clients;
    writeln!(
        out,
        "run {} against {} for {:.1}s{}",
        s.run,
        s.url,
        s.seconds,
        if s.interrupted { " (interrupted)" } else { "" }
    )?;
    writeln!(
        out,
        "clients: {} opened; at the end {} open, {} closed cleanly, {} dropped, {} closed by the server, {} failed",
        c.opened, c.open, c.closed_clean, c.dropped, c.closed_by_server, c.failed
    )?;
    if let Some(ch) = &s.churn {
        writeln!(
            out,
            "churn: {} left with a close frame, {} dropped their socket, {} joined, {} failed to join",
            ch.left_clean, ch.left_dropped, ch.joined, ch.join_failures
        )?;
        if let Some(e) = &ch.last_join_error {
            writeln!(out, "  last join error: {e}")?;
        }
    }
    if let Some(sent) = s.sent {
        writeln!(out, "sent: {sent} tagged messages to the message route")?;
    }
    let messages = &s.report.messages;
    if messages.is_empty() {
        writeln!(
            out,
            "messages: none tagged (a tag is wsload:<run>:<seq>:<sent-at-epoch-ms> in the text)"
        )?;
    }
    let complete = messages
        .iter()
        .filter(|m| m.missing == 0 && m.duplicated == 0)
        .count();
    let complete_readers = messages
        .iter()
        .filter(|m| m.missing == m.missing_never_read && m.duplicated == 0)
        .count();
    if !messages.is_empty() {
        write!(
            out,
            "messages: {} tagged, {} received exactly once by every client connected throughout",
            messages.len(),
            complete
        )?;
        if complete_readers != complete {
            write!(out, " ({complete_readers} by every client that reads)")?;
        }
        writeln!(out)?;
    }
    let lossy = |m: &&wsadmin_load::MessageReport| m.missing > 0 || m.duplicated > 0;
    let shown: Vec<_> = if messages.len() <= LISTED {
        messages.iter().collect()
    } else {
        messages.iter().filter(lossy).take(LISTED).collect()
    };
    for m in shown {
        write!(
            out,
            "  {}  {}/{} exactly once, {} missing",
            m.tag, m.exactly_once, m.connected_throughout, m.missing
        )?;
        if m.missing_never_read > 0 {
            write!(out, " ({} never read)", m.missing_never_read)?;
        }
        write!(out, ", {} duplicated", m.duplicated)?;
        if let Some(l) = &m.latency {
            write!(
                out,
                "; latency p50 {}ms p90 {}ms p99 {}ms max {}ms",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            )?;
        }
        if !m.settled {
            write!(out, " (not settled)")?;
        }
        writeln!(out)?;
    }
    if let Some(l) = &s.report.latency {
        writeln!(
            out,
            "latency over {} deliveries: p50 {}ms p90 {}ms p99 {}ms max {}ms",
            l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        )?;
    }
    if s.report.untagged > 0 {
        writeln!(out, "untagged messages: {}", s.report.untagged)?;
    }
    Ok(())
}
