//! Private Kafka and ClickHouse servers for fault-injection tests: the same deploy/local scripts
//! as the shared stack, on free ports and a temporary state directory, so a test can stop and
//! start its own server without disturbing other tests.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateServer {
    script: &'static str,
    state: tempfile::TempDir,
    pub ports: [u16; 2],
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

impl PrivateServer {
    fn new(script: &'static str) -> PrivateServer {
        PrivateServer {
            script,
            state: tempfile::tempdir().unwrap(),
            ports: [super::free_port(), super::free_port()],
        }
    }

    /// A ClickHouse server (HTTP, TCP ports).
    pub fn clickhouse() -> PrivateServer {
        PrivateServer::new("clickhouse")
    }

    /// A Kafka broker (client, controller ports). Topics are created by the test.
    pub fn kafka() -> PrivateServer {
        PrivateServer::new("kafka")
    }

    pub fn url(&self) -> String {
        match self.script {
            "clickhouse" => format!("http://127.0.0.1:{}", self.ports[0]),
            _ => format!("127.0.0.1:{}", self.ports[0]),
        }
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(repo().join(format!("deploy/local/{}.sh", self.script)))
            .args(args)
            .env("STATE_DIR", self.state.path())
            .env("CLICKHOUSE_HTTP_PORT", self.ports[0].to_string())
            .env("CLICKHOUSE_TCP_PORT", self.ports[1].to_string())
            .env("KAFKA_PORT", self.ports[0].to_string())
            .env("KAFKA_CONTROLLER_PORT", self.ports[1].to_string())
            .env("KAFKA_TOPICS", "")
            .env_remove("CLICKHOUSE_URL")
            .env_remove("KAFKA_BOOTSTRAP")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {args:?} failed:\n{}\n{}",
            self.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn up(&self) {
        self.run(&["up"]);
    }

    /// Graceful stop (SIGTERM, as an operator or an orchestrator would).
    pub fn down(&self) {
        self.run(&["down"]);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join(format!("deploy/local/{}.sh", self.script)))
            .args(["down", "--purge"])
            .env("STATE_DIR", self.state.path())
            .env("CLICKHOUSE_HTTP_PORT", self.ports[0].to_string())
            .env("KAFKA_PORT", self.ports[0].to_string())
            .output();
    }
}
