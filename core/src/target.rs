//! A resolved deployment: the registry and the Management API of one stage.
//! How it is resolved (flags, environment, contexts) is the CLI's business;
//! everything that operates a deployment (commands, the dashboard) takes a
//! `Target`.

use crate::clock::Clock;
use crate::gateway::{Gateway, ManagementEndpoint};
use crate::record::TableConfig;
use crate::store::ConnectionStore;

#[derive(Debug, Clone)]
pub struct Target {
    /// The context it came from, if any (shown in headers and reports).
    pub context: Option<String>,
    pub region: String,
    pub store: ConnectionStore,
    pub gateway: Gateway,
}

impl Target {
    pub fn endpoint(&self) -> &ManagementEndpoint {
        self.gateway.endpoint()
    }

    pub fn table(&self) -> &TableConfig {
        self.store.table()
    }

    /// "Now" for everything done to this deployment: the gateway's clock,
    /// on AWS's time as its answers tell it.
    pub fn clock(&self) -> &Clock {
        self.gateway.clock()
    }
}
