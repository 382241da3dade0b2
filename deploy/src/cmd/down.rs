//! `wsstack down`: deletes a stack `up` made, after asking on the terminal
//! (or `--yes`).

use anyhow::Result;
use wsadmin_deploy::down::{DownRequest, down};

use crate::flags::DownArgs;

pub async fn run(args: DownArgs) -> Result<()> {
    super::need_terminal("down", args.yes)?;
    let request = DownRequest {
        name: args.name,
        region: args.aws.region,
        profile: args.aws.profile,
    };
    let yes = args.yes;
    down(&request, &mut |stack| {
        yes || super::ask(&format!(
            "delete stack \"{}\" ({}) and everything in it, the connection table's records included?",
            stack.name, stack.status
        ))
    })
    .await?;
    Ok(())
}
