//! The Metrics section of `wsadmin status`: API Gateway's metrics of the
//! WebSocket API (ConnectCount, MessageCount, the three errors,
//! IntegrationLatency). For the local stack, its `/metrics` (totals since
//! it started, per route, and what only the emulator knows); for a
//! deployment on AWS, CloudWatch's GetMetricData over the last 5 minutes
//! and the last hour. A missing permission, or no data points, is one line.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::api_metrics::{self, Counts, LocalMetrics, Window};

use crate::deployment::Deployment;
use crate::output::{Output, Style, escape};

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// local | cloudwatch | none
    source: &'static str,
    local: Option<LocalMetrics>,
    last_5_minutes: Option<Counts>,
    last_hour: Option<Counts>,
    /// Why there is nothing (more) to show, in one line.
    note: Option<String>,
}

pub async fn read(dep: &Deployment) -> Metrics {
    let endpoint = dep.target.endpoint().url().to_owned();
    if dep.local {
        return match api_metrics::scrape_local(&endpoint).await {
            Ok(local) => Metrics {
                source: "local",
                local: Some(local),
                ..Metrics::default()
            },
            Err(e) => Metrics {
                source: "local",
                note: Some(e.to_string()),
                ..Metrics::default()
            },
        };
    }
    let (Some(api_id), Some(stage)) = (&dep.api_id, stage_of(&endpoint)) else {
        return Metrics {
            source: "none",
            note: Some(
                "no API id to read CloudWatch metrics for (pass --api-id, or an execute-api endpoint)"
                    .into(),
            ),
            ..Metrics::default()
        };
    };
    let now = SystemTime::now();
    let (five, hour) = futures::join!(
        api_metrics::cloudwatch(&dep.sdk, api_id, stage, Window::FIVE_MINUTES, now),
        api_metrics::cloudwatch(&dep.sdk, api_id, stage, Window::ONE_HOUR, now),
    );
    match (five, hour) {
        (Ok(five), Ok(hour)) => Metrics {
            source: "cloudwatch",
            note: hour
                .is_none()
                .then(|| format!("no data points in CloudWatch for API {api_id} stage {stage} in the last hour (no traffic, or metrics not yet published)")),
            last_5_minutes: five,
            last_hour: hour,
            ..Metrics::default()
        },
        (Err(e), _) | (_, Err(e)) => Metrics {
            source: "cloudwatch",
            note: Some(e.to_string()),
            ..Metrics::default()
        },
    }
}

/// The dashboard's sparkline source: the local stack's `/metrics` sampled
/// into minutes, or CloudWatch's per-minute sums; none without an API id.
pub fn metrics_feed(dep: &Deployment) -> Option<wsadmin_tui::MetricsFeed> {
    use std::sync::{Arc, Mutex};
    use wsadmin_core::api_metrics::LocalHistory;
    let endpoint = dep.target.endpoint().url().to_owned();
    if dep.local {
        let history = Arc::new(Mutex::new(LocalHistory::default()));
        return Some(wsadmin_tui::MetricsFeed(Arc::new(move || {
            let (endpoint, history) = (endpoint.clone(), history.clone());
            Box::pin(async move {
                let sample = api_metrics::scrape_local(&endpoint)
                    .await
                    .map_err(|e| e.to_string())?;
                let now_ms = wsadmin_tui::worker::now_ms();
                let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
                history.record(now_ms, &sample);
                Ok(history.per_minute(now_ms))
            })
        })));
    }
    let api_id = dep.api_id.clone()?;
    let stage = stage_of(&endpoint)?.to_owned();
    let sdk = dep.sdk.clone();
    Some(wsadmin_tui::MetricsFeed(Arc::new(move || {
        let (sdk, api_id, stage) = (sdk.clone(), api_id.clone(), stage.clone());
        Box::pin(async move {
            api_metrics::per_minute(&sdk, &api_id, &stage, SystemTime::now())
                .await
                .map_err(|e| e.to_string())
        })
    })))
}

/// The stage of `https://HOST/STAGE`.
fn stage_of(endpoint: &str) -> Option<&str> {
    let path = endpoint.split_once("://")?.1.split_once('/')?.1;
    let stage = path.trim_end_matches('/');
    (!stage.is_empty() && !stage.contains('/')).then_some(stage)
}

fn counts_line(c: &Counts) -> String {
    let latency = c
        .integration_latency_ms
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
    format!(
        "connects {}  messages {}  integration errors {}  client errors {}  execution errors {}  latency {latency}",
        c.connect_count, c.message_count, c.integration_error, c.client_error, c.execution_error
    )
}

pub fn text(out: &Output, w: &mut dyn Write, m: &Metrics) -> Result<()> {
    writeln!(w, "{}", out.paint(Style::Bold, "Metrics"))?;
    if let Some(local) = &m.local {
        writeln!(w, "  since start  {}", escape(&counts_line(&local.total)))?;
        for (route, counts) in &local.routes {
            let route = if route.is_empty() {
                "(posts, unrouted)"
            } else {
                route
            };
            writeln!(
                w,
                "    {:<11}  {}",
                escape(route),
                escape(&counts_line(counts))
            )?;
        }
        writeln!(w, "  open         {} connections", local.connections_open)?;
        let calls: Vec<String> = local
            .management_calls
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        writeln!(
            w,
            "  management   {}  (throttled {})",
            if calls.is_empty() {
                "-".to_owned()
            } else {
                escape(&calls.join(", ")).into_owned()
            },
            local.throttled
        )?;
        for (function, (warm, busy)) in &local.instances {
            writeln!(
                w,
                "  instances    {}: {warm} warm, {busy} busy",
                escape(function)
            )?;
        }
    }
    for (label, counts) in [
        ("last 5 min", &m.last_5_minutes),
        ("last hour", &m.last_hour),
    ] {
        if m.source == "cloudwatch" && m.note.as_deref().is_none_or(|_| counts.is_some()) {
            match counts {
                Some(c) => writeln!(w, "  {label:<11}  {}", escape(&counts_line(c)))?,
                None => writeln!(w, "  {label:<11}  no data points")?,
            }
        }
    }
    if let Some(note) = &m.note {
        writeln!(w, "  {}", out.paint(Style::Yellow, &escape(note)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_is_the_endpoints_path() {
        assert_eq!(
            stage_of("https://abc.execute-api.us-east-1.amazonaws.com/prod"),
            Some("prod")
        );
        assert_eq!(stage_of("http://127.0.0.1:3001/dev/"), Some("dev"));
        assert_eq!(stage_of("https://example.com"), None);
    }
}
