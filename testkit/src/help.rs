//! The examples a `--help` ends with, read back as command lines: both
//! binaries' tests run each one through their parser.

/// The argument lists (program name first) of every `program …` command in
/// the help's `Examples:` section: each pipeline's parts that run
/// `program`, before a comment or a redirection. `None`: no such section.
pub fn examples(help: &str, program: &str) -> Option<Vec<Vec<String>>> {
    let (_, section) = help.split_once("\nExamples:\n")?;
    let prefix = format!("{program} ");
    let mut runs = Vec::new();
    for example in section.lines().take_while(|l| l.starts_with("  ")) {
        let line = example.split(" # ").next().unwrap_or_default();
        for part in line.split(" | ") {
            let part = part.split(" > ").next().unwrap_or_default().trim();
            if part.starts_with(&prefix) {
                runs.push(words(part));
            }
        }
    }
    Some(runs)
}

/// Shell words, with '…' and "…" quoting (enough for examples).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut quoted = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                quoted = true;
            }
            (None, c) if c.is_whitespace() => {
                if quoted || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                quoted = false;
            }
            (None, c) => word.push(c),
        }
    }
    if quoted || !word.is_empty() {
        out.push(word);
    }
    out
}

/// `args` with `--help` where it still reads as a flag: before a `--`,
/// after which it would be a positional.
pub fn asking_help(mut args: Vec<String>) -> Vec<String> {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.insert(at, "--help".to_owned());
    args
}

#[cfg(test)]
mod tests {
    #[test]
    fn examples_read_back_as_argument_lists() {
        let help = "usage\n\nExamples:\n  x a 'b c' # note\n  echo hi | x d > f\n  y z\nafter\n";
        assert_eq!(
            super::examples(help, "x"),
            Some(vec![
                vec!["x".into(), "a".into(), "b c".into()],
                vec!["x".into(), "d".into()]
            ])
        );
        assert_eq!(super::examples("no section", "x"), None);
        assert_eq!(super::words(r#"a "" 'q r'"#), ["a", "", "q r"]);
        assert_eq!(
            super::asking_help(vec!["x".into(), "--".into(), "-id".into()]),
            ["x", "--help", "--", "-id"]
        );
    }
}
