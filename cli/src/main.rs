//! `wsadmin`: operate the live connections of an API Gateway WebSocket API.
//!
//! `main` parses the command line once ([`flags`]), resolves the target
//! ([`deployment`]: flags, environment, contexts) into a core `Target`,
//! runs one command ([`cmd`]) and turns the outcome into an exit code
//! ([`exit`]): errors are one `wsadmin: …` line, a closed pipe is quiet.

mod cmd;
mod config;
mod confirm;
mod deployment;
mod exit;
mod flags;
mod ids;
mod interrupt;
mod output;
mod payload;
mod report;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{Cli, Command, ContextCommand, OutputFormat};
use crate::output::Output;

fn main() -> ExitCode {
    let args = || std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let dashed_id = |long_too| {
        let hint = ids::dash_hint(args(), long_too)?;
        let _ = writeln!(std::io::stderr(), "error: {hint}");
        Some(ExitCode::from(exit::USAGE))
    };
    if let Some(code) = dashed_id(false) {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own tip for `--L0SM9cOFvHcCI=` names only `--L0SM9cOFvHcCI`.
            if e.kind() == clap::error::ErrorKind::UnknownArgument
                && let Some(code) = dashed_id(true)
            {
                return code;
            }
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    // One thread: a sweep's requests, their connections and the scan all
    // wake each other on it. A multi-thread runtime spent ~30% more CPU a
    // delivery on futex wake-ups and task hand-offs between its workers
    // (BENCHMARKS.md, issue 18); nothing here needs a second core.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "wsadmin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Pending SDK connections must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(status) => status.code(),
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "wsadmin: {e:#}");
            if exit::is_usage(&e) {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> Result<Status> {
    if cli.global.output == OutputFormat::Ids
        && let Some(name) = without_ids(&cli.command)
    {
        return Err(exit::usage(format!(
            "-o ids prints connection ids, and `wsadmin {name}` has none to print: use -o table, wide, json or ndjson"
        )));
    }
    // The dashboard owns the terminal: dispatch it before stdout is locked
    // for buffered output.
    if let Command::Tui(args) = &cli.command {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return Err(exit::usage(
                "the dashboard needs a terminal (standard input and output): run `wsadmin tui` in one, or use `wsadmin list --watch` or `wsadmin events --follow`",
            ));
        }
        let dep = deployment::select(&cli.target)?.connect().await?;
        let opts = wsadmin_tui::Options {
            interval: args.interval.max(std::time::Duration::from_millis(200)),
            grace: args.grace,
            metrics: cmd::status::metrics_feed(&dep),
            history: cmd::logs::history_feed(&dep).await,
            ..wsadmin_tui::Options::default()
        };
        let exit = wsadmin_tui::run(dep.target, opts)
            .await
            .context("the dashboard stopped on a terminal error")?;
        return Ok(match exit {
            wsadmin_tui::Exit::Quit => Status::Ok,
            wsadmin_tui::Exit::Signal(_) => Status::Signal(exit.code()),
        });
    }
    interrupt::install();
    let out = Output::new(&cli.global)?;
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    let w: &mut dyn Write = &mut w;
    let target = cli.target;
    let connect = || async { deployment::select(&target)?.connect().await };
    let status = match cli.command {
        Command::Context(ContextCommand::Add {
            name,
            force,
            detect: true,
            sample,
            yes,
        }) => cmd::registry::add_detected(&name, force, sample, yes, &target, &out, w).await?,
        Command::Context(c) => cmd::context::run(c, &target, &out, w)?,
        Command::Registry(c) => cmd::registry::run(&connect().await?, c, &out, w).await?,
        Command::Completions { shell } => {
            // clap_complete panics on a failed write (a closed pipe): it
            // writes to memory, we write that.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wsadmin", &mut script);
            w.write_all(&script)?;
            w.flush()?;
            Status::Ok
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(w)?;
            w.flush()?;
            Status::Ok
        }
        // `list --watch` re-prints on the registry's changes: events' loop.
        Command::List(args) if args.watch => {
            cmd::events::watch_list(&connect().await?, args, &out, w).await?
        }
        Command::List(args) => cmd::list::run(&connect().await?, args, &out, w).await?,
        Command::Inspect(args) => cmd::inspect::run(&connect().await?, args, &out, w).await?,
        Command::Send(args) => cmd::send::run(&connect().await?, args, &out, w).await?,
        Command::Broadcast(args) => cmd::broadcast::run(&connect().await?, args, &out, w).await?,
        Command::Disconnect(args) => cmd::disconnect::run(&connect().await?, args, &out, w).await?,
        Command::Prune(args) => cmd::prune::run(&connect().await?, args, &out, w).await?,
        Command::Connect(args) => cmd::connect::run(args, &target, &out, w).await?,
        Command::Events(args) => cmd::events::run(&connect().await?, args, &out, w).await?,
        Command::Logs(args) => cmd::logs::run(&connect().await?, args, &out, w).await?,
        Command::Stats(args) => cmd::stats::run(&connect().await?, args, &out, w).await?,
        Command::Status => {
            let dep: Deployment = connect().await?;
            cmd::status::run(&dep, &out, w).await?
        }
        Command::Tui(_) => unreachable!("dispatched above"),
    };
    Ok(status)
}

/// The name of a command whose output has no connection ids (`-o ids`
/// would print nothing, which reads as "no connections").
fn without_ids(command: &Command) -> Option<&'static str> {
    match command {
        Command::Stats(_) => Some("stats"),
        Command::Status => Some("status"),
        Command::Context(_) => Some("context"),
        Command::Registry(_) => Some("registry"),
        Command::Connect(_) => Some("connect"),
        Command::Tui(_) => Some("tui"),
        Command::Completions { .. } => Some("completions"),
        Command::Man => Some("man"),
        Command::List(_)
        | Command::Inspect(_)
        | Command::Send(_)
        | Command::Broadcast(_)
        | Command::Disconnect(_)
        | Command::Prune(_)
        | Command::Events(_)
        | Command::Logs(_) => None,
    }
}

/// Our warnings by default (the SDK's own go to -v), more with -v, only
/// errors with -q; `RUST_LOG` wins.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "error,wsadmin=warn,wsadmin_core=warn",
        (false, 1) => "info,wsadmin=debug,wsadmin_core=debug",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
