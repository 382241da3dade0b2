//! API Gateway's CloudWatch metrics of a WebSocket API, the one shape
//! `wsadmin status` and the dashboard show: read from the local stack's
//! `/metrics` (the Prometheus text format the emulator serves), or from
//! CloudWatch's `GetMetricData` (`AWS/ApiGateway`, dimensions `ApiId` and
//! `Stage`; feature `cloudwatch`).
//!
//! The reading of the text format and the sums are pure; only
//! [`cloudwatch`] calls AWS. It must not print: callers say what a
//! missing permission or an empty window means.

use std::collections::BTreeMap;

/// The counts CloudWatch keeps for a WebSocket API, over some window.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub connect_count: f64,
    /// Messages from clients and to them.
    pub message_count: f64,
    pub integration_error: f64,
    pub client_error: f64,
    pub execution_error: f64,
    /// Average IntegrationLatency, in milliseconds (none without calls).
    pub integration_latency_ms: Option<f64>,
}

impl Counts {
    /// Integration, client and execution errors together.
    pub fn errors(&self) -> f64 {
        self.integration_error + self.client_error + self.execution_error
    }
}

/// What the local stack's `/metrics` says: totals since it started, per
/// route, and what only the emulator knows.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalMetrics {
    pub total: Counts,
    /// JSON: `[{"route": "$connect", "connectCount": …}]` (keys stay
    /// camelCase; a route is a value).
    #[serde(serialize_with = "json::routes")]
    pub routes: BTreeMap<String, Counts>,
    pub connections_open: f64,
    /// `operation status` → calls. JSON: `[{"operation", "status", "calls"}]`.
    #[serde(serialize_with = "json::calls")]
    pub management_calls: BTreeMap<String, f64>,
    pub throttled: f64,
    /// Per function: (warm, busy) instances. JSON: `[{"function", "warm",
    /// "busy"}]`.
    #[serde(serialize_with = "json::instances")]
    pub instances: BTreeMap<String, (f64, f64)>,
}

/// The maps keyed by values (routes, operations, functions) as lists of
/// objects in JSON, so every JSON key of ours is camelCase.
mod json {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde::ser::{SerializeSeq, Serializer};

    use super::Counts;

    pub fn routes<S: Serializer>(m: &BTreeMap<String, Counts>, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Route<'a> {
            route: &'a str,
            #[serde(flatten)]
            counts: &'a Counts,
        }
        let mut seq = s.serialize_seq(Some(m.len()))?;
        for (route, counts) in m {
            seq.serialize_element(&Route { route, counts })?;
        }
        seq.end()
    }

    pub fn calls<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            operation: &'a str,
            status: &'a str,
            calls: f64,
        }
        let mut seq = s.serialize_seq(Some(m.len()))?;
        for (key, calls) in m {
            let (operation, status) = key.split_once(' ').unwrap_or((key, ""));
            seq.serialize_element(&Call {
                operation,
                status,
                calls: *calls,
            })?;
        }
        seq.end()
    }

    pub fn instances<S: Serializer>(
        m: &BTreeMap<String, (f64, f64)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Instances<'a> {
            function: &'a str,
            warm: f64,
            busy: f64,
        }
        let mut seq = s.serialize_seq(Some(m.len()))?;
        for (function, (warm, busy)) in m {
            seq.serialize_element(&Instances {
                function,
                warm: *warm,
                busy: *busy,
            })?;
        }
        seq.end()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line} of the metrics is not in the Prometheus text format: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub text: String,
}

/// One sample of the text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a Prometheus text exposition (comments skipped).
pub fn parse_text(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || ParseError {
            line: i + 1,
            text: raw.chars().take(120).collect(),
        };
        let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let end = loop {
                let (at, c) = chars.next().ok_or_else(bad)?;
                match c {
                    '}' => break at,
                    ',' | ' ' => {}
                    '=' => {
                        if chars.next().map(|(_, c)| c) != Some('"') {
                            return Err(bad());
                        }
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c) => value.push(c),
                                    None => return Err(bad()),
                                },
                                Some('"') => break,
                                Some(c) => value.push(c),
                                None => return Err(bad()),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &body[end + 1..];
        }
        let value = rest.split_whitespace().next().ok_or_else(bad)?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad())?,
        };
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

impl LocalMetrics {
    /// Reads the emulator's `/metrics` text.
    pub fn from_text(text: &str) -> Result<Self, ParseError> {
        let mut m = Self::default();
        let mut latency: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (name, labels, value) in parse_text(text)? {
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let route = label("route");
            let field: Option<fn(&mut Counts) -> &mut f64> = match name.as_str() {
                "apigateway_connect_count_total" => Some(|c| &mut c.connect_count),
                "apigateway_message_count_total" => Some(|c| &mut c.message_count),
                "apigateway_integration_error_total" => Some(|c| &mut c.integration_error),
                "apigateway_client_error_total" => Some(|c| &mut c.client_error),
                "apigateway_execution_error_total" => Some(|c| &mut c.execution_error),
                _ => None,
            };
            if let Some(field) = field {
                *field(&mut m.total) += value;
                *field(m.routes.entry(route).or_default()) += value;
                continue;
            }
            match name.as_str() {
                "apigateway_integration_latency_seconds_sum" => {
                    latency.entry(route).or_default().0 += value;
                }
                "apigateway_integration_latency_seconds_count" => {
                    latency.entry(route).or_default().1 += value;
                }
                "wsemulator_connections_open" => m.connections_open += value,
                "wsemulator_management_calls_total" => {
                    let key = format!("{} {}", label("operation"), label("status"));
                    *m.management_calls.entry(key).or_default() += value;
                }
                "wsemulator_throttled_total" => m.throttled += value,
                "wsemulator_function_instances" => {
                    let entry = m.instances.entry(label("function")).or_default();
                    match label("state").as_str() {
                        "warm" => entry.0 += value,
                        "busy" => entry.1 += value,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let average = |(sum, count): (f64, f64)| (count > 0.0).then(|| sum / count * 1000.0);
        let (sum, count) = latency
            .values()
            .fold((0.0, 0.0), |(s, c), (s2, c2)| (s + s2, c + c2));
        m.total.integration_latency_ms = average((sum, count));
        for (route, pair) in latency {
            m.routes.entry(route).or_default().integration_latency_ms = average(pair);
        }
        Ok(m)
    }
}

/// The dashboard's sparkline: connects, messages and errors per minute
/// over the last [`MINUTES`], oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerMinute {
    pub connects: Vec<f64>,
    pub messages: Vec<f64>,
    pub errors: Vec<f64>,
}

/// How many minutes the sparkline shows.
pub const MINUTES: usize = 15;

/// Per-minute counts from the local stack's cumulative counters, sampled
/// now and then: a minute's count is its last sample less the last sample
/// before it (0 where a minute has none).
#[derive(Debug, Clone, Default)]
pub struct LocalHistory {
    /// (minute since the epoch, [connects, messages, errors]), one per
    /// minute, the last sample of it, at most `MINUTES + 1`.
    samples: std::collections::VecDeque<(i64, [f64; 3])>,
}

impl LocalHistory {
    pub fn record(&mut self, now_ms: i64, m: &LocalMetrics) {
        let minute = now_ms.div_euclid(60_000);
        let totals = [
            m.total.connect_count,
            m.total.message_count,
            m.total.errors(),
        ];
        if self.samples.back().is_some_and(|(at, _)| *at == minute) {
            self.samples.pop_back();
        }
        self.samples.push_back((minute, totals));
        while self.samples.len() > MINUTES + 1 {
            self.samples.pop_front();
        }
    }

    pub fn per_minute(&self, now_ms: i64) -> PerMinute {
        let now = now_ms.div_euclid(60_000);
        let mut rows = [vec![0.0; MINUTES], vec![0.0; MINUTES], vec![0.0; MINUTES]];
        for pair in self.samples.iter().collect::<Vec<_>>().windows(2) {
            let ((_, before), (at, after)) = (pair[0], pair[1]);
            let Ok(back) = usize::try_from(now - at) else {
                continue;
            };
            if back < MINUTES {
                for (row, (a, b)) in rows.iter_mut().zip(after.iter().zip(before)) {
                    // A restarted stack starts its counters again.
                    row[MINUTES - 1 - back] = (a - b).max(0.0);
                }
            }
        }
        let [connects, messages, errors] = rows;
        PerMinute {
            connects,
            messages,
            errors,
        }
    }
}

/// Why the local stack's `/metrics` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0} is not a plain http:// endpoint of the local stack")]
    NotLocal(String),
    #[error("cannot read {url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("{url}: {error}")]
    Parse { url: String, error: ParseError },
}

/// `http://HOST:PORT/metrics` of the local stack whose Management API is
/// `endpoint` (`http://HOST:PORT/STAGE`).
pub fn local_metrics_url(endpoint: &str) -> Result<String, ScrapeError> {
    let authority = endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ScrapeError::NotLocal(endpoint.to_owned()))?;
    Ok(format!("http://{authority}/metrics"))
}

/// Reads the local stack's `/metrics` (one HTTP/1.1 GET, 5 s at most).
pub async fn scrape_local(endpoint: &str) -> Result<LocalMetrics, ScrapeError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = local_metrics_url(endpoint)?;
    let authority = &url["http://".len()..url.len() - "/metrics".len()];
    let failed = |reason: String| ScrapeError::Failed {
        url: url.clone(),
        reason,
    };
    let exchange = async {
        let mut socket = tokio::net::TcpStream::connect(authority).await?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {authority}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| failed("no answer within 5 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| failed("not an HTTP answer".into()))?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(failed(format!(
            "HTTP {status} (a wsstack local older than /metrics?)"
        )));
    }
    LocalMetrics::from_text(body).map_err(|error| ScrapeError::Parse {
        url: url.clone(),
        error,
    })
}

#[cfg(feature = "cloudwatch")]
pub use self::cloudwatch::{CloudWatchError, Window, cloudwatch, per_minute};

#[cfg(feature = "cloudwatch")]
mod cloudwatch {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

    use super::Counts;
    use crate::sdk_error::{SdkFailure, classify};

    /// CloudWatch's namespace for API Gateway.
    const NAMESPACE: &str = "AWS/ApiGateway";

    /// The metrics read, with the statistic each is summed by, and the
    /// query id CloudWatch echoes back.
    const METRICS: [(&str, &str, &str); 6] = [
        ("connect", "ConnectCount", "Sum"),
        ("message", "MessageCount", "Sum"),
        ("integration", "IntegrationError", "Sum"),
        ("client", "ClientError", "Sum"),
        ("execution", "ExecutionError", "Sum"),
        ("latency", "IntegrationLatency", "Average"),
    ];

    /// A window ending now.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Window {
        pub length: Duration,
        /// The period of each data point.
        pub period: Duration,
    }

    impl Window {
        pub const FIVE_MINUTES: Self = Self {
            length: Duration::from_secs(300),
            period: Duration::from_secs(300),
        };
        pub const ONE_HOUR: Self = Self {
            length: Duration::from_secs(3600),
            period: Duration::from_secs(3600),
        };
        /// The dashboard's sparkline: 15 points of a minute.
        pub const LAST_15_MINUTES: Self = Self {
            length: Duration::from_secs(900),
            period: Duration::from_secs(60),
        };
    }

    #[derive(Debug, thiserror::Error)]
    pub enum CloudWatchError {
        #[error(
            "no permission to read CloudWatch metrics: {0} (grant cloudwatch:GetMetricData; `wsstack policy` prints the operator policy)"
        )]
        AccessDenied(String),
        #[error("cannot read CloudWatch metrics: {0}")]
        Failed(String),
    }

    /// `ApiId` and `Stage` of the API over `window`: the sums of its data
    /// points, or `None` when CloudWatch has none (no traffic, or metrics
    /// not yet published).
    pub async fn cloudwatch(
        sdk: &aws_config::SdkConfig,
        api_id: &str,
        stage: &str,
        window: Window,
        now: SystemTime,
    ) -> Result<Option<Counts>, CloudWatchError> {
        let points = query(sdk, api_id, stage, window, now).await?;
        if points.iter().all(|(_, values)| values.is_empty()) {
            return Ok(None);
        }
        let mut counts = Counts::default();
        let mut latency = Vec::new();
        for (id, values) in points {
            let sum: f64 = values.iter().sum();
            match id.as_str() {
                "connect" => counts.connect_count = sum,
                "message" => counts.message_count = sum,
                "integration" => counts.integration_error = sum,
                "client" => counts.client_error = sum,
                "execution" => counts.execution_error = sum,
                "latency" => latency = values,
                _ => {}
            }
        }
        if !latency.is_empty() {
            counts.integration_latency_ms =
                Some(latency.iter().sum::<f64>() / latency.len() as f64);
        }
        Ok(Some(counts))
    }

    /// Connects, messages and errors per minute over the last 15 minutes,
    /// oldest first (a minute without data points is 0).
    pub async fn per_minute(
        sdk: &aws_config::SdkConfig,
        api_id: &str,
        stage: &str,
        now: SystemTime,
    ) -> Result<super::PerMinute, CloudWatchError> {
        let window = Window::LAST_15_MINUTES;
        let end = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60 * 60 + 60;
        let start = end - window.length.as_secs();
        let mut series = [vec![0.0; 15], vec![0.0; 15], vec![0.0; 15]];
        let client = aws_sdk_cloudwatch::Client::new(sdk);
        let answer = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries(api_id, stage, window)))
            .start_time(DateTime::from_secs(start as i64))
            .end_time(DateTime::from_secs(end as i64))
            .send()
            .await
            .map_err(|e| failure(classify(e)))?;
        for result in answer.metric_data_results() {
            let row = match result.id() {
                Some("connect") => 0,
                Some("message") => 1,
                Some("integration" | "client" | "execution") => 2,
                _ => continue,
            };
            for (at, value) in result.timestamps().iter().zip(result.values()) {
                let minute = (at.secs() - start as i64).div_euclid(60);
                if let Ok(i) = usize::try_from(minute)
                    && i < 15
                {
                    series[row][i] += value;
                }
            }
        }
        let [connects, messages, errors] = series;
        Ok(super::PerMinute {
            connects,
            messages,
            errors,
        })
    }

    fn queries(api_id: &str, stage: &str, window: Window) -> Vec<MetricDataQuery> {
        let dimensions = vec![
            Dimension::builder().name("ApiId").value(api_id).build(),
            Dimension::builder().name("Stage").value(stage).build(),
        ];
        METRICS
            .iter()
            .map(|(id, name, stat)| {
                let metric = Metric::builder()
                    .namespace(NAMESPACE)
                    .metric_name(*name)
                    .set_dimensions(Some(dimensions.clone()))
                    .build();
                MetricDataQuery::builder()
                    .id(*id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(i32::try_from(window.period.as_secs()).unwrap_or(60))
                            .stat(*stat)
                            .build(),
                    )
                    .build()
            })
            .collect()
    }

    async fn query(
        sdk: &aws_config::SdkConfig,
        api_id: &str,
        stage: &str,
        window: Window,
        now: SystemTime,
    ) -> Result<Vec<(String, Vec<f64>)>, CloudWatchError> {
        let end = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let start = end.saturating_sub(window.length);
        let client = aws_sdk_cloudwatch::Client::new(sdk);
        let answer = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries(api_id, stage, window)))
            .start_time(DateTime::from_secs(start.as_secs() as i64))
            .end_time(DateTime::from_secs(end.as_secs() as i64 + 1))
            .send()
            .await
            .map_err(|e| failure(classify(e)))?;
        Ok(answer
            .metric_data_results()
            .iter()
            .map(|r| (r.id().unwrap_or_default().to_owned(), r.values().to_vec()))
            .collect())
    }

    fn failure(f: SdkFailure) -> CloudWatchError {
        match f {
            SdkFailure::Service {
                status,
                code,
                message,
                ..
            } if status == 403
                || code
                    .as_deref()
                    .is_some_and(|c| c.contains("AccessDenied") || c.contains("NotAuthorized")) =>
            {
                CloudWatchError::AccessDenied(message)
            }
            SdkFailure::Service { code, message, .. } => CloudWatchError::Failed(match code {
                Some(code) => format!("{code}: {message}"),
                None => message,
            }),
            SdkFailure::NoCredentials => CloudWatchError::Failed("no AWS credentials".into()),
            SdkFailure::Unreachable(e) | SdkFailure::Timeout(e) | SdkFailure::Other(e) => {
                CloudWatchError::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulators_text_sums_by_route_and_in_all() {
        let text = "\
# TYPE apigateway_connect_count_total counter
apigateway_connect_count_total{api_id=\"a\",stage=\"dev\",route=\"$connect\"} 3
apigateway_message_count_total{api_id=\"a\",stage=\"dev\",route=\"$default\",direction=\"in\"} 4
apigateway_message_count_total{api_id=\"a\",stage=\"dev\",route=\"$default\",direction=\"out\"} 4
apigateway_client_error_total{api_id=\"a\",stage=\"dev\",route=\"$connect\"} 2
apigateway_integration_latency_seconds_sum{api_id=\"a\",stage=\"dev\",route=\"$default\"} 0.2
apigateway_integration_latency_seconds_count{api_id=\"a\",stage=\"dev\",route=\"$default\"} 4
wsemulator_connections_open{api_id=\"a\",stage=\"dev\"} 3
wsemulator_management_calls_total{api_id=\"a\",stage=\"dev\",operation=\"PostToConnection\",status=\"200\"} 2
wsemulator_function_instances{api_id=\"a\",stage=\"dev\",function=\"f\",state=\"warm\"} 1
";
        let m = LocalMetrics::from_text(text).unwrap();
        assert_eq!(m.total.connect_count, 3.0);
        assert_eq!(m.total.message_count, 8.0);
        assert_eq!(m.total.errors(), 2.0);
        assert_eq!(m.routes["$default"].integration_latency_ms, Some(50.0));
        assert_eq!(m.connections_open, 3.0);
        assert_eq!(m.management_calls["PostToConnection 200"], 2.0);
        assert_eq!(m.instances["f"], (1.0, 0.0));
    }

    #[test]
    fn history_counts_each_minute_from_cumulative_samples() {
        let at = |connects: f64| LocalMetrics {
            total: Counts {
                connect_count: connects,
                message_count: connects * 2.0,
                ..Counts::default()
            },
            ..LocalMetrics::default()
        };
        let mut h = LocalHistory::default();
        let minute = 60_000;
        h.record(10 * minute, &at(1.0));
        h.record(11 * minute + 5_000, &at(4.0));
        h.record(11 * minute + 50_000, &at(6.0));
        h.record(13 * minute, &at(7.0));
        let p = h.per_minute(13 * minute + 1);
        assert_eq!(p.connects.len(), MINUTES);
        assert_eq!(&p.connects[MINUTES - 3..], [5.0, 0.0, 1.0]);
        assert_eq!(&p.messages[MINUTES - 3..], [10.0, 0.0, 2.0]);
        assert!(p.connects[..MINUTES - 3].iter().all(|c| *c == 0.0));
    }

    #[test]
    fn the_metrics_url_is_the_endpoints_host() {
        assert_eq!(
            local_metrics_url("http://127.0.0.1:3001/dev").unwrap(),
            "http://127.0.0.1:3001/metrics"
        );
        assert!(local_metrics_url("https://abc.execute-api.us-east-1.amazonaws.com/dev").is_err());
    }

    #[test]
    fn text_that_is_not_the_format_names_its_line() {
        let e = LocalMetrics::from_text("# ok\nx{a=\"1\" 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(LocalMetrics::from_text("x notanumber").is_err());
    }
}
