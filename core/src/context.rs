//! The contexts file: named deployments, like kubectl's contexts, in TOML at
//! `<config dir>/wsadmin/config.toml` (`WSADMIN_CONFIG` overrides). `wsadmin
//! context` edits it and `wsstack up`/`down` save and remove the context of
//! the stack they deploy. Reading and writing only: what a context means is
//! the CLI's business (its `deployment` module).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::FileError;

pub const ENV_CONFIG: &str = "WSADMIN_CONFIG";
/// The built-in context: a running `wsstack local`.
pub const LOCAL: &str = "local";

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("no configuration directory on this system: set WSADMIN_CONFIG to a file path")]
    NoConfigDir,
    #[error(transparent)]
    File(#[from] FileError),
    /// `at`: the line and column (from 1) where the parser stopped.
    #[error("config file {}: {}{message} (fix or remove it)", path.display(), position(*at))]
    Parse {
        path: PathBuf,
        at: Option<(usize, usize)>,
        message: String,
    },
    #[error("cannot serialize the configuration")]
    Serialize(#[from] toml::ser::Error),
    #[error(
        "unknown context {name:?} (known: {known}; add one with `wsadmin context add {name} --endpoint URL --table NAME`)"
    )]
    Unknown { name: String, known: String },
    /// What cannot be done with the built-in context, and what to do instead.
    #[error("\"local\" is the built-in context of `wsstack local` (read from its state file): {0}")]
    Builtin(&'static str),
    #[error(
        "context {0:?} already exists: add --force to replace it whole, or change some of its settings with `wsadmin context set {0} --FLAG VALUE`"
    )]
    Exists(String),
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
    /// How the table holds its connections (`wsadmin registry detect`);
    /// absent: our own schema (contexts saved before mappings existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<crate::registry::Mapping>,
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

/// A setting of a context, by its key in the file (`wsadmin context set
/// --unset KEY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Endpoint,
    ApiId,
    Stage,
    Table,
    TableKey,
    Region,
    Profile,
    DynamodbEndpoint,
    Registry,
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::Endpoint,
        Setting::ApiId,
        Setting::Stage,
        Setting::Table,
        Setting::TableKey,
        Setting::Region,
        Setting::Profile,
        Setting::DynamodbEndpoint,
        Setting::Registry,
    ];

    /// Its key in the file, as `context show` prints it.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Endpoint => "endpoint",
            Setting::ApiId => "api-id",
            Setting::Stage => "stage",
            Setting::Table => "table",
            Setting::TableKey => "table-key",
            Setting::Region => "region",
            Setting::Profile => "profile",
            Setting::DynamodbEndpoint => "dynamodb-endpoint",
            Setting::Registry => "registry",
        }
    }

    /// The setting a key names (`api-id` or `api_id`).
    pub fn parse(key: &str) -> Option<Self> {
        let key = key.trim().replace('_', "-");
        Self::ALL.into_iter().find(|s| s.key() == key)
    }
}

impl ContextSpec {
    /// The settings `other` gives replace these; the rest stay
    /// (`wsadmin context set`).
    pub fn update(&mut self, other: ContextSpec) {
        let ContextSpec {
            endpoint,
            api_id,
            stage,
            table,
            table_key,
            region,
            profile,
            dynamodb_endpoint,
            registry,
        } = other;
        let keep = |mine: &mut Option<String>, given: Option<String>| {
            if given.is_some() {
                *mine = given;
            }
        };
        keep(&mut self.endpoint, endpoint);
        keep(&mut self.api_id, api_id);
        keep(&mut self.stage, stage);
        keep(&mut self.table, table);
        keep(&mut self.table_key, table_key);
        keep(&mut self.region, region);
        keep(&mut self.profile, profile);
        keep(&mut self.dynamodb_endpoint, dynamodb_endpoint);
        if registry.is_some() {
            self.registry = registry;
        }
    }

    /// Removes one setting; whether it was there.
    pub fn unset(&mut self, setting: Setting) -> bool {
        if setting == Setting::Registry {
            return self.registry.take().is_some();
        }
        let slot = match setting {
            Setting::Endpoint => &mut self.endpoint,
            Setting::ApiId => &mut self.api_id,
            Setting::Stage => &mut self.stage,
            Setting::Table => &mut self.table,
            Setting::TableKey => &mut self.table_key,
            Setting::Region => &mut self.region,
            Setting::Profile => &mut self.profile,
            Setting::DynamodbEndpoint => &mut self.dynamodb_endpoint,
            Setting::Registry => unreachable!("taken above"),
        };
        slot.take().is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == ContextSpec::default()
    }
}

/// `line L, column C: ` of a parse error, or nothing without a position.
fn position(at: Option<(usize, usize)>) -> String {
    at.map(|(line, column)| format!("line {line}, column {column}: "))
        .unwrap_or_default()
}

/// The line and column (from 1, in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
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
            Err(source) => return Err(FileError::on("read", path)(source).into()),
        };
        toml::from_str(&text).map_err(|e| ContextError::Parse {
            path: path.to_owned(),
            at: e.span().map(|span| line_column(&text, span.start)),
            message: e.message().trim().to_owned(),
        })
    }

    /// Writes the whole file at once (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), ContextError> {
        let text = toml::to_string(self)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(FileError::on("create", dir))?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(FileError::on("write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(FileError::on("write", path))?;
        Ok(())
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

    /// Refuses a name that is taken, saying how to replace or change it
    /// (`wsadmin context add` without `--force`: replacing would drop its
    /// other settings).
    pub fn check_absent(&self, name: &str) -> Result<(), ContextError> {
        match self.contexts.contains_key(name) {
            true => Err(ContextError::Exists(name.to_owned())),
            false => Ok(()),
        }
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

    /// `context remove local`: it is not in the file and stays.
    pub const BUILTIN_REMOVE: ContextError = ContextError::Builtin(
        "it cannot be removed; to stop using it, make another context current with `wsadmin context use NAME`",
    );
    /// `context set local`: its settings are the running stack's.
    pub const BUILTIN_SET: ContextError = ContextError::Builtin(
        "its settings are the running stack's and cannot be set; save one of your own with `wsadmin context add NAME --endpoint URL`",
    );

    pub fn check_name(name: &str) -> Result<(), ContextError> {
        if name == LOCAL {
            return Err(ContextError::Builtin("pick another name"));
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
        std::fs::write(&path, "[contexts.x]\ntable = 'T'\n\nnonsense = [").expect("write");
        let err = ConfigFile::load(&path).expect_err("invalid").to_string();
        let want = format!("config file {}: line 4, column ", path.display());
        assert!(err.starts_with(&want), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("é = x", 3), (1, 3));
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn a_taken_name_is_refused_and_update_keeps_the_rest() {
        let mut file = ConfigFile::default();
        let spec = ContextSpec {
            endpoint: Some("https://x/dev".into()),
            profile: Some("ops".into()),
            ..ContextSpec::default()
        };
        file.check_absent("a").expect("new");
        file.put("a", spec.clone());
        let err = file.check_absent("a").expect_err("exists");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(file.get("a"), Some(&spec));
        let mut updated = spec.clone();
        updated.update(ContextSpec {
            table: Some("T".into()),
            ..ContextSpec::default()
        });
        assert_eq!(updated.profile.as_deref(), Some("ops"));
        assert_eq!(updated.table.as_deref(), Some("T"));
        assert!(updated.unset(Setting::parse("profile").expect("key")));
        assert!(!updated.unset(Setting::Profile));
        assert_eq!(Setting::parse("api_id"), Some(Setting::ApiId));
        assert_eq!(Setting::parse("nope"), None);
    }

    #[test]
    fn a_wrong_type_names_its_position() {
        let dir = std::env::temp_dir().join(format!("wsadmin-context-pos-{}", std::process::id()));
        let path = dir.join("config.toml");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(&path, "current = 1\n").expect("write");
        let err = ConfigFile::load(&path).expect_err("invalid").to_string();
        assert!(
            err.starts_with(&format!(
                "config file {}: line 1, column 11: ",
                path.display()
            )),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
