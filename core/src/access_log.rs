//! The stage's access log as wsadmin reads it: API Gateway's JSON lines
//! (the `$context` variables of our template's format: `requestId`,
//! `requestTime`, `requestTimeEpoch`, `eventType`, `routeKey`,
//! `connectionId`, `status`, `sourceIp`, `error`,
//! `integrationErrorMessage`, `disconnectStatusCode`), wherever they come
//! from (the local stack's file, CloudWatch Logs: [`crate::logs`]), and a
//! connection's history: its record, GetConnection's answer and its lines,
//! in time order.
//!
//! Pure: no I/O. A line that is not JSON, or names no time, is skipped by
//! the reader, never guessed at. `-` (a variable with no value) reads as
//! absent.

use serde::Serialize;
use serde_json::Value;

use crate::gateway::ConnectionInfo;
use crate::record::ConnectionRecord;

/// One access log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    /// Epoch milliseconds: `requestTimeEpoch`, else `requestTime`, else
    /// when CloudWatch took the line in.
    pub at_ms: i64,
    pub event_type: Option<String>,
    pub route_key: Option<String>,
    pub connection_id: Option<String>,
    pub status: Option<String>,
    pub source_ip: Option<String>,
    pub error: Option<String>,
    pub integration_error_message: Option<String>,
    pub disconnect_status_code: Option<String>,
    pub request_id: Option<String>,
}

impl AccessEntry {
    /// Reads one line; `received_ms` is the log service's own time for it,
    /// used when the line names none.
    pub fn parse(line: &str, received_ms: Option<i64>) -> Option<Self> {
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        let field = |key: &str| -> Option<String> {
            match v.get(key)? {
                Value::String(s) if s != "-" && !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let at_ms = field("requestTimeEpoch")
            .and_then(|t| t.parse::<i64>().ok())
            .or_else(|| field("requestTime").and_then(|t| parse_request_time(&t)))
            .or(received_ms)?;
        Some(Self {
            at_ms,
            event_type: field("eventType"),
            route_key: field("routeKey"),
            connection_id: field("connectionId"),
            status: field("status"),
            source_ip: field("sourceIp"),
            error: field("error"),
            integration_error_message: field("integrationErrorMessage"),
            disconnect_status_code: field("disconnectStatusCode"),
            request_id: field("requestId"),
        })
    }

    /// A field by the name `--where` uses (the line's own key).
    pub fn value(&self, key: &str) -> Option<&str> {
        match key {
            "eventType" => self.event_type.as_deref(),
            "routeKey" => self.route_key.as_deref(),
            "connectionId" => self.connection_id.as_deref(),
            "status" => self.status.as_deref(),
            "sourceIp" => self.source_ip.as_deref(),
            "error" => self.error.as_deref(),
            "integrationErrorMessage" => self.integration_error_message.as_deref(),
            "disconnectStatusCode" => self.disconnect_status_code.as_deref(),
            "requestId" => self.request_id.as_deref(),
            _ => None,
        }
    }

    /// `MESSAGE sendmessage 200`, `DISCONNECT $disconnect 200 close 4001`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} {} {}",
            self.event_type.as_deref().unwrap_or("-"),
            self.route_key.as_deref().unwrap_or("-"),
            self.status.as_deref().unwrap_or("-"),
        );
        if let Some(code) = &self.disconnect_status_code {
            s.push_str(&format!(" close {code}"));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        if let Some(e) = &self.integration_error_message {
            s.push_str(&format!(" (integration: {e})"));
        }
        s
    }
}

/// `requestTime` (`03/Dec/2026:14:51:43 +0000`) as epoch milliseconds.
pub fn parse_request_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once(':')?;
    let mut d = date.split('/');
    let day: i64 = d.next()?.parse().ok()?;
    let month = match d.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = d.next()?.parse().ok()?;
    let (clock, zone) = rest.split_once(' ').unwrap_or((rest, "+0000"));
    let mut c = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (c.next()??, c.next()??, c.next()??);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone = zone.trim_start_matches(['+', '-']);
    let offset = zone
        .get(..2)
        .and_then(|h| h.parse::<i64>().ok())
        .zip(zone.get(2..4).and_then(|m| m.parse::<i64>().ok()))
        .map_or(0, |(h, m)| sign * (h * 3600 + m * 60));
    let days = crate::registry::days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + m * 60 + sec - offset) * 1000)
}

/// One thing known to have happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub at_ms: i64,
    /// `access log`, `record`, `GetConnection`.
    pub source: &'static str,
    pub what: String,
    /// The access log line, for `-o json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<AccessEntry>,
}

/// What is known of one connection, in time order (ties keep the order
/// above: the access log first, as it is what happened).
pub fn history(
    record: Option<&ConnectionRecord>,
    connection: Option<&ConnectionInfo>,
    lines: Vec<AccessEntry>,
) -> Vec<HistoryEvent> {
    let mut events: Vec<HistoryEvent> = lines
        .into_iter()
        .map(|line| HistoryEvent {
            at_ms: line.at_ms,
            source: "access log",
            what: line.summary(),
            line: Some(line),
        })
        .collect();
    let mut add = |at_ms: Option<i64>, source: &'static str, what: &str| {
        if let Some(at_ms) = at_ms {
            events.push(HistoryEvent {
                at_ms,
                source,
                what: what.to_owned(),
                line: None,
            });
        }
    };
    if let Some(r) = record {
        add(r.connected_at, "record", "registered (connectedAt)");
        add(
            r.gone_seen_at,
            "record",
            "a sweep found it gone (410) and marked it (goneSeenAt)",
        );
    }
    if let Some(c) = connection {
        add(c.connected_at, "GetConnection", "connected (connectedAt)");
        add(
            c.last_active_at,
            "GetConnection",
            "last active: a message to or from the client (lastActiveAt)",
        );
    }
    events.sort_by_key(|e| e.at_ms);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_api_gateway_writes_them() {
        let line = r#"{"requestId":"r1","requestTime":"14/Nov/2023:22:13:20 +0000","eventType":"DISCONNECT","routeKey":"$disconnect","connectionId":"abc=","status":"200","sourceIp":"1.2.3.4","error":"-","disconnectStatusCode":"4001"}"#;
        let e = AccessEntry::parse(line, None).expect("a line");
        assert_eq!(e.at_ms, 1_700_000_000_000);
        assert_eq!(e.error, None);
        assert_eq!(e.summary(), "DISCONNECT $disconnect 200 close 4001");
        assert_eq!(e.value("connectionId"), Some("abc="));
        // requestTimeEpoch wins; then the log service's time.
        let epoch = r#"{"requestTimeEpoch":"1700000000123","requestTime":"x"}"#;
        assert_eq!(
            AccessEntry::parse(epoch, None).map(|e| e.at_ms),
            Some(1_700_000_000_123)
        );
        let none = r#"{"eventType":"MESSAGE"}"#;
        assert_eq!(AccessEntry::parse(none, None), None);
        assert_eq!(AccessEntry::parse(none, Some(5)).map(|e| e.at_ms), Some(5));
        assert_eq!(AccessEntry::parse("not json", Some(5)), None);
        assert_eq!(
            parse_request_time("01/Mar/2024:01:00:00 +0100"),
            Some(1_709_251_200_000)
        );
    }

    #[test]
    fn a_history_is_in_time_order() {
        let record = ConnectionRecord::new("abc=").connected_at(1000);
        let line = |at: i64, what: &str| AccessEntry {
            at_ms: at,
            event_type: Some(what.into()),
            route_key: None,
            connection_id: Some("abc=".into()),
            status: Some("200".into()),
            source_ip: None,
            error: None,
            integration_error_message: None,
            disconnect_status_code: None,
            request_id: None,
        };
        let h = history(
            Some(&record),
            None,
            vec![line(3000, "MESSAGE"), line(990, "CONNECT")],
        );
        let order: Vec<&str> = h.iter().map(|e| e.what.as_str()).collect();
        assert_eq!(
            order,
            ["CONNECT - 200", "registered (connectedAt)", "MESSAGE - 200"]
        );
    }
}
