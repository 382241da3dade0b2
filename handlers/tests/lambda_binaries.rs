//! The four Lambda binaries, run as Lambda runs them: a real process
//! polling a Lambda Runtime API (testkit's, on loopback) for events.
//! Built only with the `lambda` feature (`scripts/test` runs it).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use wsadmin_testkit::runtime_api::{Answer, RuntimeApi};

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// `bin` in the environment Lambda gives a function, plus `vars`, and
/// nothing else of this machine's.
fn lambda(bin: &str, api: &RuntimeApi, vars: &[(&str, &str)]) -> Child {
    let name = Path::new(bin)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    Command::new(bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Lambda binary runs")
}

#[tokio::test]
async fn ws_default_answers_with_no_configuration_at_all() {
    let mut api = RuntimeApi::start().await;
    let mut function = lambda(env!("CARGO_BIN_EXE_ws-default"), &api, &[]);
    for (body, want) in [("Marko?", "Polo!"), ("hello", "Marko?")] {
        let mut event = fixture("default-not-json");
        event["body"] = serde_json::json!(body);
        let id = api.invoke(&event);
        match api.answer(Duration::from_secs(10)).await {
            Some(Answer::Response { request_id, body }) => {
                assert_eq!(request_id, id);
                let response: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                assert_eq!(response["statusCode"], 200, "{body}");
                assert_eq!(response["body"], want, "{body}");
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }
    let _ = function.kill();
    let _ = function.wait();
}

#[tokio::test]
async fn a_function_missing_its_table_says_which_variable_and_exits() {
    let api = RuntimeApi::start().await;
    for bin in [
        env!("CARGO_BIN_EXE_ws-connect"),
        env!("CARGO_BIN_EXE_ws-disconnect"),
        env!("CARGO_BIN_EXE_ws-message"),
    ] {
        let function = lambda(bin, &api, &[]);
        let out = tokio::task::spawn_blocking(move || function.wait_with_output())
            .await
            .expect("join")
            .expect("exits");
        assert!(!out.status.success(), "{bin} started without a table");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("CONNECTIONS_TABLE"), "{bin}: {err}");
        assert!(!err.contains("panicked"), "{bin}: {err}");
    }
}
