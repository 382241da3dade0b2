//! `wsstack completions SHELL` and `wsstack man`: generated from the one
//! clap definition in `flags`.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::flags::Cli;

/// The completion script for `shell`. clap_complete panics when its
/// writer fails (a closed pipe), so it writes to memory and we write that.
pub fn completions(shell: clap_complete::Shell, w: &mut dyn Write) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wsstack", &mut script);
    w.write_all(&script)?;
    w.flush()?;
    Ok(())
}

/// The man page, in roff.
pub fn man(w: &mut dyn Write) -> Result<()> {
    clap_mangen::Man::new(Cli::command()).render(w)?;
    w.flush()?;
    Ok(())
}
