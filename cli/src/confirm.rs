//! Confirm before harm, the same way everywhere: a command that closes live
//! connections or messages everyone (`disconnect --idle-over/--where/--all`,
//! `prune --idle-over`, `broadcast` without a selector) passes here before
//! its first change. With `--yes` it goes on; on a terminal it counts what
//! it will touch and asks; anywhere else it refuses (exit 2) before any
//! request, so a cron line without `--yes` changes nothing.

use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

use crate::exit::usage;

/// What a command plans to touch: how many, for the question.
pub trait Plan {
    fn count(&self) -> u64;
}

impl Plan for u64 {
    fn count(&self) -> u64 {
        *self
    }
}

impl Plan for std::collections::HashSet<String> {
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

/// The one gate. `what` completes "refusing to …" and "about to …"
/// (`disconnect every registered connection`); `plan` counts the targets
/// (only run when asking). `None` with `--yes` (nothing counted), else the
/// plan the operator agreed to.
pub async fn confirm<P: Plan>(
    yes: bool,
    what: &str,
    plan: impl Future<Output = Result<P>>,
) -> Result<Option<P>> {
    if yes {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(usage(format!(
            "refusing to {what} without --yes: there is no terminal to ask on (pass --yes, or --dry-run to list the targets)"
        )));
    }
    let plan = plan.await?;
    let n = plan.count();
    let mut stderr = std::io::stderr().lock();
    // The question on a line of its own, the sentence wrapped at words.
    let about = format!(
        "about to {what}: {n} connection{}.",
        if n == 1 { "" } else { "s" }
    );
    write!(
        stderr,
        "{}\nProceed? [y/N] ",
        crate::output::wrap(&about, crate::output::terminal_width())
    )?;
    stderr.flush()?;
    drop(stderr);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        bail!("not confirmed: nothing was changed");
    }
    Ok(Some(plan))
}
