//! Instances over their lives: warm reuse, a cold start per concurrent
//! invocation (and waiting at the bound), `REPORT` lines, handler errors,
//! init failures and retries, timeouts, exits, a missing interpreter, and
//! stopping or dropping the host with no process left behind.

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, code, gone, json, spec, start, start_with};
use wsadmin_lambda::InvokeFailure;

/// A Node function that answers its pid after `event.ms` milliseconds,
/// with when it started and ended.
const SLOW_PID: &str = r#"
exports.handler = async (event) => {
  const start = Date.now();
  console.log(`pid ${process.pid}`);
  await new Promise((r) => setTimeout(r, event.ms || 0));
  return { pid: process.pid, start, end: Date.now() };
};
"#;

fn pid(answer: &str) -> u32 {
    json(answer)["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .expect("a pid")
}

#[tokio::test]
async fn a_warm_instance_is_reused_and_only_the_cold_start_reports_init() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let mut fx = start(vec![spec("pid", "nodejs20.x", "index.handler", dir.path())]).await;
    assert_eq!(fx.host.stats("pid").expect("stats").instances, 0);
    let first = pid(&fx.host.invoke("pid", "{}".into()).await.expect("first"));
    let second = pid(&fx.host.invoke("pid", "{}".into()).await.expect("second"));
    assert_eq!(first, second, "the warm instance is reused");
    let stats = fx.host.stats("pid").expect("stats");
    assert_eq!(
        (
            stats.instances,
            stats.busy,
            stats.cold_starts,
            stats.invocations
        ),
        (1, 0, 1, 2)
    );
    let cold = fx.logs.wait_for("[pid] REPORT RequestId: ").await;
    assert!(cold.contains("\tInit Duration: "), "{cold}");
    assert!(cold.contains("\tBilled Duration: "), "{cold}");
    let used: u32 = cold
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("Max Memory Used");
    assert!(used > 5, "node uses more than 5 MB: {cold}");
    // The second REPORT: wait for two, then look at the last.
    let mut reports = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while reports.len() < 2 && Instant::now() < deadline {
        reports = fx
            .logs
            .drain()
            .iter()
            .filter(|l| l.contains("REPORT RequestId"))
            .cloned()
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(!reports[1].contains("Init Duration"), "{}", reports[1]);
    fx.host.stop().await;
}

#[tokio::test]
async fn concurrent_invocations_cold_start_an_instance_each_and_run_in_parallel() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let fx = start(vec![spec("pid", "nodejs20.x", "index.handler", dir.path())]).await;
    let (a, b) = tokio::join!(
        fx.host.invoke("pid", r#"{"ms":400}"#.into()),
        fx.host.invoke("pid", r#"{"ms":400}"#.into()),
    );
    let (a, b) = (json(&a.expect("a")), json(&b.expect("b")));
    assert_ne!(a["pid"], b["pid"], "two instances");
    let span = |v: &serde_json::Value| {
        (
            v["start"].as_u64().unwrap_or(0),
            v["end"].as_u64().unwrap_or(0),
        )
    };
    let ((a0, a1), (b0, b1)) = (span(&a), span(&b));
    assert!(a0 < b1 && b0 < a1, "they ran in parallel: {a} {b}");
    assert_eq!(fx.host.stats("pid").expect("stats").cold_starts, 2);
    fx.host.stop().await;
}

/// A burst's extra instances are stopped once idle past the timeout; the
/// most recently used one stays warm, so the next invocation has no cold
/// start.
#[tokio::test]
async fn instances_idle_past_the_timeout_are_stopped_but_the_last_stays_warm() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let fx = start_with(
        vec![spec("pid", "nodejs20.x", "index.handler", dir.path())],
        |c| c.idle_instance_timeout = Duration::from_millis(300),
    )
    .await;
    let burst = [r#"{"ms":300}"#, r#"{"ms":300}"#, r#"{"ms":300}"#];
    let answers = futures_join3(&fx, burst).await;
    let pids: std::collections::HashSet<String> =
        answers.iter().map(|a| a["pid"].to_string()).collect();
    assert_eq!(pids.len(), 3, "three instances for the burst");
    assert_eq!(fx.host.stats("pid").expect("stats").instances, 3);
    let mut instances = 3;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        instances = fx.host.stats("pid").expect("stats").instances;
        if instances == 1 {
            break;
        }
    }
    assert_eq!(instances, 1, "the burst's extra instances were stopped");
    let warm = json(
        &fx.host
            .invoke("pid", r#"{"ms":0}"#.into())
            .await
            .expect("warm"),
    );
    assert!(
        pids.contains(&warm["pid"].to_string()),
        "a burst instance answered"
    );
    assert_eq!(
        fx.host.stats("pid").expect("stats").cold_starts,
        3,
        "no new cold start"
    );
    fx.host.stop().await;
}

async fn futures_join3(fx: &Fixture, events: [&str; 3]) -> Vec<serde_json::Value> {
    let (a, b, c) = tokio::join!(
        fx.host.invoke("pid", events[0].into()),
        fx.host.invoke("pid", events[1].into()),
        fx.host.invoke("pid", events[2].into()),
    );
    [a, b, c]
        .into_iter()
        .map(|r| json(&r.expect("answer")))
        .collect()
}

#[tokio::test]
async fn beyond_the_instance_bound_an_invocation_waits_and_its_deadline_starts_when_it_runs() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let mut f = spec("pid", "nodejs20.x", "index.handler", dir.path());
    f.timeout_seconds = 1;
    let fx = start_with(vec![f], |c| c.max_instances_per_function = 1).await;
    // Each takes 700 ms of a 1 s timeout: the second would time out if its
    // deadline counted from when it was asked for.
    let (a, b) = tokio::join!(
        fx.host.invoke("pid", r#"{"ms":700}"#.into()),
        fx.host.invoke("pid", r#"{"ms":700}"#.into()),
    );
    let (a, b) = (json(&a.expect("a")), json(&b.expect("b")));
    assert_eq!(a["pid"], b["pid"], "one instance");
    let (a0, a1, b0, b1) = (
        a["start"].as_u64().unwrap_or(0),
        a["end"].as_u64().unwrap_or(0),
        b["start"].as_u64().unwrap_or(0),
        b["end"].as_u64().unwrap_or(0),
    );
    assert!(a1 <= b0 || b1 <= a0, "one after the other: {a} {b}");
    assert_eq!(fx.host.stats("pid").expect("stats").cold_starts, 1);
    fx.host.stop().await;
}

#[tokio::test]
async fn a_throwing_handler_fails_with_its_error_type_and_message_and_stays_warm() {
    let node = code(&[(
        "index.js",
        r#"
        class ValidationError extends Error {
          constructor(m) { super(m); this.name = "ValidationError"; }
        }
        exports.handler = async (event) => {
          if (event.fail) throw new ValidationError("bad input: " + event.fail);
          return { pid: process.pid };
        };
        "#,
    )]);
    let py = code(&[(
        "index.py",
        "def handler(event, context):\n    raise KeyError('missing ' + event['what'])\n",
    )]);
    let mut fx = start(vec![
        spec("node", "nodejs20.x", "index.handler", node.path()),
        spec("py", "python3.11", "index.handler", py.path()),
    ])
    .await;
    let before = pid(&fx.host.invoke("node", "{}".into()).await.expect("ok"));
    let e = fx
        .host
        .invoke("node", r#"{"fail":"x"}"#.into())
        .await
        .unwrap_err();
    let (error_type, message, stack_trace) = function_error(&e);
    assert_eq!(e.function(), "node");
    assert_eq!(error_type, "ValidationError");
    assert_eq!(message, "bad input: x");
    assert!(
        stack_trace.iter().any(|l| l.contains("index.js")),
        "{stack_trace:?}"
    );
    assert_eq!(
        e.to_string(),
        "function \"node\" failed: ValidationError: bad input: x"
    );
    let after = pid(&fx.host.invoke("node", "{}".into()).await.expect("ok"));
    assert_eq!(before, after, "a handled error keeps the instance");
    fx.logs.wait_for("[node] ERROR\tInvoke Error").await;

    let e = fx
        .host
        .invoke("py", r#"{"what":"key"}"#.into())
        .await
        .unwrap_err();
    let (error_type, message, stack_trace) = function_error(&e);
    assert_eq!(error_type, "KeyError");
    assert_eq!(message, "'missing key'");
    assert!(
        stack_trace.iter().any(|l| l.contains("index.py")),
        "{stack_trace:?}"
    );
    fx.logs
        .wait_for("[py] [ERROR] KeyError: 'missing key'")
        .await;
    fx.host.stop().await;
}

#[tokio::test]
async fn an_init_failure_fails_its_invocation_and_the_next_one_retries_init() {
    // Throws during init the first time only (a marker file remembers).
    let flaky = code(&[(
        "index.js",
        r#"
        const fs = require("fs");
        const marker = process.env.MARKER;
        if (!fs.existsSync(marker)) {
          fs.writeFileSync(marker, "1");
          throw new Error("init boom");
        }
        exports.handler = async () => ({ ok: true });
        "#,
    )]);
    let mut f = spec("flaky", "nodejs20.x", "index.handler", flaky.path());
    f.environment.insert(
        "MARKER".into(),
        flaky.path().join("marker").display().to_string(),
    );
    let py = code(&[("index.py", "def handler(e, c):\n    return 1\n")]);
    let plain = code(&[("index.js", "exports.handler = async () => 1;")]);
    let exits = code(&[("bootstrap", "#!/bin/sh\necho about to fail\nexit 3\n")]);
    std::fs::set_permissions(
        exits.path().join("bootstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut fx = start(vec![
        f,
        spec("nomodule", "python3.11", "nope.handler", py.path()),
        spec("nohandler", "nodejs20.x", "index.missing", plain.path()),
        spec("exits", "provided.al2023", "", exits.path()),
        spec("nobootstrap", "provided.al2023", "", py.path()),
    ])
    .await;

    let e = fx.host.invoke("flaky", "{}".into()).await.unwrap_err();
    assert_eq!(
        e,
        InvokeFailure::Init {
            function: "flaky".into(),
            error_type: "Error".into(),
            message: "init boom".into(),
        }
    );
    assert_eq!(
        fx.host.invoke("flaky", "{}".into()).await.expect("retried"),
        r#"{"ok":true}"#
    );
    assert_eq!(fx.host.stats("flaky").expect("stats").cold_starts, 2);
    fx.logs.wait_for("[flaky] ERROR\tUncaught Exception").await;

    let e = fx.host.invoke("nomodule", "{}".into()).await.unwrap_err();
    assert!(
        matches!(&e, InvokeFailure::Init { error_type, message, .. }
            if error_type == "Runtime.ImportModuleError" && message.contains("Unable to import module 'nope'")),
        "{e:?}"
    );
    let e = fx.host.invoke("nohandler", "{}".into()).await.unwrap_err();
    assert!(
        matches!(&e, InvokeFailure::Init { error_type, .. } if error_type == "Runtime.HandlerNotFound"),
        "{e:?}"
    );
    let e = fx.host.invoke("exits", "{}".into()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "function \"exits\" failed to start: Runtime.ExitError: Runtime exited with error: exit status 3"
    );
    fx.logs.wait_for("[exits] about to fail").await;
    let e = fx
        .host
        .invoke("nobootstrap", "{}".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, InvokeFailure::Init { error_type, message, .. }
            if error_type == "Runtime.InvalidEntrypoint" && message.ends_with("bootstrap does not exist (build it into the code directory)")),
        "{e:?}"
    );
    fx.host.stop().await;
}

#[tokio::test]
async fn a_function_past_its_timeout_is_killed_and_the_next_invocation_gets_a_fresh_instance() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let mut f = spec("slow", "nodejs20.x", "index.handler", dir.path());
    f.timeout_seconds = 1;
    let mut fx = start(vec![f]).await;
    let t = Instant::now();
    let e = fx
        .host
        .invoke("slow", r#"{"ms":30000}"#.into())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        InvokeFailure::Timeout {
            function: "slow".into(),
            seconds: 1
        }
    );
    assert!(
        e.to_string().contains("Task timed out after 1.00 seconds"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let line = fx.logs.wait_for("[slow] pid ").await;
    let old: u32 = line
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid");
    assert!(gone(old).await, "the timed-out instance {old} is killed");
    fx.logs.wait_for("Task timed out after 1.00 seconds").await;
    let new = pid(&fx.host.invoke("slow", "{}".into()).await.expect("fresh"));
    assert_ne!(old, new);
    assert_eq!(fx.host.stats("slow").expect("stats").cold_starts, 2);
    fx.host.stop().await;
}

#[tokio::test]
async fn a_runtime_exiting_mid_invocation_fails_it_as_lambda_says() {
    let dir = code(&[(
        "index.js",
        "exports.handler = async () => { console.log('bye'); process.exit(1); };",
    )]);
    let fx = start(vec![spec(
        "dies",
        "nodejs20.x",
        "index.handler",
        dir.path(),
    )])
    .await;
    let e = fx.host.invoke("dies", "{}".into()).await.unwrap_err();
    assert_eq!(
        e,
        InvokeFailure::RuntimeExited {
            function: "dies".into(),
            status: "exit status 1".into()
        }
    );
    assert!(
        e.to_string()
            .contains("Runtime exited with error: exit status 1"),
        "{e}"
    );
    fx.host.stop().await;
}

#[tokio::test]
async fn a_missing_interpreter_fails_only_its_functions_and_says_what_to_install() {
    let py = code(&[("index.py", "def handler(e, c):\n    return 1\n")]);
    let node = code(&[("index.js", SLOW_PID)]);
    let mut fx = start_with(
        vec![
            spec("py", "python3.12", "index.handler", py.path()),
            spec("py2", "python3.11", "index.handler", py.path()),
            spec("node", "nodejs22.x", "index.handler", node.path()),
        ],
        |c| c.python = "/nonexistent/python3".into(),
    )
    .await;
    let expected =
        "/nonexistent/python3 was not found: install Python 3.12 (/nonexistent/python3) to run it";
    let line = fx.logs.wait_for("function \"py\" (python3.12)").await;
    assert_eq!(line, format!("function \"py\" (python3.12): {expected}"));
    let warning = fx.logs.wait_for("function \"node\" (nodejs22.x)").await;
    assert!(
        warning.contains("node is Node.js 20.") && warning.ends_with("not 22; running it anyway"),
        "{warning}"
    );
    let e = fx.host.invoke("py", "{}".into()).await.unwrap_err();
    assert_eq!(
        e,
        InvokeFailure::Unavailable {
            function: "py".into(),
            reason: expected.into()
        }
    );
    assert!(fx.host.invoke("py2", "{}".into()).await.is_err());
    fx.host
        .invoke("node", "{}".into())
        .await
        .expect("node still runs");
    let about_py = fx
        .logs
        .drain()
        .iter()
        .filter(|l| l.starts_with("function \"py\""))
        .count();
    assert_eq!(about_py, 1, "one line, not one per invocation");
    fx.host.stop().await;
}

#[tokio::test]
async fn unknown_functions_and_events_that_are_not_json_are_refused() {
    let dir = code(&[("index.js", SLOW_PID)]);
    let fx = start(vec![spec("pid", "nodejs20.x", "index.handler", dir.path())]).await;
    let e = fx.host.invoke("nope", "{}".into()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "no function named \"nope\" (the host runs: pid)"
    );
    let e = fx.host.invoke("pid", "{nope".into()).await.unwrap_err();
    assert!(matches!(e, InvokeFailure::InvalidEvent { .. }), "{e:?}");
    assert_eq!(fx.host.stats("pid").expect("stats").cold_starts, 0);
}

/// A function that starts a grandchild and answers both pids.
const FORKS: &str = r#"
const { spawn } = require("child_process");
exports.handler = async (event) => {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  console.log(`pids ${process.pid} ${child.pid}`);
  if (event.ms) await new Promise((r) => setTimeout(r, event.ms));
  return { pid: process.pid, child: child.pid };
};
"#;

fn pids(answer: &str) -> [u32; 2] {
    let v = json(answer);
    let n = |k: &str| {
        v[k].as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .expect("a pid")
    };
    [n("pid"), n("child")]
}

#[tokio::test]
async fn stop_kills_every_instance_and_its_children_idle_or_busy() {
    let dir = code(&[("index.js", FORKS)]);
    let fx = start(vec![spec(
        "forks",
        "nodejs20.x",
        "index.handler",
        dir.path(),
    )])
    .await;
    let (a, b) = tokio::join!(
        fx.host.invoke("forks", r#"{"ms":200}"#.into()),
        fx.host.invoke("forks", r#"{"ms":200}"#.into()),
    );
    let mut all: Vec<u32> = [a.expect("a"), b.expect("b")]
        .iter()
        .flat_map(|a| pids(a))
        .collect();
    // One more, busy while the host stops.
    let host = fx.host.clone();
    let busy = tokio::spawn(async move { host.invoke("forks", r#"{"ms":30000}"#.into()).await });
    let mut fx = fx;
    // Its `pids` line says its grandchild has started.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = fx
            .logs
            .drain()
            .iter()
            .filter_map(|l| l.strip_prefix("[forks] pids "))
            .map(str::to_owned)
            .collect();
        if lines.len() == 3 {
            for pid in lines
                .iter()
                .flat_map(|l| l.split(' ').filter_map(|n| n.parse().ok()))
            {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the busy invocation did not start: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        all.len(),
        5,
        "two instances and three grandchildren: {all:?}"
    );
    assert_eq!(fx.host.stats("forks").expect("stats").busy, 1);
    for pid in &all {
        assert!(common::alive(*pid), "{pid} runs before stop");
    }
    fx.host.stop().await;
    let e = busy.await.expect("joined").unwrap_err();
    assert_eq!(
        e,
        InvokeFailure::Stopped {
            function: "forks".into()
        }
    );
    for pid in all {
        assert!(gone(pid).await, "{pid} survived stop");
    }
    let e = fx.host.invoke("forks", "{}".into()).await.unwrap_err();
    assert!(matches!(e, InvokeFailure::Stopped { .. }), "{e:?}");
}

#[tokio::test]
async fn dropping_the_host_kills_its_instances() {
    let dir = code(&[("index.js", FORKS)]);
    let fx = start(vec![spec(
        "forks",
        "nodejs20.x",
        "index.handler",
        dir.path(),
    )])
    .await;
    let [pid, child] = pids(&fx.host.invoke("forks", "{}".into()).await.expect("ok"));
    assert!(common::alive(pid) && common::alive(child));
    drop(fx.host);
    assert!(gone(pid).await, "instance {pid} survived the drop");
    assert!(gone(child).await, "its child {child} survived the drop");
}

/// The type, message and stack of a function's own error (any other
/// failure fails the test).
fn function_error(e: &InvokeFailure) -> (&str, &str, &[String]) {
    match e {
        InvokeFailure::Function {
            error_type,
            message,
            stack_trace,
            ..
        } => (error_type, message, stack_trace),
        other => panic!("{other:?}"),
    }
}
