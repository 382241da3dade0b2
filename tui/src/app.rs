//! The dashboard's state, as plain data, and the one function that changes
//! it: [`App::update`]. Rendering reads it (see [`crate::ui`]); background
//! work is requested by returning a [`Command`] and answered with an
//! [`Event`]. Nothing here touches a terminal, a socket or the clock: time
//! arrives in [`Event::Tick`], so every state is reproducible in tests.
//! What the IDLE column asks API Gateway, and how often, is decided here
//! too: a tick returns the next batch of visible rows to probe.
//!
//! With a filter, broadcast (`b`) and `D` act on the filtered rows: the
//! ids shown when the confirmation opened ([`Rows`]), never a new scan.
//!
//! Sized for 100,000 records: records live in one `Vec`; filtering and
//! sorting produce an index `Vec` only when their inputs change (a refresh,
//! a filter keystroke, a sort change, an idle answer under the idle sort),
//! never per frame.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use wsadmin_core::access_log::AccessEntry;
use wsadmin_core::filter::{Where, WhereError};
use wsadmin_core::record::{ATTR_SOURCE_IP, ATTR_USER_AGENT};
use wsadmin_core::{ConnectionInfo, ConnectionRecord, SweepReport, Target};

use crate::command::Command;
use crate::event::{Event, IdleCheck, LiveCheck, PrunePlan, PruneSummary, Signal, Task};
use crate::format::fmt_count;
use crate::layout::{self, Panes};
use crate::row::ConnectionRow;
use crate::sanitize::sanitize;

/// Log lines kept.
const LOG_CAPACITY: usize = 1000;
/// Registry sizes kept for the sparkline (one per refresh).
const HISTORY_CAPACITY: usize = 512;
/// The window of the connects/disconnects rates.
const RATE_WINDOW_MS: i64 = 60_000;
/// Below this many, connects and disconnects are logged one by one.
const LOG_EACH_UP_TO: usize = 5;
/// The IDLE column's pace: at most one batch of this many GetConnection
/// requests per [`IDLE_EVERY_MS`], one batch at a time, visible rows only.
pub const IDLE_BATCH: usize = 4;
pub const IDLE_EVERY_MS: i64 = 1000;
/// A row's idle answer is asked again once it is this old.
pub const IDLE_MAX_AGE_MS: i64 = 30_000;
/// A batch not answered by then is given up on (its answers, if they come,
/// are still taken), so a lost one cannot stop the column.
pub const IDLE_GIVE_UP_MS: i64 = 15_000;

/// What the header says about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub context: Option<String>,
    pub endpoint: String,
    pub table: String,
    pub region: String,
}

impl TargetInfo {
    pub fn of(target: &Target) -> Self {
        Self {
            context: target.context.clone(),
            endpoint: target.endpoint().url().to_owned(),
            table: target.table().name.clone(),
            region: target.region.clone(),
        }
    }
}

/// The order of the connections table; `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Newest,
    Oldest,
    Id,
    SourceIp,
    UserAgent,
    /// The most idle first (`i`), among the rows whose idle time is known;
    /// the rest follow, newest first. Only visible rows are asked, so the
    /// order fills in as the operator pages.
    Idle,
}

impl SortKey {
    /// `s` cycles through every order but [`SortKey::Idle`], which `i`
    /// toggles.
    pub fn next(self) -> Self {
        match self {
            Self::Newest => Self::Oldest,
            Self::Oldest => Self::Id,
            Self::Id => Self::SourceIp,
            Self::SourceIp => Self::UserAgent,
            Self::UserAgent | Self::Idle => Self::Newest,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Id => "id",
            Self::SourceIp => "source ip",
            Self::UserAgent => "user agent",
            Self::Idle => "idle",
        }
    }

    /// `last_active` is a row's last activity, if known (for `Idle`).
    fn compare(
        self,
        a: &ConnectionRow,
        b: &ConnectionRow,
        last_active: impl Fn(&str) -> Option<i64>,
    ) -> Ordering {
        // Missing values sort last in every order; ties break on the id so
        // the order is total and stable across refreshes.
        fn some_first<T: Ord>(a: Option<T>, b: Option<T>, rev: bool) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) if rev => b.cmp(&a),
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        let primary = match self {
            Self::Newest => some_first(a.connected_at, b.connected_at, true),
            Self::Oldest => some_first(a.connected_at, b.connected_at, false),
            Self::Id => Ordering::Equal,
            Self::SourceIp => some_first(a.source_ip.as_deref(), b.source_ip.as_deref(), false),
            Self::UserAgent => some_first(a.user_agent.as_deref(), b.user_agent.as_deref(), false),
            Self::Idle => some_first(last_active(&a.id), last_active(&b.id), false)
                .then_with(|| some_first(a.connected_at, b.connected_at, true)),
        };
        primary.then_with(|| a.id.cmp(&b.id))
    }
}

/// What the keys do right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Typing the filter (`/`); the table follows each keystroke.
    Filter,
    /// Typing a message to one connection (`m`).
    Message {
        id: String,
        input: String,
    },
    /// Typing a broadcast (`b`).
    Broadcast {
        input: String,
    },
    /// The broadcast is typed; `y` sends it to every registered connection
    /// (`rows: None`, no filter) or to the filtered rows.
    ConfirmBroadcast {
        text: String,
        rows: Option<Rows>,
    },
    ConfirmDisconnect {
        id: String,
    },
    /// `D` with a filter: `y` closes every filtered row.
    ConfirmDisconnectRows {
        rows: Rows,
    },
    /// The prune dry run is asking the Management API about each record.
    PrunePlanning {
        checked: u64,
        total: u64,
    },
    /// The dry run's plan; `y` deletes the stale records.
    ConfirmPrune {
        plan: PrunePlan,
    },
    /// Quitting would abandon a running broadcast or prune: `y` quits, `n`
    /// goes `back` to what was open.
    ConfirmQuit {
        back: Box<Mode>,
    },
}

/// The rows a filter selected when an action on them was asked for: what
/// the confirmation counts and names, and exactly what the action touches
/// (rows that match only after a later refresh are not included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// The filter as typed (`room=7`, or text).
    pub filter: String,
    pub ids: Vec<String>,
}

/// One row's answer for the IDLE column, and when it came (the app's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleEntry {
    pub check: IdleCheck,
    pub at_ms: i64,
}

impl IdleEntry {
    pub fn last_active_at(&self) -> Option<i64> {
        match self.check {
            IdleCheck::Live { last_active_at } => last_active_at,
            _ => None,
        }
    }
}

/// Why the dashboard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The operator quit (`q`, Esc, Ctrl-C, or `y` when asked).
    Quit,
    Signal(Signal),
}

impl Exit {
    /// The process's exit status by the shell's convention: 0 for a quit,
    /// 128 + the signal's number for a signal (130 for SIGINT, 143 for
    /// SIGTERM, 129 for SIGHUP).
    pub fn code(self) -> u8 {
        match self {
            Self::Quit => 0,
            Self::Signal(signal) => 128 + signal.number(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// The level of a run's summary: a warning unless all of it went well.
    fn warn_unless(all_went_well: bool) -> Self {
        if all_went_well {
            Self::Info
        } else {
            Self::Warn
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at_ms: i64,
    pub level: Level,
    /// Already sanitized.
    pub text: String,
}

/// A broadcast in flight, for the gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastRun {
    pub done: u64,
    pub total: u64,
}

/// The details pane: which connection, its whole record once fetched, and
/// what GetConnection said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub id: String,
    /// `None` until fetched, or when it is no longer registered.
    pub record: Option<ConnectionRecord>,
    pub live: LiveState,
    /// Its access log lines, oldest first (`None`: not read, or no access
    /// log to read), or why they could not be read.
    pub history: Option<Result<Vec<AccessEntry>, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveState {
    Fetching,
    Live { info: ConnectionInfo, at_ms: i64 },
    Gone { at_ms: i64 },
    Failed(String),
}

/// Connects and disconnects seen by one refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Churn {
    at_ms: i64,
    appeared: u64,
    vanished: u64,
}

#[derive(Debug, Clone)]
pub struct App {
    pub target: TargetInfo,
    /// The refresh period.
    pub interval_ms: i64,
    /// The clock as of the last tick; rendering uses this, never the system.
    pub now_ms: i64,
    /// The terminal size, for paging and scrolling.
    pub size: (u16, u16),
    records: Vec<ConnectionRow>,
    /// Indices into `records` that pass the filter, in sort order.
    view: Vec<usize>,
    /// Position in `view` of the selected row.
    pub selected: usize,
    /// Position in `view` of the first visible row.
    pub offset: usize,
    pub sort: SortKey,
    pub filter: String,
    pub mode: Mode,
    pub show_help: bool,
    pub details: Option<Details>,
    /// GetConnection answers for the IDLE column, by id, with their time:
    /// visible rows, asked at [`IDLE_EVERY_MS`]'s pace; entries of
    /// connections no longer registered are dropped at each refresh.
    pub idle: HashMap<String, IdleEntry>,
    /// A [`Command::ProbeIdle`] is running (one at a time).
    idle_in_flight: bool,
    /// When the last one started.
    last_idle_ms: Option<i64>,
    pub refreshing: bool,
    /// When the next periodic refresh is due.
    next_refresh_ms: i64,
    /// The registry changed while a refresh was running: refresh again as
    /// soon as it ends.
    refresh_again: bool,
    pub last_refresh_ms: Option<i64>,
    /// Registered records whose connection is known to be gone (from the
    /// last prune plan, minus what was pruned since).
    pub stale: Option<u64>,
    churn: VecDeque<Churn>,
    first_refresh_ms: Option<i64>,
    /// Registry size per refresh, for the sparkline.
    pub history: VecDeque<u64>,
    /// The API's connects, messages and errors per minute, last 15
    /// minutes: the header's sparkline (none until the first reading).
    pub metrics: Option<wsadmin_core::api_metrics::PerMinute>,
    pub log: VecDeque<LogEntry>,
    pub broadcast: Option<BroadcastRun>,
    /// Connections being closed by `D` (how many), while it runs.
    pub disconnecting: Option<u64>,
    pub pruning: bool,
    /// The latest failure, shown in the header until a refresh succeeds.
    pub error: Option<String>,
    /// Set once the dashboard is to end; the loop leaves when it sees it.
    pub exit: Option<Exit>,
}

impl App {
    pub fn new(target: TargetInfo, interval_ms: i64) -> Self {
        Self {
            target,
            interval_ms: interval_ms.max(1),
            now_ms: 0,
            size: (80, 24),
            records: Vec::new(),
            view: Vec::new(),
            selected: 0,
            offset: 0,
            sort: SortKey::default(),
            filter: String::new(),
            mode: Mode::Normal,
            show_help: false,
            details: None,
            idle: HashMap::new(),
            idle_in_flight: false,
            last_idle_ms: None,
            refreshing: false,
            next_refresh_ms: i64::MIN,
            refresh_again: false,
            last_refresh_ms: None,
            stale: None,
            churn: VecDeque::new(),
            first_refresh_ms: None,
            history: VecDeque::new(),
            metrics: None,
            log: VecDeque::new(),
            broadcast: None,
            disconnecting: None,
            pruning: false,
            error: None,
            exit: None,
        }
    }

    pub fn should_quit(&self) -> bool {
        self.exit.is_some()
    }

    /// Whether quitting now would abandon work half done: a broadcast or a
    /// prune's deletes (the prune dry run only reads, it is not asked
    /// about).
    pub fn quitting_abandons_work(&self) -> bool {
        self.broadcast.is_some() || self.disconnecting.is_some() || self.pruning
    }

    /// Whether a filter narrows the table (actions then work on its rows).
    pub fn filtered(&self) -> bool {
        !self.filter.is_empty()
    }

    /// The filtered rows, for an action on them.
    fn filtered_rows(&self) -> Rows {
        Rows {
            filter: self.filter.clone(),
            ids: self
                .view
                .iter()
                .map(|&i| self.records[i].id.to_string())
                .collect(),
        }
    }

    /// Every registered record, in scan order.
    pub fn records(&self) -> &[ConnectionRow] {
        &self.records
    }

    /// Rows that pass the filter.
    pub fn visible_len(&self) -> usize {
        self.view.len()
    }

    /// The `i`th row of the filtered, sorted table.
    pub fn row(&self, i: usize) -> Option<&ConnectionRow> {
        self.view.get(i).map(|&r| &self.records[r])
    }

    pub fn selected_record(&self) -> Option<&ConnectionRow> {
        self.row(self.selected)
    }

    /// Connects and disconnects per minute, from the refreshes of the last
    /// minute (`None` until two refreshes are at least a second apart).
    pub fn rates_per_minute(&self) -> Option<(f64, f64)> {
        let last = self.last_refresh_ms?;
        let start = self.first_refresh_ms?.max(last - RATE_WINDOW_MS);
        let span = last - start;
        if span < 1000 {
            return None;
        }
        let (appeared, vanished) = self
            .churn
            .iter()
            .filter(|c| c.at_ms > start)
            .fold((0, 0), |(a, v), c| (a + c.appeared, v + c.vanished));
        let per_min = |n: u64| n as f64 * 60_000.0 / span as f64;
        Some((per_min(appeared), per_min(vanished)))
    }

    /// Applies one event; returns the background work it calls for.
    pub fn update(&mut self, event: Event) -> Option<Command> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Resize { width, height } => {
                self.size = (width, height);
                self.scroll_into_view();
                None
            }
            Event::Tick { now_ms } => {
                self.now_ms = now_ms;
                if !self.refreshing && now_ms >= self.next_refresh_ms {
                    return Some(self.start_refresh());
                }
                self.next_idle_probe()
            }
            Event::IdleProbed { results } => {
                self.idle_in_flight = false;
                for (id, check) in results {
                    self.idle.insert(
                        id,
                        IdleEntry {
                            check,
                            at_ms: self.now_ms,
                        },
                    );
                }
                if self.sort == SortKey::Idle {
                    self.rebuild_view();
                }
                None
            }
            Event::Signal(signal) => {
                self.exit = Some(Exit::Signal(signal));
                None
            }
            Event::Metrics(per_minute) => {
                self.metrics = Some(per_minute);
                None
            }
            Event::Refreshed { records, at_ms } => {
                self.on_refreshed(records, at_ms);
                std::mem::take(&mut self.refresh_again).then(|| self.start_refresh())
            }
            Event::Probed { id, record, live } => {
                self.on_probed(id, record, live);
                None
            }
            Event::History { id, lines } => {
                if let Some(details) = self.details.as_mut().filter(|d| d.id == id) {
                    details.history = Some(lines);
                }
                None
            }
            Event::Sent { id } => {
                self.push_log(
                    Level::Info,
                    format!("message delivered to {}", sanitize(&id)),
                );
                None
            }
            Event::BroadcastProgress { done, total } => {
                self.broadcast = Some(BroadcastRun { done, total });
                None
            }
            Event::BroadcastDone(report) => {
                self.on_broadcast_done(&report);
                self.refresh_soon()
            }
            Event::DisconnectedRows(report) => {
                self.on_disconnected_rows(&report);
                self.refresh_soon()
            }
            Event::Disconnected { id, was_gone } => {
                let id = sanitize(&id).into_owned();
                if was_gone {
                    self.push_log(Level::Warn, format!("{id} was already closed"));
                } else {
                    self.push_log(Level::Info, format!("disconnected {id}"));
                }
                self.refresh_soon()
            }
            Event::PruneProgress { checked, total } => {
                if let Mode::PrunePlanning { .. } = self.mode {
                    self.mode = Mode::PrunePlanning { checked, total };
                }
                None
            }
            Event::PrunePlanned(plan) => {
                self.on_prune_planned(plan);
                None
            }
            Event::Pruned(report) => {
                self.on_pruned(&report);
                self.refresh_soon()
            }
            Event::Failed { task, message } => {
                self.on_failed(task, message);
                None
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            // A second Ctrl-C while asking insists.
            if let Mode::ConfirmQuit { .. } = self.mode {
                self.exit = Some(Exit::Quit);
            } else {
                let back = std::mem::take(&mut self.mode);
                self.request_quit(back);
            }
            return None;
        }
        if self.show_help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.show_help = false;
            }
            return None;
        }
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.on_normal_key(key),
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => {}
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.rebuild_view();
                    }
                    code => {
                        if edit(&mut self.filter, code, ctrl) {
                            self.rebuild_view();
                        }
                        self.mode = Mode::Filter;
                    }
                }
                None
            }
            Mode::Message { id, mut input } => match key.code {
                KeyCode::Enter if !input.is_empty() => {
                    self.push_log(
                        Level::Info,
                        format!("sending {} bytes to {}", input.len(), sanitize(&id)),
                    );
                    Some(Command::Send { id, text: input })
                }
                KeyCode::Esc => None,
                code => {
                    edit(&mut input, code, ctrl);
                    self.mode = Mode::Message { id, input };
                    None
                }
            },
            Mode::Broadcast { mut input } => match key.code {
                KeyCode::Enter if !input.is_empty() => {
                    let rows = self.filtered().then(|| self.filtered_rows());
                    self.mode = Mode::ConfirmBroadcast { text: input, rows };
                    None
                }
                KeyCode::Esc => None,
                code => {
                    edit(&mut input, code, ctrl);
                    self.mode = Mode::Broadcast { input };
                    None
                }
            },
            Mode::ConfirmBroadcast { text, rows } => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    let expected = rows.as_ref().map_or(self.records.len(), |r| r.ids.len()) as u64;
                    self.broadcast = Some(BroadcastRun {
                        done: 0,
                        total: expected,
                    });
                    let whom = match &rows {
                        None => format!("{} connections", fmt_count(expected)),
                        Some(r) => rows_matching(r.ids.len(), &r.filter),
                    };
                    self.push_log(
                        Level::Info,
                        format!("broadcasting {} bytes to {whom}", text.len()),
                    );
                    Some(Command::Broadcast {
                        text,
                        expected,
                        ids: rows.map(|r| r.ids),
                    })
                }
                KeyCode::Char('n') | KeyCode::Esc => {
                    self.push_log(Level::Info, "broadcast cancelled".into());
                    None
                }
                _ => {
                    self.mode = Mode::ConfirmBroadcast { text, rows };
                    None
                }
            },
            Mode::ConfirmDisconnect { id } => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => Some(Command::Disconnect { id }),
                KeyCode::Char('n') | KeyCode::Esc => None,
                _ => {
                    self.mode = Mode::ConfirmDisconnect { id };
                    None
                }
            },
            Mode::ConfirmDisconnectRows { rows } => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    self.disconnecting = Some(rows.ids.len() as u64);
                    self.push_log(
                        Level::Info,
                        format!(
                            "disconnecting {}",
                            rows_matching(rows.ids.len(), &rows.filter)
                        ),
                    );
                    Some(Command::DisconnectRows { ids: rows.ids })
                }
                KeyCode::Char('n') | KeyCode::Esc => {
                    self.push_log(Level::Info, "disconnect cancelled".into());
                    None
                }
                _ => {
                    self.mode = Mode::ConfirmDisconnectRows { rows };
                    None
                }
            },
            Mode::PrunePlanning { checked, total } => {
                if key.code == KeyCode::Esc || key.code == KeyCode::Char('q') {
                    self.hide_dry_run();
                } else {
                    self.mode = Mode::PrunePlanning { checked, total };
                }
                None
            }
            Mode::ConfirmQuit { back } => {
                match key.code {
                    KeyCode::Char('y') => self.exit = Some(Exit::Quit),
                    KeyCode::Char('n') | KeyCode::Esc => self.mode = *back,
                    _ => self.mode = Mode::ConfirmQuit { back },
                }
                None
            }
            Mode::ConfirmPrune { plan } => match key.code {
                KeyCode::Char('y') | KeyCode::Enter if !plan.stale.is_empty() => {
                    self.pruning = true;
                    self.push_log(
                        Level::Info,
                        format!(
                            "pruning {} stale records",
                            fmt_count(plan.stale.len() as u64)
                        ),
                    );
                    Some(Command::Prune { ids: plan.stale })
                }
                KeyCode::Char('n') | KeyCode::Char('y') | KeyCode::Enter | KeyCode::Esc => None,
                _ => {
                    self.mode = Mode::ConfirmPrune { plan };
                    None
                }
            },
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Option<Command> {
        let page = self.page_size();
        match key.code {
            KeyCode::Char('q') => self.request_quit(Mode::Normal),
            KeyCode::Esc => {
                if self.details.is_some() {
                    self.details = None;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                    self.rebuild_view();
                } else {
                    self.request_quit(Mode::Normal);
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.select(self.selected.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.select(self.selected.saturating_add(1)),
            KeyCode::PageUp => self.select(self.selected.saturating_sub(page)),
            KeyCode::PageDown => self.select(self.selected.saturating_add(page)),
            KeyCode::Home | KeyCode::Char('g') => self.select(0),
            KeyCode::End | KeyCode::Char('G') => self.select(usize::MAX),
            KeyCode::Char('?') => self.show_help = true,
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.rebuild_view();
            }
            KeyCode::Char('i') => {
                self.sort = if self.sort == SortKey::Idle {
                    SortKey::Newest
                } else {
                    SortKey::Idle
                };
                self.rebuild_view();
            }
            KeyCode::Char('D') => {
                if let Some(e) = selector_error(&self.filter) {
                    self.refuse_unparsed(&e, "disconnect");
                } else if self.disconnecting.is_some() {
                    self.push_log(Level::Warn, "a disconnect is already running".into());
                } else if !self.filtered() {
                    self.push_log(
                        Level::Warn,
                        "D closes the rows a filter shows: filter first with /".into(),
                    );
                } else if self.view.is_empty() {
                    self.push_log(
                        Level::Warn,
                        format!(
                            "no row matches /{}: nothing to disconnect",
                            sanitize(&self.filter)
                        ),
                    );
                } else {
                    self.mode = Mode::ConfirmDisconnectRows {
                        rows: self.filtered_rows(),
                    };
                }
            }
            KeyCode::Char('r') if !self.refreshing => return Some(self.start_refresh()),
            KeyCode::Enter => {
                let id = self.selected_record()?.id.to_string();
                self.details = Some(Details {
                    id: id.clone(),
                    record: None,
                    live: LiveState::Fetching,
                    history: None,
                });
                return Some(Command::Probe { id });
            }
            KeyCode::Char('m') => match self.selected_record() {
                Some(r) => {
                    self.mode = Mode::Message {
                        id: r.id.to_string(),
                        input: String::new(),
                    }
                }
                None => self.push_log(Level::Warn, "no connection selected to message".into()),
            },
            KeyCode::Char('d') => match self.selected_record() {
                Some(r) => {
                    self.mode = Mode::ConfirmDisconnect {
                        id: r.id.to_string(),
                    }
                }
                None => self.push_log(Level::Warn, "no connection selected to disconnect".into()),
            },
            KeyCode::Char('b') => {
                if let Some(e) = selector_error(&self.filter) {
                    self.refuse_unparsed(&e, "broadcast");
                } else if self.broadcast.is_some() {
                    self.push_log(Level::Warn, "a broadcast is already running".into());
                } else if self.filtered() && self.view.is_empty() {
                    self.push_log(
                        Level::Warn,
                        format!(
                            "no row matches /{}: nothing to broadcast to",
                            sanitize(&self.filter)
                        ),
                    );
                } else {
                    self.mode = Mode::Broadcast {
                        input: String::new(),
                    };
                }
            }
            KeyCode::Char('p') => {
                if self.pruning {
                    self.push_log(Level::Warn, "a prune is already running".into());
                } else {
                    self.mode = Mode::PrunePlanning {
                        checked: 0,
                        total: self.records.len() as u64,
                    };
                    return Some(Command::PlanPrune);
                }
            }
            _ => {}
        }
        None
    }

    /// Quits at once, unless that would abandon a running broadcast or
    /// prune: then asks, and `n` returns to `back`. The dry run's progress
    /// is not returned to: its events go on and its plan is logged, as when
    /// it is hidden.
    fn request_quit(&mut self, back: Mode) {
        if !self.quitting_abandons_work() {
            self.exit = Some(Exit::Quit);
            return;
        }
        let back = match back {
            Mode::PrunePlanning { .. } => {
                self.hide_dry_run();
                Mode::Normal
            }
            back => back,
        };
        self.show_help = false;
        self.mode = Mode::ConfirmQuit {
            back: Box::new(back),
        };
    }

    fn hide_dry_run(&mut self) {
        self.push_log(
            Level::Info,
            "prune dry run goes on in the background; its plan will be logged".into(),
        );
    }

    fn start_refresh(&mut self) -> Command {
        self.refreshing = true;
        Command::Refresh
    }

    /// After an action that changed the registry: refresh now, unless one is
    /// already running (its result may predate the change, so the next
    /// periodic one is due at once).
    fn refresh_soon(&mut self) -> Option<Command> {
        if self.refreshing {
            self.refresh_again = true;
            None
        } else {
            Some(self.start_refresh())
        }
    }

    fn on_refreshed(&mut self, records: Vec<ConnectionRow>, at_ms: i64) {
        self.refreshing = false;
        self.next_refresh_ms = at_ms + self.interval_ms;
        self.error = None;
        if self.last_refresh_ms.is_some() {
            self.log_churn(&records, at_ms);
        } else {
            self.first_refresh_ms = Some(at_ms);
            self.push_log_at(
                at_ms,
                Level::Info,
                format!("{} connections registered", fmt_count(records.len() as u64)),
            );
        }
        self.last_refresh_ms = Some(at_ms);
        if self.history.len() == HISTORY_CAPACITY {
            self.history.pop_front();
        }
        self.history.push_back(records.len() as u64);
        let keep = self.selected_record().map(|r| r.id.to_string());
        self.records = records;
        if !self.idle.is_empty() {
            let registered: HashSet<&str> = self.records.iter().map(|r| &*r.id).collect();
            self.idle.retain(|id, _| registered.contains(id.as_str()));
        }
        self.view.clear();
        if let Some(stale) = self.stale {
            self.stale = Some(stale.min(self.records.len() as u64));
        }
        self.rebuild_view_keeping(keep);
    }

    fn log_churn(&mut self, records: &[ConnectionRow], at_ms: i64) {
        let old: HashSet<&str> = self.records.iter().map(|r| &*r.id).collect();
        let new: HashSet<&str> = records.iter().map(|r| &*r.id).collect();
        let appeared: Vec<&ConnectionRow> =
            records.iter().filter(|r| !old.contains(&*r.id)).collect();
        let vanished: Vec<&str> = self
            .records
            .iter()
            .map(|r| &*r.id)
            .filter(|id| !new.contains(id))
            .collect();
        let mut lines = Vec::new();
        if appeared.len() <= LOG_EACH_UP_TO {
            for r in &appeared {
                let from = r.source_ip.as_deref().unwrap_or("?");
                let ua = r.user_agent.as_deref().unwrap_or("-");
                lines.push(format!(
                    "+ {} connected from {} ({})",
                    sanitize(&r.id),
                    sanitize(from),
                    sanitize(ua)
                ));
            }
        } else {
            lines.push(format!("+ {} connections appeared", appeared.len()));
        }
        if vanished.len() <= LOG_EACH_UP_TO {
            for id in &vanished {
                lines.push(format!("- {} went away", sanitize(id)));
            }
        } else {
            lines.push(format!("- {} connections went away", vanished.len()));
        }
        let churn = Churn {
            at_ms,
            appeared: appeared.len() as u64,
            vanished: vanished.len() as u64,
        };
        for line in lines {
            self.push_log_at(at_ms, Level::Info, line);
        }
        while self
            .churn
            .front()
            .is_some_and(|c| c.at_ms <= at_ms - RATE_WINDOW_MS)
        {
            self.churn.pop_front();
        }
        self.churn.push_back(churn);
    }

    fn on_probed(&mut self, id: String, record: Option<ConnectionRecord>, check: LiveCheck) {
        let live = match check {
            LiveCheck::Live(info) => {
                self.idle.insert(
                    id.clone(),
                    IdleEntry {
                        check: IdleCheck::Live {
                            last_active_at: info.last_active_at,
                        },
                        at_ms: self.now_ms,
                    },
                );
                LiveState::Live {
                    info,
                    at_ms: self.now_ms,
                }
            }
            LiveCheck::Gone => {
                self.idle.insert(
                    id.clone(),
                    IdleEntry {
                        check: IdleCheck::Gone,
                        at_ms: self.now_ms,
                    },
                );
                self.push_log(
                    Level::Warn,
                    format!("{} is gone: its record is stale", sanitize(&id)),
                );
                LiveState::Gone { at_ms: self.now_ms }
            }
        };
        if let Some(details) = self.details.as_mut().filter(|d| d.id == id) {
            details.live = live;
            details.record = record;
        }
    }

    fn on_broadcast_done(&mut self, r: &SweepReport) {
        let counted = self.broadcast.take().map_or(r.targeted, |b| b.total);
        self.push_log(
            Level::warn_unless(r.is_complete()),
            format!(
                "broadcast: {} delivered, {} gone ({} records removed), {} failed, in {}",
                fmt_count(r.delivered),
                fmt_count(r.gone),
                fmt_count(r.records_removed),
                fmt_count(r.failed + r.cleanup_failed),
                wsadmin_core::duration::format_duration(std::time::Duration::from_millis(
                    r.elapsed_ms
                )),
            ),
        );
        if r.connecting > 0 {
            self.push_log(
                Level::Info,
                format!(
                    "{} still connecting (410 inside the grace): records kept",
                    fmt_count(r.connecting)
                ),
            );
        }
        // What delivered + gone + failed does not add up to: the count
        // asked about was of rows then, the sweep reads the registry now.
        let gap = [
            (
                r.marked,
                "gone without connectedAt (marked, settled by a later run)",
            ),
            (r.not_attempted, "not attempted (stopped early)"),
        ];
        let mut why: Vec<String> = gap
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, w)| format!("{} {w}", fmt_count(*n)))
            .collect();
        if counted != r.targeted {
            why.push(format!(
                "{} targeted of {} counted: the registry changed since",
                fmt_count(r.targeted),
                fmt_count(counted)
            ));
        }
        if !why.is_empty() {
            self.push_log(Level::Info, format!("broadcast: {}", why.join("; ")));
        }
        if let Some(f) = r.failures.first.first() {
            self.push_log(
                Level::Warn,
                format!("first failure: {}", sanitize(&f.reason)),
            );
        }
        for e in r.source_errors.first.iter().take(1) {
            self.push_log(
                Level::Error,
                format!("scan failed: {}", sanitize(&e.reason)),
            );
        }
    }

    fn on_disconnected_rows(&mut self, r: &SweepReport) {
        self.disconnecting = None;
        self.push_log(
            Level::warn_unless(r.is_complete()),
            format!(
                "disconnected {} of {} ({} already closed, {} failed)",
                fmt_count(r.disconnected),
                fmt_count(r.targeted),
                fmt_count(r.gone),
                fmt_count(r.failed + r.cleanup_failed),
            ),
        );
        if let Some(f) = r.failures.first.first() {
            self.push_log(
                Level::Warn,
                format!("first failure: {}", sanitize(&f.reason)),
            );
        }
    }

    /// The next batch of the IDLE column's probes, if one is due: rows on
    /// screen without an answer, or with one older than
    /// [`IDLE_MAX_AGE_MS`], at most [`IDLE_BATCH`] per [`IDLE_EVERY_MS`],
    /// and none while a batch runs.
    fn next_idle_probe(&mut self) -> Option<Command> {
        let since = self.last_idle_ms.map(|at| self.now_ms - at);
        if since.is_some_and(|ms| ms < IDLE_EVERY_MS)
            || (self.idle_in_flight && since.is_some_and(|ms| ms < IDLE_GIVE_UP_MS))
        {
            return None;
        }
        let start = self.offset.min(self.view.len());
        let end = (start + self.page_size()).min(self.view.len());
        let ids: Vec<String> = self.view[start..end]
            .iter()
            .map(|&i| &self.records[i].id)
            .filter(|id| {
                self.idle
                    .get(&***id)
                    .is_none_or(|e| self.now_ms - e.at_ms >= IDLE_MAX_AGE_MS)
            })
            .take(IDLE_BATCH)
            .map(|id| id.to_string())
            .collect();
        if ids.is_empty() {
            return None;
        }
        self.idle_in_flight = true;
        self.last_idle_ms = Some(self.now_ms);
        Some(Command::ProbeIdle { ids })
    }

    fn on_prune_planned(&mut self, plan: PrunePlan) {
        self.stale = Some(plan.stale.len() as u64);
        let mut line = format!(
            "prune dry run: {} of {} records are stale",
            fmt_count(plan.stale.len() as u64),
            fmt_count(plan.checked)
        );
        if plan.unknown > 0 {
            line.push_str(&format!(", {} could not be checked", plan.unknown));
        }
        self.push_log(Level::Info, line);
        if let Some(e) = &plan.first_error {
            self.push_log(Level::Warn, format!("first check failure: {}", sanitize(e)));
        }
        if let Mode::PrunePlanning { .. } = self.mode {
            self.mode = Mode::ConfirmPrune { plan };
        }
    }

    fn on_pruned(&mut self, r: &PruneSummary) {
        self.pruning = false;
        if let Some(stale) = self.stale {
            self.stale = Some(stale.saturating_sub(r.removed + r.already_removed));
        }
        self.push_log(
            Level::warn_unless(r.errors.is_empty()),
            format!(
                "pruned {} stale records ({} already gone, {} failed)",
                fmt_count(r.removed),
                fmt_count(r.already_removed),
                r.errors.len()
            ),
        );
        if let Some(e) = r.errors.first() {
            self.push_log(Level::Warn, format!("first failure: {}", sanitize(e)));
        }
    }

    fn on_failed(&mut self, task: Task, message: String) {
        let message = sanitize(&message).into_owned();
        let what = match &task {
            Task::Refresh => {
                self.refreshing = false;
                self.refresh_again = false;
                self.next_refresh_ms = self.now_ms + self.interval_ms;
                "refresh".to_owned()
            }
            Task::Probe { id } => {
                if let Some(d) = self.details.as_mut().filter(|d| &d.id == id) {
                    d.live = LiveState::Failed(message.clone());
                }
                format!("inspect {}", sanitize(id))
            }
            Task::Send { id } => format!("message to {}", sanitize(id)),
            Task::Broadcast => {
                self.broadcast = None;
                "broadcast".to_owned()
            }
            Task::Disconnect { id } => format!("disconnect {}", sanitize(id)),
            Task::PlanPrune => {
                if let Mode::PrunePlanning { .. } = self.mode {
                    self.mode = Mode::Normal;
                }
                "prune dry run".to_owned()
            }
            Task::Prune => {
                self.pruning = false;
                "prune".to_owned()
            }
        };
        self.push_log(Level::Error, format!("{what} failed: {message}"));
        self.error = Some(format!("{what} failed: {message}"));
    }

    fn push_log(&mut self, level: Level, text: String) {
        self.push_log_at(self.now_ms, level, text);
    }

    fn push_log_at(&mut self, at_ms: i64, level: Level, text: String) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { at_ms, level, text });
    }

    /// `b` or `D` under a filter that is a broken selector: say why, act on
    /// nothing.
    fn refuse_unparsed(&mut self, e: &WhereError, action: &str) {
        self.push_log(
            Level::Warn,
            format!(
                "not a selector, nothing to {action}: {} at character {} of /{}",
                e.reason,
                e.at,
                sanitize(&e.input)
            ),
        );
    }

    /// Refilters and resorts, keeping the selected connection selected.
    fn rebuild_view(&mut self) {
        let keep = self.selected_record().map(|r| r.id.to_string());
        self.rebuild_view_keeping(keep);
    }

    fn rebuild_view_keeping(&mut self, keep: Option<String>) {
        let needle = self.filter.to_lowercase();
        let selector = selector_of(&self.filter);
        let records = &self.records;
        self.view.clear();
        self.view
            .extend((0..records.len()).filter(|&i| match &selector {
                Some(s) => s.matches_with(|key| row_value(&records[i], key)),
                None => matches_filter(&records[i], &needle),
            }));
        let sort = self.sort;
        let idle = &self.idle;
        let last_active = |id: &str| idle.get(id).and_then(IdleEntry::last_active_at);
        self.view
            .sort_unstable_by(|&a, &b| sort.compare(&records[a], &records[b], last_active));
        let at = keep.and_then(|id| self.view.iter().position(|&i| *records[i].id == *id));
        self.select(at.unwrap_or(self.selected));
    }

    fn select(&mut self, i: usize) {
        self.selected = i.min(self.view.len().saturating_sub(1));
        self.scroll_into_view();
    }

    /// Which optional parts of the screen are showing.
    pub fn panes(&self) -> Panes {
        Panes {
            error: self.error.is_some(),
            details: self.details.is_some(),
        }
    }

    /// Rows of the table on screen.
    pub fn page_size(&self) -> usize {
        let (width, height) = self.size;
        layout::table_rows(width, height, self.panes())
    }

    fn scroll_into_view(&mut self) {
        self.offset = layout::visible_offset(
            self.offset,
            self.selected,
            self.page_size(),
            self.view.len(),
        );
    }
}

/// Applies one key to a line being typed; true if it changed.
fn edit(line: &mut String, code: KeyCode, ctrl: bool) -> bool {
    match code {
        KeyCode::Backspace => line.pop().is_some(),
        KeyCode::Char('u') if ctrl => {
            let changed = !line.is_empty();
            line.clear();
            changed
        }
        KeyCode::Char(c) if !ctrl && !c.is_control() => {
            line.push(c);
            true
        }
        _ => false,
    }
}

/// `the 3 rows matching room=7`, as confirmations and the log say it.
pub fn rows_matching(rows: usize, filter: &str) -> String {
    format!(
        "the {} {} matching {}",
        fmt_count(rows as u64),
        if rows == 1 { "row" } else { "rows" },
        sanitize(filter)
    )
}

/// A filter with a selector's operator (`room=7`, `!user`, `room in (1,2)`)
/// selects as `wsadmin --where` does; other text (or a selector still
/// being typed) is searched for.
fn selector_of(filter: &str) -> Option<Where> {
    looks_like_selector(filter)
        .then(|| filter.parse().ok())
        .flatten()
}

/// Whether the filter has a selector's operator (or a comparison, which
/// selectors lack: `room>2` is a mistake, not text to search for).
fn looks_like_selector(filter: &str) -> bool {
    filter.contains(['=', '!', '(', '>', '<'])
}

/// Why a filter that reads as a selector does not parse: `b` and `D` then
/// refuse, rather than act on the rows a text search happened to find.
fn selector_error(filter: &str) -> Option<WhereError> {
    looks_like_selector(filter)
        .then(|| filter.parse::<Where>().err())
        .flatten()
}

/// A row's value for a selector key: `sourceIp`, `userAgent`, or a meta
/// key, as `filter::record_value` reads a record.
fn row_value<'a>(r: &'a ConnectionRow, key: &str) -> Option<&'a str> {
    match key {
        ATTR_SOURCE_IP => r.source_ip.as_deref(),
        ATTR_USER_AGENT => r.user_agent.as_deref(),
        key => r.meta_value(key),
    }
}

/// Case-insensitive match of the filter against id, IP, user agent and meta.
fn matches_filter(r: &ConnectionRow, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let hit = |s: &str| contains_ignore_case(s, needle);
    hit(&r.id)
        || r.source_ip.as_deref().is_some_and(hit)
        || r.user_agent.as_deref().is_some_and(hit)
        || r.meta.iter().any(|(k, v)| hit(k) || hit(v))
}

/// `needle` is already lowercase. Allocation-free for ASCII haystacks, the
/// common case, since this runs over every record on each keystroke.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_with_an_operator_selects_as_where_does() {
        let mut r = ConnectionRecord::new("abc=");
        r.user_agent = Some("Mozilla/5.0 Firefox/120.0".into());
        r.meta.insert("room".into(), "7".into());
        r.meta.insert("user".into(), "ana".into());
        let row = ConnectionRow::from(r);
        let selects = |filter: &str| {
            selector_of(filter)
                .unwrap_or_else(|| panic!("{filter} is a selector"))
                .matches_with(|key| row_value(&row, key))
        };
        assert!(selects("room=7"));
        assert!(selects("room in (1,7),user!=bob"));
        assert!(selects("userAgent=*firefox*"));
        assert!(!selects("!user"));
        assert!(!selects("room=77"));
        // Text, or a selector still being typed, is searched for.
        assert!(selector_of("firefox").is_none());
        assert!(selector_of("room in (1").is_none());
    }
}
