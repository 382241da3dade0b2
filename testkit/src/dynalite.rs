//! A real dynalite process on 127.0.0.1 and a port the OS picked.
//!
//! Started through `scripts/dynalite-server.js`, which exits when its stdin
//! closes: dropping the fixture stops it, and so does the test process dying
//! any other way. No fixed ports, nothing left running.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

#[derive(Debug)]
pub struct Dynalite {
    child: Child,
    /// Held open: its closing tells the server to exit.
    _stdin: ChildStdin,
    port: u16,
}

impl Dynalite {
    /// Starts dynalite and waits until it listens. Panics with what to do
    /// when node or the pinned install is missing.
    pub fn start() -> Self {
        let root = crate::repo_root();
        let script = root.join("scripts").join("dynalite-server.js");
        let mut child = Command::new("node")
            .arg(&script)
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run node {}: {e} (install Node.js 20)",
                    script.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = read
            .ok()
            .and_then(|_| serde_json::from_str::<serde_json::Value>(&line).ok())
            .and_then(|v| v["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok());
        match port {
            Some(port) => Self {
                child,
                _stdin: stdin,
                port,
            },
            None => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "dynalite did not start (status {status:?}, said {line:?}): run scripts/setup to install it"
                )
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Test SDK configuration pointing DynamoDB here.
    pub fn sdk_config(&self) -> SdkConfig {
        crate::sdk_config(Some(&self.endpoint()))
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    /// Creates a table with a string hash key, as the stack does.
    pub async fn create_table(&self, name: &str, key: &str) {
        self.client()
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
