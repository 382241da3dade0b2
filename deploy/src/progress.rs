//! The progress of a stack operation on standard error: one line per stack
//! event as it arrives and, on a terminal, a spinner with the stack's
//! status and how many resources are done (indicatif). Off a terminal the
//! event lines alone, so logs and tests read the same story.
//!
//! It only displays: which events to show and when the operation ends is
//! [`crate::cloudformation`]'s business.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A line of the command's result on standard output. A closed pipe
/// (`| head`) is not an error: the rest is dropped quietly.
pub fn say(text: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// [`say`] with `format!`'s arguments.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::say(format_args!($($arg)*))
    };
}

/// One stack event, read from CloudFormation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub id: String,
    /// The stack itself when it equals the stack's name.
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl StackEvent {
    pub fn is_failure(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// Resources that reached a final state, so each counts once.
    done: BTreeSet<String>,
}

impl Progress {
    /// `what` heads the spinner (`deploying stack "demo"`); `total` is the
    /// resources the operation touches, when known.
    pub fn start(what: &str, total: Option<usize>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n as u64),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{spinner} {prefix} [{elapsed}] {pos}/{len} resources  {msg}"
            } else {
                "{spinner} {prefix} [{elapsed}] {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            eprintln!("{what}");
        }
        Self {
            bar,
            started: Instant::now(),
            done: BTreeSet::new(),
        }
    }

    pub fn event(&mut self, e: &StackEvent) {
        let secs = self.started.elapsed().as_secs();
        let mut line = format!(
            "  [{secs:>4}s] {:<20} {} ({})",
            e.status, e.logical_id, e.resource_type
        );
        if let Some(reason) = e.reason.as_deref().filter(|r| !r.is_empty()) {
            line.push_str(": ");
            line.push_str(&wsadmin_core::text::escape_control(reason));
        }
        if (e.status.ends_with("_COMPLETE") || e.is_failure())
            && !e.resource_type.is_empty()
            && e.resource_type != "AWS::CloudFormation::Stack"
        {
            self.done.insert(e.logical_id.clone());
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done.len() as u64);
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// The stack's status, on the spinner.
    pub fn status(&self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(status.to_owned());
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
