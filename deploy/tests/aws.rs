//! `wsstack up`/`plan`/`status`/`down` (issue 10) against moto_server
//! (S3, STS, CloudFormation and what moto's CloudFormation creates), with
//! the real `wsstack` binary and zips the tests make themselves.
//!
//! What moto cannot show (ARCHITECTURE.md, deploy): its CloudFormation
//! skips `AWS::ApiGatewayV2::*` resources, and a stack made through a
//! change set has no outputs there (moto builds the outputs from the empty
//! template the stack starts with). So the context `up` saves here names
//! the table, stage and region but no endpoint, and `status` cannot probe
//! a Management endpoint; moto's drift detection answers 500, which
//! `status` reports as "drift: not available". The API's resources are
//! proven by cfn-lint (tests/template.rs) and by the local stack started
//! from the template.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aws_config::SdkConfig;
use serde_json::Value;
use wsadmin_core::context::ConfigFile;
use wsadmin_core::stack::{RouteSpec, StackSpec};
use wsadmin_core::{ConnectionStore, TableConfig};
use wsadmin_testkit::moto::Moto;

const WSSTACK: &str = env!("CARGO_BIN_EXE_wsstack");
const REGION: &str = "us-east-1";
/// moto's account.
const BUCKET: &str = "wsstack-artifacts-123456789012-us-east-1";
const HANDLERS: [&str; 4] = ["ws-connect", "ws-disconnect", "ws-default", "ws-message"];

/// `wsstack` with nothing inherited, HOME in `home`, and AWS (in REGION)
/// where nothing listens: for what must fail before it reaches AWS.
fn offline(home: &Path) -> Command {
    let mut cmd = Command::new(WSSTACK);
    cmd.env_clear()
        .env("HOME", home)
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", wsadmin_testkit::closed_port()),
        )
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    cmd
}

/// The default stack plus a `chat` route to ws-message, as a stack file.
fn extra_route_stack() -> String {
    let mut spec = StackSpec::default();
    spec.routes.push(RouteSpec::new("chat", "ws-message"));
    spec.to_toml()
}

/// moto, a temporary HOME (config file, zips) and the environment every
/// run gets: nothing inherited.
struct World {
    moto: Moto,
    dir: tempfile::TempDir,
}

impl World {
    fn start() -> Self {
        let world = Self {
            moto: Moto::start(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        write_zips(&world.artifacts(), "v1");
        world
    }

    fn artifacts(&self) -> PathBuf {
        self.dir.path().join("lambda")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WSSTACK);
        self.environment(&mut cmd).args(args);
        cmd
    }

    /// What every run sees: nothing inherited.
    fn environment<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("WSADMIN_CONFIG", self.config())
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
    }

    /// `wsstack ARGS` on a terminal (util-linux `script` gives it one),
    /// typing `input`; what the terminal showed and the exit code.
    fn on_terminal(&self, args: &[&str], input: &str) -> (String, Option<i32>) {
        use std::io::Write as _;
        let line = std::iter::once(WSSTACK)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("script");
        self.environment(&mut cmd)
            .env("PATH", "/usr/bin:/bin")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("script (util-linux) runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("type");
        let out = child.wait_with_output().expect("script ends");
        (stdout(&out), out.status.code())
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("wsstack runs")
    }

    /// `up` (or `plan`) of `stack_file` (default stack when `None`) from
    /// the test's zips.
    fn deploy(&self, verb: &str, stack_file: Option<&Path>, extra: &[&str]) -> Output {
        let artifacts = self.artifacts();
        let mut args = vec![
            verb,
            "--name",
            "demo",
            "--artifacts",
            artifacts.to_str().expect("utf-8 path"),
        ];
        if let Some(f) = stack_file {
            args.push("--stack");
            args.push(f.to_str().expect("utf-8 path"));
        }
        args.extend(extra);
        self.run(&args)
    }

    fn sdk(&self) -> SdkConfig {
        wsadmin_core::sdk::static_config_at(REGION, "testing", "testing", self.moto.endpoint())
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk())
                .force_path_style(true)
                .build(),
        )
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "wsstack failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Exit 1, stderr only one `wsstack: ` line naming `needle`, no panic.
#[track_caller]
fn fails_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    fails_after_progress_with(o, needle);
}

/// Exit 1; stderr's last line, the only `wsstack: ` one, names `needle`
/// (before it: what was uploaded, the stack's events); no panic.
#[track_caller]
fn fails_after_progress_with(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
    assert!(err.contains(needle), "stderr should name {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("wsstack: ") && last.contains(needle),
        "{err}"
    );
    assert_eq!(err.matches("wsstack: ").count(), 1, "{err}");
}

/// Four small zips (one stored file, `bootstrap`), `version` in each so a
/// new version has new hashes.
fn write_zips(dir: &Path, version: &str) {
    for h in HANDLERS {
        let d = dir.join(h);
        std::fs::create_dir_all(&d).expect("dir");
        let body = format!("#!/bin/sh\necho {h} {version}\n");
        std::fs::write(
            d.join("bootstrap.zip"),
            zip_one("bootstrap", body.as_bytes()),
        )
        .expect("zip");
    }
}

/// A zip archive holding one stored (uncompressed) file.
fn zip_one(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let n = name.len() as u16;
    let len = data.len() as u32;
    let mut z = Vec::new();
    let le16 = |z: &mut Vec<u8>, v: u16| z.extend_from_slice(&v.to_le_bytes());
    let le32 = |z: &mut Vec<u8>, v: u32| z.extend_from_slice(&v.to_le_bytes());
    // Local file header.
    le32(&mut z, 0x0403_4b50);
    for v in [20u16, 0, 0, 0, 0x21] {
        le16(&mut z, v); // version, flags, method (stored), time, date
    }
    le32(&mut z, crc);
    le32(&mut z, len);
    le32(&mut z, len);
    le16(&mut z, n);
    le16(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    // Central directory entry: the file is executable (unix mode 0755).
    le32(&mut z, 0x0201_4b50);
    for v in [0x031e_u16, 20, 0, 0, 0, 0x21] {
        le16(&mut z, v);
    }
    le32(&mut z, crc);
    le32(&mut z, len);
    le32(&mut z, len);
    for v in [n, 0, 0, 0, 0] {
        le16(&mut z, v);
    }
    le32(&mut z, 0o100_755 << 16);
    le32(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    let size = z.len() as u32 - central;
    // End of central directory.
    le32(&mut z, 0x0605_4b50);
    for v in [0u16, 0, 1, 1] {
        le16(&mut z, v);
    }
    le32(&mut z, size);
    le32(&mut z, central);
    le16(&mut z, 0);
    z
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The keys under `prefix` in `bucket`.
async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list objects");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// An IAM policy document as JSON. IAM answers it URL-encoded; moto keeps
/// a policy its CloudFormation made as a Python `repr` (single quotes).
fn policy_json(document: &str) -> Value {
    if document.starts_with("{'") {
        return serde_json::from_str(&document.replace('\'', "\"")).expect("policy repr");
    }
    serde_json::from_str(document).unwrap_or_else(|_| {
        let mut out = Vec::new();
        let bytes = document.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            } else {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
        serde_json::from_slice(&out).expect("policy JSON")
    })
}

/// A function's configuration as Lambda's JSON. moto answers the Ref of a
/// Number parameter in an environment variable as a number (AWS: a
/// string), which the SDK refuses to read: then the raw answer is read.
async fn function_configuration(lambda: &aws_sdk_lambda::Client, name: &str) -> Value {
    match lambda.get_function().function_name(name).send().await {
        Ok(f) => {
            let c = f.configuration().expect("configuration");
            serde_json::json!({
                "Runtime": c.runtime().map(|r| r.as_str()),
                "Handler": c.handler(),
                "Environment": {"Variables": c.environment().and_then(|e| e.variables())},
            })
        }
        Err(e) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .unwrap_or_else(|| panic!("function {name}: {e:?}"));
            let v: Value = serde_json::from_slice(body).expect("Lambda's JSON");
            v["Configuration"].clone()
        }
    }
}

/// The actions a role's inline policies allow, all policies together.
async fn role_actions(iam: &aws_sdk_iam::Client, role: &str) -> BTreeSet<String> {
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("list role policies");
    let mut actions = BTreeSet::new();
    for name in names.policy_names() {
        let p = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .expect("get role policy");
        let doc = policy_json(p.policy_document());
        for s in doc["Statement"].as_array().expect("statements") {
            // Scoped: the one log group, the table, the stage's connections.
            let resource = s["Resource"].as_str().expect("one resource");
            assert!(
                (!resource.contains('*') || resource.ends_with("/POST/@connections/*"))
                    && (resource.contains(":log-group:demo-")
                        || resource.ends_with(":table/WS_CONNECTIONS")
                        || resource.contains(":execute-api:")),
                "{role}: {resource}"
            );
            match &s["Action"] {
                Value::String(a) => {
                    actions.insert(a.clone());
                }
                Value::Array(a) => {
                    actions.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned)));
                }
                other => panic!("unexpected Action {other}"),
            }
        }
    }
    actions
}

/// Whether CloudFormation knows a stack of that name.
async fn stack_exists(cfn: &aws_sdk_cloudformation::Client, name: &str) -> bool {
    cfn.describe_stacks().stack_name(name).send().await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_plan_status_down_against_moto() {
    let w = World::start();
    let sdk = w.sdk();
    let s3 = w.s3();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);

    // Things that are not the stack's and must survive its `down`.
    ConnectionStore::from_conf(&w.sdk(), TableConfig::new("UNRELATED").with_key("id"))
        .create_table()
        .await
        .expect("unrelated table");
    s3.create_bucket()
        .bucket("unrelated-bucket")
        .send()
        .await
        .expect("unrelated bucket");
    s3.put_object()
        .bucket("unrelated-bucket")
        .key("keep.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"keep"))
        .send()
        .await
        .expect("unrelated object");

    // plan of a new stack: every resource to add, nothing made.
    let planned = ok(&w.deploy("plan", None, &[]));
    assert!(
        planned.contains("plan for stack \"demo\" (new):")
            && planned.contains("+ add      ConnectionsTable")
            && planned.contains("plan only: nothing was changed"),
        "{planned}"
    );
    assert!(
        !stack_exists(&cfn, "demo").await,
        "plan leaves no stack behind"
    );
    assert!(
        s3.head_bucket().bucket(BUCKET).send().await.is_err(),
        "plan creates no bucket"
    );

    // up on a terminal asks; "n" cancels: nothing uploaded, no stack.
    let artifacts = w.artifacts();
    let (screen, code) = w.on_terminal(
        &[
            "up",
            "--name",
            "demo",
            "--artifacts",
            artifacts.to_str().expect("utf-8"),
        ],
        "n\n",
    );
    assert_eq!(code, Some(1), "{screen}");
    assert!(
        screen.contains("deploy these changes to stack \"demo\"? [y/N]")
            && screen.contains("wsstack: cancelled: nothing was changed"),
        "{screen}"
    );
    assert!(!stack_exists(&cfn, "demo").await);
    assert!(s3.head_bucket().bucket(BUCKET).send().await.is_err());

    // up: uploads, creates and executes the change set, saves the context.
    let up = w.deploy("up", None, &["--yes"]);
    let out = ok(&up);
    let err = stderr(&up);
    assert!(
        err.contains(&format!("created the artifacts bucket {BUCKET}")),
        "{err}"
    );
    assert_eq!(err.matches("uploaded ").count(), 4, "{err}");
    assert!(out.contains("stack \"demo\" is CREATE_COMPLETE"), "{out}");
    assert!(out.contains("Table           WS_CONNECTIONS"), "{out}");
    assert!(out.contains("saved context \"demo\""), "{out}");
    let uploaded = keys(&s3, BUCKET, "wsstack/demo/").await;
    assert_eq!(uploaded.len(), 4, "{uploaded:?}");
    for h in HANDLERS {
        let body = format!("#!/bin/sh\necho {h} v1\n");
        let sha = wsadmin_deploy::artifacts::sha256_hex(&zip_one("bootstrap", body.as_bytes()));
        assert!(
            uploaded.contains(&format!("wsstack/demo/{h}/{sha}.zip")),
            "{h}: {uploaded:?}"
        );
    }
    // The bucket: encrypted, no public access.
    let enc = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket encryption");
    let rule = &enc
        .server_side_encryption_configuration()
        .expect("configuration")
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .expect("default")
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let block = s3
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .expect("public access block");
    let block = block.public_access_block_configuration().expect("block");
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    // The stack: tagged, and what it made, read back.
    let stack = cfn
        .describe_stacks()
        .stack_name("demo")
        .send()
        .await
        .expect("stack");
    let stack = &stack.stacks()[0];
    assert!(
        stack
            .tags()
            .iter()
            .any(|t| t.key() == Some("wsstack:managed") && t.value() == Some("true"))
    );
    let table = dynamodb
        .describe_table()
        .table_name("WS_CONNECTIONS")
        .send()
        .await
        .expect("the stack's table");
    let table = table.table().expect("table");
    let key = &table.key_schema()[0];
    assert_eq!(key.attribute_name(), "connectionId");
    assert_eq!(key.key_type().as_str(), "HASH");
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let resources = cfn
        .describe_stack_resources()
        .stack_name("demo")
        .send()
        .await
        .expect("resources");
    let physical = |logical: &str| -> String {
        resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("no {logical} in the stack"))
            .to_owned()
    };
    for (stem, table_env, actions) in [
        ("Connect", true, vec!["dynamodb:PutItem"]),
        ("Disconnect", true, vec!["dynamodb:DeleteItem"]),
        ("Default", false, vec![]),
        (
            "Message",
            true,
            vec![
                "dynamodb:DeleteItem",
                "dynamodb:Scan",
                "execute-api:ManageConnections",
            ],
        ),
    ] {
        let c = function_configuration(&lambda, &physical(&format!("{stem}Function"))).await;
        assert_eq!(c["Runtime"], "provided.al2023", "{stem}");
        assert_eq!(c["Handler"], "bootstrap", "{stem}");
        let vars = c["Environment"]["Variables"].clone();
        if table_env {
            assert_eq!(
                vars["CONNECTIONS_TABLE"], "WS_CONNECTIONS",
                "{stem}: {vars}"
            );
            assert_eq!(
                vars["CONNECTIONS_TABLE_KEY"], "connectionId",
                "{stem}: {vars}"
            );
        } else {
            assert!(
                vars.is_null() || vars == serde_json::json!({}),
                "{stem}: {vars}"
            );
        }
        let mut want: BTreeSet<String> = actions.into_iter().map(str::to_owned).collect();
        want.insert("logs:CreateLogStream".into());
        want.insert("logs:PutLogEvents".into());
        assert_eq!(
            role_actions(&iam, &physical(&format!("{stem}Role"))).await,
            want,
            "{stem}"
        );
    }

    // The saved context.
    let config = ConfigFile::load(&w.config()).expect("config file");
    let context = config.get("demo").expect("context demo");
    assert_eq!(context.table.as_deref(), Some("WS_CONNECTIONS"));
    assert_eq!(context.region.as_deref(), Some(REGION));
    assert_eq!(context.stage.as_deref(), Some("dev"));
    assert_eq!(config.current.as_deref(), Some("demo"));

    // A second up: no changes, nothing touched.
    let again = w.deploy("up", None, &["--yes"]);
    let out = ok(&again);
    assert!(out.contains("no changes: stack \"demo\""), "{out}");
    assert!(!stderr(&again).contains("upload"), "{}", stderr(&again));
    assert_eq!(keys(&s3, BUCKET, "wsstack/demo/").await, uploaded);

    // A new route: the plan shows exactly it (its route and permission;
    // the stage, which waits for every route).
    let extra = w.dir.path().join("extra.toml");
    std::fs::write(&extra, extra_route_stack()).expect("stack file");
    let planned = ok(&w.deploy("plan", Some(&extra), &[]));
    let lines: Vec<&str> = planned
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(
        lines,
        [
            "+ add      ChatPermission  AWS::Lambda::Permission",
            "+ add      ChatRoute       AWS::ApiGatewayV2::Route",
            "~ modify   Stage           AWS::ApiGatewayV2::Stage",
        ],
        "{planned}"
    );
    assert!(
        planned.contains("2 to add, 1 to modify, 0 to remove"),
        "{planned}"
    );
    // A cost setting reaches the change set: it is not "no changes". (AWS
    // lists the five log groups as modified; moto's change set diff skips
    // parameters, so its list is empty.)
    let planned = ok(&w.deploy("plan", None, &["--parameter", "LogRetentionInDays=30"]));
    assert!(
        planned.contains("plan for stack \"demo\": ") && !planned.contains("no changes"),
        "{planned}"
    );
    // plan changed nothing: the same description still has no changes.
    assert!(ok(&w.deploy("plan", None, &[])).contains("no changes"));

    // Deploying the new route: the zips are unchanged, so are the functions.
    let updated = w.deploy("up", Some(&extra), &["--yes"]);
    let out = ok(&updated);
    assert!(out.contains("stack \"demo\" is UPDATE_COMPLETE"), "{out}");
    assert_eq!(
        stderr(&updated).matches("unchanged ").count(),
        4,
        "{}",
        stderr(&updated)
    );
    assert_eq!(keys(&s3, BUCKET, "wsstack/demo/").await, uploaded);
    assert!(ok(&w.deploy("plan", Some(&extra), &[])).contains("no changes"));

    // status: what moto lets it know.
    let status = w.run(&["status", "--name", "demo"]);
    let out = ok(&status);
    assert!(out.contains("stack \"demo\" in us-east-1: "), "{out}");
    assert!(out.contains("drift: not available"), "{out}");
    assert!(
        out.lines().filter(|l| l.starts_with("verdict: ")).count() == 1,
        "{out}"
    );
    // Without --name: the only wsstack stack.
    assert!(ok(&w.run(&["status"])).contains("stack \"demo\""));

    // down: the stack, its artifacts and its context go; the rest stays.
    let down = w.run(&["down", "--name", "demo", "--yes"]);
    let out = ok(&down);
    assert!(out.contains("deleted stack \"demo\""), "{out}");
    assert!(out.contains("removed 4 artifacts"), "{out}");
    assert!(out.contains("removed context \"demo\""), "{out}");
    assert!(!stack_exists(&cfn, "demo").await);
    assert!(keys(&s3, BUCKET, "wsstack/demo/").await.is_empty());
    let config = ConfigFile::load(&w.config()).expect("config file");
    assert!(config.get("demo").is_none());
    let tables = dynamodb.list_tables().send().await.expect("tables");
    assert!(tables.table_names().contains(&"UNRELATED".to_owned()));
    assert!(!tables.table_names().contains(&"WS_CONNECTIONS".to_owned()));
    assert_eq!(
        keys(&s3, "unrelated-bucket", "").await,
        BTreeSet::from(["keep.txt".to_owned()])
    );

    // A second down: nothing to remove, success.
    let again = ok(&w.run(&["down", "--name", "demo", "--yes"]));
    assert!(again.contains("nothing to remove"), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_wsstack_did_not_make_is_refused() {
    let w = World::start();
    let cfn = aws_sdk_cloudformation::Client::new(&w.sdk());
    let template = serde_json::json!({
        "Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}
    });
    cfn.create_stack()
        .stack_name("demo")
        .template_body(template.to_string())
        .send()
        .await
        .expect("a foreign stack");

    fails_with(
        &w.run(&["down", "--name", "demo", "--yes"]),
        "stack \"demo\" in us-east-1 was not created by wsstack (no wsstack:managed=true tag)",
    );
    fails_with(
        &w.deploy("up", None, &["--yes"]),
        "was not created by wsstack",
    );
    let still = cfn
        .describe_stacks()
        .stack_name("demo")
        .send()
        .await
        .expect("the stack is still there");
    assert_eq!(
        still.stacks()[0].stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deploy_names_the_failure_and_the_stack_state() {
    // A table of the stack's name exists already. On AWS the execution
    // fails in the stack's events and rolls back; moto refuses the
    // execution itself and leaves the stack as it was.
    let w = World::start();
    ConnectionStore::from_conf(&w.sdk(), TableConfig::new("WS_CONNECTIONS").with_key("id"))
        .create_table()
        .await
        .expect("a table in the way");
    let failed = w.deploy("up", None, &["--yes"]);
    fails_after_progress_with(&failed, "deploy of stack \"demo\" failed: ");
    let err = stderr(&failed);
    assert!(
        err.contains("Table already exists: WS_CONNECTIONS") && err.contains("; the stack is "),
        "{err}"
    );
    assert!(
        ConfigFile::load(&w.config())
            .expect("config")
            .get("demo")
            .is_none(),
        "no context for a failed deploy"
    );
    // What is left can be removed.
    assert!(ok(&w.run(&["down", "--name", "demo", "--yes"])).contains("deleted stack \"demo\""));
}

#[test]
fn bad_inputs_are_one_clear_line() {
    // No AWS is reached by any of these; the endpoint is a closed port.
    let dir = tempfile::tempdir().expect("dir");
    let artifacts = dir.path().join("lambda");
    write_zips(&artifacts, "v1");
    let arts = artifacts.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        offline(dir.path())
            .env("WSADMIN_CONFIG", dir.path().join("config.toml"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(args)
            .output()
            .expect("wsstack runs")
    };

    let empty = dir.path().join("empty");
    let empty = empty.to_str().expect("utf-8");
    fails_with(
        &run(&["up", "--name", "demo", "--yes", "--artifacts", empty]),
        "missing packaged functions ws-connect, ws-disconnect, ws-default, ws-message",
    );
    // plan needs no zips: it goes on to AWS (here, nothing listening).
    fails_with(
        &run(&["plan", "--name", "demo", "--artifacts", empty]),
        "cloudformation:DescribeStacks on stack \"demo\" failed",
    );
    fails_with(
        &run(&["up", "--name", "2-bad_name", "--yes", "--artifacts", arts]),
        "invalid stack name \"2-bad_name\"",
    );
    fails_with(
        &run(&["down", "--name", "local", "--yes"]),
        "stack name \"local\" is taken",
    );
    fails_with(
        &run(&["up", "--name", "demo", "--artifacts", arts]),
        "up needs confirmation and standard input is not a terminal: pass --yes",
    );
    fails_with(
        &run(&["down", "--name", "demo"]),
        "down needs confirmation and standard input is not a terminal: pass --yes",
    );
    fails_with(
        &run(&[
            "up",
            "--name",
            "demo",
            "--yes",
            "--region",
            "useast1",
            "--artifacts",
            arts,
        ]),
        "invalid region \"useast1\": expected a region name like us-east-1",
    );
    fails_with(
        &run(&["status", "--name", "demo", "--region", "EU-WEST-1"]),
        "invalid region \"EU-WEST-1\"",
    );
    let stack_file = dir.path().join("bad.toml");
    std::fs::write(
        &stack_file,
        "[[routes]]\nkey = \"$connect\"\nhandler = \"ws-nope\"\n",
    )
    .expect("write");
    let bad = run(&[
        "plan",
        "--name",
        "demo",
        "--artifacts",
        arts,
        "--stack",
        stack_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(!stderr(&bad).contains("panicked"), "{}", stderr(&bad));

    let owned = run(&["plan", "--name", "demo", "--parameter", "CodeBucket=x"]);
    assert_eq!(owned.status.code(), Some(2), "{}", stderr(&owned));
    assert!(stderr(&owned).contains("CodeBucket is set by wsstack up itself"));

    // Nothing listening where AWS should be: one line naming the call.
    fails_with(
        &run(&["plan", "--name", "demo", "--artifacts", arts]),
        "cloudformation:DescribeStacks on stack \"demo\" failed",
    );
}

#[test]
fn missing_credentials_say_what_to_set() {
    let dir = tempfile::tempdir().expect("dir");
    let out = offline(dir.path())
        .args(["status", "--name", "demo"])
        .output()
        .expect("wsstack runs");
    fails_with(
        &out,
        "no AWS credentials found: set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
}

/// `wsstack ARGS` in the world, its standard output a pipe nobody reads.
fn into_closed_pipe(w: &World, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    w.command(args)
        .stdout(writer)
        .output()
        .expect("wsstack runs")
}

/// `plan` works before `wsstack package`: the zips' hashes are only
/// needed by `up`. Without them the plan says so in one line and uses the
/// deployed stack's code keys (else placeholders); `up` still refuses.
/// And plan, status and down into a closed pipe exit 0 quietly.
#[tokio::test(flavor = "multi_thread")]
async fn plan_works_before_package_and_outputs_meet_a_closed_pipe_quietly() {
    let w = World::start();
    let cfn = aws_sdk_cloudformation::Client::new(&w.sdk());
    let s3 = w.s3();
    let empty = w.dir.path().join("unpackaged");
    let empty = empty.to_str().expect("utf-8");
    let plan = ["plan", "--name", "demo", "--artifacts", empty];

    let planned = ok(&w.run(&plan));
    let first = planned.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "plan without the zips (not packaged under {empty}: ws-connect, ws-disconnect, ws-default, ws-message): the functions' code keys are placeholders; run `wsstack package` before `up`"
        ),
        "{planned}"
    );
    assert_eq!(planned.matches("wsstack package").count(), 1, "{planned}");
    assert!(
        planned.contains("plan for stack \"demo\" (new):")
            && planned.contains("+ add      ConnectionsTable")
            && planned.contains("plan only: nothing was changed"),
        "{planned}"
    );
    assert!(!stack_exists(&cfn, "demo").await, "plan leaves no stack");
    assert!(
        s3.head_bucket().bucket(BUCKET).send().await.is_err(),
        "plan creates no bucket"
    );
    // up needs the zips.
    fails_with(
        &w.run(&["up", "--name", "demo", "--yes", "--artifacts", empty]),
        "missing packaged functions ws-connect, ws-disconnect, ws-default, ws-message",
    );
    assert!(!stack_exists(&cfn, "demo").await);

    // Deployed: a plan without the zips keeps the deployed code.
    ok(&w.deploy("up", None, &["--yes"]));
    let planned = ok(&w.run(&plan));
    assert!(
        planned.starts_with("plan without the zips (")
            && planned
                .lines()
                .next()
                .is_some_and(|l| l.contains("the functions' code is shown as deployed")),
        "{planned}"
    );
    assert!(planned.contains("no changes"), "{planned}");

    for args in [
        plan.as_slice(),
        &[
            "plan",
            "--name",
            "demo",
            "--artifacts",
            empty,
            "--parameter",
            "LogRetentionInDays=30",
        ],
        &["status", "--name", "demo"],
        &["down", "--name", "demo", "--yes"],
    ] {
        let out = into_closed_pipe(&w, args);
        assert!(out.status.success(), "wsstack {args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            !err.contains("wsstack:") && !err.contains("panicked"),
            "wsstack {args:?}: {err}"
        );
    }
    assert!(!stack_exists(&cfn, "demo").await, "down ran to its end");
}
