//! The contexts file: named deployments, like kubectl's contexts, in TOML at
//! `<config dir>/wsadmin/config.toml` (`WSADMIN_CONFIG` overrides). `wsadmin
//! context` edits it and `wsstack up`/`down` save and remove the context of
//! the stack they deploy. Reading and writing only: what a context means is
//! the CLI's business (its `deployment` module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const ENV_CONFIG: &str = "WSADMIN_CONFIG";
/// The built-in context: a running `wsstack local`.
pub const LOCAL: &str = "local";

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("no configuration directory on this system: set WSADMIN_CONFIG to a file path")]
    NoConfigDir,
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid wsadmin config: {message} (fix or remove it)", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("cannot serialize the configuration")]
    Serialize(#[from] toml::ser::Error),
    #[error("cannot create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "unknown context {name:?} (known: {known}; add one with `wsadmin context add {name} --endpoint URL --table NAME`)"
    )]
    Unknown { name: String, known: String },
    #[error("\"local\" is the built-in context of `wsstack local`: pick another name")]
    Builtin,
    #[error("invalid context name {0:?}: use letters, digits, - _ and .")]
    InvalidName(String),
}

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

/// What a context can be read from: the CLI's target flags (clap is the
/// CLI's; this crate only names the seam).
pub trait ContextSource {
    fn context_spec(&self) -> ContextSpec;
}

impl ContextSpec {
    /// The context the flags `t` describe (`wsadmin context add`), and the
    /// flags that override a saved context.
    pub fn from_flags(t: &impl ContextSource) -> Self {
        t.context_spec()
    }
}

impl ConfigFile {
    /// `$WSADMIN_CONFIG`, else `<config dir>/wsadmin/config.toml`.
    pub fn path() -> Result<PathBuf, ContextError> {
        if let Some(p) = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let dir = dirs::config_dir().ok_or(ContextError::NoConfigDir)?;
        Ok(dir.join("wsadmin").join("config.toml"))
    }

    /// A missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, ContextError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ContextError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| ContextError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Writes the whole file at once (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), ContextError> {
        let text = toml::to_string(self)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ContextError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|source| ContextError::Write {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, path).map_err(|source| ContextError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub fn get(&self, name: &str) -> Option<&ContextSpec> {
        self.contexts.get(name)
    }

    /// Sets context `name` (made current when there is none); whether one
    /// was replaced.
    pub fn put(&mut self, name: &str, spec: ContextSpec) -> bool {
        let replaced = self.contexts.insert(name.to_owned(), spec).is_some();
        if self.current.is_none() {
            self.current = Some(name.to_owned());
        }
        replaced
    }

    /// Removes context `name` (no longer current); whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let removed = self.contexts.remove(name).is_some();
        if removed && self.current.as_deref() == Some(name) {
            self.current = None;
        }
        removed
    }

    /// An error naming the contexts there are.
    pub fn unknown(&self, name: &str) -> ContextError {
        let mut known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
        known.push(LOCAL);
        ContextError::Unknown {
            name: name.to_owned(),
            known: known.join(", "),
        }
    }

    pub fn check_name(name: &str) -> Result<(), ContextError> {
        if name == LOCAL {
            return Err(ContextError::Builtin);
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ContextError::InvalidName(name.to_owned()));
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

    #[test]
    fn put_makes_the_first_current_and_remove_clears_it() {
        let mut file = ConfigFile::default();
        assert!(!file.put("a", ContextSpec::default()));
        assert!(!file.put("b", ContextSpec::default()));
        assert!(file.put("a", ContextSpec::default()));
        assert_eq!(file.current.as_deref(), Some("a"));
        assert!(file.remove("a"));
        assert_eq!(file.current, None);
        assert!(!file.remove("a"));
    }

    #[test]
    fn saves_and_loads_through_a_file() {
        let dir = std::env::temp_dir().join(format!("wsadmin-context-{}", std::process::id()));
        let path = dir.join("nested").join("config.toml");
        assert_eq!(
            ConfigFile::load(&path).expect("missing"),
            ConfigFile::default()
        );
        let mut file = ConfigFile::default();
        file.put(
            "x",
            ContextSpec {
                table: Some("T".into()),
                ..ContextSpec::default()
            },
        );
        file.save(&path).expect("save");
        assert_eq!(ConfigFile::load(&path).expect("load"), file);
        std::fs::write(&path, "nonsense = [").expect("write");
        let err = ConfigFile::load(&path).expect_err("invalid").to_string();
        assert!(err.contains("is not a valid wsadmin config"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
