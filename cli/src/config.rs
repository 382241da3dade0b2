//! The contexts file as the CLI uses it: the file itself (TOML, named
//! deployments) is `wsadmin_core::context`, shared with `wsstack up`, which
//! saves the context of each stack it deploys. What is the CLI's own: a
//! context from the target flags.

use wsadmin_core::context::ContextSource;
pub use wsadmin_core::context::{ConfigFile, ContextSpec, LOCAL};
use wsadmin_core::registry::{AttributeField, Mapping, TemplateError};

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
            // Checked when the deployment is built ([`RegistryArgs::mapping`]).
            registry: self.registry.mapping().ok().flatten(),
        }
    }
}

impl crate::flags::RegistryArgs {
    /// The mapping the registry flags give, if --registry-id is given.
    pub fn mapping(&self) -> Result<Option<Mapping>, TemplateError> {
        let Some(id) = &self.registry_id else {
            return Ok(None);
        };
        let mut m = Mapping::bare(AttributeField::parse(id, "id")?);
        m.connected_at = self.registry_connected_at.clone();
        m.meta = self
            .registry_meta
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        m.key_fields = self
            .registry_key_field
            .iter()
            .map(|f| {
                if !f.contains('=') {
                    return Err(TemplateError {
                        pattern: f.clone(),
                        reason: "a key field is ATTR=PATTERN, e.g. pk=ROOM#{room}",
                    });
                }
                AttributeField::parse(f, "value")
            })
            .collect::<Result<_, _>>()?;
        m.gone_mark = self.registry_gone_mark.clone();
        Ok(Some(m))
    }
}
