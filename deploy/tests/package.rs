//! `wsstack package`: the real cargo-lambda build of the four handlers,
//! whose zipped `bootstrap` then answers an invocation through a Lambda
//! Runtime API (testkit's, on loopback), as Lambda would run it; and the
//! refusal when cargo-lambda is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wsadmin_testkit::runtime_api::{Answer, RuntimeApi};

const FUNCTIONS: [&str; 4] = ["ws-connect", "ws-disconnect", "ws-default", "ws-message"];

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the checkout holds deploy/")
        .to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Python's zipfile, which `scripts/setup` needs anyway: the names in the
/// zip with their Unix modes, after extracting it into `into`.
fn unzip(zip: &Path, into: &Path) -> Vec<(String, u32)> {
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  z.extractall(sys.argv[2])\n\
                  for i in z.infolist(): print(i.filename, i.external_attr >> 16)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(into)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (name, mode) = l.rsplit_once(' ').expect("name and mode");
            (name.to_owned(), mode.parse().expect("mode"))
        })
        .collect()
}

#[tokio::test]
#[ignore = "a clean release build with zig takes 15 min on the 2-core machine (BENCHMARKS.md); \
            run it with: cargo test -p wsadmin-deploy --test suite -- --ignored package::"]
async fn package_builds_four_bootstrap_zips_and_the_zipped_bootstrap_answers_lambda() {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = tokio::task::spawn_blocking({
        let out_dir = out_dir.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_wsstack"))
                .current_dir(checkout())
                .args(["package", "--arch", "x86_64", "--out"])
                .arg(out_dir)
                .stdin(Stdio::null())
                .output()
                .expect("wsstack package runs")
        }
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", stderr(&out));

    // One line per function: its name, its size, where it is.
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    for (line, function) in lines.iter().zip(FUNCTIONS) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], function, "{listing}");
        assert!(["KiB", "MiB"].contains(&fields[2]), "a size: {listing}");
        let copied = out_dir.path().join(function).join("bootstrap.zip");
        assert_eq!(Path::new(fields[3]), copied, "{listing}");
        // Where a deploy reads it by default, and the copy --out asked for.
        let built = checkout()
            .join("target/lambda")
            .join(function)
            .join("bootstrap.zip");
        let size = |p: &Path| std::fs::metadata(p).expect("zip exists").len();
        assert_eq!(size(&built), size(&copied), "{function}");
    }

    let unpacked = tempfile::tempdir().expect("temp dir");
    let zip = out_dir.path().join("ws-default/bootstrap.zip");
    let entries = unzip(&zip, unpacked.path());
    assert_eq!(entries.len(), 1, "only the bootstrap: {entries:?}");
    let (name, mode) = &entries[0];
    assert_eq!(name, "bootstrap");
    assert_eq!(mode & 0o111, 0o111, "executable in the zip: {mode:o}");
    let bootstrap = unpacked.path().join("bootstrap");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }

    // The environment Lambda gives a function, and nothing of this machine's.
    let mut api = RuntimeApi::start().await;
    let mut function = Command::new(&bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "ws-default")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ws-default")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the zipped bootstrap runs");
    let fixture = checkout().join("handlers/tests/fixtures/default-not-json.json");
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("JSON");
    event["body"] = serde_json::json!("Marko?");
    let id = api.invoke(&event);
    let answer = api.answer(Duration::from_secs(20)).await;
    let _ = function.kill();
    let _ = function.wait();
    match answer {
        Some(Answer::Response { request_id, body }) => {
            assert_eq!(request_id, id);
            let response: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(response["statusCode"], 200, "{body}");
            assert_eq!(response["body"], "Polo!", "{body}");
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn without_cargo_lambda_it_says_how_to_install_it() {
    // Outside any checkout (so no .venv to find it in), with a PATH that
    // has no cargo-lambda.
    let home = tempfile::tempdir().expect("temp dir");
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let wsstack = bin.join("wsstack");
    std::fs::copy(env!("CARGO_BIN_EXE_wsstack"), &wsstack).expect("copy wsstack");
    let out = Command::new(&wsstack)
        .current_dir(home.path())
        .env("PATH", &bin)
        .args(["package"])
        .stdin(Stdio::null())
        .output()
        .expect("wsstack runs");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "wsstack: cargo-lambda not found on PATH (run scripts/setup, or pip install \
         cargo-lambda)\n"
    );
}

#[test]
fn an_unknown_architecture_is_refused_with_the_known_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsstack"))
        .args(["package", "--arch", "sparc"])
        .output()
        .expect("wsstack runs");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown architecture \"sparc\" (use x86_64 or arm64)"),
        "{}",
        stderr(&out)
    );
}
