//! The contexts file: named deployments, like kubectl's contexts, in TOML at
//! `<config dir>/wsadmin/config.toml` (`WSADMIN_CONFIG` overrides). Reading
//! and writing only; what a context means is `deployment`'s business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::flags::TargetArgs;

pub const ENV_CONFIG: &str = "WSADMIN_CONFIG";
/// The built-in context: a running `wsstack local`.
pub const LOCAL: &str = "local";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The context used when no --context is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextSpec>,
}

/// What a context pins down; every field can still be overridden by a flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ContextSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_endpoint: Option<String>,
}

impl ContextSpec {
    pub fn from_flags(t: &TargetArgs) -> Self {
        Self {
            endpoint: t.endpoint.clone(),
            api_id: t.api_id.clone(),
            stage: t.stage.clone(),
            table: t.table.clone(),
            table_key: t.table_key.clone(),
            region: t.region.clone(),
            profile: t.profile.clone(),
            dynamodb_endpoint: t.dynamodb_endpoint.clone(),
        }
    }
}

impl ConfigFile {
    /// `$WSADMIN_CONFIG`, else `<config dir>/wsadmin/config.toml`.
    pub fn path() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let dir = dirs::config_dir().context(
            "no configuration directory on this system: set WSADMIN_CONFIG to a file path",
        )?;
        Ok(dir.join("wsadmin").join("config.toml"))
    }

    /// A missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid wsadmin config: {} (fix or remove it)",
                path.display(),
                e.message()
            )
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self).context("cannot serialize the configuration")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn get(&self, name: &str) -> Option<&ContextSpec> {
        self.contexts.get(name)
    }

    /// An error naming the contexts there are.
    pub fn unknown(&self, name: &str) -> anyhow::Error {
        let mut known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
        known.push(LOCAL);
        anyhow::anyhow!(
            "unknown context {name:?} (known: {}; add one with `wsadmin context add {name} --endpoint URL --table NAME`)",
            known.join(", ")
        )
    }

    pub fn check_name(name: &str) -> Result<()> {
        if name == LOCAL {
            bail!("\"local\" is the built-in context of `wsstack local`: pick another name");
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            bail!("invalid context name {name:?}: use letters, digits, - _ and .");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_toml() {
        let mut file = ConfigFile {
            current: Some("prod".into()),
            ..ConfigFile::default()
        };
        file.contexts.insert(
            "prod".into(),
            ContextSpec {
                endpoint: Some("https://abc.execute-api.eu-west-1.amazonaws.com/prod".into()),
                table: Some("T".into()),
                ..ContextSpec::default()
            },
        );
        let text = toml::to_string(&file).expect("toml");
        assert!(text.contains("[contexts.prod]"), "{text}");
        assert_eq!(toml::from_str::<ConfigFile>(&text).expect("parse"), file);
        assert!(toml::from_str::<ConfigFile>("[contexts.x]\nendpont = 'x'").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(ConfigFile::check_name("prod-eu.1").is_ok());
        assert!(ConfigFile::check_name("local").is_err());
        assert!(ConfigFile::check_name("a b").is_err());
    }
}
