//! Private Kafka and ClickHouse servers for fault-injection tests: the same deploy/local scripts
//! as the shared stack, on free ports and a temporary state directory, so a test can stop and
//! start its own server without disturbing other tests.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateServer {
    script: &'static str,
    state: tempfile::TempDir,
    pub ports: [u16; 2],
    /// Port of the opt-in TLS listener (Kafka SASL_SSL, ClickHouse HTTPS), if any.
    pub tls_port: Option<u16>,
    /// Further environment for the script (TLS settings).
    env: Vec<(String, String)>,
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
            tls_port: None,
            env: Vec::new(),
        }
    }

    /// A ClickHouse server that also serves HTTPS with the certificate in `tls_dir` (from
    /// deploy/local/tls-certs.sh).
    pub fn clickhouse_https(tls_dir: &Path) -> PrivateServer {
        let mut s = PrivateServer::new("clickhouse");
        let port = super::free_port();
        s.tls_port = Some(port);
        s.env = vec![
            ("CLICKHOUSE_HTTPS_PORT".into(), port.to_string()),
            ("CLICKHOUSE_TLS_DIR".into(), tls_dir.display().to_string()),
        ];
        s
    }

    /// A Kafka broker with a second listener, SASL_SSL (PLAIN, SCRAM-SHA-256 and -512 for
    /// `user`), with the certificate in `tls_dir`; the PLAINTEXT listener stays for test setup.
    pub fn kafka_sasl_ssl(tls_dir: &Path, user: &str, password: &str) -> PrivateServer {
        let mut s = PrivateServer::new("kafka");
        let port = super::free_port();
        s.tls_port = Some(port);
        s.env = vec![
            ("KAFKA_SASL_SSL_PORT".into(), port.to_string()),
            ("KAFKA_TLS_DIR".into(), tls_dir.display().to_string()),
            ("KAFKA_SASL_USER".into(), user.into()),
            ("KAFKA_SASL_PASSWORD".into(), password.into()),
        ];
        s
    }

    /// `https://127.0.0.1:port` (ClickHouse) or `127.0.0.1:port` (Kafka) of the TLS listener.
    pub fn tls_url(&self) -> String {
        let port = self
            .tls_port
            .expect("server started without a TLS listener");
        match self.script {
            "clickhouse" => format!("https://127.0.0.1:{port}"),
            _ => format!("127.0.0.1:{port}"),
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
            .envs(self.env.iter().cloned())
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

    /// The server's state directory (`<dir>/clickhouse/users.d` takes extra users on 18.16).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    pub fn up(&self) {
        self.run(&["up"]);
    }

    /// Test certificates (deploy/local/tls-certs.sh) in a new temporary directory: ca.crt,
    /// server.crt/key, server.p12, other-ca.crt.
    pub fn tls_certs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(repo().join("deploy/local/tls-certs.sh"))
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tls-certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
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
