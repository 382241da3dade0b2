//! The contexts file as the CLI uses it: the file itself (TOML, named
//! deployments) is `wsadmin_core::context`, shared with `wsstack up`, which
//! saves the context of each stack it deploys. What is the CLI's own: a
//! context from the target flags.

use wsadmin_core::context::ContextSource;
pub use wsadmin_core::context::{ConfigFile, ContextSpec, LOCAL};

use crate::flags::TargetArgs;

impl ContextSource for TargetArgs {
    fn context_spec(&self) -> ContextSpec {
        ContextSpec {
            endpoint: self.endpoint.clone(),
            api_id: self.api_id.clone(),
            stage: self.stage.clone(),
            table: self.table.clone(),
            table_key: self.table_key.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            dynamodb_endpoint: self.dynamodb_endpoint.clone(),
        }
    }
}
