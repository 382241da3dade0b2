//! Drawing the dashboard: `impl Widget for &App`. Reads the app, never
//! changes it, never asks the clock (the app's `now_ms` is "now").
//!
//! Only the rows on screen are built, whatever the registry's size. Every
//! string that came from a client passes through [`sanitize`].

use std::borrow::Cow;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Gauge, HighlightSpacing, Paragraph, Row, Sparkline,
    StatefulWidget, Table, TableState, Widget, Wrap,
};

use crate::app::{App, BroadcastRun, Level, LiveState, Mode, rows_matching};
use crate::event::IdleCheck;
use crate::format::{fmt_age, fmt_clock, fmt_count};
use crate::layout::{Areas, visible_offset};
use crate::row::ConnectionRow;
use crate::sanitize::sanitize;
use wsadmin_core::filter::quote_value;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let areas = Areas::new(area, self.panes());
        render_header(self, areas.header, buf);
        render_table(self, areas.table, buf);
        if let Some(details) = areas.details {
            render_details(self, details, buf);
        }
        render_activity(self, areas.activity, buf);
        render_footer(self, areas.footer, buf);
        render_overlay(self, area, buf);
    }
}

fn label<'a>(text: impl Into<Cow<'a, str>>) -> Span<'a> {
    Span::styled(text, Style::new().fg(Color::DarkGray))
}

/// The header's right-hand column: connects, messages and errors per
/// minute over the last 15 minutes, one sparkline each.
const METRICS_WIDTH: u16 = 27;

fn render_header(app: &App, area: Rect, buf: &mut Buffer) {
    let area = match &app.metrics {
        Some(m) if area.width >= 2 * METRICS_WIDTH && area.height >= 3 => {
            let [text, spark] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(METRICS_WIDTH)])
                    .areas(area);
            render_metrics(m, spark, buf);
            text
        }
        _ => area,
    };
    let t = &app.target;
    let mut where_ = vec![Span::styled("wsadmin", Style::new().bold().fg(Color::Cyan))];
    if let Some(ctx) = &t.context {
        where_.push(Span::raw(" "));
        where_.push(Span::styled(
            format!("[{}]", sanitize(ctx)),
            Style::new().bold(),
        ));
    }
    where_.extend([
        Span::raw(" "),
        Span::raw(sanitize(&t.endpoint).into_owned()),
        label("  table "),
        Span::raw(sanitize(&t.table).into_owned()),
        label("  region "),
        Span::raw(sanitize(&t.region).into_owned()),
    ]);

    let registered = app.records().len() as u64;
    let mut totals = vec![
        label("registered "),
        Span::raw(fmt_count(registered)).bold(),
    ];
    if let Some(stale) = app.stale {
        totals.extend([
            label("  live "),
            Span::raw(fmt_count(registered.saturating_sub(stale))).green(),
            label("  stale "),
            Span::raw(fmt_count(stale)).yellow(),
        ]);
    }
    if let Some((up, down)) = app.rates_per_minute() {
        totals.extend([
            label("  "),
            Span::raw(format!("+{up:.1}/min")).green(),
            Span::raw(" "),
            Span::raw(format!("-{down:.1}/min")).red(),
        ]);
    }
    totals.extend([label("  sort "), Span::raw(app.sort.label())]);
    if !app.filter.is_empty() {
        // The count before the filter: a long filter is cut, never it.
        totals.extend([
            label(format!("  {} shown", fmt_count(app.visible_len() as u64))),
            label(" filter "),
            Span::raw(format!("/{}", sanitize(&app.filter))).yellow(),
        ]);
    }

    let mut status = match app.last_refresh_ms {
        Some(at) => vec![
            label("refreshed "),
            Span::raw(format!(
                "{} ({} ago)",
                fmt_clock(at),
                fmt_age(app.now_ms - at)
            )),
            label(format!(
                ", every {}",
                wsadmin_core::duration::format_duration(Duration::from_millis(
                    app.interval_ms as u64
                ))
            )),
        ],
        None => vec![label("not refreshed yet")],
    };
    if app.refreshing {
        status.push(Span::raw("  refreshing…").fg(Color::Cyan));
    }
    let error = app.error.as_ref().map(|e| {
        Line::from(vec![
            Span::styled("error: ", Style::new().fg(Color::Red).bold()),
            Span::styled(e.as_str(), Style::new().fg(Color::Red)),
        ])
    });

    let lines = match (area.height, error) {
        (3.., Some(error)) => vec![
            Line::from(where_),
            Line::from(totals),
            Line::from(status),
            error,
        ],
        (3.., None) => vec![Line::from(where_), Line::from(totals), Line::from(status)],
        (_, error) => vec![
            Line::from(where_),
            error.unwrap_or_else(|| Line::from(totals)),
        ],
    };
    Paragraph::new(lines).render(area, buf);
}

fn render_metrics(m: &wsadmin_core::api_metrics::PerMinute, area: Rect, buf: &mut Buffer) {
    let rows = Layout::vertical([Constraint::Length(1); 3]).split(area);
    for (row, (name, values, color)) in rows.iter().zip([
        ("conn", &m.connects, Color::Green),
        ("msgs", &m.messages, Color::Cyan),
        ("errs", &m.errors, Color::Red),
    ]) {
        let last = values.last().copied().unwrap_or(0.0);
        let [title, spark, now] = Layout::horizontal([
            Constraint::Length(6),
            Constraint::Length(15),
            Constraint::Length(6),
        ])
        .areas(*row);
        Paragraph::new(label(format!(" {name} "))).render(title, buf);
        let data: Vec<u64> = values.iter().map(|v| v.max(0.0).round() as u64).collect();
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(color))
            .render(spark, buf);
        Paragraph::new(format!("{:>5}", fmt_count(last.max(0.0).round() as u64))).render(now, buf);
    }
}

fn render_table(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let rows_h = usize::from(area.height - 1);
    let len = app.visible_len();
    let offset = visible_offset(app.offset, app.selected, rows_h, len);
    let end = (offset + rows_h).min(len);
    let visible: Vec<&ConnectionRow> = (offset..end).filter_map(|i| app.row(i)).collect();

    // The id is never cut: the other columns give way (the user agent
    // first, being the one that fills).
    let id_width = visible
        .iter()
        .map(|r| sanitize(&r.id).chars().count())
        .max()
        .unwrap_or(0)
        .max(16)
        .min(usize::from(area.width.saturating_sub(1))) as u16;
    let columns: &[Column] = match area.width {
        90.. => &[
            Column::Id,
            Column::Age,
            Column::Idle,
            Column::SourceIp,
            Column::UserAgent,
            Column::Meta,
        ],
        // Narrower, the meta (what operators filter on) keeps its place
        // and the user agent shares what is left.
        60.. => &[
            Column::Id,
            Column::Age,
            Column::Idle,
            Column::Meta,
            Column::UserAgent,
        ],
        _ => &[Column::Id, Column::Age, Column::Meta],
    };
    let widths: Vec<Constraint> = columns.iter().map(|c| c.width(id_width)).collect();
    // Where the table will put each column (as `Table` lays them out: the
    // highlight symbol's cell, then the columns from the start), so a value
    // too long for its column ends in `…` rather than mid-word silently.
    let room: Vec<usize> = Layout::horizontal(widths.iter().copied())
        .flex(Flex::Start)
        .spacing(COLUMN_SPACING)
        .split(Rect::new(0, 0, area.width.saturating_sub(1), 1))
        .iter()
        .map(|r| usize::from(r.width))
        .collect();
    let header = Row::new(columns.iter().map(|c| Cell::from(c.title())))
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    let rows = visible.iter().map(|r| {
        Row::new(
            columns
                .iter()
                .zip(&room)
                .map(|(c, &room)| Cell::from(c.fitted(app, r, room))),
        )
    });
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(COLUMN_SPACING)
        .highlight_symbol(">")
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::new().with_selected((len > 0).then(|| app.selected - offset));
    StatefulWidget::render(table, area, buf, &mut state);

    if len == 0 && area.height > 2 {
        let note = if app.last_refresh_ms.is_none() {
            "loading the registry…".to_owned()
        } else if app.records().is_empty() {
            "no connections registered".to_owned()
        } else {
            format!("no connection matches /{}", sanitize(&app.filter))
        };
        let at = Rect::new(area.x, area.y + 2, area.width, 1);
        Paragraph::new(note)
            .style(Style::new().fg(Color::DarkGray))
            .centered()
            .render(at, buf);
    }
}

const COLUMN_SPACING: u16 = 1;

/// `text` in at most `width` cells: cut, with `…` as its last cell, if
/// longer.
fn fit(text: String, width: usize) -> String {
    if Span::raw(text.as_str()).width() <= width {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0; 4];
    for c in text.chars() {
        let w = Span::raw(&*c.encode_utf8(&mut buf)).width();
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    Age,
    Idle,
    SourceIp,
    UserAgent,
    Meta,
}

impl Column {
    fn title(self) -> &'static str {
        match self {
            Self::Id => "ID",
            Self::Age => "AGE",
            Self::Idle => "IDLE",
            Self::SourceIp => "SOURCE IP",
            Self::UserAgent => "USER AGENT",
            Self::Meta => "META",
        }
    }

    fn width(self, id_width: u16) -> Constraint {
        match self {
            Self::Id => Constraint::Length(id_width),
            Self::Age | Self::Idle => Constraint::Length(7),
            Self::SourceIp => Constraint::Length(15),
            Self::UserAgent => Constraint::Fill(3),
            Self::Meta => Constraint::Fill(2),
        }
    }

    /// The value in its column's `room`: the id whole (the table makes
    /// room for it), the rest cut with `…`.
    fn fitted(self, app: &App, r: &ConnectionRow, room: usize) -> String {
        match self {
            Self::Id => self.value(app, r),
            _ => fit(self.value(app, r), room),
        }
    }

    fn value(self, app: &App, r: &ConnectionRow) -> String {
        let dash = || "-".to_owned();
        match self {
            Self::Id => sanitize(&r.id).into_owned(),
            Self::Age => r
                .connected_at
                .map_or_else(dash, |at| fmt_age(app.now_ms - at)),
            // Unknown until the row has been on screen for a probe.
            Self::Idle => match app.idle.get(&*r.id).map(|e| &e.check) {
                Some(IdleCheck::Live {
                    last_active_at: Some(at),
                }) => fmt_age(app.now_ms - at),
                Some(IdleCheck::Gone) => "gone".to_owned(),
                Some(IdleCheck::Failed(_)) => "?".to_owned(),
                Some(IdleCheck::Live {
                    last_active_at: None,
                })
                | None => dash(),
            },
            Self::SourceIp => r
                .source_ip
                .as_deref()
                .map_or_else(dash, |s| sanitize(s).into_owned()),
            Self::UserAgent => r
                .user_agent
                .as_deref()
                .map_or_else(dash, |s| sanitize(s).into_owned()),
            Self::Meta => sanitize(&r.meta_text()).into_owned(),
        }
    }
}

/// Access log lines the details pane shows at most (the latest).
const HISTORY_LINES: usize = 8;

fn render_details(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" connection ");
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(r) = app.selected_record() else {
        Paragraph::new("no connection selected").render(inner, buf);
        return;
    };
    let now = app.now_ms;
    let when = |ms: i64| format!("{} ({} ago)", fmt_clock(ms), fmt_age(now - ms));
    let field = |name: &'static str, value: String| Line::from(vec![label(name), Span::raw(value)]);
    let opt = |v: Option<&str>| v.map_or("-".into(), |s| sanitize(s).into_owned());
    let details = app.details.as_ref().filter(|d| *d.id == *r.id);
    let record = details.and_then(|d| d.record.as_ref());
    let mut lines = vec![
        field("id          ", sanitize(&r.id).into_owned()),
        field("connected   ", r.connected_at.map_or("-".into(), when)),
        field("source ip   ", opt(r.source_ip.as_deref())),
        field("user agent  ", opt(r.user_agent.as_deref())),
    ];
    match record {
        Some(record) if !record.meta.is_empty() => {
            for (i, (k, v)) in record.meta.iter().enumerate() {
                let name = if i == 0 {
                    "meta        "
                } else {
                    "            "
                };
                let pair = format!("{k}={}", quote_value(v));
                lines.push(field(name, sanitize(&pair).into_owned()));
            }
        }
        _ => {
            let meta = r.meta_text();
            lines.push(field(
                "meta        ",
                opt((!meta.is_empty()).then_some(&*meta)),
            ));
        }
    }
    lines.push(Line::from(Span::styled(
        "live (GetConnection)",
        Style::new().bold(),
    )));
    match details.map(|d| &d.live) {
        None => lines.push(Line::from(label("press Enter to ask API Gateway"))),
        Some(LiveState::Fetching) => lines.push(Line::from("fetching…")),
        Some(LiveState::Gone { at_ms }) => {
            lines.push(field(
                "state       ",
                "gone (410): the record is stale".into(),
            ));
            lines.push(field("asked       ", fmt_clock(*at_ms)));
        }
        Some(LiveState::Failed(e)) => lines.push(Line::from(e.as_str()).red()),
        Some(LiveState::Live { info, at_ms }) => {
            lines.push(Line::from(vec![label("state       "), "live".green()]));
            lines.push(field(
                "last active ",
                info.last_active_at.map_or("-".into(), |at| {
                    format!("{} (idle {})", fmt_clock(at), fmt_age(now - at))
                }),
            ));
            lines.push(field(
                "connected   ",
                info.connected_at.map_or("-".into(), when),
            ));
            lines.push(field("source ip   ", opt(info.source_ip.as_deref())));
            lines.push(field("user agent  ", opt(info.user_agent.as_deref())));
            lines.push(field("asked       ", fmt_clock(*at_ms)));
        }
    }
    if let Some(record) = record {
        lines.extend([
            Line::from(Span::styled("record", Style::new().bold())),
            field("domain      ", opt(record.domain_name.as_deref())),
            field("stage       ", opt(record.stage.as_deref())),
            field(
                "expires     ",
                record
                    .expires_at
                    .map_or("-".into(), |s| fmt_clock(s * 1000)),
            ),
        ]);
    }
    match details.and_then(|d| d.history.as_ref()) {
        None => {}
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled("history", Style::new().bold())));
            lines.push(Line::from(sanitize(e).into_owned()).red());
        }
        Some(Ok(entries)) => {
            lines.push(Line::from(Span::styled(
                "history (access log)",
                Style::new().bold(),
            )));
            if entries.is_empty() {
                lines.push(Line::from(label("no lines for it")));
            }
            // The latest that fit a pane: its end is what is asked about.
            let skip = entries.len().saturating_sub(HISTORY_LINES);
            for e in entries.iter().skip(skip) {
                lines.push(Line::from(vec![
                    label(format!("{} ", fmt_clock(e.at_ms))),
                    Span::raw(sanitize(&e.summary()).into_owned()),
                ]));
            }
        }
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

fn render_activity(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height < 2 {
        return;
    }
    let block = Block::new().borders(Borders::TOP).title(" activity ");
    let mut inner = block.inner(area);
    block.render(area, buf);
    if let Some(run) = app.broadcast {
        let [gauge, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        progress_gauge(run.done, run.total, "broadcast ").render(gauge, buf);
        inner = rest;
    }
    let spark_w = (inner.width / 3).min(40);
    let [log_area, spark_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(spark_w)]).areas(inner);

    let shown = usize::from(log_area.height);
    let skip = app.log.len().saturating_sub(shown);
    let lines: Vec<Line> = app
        .log
        .iter()
        .skip(skip)
        .map(|e| {
            let style = match e.level {
                Level::Info => Style::new(),
                Level::Warn => Style::new().fg(Color::Yellow),
                Level::Error => Style::new().fg(Color::Red),
            };
            Line::from(vec![
                label(fmt_clock(e.at_ms)),
                Span::raw(" "),
                Span::styled(e.text.as_str(), style),
            ])
        })
        .collect();
    Paragraph::new(lines).render(log_area, buf);

    if spark_area.width >= 4 && spark_area.height >= 2 {
        let block = Block::new().borders(Borders::LEFT).title(format!(
            "registered over time (max {})",
            fmt_count(app.history.iter().copied().max().unwrap_or(0))
        ));
        let inner = block.inner(spark_area);
        block.render(spark_area, buf);
        let width = usize::from(inner.width);
        let skip = app.history.len().saturating_sub(width);
        let data: Vec<u64> = app.history.iter().skip(skip).copied().collect();
        Sparkline::default()
            .data(&data)
            .style(Style::new().fg(Color::Green))
            .render(inner, buf);
    }
}

/// `done` of `total` as a bar labelled `{prefix}done / total`.
fn progress_gauge(done: u64, total: u64, prefix: &str) -> Gauge<'static> {
    let ratio = if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    Gauge::default()
        .ratio(ratio)
        .label(format!(
            "{prefix}{} / {}",
            fmt_count(done),
            fmt_count(total)
        ))
        .gauge_style(Style::new().fg(Color::Cyan).bg(Color::Black))
}

fn key(k: &'static str) -> Span<'static> {
    Span::styled(k, Style::new().bold().fg(Color::Cyan))
}

fn hint(text: &'static str) -> Span<'static> {
    Span::styled(text, Style::new().fg(Color::DarkGray))
}

/// The normal mode's keys, most wanted first: the long form, a medium
/// one without the obvious keys, and a short one for narrow terminals
/// (empty: left out). `?` (all of them) and `q` always show.
const NORMAL_KEYS: &[(&str, &str, &str, &str)] = &[
    ("↑↓", " move ", "", ""),
    ("/", " filter ", " filter ", " filter "),
    ("s", " sort ", " sort ", " sort "),
    ("i", " idle ", " idle ", " idle "),
    ("⏎", " inspect ", " inspect ", " info "),
    ("m", " message ", " message ", " msg "),
    ("b", " broadcast ", " broadcast ", " bcast "),
    ("d", " disconnect ", " disconnect ", " disc "),
    ("D", " disconnect rows ", " disconnect rows ", " disc rows "),
    ("p", " prune ", " prune ", " prune "),
    ("r", " refresh ", "", ""),
];

/// The normal mode's key bar for a width: the first form that fits, else
/// the short one with as many keys as fit; `? help` and `q quit` end it
/// whatever the width.
fn normal_keys(width: u16) -> Vec<(&'static str, &'static str)> {
    const TAIL: [(&str, &str); 2] = [("?", " help "), ("q", " quit")];
    let len = |keys: &[(&str, &str)]| -> usize {
        keys.iter()
            .chain(&TAIL)
            .map(|(k, h)| k.chars().count() + h.chars().count())
            .sum()
    };
    let form =
        |pick: fn(&(&'static str, &'static str, &'static str, &'static str)) -> &'static str| {
            NORMAL_KEYS
                .iter()
                .map(|k| (k.0, pick(k)))
                .filter(|(_, hint)| !hint.is_empty())
                .collect::<Vec<_>>()
        };
    let width = usize::from(width);
    let mut keys = [form(|k| k.1), form(|k| k.2)]
        .into_iter()
        .find(|keys| len(keys) <= width)
        .unwrap_or_else(|| form(|k| k.3));
    while !keys.is_empty() && len(&keys) > width {
        keys.pop();
    }
    keys.extend(TAIL);
    keys
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let normal;
    let keys: &[(&str, &str)] = match &app.mode {
        _ if app.show_help => &[("esc", " close help")],
        Mode::Normal => {
            normal = normal_keys(area.width);
            &normal
        }
        Mode::Filter => {
            let line = Line::from(vec![
                key("/"),
                Span::raw(sanitize(&app.filter).into_owned()),
                Span::raw("▏"),
                hint("  ⏎ keep  esc clear"),
            ]);
            Paragraph::new(line).render(area, buf);
            return;
        }
        Mode::Message { .. } | Mode::Broadcast { .. } => {
            &[("⏎", " next "), ("esc", " cancel "), ("ctrl-u", " clear")]
        }
        Mode::ConfirmBroadcast { .. }
        | Mode::ConfirmDisconnect { .. }
        | Mode::ConfirmDisconnectRows { .. } => {
            &[("y", " confirm "), ("n", "/"), ("esc", " cancel")]
        }
        Mode::ConfirmPrune { plan } if !plan.stale.is_empty() => {
            &[("y", " delete "), ("n", "/"), ("esc", " cancel")]
        }
        Mode::ConfirmPrune { .. } => &[("esc", " close")],
        Mode::PrunePlanning { .. } => &[("esc", " hide (keeps running)")],
        Mode::ConfirmQuit { .. } => &[("y", " quit "), ("n", "/"), ("esc", " stay")],
    };
    let spans: Vec<Span> = keys.iter().flat_map(|(k, h)| [key(k), hint(h)]).collect();
    Paragraph::new(Line::from(spans)).render(area, buf);
}

/// A box of at most `width` x `height` in the middle of `area`, cleared,
/// with a border and title; returns its inside.
fn popup(area: Rect, width: u16, height: u16, title: String, buf: &mut Buffer) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(title)
        .border_style(Style::new().fg(Color::Cyan));
    let inner = block.inner(rect);
    block.render(rect, buf);
    inner
}

fn render_overlay(app: &App, area: Rect, buf: &mut Buffer) {
    let para = |lines: Vec<Line<'static>>| Paragraph::new(lines).wrap(Wrap { trim: false });
    if app.show_help {
        let help = help_lines();
        let inner = popup(area, 64, help.len() as u16 + 2, " keys ".into(), buf);
        para(help).render(inner, buf);
        return;
    }
    let registered = fmt_count(app.records().len() as u64);
    match &app.mode {
        Mode::Normal | Mode::Filter => {}
        Mode::Message { id, input } => {
            let inner = popup(area, 70, 5, format!(" message to {} ", sanitize(id)), buf);
            para(input_lines(input, "⏎ send  esc cancel")).render(inner, buf);
        }
        Mode::Broadcast { input } => {
            let title = if app.filtered() {
                format!(
                    " broadcast to {} ",
                    rows_matching(app.visible_len(), &app.filter)
                )
            } else {
                format!(" broadcast to {registered} connections ")
            };
            let inner = popup(area, 70, 5, title, buf);
            para(input_lines(input, "⏎ review  esc cancel")).render(inner, buf);
        }
        Mode::ConfirmBroadcast { text, rows } => {
            let inner = popup(area, 70, 8, " confirm broadcast ".into(), buf);
            let whom = match rows {
                None => format!("{registered} registered connections"),
                Some(rows) => rows_matching(rows.ids.len(), &rows.filter),
            };
            para(vec![
                Line::from(vec![
                    Span::raw("Send this message to "),
                    Span::raw(whom).bold(),
                    Span::raw("?"),
                ]),
                Line::from(""),
                Line::from(format!("  {}", sanitize(text))).yellow(),
                Line::from(""),
                Line::from(vec![key("y"), hint(" send  "), key("n"), hint(" cancel")]),
            ])
            .render(inner, buf);
        }
        Mode::ConfirmDisconnect { id } => {
            let who = app
                .records()
                .iter()
                .find(|r| *r.id == **id)
                .map(|r| {
                    format!(
                        "{} from {}",
                        sanitize(r.user_agent.as_deref().unwrap_or("-")),
                        sanitize(r.source_ip.as_deref().unwrap_or("?"))
                    )
                })
                .unwrap_or_default();
            let inner = popup(area, 64, 7, " confirm disconnect ".into(), buf);
            para(vec![
                Line::from(vec![
                    Span::raw("Close connection "),
                    Span::raw(sanitize(id).into_owned()).bold(),
                    Span::raw("?"),
                ]),
                Line::from(who).fg(Color::DarkGray),
                Line::from(""),
                Line::from(vec![
                    key("y"),
                    hint(" disconnect  "),
                    key("n"),
                    hint(" cancel"),
                ]),
            ])
            .render(inner, buf);
        }
        Mode::ConfirmDisconnectRows { rows } => {
            const LISTED: usize = 5;
            let listed = if rows.ids.len() > LISTED {
                LISTED - 1
            } else {
                rows.ids.len()
            };
            let height = 2 + 1 + listed as u16 + u16::from(listed < rows.ids.len()) + 2;
            let inner = popup(area, 64, height, " confirm disconnect ".into(), buf);
            let mut lines = vec![Line::from(vec![
                Span::raw("Close "),
                Span::raw(rows_matching(rows.ids.len(), &rows.filter)).bold(),
                Span::raw("?"),
            ])];
            for id in rows.ids.iter().take(listed) {
                lines.push(Line::from(format!("  {}", sanitize(id))));
            }
            if listed < rows.ids.len() {
                lines.push(Line::from(format!(
                    "  … and {} more",
                    fmt_count((rows.ids.len() - listed) as u64)
                )));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                key("y"),
                hint(" disconnect them  "),
                key("n"),
                hint(" cancel"),
            ]));
            para(lines).render(inner, buf);
        }
        Mode::ConfirmQuit { .. } => {
            let inner = popup(area, 60, 6, " quit? ".into(), buf);
            para(quit_lines(app)).render(inner, buf);
        }
        Mode::PrunePlanning { checked, total } => {
            let inner = popup(area, 60, 5, " prune: dry run ".into(), buf);
            let [text, gauge] =
                Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(inner);
            para(vec![Line::from(
                "Asking API Gateway which registered connections are gone…",
            )])
            .render(text, buf);
            progress_gauge(*checked, *total, "").render(gauge, buf);
        }
        Mode::ConfirmPrune { plan } => {
            // The counts, up to 10 ids (or 9 and "… and N more"), the keys.
            let height = 2 + 1 + u16::from(plan.unknown > 0) + plan.stale.len().min(10) as u16 + 2;
            let inner = popup(area, 64, height, " prune plan ".into(), buf);
            let mut lines = vec![];
            if plan.stale.is_empty() {
                lines.push(Line::from(format!(
                    "Nothing to prune: all {} checked records are live.",
                    fmt_count(plan.checked)
                )));
            } else {
                lines.push(Line::from(vec![
                    Span::raw(format!(
                        "{} of {} records are stale",
                        fmt_count(plan.stale.len() as u64),
                        fmt_count(plan.checked)
                    ))
                    .bold(),
                    Span::raw(" (their connection answers 410 Gone):"),
                ]));
            }
            if plan.unknown > 0 {
                lines.push(
                    Line::from(format!(
                        "{} could not be checked (they are kept).",
                        fmt_count(plan.unknown)
                    ))
                    .yellow(),
                );
            }
            // Room for the ids: the box minus the lines above and the keys.
            let room = usize::from(inner.height)
                .saturating_sub(lines.len() + 2)
                .max(1);
            let listed = if plan.stale.len() > room {
                room - 1
            } else {
                plan.stale.len()
            };
            for id in plan.stale.iter().take(listed) {
                lines.push(Line::from(format!("  {}", sanitize(id))));
            }
            if listed < plan.stale.len() {
                lines.push(Line::from(format!(
                    "  … and {} more",
                    fmt_count((plan.stale.len() - listed) as u64)
                )));
            }
            lines.push(Line::from(""));
            if plan.stale.is_empty() {
                lines.push(Line::from(vec![key("esc"), hint(" close")]));
            } else {
                lines.push(Line::from(vec![
                    key("y"),
                    hint(" delete these records  "),
                    key("n"),
                    hint(" cancel"),
                ]));
            }
            para(lines).render(inner, buf);
        }
    }
}

/// What quitting now would abandon, read from the app as it is: the work may
/// have ended since the question was asked.
fn quit_lines(app: &App) -> Vec<Line<'static>> {
    let progress =
        |b: BroadcastRun| format!("{} of {} done", fmt_count(b.done), fmt_count(b.total));
    if let Some(n) = app.disconnecting {
        let mut running = format!("Closing {} connections.", fmt_count(n));
        if let Some(b) = app.broadcast {
            running.push_str(&format!(" A broadcast is running ({}).", progress(b)));
        }
        if app.pruning {
            running.push_str(" A prune is running.");
        }
        return vec![
            Line::from(running).bold(),
            Line::from("Quit and abandon it? The rest stay open."),
            Line::from(""),
            Line::from(vec![key("y"), hint(" quit  "), key("n"), hint(" stay")]),
        ];
    }
    let (running, question) = match (app.broadcast, app.pruning) {
        (Some(b), false) => (
            format!("A broadcast is running ({}).", progress(b)),
            "Quit and abandon it? The rest will not be sent.",
        ),
        (None, true) => (
            "A prune is running.".to_owned(),
            "Quit and abandon it? Records not deleted yet stay.",
        ),
        (Some(b), true) => (
            format!("A broadcast ({}) and a prune are running.", progress(b)),
            "Quit and abandon them?",
        ),
        (None, false) => ("Nothing is running any more.".to_owned(), "Quit?"),
    };
    vec![
        Line::from(running).bold(),
        Line::from(question),
        Line::from(""),
        Line::from(vec![key("y"), hint(" quit  "), key("n"), hint(" stay")]),
    ]
}

fn input_lines(input: &str, keys: &'static str) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::raw("> "),
            Span::raw(sanitize(input).into_owned()),
            Span::raw("▏"),
        ]),
        Line::from(""),
        Line::from(hint(keys)),
    ]
}

fn help_lines() -> Vec<Line<'static>> {
    let rows: &[(&'static str, &'static str)] = &[
        ("↑ ↓  j k", "move the selection"),
        ("PgUp PgDn", "move a page"),
        ("g G", "first / last connection"),
        ("/", "filter: text, or a selector (room=7, user!=ana)"),
        ("s", "cycle the sort: newest, oldest, id, IP, user agent"),
        ("i", "sort by idle (asked of API Gateway, visible rows)"),
        ("Enter", "inspect: ask API Gateway about the selection"),
        ("m", "send a message to the selected connection"),
        ("b", "broadcast to all, or to the filtered rows"),
        ("d", "disconnect the selected connection"),
        ("D", "disconnect every filtered row"),
        ("p", "prune: list stale records, then delete them"),
        ("r", "refresh now"),
        ("?", "this help"),
        ("IDLE", "- not asked yet, ? the probe failed, gone: closed"),
        ("Esc", "close a dialog, the details, the filter; quit"),
        ("q  Ctrl-C", "quit (asks while a broadcast or prune runs)"),
    ];
    rows.iter()
        .map(|(k, what)| {
            Line::from(vec![
                key(k),
                Span::raw(" ".repeat(12usize.saturating_sub(k.chars().count()))),
                Span::raw(*what),
            ])
        })
        .collect()
}
