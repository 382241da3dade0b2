//! One connection as the table holds it: only what the table shows and the
//! filter searches, in as few allocations as will do, since the dashboard
//! keeps every registered connection in memory (100,000 of them must fit
//! twice, the shown set and the next refresh, in well under 150 MB).
//!
//! The rest of a record (domain, stage, expiry) is fetched for the details
//! pane when the operator asks.

use wsadmin_core::ConnectionRecord;
use wsadmin_core::filter::quote_value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRow {
    pub id: Box<str>,
    /// Epoch milliseconds.
    pub connected_at: Option<i64>,
    pub source_ip: Option<Box<str>>,
    pub user_agent: Option<Box<str>>,
    /// The `$connect` query parameters, in key order, as the record has
    /// them: the filter selects on these real values, as `--where` does
    /// (a `k=v k=v` string cannot tell `name=Ana Maria` from two pairs).
    pub meta: Box<[(Box<str>, Box<str>)]>,
}

impl ConnectionRow {
    /// A meta key's value.
    pub fn meta_value(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| &**v)
    }

    /// The meta as a selector would name it: `name="Ana Maria" room=7`
    /// (what the operator can type after `/`).
    pub fn meta_text(&self) -> String {
        let pairs: Vec<String> = self
            .meta
            .iter()
            .map(|(k, v)| format!("{k}={}", quote_value(v)))
            .collect();
        pairs.join(" ")
    }
}

impl From<ConnectionRecord> for ConnectionRow {
    fn from(r: ConnectionRecord) -> Self {
        let meta = r
            .meta
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
            .collect();
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
        r.meta.insert("name".into(), "Ana Maria".into());
        let row = ConnectionRow::from(r);
        assert_eq!(&*row.id, "abc=");
        assert_eq!(row.connected_at, Some(1_700_000_000_000));
        assert_eq!(row.source_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(row.user_agent, None);
        assert_eq!(row.meta_text(), r#"name="Ana Maria" room=7 user=ana"#);
        assert_eq!(row.meta_value("name"), Some("Ana Maria"));
        assert_eq!(row.meta_value("Ana"), None);
        assert!(
            ConnectionRow::from(ConnectionRecord::new("a"))
                .meta
                .is_empty()
        );
    }
}
