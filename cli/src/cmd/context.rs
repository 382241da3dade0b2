//! `wsadmin context add|set|use|list|show|remove`: the contexts file.
//! Offline: nothing here makes a request. `add` never replaces a context
//! unless told (`--force`); `set` changes only the settings given; the
//! built-in `local` can be used and shown, never added, set or removed.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::local::LocalStackInfo;

use crate::config::{ConfigFile, ContextSpec, LOCAL};
use crate::exit::{Status, usage};
use crate::flags::{ContextCommand, TargetArgs};
use crate::output::{Cell, Document, Fit, Item, Output, Row, escape, escape_lines, plain};

#[derive(Debug, Serialize)]
struct Listed<'a> {
    name: &'a str,
    current: bool,
    /// camelCase as every JSON key of ours (the TOML file is kebab-case).
    #[serde(flatten, serialize_with = "camel_case_spec")]
    spec: &'a ContextSpec,
}

/// A context's fields as JSON: `apiId`, `tableKey`, `dynamodbEndpoint`.
fn camel_case_spec<S: serde::Serializer>(
    spec: &&ContextSpec,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Json<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        api_id: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table_key: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        profile: &'a Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dynamodb_endpoint: &'a Option<String>,
        /// How the table holds its connections; absent: our own schema.
        #[serde(skip_serializing_if = "Option::is_none")]
        registry: Option<Registry<'a>>,
    }
    #[derive(Serialize)]
    struct Registry<'a>(
        #[serde(serialize_with = "super::registry::camel_case_mapping")]
        &'a wsadmin_core::registry::Mapping,
    );
    Json {
        endpoint: &spec.endpoint,
        api_id: &spec.api_id,
        stage: &spec.stage,
        table: &spec.table,
        table_key: &spec.table_key,
        region: &spec.region,
        profile: &spec.profile,
        dynamodb_endpoint: &spec.dynamodb_endpoint,
        registry: spec.registry.as_ref().map(Registry),
    }
    .serialize(s)
}

pub fn run(
    cmd: ContextCommand,
    flags: &TargetArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let path = ConfigFile::path()?;
    let mut file = ConfigFile::load(&path)?;
    match cmd {
        ContextCommand::Add { detect: true, .. } => {
            unreachable!("`context add --detect` is dispatched to cmd::registry")
        }
        ContextCommand::Add { name, force, .. } => {
            ConfigFile::check_name(&name).map_err(usage)?;
            let spec = ContextSpec::from_flags(flags);
            if !force {
                // Said first: the flags given may be meant for `set`.
                file.check_absent(&name)?;
            }
            check_target(&name, &spec)?;
            add(&mut file, &path, &name, spec, out, w)?;
        }
        ContextCommand::Set { name, unset } => {
            if name == LOCAL {
                return Err(usage(ConfigFile::BUILTIN_SET));
            }
            let given = ContextSpec::from_flags(flags);
            if given.is_empty() && unset.is_empty() {
                return Err(usage(format!(
                    "nothing to change: give the settings to change, e.g. wsadmin context set {name} --table NAME (or --unset SETTING)"
                )));
            }
            let mut spec = file
                .get(&name)
                .cloned()
                .ok_or_else(|| file.unknown(&name))?;
            for setting in &unset {
                spec.unset(*setting);
            }
            spec.update(given);
            check_target(&name, &spec)?;
            file.put(&name, spec);
            file.save(&path)?;
            out.say(
                w,
                &format!("updated context {name:?} in {}", path.display()),
            )?;
        }
        ContextCommand::Use { name } => {
            if name != LOCAL && file.get(&name).is_none() {
                return Err(file.unknown(&name).into());
            }
            file.current = Some(name.clone());
            file.save(&path)?;
            out.say(w, &format!("current context: {name}"))?;
        }
        ContextCommand::Remove { name } => {
            if name == LOCAL {
                return Err(usage(ConfigFile::BUILTIN_REMOVE));
            }
            if !file.remove(&name) {
                return Err(file.unknown(&name).into());
            }
            file.save(&path)?;
            out.say(w, &format!("removed context {name:?}"))?;
        }
        ContextCommand::List => {
            let local = ContextSpec {
                endpoint: Some("(from a running `wsstack local`)".into()),
                ..ContextSpec::default()
            };
            let current = file.current.as_deref();
            let mut all: Vec<Listed> = file
                .contexts
                .iter()
                .map(|(name, spec)| Listed {
                    name,
                    current: current == Some(name.as_str()),
                    spec,
                })
                .collect();
            all.push(Listed {
                name: LOCAL,
                current: current == Some(LOCAL),
                spec: &local,
            });
            out.rows(w, &all)?;
        }
        ContextCommand::Show { name } => {
            let name = match name.or_else(|| file.current.clone()) {
                Some(n) => n,
                None => {
                    anyhow::bail!(
                        "no current context: name one, or pick one with `wsadmin context use NAME`"
                    )
                }
            };
            let spec = if name == LOCAL {
                let info = LocalStackInfo::read(&LocalStackInfo::default_path())?;
                ContextSpec {
                    endpoint: Some(info.management_endpoint),
                    table: Some(info.table),
                    region: Some(info.region),
                    dynamodb_endpoint: Some(info.dynamodb_endpoint),
                    ..ContextSpec::default()
                }
            } else {
                file.get(&name)
                    .cloned()
                    .ok_or_else(|| file.unknown(&name))?
            };
            let shown = Listed {
                name: &name,
                current: file.current.as_deref() == Some(name.as_str()),
                spec: &spec,
            };
            out.document(w, &shown)?;
        }
    }
    w.flush()?;
    Ok(Status::Ok)
}

/// Saves `spec` as `name` (an existing one replaced: the caller checked
/// `--force`) and says so; the first context becomes the current one.
pub(crate) fn add(
    file: &mut ConfigFile,
    path: &std::path::Path,
    name: &str,
    spec: ContextSpec,
    out: &Output,
    w: &mut dyn Write,
) -> Result<()> {
    let made_current = file.current.is_none();
    let replaced = file.put(name, spec);
    file.save(path)?;
    out.say(
        w,
        &format!(
            "{} context {name:?} in {}{}",
            if replaced { "replaced" } else { "added" },
            path.display(),
            if made_current { " (now current)" } else { "" }
        ),
    )
}

/// A context must say where the deployment is: an endpoint (well formed),
/// or an API id with its stage.
pub(crate) fn check_target(name: &str, spec: &ContextSpec) -> Result<()> {
    match (&spec.endpoint, &spec.api_id, &spec.stage) {
        (Some(url), _, _) => {
            wsadmin_core::ManagementEndpoint::parse(url).map_err(usage)?;
        }
        (None, Some(_), Some(_)) => {}
        (None, Some(_), None) => return Err(usage("--api-id needs --stage NAME")),
        (None, None, _) => {
            return Err(usage(format!(
                "a context needs a target: wsadmin context add {name} --endpoint URL --table NAME (or --api-id ID --stage NAME)"
            )));
        }
    }
    Ok(())
}

impl Item for Listed<'_> {
    fn id(&self) -> Option<&str> {
        Some(self.name)
    }
}

impl Row for Listed<'_> {
    fn headers(_: &[Self]) -> Vec<&'static str> {
        vec!["CURRENT", "NAME", "ENDPOINT", "TABLE", "REGION"]
    }

    fn fit(header: &str) -> Fit {
        Fit::shrink_only(header, "ENDPOINT", 24)
    }

    fn cells(&self) -> Vec<Cell> {
        let spec = self.spec;
        let target = spec
            .endpoint
            .clone()
            .or_else(|| {
                spec.api_id
                    .as_ref()
                    .map(|id| format!("api {id} stage {}", spec.stage.as_deref().unwrap_or("?")))
            })
            .unwrap_or_else(|| "-".into());
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        vec![
            plain(if self.current { "*" } else { "" }),
            plain(self.name),
            plain(target),
            plain(dash(&spec.table)),
            plain(dash(&spec.region)),
        ]
    }
}

/// `context show`: the context as its TOML reads.
impl Document for Listed<'_> {
    /// One line, as it always was.
    const PRETTY_JSON: bool = false;

    fn text(&self, _: &Output, w: &mut dyn Write) -> Result<()> {
        writeln!(w, "# context {}", escape(self.name))?;
        write!(w, "{}", escape_lines(&toml::to_string(self.spec)?))?;
        Ok(())
    }
}
