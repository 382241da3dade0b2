//! `wsadmin send ID… (--data | --file | -)`: PostToConnection to each id, a
//! result per id. Retries like a broadcast; records are left alone.

use std::io::Write;

use anyhow::{Result, bail};
use futures::stream;
use serde::Serialize;
use wsadmin_core::Outcome;
use wsadmin_core::fanout::broadcast;

use crate::cmd::{check_ids, is_fatal};
use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::{OutputFormat, SendArgs};
use crate::output::{Output, Style, Table, escape, write_json, write_json_pretty};
use crate::payload;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendResult {
    connection_id: String,
    /// delivered | gone | connecting | failed
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    kind: &'static str,
}

pub async fn run(
    dep: &Deployment,
    args: SendArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let mut ids = args.ids;
    let stdin = ids.last().is_some_and(|id| id == "-");
    if stdin {
        ids.pop();
    }
    if ids.is_empty() {
        return Err(crate::exit::usage(
            "no connection id given: wsadmin send ID… --data TEXT",
        ));
    }
    check_ids(&ids)?;
    let data = payload::read(&args.payload, stdin)?;
    let sweep = crate::report::engine(dep, 16, &args.sweep);
    let mut results = Vec::new();
    let ids_stream = stream::iter(ids.iter().cloned().map(Ok::<_, String>));
    broadcast(
        &sweep,
        &dep.target.gateway,
        None,
        ids_stream,
        data,
        |done, _| {
            let (result, error, kind) = match &done.outcome {
                Outcome::Delivered => ("delivered", None, ""),
                Outcome::Gone(fate) if !fate.is_gone() => ("connecting", None, "connecting"),
                Outcome::Gone(_) => ("gone", None, "gone"),
                Outcome::NotAttempted => ("not_attempted", Some("interrupted".to_owned()), ""),
                other => {
                    let (kind, reason) = other.failure().unwrap_or(("other", ""));
                    ("failed", Some(reason.to_owned()), kind)
                }
            };
            results.push(SendResult {
                connection_id: done.id.clone(),
                result,
                error,
                kind,
            });
        },
    )
    .await?;
    // Report in the order the ids were given.
    results.sort_by_key(|r| ids.iter().position(|id| id == &r.connection_id));
    let delivered = results.iter().filter(|r| r.result == "delivered").count();
    let failed: Vec<&SendResult> = results.iter().filter(|r| r.result != "delivered").collect();
    if delivered == 0
        && let Some(first) = failed.first()
        && failed.iter().all(|f| f.error.is_some() && is_fatal(f.kind))
    {
        bail!("{}", first.error.as_deref().unwrap_or("send failed"));
    }
    match out.format {
        OutputFormat::Json => write_json_pretty(w, &results)?,
        OutputFormat::Ndjson => {
            for r in &results {
                write_json(w, r)?;
            }
        }
        OutputFormat::Ids => {
            for r in results.iter().filter(|r| r.result == "delivered") {
                writeln!(w, "{}", escape(&r.connection_id))?;
            }
        }
        OutputFormat::Table => {
            let mut t = Table::new(vec!["ID", "RESULT", "DETAIL"]);
            for r in &results {
                let style = match r.result {
                    "delivered" => Style::Green,
                    "gone" => Style::Red,
                    _ => Style::Yellow,
                };
                let detail = match (&r.error, r.result) {
                    (Some(e), _) => e.clone(),
                    (None, "gone") => "410: the connection no longer exists".to_owned(),
                    (None, "connecting") => {
                        "410 while its $connect may still run: try again in a moment".to_owned()
                    }
                    _ => String::new(),
                };
                t.row(vec![
                    (r.connection_id.clone(), None),
                    (r.result.to_owned(), Some(style)),
                    (detail, None),
                ]);
            }
            t.write(out, w)?;
        }
    }
    w.flush()?;
    Ok(if failed.is_empty() {
        Status::Ok
    } else {
        Status::Partial
    })
}
