//! Every subcommand's help ends with examples of its most common uses, as
//! kubectl's and the AWS CLI's do, and each example is a command line that
//! parses (its flags exist and its values are valid).

mod support;

use support::wsadmin_in;

const COMMANDS: [&str; 14] = [
    "list",
    "inspect",
    "send",
    "broadcast",
    "disconnect",
    "prune",
    "stats",
    "status",
    "tui",
    "connect",
    "events",
    "context",
    "completions",
    "man",
];

/// Shell words, with '…' and "…" quoting (enough for the examples).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn every_subcommand_shows_examples_that_parse() {
    let dir = tempfile::tempdir().expect("dir");
    for command in COMMANDS {
        let out = wsadmin_in(dir.path())
            .args([command, "--help"])
            .output()
            .expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help: {help}");
        let examples: Vec<&str> = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{command} --help has examples: {help}"))
            .1
            .lines()
            .take_while(|l| l.starts_with("  "))
            .collect();
        assert!(examples.len() >= 2, "{command}: {examples:?}");
        for example in examples {
            // The wsadmin part of each pipeline, before a comment or a
            // redirection.
            let line = example.split(" # ").next().unwrap_or_default();
            let runs: Vec<&str> = line
                .split(" | ")
                .map(|part| part.split(" > ").next().unwrap_or_default().trim())
                .filter(|part| part.starts_with("wsadmin "))
                .collect();
            assert!(
                runs.iter()
                    .any(|run| words(run).contains(&command.to_owned())),
                "{command}: {example}"
            );
            for run in runs {
                let mut args = words(run);
                // Before a `--`, after which it would be an id.
                let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
                args.insert(at, "--help".to_owned());
                let out = wsadmin_in(dir.path())
                    .args(&args[1..])
                    .output()
                    .expect("runs");
                assert!(
                    out.status.success(),
                    "{run}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
