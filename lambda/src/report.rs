//! Lambda's words, as pure functions over values: the request and trace
//! ids, the function's ARN and log stream name, and the lines CloudWatch
//! shows around every invocation (`START`, `END`, `REPORT`, `Task timed
//! out`). It must not read clocks or processes: callers pass the times and
//! sizes in.

use std::time::Duration;

/// A request id as Lambda's (a random UUID, version 4).
pub fn request_id() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
            .collect()
    };
    format!(
        "{}-{}-4{}-{}{}-{}",
        hex(8),
        hex(4),
        hex(3),
        char::from(b"89ab"[fastrand::usize(..4)]),
        hex(3),
        hex(12)
    )
}

/// An X-Ray trace header (`Root=1-EPOCHHEX-24HEX;Parent=16HEX;Sampled=0`)
/// for an invocation starting at `epoch_ms`.
pub fn trace_id(epoch_ms: u64) -> String {
    format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        epoch_ms / 1000,
        fastrand::u128(..) >> 32,
        fastrand::u64(..)
    )
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
pub fn function_arn(region: &str, account_id: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account_id}:function:{function}")
}

/// An instance's log stream, as Lambda names them:
/// `YYYY/MM/DD/[$LATEST]32HEX`, dated `epoch_ms` (UTC).
pub fn log_stream_name(epoch_ms: u64) -> String {
    let secs = i64::try_from(epoch_ms / 1000).unwrap_or(i64::MAX);
    let date = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    format!(
        "{:04}/{:02}/{:02}/[$LATEST]{:032x}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        fastrand::u128(..)
    )
}

pub fn start_line(request_id: &str) -> String {
    format!("START RequestId: {request_id} Version: $LATEST")
}

pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// Lambda's timeout line: `Task timed out after 3.00 seconds`.
pub fn timed_out(timeout_seconds: u32) -> String {
    format!("Task timed out after {timeout_seconds}.00 seconds")
}

/// What one invocation cost, for its `REPORT` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    /// Peak resident memory of the instance's process, in kB (`VmHWM`).
    pub max_memory_kb: Option<u64>,
    /// Only on the invocation that waited for a cold start.
    pub init: Option<Duration>,
}

impl Report<'_> {
    /// `REPORT RequestId: ID\tDuration: 12.34 ms\tBilled Duration: 13 ms\t
    /// Memory Size: 128 MB\tMax Memory Used: 45 MB[\tInit Duration: 1.23 ms]`.
    pub fn line(&self) -> String {
        let ms = self.duration.as_secs_f64() * 1000.0;
        let billed = self.duration.as_nanos().div_ceil(1_000_000).max(1);
        let used = self.max_memory_kb.map_or(0, |kb| kb.div_ceil(1024));
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\t\
             Memory Size: {} MB\tMax Memory Used: {used} MB",
            self.request_id, self.memory_mb
        );
        if let Some(init) = self.init {
            line.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        line
    }
}

/// `VmHWM` (peak resident set, kB) out of a `/proc/PID/status` text.
pub fn peak_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_lambdas() {
        let id = request_id();
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
        assert_ne!(id, request_id());
        let trace = trace_id(1_700_000_000_000);
        assert!(trace.starts_with("Root=1-6553f100-"), "{trace}");
        assert!(trace.ends_with(";Sampled=0"), "{trace}");
        assert_eq!(
            function_arn("eu-west-1", "000000000000", "echo"),
            "arn:aws:lambda:eu-west-1:000000000000:function:echo"
        );
    }

    #[test]
    fn log_streams_are_dated_in_utc() {
        let s = log_stream_name(1_709_164_800_000); // 2024-02-29T00:00:00Z
        assert!(s.starts_with("2024/02/29/[$LATEST]"), "{s}");
        assert_eq!(s.len(), "2024/02/29/[$LATEST]".len() + 32);
        assert!(log_stream_name(0).starts_with("1970/01/01/"));
        assert!(log_stream_name(1_704_067_199_999).starts_with("2023/12/31/"));
    }

    #[test]
    fn the_report_line_rounds_billing_up_and_names_init_only_when_given() {
        let mut r = Report {
            request_id: "id",
            duration: Duration::from_micros(12_340),
            memory_mb: 128,
            max_memory_kb: Some(45 * 1024 + 1),
            init: None,
        };
        assert_eq!(
            r.line(),
            "REPORT RequestId: id\tDuration: 12.34 ms\tBilled Duration: 13 ms\t\
             Memory Size: 128 MB\tMax Memory Used: 46 MB"
        );
        r.init = Some(Duration::from_micros(123_450));
        assert!(
            r.line().ends_with("\tInit Duration: 123.45 ms"),
            "{}",
            r.line()
        );
        assert_eq!(timed_out(3), "Task timed out after 3.00 seconds");
    }

    #[test]
    fn peak_memory_is_read_from_proc_status() {
        let status = "Name:\tnode\nVmPeak:\t  999 kB\nVmHWM:\t   46080 kB\nVmRSS:\t1 kB\n";
        assert_eq!(peak_rss_kb(status), Some(46080));
        assert_eq!(peak_rss_kb("Name:\tx\n"), None);
    }
}
