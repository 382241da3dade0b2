//! Test fixtures over real processes and sockets, shared by every crate's
//! tests: [`dynalite::Dynalite`] (a real DynamoDB API on a free loopback
//! port, stopped on drop), [`moto::Moto`] (the AWS control plane, for API
//! Gateway v2) and [`standin::StandIn`] (a Management API server speaking
//! AWS's wire format, scripted per connection id).
//!
//! This crate depends on no crate of ours, so the types under test are never
//! duplicated.

pub mod child;
pub mod dynalite;
pub mod moto;
pub mod standin;

use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub const TEST_ACCESS_KEY_ID: &str = "AKIDLOCALTEST";
pub const TEST_SECRET_ACCESS_KEY: &str = "local-test-secret";
pub const TEST_REGION: &str = "us-east-1";

/// The workspace root (where `node_modules/` and `scripts/` live).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// SDK configuration with fixed test credentials and region, and DynamoDB at
/// `dynamodb_endpoint` when given. Nothing is read from the environment, so
/// no test can reach AWS.
pub fn sdk_config(dynamodb_endpoint: Option<&str>) -> SdkConfig {
    let mut b = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new(
                TEST_ACCESS_KEY_ID,
                TEST_SECRET_ACCESS_KEY,
                None,
                None,
                "test",
            ),
        ));
    if let Some(url) = dynamodb_endpoint {
        b = b.endpoint_url(url);
    }
    b.build()
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}
