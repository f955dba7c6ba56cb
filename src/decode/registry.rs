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

use crate::backoff::Backoff;
use crate::config::SchemaRegistryConfig;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("schema registry {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("schema registry {url} gave an answer that is not the registry's JSON ({message}); a proxy, a login page or a wrong base path?")]
    Unexpected { url: String, message: String },
    #[error("schema id {id} is not known to the schema registry (error code 40403)")]
    NotFound { id: u32 },
    #[error("schema id {id}: {message}")]
    BadSchema { id: u32, message: String },
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

#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub url: String,
    pub username: String,
    pub password: String,
    pub timeout: Duration,
    /// Quick retries inside one lookup before reporting the registry unreachable.
    pub retries: u32,
    /// PEM file of CA certificates trusted besides the system's roots (empty: none).
    pub ca_file: String,
}

impl RegistrySettings {
    /// Client settings from `[schema_registry]`; `None` when no registry is configured (empty
    /// `url`).
    pub fn from_config(r: &SchemaRegistryConfig) -> Option<RegistrySettings> {
        (!r.url.is_empty()).then(|| RegistrySettings {
            url: r.url.clone(),
            username: r.username.clone(),
            password: r.password.clone(),
            timeout: Duration::from_millis(r.timeout_ms),
            retries: r.retries,
            ca_file: r.ca_file.clone(),
        })
    }
}

pub struct RegistryClient {
    http: reqwest::Client,
    settings: RegistrySettings,
    cache: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl RegistryClient {
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

    /// The writer schema with this id.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.cache.lock().expect("cache lock").get(&id) {
            return Ok(s.clone());
        }
        let url = self.url(&format!("/schemas/ids/{id}"));
        let mut attempt = 0;
        let mut backoff =
            Backoff::new(Duration::from_millis(200), Duration::from_millis(3200), 0.0);
        let body: SchemaResponse = loop {
            match self.get_once(&url, id).await {
                Ok(b) => break b,
                Err(e) if e.is_retriable() && attempt < self.settings.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next_wait()).await;
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
        if status == 404
            && serde_json::from_slice::<ErrorResponse>(&body)
                .is_ok_and(|e| e.error_code == SCHEMA_NOT_FOUND)
        {
            return Err(RegistryError::NotFound { id });
        }
        if status != 200 {
            return Err(RegistryError::Status {
                url: crate::config::redact_url(url),
                status,
                body: snippet(&body),
            });
        }
        serde_json::from_slice::<SchemaResponse>(&body).map_err(|e| RegistryError::Unexpected {
            url: crate::config::redact_url(url),
            message: format!("{e}; body starts {:?}", snippet(&body)),
        })
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

/// The start of a response body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    s
}
