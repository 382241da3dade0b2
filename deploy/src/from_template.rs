//! The stack description read from a CloudFormation or SAM template, as
//! people write them (JSON, or YAML with `!Ref` short forms, flow
//! collections, block scalars, anchors), so `wsstack local --template
//! FILE` runs the template that goes to AWS: `wsstack template`'s, or one
//! written by hand or by SAM.
//!
//! Owns the reading, in three steps: [`yaml`] turns the text into a JSON
//! value and the line of every part of it; [`intrinsics`] evaluates
//! `Ref`, `Fn::Sub` and the others against the [`Inputs`] (region,
//! account, stack name, `--parameter`, `--code`); [`resources`] follows the
//! WebSocket API's routes to their integrations and functions, and reads
//! the stage, the table and the authorizers. What comes out is validated
//! like any description; an error names the resource, the property and
//! the line.
//!
//! It must not start anything or call AWS: [`stack_from_template`] is a
//! function over a value (it only asks whether a SAM `CodeUri` is a
//! directory); only [`load`] reads a file.

pub mod intrinsics;
pub mod resources;
pub mod yaml;

use std::path::{Path, PathBuf};

use wsadmin_core::TableConfig;
use wsadmin_core::stack::{StackError, StackSpec};

pub use intrinsics::{Inputs, LOCAL_ACCOUNT_ID, LOCAL_STACK_NAME};
pub use resources::Authorizer;
pub use yaml::{Document, YamlError};

use crate::template::HANDLER_METADATA;

/// What a template runs locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStack {
    pub stack: StackSpec,
    /// The WebSocket API's authorizers, read and checked; `stack`'s routes
    /// carry the ones in use (the local stack runs them).
    pub authorizers: Vec<Authorizer>,
}

#[derive(Debug, thiserror::Error)]
pub enum FromTemplateError {
    #[error("template file \"{}\": cannot read it: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("template file \"{}\" is not valid JSON: {error}", path.display())]
    NotJson {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("template file \"{}\" is not valid YAML: {error}", path.display())]
    NotYaml { path: PathBuf, error: YamlError },
    #[error("template file \"{}\": {error}", path.display())]
    File {
        path: PathBuf,
        error: Box<FromTemplateError>,
    },
    #[error(
        "not a CloudFormation template: it has no Resources (generate one with wsstack \
         template)"
    )]
    NotATemplate,
    #[error(
        "Transform {0} is not supported by the local stack (it reads plain CloudFormation and \
         SAM's AWS::Serverless-2016-10-31)"
    )]
    Transform(String),
    #[error("{flag} {name}: the template has no {what} \"{name}\"")]
    UnknownInput {
        flag: &'static str,
        name: String,
        what: &'static str,
    },
    #[error("no {what} in the template")]
    Missing { what: &'static str },
    #[error("{count} {what} resources in the template ({}); the local stack runs one", ids.join(", "))]
    Several {
        what: &'static str,
        count: usize,
        ids: Vec<String>,
    },
    /// A property that cannot be read or run locally, where it is.
    #[error(
        "resource \"{resource}\", property {property}{}: {problem}",
        .line.map(|l| format!(", line {l}")).unwrap_or_default()
    )]
    At {
        resource: String,
        property: String,
        line: Option<usize>,
        problem: String,
    },
    #[error(
        "function \"{id}\": handler \"{handler}\" is not one the local stack runs (use \
         ws-connect, ws-disconnect, ws-default or ws-message as {HANDLER_METADATA}, or leave \
         the metadata out to run the function's own code)"
    )]
    UnknownHandler { id: String, handler: String },
    #[error(
        "table \"{id}\": hash key \"{key}\" is not the one wsstack's handlers write ({})",
        TableConfig::DEFAULT_KEY
    )]
    TableKey { id: String, key: String },
    #[error(
        "{} tables (AWS::DynamoDB::Table: {}) and the routes' functions reference {} in their \
         Environment; the local stack runs one (reference the connection table from the \
         functions' Environment, or give the others a false Condition)",
        ids.len(),
        ids.join(", "),
        if referenced.is_empty() { "none".to_owned() } else { referenced.join(", ") }
    )]
    Tables {
        ids: Vec<String>,
        referenced: Vec<String>,
    },
    #[error(transparent)]
    Invalid(#[from] StackError),
}

/// Reads the template at `path`, YAML or JSON; every error names the file.
/// A SAM `CodeUri` is relative to the file's directory.
pub fn load(path: &Path, inputs: &Inputs) -> Result<TemplateStack, FromTemplateError> {
    let in_file = |error| FromTemplateError::File {
        path: path.to_owned(),
        error: Box::new(error),
    };
    let text = std::fs::read_to_string(path).map_err(|error| FromTemplateError::Read {
        path: path.to_owned(),
        error,
    })?;
    let doc = parse(&text).map_err(|e| match e {
        Parsed::Json(error) => FromTemplateError::NotJson {
            path: path.to_owned(),
            error,
        },
        Parsed::Yaml(error) => FromTemplateError::NotYaml {
            path: path.to_owned(),
            error,
        },
    })?;
    let base = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    stack_from_template(&doc, inputs, base).map_err(in_file)
}

/// Why a text is not a template's value.
#[derive(Debug)]
pub enum Parsed {
    /// Text that starts as JSON does, and that neither YAML nor JSON reads.
    Json(serde_json::Error),
    Yaml(YamlError),
}

/// A template's text as a value with lines. JSON is YAML, so both go
/// through the YAML parser; JSON it refuses (a tab YAML does not allow,
/// say) is read by serde_json, without lines.
pub fn parse(text: &str) -> Result<Document, Parsed> {
    match yaml::parse(text) {
        Ok(doc) => Ok(doc),
        Err(e) if text.trim_start().starts_with('{') => serde_json::from_str(text)
            .map(Document::from_value)
            .map_err(|json| {
                tracing::debug!("not YAML either: {e}");
                Parsed::Json(json)
            }),
        Err(e) => Err(Parsed::Yaml(e)),
    }
}

/// The stack a template describes, resolved against `inputs`; `base` is
/// the directory a SAM `CodeUri` is relative to.
pub fn stack_from_template(
    template: &Document,
    inputs: &Inputs,
    base: &Path,
) -> Result<TemplateStack, FromTemplateError> {
    resources::read(template, inputs, base)
}

/// `--parameter KEY=VALUE`: a template parameter's name (letters and
/// digits, as CloudFormation's) and its value.
pub fn parse_parameter(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, not {text:?}"))?;
    if !is_logical_id(key) {
        return Err(format!(
            "{key:?} is not a parameter name (letters and digits, e.g. Stage=dev)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `--code LOGICAL_ID=DIR`: a function's logical id and a directory.
pub fn parse_code(text: &str) -> Result<(String, PathBuf), String> {
    let (id, dir) = text
        .split_once('=')
        .ok_or_else(|| format!("expected LOGICAL_ID=DIR, not {text:?}"))?;
    if !is_logical_id(id) {
        return Err(format!(
            "{id:?} is not a logical id (letters and digits, e.g. EchoFunction=build/echo)"
        ));
    }
    if dir.is_empty() {
        return Err(format!("{id}= names no directory (e.g. {id}=build/echo)"));
    }
    Ok((id.to_owned(), PathBuf::from(dir)))
}

/// CloudFormation's rule for logical ids and parameter names.
fn is_logical_id(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;
