//! `wsadmin context add|use|list|show|remove`: the contexts file. Offline:
//! nothing here makes a request.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::local::LocalStackInfo;

use crate::config::{ConfigFile, ContextSpec, LOCAL};
use crate::exit::{Status, usage};
use crate::flags::{ContextCommand, TargetArgs};
use crate::output::{Cell, Document, Item, Output, Row, escape, escape_lines, plain};

#[derive(Debug, Serialize)]
struct Listed<'a> {
    name: &'a str,
    current: bool,
    #[serde(flatten)]
    spec: &'a ContextSpec,
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
        ContextCommand::Add { name } => {
            ConfigFile::check_name(&name).map_err(usage)?;
            let spec = ContextSpec::from_flags(flags);
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
            let replaced = file.contexts.insert(name.clone(), spec).is_some();
            let made_current = file.current.is_none();
            if made_current {
                file.current = Some(name.clone());
            }
            file.save(&path)?;
            out.say(
                w,
                &format!(
                    "{} context {name:?} in {}{}",
                    if replaced { "replaced" } else { "added" },
                    path.display(),
                    if made_current { " (now current)" } else { "" }
                ),
            )?;
        }
        ContextCommand::Use { name } => {
            if name != LOCAL && file.get(&name).is_none() {
                return Err(file.unknown(&name));
            }
            file.current = Some(name.clone());
            file.save(&path)?;
            out.say(w, &format!("current context: {name}"))?;
        }
        ContextCommand::Remove { name } => {
            if file.contexts.remove(&name).is_none() {
                return Err(file.unknown(&name));
            }
            if file.current.as_deref() == Some(name.as_str()) {
                file.current = None;
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

impl Item for Listed<'_> {
    fn id(&self) -> Option<&str> {
        Some(self.name)
    }
}

impl Row for Listed<'_> {
    fn headers(_: &[Self]) -> Vec<&'static str> {
        vec!["CURRENT", "NAME", "ENDPOINT", "TABLE", "REGION"]
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
