//! `wsstack status`: a deployed stack at a glance: its status, outputs,
//! drift per resource, whether its Management endpoint answers, and one
//! verdict line. Reads only.

use wsadmin_core::{Gateway, GatewayError, ManagementEndpoint};

use crate::aws::Aws;
use crate::cloudformation::{self as cfn, Drift};
use crate::error::DeployError;
use crate::say;
use crate::up;

#[derive(Debug, Clone)]
pub struct StatusRequest {
    pub name: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// Whether the Management endpoint answered a GetConnection for an id no
/// connection has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered as API Gateway does (410 for an unknown id).
    Answers,
    /// It answered, refusing these credentials.
    Refuses(String),
    NoAnswer(String),
    /// The stack names no endpoint.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Settled, in sync, answering.
    Healthy,
    /// Settled, but something could not be checked.
    Unverified,
    Unhealthy,
}

/// The verdict and its line, from what was found.
pub fn verdict(status: &str, drift: &Drift, probe: &Probe) -> (Verdict, String) {
    let settled = matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE");
    let mut problems = Vec::new();
    let mut unchecked = Vec::new();
    if !settled {
        problems.push(format!("the stack is {status}"));
    }
    match drift {
        Drift::Checked { stack, resources } => {
            let drifted: Vec<&str> = resources
                .iter()
                .filter(|(_, _, s)| s == "MODIFIED" || s == "DELETED")
                .map(|(id, _, _)| id.as_str())
                .collect();
            if !drifted.is_empty() {
                problems.push(format!("drifted: {}", drifted.join(", ")));
            } else if stack == "DRIFTED" {
                problems.push("the stack has drifted".into());
            }
        }
        Drift::Unavailable(_) => unchecked.push("drift"),
    }
    match probe {
        Probe::Answers => {}
        Probe::Refuses(why) => problems.push(format!("the Management endpoint refuses: {why}")),
        Probe::NoAnswer(why) => {
            problems.push(format!("the Management endpoint does not answer: {why}"))
        }
        Probe::Unknown => unchecked.push("the Management endpoint"),
    }
    if !problems.is_empty() {
        (
            Verdict::Unhealthy,
            format!("unhealthy: {}", problems.join("; ")),
        )
    } else if !unchecked.is_empty() {
        (
            Verdict::Unverified,
            format!("deployed ({status}); not checked: {}", unchecked.join(", ")),
        )
    } else {
        (
            Verdict::Healthy,
            "healthy: deployed, in sync, the Management endpoint answers".into(),
        )
    }
}

pub async fn status(req: &StatusRequest) -> Result<Verdict, DeployError> {
    if let Some(name) = &req.name {
        cfn::check_name(name)?;
    }
    let aws = Aws::connect(req.region.as_deref(), req.profile.as_deref()).await?;
    let name = match &req.name {
        Some(n) => n.clone(),
        None => {
            let stacks = cfn::managed_stacks(&aws).await?;
            match stacks.as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(DeployError::Choose(format!(
                        "no wsstack stacks in {}: deploy one with `wsstack up --name NAME`",
                        aws.region
                    )));
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
                    return Err(DeployError::Choose(format!(
                        "several wsstack stacks in {} ({}): pass --name",
                        aws.region,
                        names.join(", ")
                    )));
                }
            }
        }
    };
    let Some(stack) = cfn::describe(&aws, &name).await? else {
        return Err(DeployError::NoStack {
            name,
            region: aws.region.clone(),
        });
    };
    say!("stack \"{name}\" in {}: {}", aws.region, stack.status);
    if let Some(reason) = &stack.reason {
        say!("  reason: {reason}");
    }
    if !stack.is_managed() {
        say!(
            "  (not made by wsstack: no {}={} tag)",
            cfn::MANAGED_TAG,
            cfn::MANAGED_VALUE
        );
    }
    if stack.outputs.is_empty() {
        say!("outputs: none");
    } else {
        say!("outputs:");
        for (k, v) in &stack.outputs {
            say!("  {k:<20} {v}");
        }
    }
    let drift = cfn::drift(&aws, &name).await;
    match &drift {
        Drift::Checked { stack, resources } => {
            say!("drift: {stack}");
            for (id, ty, s) in resources {
                say!("  {s:<12} {id} ({ty})");
            }
        }
        Drift::Unavailable(why) => say!("drift: not available ({why})"),
    }
    let stage = stack
        .outputs
        .get("ManagementEndpoint")
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or("")
        .to_owned();
    let physical = cfn::physical_ids(&aws, &name).await.unwrap_or_default();
    let endpoints = up::endpoints(&stack.outputs, &physical, &aws.region, &stage);
    let probe = match &endpoints.management_endpoint {
        Some(url) => probe(&aws, url).await,
        None => Probe::Unknown,
    };
    match &probe {
        Probe::Answers => say!(
            "management endpoint: answers ({})",
            endpoints.management_endpoint.as_deref().unwrap_or_default()
        ),
        Probe::Refuses(why) => say!("management endpoint: refuses ({why})"),
        Probe::NoAnswer(why) => say!("management endpoint: no answer ({why})"),
        Probe::Unknown => say!("management endpoint: unknown (no ManagementEndpoint output)"),
    }
    let (v, line) = verdict(&stack.status, &drift, &probe);
    say!("verdict: {line}");
    Ok(v)
}

/// GetConnection of an id no connection has: API Gateway answers 410.
async fn probe(aws: &Aws, url: &str) -> Probe {
    let endpoint = match ManagementEndpoint::parse(url) {
        Ok(e) => e,
        Err(e) => return Probe::NoAnswer(e.to_string()),
    };
    let gateway = match Gateway::new(&aws.sdk, endpoint) {
        Ok(g) => g,
        Err(e) => return Probe::NoAnswer(e.to_string()),
    };
    match gateway.get("wsstack-status-probe=").await {
        Ok(_) => Probe::Answers,
        Err(GatewayError::Forbidden { message, .. }) => Probe::Refuses(message),
        Err(e @ (GatewayError::Unreachable { .. } | GatewayError::Transient { .. })) => {
            Probe::NoAnswer(e.to_string())
        }
        Err(GatewayError::NoCredentials) => Probe::Refuses("no credentials".into()),
        Err(_) => Probe::Answers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_verdict_from_status_drift_and_probe() {
        let in_sync = Drift::Checked {
            stack: "IN_SYNC".into(),
            resources: vec![(
                "Table".into(),
                "AWS::DynamoDB::Table".into(),
                "IN_SYNC".into(),
            )],
        };
        assert_eq!(
            verdict("UPDATE_COMPLETE", &in_sync, &Probe::Answers).0,
            Verdict::Healthy
        );
        let (v, line) = verdict(
            "CREATE_COMPLETE",
            &Drift::Unavailable("x".into()),
            &Probe::Unknown,
        );
        assert_eq!(v, Verdict::Unverified);
        assert!(
            line.contains("not checked: drift, the Management endpoint"),
            "{line}"
        );
        let drifted = Drift::Checked {
            stack: "DRIFTED".into(),
            resources: vec![(
                "Table".into(),
                "AWS::DynamoDB::Table".into(),
                "MODIFIED".into(),
            )],
        };
        let (v, line) = verdict("UPDATE_ROLLBACK_COMPLETE", &drifted, &Probe::Answers);
        assert_eq!(v, Verdict::Unhealthy);
        assert!(
            line.contains("UPDATE_ROLLBACK_COMPLETE") && line.contains("drifted: Table"),
            "{line}"
        );
    }
}
