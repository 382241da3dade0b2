//! A real dynalite process on 127.0.0.1 and a port the OS picked.
//!
//! Started through `scripts/dynalite-server.js`, which exits when its stdin
//! closes: dropping the fixture stops it, and so does the test process dying
//! any other way. No fixed ports, nothing left running.

use std::process::Command;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

use crate::child::PortChild;

#[derive(Debug)]
pub struct Dynalite {
    child: PortChild,
}

impl Dynalite {
    /// Starts dynalite and waits until it listens. Panics with what to do
    /// when node or the pinned install is missing.
    pub fn start() -> Self {
        let root = crate::repo_root();
        let mut cmd = Command::new("node");
        cmd.arg(root.join("scripts").join("dynalite-server.js"))
            .current_dir(&root);
        Self {
            child: PortChild::spawn(cmd, "install Node.js 20, then run scripts/setup"),
        }
    }

    pub fn port(&self) -> u16 {
        self.child.port
    }

    pub fn endpoint(&self) -> String {
        self.child.endpoint()
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
