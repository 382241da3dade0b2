//! moto, the AWS control-plane stand-in (API Gateway v2 here), on
//! 127.0.0.1 and a port the OS picked, from the project's `.venv`
//! (`scripts/setup` creates it). Stopped on drop; nothing left running.

use std::process::Command;

use crate::child::PortChild;

#[derive(Debug)]
pub struct Moto {
    child: PortChild,
}

impl Moto {
    pub fn start() -> Self {
        let root = crate::repo_root();
        let mut cmd = Command::new(root.join(".venv").join("bin").join("python"));
        cmd.arg(root.join("scripts").join("moto-server.py"))
            .current_dir(&root);
        Self {
            child: PortChild::spawn(cmd, "run scripts/setup (it installs moto into .venv)"),
        }
    }

    pub fn endpoint(&self) -> String {
        self.child.endpoint()
    }
}
