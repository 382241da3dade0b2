//! wsadmin-tui: the live connections dashboard, run by `wsadmin tui`.
//!
//! - [`app`]: the state and `App::update`, pure.
//! - [`event`]: everything that can happen, one closed enum.
//! - [`command`]: background work the app asks for.
//! - [`row`]: one connection as the table keeps it, compactly.
//! - [`layout`]: where the parts of the screen go, and the table's paging.
//! - [`format`](mod@format): counts, ages and clock times as the dashboard writes them.
//! - [`ui`]: drawing, which only reads the app.
//! - [`worker`]: runs commands against the deployment, reports events.
//! - [`terminal`]: raw mode and the alternate screen, restored whatever
//!   happens.
//! - [`sanitize`]: client-supplied text made safe for the terminal.
//!
//! [`run`] is the loop that ties them: draw, wait for the next event (a key,
//! a tick, a signal, a background result), update, start what the update
//! asks for. It ends when the app says so (a quit, or SIGINT, SIGTERM or
//! SIGHUP arriving as an event) and restores the terminal on the way out.
//! This is the only crate that knows ratatui and crossterm.

pub mod app;
pub mod command;
pub mod event;
pub mod format;
pub mod layout;
pub mod row;
pub mod sanitize;
pub mod terminal;
pub mod ui;
pub mod worker;

use std::io;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt;
#[cfg(unix)]
use tokio::signal::unix::{self, SignalKind};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use wsadmin_core::Target;

pub use app::{App, Exit};
pub use command::Command;
pub use event::{Event, Signal};

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
    /// A connection answering 410 loses its record only past this
    /// (`--grace`; see `wsadmin_core::stale`).
    pub grace: Duration,
    /// Where the header's sparkline comes from (none: no sparkline).
    pub metrics: Option<MetricsFeed>,
    /// Where the details pane reads a connection's access log lines (none:
    /// the pane shows no history).
    pub history: Option<HistoryFeed>,
}

/// What a [`HistoryFeed`] answers: one connection's access log lines.
pub type HistoryLines =
    futures::future::BoxFuture<'static, Result<Vec<wsadmin_core::access_log::AccessEntry>, String>>;

/// Reads one connection's access log lines (the local stack's file,
/// CloudWatch Logs: the caller decides), for the details pane.
#[derive(Clone)]
pub struct HistoryFeed(pub std::sync::Arc<dyn Fn(String) -> HistoryLines + Send + Sync>);

impl std::fmt::Debug for HistoryFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryFeed")
    }
}

/// Reads the API's connects, messages and errors per minute (the local
/// stack's `/metrics`, CloudWatch: the caller decides; the dashboard only
/// asks it every [`METRICS_EVERY`]).
#[derive(Clone)]
pub struct MetricsFeed(
    pub  std::sync::Arc<
        dyn Fn() -> futures::future::BoxFuture<
                'static,
                Result<wsadmin_core::api_metrics::PerMinute, String>,
            > + Send
            + Sync,
    >,
);

impl std::fmt::Debug for MetricsFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsFeed")
    }
}

/// How often the sparkline's source is read.
pub const METRICS_EVERY: Duration = Duration::from_secs(15);

impl Default for Options {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            tick: Duration::from_millis(250),
            grace: wsadmin_core::stale::DEFAULT_GRACE,
            metrics: None,
            history: None,
        }
    }
}

/// Runs the dashboard on the terminal until the operator quits or a signal
/// (SIGINT, SIGTERM, SIGHUP) stops it; returns which, for the exit status
/// ([`Exit::code`]). Either way the terminal is restored before this
/// returns, and background work still running is abandoned.
pub async fn run(target: Target, opts: Options) -> io::Result<Exit> {
    let interval_ms = i64::try_from(opts.interval.as_millis()).unwrap_or(i64::MAX);
    let mut app = App::new(TargetInfo::of(&target), interval_ms);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let feed = opts.metrics.map(|MetricsFeed(feed)| {
        let tx = tx.clone();
        // Aborted when the dashboard ends (dropped below).
        AbortOnDrop(tokio::spawn(async move {
            loop {
                match feed().await {
                    Ok(per_minute) => {
                        if tx.send(Event::Metrics(per_minute)).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!("metrics for the sparkline: {e}"),
                }
                tokio::time::sleep(METRICS_EVERY).await;
            }
        }))
    });
    let mut worker = Worker::new(target, tx)
        .with_grace(opts.grace)
        .with_history(opts.history);
    // Before the terminal changes: from here on these signals are events,
    // so none can kill the process with the terminal still raw.
    let mut signals = StopSignals::listen()?;

    let mut guard = TerminalGuard::enter()?;
    let size = guard.terminal().size()?;
    app.update(Event::Resize {
        width: size.width,
        height: size.height,
    });
    let mut keys = EventStream::new();
    let mut ticks = tokio::time::interval(opts.tick.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);

    let exit = loop {
        if let Some(exit) = app.exit {
            break exit;
        }
        guard
            .terminal()
            .draw(|frame| frame.render_widget(&app, frame.area()))?;
        let event = tokio::select! {
            // A signal goes first, however busy the rest is.
            biased;
            signal = signals.recv() => Event::Signal(signal),
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => Event::Key(key),
                Some(Ok(TermEvent::Resize(width, height))) => Event::Resize { width, height },
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e),
                // The terminal's input is gone: nobody is left to quit.
                None => break Exit::Quit,
            },
            Some(event) = rx.recv() => event,
            _ = ticks.tick() => Event::Tick { now_ms: now_ms() },
        };
        if let Some(command) = app.update(event) {
            worker.start(command);
        }
        // Whatever else already waits costs no extra frame.
        while !app.should_quit()
            && let Ok(event) = rx.try_recv()
        {
            if let Some(command) = app.update(event) {
                worker.start(command);
            }
        }
    };
    // The terminal first, then the background tasks are aborted: the
    // operator's shell is back whatever they were doing.
    drop(guard);
    drop(worker);
    drop(feed);
    Ok(exit)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGINT, SIGTERM and SIGHUP as values the loop selects on, so a signal
/// ends the dashboard through its normal exit and the terminal is restored
/// by [`TerminalGuard`], never from inside a signal handler. (In raw mode
/// Ctrl-C is a key; a SIGINT comes from `kill`.)
#[cfg(unix)]
struct StopSignals {
    interrupt: unix::Signal,
    terminate: unix::Signal,
    hangup: unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn listen() -> io::Result<Self> {
        Ok(Self {
            interrupt: unix::signal(SignalKind::interrupt())?,
            terminate: unix::signal(SignalKind::terminate())?,
            hangup: unix::signal(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> Signal {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Signal::Interrupt,
            Some(()) = self.terminate.recv() => Signal::Terminate,
            Some(()) = self.hangup.recv() => Signal::Hangup,
            // Only if the runtime is shutting down: nothing more will come.
            else => std::future::pending().await,
        }
    }
}

/// Elsewhere only the interrupt exists.
#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn listen() -> io::Result<Self> {
        Ok(Self)
    }

    async fn recv(&mut self) -> Signal {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}
