//! `wsstack down`: deletes a stack `wsstack up` made (refusing one without
//! the wsstack tag), follows the deletion, removes the zips it uploaded for
//! that stack and the `wsadmin` context it saved. Idempotent: with nothing
//! left, it says so and succeeds.

use wsadmin_core::context::ConfigFile;

use crate::artifacts;
use crate::aws::Aws;
use crate::cloudformation::{self as cfn, StackState};
use crate::error::DeployError;
use crate::progress::Progress;
use crate::say;

#[derive(Debug, Clone)]
pub struct DownRequest {
    pub name: String,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// What `down` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub stack: bool,
    pub artifacts: usize,
    pub context: bool,
}

/// Runs `down`. `confirm` sees the stack and says whether to delete it.
pub async fn down(
    req: &DownRequest,
    confirm: &mut dyn FnMut(&StackState) -> bool,
) -> Result<Removed, DeployError> {
    let name = req.name.as_str();
    cfn::check_name(name)?;
    let aws = Aws::connect(req.region.as_deref(), req.profile.as_deref()).await?;
    let mut removed = Removed::default();
    if let Some(stack) = cfn::describe(&aws, name).await? {
        if !stack.is_managed() {
            return Err(DeployError::NotOurs {
                name: name.to_owned(),
                region: aws.region.clone(),
                tag: format!("{}={}", cfn::MANAGED_TAG, cfn::MANAGED_VALUE),
            });
        }
        if stack.is_busy() {
            return Err(DeployError::Busy {
                name: name.to_owned(),
                status: stack.status.clone(),
            });
        }
        if !confirm(&stack) {
            return Err(DeployError::Cancelled);
        }
        let since = cfn::last_event(&aws, &stack.id).await?;
        cfn::delete(&aws, name).await?;
        let mut progress = Progress::start(&format!("deleting stack \"{name}\""), None);
        let settled = cfn::follow(&aws, &stack.id, since.as_deref(), &mut progress).await;
        progress.finish();
        let settled = settled?;
        if settled.status != "DELETE_COMPLETE" {
            return Err(DeployError::Failed {
                verb: "delete",
                name: name.to_owned(),
                failure: settled.failure(),
                outcome: settled.outcome(),
            });
        }
        say!("deleted stack \"{name}\" in {}", aws.region);
        removed.stack = true;
    }

    let bucket = artifacts::bucket_name(&aws.account_id().await?, &aws.region);
    let keys = artifacts::list(&aws, &bucket, name).await?;
    removed.artifacts = artifacts::delete(&aws, &bucket, &keys).await?;
    if removed.artifacts > 0 {
        say!(
            "removed {} artifacts from s3://{bucket}/{}",
            removed.artifacts,
            artifacts::stack_prefix(name)
        );
    }

    // The context is the stack's only when wsstack saw the stack (or its
    // artifacts): a context of the same name made by hand stays.
    if removed.stack || removed.artifacts > 0 {
        let path = ConfigFile::path()?;
        let mut file = ConfigFile::load(&path)?;
        if file.remove(name) {
            file.save(&path)?;
            say!("removed context \"{name}\" from {}", path.display());
            removed.context = true;
        }
    }
    if removed == Removed::default() {
        say!(
            "nothing to remove: no stack \"{name}\" in {} and no artifacts of it",
            aws.region
        );
    }
    Ok(removed)
}
