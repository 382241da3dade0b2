//! One module per subcommand. Each resolves its raw arguments ([`flags`])
//! into what it runs, writes its result to the writer it is given (the
//! offline ones; `up`, `plan`, `status` and `down` print through the
//! library's `say`), and returns an error for `main` to print once.
//!
//! [`flags`]: crate::flags

pub mod completions;
pub mod deploy;
pub mod down;
pub mod local;
pub mod package;
pub mod policy;
pub mod status;
pub mod template;

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use wsadmin_core::stack::StackSpec;
use wsadmin_deploy::error::DeployError;

use crate::flags::Command;

/// Runs one command; its output goes to `w`.
pub async fn run(command: Command, w: &mut dyn Write) -> Result<()> {
    match command {
        Command::Local(args) => local::run(args, w).await,
        Command::Template(args) => template::run(args, w),
        Command::Policy(args) => policy::run(args, w),
        Command::Package(args) => package::run(args, w),
        Command::Up(args) => deploy::run(args.deploy, args.yes, args.dry_run).await,
        Command::Plan(args) => deploy::run(args, true, true).await,
        Command::Status(args) => status::run(args).await,
        Command::Down(args) => down::run(args).await,
        Command::Completions { shell } => completions::completions(shell, w),
        Command::Man => completions::man(w),
    }
}

/// The stack description of `--stack` (or the default one) with the
/// `--stage` and `--table` overrides, validated.
pub fn stack_spec(
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

impl crate::flags::StackArgs {
    /// The description these flags name, overrides applied, validated.
    pub fn spec(&self) -> Result<StackSpec> {
        stack_spec(
            self.stack.as_deref(),
            self.stage.clone(),
            self.table.clone(),
        )
    }
}

/// Refuses to go on without a terminal to ask on, unless `--yes` said so.
pub fn need_terminal(what: &'static str, yes: bool) -> Result<()> {
    if !yes && !std::io::stdin().is_terminal() {
        return Err(DeployError::NoTerminal { what }.into());
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; anything but y/yes is no.
pub fn ask(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `target/lambda` of the checkout around the working directory or the
/// binary (where `wsstack package` writes), else `target/lambda` here.
pub fn default_artifacts_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let exe = std::env::current_exe().ok();
    wsadmin_deploy::package::Checkout::find(&cwd, exe.as_deref())
        .map(|c| c.lambda_dir())
        .unwrap_or_else(|| cwd.join("target").join("lambda"))
}
