//! `wsstack policy`: the IAM policy an operator of a deployment needs, as
//! JSON on standard output; the placeholders left in it on stderr.

use std::io::Write;

use anyhow::{Context as _, Result};
use wsadmin_deploy::policy::{Deployment, operator_policy};

use crate::flags::PolicyArgs;

pub fn run(args: PolicyArgs, w: &mut dyn Write) -> Result<()> {
    let stack = args.described.spec()?;
    let policy = operator_policy(&Deployment {
        table: stack.table,
        table_arn: args.table_arn,
        stage: stack.stage,
        api_id: args.api_id,
        region: args.region,
        account: args.account,
    })?;
    let mut text =
        serde_json::to_string_pretty(&policy.document).context("writing the policy as JSON")?;
    text.push('\n');
    w.write_all(text.as_bytes())?;
    w.flush()?;
    let missing = policy.placeholders();
    if !missing.is_empty() {
        eprintln!(
            "wsstack: replace {} in the policy before using it (or pass --region, --account, --api-id)",
            missing.join(", ")
        );
    }
    Ok(())
}
