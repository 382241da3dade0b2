//! `wsadmin registry detect|show` and `wsadmin context add NAME --detect`:
//! how the table holds its connections. Detection samples the table
//! (DescribeTable, DescribeTimeToLive, a bounded Scan) and proposes a
//! mapping with the evidence for each choice ([`wsadmin_core::detect`]);
//! it writes nothing, and `context add --detect` saves it only once agreed.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use wsadmin_core::ConnectionStore;
use wsadmin_core::detect::{self, Proposal};
use wsadmin_core::registry::Mapping;
use wsadmin_core::store::Ttl;

use crate::config::{ConfigFile, ContextSpec};
use crate::deployment::Deployment;
use crate::exit::{Status, usage};
use crate::flags::{RegistryCommand, TargetArgs};
use crate::output::{Document, Output, escape};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Detected<'a> {
    table: &'a str,
    sampled: usize,
    connections: usize,
    #[serde(serialize_with = "camel_case_mapping")]
    mapping: &'a Mapping,
    evidence: &'a [String],
}

impl Document for Detected<'_> {
    fn text(&self, _out: &Output, w: &mut dyn Write) -> Result<()> {
        writeln!(
            w,
            "table {}: {} of {} sampled items are connections",
            escape(self.table),
            self.connections,
            self.sampled
        )?;
        for line in self.evidence {
            writeln!(w, "  - {}", escape(line))?;
        }
        writeln!(w, "mapping:")?;
        write_mapping(w, self.mapping)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    table: &'a str,
    ours: bool,
    #[serde(serialize_with = "camel_case_mapping")]
    mapping: &'a Mapping,
}

/// The mapping as JSON: camelCase keys, as every JSON key of ours (the
/// contexts file, TOML, keeps kebab-case).
pub(crate) fn camel_case_mapping<S: serde::Serializer>(
    mapping: &&Mapping,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    fn camel(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let mut key = String::with_capacity(k.len());
                    let mut upper = false;
                    for c in k.chars() {
                        if c == '-' {
                            upper = true;
                        } else if upper {
                            key.extend(c.to_uppercase());
                            upper = false;
                        } else {
                            key.push(c);
                        }
                    }
                    (key, camel(v))
                })
                .collect(),
            serde_json::Value::Array(items) => items.into_iter().map(camel).collect(),
            other => other,
        }
    }
    camel(serde_json::to_value(mapping).map_err(serde::ser::Error::custom)?).serialize(s)
}

impl Document for Shown<'_> {
    fn text(&self, _out: &Output, w: &mut dyn Write) -> Result<()> {
        writeln!(
            w,
            "table {}{}",
            escape(self.table),
            if self.ours {
                " (wsadmin's own schema)"
            } else {
                ""
            }
        )?;
        write_mapping(w, self.mapping)
    }
}

/// The mapping as the contexts file holds it (TOML), indented.
fn write_mapping(w: &mut dyn Write, mapping: &Mapping) -> Result<()> {
    let text = toml::to_string(mapping)?;
    for line in text.lines() {
        writeln!(w, "  {}", escape(line))?;
    }
    Ok(())
}

/// Detects the mapping of the deployment's table.
pub async fn detect(dep: &Deployment, sample: u32) -> Result<Proposal> {
    detect_in(&dep.target.store, sample).await
}

/// [`detect`] on a store.
pub async fn detect_in(store: &ConnectionStore, sample: u32) -> Result<Proposal> {
    let keys = store.keys().await?.clone();
    let ttl = match store.describe_ttl().await {
        Ok(Ttl::Described {
            status,
            attribute: Some(a),
        }) if status == "ENABLED" || status == "ENABLING" => Some(a),
        _ => None,
    };
    let items = store.sample(sample as usize).await?;
    Ok(detect::propose(
        &store.table().name,
        &keys,
        ttl.as_deref(),
        &items,
    )?)
}

pub async fn run(
    dep: &Deployment,
    cmd: RegistryCommand,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    let table = &dep.target.store.table().name;
    match cmd {
        RegistryCommand::Detect { sample } => {
            let p = detect(dep, sample).await?;
            out.document(
                w,
                &Detected {
                    table,
                    sampled: p.sampled,
                    connections: p.connections,
                    mapping: &p.mapping,
                    evidence: &p.evidence,
                },
            )?;
        }
        RegistryCommand::Show => {
            let mapping = &dep.target.store.table().mapping;
            out.document(
                w,
                &Shown {
                    table,
                    ours: mapping.is_ours(),
                    mapping,
                },
            )?;
        }
    }
    w.flush()?;
    Ok(Status::Ok)
}

/// `context add NAME --detect`: the flags' context plus the detected
/// mapping, shown, agreed, saved.
pub async fn add_detected(
    name: &str,
    force: bool,
    sample: u32,
    yes: bool,
    flags: &TargetArgs,
    out: &Output,
    w: &mut dyn Write,
) -> Result<Status> {
    if flags.registry.registry_id.is_some() {
        return Err(usage(
            "--detect proposes the mapping: give it without --registry-id (or save the --registry-* flags without --detect)",
        ));
    }
    ConfigFile::check_name(name).map_err(usage)?;
    let path = ConfigFile::path()?;
    let mut file = ConfigFile::load(&path)?;
    if !force {
        file.check_absent(name)?;
    }
    let mut spec = ContextSpec::from_flags(flags);
    super::context::check_target(name, &spec)?;
    let dep = crate::deployment::select(flags)?.connect().await?;
    let p = detect(&dep, sample).await?;
    let table = dep.target.store.table().name.clone();
    // Shown on stderr when asking (stdout may be a pipe), else as the
    // document.
    let shown = Detected {
        table: &table,
        sampled: p.sampled,
        connections: p.connections,
        mapping: &p.mapping,
        evidence: &p.evidence,
    };
    if yes {
        out.document(w, &shown)?;
    } else {
        let mut err = std::io::stderr().lock();
        shown.text(out, &mut err)?;
    }
    let what = format!("save context {name:?} with this mapping of table {table:?}");
    crate::confirm::confirm(yes, &what, async { Ok(p.connections as u64) }).await?;
    spec.registry = (!p.mapping.is_ours()).then(|| p.mapping.clone());
    super::context::add(&mut file, &path, name, spec, out, w)?;
    w.flush()?;
    Ok(Status::Ok)
}
