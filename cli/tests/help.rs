//! Every subcommand's help ends with examples of its most common uses, as
//! kubectl's and the AWS CLI's do, and each example is a command line that
//! parses (its flags exist and its values are valid).

use crate::support;

use support::wsadmin_in;
use wsadmin_testkit::help::{asking_help, examples};

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
        let runs = examples(&help, "wsadmin")
            .unwrap_or_else(|| panic!("{command} --help has examples: {help}"));
        assert!(runs.len() >= 2, "{command}: {runs:?}");
        assert!(
            runs.iter().any(|args| args.contains(&command.to_owned())),
            "{command}: {runs:?}"
        );
        for args in runs {
            let out = wsadmin_in(dir.path())
                .args(&asking_help(args.clone())[1..])
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
