//! `wsstack`: stands the WebSocket stack up. `wsstack local` runs it on this
//! machine: dynalite, the API Gateway emulator, the real handlers.
//! `wsstack template` prints its CloudFormation template and `wsstack
//! policy` the IAM policy an operator of a deployment needs. `wsstack up`,
//! `plan`, `status` and `down` deploy it to AWS through CloudFormation.
//!
//! `main` parses the command line once ([`flags`]), runs one command
//! ([`cmd`]) and turns the outcome into an exit code: an error is one
//! `wsstack: …` line (its causes joined by `: `, each said once), a usage
//! error exits 2, a closed pipe is quiet.

mod cmd;
mod flags;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::flags::Cli;

const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
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
            let _ = writeln!(std::io::stderr(), "wsstack: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cmd::run(cli.command, &mut std::io::stdout()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "wsstack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// clap's answer to a bad command line (help and version on stdout, exit
/// 0), except `-o`: in `wsadmin` it is the output format, so here, where
/// files are written with `--out FILE`, it is refused with that said.
fn usage_error(e: &clap::Error) -> ExitCode {
    let dash_o = e.kind() == ErrorKind::UnknownArgument
        && matches!(
            e.get(ContextKind::InvalidArg),
            Some(ContextValue::String(arg)) if arg.starts_with("-o")
        );
    if dash_o {
        let _ = writeln!(
            std::io::stderr(),
            "error: wsstack has no -o: write to a file with --out FILE (in wsadmin, -o is the output format)\n\nFor more information, try '--help'."
        );
        return ExitCode::from(USAGE);
    }
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `wsstack template | head`: the reader left, which is no error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
