//! `wsstack up` and `wsstack plan` (`up --dry-run`): the flags resolved
//! into an `UpRequest`, the confirmation asked on the terminal.

use anyhow::Result;
use wsadmin_deploy::up::{UpRequest, up};

use crate::flags::DeployArgs;

pub async fn run(args: DeployArgs, yes: bool, dry_run: bool) -> Result<()> {
    super::need_terminal("up", yes || dry_run)?;
    let request = request(args, dry_run)?;
    let name = request.name.clone();
    up(&request, &mut |_plan| {
        yes || super::ask(&format!("deploy these changes to stack \"{name}\"?"))
    })
    .await?;
    Ok(())
}

fn request(args: DeployArgs, dry_run: bool) -> Result<UpRequest> {
    Ok(UpRequest {
        name: args.name,
        region: args.aws.region,
        profile: args.aws.profile,
        spec: super::stack_spec(args.stack.as_deref(), args.stage, None)?,
        arch: args.arch,
        artifacts: args.artifacts.unwrap_or_else(super::default_artifacts_dir),
        overrides: args.parameters,
        dry_run,
    })
}
