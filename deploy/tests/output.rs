//! What `wsstack` writes, seen from outside: every output-producing command
//! into a closed pipe (`wsstack template | head -c1`) exits 0 and says
//! nothing; `completions` and `man` come from the one clap definition; a
//! file is written with `--out FILE`, and `-o` (in `wsadmin`, the output
//! format) is refused saying so.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const WSSTACK: &str = env!("CARGO_BIN_EXE_wsstack");

fn wsstack() -> Command {
    let mut cmd = Command::new(WSSTACK);
    cmd.env_remove("RUST_LOG")
        .env_remove("WSSTACK_PORT")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    wsstack().args(args).output().expect("wsstack runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `wsstack ARGS` whose standard output is a pipe nobody reads any more.
fn into_closed_pipe(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    cmd.stdout(writer).output().expect("wsstack runs")
}

#[test]
fn every_output_into_a_closed_pipe_exits_quietly() {
    let commands: &[&[&str]] = &[
        &["template"],
        &["template", "--format", "json"],
        &["policy"],
        &[
            "policy",
            "--region",
            "eu-west-1",
            "--account",
            "123456789012",
        ],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["completions", "powershell"],
        &["completions", "elvish"],
        &["man"],
        &["--help"],
        &["local", "--help"],
        &["--version"],
    ];
    for args in commands {
        let out = into_closed_pipe(wsstack().args(*args));
        assert!(
            out.status.success(),
            "wsstack {args:?}: {:?}: {}",
            out.status,
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "wsstack {args:?} says nothing");
    }
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definition() {
    let out = run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    assert!(script.contains("_wsstack()"), "{script}");
    for word in ["local", "template", "plan", "completions", "--out"] {
        assert!(script.contains(word), "bash completion knows {word}");
    }
    let out = run(&["completions", "zsh"]);
    assert!(out.status.success() && text(&out.stdout).starts_with("#compdef wsstack"));

    let out = run(&["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH wsstack 1"), "{page}");
    assert!(
        page.contains("wsstack\\-local"),
        "subcommands listed: {page}"
    );

    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("[possible values: bash"));
}

#[test]
fn template_writes_a_file_with_out_and_refuses_dash_o_saying_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("stack.yaml");
    let file_arg = file.to_str().expect("utf-8 path");

    let out = run(&["template", "--out", file_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the template went to the file");
    let written = std::fs::read_to_string(&file).expect("written");
    assert!(written.contains("AWSTemplateFormatVersion"), "{written}");
    std::fs::remove_file(&file).expect("removed");

    for args in [
        ["template", "-o", file_arg].as_slice(),
        &["template", &format!("-o{file_arg}")],
        &["template", "--format", "json", "-o", file_arg],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(
            err.lines().next(),
            Some(
                "error: wsstack has no -o: write to a file with --out FILE (in wsadmin, -o is the output format)"
            ),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert!(!file.exists(), "{args:?} wrote nothing");
    }
    // The long name is not `wsadmin`'s --output either.
    let out = run(&["template", "--output", file_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a similar argument exists: '--out'"));
}

/// Waits for `child` to exit, at most `bound`.
fn exited(child: &mut std::process::Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn wait_for_file(path: &Path, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if path.is_file() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `wsstack local | head -3`: its banner meets a closed pipe. The banner
/// is informational; the stack runs on (its state file is what tools
/// read), serves, and stops cleanly on SIGTERM, with no panic.
#[test]
fn local_runs_on_when_its_banner_meets_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("local-stack.json");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut child = wsstack()
        .env("WSADMIN_LOCAL_STATE", &state)
        .args(["local", "--port", "0", "--dynamodb-port", "0"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsstack local starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let said = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    assert!(
        wait_for_file(&state, Duration::from_secs(60)),
        "the stack wrote its state file"
    );
    let info = wsadmin_core::local::LocalStackInfo::read(&state).expect("state file");
    let port = info
        .websocket_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("host:port")
        .to_owned();
    // Still there after the banner was written (or not) and still serving.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still running"
    );
    std::net::TcpStream::connect(&port).expect("the stack accepts connections");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = exited(&mut child, Duration::from_secs(15)).expect("stops on SIGTERM");
    let err = said.join().expect("stderr");
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(!state.exists(), "its entry is removed on stop");
}

/// Every subcommand's help ends with examples of its common uses, each a
/// command line the parser accepts.
#[test]
fn every_subcommand_shows_examples_that_parse() {
    use wsadmin_testkit::help::{asking_help, examples};
    for command in [
        "local",
        "template",
        "policy",
        "package",
        "up",
        "plan",
        "status",
        "down",
        "completions",
        "man",
    ] {
        let out = run(&[command, "--help"]);
        let help = text(&out.stdout);
        assert!(out.status.success(), "{command} --help: {help}");
        let runs = examples(&help, "wsstack")
            .unwrap_or_else(|| panic!("{command} --help has examples: {help}"));
        assert!(runs.len() >= 2, "{command}: {runs:?}");
        for args in runs {
            let out = wsstack()
                .args(&asking_help(args.clone())[1..])
                .output()
                .expect("wsstack runs");
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        }
    }
}
