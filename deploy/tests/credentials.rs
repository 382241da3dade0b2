//! `wsstack` loads AWS configuration through core's one loader, as
//! `wsadmin` does: the same one-line diagnosis (an undefined profile is
//! named, a bad region is refused), and no credential-chain `WARN` lines
//! before it. Nothing here reaches AWS: every failure is found locally.

use std::process::{Command, Output, Stdio};

const WSSTACK: &str = env!("CARGO_BIN_EXE_wsstack");

fn wsstack(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(WSSTACK);
    cmd.env_clear()
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", home.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials"))
        // Anything that did reach for the network would fail fast here.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("wsstack runs")
}

#[test]
fn the_same_diagnosis_as_wsadmin_in_one_line() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join("aws-config"),
        "[profile ops]\nregion = eu-west-1\n",
    )
    .expect("config");
    for (env, args, needle) in [
        (
            &[("AWS_PROFILE", "nope"), ("AWS_REGION", "us-east-1")][..],
            &["status", "--name", "demo"][..],
            "AWS profile \"nope\" is not defined in the AWS config files",
        ),
        (
            &[("AWS_REGION", "us-east-1")],
            &["status", "--name", "demo", "--profile", "nope"],
            "AWS profile \"nope\" is not defined",
        ),
        (
            &[("AWS_REGION", "us-east-1")],
            &["status", "--name", "demo"],
            "no AWS credentials found: set AWS_PROFILE (or --profile)",
        ),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
            &["status", "--name", "demo"],
            "no AWS region: set --region or AWS_REGION",
        ),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
            &["status", "--name", "demo", "--region", "EU-WEST-1"],
            "invalid region \"EU-WEST-1\"",
        ),
    ] {
        let out = wsstack(home.path(), env, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, no WARN: {err}");
        assert!(err.starts_with("wsstack: "), "{err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} in {err}");
    }
}
