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
    /// Further environment for the script (TLS settings, replication settings of a ClickHouse replica).
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

    /// A ZooKeeper server (client port; the second port is unused).
    pub fn zookeeper() -> PrivateServer {
        PrivateServer::new("zookeeper")
    }

    /// Two ClickHouse servers as replicas `r1`, `r2` of shard 1 of cluster `cluster`, keeping
    /// replication state in `zookeeper`. Not started.
    pub fn clickhouse_replicas(zookeeper: &PrivateServer, cluster: &str) -> [PrivateServer; 2] {
        let mut pair = [PrivateServer::clickhouse(), PrivateServer::clickhouse()];
        let replicas = format!(
            "127.0.0.1:{} 127.0.0.1:{}",
            pair[0].ports[1], pair[1].ports[1]
        );
        for (i, s) in pair.iter_mut().enumerate() {
            s.env = vec![
                (
                    "CLICKHOUSE_INTERSERVER_PORT".into(),
                    super::free_port().to_string(),
                ),
                (
                    "CLICKHOUSE_ZOOKEEPER".into(),
                    format!("127.0.0.1:{}", zookeeper.ports[0]),
                ),
                ("CLICKHOUSE_CLUSTER".into(), cluster.into()),
                ("CLICKHOUSE_CLUSTER_REPLICAS".into(), replicas.clone()),
                (
                    "CLICKHOUSE_ZOOKEEPER_SESSION_TIMEOUT_MS".into(),
                    "6000".into(),
                ),
                ("CLICKHOUSE_SHARD".into(), "1".into()),
                ("CLICKHOUSE_REPLICA".into(), format!("r{}", i + 1)),
            ];
        }
        pair
    }

    /// SIGKILL the server (a lost machine): no shutdown, no flush.
    pub fn kill9(&self) {
        let pidfile = self
            .state
            .path()
            .join(self.script)
            .join(format!("{}.pid", self.script));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let pid = pid.trim();
        let out = Command::new("kill").args(["-KILL", pid]).output().unwrap();
        assert!(out.status.success(), "kill -9 {pid} failed");
        // Wait until the process is gone, so a restart does not find it alive.
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
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
            .env("ZOOKEEPER_PORT", self.ports[0].to_string())
            .envs(self.env.iter().cloned())
            .env_remove("CLICKHOUSE_URL")
            .env_remove("KAFKA_BOOTSTRAP")
            .output()
            .unwrap();
        // Indented, so that the suite's filter of `[deploy/local]` lines keeps the reason.
        let indent = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .map(|l| format!("  | {l}\n"))
                .collect::<String>()
        };
        assert!(
            out.status.success(),
            "{} {args:?} failed (exit {:?}), ports {:?}:\n{}{}",
            self.script,
            out.status.code(),
            self.ports,
            indent(&out.stdout),
            indent(&out.stderr)
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
            .env("ZOOKEEPER_PORT", self.ports[0].to_string())
            .output();
    }
}
