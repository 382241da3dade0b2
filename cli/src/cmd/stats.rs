//! `wsadmin stats [--by KEY]… [--where SELECTOR]`: how many connections are
//! registered, counted by any meta key, `sourceIp` or user-agent family,
//! and how old they are. One scan; memory grows with the distinct values
//! counted, not with the records.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use futures::{TryStreamExt, future};
use serde::Serialize;
use wsadmin_core::filter::{age, record_value};
use wsadmin_core::record::ATTR_USER_AGENT;
use wsadmin_core::store::ScanOptions;

use crate::deployment::Deployment;
use crate::exit::Status;
use crate::flags::StatsArgs;
use crate::output::{Document, Fit, Output, Style, Table, escape};

/// What a group is called when the key is absent.
const NONE: &str = "(none)";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    registered: u64,
    /// Per `--by` key, its values by count (largest first).
    by: BTreeMap<String, Vec<Group>>,
    /// Connections by age (since `connectedAt`).
    age: Vec<Group>,
}

#[derive(Debug, Serialize)]
struct Group {
    value: String,
    count: u64,
}

pub async fn run(
    dep: &Deployment,
    args: StatsArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let now = dep.target.clock().now_ms();
    let filter = args.filter.filter(None);
    let scan = dep
        .target
        .store
        .plan(&filter, ScanOptions::segments(args.segments))
        .await;
    let records = dep
        .target
        .store
        .scan(scan)
        .try_filter(move |r| future::ready(filter.matches_record(r, now)));
    let mut records = std::pin::pin!(records);
    let mut registered = 0u64;
    let mut by: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); args.by.len()];
    let mut ages = [0u64; AGE_BUCKETS.len() + 1];
    while let Some(r) = records.try_next().await? {
        registered += 1;
        for (key, counts) in args.by.iter().zip(&mut by) {
            let value = match record_value(&r, key) {
                Some(ua) if key == ATTR_USER_AGENT => user_agent_family(ua),
                Some(v) => v,
                None => NONE,
            };
            // Look up before allocating: most values repeat.
            match counts.get_mut(value) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(value.to_owned(), 1);
                }
            }
        }
        ages[age_bucket(r.connected_at.map(|at| age(at, now)))] += 1;
    }
    let stats = Stats {
        registered,
        by: args
            .by
            .iter()
            .cloned()
            .zip(by.into_iter().map(largest_first))
            .collect(),
        age: AGE_BUCKETS
            .iter()
            .map(|(label, _)| *label)
            .chain(["unknown"])
            .zip(ages)
            .map(|(label, count)| Group {
                value: label.to_owned(),
                count,
            })
            .collect(),
    };
    out.document(w, &stats)?;
    Ok(Status::Ok)
}

fn largest_first(counts: BTreeMap<String, u64>) -> Vec<Group> {
    let mut groups: Vec<Group> = counts
        .into_iter()
        .map(|(value, count)| Group { value, count })
        .collect();
    // Stable: equal counts stay in value order.
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

/// The age histogram's buckets: a label and the age it is under.
const AGE_BUCKETS: [(&str, Duration); 6] = [
    ("<1m", Duration::from_secs(60)),
    ("1m-10m", Duration::from_secs(600)),
    ("10m-1h", Duration::from_secs(3_600)),
    ("1h-6h", Duration::from_secs(6 * 3_600)),
    ("6h-24h", Duration::from_secs(24 * 3_600)),
    (">=24h", Duration::MAX),
];

/// The bucket of an age; the last (`unknown`) without one.
fn age_bucket(age: Option<Duration>) -> usize {
    match age {
        None => AGE_BUCKETS.len(),
        Some(age) => AGE_BUCKETS
            .iter()
            .position(|(_, under)| age < *under)
            .unwrap_or(AGE_BUCKETS.len() - 1),
    }
}

/// The family of a user agent: the browser or tool that sent it. Order
/// matters: Chrome's says Safari, Edge's and Opera's say Chrome.
pub fn user_agent_family(ua: &str) -> &'static str {
    const FAMILIES: [(&str, &str); 16] = [
        ("curl/", "curl"),
        ("wget/", "Wget"),
        ("wscat", "wscat"),
        ("postmanruntime", "Postman"),
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("fxios/", "Firefox"),
        ("crios/", "Chrome"),
        ("chrome/", "Chrome"),
        ("safari/", "Safari"),
        ("python", "Python"),
        ("go-http-client", "Go"),
        ("okhttp", "okhttp"),
        ("java/", "Java"),
        ("node", "Node.js"),
    ];
    let lower = ua.to_ascii_lowercase();
    if lower.trim().is_empty() {
        return NONE;
    }
    FAMILIES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map_or("other", |(_, family)| family)
}

impl Document for Stats {
    fn text(&self, out: &Output, w: &mut dyn Write) -> Result<()> {
        writeln!(
            w,
            "{} {}",
            out.paint(Style::Bold, "registered"),
            self.registered
        )?;
        let mut groups = |title: &str, groups: &[Group]| -> Result<()> {
            writeln!(w)?;
            writeln!(w, "{}", out.paint(Style::Bold, title))?;
            let mut t =
                Table::new(vec!["VALUE", "COUNT"]).with_fits(vec![Fit::shrink(16), Fit::KEEP]);
            for g in groups {
                t.row(vec![
                    (escape(&g.value).into_owned(), None),
                    (g.count.to_string(), None),
                ]);
            }
            t.write(out, w)?;
            Ok(())
        };
        for (key, by) in &self.by {
            let title = if key == ATTR_USER_AGENT {
                "by user agent family".to_owned()
            } else {
                format!("by {}", escape(key))
            };
            groups(&title, by)?;
        }
        groups("by age", &self.age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_by_family() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                "Firefox",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                "Chrome",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0",
                "Edge",
            ),
            (
                "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                "Safari",
            ),
            ("curl/8.4.0", "curl"),
            ("python-requests/2.31", "Python"),
            ("Go-http-client/1.1", "Go"),
            ("", "(none)"),
            ("lister-0", "other"),
        ];
        for (ua, family) in cases {
            assert_eq!(user_agent_family(ua), family, "{ua}");
        }
    }

    #[test]
    fn ages_fall_in_buckets() {
        let s = Duration::from_secs;
        assert_eq!(age_bucket(Some(s(0))), 0);
        assert_eq!(age_bucket(Some(s(60))), 1);
        assert_eq!(age_bucket(Some(s(3_599))), 2);
        assert_eq!(age_bucket(Some(s(3 * 86_400))), 5);
        assert_eq!(age_bucket(None), 6);
    }
}
