//! `wsstack status`: a deployed stack and a verdict; an unhealthy one
//! exits 1.

use anyhow::Result;
use wsadmin_deploy::status::{StatusRequest, Verdict, status};

use crate::flags::StatusArgs;

pub async fn run(args: StatusArgs) -> Result<()> {
    let request = StatusRequest {
        name: args.name,
        region: args.aws.region,
        profile: args.aws.profile,
    };
    match status(&request).await? {
        Verdict::Unhealthy => anyhow::bail!("the stack is unhealthy (see the verdict above)"),
        _ => Ok(()),
    }
}
