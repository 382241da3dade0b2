//! `wsadmin send ID… (--data | --file)`: PostToConnection to each id (`-`:
//! the ids on standard input), a result per id. Retries like a broadcast; records are left alone.

use std::io::Write;

use anyhow::{Result, bail};
use futures::stream;
use serde::Serialize;
use wsadmin_core::Outcome;
use wsadmin_core::fanout::broadcast;

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::SendArgs;
use crate::output::{Cell, Fit, Item, Output, Row, Style, plain, styled};
use crate::payload;

/// One id's result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendResult {
    connection_id: String,
    /// delivered | gone | connecting | failed | not_attempted
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Failed because of the target (credentials, endpoint), not this id.
    #[serde(skip)]
    about_the_target: bool,
}

impl SendResult {
    fn new(id: &str, outcome: &Outcome) -> Self {
        let (result, error) = match outcome {
            Outcome::Delivered => ("delivered", None),
            Outcome::Gone(fate) if !fate.is_gone() => ("connecting", None),
            Outcome::Gone(_) => ("gone", None),
            Outcome::NotAttempted => ("not_attempted", Some("interrupted".to_owned())),
            other => (
                "failed",
                Some(other.failure().map_or("", |f| f.1).to_owned()),
            ),
        };
        Self {
            connection_id: id.to_owned(),
            result,
            error,
            about_the_target: outcome.is_about_the_target(),
        }
    }
}

impl Item for SendResult {
    /// The ids delivered to.
    fn id(&self) -> Option<&str> {
        (self.result == "delivered").then_some(self.connection_id.as_str())
    }
}

impl Row for SendResult {
    fn headers(_: &[Self]) -> Vec<&'static str> {
        vec!["ID", "RESULT", "DETAIL"]
    }

    fn fit(header: &str) -> Fit {
        Fit::shrink_only(header, "DETAIL", 20)
    }

    fn cells(&self) -> Vec<Cell> {
        let style = match self.result {
            "delivered" => Style::Green,
            "gone" => Style::Red,
            _ => Style::Yellow,
        };
        let detail = match (&self.error, self.result) {
            (Some(e), _) => e.clone(),
            (None, "gone") => "410: the connection no longer exists".to_owned(),
            (None, "connecting") => {
                "410 while its $connect may still run: try again in a moment".to_owned()
            }
            _ => String::new(),
        };
        vec![
            plain(self.connection_id.clone()),
            styled(self.result, style),
            plain(detail),
        ]
    }
}

pub async fn run(
    dep: &Deployment,
    args: SendArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    if crate::ids::reads_stdin(&args.ids)
        && args.payload.file.as_deref() == Some(std::path::Path::new("-"))
    {
        return Err(crate::exit::usage(
            "standard input cannot hold both the ids (`-`) and the message (--file -): pass the message with --data or --file PATH",
        ));
    }
    let ids = crate::ids::gather(&args.ids, &mut std::io::stdin().lock())?;
    let data = payload::read(&args.payload, false)?;
    let sweep = crate::report::engine(dep, 16, &args.sweep);
    let mut results = Vec::new();
    let ids_stream = stream::iter(ids.iter().cloned().map(Ok::<_, String>));
    broadcast(
        &sweep,
        &dep.target.gateway,
        None,
        ids_stream,
        data,
        |done, _| results.push(SendResult::new(&done.id, &done.outcome)),
    )
    .await?;
    // Report in the order the ids were given.
    results.sort_by_key(|r| ids.iter().position(|id| id == &r.connection_id));
    let delivered = results.iter().filter(|r| r.result == "delivered").count();
    let failed: Vec<&SendResult> = results.iter().filter(|r| r.result != "delivered").collect();
    if delivered == 0
        && let Some(first) = failed.first()
        && failed.iter().all(|f| f.about_the_target)
    {
        bail!("{}", first.error.as_deref().unwrap_or("send failed"));
    }
    out.rows(w, &results)?;
    Ok(if failed.is_empty() {
        Status::Ok
    } else {
        Status::Partial
    })
}
