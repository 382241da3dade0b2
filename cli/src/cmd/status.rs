//! `wsadmin status`: what the deployment looks like and whether wsadmin can
//! operate it: the API (through the API Gateway control plane, when there is
//! one), the table, the Management API, and one verdict line.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::connection::{Probe, probe};
use wsadmin_core::control_plane::ControlPlane;
use wsadmin_core::{RetryPolicy, StoreError, Ttl};

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::output::{Document, Output, Style, escape};

mod metrics;

pub use metrics::metrics_feed;

/// An id no connection has: GetConnection answers 410 when all is well.
const PROBE_ID: &str = "wsadminStatusProbe=";

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    context: Option<String>,
    region: String,
    endpoint: String,
    api: Api,
    table: Table,
    management: Management,
    metrics: metrics::Metrics,
    ok: bool,
    verdict: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Api {
    /// apigatewayv2 | local | unknown
    source: &'static str,
    id: Option<String>,
    name: Option<String>,
    protocol: Option<String>,
    route_selection_expression: Option<String>,
    /// `route key -> integration target`
    routes: Vec<String>,
    stages: Vec<String>,
    note: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Table {
    name: String,
    exists: bool,
    status: Option<String>,
    key_schema: Vec<String>,
    /// DynamoDB's approximate ItemCount (refreshed about every six hours).
    item_count: Option<i64>,
    /// Registered connections: counted now on a table this small, else
    /// the approximate ItemCount.
    registered: Option<Registered>,
    ttl: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    count: i64,
    /// `count` (a Select=COUNT scan, now) or `itemCount` (DynamoDB's
    /// approximate figure, up to about six hours old).
    source: &'static str,
}

/// Up to this many items (by ItemCount), `status` counts them exactly.
const COUNT_EXACTLY_UNDER: i64 = 100_000;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Management {
    reachable: bool,
    detail: String,
}

pub async fn run(dep: &Deployment, out: &Output, w: &mut dyn Write) -> Result<Status> {
    let target = &dep.target;
    let (api, table, management, metrics) =
        futures::join!(api(dep), table(dep), management(dep), metrics::read(dep));
    let mut problems = Vec::new();
    if let Some(e) = &table.error {
        problems.push(e.clone());
    }
    if !management.reachable {
        problems.push(format!("Management API: {}", management.detail));
    }
    if let Some(e) = &api.error {
        problems.push(format!("API: {e}"));
    }
    let ok = problems.is_empty();
    let verdict = if ok {
        format!(
            "ok: table {:?} and the Management API at {} are ready",
            table.name,
            target.endpoint()
        )
    } else {
        format!("problem: {}", problems.join("; "))
    };
    let report = Report {
        context: target.context.clone(),
        region: target.region.clone(),
        endpoint: target.endpoint().to_string(),
        api,
        table,
        management,
        metrics,
        ok,
        verdict,
    };
    out.document(w, &report)?;
    Ok(if ok { Status::Ok } else { Status::Failed })
}

impl Document for Report {
    fn text(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        text(out, w, self)
    }
}

fn text(out: &Output, w: &mut dyn Write, r: &Report) -> Result<()> {
    let dash = |v: &Option<String>| escape(v.as_deref().unwrap_or("-")).into_owned();
    let head = |s: &str| out.paint(Style::Bold, s).into_owned();
    writeln!(w, "{}", head("Target"))?;
    writeln!(w, "  context    {}", dash(&r.context))?;
    writeln!(w, "  region     {}", escape(&r.region))?;
    writeln!(w, "  endpoint   {}", escape(&r.endpoint))?;
    writeln!(w, "{}", head("API"))?;
    let a = &r.api;
    if let Some(note) = &a.note {
        writeln!(w, "  {}", escape(note))?;
    }
    if a.source == "apigatewayv2" {
        writeln!(w, "  id         {}", dash(&a.id))?;
        writeln!(w, "  name       {}", dash(&a.name))?;
        writeln!(w, "  protocol   {}", dash(&a.protocol))?;
        writeln!(w, "  selection  {}", dash(&a.route_selection_expression))?;
        writeln!(w, "  routes     {}", escape(&a.routes.join(", ")))?;
        writeln!(w, "  stages     {}", escape(&a.stages.join(", ")))?;
    }
    if let Some(e) = &a.error {
        writeln!(w, "  {}  {}", out.paint(Style::Red, "error"), escape(e))?;
    }
    writeln!(w, "{}", head("Table"))?;
    let t = &r.table;
    writeln!(w, "  name       {}", escape(&t.name))?;
    if t.exists {
        writeln!(w, "  status     {}", dash(&t.status))?;
        writeln!(w, "  key        {}", escape(&t.key_schema.join(", ")))?;
        let registered = match &t.registered {
            Some(Registered {
                count,
                source: "count",
            }) => format!("{count} (counted now)"),
            Some(Registered { count, .. }) => format!(
                "about {count} (DynamoDB's approximate ItemCount, refreshed about every 6 hours: it may be that old)"
            ),
            None => "-".to_owned(),
        };
        writeln!(w, "  registered {registered}")?;
        writeln!(w, "  ttl        {}", dash(&t.ttl))?;
    }
    if let Some(e) = &t.error {
        writeln!(w, "  {}  {}", out.paint(Style::Red, "error"), escape(e))?;
    }
    writeln!(w, "{}", head("Management API"))?;
    let style = if r.management.reachable {
        Style::Green
    } else {
        Style::Red
    };
    writeln!(w, "  {}", out.paint(style, &escape(&r.management.detail)))?;
    metrics::text(out, w, &r.metrics)?;
    let style = if r.ok { Style::Green } else { Style::Red };
    writeln!(w, "{}", out.paint(style, &escape(&r.verdict)))?;
    Ok(())
}

async fn api(dep: &Deployment) -> Api {
    if dep.local {
        return Api {
            source: "local",
            note: Some(
                "wsstack local: no API Gateway control plane to ask (its routes come from the stack description)"
                    .to_owned(),
            ),
            ..Api::default()
        };
    }
    let Some(id) = dep.api_id.clone() else {
        return Api {
            source: "unknown",
            note: Some(
                "API id unknown (a custom domain?): pass --api-id to see routes and stages"
                    .to_owned(),
            ),
            ..Api::default()
        };
    };
    let plane = ControlPlane::new(&dep.sdk);
    let mut api = Api {
        source: "apigatewayv2",
        id: Some(id.clone()),
        ..Api::default()
    };
    let got = match plane.api(&id).await {
        Ok(got) => got,
        Err(e) => {
            api.error = Some(e.to_string());
            return api;
        }
    };
    api.name = got.name;
    api.protocol = got.protocol;
    api.route_selection_expression = got.route_selection_expression;
    let (routes, stages) = futures::join!(plane.routes(&id), plane.stages(&id));
    match routes {
        Ok(routes) => {
            api.routes = routes
                .into_iter()
                .map(
                    |r| match r.integration_uri.as_deref().map(integration_name) {
                        Some(i) => format!("{} -> {i}", r.key),
                        None => r.key,
                    },
                )
                .collect();
        }
        Err(e) => api.error = Some(e.to_string()),
    }
    match stages {
        Ok(stages) => api.stages = stages,
        Err(e) => api.error = Some(e.to_string()),
    }
    api
}

async fn table(dep: &Deployment) -> Table {
    let store = &dep.target.store;
    let name = store.table().name.clone();
    let mut t = Table {
        name: name.clone(),
        ..Table::default()
    };
    match store.describe().await {
        Ok(desc) => {
            t.exists = true;
            t.status = desc.status.clone();
            t.item_count = desc.item_count;
            t.registered = match desc.item_count {
                Some(n) if n >= COUNT_EXACTLY_UNDER => Some(Registered {
                    count: n,
                    source: "itemCount",
                }),
                approximate => match store.count(4).await {
                    Ok(n) => Some(Registered {
                        count: i64::try_from(n).unwrap_or(i64::MAX),
                        source: "count",
                    }),
                    Err(_) => approximate.map(|count| Registered {
                        count,
                        source: "itemCount",
                    }),
                },
            };
            t.key_schema = desc
                .key_schema
                .iter()
                .map(|(attribute, role)| format!("{attribute} ({role})"))
                .collect();
            let key = store.table().key();
            if store.table().mapping.is_ours() && !desc.has_key(key) {
                t.error = Some(format!(
                    "table {name:?} has no key attribute {key:?} (set --table-key)"
                ));
            }
        }
        Err(StoreError::TableNotFound { .. }) => {
            t.error = Some(format!(
                "table {name:?} not found in {} (deploy the stack with `wsstack up`, or run `wsstack local`; or set --table)",
                dep.target.region
            ));
            return t;
        }
        Err(e) => {
            // Core's message names the call, the table or the endpoint.
            t.error = Some(e.to_string());
            return t;
        }
    }
    t.ttl = Some(match store.describe_ttl().await {
        Ok(Ttl::Described {
            status,
            attribute: Some(attr),
        }) => format!("{status} ({attr})"),
        Ok(Ttl::Described {
            status,
            attribute: None,
        }) => status,
        Ok(Ttl::Unsupported) => {
            "not supported by this DynamoDB (stale records wait for `wsadmin prune`)".to_owned()
        }
        Err(e) => format!("unknown: {e}"),
    });
    t
}

async fn management(dep: &Deployment) -> Management {
    let retry = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    match probe(&dep.target.gateway, PROBE_ID, &retry).await {
        Probe::Gone | Probe::Live(_) => Management {
            reachable: true,
            detail: "reachable: GetConnection answered as expected".to_owned(),
        },
        Probe::Failed(e) => Management {
            reachable: false,
            detail: e.to_string(),
        },
    }
}

/// What a route's integration calls, readably: the Lambda function (with its
/// alias) of a Lambda proxy URI or ARN, otherwise the URI itself.
fn integration_name(uri: &str) -> String {
    match uri.split_once(":function:") {
        Some((_, rest)) => rest.trim_end_matches("/invocations").to_owned(),
        None => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::integration_name;

    #[test]
    fn integrations_read_as_their_function() {
        let proxy = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:ws-message/invocations";
        assert_eq!(integration_name(proxy), "ws-message");
        let alias = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:ws-connect:live/invocations";
        assert_eq!(integration_name(alias), "ws-connect:live");
        assert_eq!(
            integration_name("arn:aws:lambda:us-east-1:1:function:plain"),
            "plain"
        );
        assert_eq!(
            integration_name("https://backend.example.com/ws"),
            "https://backend.example.com/ws"
        );
    }
}
