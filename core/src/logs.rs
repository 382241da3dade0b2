//! Where a stage's access log is, and reading it: the local stack's file,
//! or the CloudWatch Logs group the stage's `AccessLogSettings` names
//! (apigatewayv2 GetStage, then FilterLogEvents). Lines come back as
//! [`AccessEntry`]s in time order; `--follow` polls from the last one seen.
//!
//! A missing group, stage or permission is one sentence that says which
//! and what to do ([`LogsError`]). Behind the `logs` feature (the CLI's):
//! nothing else links aws-sdk-cloudwatchlogs.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;

use crate::access_log::AccessEntry;
use crate::sdk_error::{SdkFailure, classify};

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(
        "the local stack has no access log (it was started by an older wsstack: restart `wsstack local`)"
    )]
    NoLocalLog,
    #[error("cannot read the access log {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "stage {stage:?} of API {api_id:?} has no access logging (set its AccessLogSettings, as `wsstack up` does, or pass --log-group)"
    )]
    NotLogged { api_id: String, stage: String },
    #[error(
        "the access log needs the API and its stage: pass --api-id (and --stage), or --log-group NAME"
    )]
    NoApi,
    #[error("stage {stage:?} of API {api_id:?} not found in {region} (check --api-id and --stage)")]
    NoStage {
        api_id: String,
        stage: String,
        region: String,
    },
    #[error(
        "log group {group:?} not found in {region}: the stage logs to a group that does not exist (create it, or check the stage's AccessLogSettings)"
    )]
    NoGroup { group: String, region: String },
    #[error("{call} was refused ({message}): the operator needs {action} (see `wsstack policy`)")]
    Forbidden {
        call: &'static str,
        action: &'static str,
        message: String,
    },
    #[error("{call} failed in {region}: {message}")]
    Failed {
        call: &'static str,
        region: String,
        message: String,
    },
}

/// A stage's access log.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// The local stack's file.
    File(PathBuf),
    /// A CloudWatch Logs group.
    CloudWatch {
        client: aws_sdk_cloudwatchlogs::Client,
        group: String,
        region: String,
    },
}

impl LogSource {
    /// The group `group` in `sdk`'s region (`AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`
    /// applies).
    pub fn group(sdk: &SdkConfig, group: &str) -> Self {
        LogSource::CloudWatch {
            client: aws_sdk_cloudwatchlogs::Client::new(sdk),
            group: group.to_owned(),
            region: region(sdk),
        }
    }

    /// The group the stage's `AccessLogSettings.DestinationArn` names
    /// (GetStage).
    pub async fn for_stage(sdk: &SdkConfig, api_id: &str, stage: &str) -> Result<Self, LogsError> {
        let region = region(sdk);
        let client = aws_sdk_apigatewayv2::Client::new(sdk);
        let got = client
            .get_stage()
            .api_id(api_id)
            .stage_name(stage)
            .send()
            .await
            .map_err(|e| match classify(e) {
                SdkFailure::Service { status: 404, .. } => LogsError::NoStage {
                    api_id: api_id.to_owned(),
                    stage: stage.to_owned(),
                    region: region.clone(),
                },
                other => failure(
                    other,
                    "GetStage",
                    "apigateway:GET on the API's stages",
                    &region,
                ),
            })?;
        let arn = got
            .access_log_settings()
            .and_then(|s| s.destination_arn())
            .ok_or_else(|| LogsError::NotLogged {
                api_id: api_id.to_owned(),
                stage: stage.to_owned(),
            })?;
        Ok(Self::group(sdk, &group_of_arn(arn)))
    }

    /// Lines at or after `since_ms` (and before `until_ms`), of one
    /// connection when `connection_id` is given, in time order.
    pub async fn read(
        &self,
        connection_id: Option<&str>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<AccessEntry>, LogsError> {
        let mut follow = Follow::default();
        let mut lines = self.poll(&mut follow, connection_id, since_ms).await?;
        if let Some(until) = until_ms {
            lines.retain(|l| l.at_ms < until);
        }
        Ok(lines)
    }

    /// The lines that arrived since the last call with this `follow` (the
    /// first call: since `since_ms`).
    pub async fn poll(
        &self,
        follow: &mut Follow,
        connection_id: Option<&str>,
        since_ms: Option<i64>,
    ) -> Result<Vec<AccessEntry>, LogsError> {
        let mut lines = match self {
            LogSource::File(path) => read_file(path, follow)?,
            LogSource::CloudWatch {
                client,
                group,
                region,
            } => filter_events(client, group, region, follow, connection_id, since_ms).await?,
        };
        lines.retain(|l| {
            since_ms.is_none_or(|s| l.at_ms >= s)
                && connection_id.is_none_or(|id| l.connection_id.as_deref() == Some(id))
        });
        lines.sort_by_key(|l| l.at_ms);
        Ok(lines)
    }

    /// Where it is, for messages: the file, or the group.
    pub fn describe(&self) -> String {
        match self {
            LogSource::File(path) => path.display().to_string(),
            LogSource::CloudWatch { group, .. } => format!("log group {group}"),
        }
    }
}

/// How far a reader got: a file's offset, or CloudWatch's last time and
/// the events seen at it.
#[derive(Debug, Default)]
pub struct Follow {
    offset: u64,
    last_ms: Option<i64>,
    seen_at_last: HashSet<String>,
}

/// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME` (maybe with `:*`) → `NAME`.
pub fn group_of_arn(arn: &str) -> String {
    let name = arn.split_once(":log-group:").map_or(arn, |(_, n)| n);
    name.strip_suffix(":*").unwrap_or(name).to_owned()
}

fn region(sdk: &SdkConfig) -> String {
    sdk.region()
        .map_or_else(|| "(no region)".to_owned(), |r| r.to_string())
}

fn read_file(path: &Path, follow: &mut Follow) -> Result<Vec<AccessEntry>, LogsError> {
    let err = |source| LogsError::File {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    // Truncated (a new stack): from the start.
    if len < follow.offset {
        follow.offset = 0;
    }
    file.seek(SeekFrom::Start(follow.offset)).map_err(err)?;
    let mut lines = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(err)?;
        // A line still being written waits for the next poll.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        follow.offset += n as u64;
        if let Some(entry) = AccessEntry::parse(&line, None) {
            lines.push(entry);
        }
    }
    Ok(lines)
}

async fn filter_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    region: &str,
    follow: &mut Follow,
    connection_id: Option<&str>,
    since_ms: Option<i64>,
) -> Result<Vec<AccessEntry>, LogsError> {
    let start = follow.last_ms.or(since_ms);
    let mut token: Option<String> = None;
    let mut lines = Vec::new();
    let mut newest = follow.last_ms;
    let mut seen_at_newest: HashSet<String> = HashSet::new();
    loop {
        let mut req = client
            .filter_log_events()
            .log_group_name(group)
            .set_start_time(start)
            .set_next_token(token.clone());
        // A quoted term: the lines that hold the id (checked exactly after).
        if let Some(id) = connection_id {
            req = req.filter_pattern(format!("\"{id}\""));
        }
        let out = req.send().await.map_err(|e| match classify(e) {
            SdkFailure::Service { code, .. }
                if code.as_deref() == Some("ResourceNotFoundException") =>
            {
                LogsError::NoGroup {
                    group: group.to_owned(),
                    region: region.to_owned(),
                }
            }
            other => failure(
                other,
                "FilterLogEvents",
                "logs:FilterLogEvents on the stage's access log group",
                region,
            ),
        })?;
        for event in out.events() {
            let (Some(message), Some(at)) = (event.message(), event.timestamp()) else {
                continue;
            };
            let id = event.event_id().unwrap_or_default().to_owned();
            if Some(at) == follow.last_ms && follow.seen_at_last.contains(&id) {
                continue;
            }
            match newest {
                Some(n) if at < n => {}
                Some(n) if at == n => {
                    seen_at_newest.insert(id);
                }
                _ => {
                    newest = Some(at);
                    seen_at_newest = HashSet::from([id]);
                }
            }
            if let Some(entry) = AccessEntry::parse(message, Some(at)) {
                lines.push(entry);
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    if newest != follow.last_ms {
        follow.seen_at_last = seen_at_newest;
    } else {
        follow.seen_at_last.extend(seen_at_newest);
    }
    follow.last_ms = newest;
    Ok(lines)
}

fn failure(
    failure: SdkFailure,
    call: &'static str,
    action: &'static str,
    region: &str,
) -> LogsError {
    match failure {
        // CloudWatch Logs says it with a 400 and its code; API Gateway, 403.
        SdkFailure::Service { status, code, message }
            if status == 403
                || matches!(
                    code.as_deref(),
                    Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation")
                ) =>
        {
            LogsError::Forbidden {
                call,
                action,
                message,
            }
        }
        SdkFailure::Service {
            status,
            code,
            message,
        } => LogsError::Failed {
            call,
            region: region.to_owned(),
            message: format!(
                "{message} ({})",
                code.unwrap_or_else(|| format!("HTTP {status}"))
            ),
        },
        SdkFailure::Unreachable(m) | SdkFailure::Timeout(m) | SdkFailure::Other(m) => {
            LogsError::Failed {
                call,
                region: region.to_owned(),
                message: m,
            }
        }
        SdkFailure::NoCredentials => LogsError::Failed {
            call,
            region: region.to_owned(),
            message: "no AWS credentials: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followed_file_gives_each_whole_line_once() {
        let dir = std::env::temp_dir().join(format!("wsadmin-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("access.log");
        let line = |at: i64, id: &str| {
            format!(
                "{{\"requestTimeEpoch\":\"{at}\",\"eventType\":\"MESSAGE\",\"connectionId\":\"{id}\"}}\n"
            )
        };
        std::fs::write(&path, line(1, "a") + &line(2, "b") + "{\"requestTimeEp").expect("write");
        let mut follow = Follow::default();
        let first = read_file(&path, &mut follow).expect("read");
        assert_eq!(first.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [1, 2]);
        // The line being written is read once whole, never twice.
        let mut rest = std::fs::read_to_string(&path).expect("read");
        rest = rest.replace("{\"requestTimeEp", &line(3, "c")) + "not json\n" + &line(4, "d");
        std::fs::write(&path, rest).expect("write");
        let next = read_file(&path, &mut follow).expect("read");
        assert_eq!(next.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [3, 4]);
        assert!(read_file(&path, &mut follow).expect("read").is_empty());
        // A new stack truncated it: from its start.
        std::fs::write(&path, line(5, "e")).expect("write");
        let after = read_file(&path, &mut follow).expect("read");
        assert_eq!(after.iter().map(|e| e.at_ms).collect::<Vec<_>>(), [5]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_group_is_read_from_its_arn() {
        assert_eq!(
            group_of_arn("arn:aws:logs:us-east-1:123456789012:log-group:ws-access"),
            "ws-access"
        );
        assert_eq!(
            group_of_arn("arn:aws:logs:us-east-1:123456789012:log-group:/aws/ws:*"),
            "/aws/ws"
        );
    }
}
