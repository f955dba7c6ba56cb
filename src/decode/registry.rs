//! Confluent Schema Registry client: `GET /schemas/ids/{id}` for the writer schema of a
//! Confluent-framed record (cached forever: ids are immutable), with a request timeout, a few quick
//! retries, and basic auth. `register` (`POST /subjects/{subject}/versions`) serves the generator.
//!
//! An unreachable registry is a retriable condition, never a reason to dead-letter a record: the
//! pipeline waits and asks again. An id the registry does not know is permanent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::Schema;

use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::config::{RetryConfig, SchemaRegistryConfig};
use crate::telemetry;

/// Why a schema registry lookup failed; [`RegistryError::is_retriable`] tells an outage from a bad id or schema.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or did not answer in time.
    #[error("schema registry {url} unreachable: {message}")]
    Unreachable {
        /// The registry URL (base or request), with any password redacted.
        url: String,
        /// The HTTP client's error.
        message: String,
    },
    /// The registry answered with an HTTP status other than 200 (and not a 404 with error code 40403).
    #[error("schema registry {url} answered {status}: {body}")]
    Status {
        /// The registry URL (base or request), with any password redacted.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The answer's body (the registry's error message).
        body: String,
    },
    /// The answer was not the registry's JSON (a proxy, a login page, a wrong base path).
    #[error("schema registry {url} gave an answer that is not the registry's JSON ({message}); a proxy, a login page or a wrong base path?")]
    Unexpected {
        /// The registry URL (base or request), with any password redacted.
        url: String,
        /// What was wrong with the answer.
        message: String,
    },
    /// The registry says it has no schema with this id (Confluent error code 40403).
    #[error("schema id {id} is not known to the schema registry (error code 40403)")]
    NotFound {
        /// The schema id from the record's Confluent header.
        id: u32,
    },
    /// The registry serves a schema for this id that is not Avro or does not parse.
    #[error("schema id {id}: {message}")]
    BadSchema {
        /// The schema id from the record's Confluent header.
        id: u32,
        /// Why the schema is unusable.
        message: String,
    },
}

impl RegistryError {
    /// Worth asking again later: everything but an id the registry itself says it does not
    /// know (Confluent error code 40403) and a schema it serves that is not Avro. A 404 from a
    /// proxy or a wrong base path, a replica that has not caught up yet (answers are checked
    /// again), a 200 HTML page, a 401, a timeout mid-body: all outages, the record waits.
    pub fn is_retriable(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::Status { .. }
            | RegistryError::Unexpected { .. } => true,
            RegistryError::NotFound { .. } | RegistryError::BadSchema { .. } => false,
        }
    }
}

#[derive(serde::Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

/// Confluent's error body, e.g. `{"error_code": 40403, "message": "Schema not found"}`.
#[derive(serde::Deserialize)]
struct ErrorResponse {
    error_code: u32,
}

/// The Confluent error code for "schema not found" (by id).
pub const SCHEMA_NOT_FOUND: u32 = 40403;

#[derive(serde::Deserialize)]
struct RegisterResponse {
    id: u32,
}

/// Connection settings of the schema registry client, from `[schema_registry]` and `[retry]`.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Base URL, e.g. `http://registry:8081`.
    pub url: String,
    /// Basic-auth user name; empty: no authentication.
    pub username: String,
    /// Basic-auth password (secret).
    pub password: String,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Quick retries inside one lookup before reporting the registry unreachable.
    pub retries: u32,
    /// PEM file of CA certificates trusted besides the system's roots (empty: none).
    pub ca_file: String,
    /// `[retry]`: the waits between those quick retries.
    pub retry: RetryConfig,
}

impl RegistrySettings {
    /// Client settings from `[schema_registry]`, waiting between retries by `[retry]`; `None` when
    /// no registry is configured (empty `url`).
    pub fn from_config(r: &SchemaRegistryConfig, retry: &RetryConfig) -> Option<RegistrySettings> {
        (!r.url.is_empty()).then(|| RegistrySettings {
            url: r.url.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            timeout: Duration::from_millis(r.timeout_ms),
            retries: r.retries,
            ca_file: r.ca_file.clone(),
            retry: retry.clone(),
        })
    }
}

/// A Confluent Schema Registry client that fetches writer schemas by id and caches them.
pub struct RegistryClient {
    http: reqwest::Client,
    settings: RegistrySettings,
    cache: Mutex<HashMap<u32, Arc<Schema>>>,
    /// Per schema id not yet cached: whose turn it is to ask, and how its lookups failed.
    lookups: Mutex<HashMap<u32, Arc<Lookup>>>,
}

/// The shared lookup of one schema id (see [`RegistryClient::schema`]).
#[derive(Debug, Default)]
struct Lookup {
    /// Held by the lookup asking the registry.
    turn: tokio::sync::Mutex<()>,
    /// Failed lookups so far, and the last one's error.
    failed: Mutex<(u64, Option<RegistryError>)>,
}

impl RegistryClient {
    /// A client with these settings (TLS roots: the system's plus `ca_file`).
    pub fn new(settings: RegistrySettings) -> RegistryClient {
        // TLS: the system's roots plus schema_registry.ca_file (validated with the config). Should
        // the file have become unreadable since, no CA is trusted at all (fail closed): every
        // https request then fails with a certificate error naming the registry.
        let tls = crate::security::http_tls_config(&settings.ca_file).unwrap_or_else(|e| {
            tracing::error!(error = %e, url = %settings.url, "schema registry TLS setup");
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        });
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .expect("HTTP client builds");
        RegistryClient {
            http,
            settings,
            cache: Mutex::new(HashMap::new()),
            lookups: Mutex::new(HashMap::new()),
        }
    }

    /// The base URL without a password, for error messages.
    fn shown_url(&self) -> String {
        crate::config::redact_url(&self.settings.url)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.url.trim_end_matches('/'))
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.settings.username.is_empty() {
            req
        } else {
            req.basic_auth(&self.settings.username, Some(&self.settings.password))
        }
    }

    /// Schemas fetched so far.
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }

    /// The writer schema with this id. Concurrent lookups of one id share the request: the
    /// first asks the registry while the others wait; a lookup that fails while others wait
    /// fails them too (they retry on their own schedule), so an outage or a new id costs one
    /// request at a time, not one per record in flight.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.cache.lock().expect("cache lock").get(&id) {
            return Ok(s.clone());
        }
        let lookup = self
            .lookups
            .lock()
            .expect("lookups lock")
            .entry(id)
            .or_default()
            .clone();
        let seen = lookup.failed.lock().expect("lookup lock").0;
        let _turn = lookup.turn.lock().await;
        if let Some(s) = self.cache.lock().expect("cache lock").get(&id) {
            return Ok(s.clone());
        }
        if let (failures, Some(e)) = &*lookup.failed.lock().expect("lookup lock") {
            if *failures != seen {
                return Err(e.clone());
            }
        }
        let result = self.fetch(id).await;
        if let Err(e) = &result {
            let mut failed = lookup.failed.lock().expect("lookup lock");
            *failed = (failed.0 + 1, Some(e.clone()));
        }
        // Kept only while the registry may yet answer (an outage): an id that is cached or
        // known to be bad needs no shared lookup, and hostile ids must not pile up here.
        if !matches!(&result, Err(e) if e.is_retriable()) {
            self.lookups.lock().expect("lookups lock").remove(&id);
        }
        result
    }

    /// Ask the registry for schema `id` (with the quick retries of `schema_registry.retries`)
    /// and cache it.
    async fn fetch(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        let url = self.url(&format!("/schemas/ids/{id}"));
        let mut attempt = 0;
        let mut backoff = Backoff::from_config(&self.settings.retry);
        let body: SchemaResponse = loop {
            match self.get_once(&url, id).await {
                Ok(b) => break b,
                Err(e) if e.is_retriable() && attempt < self.settings.retries => {
                    attempt += 1;
                    let wait = backoff.next_wait();
                    telemetry::retry(telemetry::RetryEvent {
                        operation: RetryOperation::SchemaRegistryRequest,
                        class: RetryClass::Transient,
                        attempt,
                        wait,
                        subject: &format!("schema id {id}"),
                        error: &e,
                        message: "schema registry request failed; asking again",
                    });
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(t) = body.schema_type.as_deref() {
            if t != "AVRO" {
                return Err(RegistryError::BadSchema {
                    id,
                    message: format!("schema type {t}, expected AVRO"),
                });
            }
        }
        let schema = Schema::parse_str(&body.schema).map_err(|e| RegistryError::BadSchema {
            id,
            message: format!("not a valid Avro schema: {e}"),
        })?;
        let schema = Arc::new(schema);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(id, schema.clone());
        Ok(schema)
    }

    async fn get_once(&self, url: &str, id: u32) -> Result<SchemaResponse, RegistryError> {
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            url: self.shown_url(),
            message: crate::security::error_chain(&e),
        };
        let resp = self
            .auth(self.http.get(url))
            .header("Accept", "application/vnd.schemaregistry.v1+json")
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        // The whole body first: a timeout or a reset mid-body is the registry being unreachable.
        let body = resp.bytes().await.map_err(unreachable)?;
        read_answer(status, &body, &crate::config::redact_url(url), id)
    }

    /// Register `schema_json` under `subject`; returns its id.
    pub async fn register(&self, subject: &str, schema_json: &str) -> Result<u32, RegistryError> {
        let url = self.url(&format!("/subjects/{subject}/versions"));
        let resp = self
            .auth(self.http.post(&url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": schema_json }))
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                url: self.shown_url(),
                message: crate::security::error_chain(&e),
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.text().await.unwrap_or_default();
            return Err(RegistryError::Status {
                url: crate::config::redact_url(&url),
                status,
                body,
            });
        }
        resp.json::<RegisterResponse>()
            .await
            .map(|r| r.id)
            .map_err(|e| RegistryError::Status {
                url: crate::config::redact_url(&url),
                status,
                body: e.to_string(),
            })
    }
}

/// The registry's answer to `GET {url}` for schema `id` (`url` without a password): the schema, or
/// how the lookup failed. Only a 404 carrying Confluent's error code 40403 means the registry does
/// not know the id ([`RegistryError::NotFound`], permanent); any other status and any 200 that is
/// not the registry's JSON is an outage (retriable: the record waits).
fn read_answer(
    status: u16,
    body: &[u8],
    url: &str,
    id: u32,
) -> Result<SchemaResponse, RegistryError> {
    if status == 404
        && serde_json::from_slice::<ErrorResponse>(body)
            .is_ok_and(|e| e.error_code == SCHEMA_NOT_FOUND)
    {
        return Err(RegistryError::NotFound { id });
    }
    if status != 200 {
        return Err(RegistryError::Status {
            url: url.to_string(),
            status,
            body: snippet(body),
        });
    }
    serde_json::from_slice::<SchemaResponse>(body).map_err(|e| RegistryError::Unexpected {
        url: url.to_string(),
        message: format!("{e}; body starts {:?}", snippet(body)),
    })
}

/// The start of a response body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How an answer is classified: the schema text, unknown schema (permanent), or an outage
    /// (retriable) with the error variant's name.
    fn class(status: u16, body: &str) -> String {
        match read_answer(status, body.as_bytes(), "http://r/schemas/ids/7", 7) {
            Ok(r) => format!("schema {}", r.schema),
            Err(e) => {
                let variant = match &e {
                    RegistryError::NotFound { id } => format!("not_found {id}"),
                    RegistryError::Status { status, .. } => format!("status {status}"),
                    RegistryError::Unexpected { .. } => "unexpected".into(),
                    RegistryError::Unreachable { .. } => "unreachable".into(),
                    RegistryError::BadSchema { .. } => "bad_schema".into(),
                };
                let kind = if e.is_retriable() {
                    "outage"
                } else {
                    "unknown_schema"
                };
                format!("{kind}: {variant}")
            }
        }
    }

    #[test]
    fn registry_answers_are_classified_as_unknown_schema_or_outage() {
        let cases: [(u16, &str, &str); 13] = [
            (200, r#"{"schema":"\"string\""}"#, "schema \"string\""),
            (
                200,
                r#"{"schema":"\"int\"","schemaType":"AVRO"}"#,
                "schema \"int\"",
            ),
            // Only Confluent's own "schema not found" is permanent.
            (
                404,
                r#"{"error_code":40403,"message":"Schema 7 not found"}"#,
                "unknown_schema: not_found 7",
            ),
            // A 404 of another kind (a subject, a wrong base path, a proxy) is an outage.
            (
                404,
                r#"{"error_code":40401,"message":"Subject not found"}"#,
                "outage: status 404",
            ),
            (404, "<html>Not Found</html>", "outage: status 404"),
            (404, "", "outage: status 404"),
            // 40403 with another status is not the registry saying "unknown id".
            (
                500,
                r#"{"error_code":40403,"message":"x"}"#,
                "outage: status 500",
            ),
            (
                401,
                r#"{"error_code":401,"message":"Unauthorized"}"#,
                "outage: status 401",
            ),
            (403, "forbidden", "outage: status 403"),
            (
                503,
                r#"{"error_code":50003,"message":"forwarding"}"#,
                "outage: status 503",
            ),
            (502, "Bad Gateway", "outage: status 502"),
            // A 200 that is not the registry's JSON: a login page, a proxy, a cut body.
            (200, "<html>login</html>", "outage: unexpected"),
            (200, r#"{"schema":"#, "outage: unexpected"),
        ];
        for (status, body, expected) in cases {
            assert_eq!(class(status, body), expected, "{status} {body}");
        }
    }

    #[test]
    fn lookup_errors_are_retriable_except_unknown_and_foreign_schemas() {
        let url = "u".to_string();
        let retriable = [
            RegistryError::Unreachable {
                url: url.clone(),
                message: "connection refused".into(),
            },
            RegistryError::Status {
                url: url.clone(),
                status: 500,
                body: String::new(),
            },
            RegistryError::Unexpected {
                url,
                message: "x".into(),
            },
        ];
        assert!(retriable.iter().all(RegistryError::is_retriable));
        assert!(!RegistryError::NotFound { id: 1 }.is_retriable());
        assert!(!RegistryError::BadSchema {
            id: 1,
            message: "PROTOBUF".into()
        }
        .is_retriable());
    }
}
