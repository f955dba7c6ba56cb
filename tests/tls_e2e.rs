//! TLS everywhere, against real servers: a private Kafka broker with a SASL_SSL listener (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512) and a private ClickHouse serving HTTPS, both with a certificate
//! from a test CA made by deploy/local/tls-certs.sh, and the test schema registry behind a TLS
//! front. The pipeline migrates and ingests through the secured endpoints only (the SCRAM-SHA-512
//! run as a least-privilege ClickHouse user); a wrong CA or a wrong password stops it with a
//! non-zero exit and an error that names the endpoint, without echoing the password.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::Stream;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::generate::{self, SampleOptions};

use common::registry::TestRegistry;
use common::servers::PrivateServer;
use common::TestEnv;

const USER: &str = "ingest";
const PASSWORD: &str = "Sasl-Pw-4711";

struct Secured {
    certs: tempfile::TempDir,
    kafka: PrivateServer,
    clickhouse: PrivateServer,
}

impl Secured {
    fn start() -> Secured {
        let certs = PrivateServer::tls_certs();
        let kafka = PrivateServer::kafka_sasl_ssl(certs.path(), USER, PASSWORD);
        let clickhouse = PrivateServer::clickhouse_https(certs.path());
        // Start both at once: the broker's JVM takes most of the time.
        std::thread::scope(|s| {
            s.spawn(|| kafka.up());
            s.spawn(|| clickhouse.up());
        });
        Secured {
            certs,
            kafka,
            clickhouse,
        }
    }

    fn ca(&self) -> String {
        self.certs.path().join("ca.crt").display().to_string()
    }

    fn other_ca(&self) -> String {
        self.certs.path().join("other-ca.crt").display().to_string()
    }

    /// A test environment (topics and database made over the plain listeners) whose service
    /// and producer use only the secured endpoints.
    async fn env(&self, name: &str, mechanism: &str) -> TestEnv {
        let mut env = TestEnv::with_servers(name, &self.kafka.url(), &self.clickhouse.url()).await;
        for (key, value) in [
            ("KAFKA__BOOTSTRAP_SERVERS", self.kafka.tls_url()),
            ("KAFKA__SECURITY_PROTOCOL", "sasl_ssl".into()),
            ("KAFKA__SASL_MECHANISM", mechanism.into()),
            ("KAFKA__SASL_USERNAME", USER.into()),
            ("KAFKA__SASL_PASSWORD", PASSWORD.into()),
            ("KAFKA__SSL_CA_FILE", self.ca()),
            ("CLICKHOUSE__URL", self.clickhouse.tls_url()),
            ("CLICKHOUSE__CA_FILE", self.ca()),
        ] {
            env.set_env(&format!("DISPATCH_INGEST__{key}"), &value);
        }
        env
    }
}

fn events(incidents: u32, seed: u64) -> Vec<dispatch_ingest::event::DispatchEvent> {
    generate::sample_events(&SampleOptions {
        incidents,
        seed,
        start_ms: dispatch_ingest::clock::now_ms() - 3_600_000,
        spacing_ms: 30_000,
    })
}

const WRITER: &str = "dispatch_ingest";
const WRITER_PASSWORD: &str = "Writer-Pw-0815";

/// The least-privilege pipeline user of docs/security.md for ClickHouse 18.16 (users.d): no DDL,
/// only `database`, loopback only. Waits until the server has loaded it.
async fn add_writer_user(secured: &Secured, env: &TestEnv) {
    use std::fmt::Write as _;
    let sha = {
        let out = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(WRITER_PASSWORD.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    let mut xml = String::new();
    write!(
        xml,
        r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <ingest_writer>
            <readonly>0</readonly>
            <allow_ddl>0</allow_ddl>
        </ingest_writer>
    </profiles>
    <users>
        <{WRITER}>
            <password_sha256_hex>{sha}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>ingest_writer</profile>
            <quota>default</quota>
            <allow_databases><database>{db}</database></allow_databases>
        </{WRITER}>
    </users>
</yandex>
"#,
        db = env.database
    )
    .unwrap();
    let dir = secured.clickhouse.state_dir().join("clickhouse/users.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dispatch-ingest.xml"), xml).unwrap();
    let writer = env
        .clickhouse()
        .with_user(WRITER)
        .with_password(WRITER_PASSWORD);
    let start = Instant::now();
    while writer.query("SELECT 1").execute().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ClickHouse did not load users.d within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The user really is restricted: no DDL, no other database.
    let denied = writer
        .query(&format!("DROP TABLE {}.dispatch_events", env.database))
        .execute()
        .await
        .unwrap_err()
        .to_string();
    assert!(denied.contains("DDL queries are prohibited"), "{denied}");
    let denied = writer
        .query("SELECT count() FROM default.system_never_created")
        .execute()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        denied.contains("Access denied to database default"),
        "{denied}"
    );
    let denied = writer
        .query("CREATE DATABASE other_db")
        .execute()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        denied.contains("prohibited") || denied.contains("denied"),
        "{denied}"
    );
}

/// Produce through SASL_SSL with `mechanism`, ingest into ClickHouse over HTTPS, stop cleanly;
/// with `least_privilege` the service inserts as the restricted writer user.
async fn ingest_through(secured: &Secured, mechanism: &str, seed: u64, least_privilege: bool) {
    let name = format!("tls_{}", mechanism.to_lowercase().replace('-', "_"));
    let mut env = secured.env(&name, mechanism).await;
    let migrated = env.run_cli(&["migrate"]);
    assert!(migrated.contains("applied"), "{migrated}");
    if least_privilege {
        add_writer_user(secured, &env).await;
        env.set_env("DISPATCH_INGEST__CLICKHOUSE__USER", WRITER);
        env.set_env("DISPATCH_INGEST__CLICKHOUSE__PASSWORD", WRITER_PASSWORD);
    }
    let events = events(5, seed);
    let produced = env.produce_events(&events).await;
    assert_eq!(produced, events.len() as u64);
    // One undecodable record: its dead-letter copy goes out through the DLQ producer over SASL_SSL.
    env.produce_raw(
        env.topic(dispatch_ingest::event::Stream::Call),
        "INC-GARBAGE",
        b"\xff not avro",
    )
    .await;
    let mut svc = env.spawn_service(mechanism);
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(90))
        .await;
    let start = Instant::now();
    while env.dlq_len() < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing on the DLQ after 60 s; log:\n{}",
            svc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    svc.stop();
    assert_eq!(env.dlq_len(), 1);
    let log = svc.log_text();
    assert!(
        log.contains("Kafka connection check passed"),
        "no connection check in the log:\n{log}"
    );
    if least_privilege {
        assert!(log.contains("connected to ClickHouse"), "{log}");
    }
    assert!(
        !log.contains(WRITER_PASSWORD),
        "the password is in the log:\n{log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the password is in the log:\n{log}"
    );
    env.cleanup().await;
}

/// Run `dispatch-ingest run` with the overrides; it must exit (non-zero) within 90 s.
fn run_must_fail(env: &TestEnv, overrides: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch-ingest"));
    cmd.arg("run")
        .env_remove("DISPATCH_INGEST_CONFIG")
        .envs(env.service_env(common::free_port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in overrides {
        cmd.env(format!("DISPATCH_INGEST__{k}"), v);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{overrides:?}: still running after 90 s (hangs instead of failing):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "{overrides:?}: exited 0:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .rfind(|l| l.starts_with("dispatch-ingest:"))
        .unwrap_or_else(|| panic!("no error line on stderr:\n{stderr}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_through_sasl_ssl_and_https_and_refuses_wrong_ca_or_password() {
    // One test, so that the private broker and ClickHouse (most of the time) start once.
    let secured = Secured::start();
    assert!(Path::new(&secured.ca()).is_file());

    // SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, each over TLS.
    // SCRAM-SHA-512 with the least-privilege ClickHouse user of docs/security.md.
    ingest_through(&secured, "SCRAM-SHA-512", 1, true).await;
    ingest_through(&secured, "SCRAM-SHA-256", 2, false).await;
    ingest_through(&secured, "PLAIN", 3, false).await;
    registry_over_https(&secured).await;

    // Failures, on a migrated database so that only the setting under test is wrong.
    let env = secured.env("tls_fail", "SCRAM-SHA-512").await;
    env.run_cli(&["migrate"]);
    let kafka = format!("Kafka at sasl_ssl://{}", secured.kafka.tls_url());
    let clickhouse = format!("ClickHouse at {}", secured.clickhouse.tls_url());
    let other_ca = secured.other_ca();

    let out = run_must_fail(&env, &[("KAFKA__SSL_CA_FILE", &other_ca)]);
    let line = last_line(&out);
    assert!(line.contains(&kafka), "{line}");
    assert!(line.contains("certificate verify failed"), "{line}");

    let out = run_must_fail(&env, &[("KAFKA__SASL_PASSWORD", "not-the-password")]);
    let line = last_line(&out);
    assert!(line.contains(&kafka), "{line}");
    assert!(line.contains("SASL authentication error"), "{line}");
    assert!(!line.contains("not-the-password"), "{line}");
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let out = run_must_fail(
            &env,
            &[
                ("KAFKA__SASL_MECHANISM", mechanism),
                ("KAFKA__SASL_PASSWORD", "not-the-password"),
            ],
        );
        let line = last_line(&out);
        assert!(line.contains(&kafka), "{mechanism}: {line}");
        assert!(line.contains("SASL authentication error"), "{line}");
    }

    let out = run_must_fail(&env, &[("CLICKHOUSE__CA_FILE", &other_ca)]);
    let line = last_line(&out);
    assert!(line.contains(&clickhouse), "{line}");
    assert!(line.contains("invalid peer certificate"), "{line}");

    // Without the CA file the system's roots do not know the test CA either.
    let out = run_must_fail(&env, &[("CLICKHOUSE__CA_FILE", "")]);
    let line = last_line(&out);
    assert!(line.contains(&clickhouse), "{line}");
    assert!(line.contains("UnknownIssuer"), "{line}");

    let out = run_must_fail(&env, &[("CLICKHOUSE__PASSWORD", "not-the-password")]);
    let line = last_line(&out);
    assert!(line.contains(&clickhouse), "{line}");
    assert!(line.contains("password"), "{line}");
    assert!(!line.contains("not-the-password"), "{line}");

    env.cleanup().await;
}

/// A TLS front on 127.0.0.1 (certificate from `certs`) that forwards every connection to the
/// plain HTTP server on `backend`; returns its port.
async fn tls_front(certs: &Path, backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(certs.join("server.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects our certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", backend))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// Confluent-framed records whose schemas come from a registry behind TLS: without
/// `schema_registry.ca_file` they wait (never dead-lettered) and the log names the registry and
/// the certificate error; with it they land. Kafka and ClickHouse are the secured ones too.
async fn registry_over_https(secured: &Secured) {
    let certs = &secured.certs;
    let registry = TestRegistry::new(common::free_port(), Some(("ingest", "s3cret")));
    registry.start().await;
    let https_port = tls_front(certs.path(), registry.port).await;

    let mut env = secured.env("tls_registry", "SCRAM-SHA-512").await;
    env.set_all_formats(WireFormat::AvroConfluent);
    env.set_env(
        "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
        &format!("https://127.0.0.1:{https_port}"),
    );
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__USERNAME", "ingest");
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__PASSWORD", "s3cret");
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let ids: std::collections::BTreeMap<Stream, u32> = Stream::ALL
        .into_iter()
        .map(|s| (s, registry.add(s.schema_json())))
        .collect();
    let events = events(4, 7);
    env.produce_many(&common::records_for(&env, &codec, &events, |s| ids[&s]))
        .await;

    // Trusting only the system's roots, the registry's certificate does not verify: records
    // wait (an unreachable registry never dead-letters) and the log says why.
    let mut svc = env.spawn_service("registry-no-ca");
    // Alive, but not ready: readiness names the registry it cannot reach.
    svc.wait_for_http("/ready", 503, "registry", Duration::from_secs(60))
        .await;
    svc.wait_for_http("/health", 200, "", Duration::from_secs(10))
        .await;
    svc.wait_for_metric("dispatch_ingest_schema_registry_errors_total", 1.0)
        .await;
    // Killed, not stopped: a shutdown that falls into the registry's retry wait takes longer
    // than the test wants to wait (nothing was inserted or committed, so nothing is lost).
    svc.kill9();
    let log = svc.log_text();
    assert!(
        log.contains(&format!("https://127.0.0.1:{https_port}"))
            && log.contains("invalid peer certificate"),
        "{log}"
    );
    assert!(!log.contains("s3cret"), "{log}");
    assert_eq!(env.count("1").await, 0);
    assert_eq!(env.dlq_len(), 0);

    // With schema_registry.ca_file the same records land.
    let ca = certs.path().join("ca.crt").display().to_string();
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__CA_FILE", &ca);
    let mut svc = env.spawn_service("registry-ca");
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(90))
        .await;
    svc.stop();
    assert_eq!(env.dlq_len(), 0);
    env.cleanup().await;
}
