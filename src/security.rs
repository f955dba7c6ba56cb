//! Transport security of the clients: TLS and SASL settings for librdkafka (built with the
//! system's OpenSSL), one rustls client configuration (the system's roots plus an optional CA
//! file) for the ClickHouse and Schema Registry HTTP clients, the checks of these settings at
//! startup, and a first connection to Kafka that turns a wrong CA or a wrong password into an
//! error naming the endpoint instead of an endless retry. See `docs/security.md`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rustls::pki_types::CertificateDer;

use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::config::{read_ca_file, ClickHouseConfig, KafkaConfig, RetryConfig};
use crate::telemetry;

/// Why TLS or SASL could not be set up, or a secured Kafka connection check failed.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A TLS client configuration could not be built (e.g. an unreadable or invalid CA file).
    #[error("TLS setup for {what}: {message}")]
    Tls {
        /// Whose certificates: the system's roots or the CA file.
        what: String,
        /// The error.
        message: String,
    },
    /// A Kafka client could not be created, or its connection check failed (TLS or SASL).
    #[error("Kafka at {endpoint}: {message}")]
    Kafka {
        /// The broker(s) tried, or the config key naming them.
        endpoint: String,
        /// What failed.
        message: String,
    },
}

/// librdkafka's TLS and SASL properties from `[kafka]` (protocol, mechanism, credentials, files).
pub fn apply_kafka(k: &KafkaConfig, c: &mut ClientConfig) {
    c.set("security.protocol", &k.security_protocol);
    if !k.sasl_mechanism.is_empty() {
        c.set("sasl.mechanism", k.sasl_mechanism.to_ascii_uppercase())
            .set("sasl.username", &k.sasl_username)
            .set("sasl.password", &k.sasl_password);
    }
    if !k.ssl_ca_file.is_empty() {
        c.set("ssl.ca.location", &k.ssl_ca_file);
    }
    if !k.ssl_certificate_file.is_empty() {
        c.set("ssl.certificate.location", &k.ssl_certificate_file)
            .set("ssl.key.location", &k.ssl_key_file);
    }
    if !k.ssl_key_password.is_empty() {
        c.set("ssl.key.password", &k.ssl_key_password);
    }
}

/// The system's root certificates (read once).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot load some of the system's root certificates");
        }
        found.certs
    })
}

/// A rustls client configuration trusting the system's roots and the certificates in `ca_file`
/// (if not empty). Server certificates and host names are always verified.
pub fn http_tls_config(ca_file: &str) -> Result<rustls::ClientConfig, SecurityError> {
    let err = |message: String| SecurityError::Tls {
        what: if ca_file.is_empty() {
            "the system's root certificates".into()
        } else {
            format!("CA file {ca_file}")
        },
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(native_roots().iter().cloned());
    if !ca_file.is_empty() {
        for cert in read_ca_file(ca_file).map_err(err)? {
            roots
                .add(cert)
                .map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// TCP keepalive and idle-connection lifetime as in the `clickhouse` crate's own client (servers
/// before 23.11 close idle connections after 3 s).
const CLICKHOUSE_TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const CLICKHOUSE_POOL_IDLE: Duration = Duration::from_secs(2);

/// The HTTP client for ClickHouse: `http://` and `https://` (rustls, [`http_tls_config`]).
pub fn clickhouse_http_client<B>(
    cfg: &ClickHouseConfig,
) -> Result<HyperClient<HttpsConnector<HttpConnector>, B>, SecurityError>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
{
    let tls = http_tls_config(&cfg.ca_file)?;
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(CLICKHOUSE_TCP_KEEPALIVE));
    http.set_connect_timeout(Some(Duration::from_millis(cfg.request_timeout_ms)));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(CLICKHOUSE_POOL_IDLE)
        .build(connector))
}

/// An error with its chain of causes ("a: b: c"), for messages that must say why a TLS
/// handshake failed (the outer errors of HTTP clients only say "connect error").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// librdkafka errors that retrying with the same settings cannot cure.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SSL
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::UnsupportedSASLMechanism
            | RDKafkaErrorCode::Fatal
    )
}

/// Collects librdkafka's global errors during the connection check.
#[derive(Default)]
struct ErrorCapture {
    permanent: Mutex<Option<String>>,
}

impl ClientContext for ErrorCapture {
    fn error(&self, error: KafkaError, reason: &str) {
        let permanent = error.rdkafka_error_code().is_some_and(is_permanent);
        if permanent {
            let mut slot = self.permanent.lock().expect("error capture lock");
            slot.get_or_insert_with(|| format!("{reason} ({error})"));
        } else {
            tracing::warn!(%error, reason, "Kafka connection check");
        }
    }
}

impl ProducerContext for ErrorCapture {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// How long [`check_kafka`] waits for brokers that do not answer at all before the pipeline
/// starts anyway (the consumer keeps trying, as it does when a broker goes away later).
pub const KAFKA_CHECK_WAIT: Duration = Duration::from_secs(10);

/// With TLS or SASL configured: connect once and ask for metadata, so that a certificate that
/// does not verify or refused credentials fail startup with the endpoint and librdkafka's reason
/// (which librdkafka itself would retry forever). Brokers that merely do not answer within
/// `wait` are not an error here; the looks between are spaced by the retry policy (`retry`,
/// steps capped at 1 s), each a retry of `kafka_startup_check`. Plaintext without SASL is not
/// checked. `cc` holds the client's properties (`kafka::client_config`), the same as the
/// consumer's and the DLQ producer's.
pub async fn check_kafka(
    k: &KafkaConfig,
    cc: ClientConfig,
    retry: &RetryConfig,
    wait: Duration,
) -> Result<(), SecurityError> {
    if k.security_protocol.eq_ignore_ascii_case("plaintext") {
        return Ok(());
    }
    let k = k.clone();
    let backoff = Backoff::from_config(retry).capped(Duration::from_secs(1));
    tokio::task::spawn_blocking(move || check_kafka_blocking(&k, &cc, backoff, wait))
        .await
        .map_err(|e| SecurityError::Kafka {
            endpoint: "kafka.bootstrap_servers".into(),
            message: format!("connection check did not finish: {e}"),
        })?
}

fn check_kafka_blocking(
    k: &KafkaConfig,
    cc: &ClientConfig,
    mut backoff: Backoff,
    wait: Duration,
) -> Result<(), SecurityError> {
    let endpoint = format!(
        "{}://{}",
        k.security_protocol.to_ascii_lowercase(),
        k.bootstrap_servers
    );
    let producer: BaseProducer<ErrorCapture> = cc
        .create_with_context(ErrorCapture::default())
        .map_err(|e| SecurityError::Kafka {
            endpoint: endpoint.clone(),
            message: format!("cannot create the client: {e}"),
        })?;
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let answered = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(1));
        producer.poll(Duration::ZERO);
        if let Some(reason) = producer
            .context()
            .permanent
            .lock()
            .expect("error capture lock")
            .take()
        {
            return Err(SecurityError::Kafka {
                endpoint,
                message: format!(
                    "TLS or SASL failed (check kafka.ssl_ca_file, kafka.sasl_username/sasl_password, kafka.sasl_mechanism): {reason}"
                ),
            });
        }
        match answered {
            Ok(_) => {
                tracing::info!(%endpoint, "Kafka connection check passed");
                return Ok(());
            }
            Err(e) if start.elapsed() >= wait => {
                tracing::warn!(%endpoint, error = %e, "Kafka does not answer yet; starting anyway, the consumer keeps trying");
                return Ok(());
            }
            Err(e) => {
                attempt += 1;
                let pause = backoff
                    .next_wait()
                    .min(wait.saturating_sub(start.elapsed()));
                telemetry::retry(telemetry::RetryEvent {
                    operation: RetryOperation::KafkaStartupCheck,
                    class: RetryClass::Transient,
                    attempt,
                    wait: pause,
                    subject: &endpoint,
                    error: &e,
                    message: "Kafka does not answer the startup check yet; asking again",
                });
                std::thread::sleep(pause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate_kafka, Config};
    use std::path::Path;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (format!("DISPATCH_INGEST__{a}"), b.to_string()))
            .collect()
    }

    fn pem_file(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    // A self-signed certificate (public part only), for the file checks.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIUX67qN4+3MYeU3lHiUe9M8njkLR4wCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKdW5pdC10ZXN0czAgFw0yNjEyMDIwMTA0MzFaGA8yMTI2MTEw
ODAxMDQzMVowFTETMBEGA1UEAwwKdW5pdC10ZXN0czBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABILshYUxAle8l4sUEDczm8sBcSYoiA4e8jqhoe/y0ejMS/xN4WSP
Kzwx2zZoOeQR9RGi73uaZAA+UDyeg8Ih9j2jUzBRMB0GA1UdDgQWBBSq5uLOi2YY
2DwUcYatVpRZTQT5OzAfBgNVHSMEGDAWgBSq5uLOi2YY2DwUcYatVpRZTQT5OzAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDTiVEHd1CbvR714jM5
jjov2GP2joui1GDy542ltKNQxgIhAJcH5swbFDSXQVY888cpI46QmZv/vllWbZio
3axMCCMC
-----END CERTIFICATE-----
";

    #[test]
    fn librdkafka_is_built_with_tls_and_the_sasl_mechanisms() {
        let features = rdkafka::config::ClientConfig::new()
            .create_native_config()
            .unwrap()
            .get("builtin.features")
            .unwrap();
        for f in ["ssl", "sasl_plain", "sasl_scram"] {
            assert!(features.split(',').any(|x| x == f), "{f} in {features}");
        }
    }

    #[test]
    fn sasl_needs_a_supported_mechanism_and_credentials() {
        let base = [
            ("KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA__SASL_USERNAME", "u"),
            ("KAFKA__SASL_PASSWORD", "pw-secret"),
        ];
        for m in ["PLAIN", "SCRAM-SHA-256", "scram-sha-512"] {
            let mut e = base.to_vec();
            e.push(("KAFKA__SASL_MECHANISM", m));
            let c = Config::load(None, env(&e)).unwrap();
            let mut cc = ClientConfig::new();
            apply_kafka(&c.kafka, &mut cc);
            assert_eq!(
                cc.get("sasl.mechanism"),
                Some(m.to_ascii_uppercase().as_str())
            );
        }
        for (m, want) in [("GSSAPI", "GSSAPI"), ("", "sasl_mechanism")] {
            let mut e = base.to_vec();
            e.push(("KAFKA__SASL_MECHANISM", m));
            let err = Config::load(None, env(&e)).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("PLAIN"), "{err}");
            assert!(!err.contains("pw-secret"), "{err}");
        }
        let err = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
                ("KAFKA__SASL_MECHANISM", "PLAIN"),
                ("KAFKA__SASL_USERNAME", "u"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.sasl_password"), "{err}");
        let err = Config::load(None, env(&[("KAFKA__SASL_MECHANISM", "PLAIN")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only applies"), "{err}");
    }

    #[test]
    fn tls_files_are_checked_and_passed_to_librdkafka() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = pem_file(dir.path(), "x.txt", "hello\n");
        let err = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "ssl"),
                ("KAFKA__SSL_CA_FILE", &not_pem),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("kafka.ssl_ca_file") && err.contains("no PEM"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "ssl"),
                ("KAFKA__SSL_CA_FILE", "/nonexistent/ca.pem"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let err = Config::load(None, env(&[("KAFKA__SSL_CA_FILE", &not_pem)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only applies"), "{err}");
        let err = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "ssl"),
                ("KAFKA__SSL_KEY_FILE", &not_pem),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kafka.ssl_certificate_file"), "{err}");
        let err = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "ssl"),
                ("KAFKA__SSL_KEY_PASSWORD", "key-secret"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("key-secret"), "{err}");
    }

    #[test]
    fn verification_cannot_be_switched_off_through_extra() {
        for (key, value) in [
            ("enable.ssl.certificate.verification", "false"),
            ("ssl.endpoint.identification.algorithm", "NONE"),
        ] {
            let mut c = Config::default();
            c.kafka.security_protocol = "ssl".into();
            c.kafka.extra.insert(key.into(), value.into());
            let err = validate_kafka(&c.kafka).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("ssl_ca_file"), "{err}");
        }
        let mut c = Config::default();
        c.kafka.extra.insert(
            "ssl.endpoint.identification.algorithm".into(),
            "https".into(),
        );
        validate_kafka(&c.kafka).unwrap();
    }

    #[test]
    fn key_password_is_masked_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let key = pem_file(dir.path(), "k.pem", "key\n");
        let cert = pem_file(dir.path(), "c.pem", CERT);
        let c = Config::load(
            None,
            env(&[
                ("KAFKA__SECURITY_PROTOCOL", "ssl"),
                ("KAFKA__SSL_CERTIFICATE_FILE", &cert),
                ("KAFKA__SSL_KEY_FILE", &key),
                ("KAFKA__SSL_KEY_PASSWORD", "key-secret"),
                ("KAFKA__SSL_CA_FILE", &cert),
            ]),
        )
        .unwrap();
        assert!(!c.to_masked_toml().contains("key-secret"));
        let mut cc = ClientConfig::new();
        apply_kafka(&c.kafka, &mut cc);
        assert_eq!(cc.get("ssl.key.password"), Some("key-secret"));
        assert_eq!(cc.get("ssl.ca.location"), Some(cert.as_str()));
        assert_eq!(cc.get("ssl.key.location"), Some(key.as_str()));
    }

    #[test]
    fn http_ca_file_needs_https_and_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = pem_file(dir.path(), "c.pem", CERT);
        let err = Config::load(None, env(&[("CLICKHOUSE__CA_FILE", &cert)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("clickhouse.ca_file") && err.contains("https://"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[
                ("SCHEMA_REGISTRY__URL", "https://registry:8081"),
                ("SCHEMA_REGISTRY__CA_FILE", "/nonexistent/r.pem"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("schema_registry.ca_file"), "{err}");
        let c = Config::load(
            None,
            env(&[
                ("CLICKHOUSE__URL", "https://ch:8443"),
                ("CLICKHOUSE__CA_FILE", &cert),
            ]),
        )
        .unwrap();
        assert_eq!(c.clickhouse.ca_file, cert);
        http_tls_config(&cert).expect("the CA file is usable as a root");
    }
}
