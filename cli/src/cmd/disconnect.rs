//! `wsadmin disconnect ID… | --idle-over DUR | --all --yes`: DeleteConnection,
//! and the record removed (a closed or already gone connection's record can
//! only be stale).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use wsadmin_core::RetryPolicy;
use wsadmin_core::prune::{self, PruneOptions};
use wsadmin_core::store::ScanOptions;

use crate::cmd::{check_ids, is_fatal};
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::{DisconnectArgs, OutputFormat};
use crate::output::{Output, Style, Table, escape, write_json, write_json_pretty};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Disconnected {
    connection_id: String,
    /// disconnected | gone | failed
    result: &'static str,
    record_removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The failure's kind (`unreachable`, `forbidden`, …), when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

pub async fn run(
    dep: &Deployment,
    args: DisconnectArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let target = &dep.target;
    if let Some(idle_over) = args.idle_over {
        let opts = PruneOptions {
            idle_over: Some(idle_over),
            concurrency: args.concurrency as usize,
            ..PruneOptions::default()
        };
        let ids = target.store.scan_ids(ScanOptions::default());
        let report = prune::run(&target.store, &target.gateway, ids, opts, |_| {}).await;
        return crate::cmd::prune::finish(out, w, &report, "disconnect");
    }
    let ids: Vec<String> = if args.all {
        let ids: Vec<String> = target
            .store
            .scan_ids(ScanOptions::default())
            .try_collect()
            .await?;
        if !args.yes {
            confirm(ids.len())?;
        }
        ids
    } else {
        check_ids(&args.ids)?;
        args.ids
    };
    let retry = RetryPolicy::default();
    let results: Vec<Disconnected> = stream::iter(ids)
        .map(|id| async move {
            match prune::disconnect(&target.store, &target.gateway, &id, &retry).await {
                Ok(closed) => Disconnected {
                    connection_id: id,
                    result: if closed.was_live {
                        "disconnected"
                    } else {
                        "gone"
                    },
                    record_removed: closed.record_removed,
                    error: None,
                    kind: None,
                },
                Err(e) => Disconnected {
                    connection_id: id,
                    result: "failed",
                    record_removed: false,
                    error: Some(e.to_string()),
                    kind: Some(e.kind()),
                },
            }
        })
        .buffered(args.concurrency as usize)
        .collect()
        .await;
    let failed: Vec<&Disconnected> = results.iter().filter(|r| r.result == "failed").collect();
    if failed.len() == results.len()
        && let Some(first) = failed.first()
        && failed.iter().all(|f| f.kind.is_some_and(is_fatal))
    {
        bail!("{}", first.error.as_deref().unwrap_or("disconnect failed"));
    }
    match out.format {
        OutputFormat::Json => write_json_pretty(w, &results)?,
        OutputFormat::Ndjson => {
            for r in &results {
                write_json(w, r)?;
            }
        }
        OutputFormat::Ids => {
            for r in results.iter().filter(|r| r.result != "failed") {
                writeln!(w, "{}", escape(&r.connection_id))?;
            }
        }
        OutputFormat::Table => {
            let mut t = Table::new(vec!["ID", "RESULT", "RECORD", "DETAIL"]);
            for r in &results {
                let style = match r.result {
                    "disconnected" => Style::Green,
                    "gone" => Style::Yellow,
                    _ => Style::Red,
                };
                t.row(vec![
                    (r.connection_id.clone(), None),
                    (r.result.to_owned(), Some(style)),
                    (
                        (if r.record_removed { "removed" } else { "-" }).to_owned(),
                        None,
                    ),
                    (r.error.clone().unwrap_or_default(), None),
                ]);
            }
            if t.is_empty() {
                if !out.quiet {
                    let _ = writeln!(std::io::stderr(), "no connections");
                }
            } else {
                t.write(out, w)?;
            }
        }
    }
    w.flush()?;
    Ok(if failed.is_empty() {
        Status::Ok
    } else {
        Status::Partial
    })
}

/// Asks on a terminal; refuses anywhere else.
fn confirm(n: usize) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(usage(
            "refusing to disconnect every connection without --yes (standard input is not a terminal)",
        ));
    }
    eprint!("disconnect all {n} registered connections? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not confirmed: nothing was disconnected");
    }
    Ok(())
}
