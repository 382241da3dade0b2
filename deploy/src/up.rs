//! `wsstack up` and `wsstack plan`: the stack description to a running
//! stack through one CloudFormation change set. Refuses before any change
//! what is not ours or not ready (missing zips, a stack without the
//! wsstack tag, a busy or failed stack); prints the plan; asks (through
//! the caller's `confirm`); uploads the zips ([`crate::artifacts`]);
//! executes and follows the events; reads the endpoints from the outputs;
//! saves the `wsadmin` context named after the stack.
//!
//! The zips are uploaded (and the bucket created) only once the plan is
//! accepted: the change set names them by their hashes, known without S3.
//! So `plan` (`up --dry-run`), which stops after the printout and deletes
//! its change set, and a cancelled `up` upload nothing. `plan` needs no
//! zips at all: before `wsstack package` it uses the deployed stack's code
//! keys (a new stack's are placeholders) and says so in one line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use wsadmin_core::TableConfig;
use wsadmin_core::context::{ConfigFile, ContextSpec};
use wsadmin_core::stack::StackSpec;

use crate::artifacts::{self, Artifact, ArtifactError};
use crate::aws::Aws;
use crate::cloudformation::{self as cfn, Prepared, StackState};
use crate::error::DeployError;
use crate::package::Arch;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::say;
use crate::template::{self, Function, ids, params};

/// What `up` is asked to do.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub name: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub spec: StackSpec,
    pub arch: Arch,
    /// Holds `<function>/bootstrap.zip` (`wsstack package`'s output).
    pub artifacts: PathBuf,
    /// Template parameters given by `--parameter` (cost settings and
    /// such); the code's and the architecture's are `up`'s own.
    pub overrides: Vec<(String, String)>,
    /// Print the plan only (`wsstack plan`, `up --dry-run`).
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpOutcome {
    /// The stack already matches the description.
    NoChanges,
    /// `plan`: printed, nothing changed.
    Planned,
    Deployed,
}

/// What `wsadmin` needs of a deployed stack, from its outputs (or, where an
/// output is missing, the physical ids of its resources).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    pub websocket_url: Option<String>,
    pub management_endpoint: Option<String>,
    pub table: Option<String>,
    pub api_id: Option<String>,
}

/// The endpoints of a stack: its outputs first; the table and the API id
/// from the physical ids when their outputs are missing, the URLs built
/// from the API id then.
pub fn endpoints(
    outputs: &BTreeMap<String, String>,
    physical: &BTreeMap<String, String>,
    region: &str,
    stage: &str,
) -> Endpoints {
    let output = |k: &str| outputs.get(k).filter(|v| !v.contains("${")).cloned();
    let api_id = output("ApiId").or_else(|| physical.get(ids::API).cloned());
    let url = |scheme: &str| {
        api_id
            .as_ref()
            .map(|id| format!("{scheme}://{id}.execute-api.{region}.amazonaws.com/{stage}"))
    };
    Endpoints {
        websocket_url: output("WebSocketUrl").or_else(|| url("wss")),
        management_endpoint: output("ManagementEndpoint").or_else(|| url("https")),
        table: output("TableName").or_else(|| physical.get(ids::TABLE).cloned()),
        api_id,
    }
}

/// The `wsadmin` context of a deployed stack.
pub fn context_spec(
    e: &Endpoints,
    spec: &StackSpec,
    region: &str,
    profile: Option<&str>,
) -> ContextSpec {
    let key = TableConfig::new(&spec.table).key().to_owned();
    ContextSpec {
        endpoint: e.management_endpoint.clone(),
        api_id: e.api_id.clone(),
        stage: Some(spec.stage.clone()),
        table: e.table.clone().or_else(|| Some(spec.table.clone())),
        table_key: (key != TableConfig::DEFAULT_KEY).then_some(key),
        region: Some(region.to_owned()),
        profile: profile.map(str::to_owned),
        dynamodb_endpoint: None,
        registry: None,
    }
}

/// The template's parameters for the functions' zips at `code` (each
/// function's key) in `bucket`.
pub fn parameters(bucket: &str, arch: Arch, code: &[(Function, String)]) -> Vec<(String, String)> {
    let mut p = vec![
        (params::CODE_BUCKET.to_owned(), bucket.to_owned()),
        (params::ARCHITECTURE.to_owned(), arch.name().to_owned()),
    ];
    p.extend(
        code.iter()
            .map(|(function, key)| (function.code_key_parameter(), key.clone())),
    );
    p
}

/// The key a function's zip has in the plan of a stack whose zips are not
/// packaged: what the deployed stack has, else a placeholder.
pub fn unpackaged_key(stack: &str, function: Function, deployed: Option<&StackState>) -> String {
    deployed
        .and_then(|s| s.parameters.get(&function.code_key_parameter()))
        .cloned()
        .unwrap_or_else(|| {
            format!(
                "{}{}/{UNPACKAGED}.zip",
                artifacts::stack_prefix(stack),
                function.handler()
            )
        })
}

/// The placeholder for a zip's hash in a plan made before `wsstack package`.
pub const UNPACKAGED: &str = "not-packaged";

/// `--parameter KEY=VALUE`: a parameter of the template that is not
/// `up`'s own (the code bucket and keys, the architecture).
pub fn parse_parameter(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, not {text:?}"))?;
    let owned = [params::CODE_BUCKET, params::ARCHITECTURE];
    if owned.contains(&key) || key.ends_with("CodeKey") {
        return Err(format!(
            "{key} is set by wsstack up itself (use --arch, --artifacts)"
        ));
    }
    let known = [
        params::LOG_RETENTION,
        params::POINT_IN_TIME_RECOVERY,
        params::THROTTLING_BURST,
        params::THROTTLING_RATE,
        params::BROADCAST_CONCURRENCY,
        params::CLOUDWATCH_ROLE,
    ];
    if !known.contains(&key) {
        return Err(format!(
            "unknown template parameter {key:?} (known: {})",
            known.join(", ")
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Refuses a stack `up` must not touch; whether `up` creates it.
pub fn creates(existing: Option<&StackState>, region: &str) -> Result<bool, DeployError> {
    let Some(s) = existing else {
        return Ok(true);
    };
    if !s.is_managed() {
        return Err(DeployError::NotOurs {
            name: s.name.clone(),
            region: region.to_owned(),
            tag: format!("{}={}", cfn::MANAGED_TAG, cfn::MANAGED_VALUE),
        });
    }
    if s.is_review() {
        return Ok(true);
    }
    if s.is_busy() {
        return Err(DeployError::Busy {
            name: s.name.clone(),
            status: s.status.clone(),
        });
    }
    if matches!(
        s.status.as_str(),
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" | "DELETE_FAILED"
    ) {
        return Err(DeployError::NeedsDelete {
            name: s.name.clone(),
            status: s.status.clone(),
        });
    }
    Ok(false)
}

/// Runs `up` (or `plan`). `confirm` sees the plan and says whether to go
/// on; it is not asked by `plan`.
pub async fn up(
    req: &UpRequest,
    confirm: &mut dyn FnMut(&Plan) -> bool,
) -> Result<UpOutcome, DeployError> {
    let name = req.name.as_str();
    cfn::check_name(name)?;
    let table = TableConfig::new(&req.spec.table);
    let template: Value = template::template(&req.spec, &table)?;
    let functions = template::functions(&template::plan_routes(&req.spec)?);
    // The zips' hashes name their keys; only `up` needs the zips: a plan
    // without them shows the rest, saying so.
    let (artifacts, missing) = match artifacts::locate(&req.artifacts, &functions) {
        Ok(artifacts) => (artifacts, None),
        Err(ArtifactError::Missing { dir, missing }) if req.dry_run => {
            (Vec::new(), Some((dir, missing)))
        }
        Err(e) => return Err(e.into()),
    };
    let template = serde_json::to_string(&template).unwrap_or_default();

    let aws = Aws::connect(req.region.as_deref(), req.profile.as_deref()).await?;
    let existing = cfn::describe(&aws, name).await?;
    let creates = creates(existing.as_ref(), &aws.region)?;
    let bucket = artifacts::bucket_name(&aws.account_id().await?, &aws.region);

    let code: Vec<(Function, String)> = match &missing {
        None => artifacts
            .iter()
            .map(|a| (a.function, a.key(name)))
            .collect(),
        Some((dir, missing)) => {
            let deployed = existing.as_ref().filter(|s| !creates && !s.is_review());
            let keys: Vec<(Function, String)> = functions
                .iter()
                .map(|&f| (f, unpackaged_key(name, f, deployed)))
                .collect();
            let kept = keys
                .iter()
                .all(|(_, k)| !k.ends_with(&format!("/{UNPACKAGED}.zip")));
            say!(
                "plan without the zips (not packaged under {}: {}): {}; run `wsstack package` before `up`",
                dir.display(),
                missing.join(", "),
                if kept {
                    "the functions' code is shown as deployed"
                } else {
                    "the functions' code keys are placeholders"
                }
            );
            keys
        }
    };
    let mut parameters = parameters(&bucket, req.arch, &code);
    parameters.extend(req.overrides.iter().cloned());
    let change_set =
        match cfn::create_change_set(&aws, name, creates, &template, &parameters).await? {
            Prepared::NoChanges => {
                say!(
                    "no changes: stack \"{name}\" in {} is up to date",
                    aws.region
                );
                if !req.dry_run {
                    let endpoints = read_endpoints(&aws, name, &req.spec.stage).await?;
                    save_context(req, &aws, &endpoints, true)?;
                    print_endpoints(&endpoints);
                }
                return Ok(UpOutcome::NoChanges);
            }
            Prepared::Ready(cs) => cs,
        };
    crate::progress::say(change_set.plan.render(name, creates).trim_end());

    if req.dry_run {
        cfn::discard(&aws, &change_set).await?;
        say!("plan only: nothing was changed");
        return Ok(UpOutcome::Planned);
    }
    if !confirm(&change_set.plan) {
        cfn::discard(&aws, &change_set).await?;
        return Err(DeployError::Cancelled);
    }

    // The change set names the zips by their hashes; they must be in the
    // bucket only when it runs, so a cancelled `up` uploads nothing.
    upload_all(&aws, &bucket, name, &artifacts).await?;
    let since = cfn::last_event(&aws, name).await?;
    if let Err(e) = cfn::execute(&aws, &change_set).await {
        let status = cfn::describe(&aws, name)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "gone".to_owned(), |s| s.status);
        return Err(DeployError::Failed {
            verb: "deploy",
            name: name.to_owned(),
            failure: e.to_string(),
            outcome: cfn::rollback_outcome(&status),
        });
    }
    let id = match cfn::describe(&aws, name).await? {
        Some(s) => s.id,
        None => name.to_owned(),
    };
    let mut progress = Progress::start(
        &format!("deploying stack \"{name}\""),
        Some(change_set.plan.changes.len()),
    );
    let settled = cfn::follow(&aws, &id, since.as_deref(), &mut progress).await;
    progress.finish();
    let settled = settled?;
    if !settled.succeeded() {
        return Err(DeployError::Failed {
            verb: "deploy",
            name: name.to_owned(),
            failure: settled.failure(),
            outcome: settled.outcome(),
        });
    }
    say!("stack \"{name}\" is {}", settled.status);

    // Zips of earlier versions: the stack no longer names them.
    let current: Vec<String> = artifacts.iter().map(|a| a.key(name)).collect();
    let stale: Vec<String> = artifacts::list(&aws, &bucket, name)
        .await?
        .into_iter()
        .filter(|k| !current.contains(k))
        .collect();
    if !stale.is_empty() {
        artifacts::delete(&aws, &bucket, &stale).await?;
        eprintln!("removed {} artifacts of earlier versions", stale.len());
    }

    let endpoints = read_endpoints(&aws, name, &req.spec.stage).await?;
    save_context(req, &aws, &endpoints, false)?;
    print_endpoints(&endpoints);
    Ok(UpOutcome::Deployed)
}

/// Creates the bucket on first use and uploads the zips not there yet.
async fn upload_all(
    aws: &Aws,
    bucket: &str,
    name: &str,
    artifacts: &[Artifact],
) -> Result<(), DeployError> {
    if artifacts::ensure_bucket(aws, bucket).await? {
        eprintln!("created the artifacts bucket {bucket} (encrypted, no public access)");
    }
    for a in artifacts {
        let uploaded = artifacts::upload(aws, bucket, name, a)
            .await
            .map_err(|e| match e {
                artifacts::DeployUploadError::Artifact(e) => DeployError::Artifacts(e),
                artifacts::DeployUploadError::Aws(e) => DeployError::Aws(e),
            })?;
        eprintln!(
            "{} {} ({}) s3://{bucket}/{}",
            if uploaded { "uploaded " } else { "unchanged" },
            a.function.handler(),
            human_bytes(a.bytes),
            a.key(name)
        );
    }
    Ok(())
}

async fn read_endpoints(aws: &Aws, name: &str, stage: &str) -> Result<Endpoints, DeployError> {
    let outputs = cfn::describe(aws, name)
        .await?
        .map(|s| s.outputs)
        .unwrap_or_default();
    let physical = cfn::physical_ids(aws, name).await?;
    Ok(endpoints(&outputs, &physical, &aws.region, stage))
}

/// Saves the stack's context (`quiet`: only when it differs, saying so).
fn save_context(
    req: &UpRequest,
    aws: &Aws,
    endpoints: &Endpoints,
    quiet: bool,
) -> Result<(), DeployError> {
    let spec = context_spec(endpoints, &req.spec, &aws.region, aws.profile.as_deref());
    let path = ConfigFile::path()?;
    let mut file = ConfigFile::load(&path)?;
    if file.get(&req.name) == Some(&spec) {
        return Ok(());
    }
    let replaced = file.put(&req.name, spec);
    file.save(&path)?;
    if !quiet || !replaced {
        say!(
            "saved context \"{}\" in {}: wsadmin --context {} list",
            req.name,
            path.display(),
            req.name
        );
    }
    Ok(())
}

fn print_endpoints(e: &Endpoints) {
    let unknown = "(unknown: the stack has no such output)";
    say!(
        "  WebSocket       {}",
        e.websocket_url.as_deref().unwrap_or(unknown)
    );
    say!(
        "  Management API  {}",
        e.management_endpoint.as_deref().unwrap_or(unknown)
    );
    say!(
        "  Table           {}",
        e.table.as_deref().unwrap_or(unknown)
    );
    if e.management_endpoint.is_none() {
        eprintln!(
            "wsstack: warning: no Management endpoint in the stack's outputs or resources: the saved context has no endpoint"
        );
    }
}

pub fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_outputs_else_from_resources() {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "ManagementEndpoint".to_owned(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod".to_owned(),
        );
        outputs.insert("TableName".to_owned(), "T".to_owned());
        let e = endpoints(&outputs, &BTreeMap::new(), "eu-west-1", "prod");
        assert_eq!(e.table.as_deref(), Some("T"));
        assert_eq!(e.websocket_url, None);

        let mut physical = BTreeMap::new();
        physical.insert(ids::API.to_owned(), "xyz".to_owned());
        physical.insert(ids::TABLE.to_owned(), "WS".to_owned());
        let e = endpoints(&BTreeMap::new(), &physical, "us-east-1", "dev");
        assert_eq!(
            e.websocket_url.as_deref(),
            Some("wss://xyz.execute-api.us-east-1.amazonaws.com/dev")
        );
        assert_eq!(
            e.management_endpoint.as_deref(),
            Some("https://xyz.execute-api.us-east-1.amazonaws.com/dev")
        );
        assert_eq!(e.table.as_deref(), Some("WS"));
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            parse_parameter("LogRetentionInDays=30"),
            Ok(("LogRetentionInDays".to_owned(), "30".to_owned()))
        );
        assert!(parse_parameter("CodeBucket=x").is_err());
        assert!(parse_parameter("MessageCodeKey=x").is_err());
        assert!(parse_parameter("Nope=1").is_err());
        assert!(parse_parameter("LogRetentionInDays").is_err());
    }

    #[test]
    fn only_our_settled_stacks_are_updated() {
        let ours = |status: &str| StackState {
            name: "demo".into(),
            status: status.into(),
            tags: [(cfn::MANAGED_TAG.to_owned(), cfn::MANAGED_VALUE.to_owned())].into(),
            ..StackState::default()
        };
        assert!(creates(None, "r").expect("new"));
        assert!(creates(Some(&ours("REVIEW_IN_PROGRESS")), "r").expect("review"));
        assert!(!creates(Some(&ours("UPDATE_ROLLBACK_COMPLETE")), "r").expect("update"));
        assert!(creates(Some(&ours("UPDATE_IN_PROGRESS")), "r").is_err());
        assert!(creates(Some(&ours("ROLLBACK_COMPLETE")), "r").is_err());
        let theirs = StackState {
            tags: BTreeMap::new(),
            ..ours("CREATE_COMPLETE")
        };
        let err = creates(Some(&theirs), "us-east-1")
            .expect_err("not ours")
            .to_string();
        assert!(err.contains("was not created by wsstack"), "{err}");
    }
}
