//! A small Confluent-compatible Schema Registry for the tests (no real registry installs from the
//! package registries this project can reach): `GET /schemas/ids/{id}` and
//! `POST /subjects/{subject}/versions`, with HTTP basic auth, on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;

#[derive(Default)]
struct Inner {
    by_id: HashMap<u32, String>,
    next_id: u32,
    requests: u64,
}

#[derive(Clone)]
pub struct TestRegistry {
    inner: Arc<Mutex<Inner>>,
    auth: Option<String>,
    pub port: u16,
}

fn authorized(headers: &HeaderMap, auth: &Option<String>) -> bool {
    match auth {
        None => true,
        Some(expected) => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected),
    }
}

impl TestRegistry {
    /// A registry that will listen on `port` once [`TestRegistry::start`] is called; requires
    /// basic auth `user:password` when given.
    pub fn new(port: u16, basic: Option<(&str, &str)>) -> TestRegistry {
        use base64::Engine as _;
        TestRegistry {
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            })),
            auth: basic.map(|(u, p)| {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Basic {token}")
            }),
            port,
        }
    }

    /// Register a schema directly (as a producer would have); returns its id.
    pub fn add(&self, schema_json: &str) -> u32 {
        let mut inner = self.inner.lock().unwrap();
        if let Some((id, _)) = inner.by_id.iter().find(|(_, s)| s.as_str() == schema_json) {
            return *id;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.by_id.insert(id, schema_json.to_string());
        id
    }

    pub fn requests(&self) -> u64 {
        self.inner.lock().unwrap().requests
    }

    /// Serve on 127.0.0.1:port until the test ends.
    pub async fn start(&self) {
        let state = self.clone();
        let app = axum::Router::new()
            .route("/schemas/ids/{id}", get(get_schema))
            .route("/subjects/{subject}/versions", post(register))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
    }
}

async fn get_schema(
    State(reg): State<TestRegistry>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> (StatusCode, Json<serde_json::Value>) {
    let mut inner = reg.inner.lock().unwrap();
    inner.requests += 1;
    if !authorized(&headers, &reg.auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error_code": 401, "message": "Unauthorized"})),
        );
    }
    match inner.by_id.get(&id) {
        Some(schema) => (
            StatusCode::OK,
            Json(serde_json::json!({ "schema": schema })),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error_code": 40403, "message": "Schema not found"})),
        ),
    }
}

async fn register(
    State(reg): State<TestRegistry>,
    Path(_subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    if !authorized(&headers, &reg.auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error_code": 401})),
        );
    }
    let schema = body["schema"].as_str().unwrap_or_default().to_string();
    let id = reg.add(&schema);
    (StatusCode::OK, Json(serde_json::json!({ "id": id })))
}
