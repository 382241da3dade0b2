//! Sweeps from the command line: the engine built from the flags (one
//! place), each finished target streamed as it happens (`-o ndjson`), and
//! the report written once, earning its exit status: 0 complete, 3 partial
//! (a target not reached, a record not cleaned up, a scan page lost), 130
//! interrupted, 1 when the target itself failed (every failure about the
//! endpoint or table, or the circuit breaker opened). A sweep over a scan
//! that stopped early says how far the scan got and what it never
//! examined, so the report accounts for every selected connection.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use futures::{Stream, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use wsadmin_core::store::{ScanProgress, ScanReport, StoreError};
use wsadmin_core::sweep::Stop;
use wsadmin_core::{ConnectionRecord, Finished, Sweep, SweepConfig, SweepReport};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::SweepArgs;
use crate::interrupt;
use crate::output::{Document, Item, ItemStream, Output, Style, escape};

/// The engine for one command: its concurrency, the sweep flags, AWS's
/// clock as the gateway learns it, and Ctrl-C/SIGTERM.
pub fn engine(dep: &Deployment, concurrency: u32, flags: &SweepArgs) -> Sweep {
    Sweep::new(SweepConfig {
        concurrency: concurrency as usize,
        rate: flags.rate,
        grace: flags.grace,
        ..SweepConfig::default()
    })
    .with_clock(dep.target.clock().clone())
    .with_cancel(interrupt::token())
}

/// A bar with rate and ETA on a terminal (stderr), for a sweep over the
/// whole table (its length a quick count) or a spinner for a filtered one;
/// nothing off a terminal or with `-q`.
pub async fn progress_bar(
    dep: &Deployment,
    out: &Output,
    whole_table: bool,
    verb: &str,
) -> Option<ProgressBar> {
    if !out.stderr_tty || out.quiet {
        return None;
    }
    let total = if whole_table {
        dep.target.store.count(4).await.ok()
    } else {
        None
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        format!("{{bar:30}} {{pos}}/{{len}} {verb} {{per_sec}} eta {{eta}}")
    } else {
        format!("{{spinner}} {{pos}} {verb} {{per_sec}}")
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

/// Moves the bar, if there is one, to the report's count.
pub fn tick(bar: Option<&ProgressBar>, so_far: &SweepReport) {
    if let Some(bar) = bar {
        bar.set_position(so_far.targeted);
    }
}

/// Clears the bar, if there is one, before the report is written.
pub fn finish_bar(bar: Option<ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// One finished target, as `-o ndjson` streams it (`-o ids`: its id, if
/// the command lists targets like it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetLine<'a> {
    connection_id: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip)]
    listed: bool,
}

impl<'a> TargetLine<'a> {
    /// `listed`: whether `-o ids` prints it.
    pub fn new<X>(done: &'a Finished<X>, listed: bool) -> Self {
        let failure = done.outcome.failure();
        Self {
            connection_id: &done.id,
            outcome: done.outcome.label(),
            kind: failure.map(|f| f.0),
            reason: failure.map(|f| f.1),
            listed,
        }
    }
}

impl Item for TargetLine<'_> {
    fn id(&self) -> Option<&str> {
        self.listed.then_some(self.connection_id)
    }
}

/// A sweeping command's own fields in its report (dry run, payload size)
/// and how its summary reads for people.
pub trait Summary: Serialize {
    fn summary(&self, out: &Output, w: &mut dyn Write, report: &SweepReport) -> Result<()>;
}

/// The report with the command's own fields beside it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, S: Serialize> {
    #[serde(flatten)]
    command: S,
    #[serde(flatten)]
    report: &'a SweepReport,
}

impl<S: Summary> Document for Envelope<'_, S> {
    fn text(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        if out.quiet {
            return Ok(());
        }
        self.command.summary(out, w, self.report)
    }

    /// The targets were listed as they finished; stdout holds only ids,
    /// so the summary, a sentence, goes to stderr.
    fn ids(&self, out: &Output, _: &mut dyn Write) -> Result<()> {
        self.text(out, &mut std::io::stderr().lock())
    }
}

/// Writes the report (JSON, the last NDJSON line, or the summary for a
/// table) and says how the command ended.
pub fn finish(
    out: &Output,
    w: &mut dyn Write,
    report: &SweepReport,
    command: impl Summary,
) -> Result<Status> {
    check(report)?;
    out.document(w, &Envelope { command, report })?;
    status(report)
}

/// Before anything is written: a run that reached nothing because of the
/// target itself (the scan failed, or every failure is about the endpoint,
/// credentials or table) is an error, not a report.
pub fn check(report: &SweepReport) -> Result<()> {
    if report.targeted == 0
        && let Some(e) = report.source_errors.first.first()
    {
        bail!("{}", e.reason);
    }
    let reached = report.targeted - report.failed - report.cleanup_failed - report.not_attempted;
    if reached == 0
        && let Some(first) = report.failures.first.first()
        && report.failures.all_about_the_target()
    {
        bail!("{}", first.reason);
    }
    Ok(())
}

/// The scan the targets came from, as far as it got, into the report
/// (asking DynamoDB for its item count only if its scan did not fail).
pub async fn scanned(dep: &Deployment, report: &mut SweepReport, progress: &ScanProgress) {
    report.scan = Some(if report.source_errors.total == 0 {
        dep.target.store.scan_report(progress).await
    } else {
        progress.report()
    });
}

/// After the report is written: the exit status it earns.
pub fn status(report: &SweepReport) -> Result<Status> {
    match &report.stopped {
        Some(Stop::CircuitBreaker(why)) => bail!(
            "stopped early, the endpoint is failing for most requests ({} of {} targets done{}): {why}",
            report.targeted - report.not_attempted,
            report.targeted,
            match report.scan.as_ref().and_then(unexamined) {
                Some(rest) => format!("; the scan stopped early, {rest}"),
                None => String::new(),
            }
        ),
        Some(Stop::Interrupted) => Ok(Status::Interrupted),
        None if report.is_complete() => Ok(Status::Ok),
        None => Ok(Status::Partial),
    }
}

/// The lines every summary ends with: failures by kind with the first
/// reason of each, retries and throttling, scan errors, an interruption.
pub fn summary_tail(out: &Output, w: &mut dyn Write, r: &SweepReport) -> Result<()> {
    if r.failures.total > 0 {
        let failed = format!("{}", r.failures.total);
        writeln!(w, "  failed       {}", out.paint(Style::Red, &failed))?;
        for (kind, n) in &r.failures.by_kind {
            let example = r.failures.first.iter().find(|f| f.kind == *kind);
            match example {
                Some(f) => writeln!(
                    w,
                    "    {kind} x{n}: {} ({})",
                    escape(&f.reason),
                    escape(&f.connection_id)
                )?,
                None => writeln!(w, "    {kind} x{n}")?,
            }
        }
    }
    if r.connecting > 0 {
        writeln!(
            w,
            "  connecting   {} (answered 410 inside the grace: records kept)",
            r.connecting
        )?;
    }
    if r.repeats > 0 {
        writeln!(
            w,
            "  repeats      {} (more items of connections already reached: not sent again{})",
            r.repeats,
            if r.records_removed > 0 {
                "; those of gone connections deleted"
            } else {
                ""
            }
        )?;
    }
    if let Some(scan) = r.scan.as_ref().filter(|s| s.queried) {
        writeln!(
            w,
            "  read         {} (a Query of one partition, not a Scan of the table)",
            plural(scan.pages, "request")
        )?;
    }
    if r.marked > 0 {
        writeln!(
            w,
            "  marked       {} (no connectedAt: deleted by a later run if still gone)",
            r.marked
        )?;
    }
    if r.retries > 0 || r.throttled > 0 || r.backpressure > 0 {
        writeln!(
            w,
            "  retries      {} ({} throttled by the account, {} client back-pressure)",
            r.retries, r.throttled, r.backpressure
        )?;
    }
    if r.source_errors.total > 0 {
        writeln!(
            w,
            "  scan errors  {} (connections behind them were not reached)",
            r.source_errors.total
        )?;
        // One line per distinct reason: segments of one scan fail alike.
        let mut seen: Vec<&str> = Vec::new();
        for e in &r.source_errors.first {
            if !seen.contains(&e.reason.as_str()) {
                seen.push(&e.reason);
                writeln!(w, "    {}", escape(&e.reason))?;
            }
        }
    }
    match &r.stopped {
        Some(Stop::Interrupted) => writeln!(
            w,
            "  interrupted: {} not attempted",
            plural(r.not_attempted, "target")
        )?,
        Some(Stop::CircuitBreaker(_)) => writeln!(
            w,
            "  stopped early: {} not attempted",
            plural(r.not_attempted, "target")
        )?,
        None => {}
    }
    if let Some(scan) = r.scan.as_ref().filter(|s| !s.complete) {
        let rest = unexamined(scan)
            .unwrap_or_else(|| "how many more records the table holds is not known".to_owned());
        writeln!(
            w,
            "  scan stopped early: {} examined, {rest} ({} read, {} of {} segments finished)",
            plural(scan.records_examined, "record"),
            plural(scan.pages, "page"),
            scan.segments_done,
            scan.segments
        )?;
        writeln!(
            w,
            "    matching connections among the records not examined were not reached"
        )?;
    }
    Ok(())
}

/// What an incomplete scan never examined, when it can say: "1,211 more
/// read but never examined", "about 1,211 more never examined".
fn unexamined(scan: &ScanReport) -> Option<String> {
    let n = scan.records_unexamined?;
    Some(if scan.estimated {
        format!("about {n} more never examined")
    } else {
        format!("{n} more read but never examined")
    })
}

/// "1 page", "3 pages".
pub fn plural(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A target a dry run would act on, listed like a sweep's targets.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Planned<'a> {
    connection_id: &'a str,
    /// `would_send`, `would_disconnect`.
    outcome: &'static str,
}

impl Item for Planned<'_> {
    fn id(&self) -> Option<&str> {
        Some(self.connection_id)
    }
}

/// A dry run over records: each one listed as it comes (`  would VERB ID`
/// in a table, its id with `-o ids`, an NDJSON line), and counted. Nothing
/// is sent.
pub async fn list_targets(
    out: &Output,
    w: &mut dyn Write,
    records: impl Stream<Item = Result<ConnectionRecord, StoreError>>,
    outcome: &'static str,
    verb: &str,
) -> Result<u64> {
    let mut targets = ItemStream::new(out, w);
    let mut records = std::pin::pin!(records);
    let mut n = 0u64;
    while let Some(record) = records.try_next().await? {
        n += 1;
        let id = record.connection_id.as_str();
        targets.note(format_args!("  would {verb} {}", escape(id)));
        targets.push(&Planned {
            connection_id: id,
            outcome,
        });
        if targets.failed() {
            break;
        }
    }
    targets.finish()?;
    Ok(n)
}

/// What a dry run found: its JSON is the command's fields and the count;
/// its text one sentence (on stderr with `-o ids`, where stdout holds only
/// the ids).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun<S: Serialize> {
    pub dry_run: bool,
    #[serde(flatten)]
    pub command: S,
    pub targeted: u64,
    #[serde(skip)]
    pub sentence: String,
}

impl<S: Serialize> DryRun<S> {
    pub fn new(command: S, targeted: u64, sentence: String) -> Self {
        Self {
            dry_run: true,
            command,
            targeted,
            sentence,
        }
    }
}

impl<S: Serialize> Document for DryRun<S> {
    fn text(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        if !out.quiet {
            writeln!(w, "{}", self.sentence)?;
        }
        Ok(())
    }

    fn ids(&self, out: &Output, _: &mut dyn Write) -> Result<()> {
        self.text(out, &mut std::io::stderr().lock())
    }
}

/// "1 connection", "3 connections".
pub fn connections(n: u64) -> String {
    format!("{n} connection{}", if n == 1 { "" } else { "s" })
}
