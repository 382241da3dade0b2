//! One connection as the table holds it: only what the table shows and the
//! filter searches, in as few allocations as will do, since the dashboard
//! keeps every registered connection in memory (100,000 of them must fit
//! twice, the shown set and the next refresh, in well under 150 MB).
//!
//! The rest of a record (domain, stage, expiry) is fetched for the details
//! pane when the operator asks.

use wsadmin_core::ConnectionRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRow {
    pub id: Box<str>,
    /// Epoch milliseconds.
    pub connected_at: Option<i64>,
    pub source_ip: Option<Box<str>>,
    pub user_agent: Option<Box<str>>,
    /// The `$connect` query parameters as `k=v k=v`, in key order.
    pub meta: Option<Box<str>>,
}

impl From<ConnectionRecord> for ConnectionRow {
    fn from(r: ConnectionRecord) -> Self {
        let meta = (!r.meta.is_empty()).then(|| {
            let pairs: Vec<String> = r.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join(" ").into_boxed_str()
        });
        Self {
            id: r.connection_id.into_boxed_str(),
            connected_at: r.connected_at,
            source_ip: r.source_ip.map(String::into_boxed_str),
            user_agent: r.user_agent.map(String::into_boxed_str),
            meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_the_table_shows() {
        let mut r = ConnectionRecord::new("abc=").connected_at(1_700_000_000_000);
        r.source_ip = Some("203.0.113.9".into());
        r.domain_name = Some("x.execute-api.us-east-1.amazonaws.com".into());
        r.meta.insert("user".into(), "ana".into());
        r.meta.insert("room".into(), "7".into());
        let row = ConnectionRow::from(r);
        assert_eq!(&*row.id, "abc=");
        assert_eq!(row.connected_at, Some(1_700_000_000_000));
        assert_eq!(row.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(row.user_agent, None);
        assert_eq!(row.meta.as_deref(), Some("room=7 user=ana"));
        assert_eq!(ConnectionRow::from(ConnectionRecord::new("a")).meta, None);
    }
}
