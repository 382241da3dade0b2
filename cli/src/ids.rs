//! Connection ids as users type them: positional ids (after `--` when one
//! starts with `-`, as about 2% of API Gateway's do), and `-`, which reads
//! ids from standard input one per line (`wsadmin list -o ids | wsadmin
//! disconnect - --yes`). Every id is checked before any request; a bad one
//! is a usage error naming it. Also the hint for an id that clap took for a
//! flag.

use std::io::BufRead;

use anyhow::{Context as _, Result};
use wsadmin_core::record::{issued_by_api_gateway, validate_connection_id};

use crate::exit::usage;

/// The ids of the command line, `-` replaced by the lines of `stdin`
/// (blank lines skipped), every one validated, each once (in the order
/// first given: `list -o ids` of a registry with an item per room
/// repeats a connection, and a pipe into `send` must not message it
/// twice). Empty is a usage error.
pub fn gather(args: &[String], stdin: &mut dyn BufRead) -> Result<Vec<String>> {
    let dashes = args.iter().filter(|a| *a == "-").count();
    if dashes > 1 {
        return Err(usage("`-` (ids from standard input) can be given once"));
    }
    let mut ids = Vec::with_capacity(args.len());
    for arg in args {
        if arg != "-" {
            validate_connection_id(arg).map_err(usage)?;
            ids.push(arg.clone());
            continue;
        }
        let before = ids.len();
        let mut line = String::new();
        let mut number = 0usize;
        loop {
            line.clear();
            let read = stdin
                .read_line(&mut line)
                .context("cannot read connection ids from standard input")?;
            if read == 0 {
                break;
            }
            number += 1;
            let id = line.trim();
            if id.is_empty() {
                continue;
            }
            validate_connection_id(id)
                .map_err(|e| usage(format!("{e} (line {number} of standard input)")))?;
            ids.push(id.to_owned());
        }
        if ids.len() == before {
            return Err(usage(
                "no connection id on standard input (`-` reads one per line)",
            ));
        }
    }
    if ids.is_empty() {
        return Err(usage("no connection id given"));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.retain(|id| seen.insert(id.clone()));
    Ok(ids)
}

/// Whether `-` (ids from standard input) is among the ids given.
pub fn reads_stdin(args: &[String]) -> bool {
    args.iter().any(|a| a == "-")
}

/// The sentence for an argument before `--` that looks like a connection
/// id starting with `-` (`-L0SM9cOFvHcCIh=`), which clap takes for a flag:
/// checked before clap parses (`-V…` would print the version and exit 0,
/// `-h…` the help), `--…` ones only once clap refused them (`--registry-meta=`
/// has the same shape).
pub fn dash_hint(args: impl IntoIterator<Item = String>, long_too: bool) -> Option<String> {
    let args: Vec<String> = args.into_iter().take_while(|a| a != "--").collect();
    let id = args
        .iter()
        .find(|a| looks_like_dashed_id(a) && (long_too || !a.starts_with("--")))?;
    let command = args
        .iter()
        .find(|a| matches!(a.as_str(), "inspect" | "send" | "disconnect"))
        .map_or("disconnect", String::as_str);
    Some(format!(
        "unexpected argument '{id}': a connection id starting with '-' goes after `--` \
         (wsadmin {command} [OPTIONS] -- {id}) or on standard input, one per line, with `-`"
    ))
}

/// API Gateway's id shape with a leading `-`.
fn looks_like_dashed_id(arg: &str) -> bool {
    arg.starts_with('-') && issued_by_api_gateway(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn dash_reads_ids_one_per_line_skipping_blank_ones() {
        let mut input: &[u8] = b"AAAA=\n\n  -BBB=  \r\nCCC=";
        let ids = gather(&strings(&["X=", "-"]), &mut input).expect("ids");
        assert_eq!(ids, ["X=", "AAAA=", "-BBB=", "CCC="]);
    }

    #[test]
    fn an_id_given_twice_is_acted_on_once() {
        let mut input: &[u8] = b"B=\nA=\nB=\nC=\n";
        let ids = gather(&strings(&["A=", "-", "C="]), &mut input).expect("ids");
        assert_eq!(ids, ["A=", "B=", "C="]);
    }

    #[test]
    fn a_bad_id_is_a_usage_error_naming_it() {
        let mut input: &[u8] = b"AAAA=\nbad/id\n";
        let e = gather(&strings(&["-"]), &mut input).expect_err("bad id");
        assert!(crate::exit::is_usage(&e));
        let text = e.to_string();
        assert!(
            text.contains("\"bad/id\"") && text.contains("line 2"),
            "{text}"
        );

        let mut none: &[u8] = b"\n\n";
        let e = gather(&strings(&["-"]), &mut none).expect_err("empty");
        assert!(e.to_string().contains("no connection id on standard input"));
        let e = gather(&strings(&["-", "-"]), &mut none).expect_err("twice");
        assert!(crate::exit::is_usage(&e));
        let e = gather(&strings(&["a b"]), &mut none).expect_err("space");
        assert!(e.to_string().contains("\"a b\""), "{e}");
    }

    #[test]
    fn an_id_taken_for_a_flag_gets_a_hint() {
        let hint = dash_hint(
            strings(&["wsadmin", "send", "-L0SM9cOFvHcCIh=", "--data", "x"]),
            false,
        )
        .expect("hint");
        assert!(
            hint.contains("wsadmin send [OPTIONS] -- -L0SM9cOFvHcCIh="),
            "{hint}"
        );
        // Ids clap would take for -V (the version) or -h (the help).
        for id in ["-VHk2mNq8sT0bXw=", "-hHk2mNq8sT0bXw="] {
            let hint = dash_hint(strings(&["wsadmin", "inspect", id]), false);
            assert!(hint.is_some_and(|h| h.contains(id)), "{id}");
        }
        // After `--` it is an id.
        let after = strings(&["wsadmin", "inspect", "--", "-VHk2mNq8sT0bXw="]);
        assert_eq!(dash_hint(after, true), None);
        assert_eq!(
            dash_hint(strings(&["wsadmin", "list", "--bogus"]), true),
            None
        );
        assert_eq!(
            dash_hint(strings(&["wsadmin", "send", "--data="]), true),
            None
        );
        // A long flag of the shape (16 characters ending in `=`) is left to
        // clap; an id starting with `--` is named once clap refused it.
        let long = strings(&["wsadmin", "list", "--registry-meta="]);
        assert_eq!(dash_hint(long, false), None);
        let id = strings(&["wsadmin", "inspect", "--0SM9cOFvHcCIh="]);
        assert_eq!(dash_hint(id.clone(), false), None);
        assert!(dash_hint(id, true).is_some());
    }
}
