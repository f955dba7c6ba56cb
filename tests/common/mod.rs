//! Helpers for tests against the real local Kafka broker and ClickHouse server started by
//! `deploy/local/up.sh`. Each test gets its own topics, consumer group and database, so tests
//! can run in parallel and leave each other alone. A missing server fails the test with a hint;
//! nothing is skipped.
#![allow(dead_code)]

pub mod browser;
pub mod municipal;
pub mod registry;
pub mod servers;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickhouse::Client;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::TopicPartitionList;

use dispatch_ingest::event::Stream;
use dispatch_ingest::event::WireFormat;

pub fn kafka_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

pub const PARTITIONS: i32 = 3;

/// One test's private topics, group and database.
pub struct TestEnv {
    pub id: String,
    pub topics: Vec<(Stream, String)>,
    pub formats: Vec<(Stream, WireFormat)>,
    pub dlq_topic: String,
    pub group: String,
    pub database: String,
    pub log_dir: PathBuf,
    /// Further DISPATCH_INGEST__* settings for the service.
    pub extra_env: Vec<(String, String)>,
    /// The servers this test uses (the shared local stack unless given).
    pub kafka: String,
    pub clickhouse_url: String,
}

fn unique_id(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

impl TestEnv {
    pub async fn new(name: &str) -> TestEnv {
        TestEnv::with_servers(name, &kafka_bootstrap(), &clickhouse_url()).await
    }

    /// A test environment on the given Kafka bootstrap and ClickHouse URL.
    pub async fn with_servers(name: &str, kafka: &str, clickhouse: &str) -> TestEnv {
        let id = unique_id(name);
        let topics: Vec<(Stream, String)> = Stream::ALL
            .into_iter()
            .map(|s| (s, format!("it.{id}.{}", s.name())))
            .collect();
        let env = TestEnv {
            dlq_topic: format!("it.{id}.dlq"),
            group: format!("it-{id}"),
            database: format!("it_{id}"),
            formats: Stream::ALL
                .into_iter()
                .map(|s| (s, WireFormat::Avro))
                .collect(),
            topics,
            log_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("it-logs"),
            extra_env: Vec::new(),
            kafka: kafka.to_string(),
            clickhouse_url: clickhouse.to_string(),
            id,
        };
        std::fs::create_dir_all(&env.log_dir).unwrap();
        env.check_clickhouse().await;
        env.create_topics().await;
        env
    }

    pub fn topic(&self, stream: Stream) -> &str {
        &self.topics.iter().find(|(s, _)| *s == stream).unwrap().1
    }

    pub fn set_format(&mut self, stream: Stream, format: WireFormat) {
        for (s, f) in self.formats.iter_mut() {
            if *s == stream {
                *f = format;
            }
        }
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.to_string(), value.to_string()));
    }

    pub fn set_all_formats(&mut self, format: WireFormat) {
        for (_, f) in self.formats.iter_mut() {
            *f = format;
        }
    }

    pub fn format(&self, stream: Stream) -> WireFormat {
        self.formats.iter().find(|(s, _)| *s == stream).unwrap().1
    }

    async fn check_clickhouse(&self) {
        let client = Client::default()
            .with_url(self.clickhouse_url.clone())
            .with_validation(false);
        if let Err(e) = client.query("SELECT 1").execute().await {
            panic!(
                "ClickHouse at {} is not reachable ({e}); start the local stack with deploy/local/up.sh",
                self.clickhouse_url.clone()
            );
        }
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.kafka.clone())
            .create()
            .unwrap()
    }

    /// The five stream topics and the DLQ.
    fn all_topics(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.topics.iter().map(|(_, t)| t.as_str()).collect();
        names.push(&self.dlq_topic);
        names
    }

    async fn create_topics(&self) {
        let admin = self.admin();
        let names = self.all_topics();
        let new: Vec<NewTopic> = names
            .iter()
            .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let result = tokio::time::timeout(Duration::from_secs(60), admin.create_topics(&new, &opts))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "Kafka at {} did not answer within 60 s; start the local stack with deploy/local/up.sh",
                    self.kafka.clone()
                )
            })
            .unwrap_or_else(|e| panic!("creating topics on Kafka at {}: {e}", self.kafka.clone()));
        for r in result {
            if let Err((topic, e)) = r {
                panic!("creating topic {topic}: {e}");
            }
        }
    }

    /// Drop this test's database and topics (called at the end of a passing test; a failing one
    /// leaves them for inspection).
    pub async fn cleanup(&self) {
        self.clickhouse()
            .query(&format!("DROP DATABASE IF EXISTS {}", self.database))
            .execute()
            .await
            .unwrap();
        self.admin()
            .delete_topics(&self.all_topics(), &AdminOptions::new())
            .await
            .unwrap();
    }

    /// Environment for a `dispatch-ingest` process bound to this test's resources.
    pub fn service_env(&self, metrics_port: u16) -> Vec<(String, String)> {
        let mut v = vec![
            (
                "DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS".to_string(),
                self.kafka.clone(),
            ),
            (
                "DISPATCH_INGEST__KAFKA__GROUP_ID".into(),
                self.group.clone(),
            ),
            (
                "DISPATCH_INGEST__KAFKA__DLQ_TOPIC".into(),
                self.dlq_topic.clone(),
            ),
            (
                "DISPATCH_INGEST__CLICKHOUSE__URL".into(),
                self.clickhouse_url.clone(),
            ),
            (
                "DISPATCH_INGEST__CLICKHOUSE__DATABASE".into(),
                self.database.clone(),
            ),
            (
                "DISPATCH_INGEST__TELEMETRY__LISTEN".into(),
                format!("127.0.0.1:{metrics_port}"),
            ),
            (
                "DISPATCH_INGEST__TELEMETRY__LOG_FORMAT".into(),
                "json".into(),
            ),
            ("DISPATCH_INGEST__BATCH__MAX_WAIT_MS".into(), "200".into()),
            (
                "DISPATCH_INGEST__KAFKA__COMMIT_INTERVAL_MS".into(),
                "200".into(),
            ),
            (
                "DISPATCH_INGEST__KAFKA__SESSION_TIMEOUT_MS".into(),
                "6000".into(),
            ),
            (
                "DISPATCH_INGEST__TELEMETRY__HEALTH_INTERVAL_MS".into(),
                "1000".into(),
            ),
            ("RUST_LOG".into(), "info,dispatch_ingest=debug".into()),
        ];
        v.extend(self.extra_env.iter().cloned());
        for (s, t) in &self.topics {
            v.push((
                format!("DISPATCH_INGEST__TOPICS__{}__NAME", s.name().to_uppercase()),
                t.clone(),
            ));
            v.push((
                format!(
                    "DISPATCH_INGEST__TOPICS__{}__FORMAT",
                    s.name().to_uppercase()
                ),
                self.format(*s).to_string(),
            ));
        }
        v
    }

    /// `dispatch-ingest ARGS` with this environment, not started.
    pub fn cli(&self, args: &[&str]) -> Command {
        self.command(0, args)
    }

    fn command(&self, metrics_port: u16, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch-ingest"));
        cmd.args(args)
            .env_remove("DISPATCH_INGEST_CONFIG")
            .envs(self.service_env(metrics_port));
        cmd
    }

    /// Run a one-shot subcommand; returns stdout, panics with stderr on failure.
    pub fn run_cli(&self, args: &[&str]) -> String {
        let out = self.command(0, args).output().unwrap();
        assert!(
            out.status.success(),
            "dispatch-ingest {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Start `dispatch-ingest run` in the background, logging to a file.
    pub fn spawn_service(&self, label: &str) -> Service {
        let port = free_port();
        let log = self.log_dir.join(format!("{}-{label}.log", self.id));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command(port, &["run"])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Service { child, port, log }
    }

    pub fn clickhouse(&self) -> Client {
        Client::default()
            .with_url(self.clickhouse_url.clone())
            .with_validation(false)
    }

    /// The server's version (major, minor), as `SELECT version()` reports it.
    pub async fn server_version(&self) -> (u32, u32) {
        let v: String = self
            .clickhouse()
            .query("SELECT version()")
            .fetch_one()
            .await
            .unwrap();
        let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    /// Require that the service chose the crate's row validation as `clickhouse.validation =
    /// "auto"` must for this server: on for 24.1 and later (RowBinaryWithNamesAndTypes, the
    /// crate's schema cache), off for older ones such as 18.16. Run the tests with
    /// `CLICKHOUSE_URL` pointing at a 24.1+ server (tests/chdb_http/run_tests.sh) to take the
    /// validation-on path.
    pub async fn assert_validation_auto(&self, svc: &Service) {
        let expected = self.server_version().await >= (24, 1);
        let log = svc.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("connected to ClickHouse"))
            .unwrap_or_else(|| panic!("no \"connected to ClickHouse\" line in the log:\n{log}"));
        assert!(
            line.contains(&format!("\"validation\":{expected}")),
            "server {:?} at {}: expected validation {expected}: {line}",
            self.server_version().await,
            self.clickhouse_url
        );
    }

    pub async fn count(&self, where_clause: &str) -> u64 {
        let sql = format!(
            "SELECT count() FROM {}.dispatch_events WHERE {where_clause}",
            self.database
        );
        self.clickhouse()
            .query(&sql)
            .fetch_one::<u64>()
            .await
            .unwrap()
    }

    /// A single UInt64 from ClickHouse; `{db}` in `sql` stands for this test's database.
    pub async fn scalar(&self, sql: &str) -> u64 {
        let sql = sql.replace("{db}", &self.database);
        self.clickhouse()
            .query(&sql)
            .fetch_one::<u64>()
            .await
            .unwrap()
    }

    /// Distinct events per stream in ClickHouse.
    pub async fn landed_per_stream(&self) -> std::collections::BTreeMap<String, u64> {
        let rows: Vec<(String, u64)> = self
            .clickhouse()
            .query(&format!(
                "SELECT event_type, uniqExact(event_id) FROM {}.dispatch_events GROUP BY event_type",
                self.database
            ))
            .fetch_all()
            .await
            .unwrap();
        rows.into_iter().collect()
    }

    /// Poll until the distinct events in ClickHouse reach `expected` (redelivered duplicates do
    /// not count), or panic after `timeout`.
    pub async fn wait_for_events(&self, expected: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let n = self
                .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events")
                .await;
            assert!(
                n <= expected,
                "{n} distinct events, more than the {expected} sent"
            );
            if n == expected {
                return;
            }
            if start.elapsed() > timeout {
                panic!("{n} of {expected} distinct events after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Poll until `count(where) == expected`, or panic after `timeout`.
    pub async fn wait_for_count(&self, where_clause: &str, expected: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let n = self.count(where_clause).await;
            if n == expected {
                return;
            }
            assert!(
                n < expected,
                "count({where_clause}) = {n}, more than the expected {expected}"
            );
            if start.elapsed() > timeout {
                panic!("count({where_clause}) = {n} after {timeout:?}, expected {expected}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", self.kafka.clone())
            .set("acks", "all")
            .create()
            .unwrap()
    }

    /// The service configuration this environment stands for (also used to produce with the
    /// library's generator).
    pub fn config(&self) -> dispatch_ingest::config::Config {
        let vars = self.service_env(0);
        dispatch_ingest::config::Config::load(None, vars).expect("test config is valid")
    }

    /// Produce events with the library's producer (many in flight), in each topic's format.
    pub async fn produce_events(&self, events: &[dispatch_ingest::event::DispatchEvent]) -> u64 {
        let config = self.config();
        let codec = dispatch_ingest::decode::Codec::from_config(&config.topics).unwrap();
        let ids = std::collections::HashMap::new();
        dispatch_ingest::generate::produce(&config, &codec, &ids, events, |_| {})
            .await
            .unwrap()
    }

    /// Produce many (topic, key, payload) records, waiting for every acknowledgement.
    pub async fn produce_many(&self, records: &[(String, String, Vec<u8>)]) {
        let producer = self.producer();
        let futures: Vec<_> = records
            .iter()
            .map(|(topic, key, payload)| {
                producer.send(
                    FutureRecord::to(topic).key(key).payload(payload),
                    Timeout::After(Duration::from_secs(30)),
                )
            })
            .collect();
        for f in futures {
            f.await.map_err(|(e, _)| e).unwrap();
        }
    }

    /// Read `n` records from the DLQ, sorted by key: (key, headers, payload).
    pub async fn read_dlq(&self, n: usize) -> Vec<DeadRecord> {
        use rdkafka::consumer::StreamConsumer;
        use rdkafka::message::Message;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.clone())
            .set("group.id", format!("{}-dlq-reader", self.group))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[&self.dlq_topic]).unwrap();
        let mut out = Vec::new();
        while out.len() < n {
            let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("{n} records on the DLQ within 60 s, got {}", out.len()))
                .unwrap();
            let mut headers = std::collections::BTreeMap::new();
            if let Some(h) = msg.headers() {
                for x in dispatch_ingest::kafka::read_headers(h) {
                    headers.insert(
                        x.key_lossy().into_owned(),
                        String::from_utf8_lossy(x.value.as_deref().unwrap_or_default())
                            .into_owned(),
                    );
                }
            }
            let key = msg
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            out.push((key, headers, msg.payload().unwrap_or_default().to_vec()));
        }
        out.sort();
        out
    }

    /// How many records the DLQ topic holds (sum of high watermarks).
    pub fn dlq_len(&self) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.clone())
            .create()
            .unwrap();
        (0..PARTITIONS)
            .map(|p| {
                consumer
                    .fetch_watermarks(&self.dlq_topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .sum()
    }

    /// Produce raw bytes to a topic with a key; waits for the acknowledgement.
    pub async fn produce_raw(&self, topic: &str, key: &str, payload: &[u8]) -> (i32, i64) {
        let producer = self.producer();
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(payload),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| e)
            .unwrap()
    }

    /// The group's committed offset for one partition (None: nothing committed).
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.clone())
            .set("group.id", &self.group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let got = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        match got.find_partition(topic, partition).unwrap().offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        }
    }
}

/// Events per stream name.
pub fn per_stream(
    events: &[dispatch_ingest::event::DispatchEvent],
) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for e in events {
        *m.entry(e.stream().name().to_string()).or_default() += 1;
    }
    m
}

/// A dead-lettered record: key, headers, original payload.
pub type DeadRecord = (String, std::collections::BTreeMap<String, String>, Vec<u8>);

/// (topic, key, encoded payload) for each event, in its stream's topic and the codec's format.
pub fn records_for(
    env: &TestEnv,
    codec: &dispatch_ingest::decode::Codec,
    events: &[dispatch_ingest::event::DispatchEvent],
    schema_id: impl Fn(Stream) -> u32,
) -> Vec<(String, String, Vec<u8>)> {
    events
        .iter()
        .map(|e| {
            (
                env.topic(e.stream()).to_string(),
                e.envelope.incident_id.clone(),
                codec.encode_with_id(e, schema_id(e.stream())),
            )
        })
        .collect()
}

pub struct Service {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Service {
    /// Wait until `/ready` answers 200 (the pipeline runs and its checks pass).
    pub async fn wait_healthy(&mut self, timeout: Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "service exited early with {status}; log:\n{}",
                    self.log_text()
                );
            }
            if http_get(self.port, "/ready")
                .await
                .is_some_and(|(code, _)| code == 200)
            {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "service not healthy after {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll `path` until it answers `code` with a body containing `needle`; returns the body.
    pub async fn wait_for_http(
        &self,
        path: &str,
        code: u16,
        needle: &str,
        timeout: Duration,
    ) -> String {
        let start = Instant::now();
        let mut last = None;
        loop {
            let got = http_get(self.port, path).await;
            if let Some((c, body)) = &got {
                if *c == code && body.contains(needle) {
                    return body.clone();
                }
            }
            last = got.or(last);
            if start.elapsed() > timeout {
                panic!(
                    "{path} did not answer {code} with {needle:?} within {timeout:?}; last {last:?}; log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .await
            .expect("metrics endpoint")
            .1
    }

    /// The value of a metric line that starts with `prefix` (name plus labels), 0 if absent.
    pub async fn metric(&self, prefix: &str) -> f64 {
        metric_value(&self.metrics().await, prefix)
    }

    /// SIGTERM, then wait for the exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "service did not stop within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll a metric until it reaches `at_least` (metrics are updated just after the work they
    /// count, so a test that saw the work must still wait for the number), or panic after 60 s.
    pub async fn wait_for_metric(&self, name: &str, at_least: f64) -> f64 {
        let start = Instant::now();
        loop {
            let v = self.metric(name).await;
            if v >= at_least {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} = {v} after 60 s, expected >= {at_least}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM and require a clean exit (0) within 30 s.
    pub fn stop(&mut self) {
        let clean = self.terminate(Duration::from_secs(30));
        assert!(clean, "service did not exit 0; log:\n{}", self.log_text());
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A port for a test server: below the kernel's ephemeral range (32768-60999 on Linux), so no
/// outgoing connection takes it between this call and the server's bind (and a connect to it can
/// never be a TCP self-connect), never handed out twice in one test process, and free now.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Start where other test binaries of the same run are unlikely to be (pid-derived offset).
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % 997) as u16 * 12,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..12_000 {
        let port = 20_000 + NEXT.fetch_add(1, Ordering::SeqCst) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999 on 127.0.0.1");
}

/// A tiny HTTP/1.0 GET against 127.0.0.1 (status, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_string())?;
    Some((code, body))
}
