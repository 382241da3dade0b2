//! wsadmin-tui: the live connections dashboard, run by `wsadmin tui`.
//!
//! - [`app`]: the state and `App::update`, pure.
//! - [`event`]: everything that can happen, one closed enum.
//! - [`command`]: background work the app asks for.
//! - [`row`]: one connection as the table keeps it, compactly.
//! - [`ui`]: drawing, which only reads the app.
//! - [`worker`]: runs commands against the deployment, reports events.
//! - [`terminal`]: raw mode and the alternate screen, restored whatever
//!   happens.
//! - [`sanitize`]: client-supplied text made safe for the terminal.
//!
//! [`run`] is the loop that ties them: draw, wait for the next event (a key,
//! a tick, a background result), update, start what the update asks for.
//! This is the only crate that knows ratatui and crossterm.

pub mod app;
pub mod command;
pub mod event;
pub mod row;
pub mod sanitize;
pub mod terminal;
pub mod ui;
pub mod worker;

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use wsadmin_core::Target;

pub use app::App;
pub use command::Command;
pub use event::Event;

use crate::app::TargetInfo;
use crate::terminal::TerminalGuard;
use crate::worker::{Worker, now_ms};

#[derive(Debug, Clone)]
pub struct Options {
    /// How often the registry is scanned (`--interval`).
    pub interval: Duration,
    /// How often the clock ticks: ages and "refreshed N s ago" move, and
    /// due refreshes start, at this pace.
    pub tick: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            tick: Duration::from_millis(250),
        }
    }
}

/// Runs the dashboard on the terminal until the operator quits.
pub async fn run(target: Target, opts: Options) -> std::io::Result<()> {
    let interval_ms = i64::try_from(opts.interval.as_millis()).unwrap_or(i64::MAX);
    let mut app = App::new(TargetInfo::of(&target), interval_ms);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(target, tx);

    let mut guard = TerminalGuard::enter()?;
    let size = guard.terminal().size()?;
    app.update(Event::Resize {
        width: size.width,
        height: size.height,
    });
    let mut keys = EventStream::new();
    let mut ticks = tokio::time::interval(opts.tick.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // In raw mode Ctrl-C is a key; this catches a SIGINT sent by `kill`.
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());

    while !app.should_quit {
        guard
            .terminal()
            .draw(|frame| frame.render_widget(&app, frame.area()))?;
        let event = tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => Event::Key(key),
                Some(Ok(TermEvent::Resize(width, height))) => Event::Resize { width, height },
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                None => break,
            },
            Some(event) = rx.recv() => event,
            _ = ticks.tick() => Event::Tick { now_ms: now_ms() },
            _ = &mut interrupted => break,
        };
        if let Some(command) = app.update(event) {
            worker.start(command);
        }
        // Whatever else already waits costs no extra frame.
        while let Ok(event) = rx.try_recv() {
            if let Some(command) = app.update(event) {
                worker.start(command);
            }
        }
    }
    Ok(())
}
