//! What the emulator counts, served at `GET /metrics` in the Prometheus
//! text format (0.0.4): API Gateway's CloudWatch metrics for WebSocket
//! APIs (apigateway-websocket-api-logging: `ConnectCount`, `MessageCount`,
//! `IntegrationError`, `ClientError`, `ExecutionError`,
//! `IntegrationLatency`), labelled by API, stage and route (CloudWatch's
//! `ApiId, Stage, Route` dimensions; sum over `route` for `ApiId, Stage`),
//! and what an operator of the emulator needs beside them: connections
//! open, Management API calls by operation and status, throttled calls,
//! Lambda slots and function instances.
//!
//! Counting is a few map updates under one lock per event; rendering reads
//! a snapshot. It must not block on I/O nor hold the lock while writing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// A CloudWatch metric of a WebSocket API that is a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Count {
    /// Requests sent to the `$connect` route's integration.
    Connect,
    /// 4XX/5XX answers of an integration (a `$connect` refusing, a route's
    /// function answering an error status).
    IntegrationError,
    /// 4XX answered by API Gateway before the integration ran (a refused
    /// authorization, a message no route takes).
    ClientError,
    /// The integration could not be called or failed (a function that
    /// threw, timed out or was throttled; an authorizer that failed).
    ExecutionError,
}

impl Count {
    const ALL: [Self; 4] = [
        Self::Connect,
        Self::IntegrationError,
        Self::ClientError,
        Self::ExecutionError,
    ];

    fn family(self) -> (&'static str, &'static str) {
        match self {
            Self::Connect => (
                "apigateway_connect_count_total",
                "ConnectCount: requests sent to the $connect route integration.",
            ),
            Self::IntegrationError => (
                "apigateway_integration_error_total",
                "IntegrationError: requests whose integration answered 4XX/5XX.",
            ),
            Self::ClientError => (
                "apigateway_client_error_total",
                "ClientError: 4XX answered by API Gateway before the integration ran.",
            ),
            Self::ExecutionError => (
                "apigateway_execution_error_total",
                "ExecutionError: errors calling the integration.",
            ),
        }
    }
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// From a client, on the route it selected.
    In,
    /// To a client: a route response, or a Management API post (route "").
    Out,
}

/// IntegrationLatency's histogram buckets, in seconds (up to API Gateway's
/// 29 s integration timeout).
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 29.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at most each bucket's bound (not cumulative here).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Counters {
    counts: BTreeMap<(Count, String), u64>,
    messages: BTreeMap<(String, Direction), u64>,
    latency: BTreeMap<String, Histogram>,
    management: BTreeMap<(&'static str, u16), u64>,
    /// Throttled calls: `management` (the account's `@connections` rate)
    /// or `lambda` (no execution slot for an invocation).
    throttled: BTreeMap<&'static str, u64>,
}

/// The emulator's counters, shared by every connection and request.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

/// What the emulator reads right now, beside the counters.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub connections_open: usize,
    pub slots_busy: usize,
    pub slots_limit: usize,
    pub invocations_running: usize,
    /// Per function: instances alive and idle (warm), and busy.
    pub instances: Vec<(String, usize, usize)>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn count(&self, what: Count, route: &str) {
        self.with(|c| *c.counts.entry((what, route.to_owned())).or_default() += 1);
    }

    pub fn message(&self, route: &str, direction: Direction) {
        self.with(|c| *c.messages.entry((route.to_owned(), direction)).or_default() += 1);
    }

    /// One integration call on `route` that took `took`.
    pub fn latency(&self, route: &str, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|c| {
            let h = c.latency.entry(route.to_owned()).or_default();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                h.buckets[i] += 1;
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    /// One Management API call: `PostToConnection`, `GetConnection` or
    /// `DeleteConnection`, and the status it was answered.
    pub fn management(&self, operation: &'static str, status: u16) {
        self.with(|c| *c.management.entry((operation, status)).or_default() += 1);
    }

    /// One call throttled: `management` or `lambda`.
    pub fn throttled(&self, kind: &'static str) {
        self.with(|c| *c.throttled.entry(kind).or_default() += 1);
    }

    /// The Prometheus text exposition, every series labelled with the API
    /// and stage.
    pub fn render(&self, api_id: &str, stage: &str, gauges: &Gauges) -> String {
        let c = {
            let guard = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            Counters {
                counts: guard.counts.clone(),
                messages: guard.messages.clone(),
                latency: guard.latency.clone(),
                management: guard.management.clone(),
                throttled: guard.throttled.clone(),
            }
        };
        let api = format!("api_id=\"{}\",stage=\"{}\"", escape(api_id), escape(stage));
        let mut out = String::new();
        for what in Count::ALL {
            let (name, help) = what.family();
            header(&mut out, name, help, "counter");
            for ((_, route), n) in c.counts.iter().filter(|((w, _), _)| *w == what) {
                let _ = writeln!(out, "{name}{{{api},route=\"{}\"}} {n}", escape(route));
            }
        }
        let name = "apigateway_message_count_total";
        header(
            &mut out,
            name,
            "MessageCount: messages from clients (direction in, by the route they selected) and to them (out: route responses, and Management API posts with route \"\").",
            "counter",
        );
        for ((route, direction), n) in &c.messages {
            let direction = match direction {
                Direction::In => "in",
                Direction::Out => "out",
            };
            let _ = writeln!(
                out,
                "{name}{{{api},route=\"{}\",direction=\"{direction}\"}} {n}",
                escape(route)
            );
        }
        let name = "apigateway_integration_latency_seconds";
        header(
            &mut out,
            name,
            "IntegrationLatency: from sending the request to the integration to its answer.",
            "histogram",
        );
        for (route, h) in &c.latency {
            let labels = format!("{api},route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        let name = "wsemulator_connections_open";
        header(&mut out, name, "Connections open right now.", "gauge");
        let _ = writeln!(out, "{name}{{{api}}} {}", gauges.connections_open);
        let name = "wsemulator_management_calls_total";
        header(
            &mut out,
            name,
            "Management API (@connections) calls by operation and answered status.",
            "counter",
        );
        for ((operation, status), n) in &c.management {
            let _ = writeln!(
                out,
                "{name}{{{api},operation=\"{operation}\",status=\"{status}\"}} {n}"
            );
        }
        let name = "wsemulator_throttled_total";
        header(
            &mut out,
            name,
            "Calls throttled: management (the account's @connections rate), lambda (no execution slot).",
            "counter",
        );
        for kind in ["management", "lambda"] {
            let n = c.throttled.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{{api},kind=\"{kind}\"}} {n}");
        }
        let name = "wsemulator_lambda_slots_busy";
        header(
            &mut out,
            name,
            "Lambda execution slots in use (of --lambda-concurrency).",
            "gauge",
        );
        let _ = writeln!(out, "{name}{{{api}}} {}", gauges.slots_busy);
        let name = "wsemulator_lambda_slots_limit";
        header(&mut out, name, "Lambda execution slots in all.", "gauge");
        let _ = writeln!(out, "{name}{{{api}}} {}", gauges.slots_limit);
        let name = "wsemulator_invocations_running";
        header(
            &mut out,
            name,
            "Invocations admitted and not yet ended (on the clock or waiting off it).",
            "gauge",
        );
        let _ = writeln!(out, "{name}{{{api}}} {}", gauges.invocations_running);
        let name = "wsemulator_function_instances";
        header(
            &mut out,
            name,
            "Instances of each function on the Lambda host: warm (idle) and busy.",
            "gauge",
        );
        for (function, warm, busy) in &gauges.instances {
            let f = escape(function);
            let _ = writeln!(
                out,
                "{name}{{{api},function=\"{f}\",state=\"warm\"}} {warm}"
            );
            let _ = writeln!(
                out,
                "{name}{{{api},function=\"{f}\",state=\"busy\"}} {busy}"
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format writes one.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.latency("message", Duration::from_millis(3));
        m.latency("message", Duration::from_millis(300));
        m.latency("message", Duration::from_secs(60));
        m.count(Count::Connect, "$connect");
        m.message("say \"hi\"", Direction::In);
        let text = m.render("api", "dev", &Gauges::default());
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} in {text}"))
                .to_owned()
        };
        assert!(line("apigateway_integration_latency_seconds_bucket{api_id=\"api\",stage=\"dev\",route=\"message\",le=\"0.005\"}").ends_with(" 1"));
        assert!(line("apigateway_integration_latency_seconds_bucket{api_id=\"api\",stage=\"dev\",route=\"message\",le=\"0.5\"}").ends_with(" 2"));
        assert!(line("apigateway_integration_latency_seconds_bucket{api_id=\"api\",stage=\"dev\",route=\"message\",le=\"+Inf\"}").ends_with(" 3"));
        assert!(text.contains("route=\"say \\\"hi\\\"\",direction=\"in\"} 1"));
    }
}
