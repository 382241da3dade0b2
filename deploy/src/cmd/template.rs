//! `wsstack template`: the stack's CloudFormation template, YAML or JSON,
//! to standard output or `--out FILE`.

use std::io::Write;

use anyhow::{Context as _, Result};
use wsadmin_core::TableConfig;

use crate::flags::{TemplateArgs, TemplateFormat};

pub fn run(args: TemplateArgs, w: &mut dyn Write) -> Result<()> {
    let stack = args.described.spec()?;
    let value = wsadmin_deploy::template::template(&stack, &TableConfig::new(&stack.table))
        .map_err(|e| match &args.described.stack {
            Some(path) => {
                anyhow::Error::new(e).context(format!("stack file \"{}\"", path.display()))
            }
            None => e.into(),
        })?;
    let text = match args.format {
        TemplateFormat::Yaml => wsadmin_deploy::yaml::to_yaml(&value),
        TemplateFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&value).context("writing the template as JSON")?;
            text.push('\n');
            text
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the template to \"{}\"", path.display())),
        None => {
            w.write_all(text.as_bytes())?;
            w.flush()?;
            Ok(())
        }
    }
}
