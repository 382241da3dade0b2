//! The stack on CloudFormation: describe it, make a change set and read it
//! as a [`Plan`], execute it and follow the stack's events until it
//! settles, delete it, detect drift. Every call goes through
//! [`Aws::call`]. What to do with a stack (ask, refuse, save a context) is
//! the commands' business (`up`, `down`, `status`).
//!
//! Platform facts it encodes:
//! - a change set that changes nothing ends FAILED, its reason saying it
//!   "didn't contain changes" (or "No updates are to be performed"): that
//!   is no change, not a failure;
//! - a CREATE change set makes the stack at once, in REVIEW_IN_PROGRESS; a
//!   change set discarded before execution leaves it behind, so it is
//!   deleted with the change set;
//! - stack events come newest first; a stack's status ends in
//!   `_IN_PROGRESS` while it moves.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{
    Capability, ChangeAction, ChangeSetStatus, ChangeSetType, Parameter,
    Replacement as CfnReplacement, StackDriftDetectionStatus, Tag,
};

use crate::aws::{Aws, AwsError};
use crate::error::DeployError;
use crate::plan::{Action, Change, Plan, Replacement};
use crate::progress::{Progress, StackEvent};

/// The tag every stack `wsstack up` makes carries; `down` refuses a stack
/// without it.
pub const MANAGED_TAG: &str = "wsstack:managed";
pub const MANAGED_VALUE: &str = "true";

/// How often a moving stack or change set is looked at.
const POLL: Duration = Duration::from_secs(2);
/// A change set is ready in seconds; give up after this.
const CHANGE_SET_TIMEOUT: Duration = Duration::from_secs(600);
/// Longer than CloudFormation needs for this stack by far.
const STACK_TIMEOUT: Duration = Duration::from_secs(3600);
const DRIFT_TIMEOUT: Duration = Duration::from_secs(300);

/// A stack as DescribeStacks tells it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StackState {
    pub id: String,
    pub name: String,
    pub status: String,
    pub reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl StackState {
    pub fn is_managed(&self) -> bool {
        self.tags.get(MANAGED_TAG).map(String::as_str) == Some(MANAGED_VALUE)
    }

    /// Made by a CREATE change set never executed: no resources yet.
    pub fn is_review(&self) -> bool {
        self.status == "REVIEW_IN_PROGRESS"
    }

    /// Moving: another operation runs on it.
    pub fn is_busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && !self.is_review()
    }
}

/// Whether `name` is a valid stack name (and so a valid context name).
pub fn check_name(name: &str) -> Result<(), DeployError> {
    let ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(DeployError::InvalidName(name.to_owned()));
    }
    if name == wsadmin_core::context::LOCAL {
        return Err(DeployError::ReservedName);
    }
    Ok(())
}

fn stack_target(name: &str) -> String {
    format!("stack \"{name}\"")
}

/// The stack named (or with the id) `name`; `None` when there is none or
/// it is deleted.
pub async fn describe(aws: &Aws, name: &str) -> Result<Option<StackState>, AwsError> {
    let out = match aws
        .call("cloudformation:DescribeStacks", &stack_target(name), || {
            aws.cloudformation.describe_stacks().stack_name(name).send()
        })
        .await
    {
        Ok(out) => out,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(out
        .stacks()
        .first()
        .map(read_stack)
        .filter(|s| s.status != "DELETE_COMPLETE"))
}

fn read_stack(s: &aws_sdk_cloudformation::types::Stack) -> StackState {
    StackState {
        id: s.stack_id().unwrap_or_default().to_owned(),
        name: s.stack_name().unwrap_or_default().to_owned(),
        status: s
            .stack_status()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default(),
        reason: s.stack_status_reason().map(str::to_owned),
        outputs: s
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
    }
}

/// Every stack wsstack made in the region (for `status` without a name).
pub async fn managed_stacks(aws: &Aws) -> Result<Vec<StackState>, AwsError> {
    let mut stacks = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .call(
                "cloudformation:DescribeStacks",
                "the region's stacks",
                || {
                    aws.cloudformation
                        .describe_stacks()
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await?;
        stacks.extend(
            out.stacks()
                .iter()
                .map(read_stack)
                .filter(|s| s.is_managed() && s.status != "DELETE_COMPLETE"),
        );
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(stacks),
        }
    }
}

/// The physical id of each logical resource (the table's name, the API's id).
pub async fn physical_ids(aws: &Aws, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let out = aws
        .call(
            "cloudformation:DescribeStackResources",
            &stack_target(name),
            || {
                aws.cloudformation
                    .describe_stack_resources()
                    .stack_name(name)
                    .send()
            },
        )
        .await?;
    Ok(out
        .stack_resources()
        .iter()
        .filter_map(|r| {
            let logical = r.logical_resource_id()?;
            let physical = r.physical_resource_id().filter(|p| !p.is_empty())?;
            Some((logical.to_owned(), physical.to_owned()))
        })
        .collect())
}

/// A change set waiting for a decision.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub id: String,
    pub stack: String,
    /// A CREATE change set: its stack exists only for it.
    pub creates: bool,
    pub plan: Plan,
}

/// What creating a change set came to.
#[derive(Debug)]
pub enum Prepared {
    Ready(ChangeSet),
    /// Nothing to change; the change set (and a stack made only for it)
    /// is already deleted.
    NoChanges,
}

/// Creates a change set of `template` with `parameters` for stack `name`
/// (CREATE when `creates`), waits until CloudFormation has computed it and
/// reads its plan. A change set without changes is deleted.
pub async fn create_change_set(
    aws: &Aws,
    name: &str,
    creates: bool,
    template: &str,
    parameters: &[(String, String)],
) -> Result<Prepared, DeployError> {
    let target = stack_target(name);
    let change_set_name = format!(
        "wsstack-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let params: Vec<Parameter> = parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect();
    let tag = Tag::builder().key(MANAGED_TAG).value(MANAGED_VALUE).build();
    let kind = if creates {
        ChangeSetType::Create
    } else {
        ChangeSetType::Update
    };
    let out = aws
        .call("cloudformation:CreateChangeSet", &target, || {
            aws.cloudformation
                .create_change_set()
                .stack_name(name)
                .change_set_name(&change_set_name)
                .change_set_type(kind.clone())
                .template_body(template)
                .set_parameters(Some(params.clone()))
                .capabilities(Capability::CapabilityIam)
                .tags(tag.clone())
                .description("wsstack up")
                .send()
        })
        .await?;
    let id = out.id().unwrap_or(&change_set_name).to_owned();
    let started = Instant::now();
    loop {
        let mut changes = Vec::new();
        let mut token: Option<String> = None;
        let (status, reason) = loop {
            let page = aws
                .call("cloudformation:DescribeChangeSet", &target, || {
                    aws.cloudformation
                        .describe_change_set()
                        .stack_name(name)
                        .change_set_name(&id)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            changes.extend(page.changes().iter().filter_map(read_change));
            let status = page.status().cloned();
            let reason = page.status_reason().map(str::to_owned);
            match page.next_token() {
                Some(t) if status == Some(ChangeSetStatus::CreateComplete) => {
                    token = Some(t.to_owned())
                }
                _ => break (status, reason),
            }
        };
        let change_set = ChangeSet {
            id: id.clone(),
            stack: name.to_owned(),
            creates,
            plan: Plan::new(changes),
        };
        match status {
            Some(ChangeSetStatus::CreateComplete) => return Ok(Prepared::Ready(change_set)),
            Some(ChangeSetStatus::Failed) => {
                let reason = reason.unwrap_or_else(|| "no reason given".into());
                discard(aws, &change_set).await?;
                if is_no_change(&reason) {
                    return Ok(Prepared::NoChanges);
                }
                return Err(DeployError::ChangeSetFailed {
                    name: name.to_owned(),
                    reason,
                });
            }
            _ if started.elapsed() > CHANGE_SET_TIMEOUT => {
                return Err(DeployError::Timeout {
                    what: format!("the change set of {target}"),
                    seconds: CHANGE_SET_TIMEOUT.as_secs(),
                });
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// Whether a FAILED change set only says there was nothing to change.
pub fn is_no_change(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

fn read_change(c: &aws_sdk_cloudformation::types::Change) -> Option<Change> {
    let rc = c.resource_change()?;
    let action = match rc.action()? {
        ChangeAction::Add => Action::Add,
        ChangeAction::Modify => Action::Modify,
        ChangeAction::Remove => Action::Remove,
        ChangeAction::Import => Action::Import,
        ChangeAction::Dynamic => Action::Dynamic,
        other => Action::Other(other.as_str().to_ascii_lowercase()),
    };
    let replacement = match rc.replacement() {
        Some(CfnReplacement::True) => Replacement::Yes,
        Some(CfnReplacement::Conditional) => Replacement::Conditional,
        _ => Replacement::No,
    };
    Some(Change {
        action,
        logical_id: rc.logical_resource_id()?.to_owned(),
        resource_type: rc.resource_type().unwrap_or_default().to_owned(),
        replacement,
    })
}

/// Deletes a change set not to be executed, and the stack a CREATE change
/// set made for it (empty, in REVIEW_IN_PROGRESS).
pub async fn discard(aws: &Aws, change_set: &ChangeSet) -> Result<(), AwsError> {
    let target = stack_target(&change_set.stack);
    aws.call("cloudformation:DeleteChangeSet", &target, || {
        aws.cloudformation
            .delete_change_set()
            .stack_name(&change_set.stack)
            .change_set_name(&change_set.id)
            .send()
    })
    .await?;
    if change_set.creates
        && describe(aws, &change_set.stack)
            .await?
            .is_some_and(|s| s.is_review())
    {
        delete(aws, &change_set.stack).await?;
    }
    Ok(())
}

/// The newest event of the stack, so that following it shows only what
/// comes after.
pub async fn last_event(aws: &Aws, name: &str) -> Result<Option<String>, AwsError> {
    Ok(events(aws, name).await?.into_iter().next().map(|e| e.id))
}

/// The newest page of the stack's events, newest first.
async fn events(aws: &Aws, stack: &str) -> Result<Vec<StackEvent>, AwsError> {
    let out = aws
        .call(
            "cloudformation:DescribeStackEvents",
            &stack_target(stack),
            || {
                aws.cloudformation
                    .describe_stack_events()
                    .stack_name(stack)
                    .send()
            },
        )
        .await?;
    Ok(out
        .stack_events()
        .iter()
        .map(|e| StackEvent {
            id: e.event_id().unwrap_or_default().to_owned(),
            logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: e.resource_type().unwrap_or_default().to_owned(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_owned),
        })
        .collect())
}

pub async fn execute(aws: &Aws, change_set: &ChangeSet) -> Result<(), AwsError> {
    aws.call(
        "cloudformation:ExecuteChangeSet",
        &stack_target(&change_set.stack),
        || {
            aws.cloudformation
                .execute_change_set()
                .stack_name(&change_set.stack)
                .change_set_name(&change_set.id)
                .send()
        },
    )
    .await?;
    Ok(())
}

pub async fn delete(aws: &Aws, name: &str) -> Result<(), AwsError> {
    aws.call("cloudformation:DeleteStack", &stack_target(name), || {
        aws.cloudformation.delete_stack().stack_name(name).send()
    })
    .await?;
    Ok(())
}

/// How a stack operation ended.
#[derive(Debug, Clone)]
pub struct Settled {
    pub status: String,
    pub reason: Option<String>,
    /// Every event seen while following, oldest first.
    pub events: Vec<StackEvent>,
}

/// Follows stack `id` (its id: a deleted stack is found by id only) until
/// its status stops moving, showing each event after `since` on
/// `progress`.
pub async fn follow(
    aws: &Aws,
    id: &str,
    since: Option<&str>,
    progress: &mut Progress,
) -> Result<Settled, DeployError> {
    let started = Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut all = Vec::new();
    let mut show = |events: Vec<StackEvent>, progress: &mut Progress, all: &mut Vec<StackEvent>| {
        // Newest first, down to what was already there.
        let fresh: Vec<StackEvent> = events
            .into_iter()
            .take_while(|e| Some(e.id.as_str()) != since)
            .filter(|e| seen.insert(e.id.clone()))
            .collect();
        for e in fresh.into_iter().rev() {
            progress.event(&e);
            all.push(e);
        }
    };
    loop {
        let state = describe(aws, id).await?;
        show(events(aws, id).await?, progress, &mut all);
        let (status, reason) = match state {
            Some(s) => (s.status, s.reason),
            None => ("DELETE_COMPLETE".to_owned(), None),
        };
        progress.status(&status);
        if !status.ends_with("_IN_PROGRESS") {
            return Ok(Settled {
                status,
                reason,
                events: all,
            });
        }
        if started.elapsed() > STACK_TIMEOUT {
            return Err(DeployError::Timeout {
                what: format!("stack {id}"),
                seconds: STACK_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Settled {
    pub fn succeeded(&self) -> bool {
        matches!(
            self.status.as_str(),
            "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" | "IMPORT_COMPLETE"
        )
    }

    /// The first resource that failed, with CloudFormation's reason
    /// (later failures are mostly "cancelled" because of it).
    pub fn failure(&self) -> String {
        self.events
            .iter()
            .find(|e| {
                e.is_failure()
                    && e.resource_type != "AWS::CloudFormation::Stack"
                    && e.reason
                        .as_deref()
                        .is_some_and(|r| !r.contains("cancelled"))
            })
            .or_else(|| self.events.iter().find(|e| e.is_failure()))
            .map(|e| {
                format!(
                    "{} ({}) {}: {}",
                    e.logical_id,
                    e.resource_type,
                    e.status,
                    e.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .or_else(|| {
                self.reason
                    .as_ref()
                    .map(|r| format!("stack {}: {r}", self.status))
            })
            .unwrap_or_else(|| format!("the stack ended {}", self.status))
    }

    /// What became of the stack after the failure.
    pub fn outcome(&self) -> String {
        rollback_outcome(&self.status)
    }
}

/// What a final stack status says about the rollback.
pub fn rollback_outcome(status: &str) -> String {
    match status {
        "ROLLBACK_COMPLETE" => {
            "rolled back: nothing was kept (remove the stack with `wsstack down` before trying again)".into()
        }
        "UPDATE_ROLLBACK_COMPLETE" => "rolled back: the stack runs its previous version".into(),
        s if s.ends_with("ROLLBACK_FAILED") => {
            format!("the rollback failed too ({s}): the stack needs attention in the CloudFormation console")
        }
        "DELETE_FAILED" => "the stack is DELETE_FAILED: some resources are left".into(),
        s => format!("the stack is {s}"),
    }
}

/// Drift of each resource, or why it could not be known.
#[derive(Debug, Clone)]
pub enum Drift {
    Checked {
        /// IN_SYNC or DRIFTED.
        stack: String,
        /// (logical id, type, status), by logical id.
        resources: Vec<(String, String, String)>,
    },
    Unavailable(String),
}

/// Runs drift detection on the stack and waits for its result. Any failure
/// (drift detection not supported where the stack runs) is
/// [`Drift::Unavailable`], never an error.
pub async fn drift(aws: &Aws, name: &str) -> Drift {
    match detect_drift(aws, name).await {
        Ok(d) => d,
        Err(e) => Drift::Unavailable(e.to_string()),
    }
}

async fn detect_drift(aws: &Aws, name: &str) -> Result<Drift, DeployError> {
    let target = stack_target(name);
    let out = aws
        .call("cloudformation:DetectStackDrift", &target, || {
            aws.cloudformation
                .detect_stack_drift()
                .stack_name(name)
                .send()
        })
        .await?;
    let id = out
        .stack_drift_detection_id()
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    let stack = loop {
        let s = aws
            .call(
                "cloudformation:DescribeStackDriftDetectionStatus",
                &target,
                || {
                    aws.cloudformation
                        .describe_stack_drift_detection_status()
                        .stack_drift_detection_id(&id)
                        .send()
                },
            )
            .await?;
        match s.detection_status() {
            Some(StackDriftDetectionStatus::DetectionInProgress) => {}
            Some(StackDriftDetectionStatus::DetectionFailed) => {
                return Ok(Drift::Unavailable(
                    s.detection_status_reason()
                        .unwrap_or("drift detection failed")
                        .to_owned(),
                ));
            }
            _ => {
                break s
                    .stack_drift_status()
                    .map(|x| x.as_str().to_owned())
                    .unwrap_or_default();
            }
        }
        if started.elapsed() > DRIFT_TIMEOUT {
            return Err(DeployError::Timeout {
                what: format!("drift detection of {target}"),
                seconds: DRIFT_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    };
    let mut resources = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .call(
                "cloudformation:DescribeStackResourceDrifts",
                &target,
                || {
                    aws.cloudformation
                        .describe_stack_resource_drifts()
                        .stack_name(name)
                        .set_next_token(token.clone())
                        .send()
                },
            )
            .await?;
        resources.extend(page.stack_resource_drifts().iter().map(|d| {
            (
                d.logical_resource_id().unwrap_or_default().to_owned(),
                d.resource_type().unwrap_or_default().to_owned(),
                d.stack_resource_drift_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        }));
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    resources.sort();
    Ok(Drift::Checked { stack, resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_are_checked() {
        assert!(check_name("chat-prod-2").is_ok());
        for bad in [
            "",
            "2chat",
            "chat_prod",
            "chat prod",
            "local",
            &"a".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_change_set_is_no_change() {
        assert!(is_no_change(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(is_no_change("No updates are to be performed."));
        assert!(!is_no_change("Template format error"));
    }

    fn event(logical: &str, ty: &str, status: &str, reason: &str) -> StackEvent {
        StackEvent {
            id: format!("{logical}-{status}"),
            logical_id: logical.into(),
            resource_type: ty.into(),
            status: status.into(),
            reason: Some(reason.into()),
        }
    }

    #[test]
    fn a_failure_names_the_first_resource_that_failed_and_the_rollback() {
        let settled = Settled {
            status: "ROLLBACK_COMPLETE".into(),
            reason: None,
            events: vec![
                event("Table", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS", ""),
                event(
                    "MessageFunction",
                    "AWS::Lambda::Function",
                    "CREATE_FAILED",
                    "S3 key does not exist",
                ),
                event(
                    "Table",
                    "AWS::DynamoDB::Table",
                    "CREATE_FAILED",
                    "Resource creation cancelled",
                ),
                event(
                    "demo",
                    "AWS::CloudFormation::Stack",
                    "ROLLBACK_IN_PROGRESS",
                    "x",
                ),
            ],
        };
        assert!(!settled.succeeded());
        assert_eq!(
            settled.failure(),
            "MessageFunction (AWS::Lambda::Function) CREATE_FAILED: S3 key does not exist"
        );
        assert!(settled.outcome().starts_with("rolled back"));
        assert!(rollback_outcome("UPDATE_ROLLBACK_FAILED").contains("needs attention"));
    }
}
